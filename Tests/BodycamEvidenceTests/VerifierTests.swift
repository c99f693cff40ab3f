import BodycamCore
import Crypto
import Foundation
import Testing

@testable import BodycamEvidence

#if canImport(Glibc)
import Glibc
#endif

/// Seals plaintext the way the recorder's sealed sink does: whole 64 KiB chunks as soon as there
/// is more than one chunk's worth (each non-final chunk once, in order), the rest as the final
/// chunk when the clip closes.
final class EvSealer {
    let writer: AgeStreamWriter
    private(set) var file: [UInt8]
    private var pending: [UInt8] = []
    private var next = 0
    private(set) var hashes: [String] = []

    init(recipient: AgeRecipient) throws {
        writer = try AgeStreamWriter(recipient: recipient)
        file = writer.headerBytes
    }

    func append(_ bytes: [UInt8]) throws -> SealCommit {
        pending += bytes
        var done: [ChunkHash] = []
        while pending.count > SealInfo.chunkPlaintext {
            guard file.count == writer.chunkOffset(next) else { throw EvTestError("sealer out of step") }
            let c = try writer.sealChunk(index: next, plaintext: Array(pending[..<SealInfo.chunkPlaintext]), last: false)
            pending.removeFirst(SealInfo.chunkPlaintext)
            file += c
            done.append(ChunkHash(index: next, sha256: evSHA(c)))
            hashes.append(evSHA(c))
            next += 1
        }
        return SealCommit(size: file.count, chunks: done, tail: nil)
    }

    /// Seals the final chunk; returns its hash.
    func finish() throws -> String {
        let c = try writer.sealChunk(index: next, plaintext: pending, last: true)
        file += c
        writer.zeroizeKeys()
        return evSHA(c)
    }
}

/// A synthetic clip: an "init segment" and fragments of arbitrary bytes (the verifier only hashes
/// byte ranges), the journal the recorder writes for them, and the signed manifest. Plain, or
/// sealed with age to an agency recipient.
struct SyntheticClip {
    static let spacing = 1.25
    var clipID: String
    var initSegment: [UInt8]
    var fragments: [[UInt8]]
    var manifest: ClipManifest
    /// The media file's bytes: the plaintext MP4, or the sealed age file.
    var media: [UInt8]
    var isSealed: Bool

    var plaintext: [UInt8] { initSegment + fragments.flatMap { $0 } }
    var mediaName: String { clipID + (isSealed ? ".mp4.age" : ".mp4") }
    var manifestName: String { clipID + ".json" }

    /// Plaintext offset of fragment `k` (1-based).
    func offset(ofFragment k: Int) -> Int { initSegment.count + fragments[..<(k - 1)].reduce(0) { $0 + $1.count } }
    static func mediaTime(ofFragment k: Int) -> Double { Double(k - 1) * spacing }

    /// The independent answer to "which fragment holds plaintext byte `offset`": (name, media time).
    func holder(ofPlaintext offset: Int) -> (String, Double) {
        if offset < initSegment.count { return ("init segment", 0) }
        var k = 1
        while k < fragments.count && offset >= self.offset(ofFragment: k + 1) { k += 1 }
        return ("fragment \(k) at \(JournalCheck.seconds(Self.mediaTime(ofFragment: k)))", Self.mediaTime(ofFragment: k))
    }

