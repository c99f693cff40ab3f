import Testing

@testable import BodycamCore

/// The byte pattern of the entry with tag `tag`: recognisable and different at every position.
private func pattern(_ tag: Int, _ length: Int) -> [UInt8] {
    (0..<length).map { UInt8(truncatingIfNeeded: tag &* 31 &+ $0 &* 7 &+ 1) }
}

private func entry(_ length: Int, tag: Int = 0, sync: Bool = true) -> MediaEntry {
    MediaEntry(
        length: length, time: MonotonicTime(nanoseconds: Int64(tag) * 40_000_000), pts: Int64(tag) * 3600 + 1800,
        dts: Int64(tag) * 3600, duration: 3600, isSync: sync)
}

/// Appends an entry of `length` bytes filled with `pattern(tag, length)`.
@discardableResult
private func append(_ ring: MediaRing, _ length: Int, tag: Int, sync: Bool = true) -> Int? {
    let bytes = pattern(tag, length)
    return ring.append(entry(length, tag: tag, sync: sync)) { dst in
        bytes.withUnsafeBytes { dst.copyMemory(from: $0) }
    }
}

private func contents(_ ring: MediaRing, _ seq: Int) -> [UInt8] { Array(ring.bytes(seq)) }

@Suite("MediaRing")
struct MediaRingTests {
    @Test("appended entries read back with their bytes and fields, numbered from 0")
    func roundTrip() throws {
        let ring = MediaRing(capacity: 1000, maxEntries: 8)
        #expect(ring.isEmpty)
        #expect(ring.usedBytes == 0)
        #expect(append(ring, 100, tag: 1) == 0)
        #expect(append(ring, 250, tag: 2, sync: false) == 1)
        #expect(append(ring, 7, tag: 3) == 2)
        #expect(ring.count == 3)
        #expect(ring.firstSeq == 0)
        #expect(ring.endSeq == 3)
        #expect(contents(ring, 0) == pattern(1, 100))
        #expect(contents(ring, 1) == pattern(2, 250))
        #expect(contents(ring, 2) == pattern(3, 7))
        let e = ring[1]
        #expect(e.length == 250)
        #expect(e.time == MonotonicTime(nanoseconds: 80_000_000))
        #expect(e.pts == 7200 + 1800)
        #expect(e.dts == 7200)
        #expect(e.duration == 3600)
        #expect(!e.isSync)
        #expect(ring[0].isSync)
        // Packed one after another.
        #expect(ring[0].offset == 0)
        #expect(ring[1].offset == 100)
        #expect(ring[2].offset == 350)
        #expect(ring.usedBytes == 357)
    }

    @Test("a field written through the subscript is kept (the clip cursor fills durations)")
    func subscriptSetter() {
        let ring = MediaRing(capacity: 100, maxEntries: 4)
        append(ring, 10, tag: 0)
        append(ring, 10, tag: 1)
        ring[1].duration = 1234
        #expect(ring[1].duration == 1234)
        #expect(ring[0].duration == 3600)
        #expect(contents(ring, 1) == pattern(1, 10))
    }

    @Test("an entry that does not fit before the end starts again at 0, contiguous, and nothing is damaged")
    func wrapAround() {
        let ring = MediaRing(capacity: 100, maxEntries: 8)
        append(ring, 40, tag: 0)
        append(ring, 40, tag: 1)
        #expect(ring.dropOldest())
        // 20 bytes remain at the end; 30 do not fit there, so the entry goes to the front.
        #expect(append(ring, 30, tag: 2) == 2)
        #expect(ring[2].offset == 0)
        #expect(contents(ring, 1) == pattern(1, 40))
        #expect(contents(ring, 2) == pattern(2, 30))
        // The free gap between the new tail and the oldest entry is exactly 10 bytes.
        #expect(ring.fits(10))
        #expect(!ring.fits(11))
        #expect(append(ring, 11, tag: 3) == nil)
        #expect(append(ring, 10, tag: 4) == 3)
        #expect(ring[3].offset == 30)
        for (seq, tag, length) in [(1, 1, 40), (2, 2, 30), (3, 4, 10)] {
            #expect(contents(ring, seq) == pattern(tag, length))
        }
    }