    static func make(
        identity: DeviceIdentity = EvKeys.deviceA, deviceID: String = "CAM-1", sequence: Int = 1,
        fragmentSizes: [Int] = [700, 900, 650, 1200, 800], seed: UInt64 = 1, interrupted: Bool = false,
        recipient: AgeRecipient? = nil
    ) throws -> SyntheticClip {
        var rnd = EvRandom(seed: seed)
        let clipID = ClipID.make(deviceID: deviceID, unixSeconds: 1_735_787_045, sequence: sequence)
        let initSegment = Array("\0\0\0\u{18}ftypisom\0\0\u{2}\0isomiso6".utf8) + rnd.bytes(276)
        let fragments = fragmentSizes.map { rnd.bytes($0) }
        let sealer = try recipient.map { try EvSealer(recipient: $0) }
        let file = clipID + (recipient == nil ? ".mp4" : ".mp4.age")

        var m = ClipManifest(
            clipId: clipID, file: file, deviceId: deviceID, board: "sim", startUtc: "2025-01-02T03:04:05.000Z",
            startUnix: 1_735_787_045, clockTrusted: true, trigger: "button", triggeredAt: 0.5,
            initSegment: .init(offset: 0, size: 0, sha256: ""))
        m.video = .init(width: 320, height: 240, frameRate: "30/1", timescale: 90_000, profile: 66, level: 30, frames: 0, encoder: "x264")
        m.devicePublicKey = identity.publicKey.string
        if let sealer, let recipient {
            let h = sealer.writer.headerBytes
            m.sealed = SealInfo(recipient: recipient.string, headerSize: h.count, headerSha256: evSHA(h))
        }
        var chain = JournalChain(identity: identity)
        var journal: [JournalEntry] = []
        func add(_ e: JournalEntry) throws {
            var e = e
            _ = try chain.sign(&e)
            journal.append(e)
        }
        var header = JournalEntry(seq: 0, type: "clip", clipId: clipID, prev: "")
        header.header = m
        try add(header)

        let range = ClipManifest.ByteRange(offset: 0, size: initSegment.count, sha256: evSHA(initSegment))
        var initEntry = JournalEntry(seq: 0, type: "init", clipId: clipID, prev: "")
        initEntry.range = range
        initEntry.seal = try sealer?.append(initSegment)
        try add(initEntry)
        m.initSegment = range

        var offset = initSegment.count
        for (i, bytes) in fragments.enumerated() {
            let f = ClipManifest.Fragment(
                index: i + 1, offset: offset, size: bytes.count, sha256: evSHA(bytes), mediaTime: Self.mediaTime(ofFragment: i + 1),
                duration: spacing, videoFrames: 37, audioPackets: 62)
            offset += bytes.count
            var e = JournalEntry(seq: 0, type: "fragment", clipId: clipID, prev: "")
            e.fragment = f
            e.seal = try sealer?.append(bytes)
            try add(e)
            m.fragments.append(f)
            if i == 1 {
                let marker = ClipManifest.Marker(mediaTime: f.mediaTime + 0.4, kind: "button", utc: "2025-01-02T03:04:06.650Z", score: nil)
                var me = JournalEntry(seq: 0, type: "marker", clipId: clipID, prev: "")
                me.marker = marker
                try add(me)
                m.markers.append(marker)
            }
        }
        m.duration = Double(fragments.count) * spacing
        m.sizeBytes = offset
        m.video?.frames = 37 * fragments.count
        m.interrupted = interrupted
        m.endReason = interrupted ? "power-loss" : "button"
        var media = initSegment + fragments.flatMap { $0 }
        if let sealer, var sealed = m.sealed {
            if interrupted {
                sealed.chunks = sealer.hashes
                sealed.size = sealer.file.count
            } else {
                sealed.chunks = sealer.hashes + [try sealer.finish()]
                sealed.finalChunk = true
                sealed.size = sealer.file.count
            }
            m.sealed = sealed
            media = sealer.file
        }
        m.journal = journal
        try ManifestSeal.sign(&m, identity: identity)
        return SyntheticClip(
            clipID: clipID, initSegment: initSegment, fragments: fragments, manifest: m, media: media, isSealed: recipient != nil)
    }

    /// Writes the media file and the manifest into `dir`; returns the media file's path.
    @discardableResult
    func write(to dir: String, media: [UInt8]? = nil, manifest: ClipManifest? = nil) throws -> String {
        try evWrite(dir + "/" + manifestName, try Canonical.prettyBytes(manifest ?? self.manifest))
        try evWrite(dir + "/" + mediaName, media ?? self.media)
        return dir + "/" + mediaName
    }
}

func flipped(_ bytes: [UInt8], at i: Int, mask: UInt8 = 0x01) -> [UInt8] {
    var b = bytes
    b[i] ^= mask
    return b
}

// MARK: - Plain clips and exports

@Suite struct VerifierPlainTests {
    @Test func plainClipVerifies() throws {
        let clip = try SyntheticClip.make()
        try withEvScratch { dir in
            let path = try clip.write(to: dir)
            let r = Verifier.verify(path: path)
            #expect(r.kind == "clip")
            #expect(r.verified)
            #expect(r.problems.isEmpty)
            #expect(r.warnings.isEmpty)
            #expect(r.mediaTime == nil)
            #expect(r.clipId == clip.clipID)
            #expect(r.device == "CAM-1")
            #expect(r.deviceKey == EvKeys.deviceA.publicKey.fingerprint)
            #expect(r.fragments == 5)
            #expect(r.duration == 6.25)
            #expect(Verifier.verify(path: path, pinned: EvKeys.deviceA.publicKey).verified)
            let manifestOnly = Verifier.verify(path: dir + "/" + clip.manifestName)
            #expect(manifestOnly.kind == "manifest")
            #expect(manifestOnly.verified)
        }
    }

    @Test(arguments: 1...5)
    func flippedByteInFragmentNamesItAndItsMediaTime(fragment k: Int) throws {
        let clip = try SyntheticClip.make()
        let start = clip.offset(ofFragment: k)
        let size = clip.fragments[k - 1].count
        let t = SyntheticClip.mediaTime(ofFragment: k)
        try withEvScratch { dir in
            for at in [start, start + size / 2, start + size - 1] {
                let path = try clip.write(to: dir, media: flipped(clip.media, at: at, mask: 0x80))
                let r = Verifier.verify(path: path)
                #expect(!r.verified)
                #expect(r.problems == ["fragment \(k) at \(JournalCheck.seconds(t)): bytes \(start)–\(start + size) do not match the signed journal"])
                #expect(r.mediaTime == t)
            }
        }
    }

    @Test func flippedByteInInitSegmentIsNamed() throws {
        let clip = try SyntheticClip.make()
        try withEvScratch { dir in
            for at in [0, 5, clip.initSegment.count - 1] {
                let r = Verifier.verify(path: try clip.write(to: dir, media: flipped(clip.media, at: at)))
                #expect(!r.verified)
                #expect(r.problems.first?.hasPrefix("init segment: bytes 0–\(clip.initSegment.count)") == true)
            }
        }
    }