    @Test("a long run of appends and drops keeps every live entry intact, in bounds and disjoint")
    func longRunIntegrity() {
        let capacity = 997
        let ring = MediaRing(capacity: capacity, maxEntries: 16)
        var lengths: [Int: Int] = [:]  // seq -> length (tag == seq)
        var lcg: UInt64 = 12345
        func next() -> Int {
            lcg = lcg &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((lcg >> 33) % 300) + 1
        }
        var appended = 0
        for _ in 0..<5000 {
            let length = next()
            while !ring.fits(length) {
                #expect(ring.dropOldest())
            }
            let seq = ring.endSeq
            #expect(append(ring, length, tag: seq) == seq)
            lengths[seq] = length
            appended += 1
            // Every live entry: contiguous inside the storage, bytes as written, no overlap.
            var spans: [(Int, Int)] = []
            for s in ring.firstSeq..<ring.endSeq {
                let e = ring[s]
                #expect(e.offset >= 0 && e.offset + e.length <= capacity)
                #expect(e.length == lengths[s])
                spans.append((e.offset, e.offset + e.length))
            }
            spans.sort { $0.0 < $1.0 }
            for i in spans.indices.dropFirst() { #expect(spans[i - 1].1 <= spans[i].0) }
            let live = spans.reduce(0) { $0 + $1.1 - $1.0 }
            #expect(ring.usedBytes >= live && ring.usedBytes <= capacity)
        }
        for s in ring.firstSeq..<ring.endSeq { #expect(contents(ring, s) == pattern(s, lengths[s]!)) }
        #expect(ring.endSeq == appended)
    }

    @Test("pinned entries are never dropped, and append fails instead of overwriting them")
    func pinning() {
        let ring = MediaRing(capacity: 100, maxEntries: 8)
        append(ring, 30, tag: 0)
        append(ring, 30, tag: 1)
        append(ring, 30, tag: 2)
        ring.pinnedSeq = 1
        #expect(ring.dropOldest())  // entry 0 is not pinned
        #expect(!ring.dropOldest())  // entry 1 is
        #expect(ring.firstSeq == 1)
        // 10 bytes at the end and 30 at the front are free: a 35-byte entry fits nowhere.
        var filled = false
        #expect(ring.append(entry(35, tag: 3)) { _ in filled = true } == nil)
        #expect(!filled)
        #expect(append(ring, 10, tag: 4) == 3)  // fits exactly at the end
        #expect(append(ring, 30, tag: 5) == 4)  // and exactly at the front
        #expect(append(ring, 1, tag: 6) == nil)
        #expect(ring.usedBytes == 100)
        for (seq, tag, length) in [(1, 1, 30), (2, 2, 30), (3, 4, 10), (4, 5, 30)] {
            #expect(contents(ring, seq) == pattern(tag, length))
        }
        // Unpinned, the oldest can go again and room comes back.
        ring.pinnedSeq = nil
        #expect(ring.dropOldest())
        #expect(append(ring, 30, tag: 7) == 5)
        #expect(contents(ring, 2) == pattern(2, 30))
    }

    @Test("a pin at a later entry protects it but lets older ones go")
    func pinLater() {
        let ring = MediaRing(capacity: 100, maxEntries: 8)
        for t in 0..<4 { append(ring, 20, tag: t) }
        ring.pinnedSeq = 2
        #expect(ring.dropOldest())
        #expect(ring.dropOldest())
        #expect(!ring.dropOldest())
        #expect(ring.firstSeq == 2)
        #expect(ring.count == 2)
    }

    @Test("dropOldest on an empty ring is false; sequence numbers keep growing after emptying")
    func dropOldest() {
        let ring = MediaRing(capacity: 100, maxEntries: 4)
        #expect(!ring.dropOldest())
        append(ring, 60, tag: 0)
        append(ring, 30, tag: 1)
        #expect(ring.dropOldest())
        #expect(ring.firstSeq == 1)
        #expect(ring.count == 1)
        #expect(ring.dropOldest())
        #expect(ring.isEmpty)
        #expect(ring.usedBytes == 0)
        #expect(!ring.dropOldest())
        // An empty ring starts again at offset 0 with the next sequence number.
        #expect(append(ring, 100, tag: 2) == 2)
        #expect(ring[2].offset == 0)
        #expect(contents(ring, 2) == pattern(2, 100))
    }

    @Test("an entry larger than the ring is refused; one exactly its size fills it")
    func capacityLimit() {
        let ring = MediaRing(capacity: 64, maxEntries: 4)
        #expect(!ring.fits(65))
        #expect(append(ring, 65, tag: 0) == nil)
        #expect(ring.isEmpty)
        #expect(append(ring, 64, tag: 1) == 0)
        #expect(ring.usedBytes == 64)
        #expect(!ring.fits(1))
        #expect(append(ring, 1, tag: 2) == nil)
        #expect(contents(ring, 0) == pattern(1, 64))
    }

    @Test("no more than maxEntries entries, with plenty of bytes free; slots are reused correctly")
    func entryCountLimit() {
        let ring = MediaRing(capacity: 10_000, maxEntries: 3)
        for t in 0..<3 { #expect(append(ring, 10, tag: t) == t) }
        #expect(!ring.fits(1))
        #expect(append(ring, 10, tag: 3) == nil)
        #expect(ring.dropOldest())
        #expect(append(ring, 12, tag: 4) == 3)
        // Slot of entry 0 now holds entry 3; entries 1 and 2 are untouched.
        #expect(ring[3].length == 12)
        #expect(ring[3].dts == 4 * 3600)
        #expect(ring[1].dts == 1 * 3600)
        #expect(contents(ring, 1) == pattern(1, 10))
        #expect(contents(ring, 3) == pattern(4, 12))
    }

    @Test("usedBytes counts live bytes plus the gap a wrap leaves at the end")
    func usedBytes() {
        let ring = MediaRing(capacity: 100, maxEntries: 8)
        append(ring, 40, tag: 0)
        append(ring, 40, tag: 1)
        #expect(ring.usedBytes == 80)
        ring.dropOldest()
        #expect(ring.usedBytes == 40)
        append(ring, 30, tag: 2)  // wraps: the 20 bytes after the 40-byte entry are unusable
        #expect(ring.usedBytes == 90)
        ring.dropOldest()  // the oldest is now the wrapped entry at offset 0
        #expect(ring.usedBytes == 30)
        ring.dropOldest()
        #expect(ring.usedBytes == 0)
    }

    @Test("sync entries are found from any point")
    func syncSearch() {
        let ring = MediaRing(capacity: 1000, maxEntries: 8)
        for (t, sync) in [true, false, false, true, false].enumerated() { append(ring, 10, tag: t, sync: sync) }
        #expect(ring.syncSeqs() == [0, 3])
        #expect(ring.syncSeqs(from: 1) == [3])
        #expect(ring.syncSeqs(from: 4) == [])
        #expect(ring.nextSync(atOrAfter: 0) == 0)
        #expect(ring.nextSync(atOrAfter: 1) == 3)
        #expect(ring.nextSync(atOrAfter: 4) == nil)
        ring.dropOldest()
        ring.dropOldest()
        // Searching from before the oldest live entry starts at the oldest live entry.
        #expect(ring.syncSeqs(from: 0) == [3])
        #expect(ring.nextSync(atOrAfter: 0) == 3)
    }
}