    @Test(arguments: 1...5)
    func droppedFragmentIsNamed(fragment k: Int) throws {
        let clip = try SyntheticClip.make()
        var media = clip.media
        let start = clip.offset(ofFragment: k)
        media.removeSubrange(start..<(start + clip.fragments[k - 1].count))
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: media))
            #expect(!r.verified)
            let p = try #require(r.problems.first)
            #expect(p.hasPrefix("fragment \(k) at \(JournalCheck.seconds(SyntheticClip.mediaTime(ofFragment: k))): "))
            #expect(r.mediaTime == SyntheticClip.mediaTime(ofFragment: k))
        }
    }

    @Test func swappedFragmentsAreNamed() throws {
        for sizes in [[700, 900, 650, 1200, 800], [800, 800, 800, 800, 800]] {
            let clip = try SyntheticClip.make(fragmentSizes: sizes)
            var frags = clip.fragments
            frags.swapAt(1, 3)  // fragments 2 and 4
            try withEvScratch { dir in
                let r = Verifier.verify(path: try clip.write(to: dir, media: clip.initSegment + frags.flatMap { $0 }))
                #expect(!r.verified)
                #expect(r.problems.first?.hasPrefix("fragment 2 at 1.250 s: ") == true, "\(r.problems)")
                #expect(r.mediaTime == 1.25)
            }
        }
    }

    @Test func fragmentFromAnotherClipIsNamed() throws {
        let clip = try SyntheticClip.make()
        let other = try SyntheticClip.make(sequence: 2, seed: 42)  // same device, same sizes, another clip
        try withEvScratch { dir in
            // The other clip verifies on its own…
            #expect(Verifier.verify(path: try other.write(to: dir)).verified)
            // …but its fragment 3 spliced into this clip is found.
            var frags = clip.fragments
            frags[2] = other.fragments[2]
            let r = Verifier.verify(path: try clip.write(to: dir, media: clip.initSegment + frags.flatMap { $0 }))
            #expect(!r.verified)
            #expect(r.problems.first?.hasPrefix("fragment 3 at 2.500 s: ") == true)
            #expect(r.mediaTime == 2.5)
        }
    }

    @Test(arguments: [1, 7, 4096])
    func appendedBytesAreReported(count: Int) throws {
        let clip = try SyntheticClip.make()
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: clip.media + [UInt8](repeating: 0, count: count)))
            #expect(!r.verified)
            #expect(r.problems == ["\(count) bytes after the last fragment that no journal entry covers (appended)"])
        }
    }

    @Test func appendedFragmentOfAnotherClipIsReported() throws {
        let clip = try SyntheticClip.make()
        let other = try SyntheticClip.make(sequence: 2, seed: 42)
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: clip.media + other.fragments[0]))
            #expect(!r.verified)
            #expect(r.problems.first?.contains("appended") == true)
        }
    }

    @Test func extraBytesAfterAnInterruptedClipAreAWarning() throws {
        let clip = try SyntheticClip.make(interrupted: true)
        try withEvScratch { dir in
            let clean = Verifier.verify(path: try clip.write(to: dir))
            #expect(clean.verified)
            #expect(clean.warnings == ["interrupted at 6.250 s (power-loss)"])
            let r = Verifier.verify(path: try clip.write(to: dir, media: clip.media + [1, 2, 3]))
            #expect(r.verified)
            #expect(r.problems.isEmpty)
            #expect(r.warnings.contains("3 bytes after the last journaled fragment (written as the power went; not covered)"))
            #expect(r.warnings.count == 2)
            // Bytes within the journaled part are still checked.
            let bad = Verifier.verify(path: try clip.write(to: dir, media: flipped(clip.media, at: clip.offset(ofFragment: 5)) + [1]))
            #expect(!bad.verified)
            #expect(bad.problems.first?.hasPrefix("fragment 5 at 5.000 s") == true)
        }
    }

    @Test func truncatedClipNamesTheMissingFragment() throws {
        let clip = try SyntheticClip.make()
        try withEvScratch { dir in
            for (cut, k) in [(clip.media.count - 1, 5), (clip.offset(ofFragment: 4) + 10, 4), (clip.offset(ofFragment: 5), 5)] {
                let r = Verifier.verify(path: try clip.write(to: dir, media: Array(clip.media[..<cut])))
                #expect(!r.verified)
                #expect(r.problems.first == "fragment \(k) at \(JournalCheck.seconds(SyntheticClip.mediaTime(ofFragment: k))): missing (the file ends at byte \(cut))")
                #expect(r.mediaTime == SyntheticClip.mediaTime(ofFragment: k))
            }
            let empty = Verifier.verify(path: try clip.write(to: dir, media: []))
            #expect(!empty.verified)
            #expect(empty.problems.first?.hasPrefix("init segment: missing") == true)
        }
    }

    @Test func missingOrAlteredManifestFails() throws {
        let clip = try SyntheticClip.make()
        try withEvScratch { dir in
            try evWrite(dir + "/" + clip.mediaName, clip.media)
            let missing = Verifier.verify(path: dir + "/" + clip.mediaName)
            #expect(!missing.verified)
            #expect(missing.problems.first?.contains("not found") == true)

            var m = clip.manifest
            m.duration = 600  // not re-signed
            let altered = Verifier.verify(path: try clip.write(to: dir, manifest: m))
            #expect(!altered.verified)
            #expect(altered.problems.first == "manifest: signature does not verify")
        }
    }

    enum ListChange: String, CaseIterable, Sendable { case dropLast, dropMiddle, swap, hash, mediaTime, extra }

    @Test(arguments: ListChange.allCases)
    func fragmentListDifferingFromTheJournalFails(_ change: ListChange) throws {
        let clip = try SyntheticClip.make()
        var m = clip.manifest
        var media = clip.media
        switch change {
        case .dropLast:
            m.fragments.removeLast()
            media = Array(media[..<clip.offset(ofFragment: 5)])
        case .dropMiddle: m.fragments.remove(at: 2)
        case .swap: m.fragments.swapAt(1, 2)
        case .hash:
            // The manifest's list names other bytes for fragment 3, and the file holds them.
            let other = try SyntheticClip.make(sequence: 2, seed: 42)
            m.fragments[2].sha256 = evSHA(other.fragments[2])
            var frags = clip.fragments
            frags[2] = other.fragments[2]
            media = clip.initSegment + frags.flatMap { $0 }
        case .mediaTime: m.fragments[3].mediaTime = 4.0
        case .extra:
            let extra = [UInt8](repeating: 7, count: 100)
            m.fragments.append(.init(index: 6, offset: clip.media.count, size: 100, sha256: evSHA(extra), mediaTime: 6.25, duration: 1.25, videoFrames: 1, audioPackets: 1))
            media += extra
        }
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)  // a validly signed manifest…
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(m)).problems.isEmpty)
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: media, manifest: m))
            #expect(!r.verified)  // …whose readable list is not what the journal signed
            #expect(r.problems == ["manifest: fragment list differs from the signed journal"])
            let manifestOnly = Verifier.verify(path: dir + "/" + clip.manifestName)
            #expect(!manifestOnly.verified)
        }
    }

    @Test func initSegmentDifferingFromTheJournalFails() throws {
        // The init segment (codec setup, timescales) is as much evidence as the fragments: a
        // manifest that names another one than its journal must not verify.
        let clip = try SyntheticClip.make()
        let other = try SyntheticClip.make(sequence: 2, seed: 42)
        var m = clip.manifest
        var otherInit = other.initSegment
        otherInit[otherInit.count - 1] ^= 1
        m.initSegment.sha256 = evSHA(otherInit)
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        try withEvScratch { dir in
            let media = otherInit + clip.fragments.flatMap { $0 }
            let r = Verifier.verify(path: try clip.write(to: dir, media: media, manifest: m))
            #expect(!r.verified)
            #expect(r.problems.first?.contains("init segment") == true)
        }
    }

    @Test func journalEntryAlteredInsideAResignedManifestNamesTheFragment() throws {
        let clip = try SyntheticClip.make()
        let other = try SyntheticClip.make(sequence: 2, seed: 42)
        var m = clip.manifest
        let p = try #require(m.journal.firstIndex { $0.fragment?.index == 4 })
        m.journal[p].fragment!.sha256 = evSHA(other.fragments[3])
        m.fragments[3].sha256 = evSHA(other.fragments[3])
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        var frags = clip.fragments
        frags[3] = other.fragments[3]
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: clip.initSegment + frags.flatMap { $0 }, manifest: m))
            #expect(!r.verified)
            #expect(r.problems.first == "journal entry \(p) (fragment 4 at 3.750 s): signature does not verify")
            #expect(r.mediaTime == 3.75)
        }
    }

    @Test func pinnedKeyDecidesWhichDeviceRecorded() throws {
        let impostor = try SyntheticClip.make(identity: EvKeys.deviceB)  // a whole clip by another device
        try withEvScratch { dir in
            let path = try impostor.write(to: dir)
            #expect(Verifier.verify(path: path).verified)  // consistent in itself
            #expect(Verifier.verify(path: path).deviceKey == EvKeys.deviceB.publicKey.fingerprint)
            let pinned = Verifier.verify(path: path, pinned: EvKeys.deviceA.publicKey)
            #expect(!pinned.verified)
            #expect(pinned.problems.first == "manifest: signed by device key \(EvKeys.deviceB.publicKey.fingerprint), expected \(EvKeys.deviceA.publicKey.fingerprint)")
        }
    }

    @Test func exportNamedLikeAClipVerifiesAgainstItsManifest() throws {
        // `bodycam export` writes X.mp4 beside X.json: the same check as an unsealed clip.
        #expect(Verifier.manifestPath(for: "/a/b/C-1.mp4.age") == "/a/b/C-1.json")
        #expect(Verifier.manifestPath(for: "/a/b/C-1.mp4") == "/a/b/C-1.json")
        let clip = try SyntheticClip.make(fragmentSizes: [70_000, 3, 65_536, 1])
        try withEvScratch { dir in
            #expect(Verifier.verify(path: try clip.write(to: dir)).verified)
            let r = Verifier.verify(path: try clip.write(to: dir, media: flipped(clip.media, at: clip.offset(ofFragment: 2) + 2)))
            #expect(r.problems.first?.hasPrefix("fragment 2 at 1.250 s") == true)
        }
    }
}

// MARK: - Sealed clips, checked without any key that opens them

@Suite struct VerifierSealedTests {
    static let agency = AgeIdentity.generate()
    /// Init 300 bytes + 8 × 40 000: four whole 64 KiB chunks and a final one.
    static let sizes = [Int](repeating: 40_000, count: 8)

    func sealedClip() throws -> SyntheticClip {
        try SyntheticClip.make(fragmentSizes: Self.sizes, recipient: Self.agency.recipient)
    }

    @Test func sealedClipIsARealAgeFileAndVerifies() throws {
        let clip = try sealedClip()
        let sealed = try #require(clip.manifest.sealed)
        #expect(sealed.chunks.count == 5)
        #expect(sealed.finalChunk)
        #expect(clip.media.count == sealed.headerSize + 4 * SealInfo.chunkCiphertext + (clip.plaintext.count - 4 * SealInfo.chunkPlaintext) + 16)
        #expect(sealed.size == clip.media.count)
        // Every non-final chunk journaled once, in order, with the fragment that completed it.
        let journaled = clip.manifest.journal.compactMap(\.seal).flatMap(\.chunks)
        #expect(journaled.map(\.index) == [0, 1, 2, 3])
        #expect(journaled.map(\.sha256) == Array(sealed.chunks.prefix(4)))
        // The fixture is the real thing: the agency's identity opens it to the plaintext.
        let opened = try AgeStreamReader(bytes: clip.media, identities: [Self.agency]).decryptAll()
        #expect(opened.isComplete)
        #expect(opened.plaintext == clip.plaintext)
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir))
            #expect(r.kind == "sealed clip")
            #expect(r.verified, "\(r.problems)")
            #expect(r.problems.isEmpty && r.warnings.isEmpty)
            #expect(r.fragments == 8)
            #expect(r.deviceKey == EvKeys.deviceA.publicKey.fingerprint)
        }
    }

    @Test(arguments: 0..<5)
    func flippedByteInChunkNamesTheChunkAndItsMediaTime(chunk k: Int) throws {
        let clip = try sealedClip()
        let sealed = try #require(clip.manifest.sealed)
        let start = sealed.headerSize + k * SealInfo.chunkCiphertext
        let end = min(start + SealInfo.chunkCiphertext, clip.media.count)
        let (name, t) = clip.holder(ofPlaintext: k * SealInfo.chunkPlaintext)
        try withEvScratch { dir in
            for at in [start, start + 1000, end - 17, end - 1] {  // ciphertext and tag
                let r = Verifier.verify(path: try clip.write(to: dir, media: flipped(clip.media, at: at)))
                #expect(!r.verified)
                #expect(r.problems == ["chunk \(k) (bytes \(start)–\(end), \(name)) does not match the manifest"])
                #expect(r.mediaTime == t)
            }
        }
    }

    @Test func chunkMediaTimesAreThoseOfTheFragmentsTheyStartIn() throws {
        // Independent arithmetic: init 300 bytes, fragments of 40 000 at 1.25 s spacing.
        let clip = try sealedClip()
        #expect(clip.initSegment.count == 300)
        #expect(clip.holder(ofPlaintext: 0).0 == "init segment")
        #expect(clip.holder(ofPlaintext: 65_536).0 == "fragment 2 at 1.250 s")  // 300 + 40 000 ≤ 65 536 < 80 300
        #expect(clip.holder(ofPlaintext: 131_072).0 == "fragment 4 at 3.750 s")
        #expect(clip.holder(ofPlaintext: 196_608).0 == "fragment 5 at 5.000 s")
        #expect(clip.holder(ofPlaintext: 262_144).0 == "fragment 7 at 7.500 s")
    }

    @Test func flippedByteInAgeHeaderIsReported() throws {
        let clip = try sealedClip()
        let h = try #require(clip.manifest.sealed).headerSize
        try withEvScratch { dir in
            for at in [0, 10, h - 17, h - 1] {  // header text and payload nonce
                let r = Verifier.verify(path: try clip.write(to: dir, media: flipped(clip.media, at: at)))
                #expect(!r.verified)
                #expect(r.problems == ["age header (bytes 0–\(h)) does not match the manifest"])
                #expect(r.mediaTime == 0)
            }
        }
    }

    @Test func truncatedSealedClipIsReported() throws {
        let clip = try sealedClip()
        let sealed = try #require(clip.manifest.sealed)
        let size = clip.media.count
        let chunk = { (i: Int) in sealed.headerSize + i * SealInfo.chunkCiphertext }
        try withEvScratch { dir in
            for cut in [size - 1, chunk(4), chunk(2) + 5000, chunk(1), chunk(0) + 1, 10, 0] {
                let r = Verifier.verify(path: try clip.write(to: dir, media: Array(clip.media[..<cut])))
                #expect(!r.verified)
                #expect(r.problems == ["\(dir)/\(clip.mediaName): \(cut) bytes, the manifest says \(size) (missing \(size - cut) bytes at the end)"])
                // The media time where the first incomplete chunk starts.
                let firstCut = max(0, cut - sealed.headerSize) / SealInfo.chunkCiphertext
                #expect(r.mediaTime == clip.holder(ofPlaintext: firstCut * SealInfo.chunkPlaintext).1, "cut at \(cut)")
            }
        }
    }

    @Test func appendedBytesToASealedClipAreReported() throws {
        let clip = try sealedClip()
        let size = clip.media.count
        try withEvScratch { dir in
            for extra: [UInt8] in [[0], Array(clip.media[(clip.media.count - 100)...])] {
                let r = Verifier.verify(path: try clip.write(to: dir, media: clip.media + extra))
                #expect(!r.verified)
                #expect(r.problems == ["\(dir)/\(clip.mediaName): \(size + extra.count) bytes, the manifest says \(size) (\(extra.count) bytes appended)"])
            }
        }
    }

    @Test func swappedChunksAreReported() throws {
        let clip = try sealedClip()
        let sealed = try #require(clip.manifest.sealed)
        let c = { (i: Int) in sealed.headerSize + i * SealInfo.chunkCiphertext }
        var media = clip.media
        let one = Array(media[c(1)..<c(2)])
        let three = Array(media[c(3)..<c(4)])
        media.replaceSubrange(c(1)..<c(2), with: three)
        media.replaceSubrange(c(3)..<c(4), with: one)
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: media))
            #expect(!r.verified)
            #expect(r.problems == ["chunk 1 (bytes \(c(1))–\(c(2)), fragment 2 at 1.250 s) does not match the manifest"])
            #expect(r.mediaTime == 1.25)
        }
    }

    @Test func chunkFromAnotherSealedClipIsReported() throws {
        let clip = try sealedClip()
        let other = try SyntheticClip.make(sequence: 2, fragmentSizes: Self.sizes, seed: 5, recipient: Self.agency.recipient)
        let h = clip.manifest.sealed!.headerSize
        #expect(other.manifest.sealed!.headerSize == h)
        let c = { (i: Int) in h + i * SealInfo.chunkCiphertext }
        var media = clip.media
        media.replaceSubrange(c(2)..<c(3), with: other.media[c(2)..<c(3)])
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: media))
            #expect(r.problems.first?.hasPrefix("chunk 2 (") == true)
            #expect(r.mediaTime == 3.75)
        }
    }

    @Test func manifestChunkListDifferingFromTheJournalFails() throws {
        let clip = try sealedClip()
        // A chunk hash swapped for another (file to match), manifest re-signed by the device key.
        var m = clip.manifest
        m.sealed!.chunks.swapAt(1, 2)
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        let h = m.sealed!.headerSize
        let c = { (i: Int) in h + i * SealInfo.chunkCiphertext }
        var media = clip.media
        let one = Array(media[c(1)..<c(2)])
        media.replaceSubrange(c(1)..<c(2), with: media[c(2)..<c(3)])
        media.replaceSubrange(c(2)..<c(3), with: one)
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: media, manifest: m))
            #expect(!r.verified)
            #expect(r.problems == ["manifest: chunk 1 differs from the signed journal"])
        }
    }

    @Test func manifestListingAChunkTheJournalNeverRecordedFails() throws {
        // Four journaled non-final chunks, but the manifest lists five before the final one (and
        // the file holds five): the extra 64 KiB are covered by no journal entry.
        let clip = try sealedClip()
        var m = clip.manifest
        let other = try SyntheticClip.make(sequence: 2, fragmentSizes: Self.sizes, seed: 5, recipient: Self.agency.recipient)
        let h = m.sealed!.headerSize
        let c = { (i: Int) in h + i * SealInfo.chunkCiphertext }
        let extra = Array(other.media[c(3)..<c(4)])
        m.sealed!.chunks.insert(evSHA(extra), at: 4)
        m.sealed!.size += extra.count
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        var media = clip.media
        media.insert(contentsOf: extra, at: c(4))
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, media: media, manifest: m))
            #expect(!r.verified)
            #expect(r.problems.first?.contains("differs from the signed journal") == true, "\(r.problems)")
        }
    }

    @Test func plainManifestForASealedPathFails() throws {
        let plain = try SyntheticClip.make()
        try withEvScratch { dir in
            try evWrite(dir + "/" + plain.manifestName, try Canonical.prettyBytes(plain.manifest))
            try evWrite(dir + "/" + plain.clipID + ".mp4.age", plain.media)
            let r = Verifier.verify(path: dir + "/" + plain.clipID + ".mp4.age")
            #expect(!r.verified)
            #expect(r.problems == ["manifest describes a clip that is not sealed"])
        }
    }
}

// MARK: - Hostile manifests: a report, never a crash

/// A manifest changed by `change`, with its journal made to agree (fragments, init range) and
/// everything re-signed by `identity`: self-consistent, as a forger would make it.
func forged(_ clip: SyntheticClip, identity: DeviceIdentity = EvKeys.deviceB, _ change: (inout ClipManifest) -> Void) throws -> ClipManifest {
    var m = clip.manifest
    change(&m)
    var chain = JournalChain(identity: identity)
    var k = 0
    for i in m.journal.indices {
        if m.journal[i].type == "init" { m.journal[i].range = m.initSegment }
        if m.journal[i].fragment != nil {
            m.journal[i].fragment = k < m.fragments.count ? m.fragments[k] : nil
            k += 1
        }
        _ = try chain.sign(&m.journal[i])
    }
    try ManifestSeal.sign(&m, identity: identity)
    return m
}

@Suite struct VerifierHostileManifestTests {
    enum Plain: String, CaseIterable, Sendable {
        case initHuge, initNegative, fragmentHuge, fragmentNegative, offsetNegative, absurdTimes
    }

    @Test(arguments: Plain.allCases)
    func hostilePlainManifestIsReported(_ c: Plain) throws {
        let clip = try SyntheticClip.make()
        let m = try forged(clip) { m in
            switch c {
            case .initHuge: m.initSegment.size = Int.max
            case .initNegative: m.initSegment.size = -1
            case .fragmentHuge: m.fragments[2].size = Int.max
            case .fragmentNegative: m.fragments[2].size = -300
            case .offsetNegative: m.fragments[0].offset = Int.min
            case .absurdTimes:
                m.interrupted = true
                m.fragments[4].mediaTime = 1e300
                m.fragments[4].duration = 1e300
                m.fragments[4].sha256 = String(repeating: "0", count: 64)
            }
        }
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(m)).problems.isEmpty)  // consistent in itself
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, manifest: m))
            #expect(!r.verified)
            #expect(!r.problems.isEmpty)
            #expect(!Verifier.verify(path: dir + "/" + clip.manifestName, pinned: EvKeys.deviceA.publicKey).verified)
        }
    }

    enum Sealed: String, CaseIterable, Sendable {
        case headerNegative, headerHuge, headerMin, headerBeyondFile, sizeHuge, sizeMin, noChunks, fewerChunks, moreChunks
    }

    @Test(arguments: Sealed.allCases)
    func hostileSealedManifestIsReported(_ c: Sealed) throws {
        let clip = try SyntheticClip.make(fragmentSizes: [40_000, 40_000, 40_000], recipient: VerifierSealedTests.agency.recipient)
        let m = try forged(clip) { m in
            switch c {
            case .headerNegative: m.sealed!.headerSize = -1
            case .headerHuge: m.sealed!.headerSize = Int.max
            case .headerBeyondFile: m.sealed!.headerSize = clip.media.count + 10
            case .sizeHuge: m.sealed!.size = Int.max
            case .sizeMin: m.sealed!.size = Int.min
            case .noChunks: m.sealed!.chunks = []
            case .headerMin: m.sealed!.headerSize = Int.min
            case .fewerChunks: m.sealed!.chunks.removeFirst()
            case .moreChunks: m.sealed!.chunks += [evSHA([1]), evSHA([2])]
            }
        }
        try withEvScratch { dir in
            let r = Verifier.verify(path: try clip.write(to: dir, manifest: m))
            #expect(!r.verified, "\(r)")
            #expect(!r.problems.isEmpty)
        }
    }
}

extension VerifierSealedTests {
    @Test func bytesAfterTheLastListedChunkAreNotPassedOver() throws {
        // A manifest (signed by the device key) that leaves the final chunk out of its list but
        // counts it in the size: the final chunk's bytes would be checked against nothing.
        let clip = try sealedClip()
        var m = clip.manifest
        let finalHash = m.sealed!.chunks.removeLast()
        m.sealed!.finalChunk = false
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        let start = m.sealed!.headerSize + 4 * SealInfo.chunkCiphertext
        try withEvScratch { dir in
            var media = clip.media
            media[media.count - 5] ^= 1  // and the unlisted chunk was altered
            #expect(evSHA(media[start...]) != finalHash)
            let r = Verifier.verify(path: try clip.write(to: dir, media: media, manifest: m))
            #expect(!r.verified)
            #expect(r.problems == ["bytes \(start)–\(media.count) are covered by no chunk hash in the manifest"])
            #expect(r.mediaTime == 7.5)
        }
    }
}
