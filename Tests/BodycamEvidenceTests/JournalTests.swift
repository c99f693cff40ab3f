import BodycamCore
import Crypto
import Foundation
import Testing

@testable import BodycamEvidence

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Helpers shared by the evidence tests (JournalTests, ManifestSealTests, AuditLogTests, VerifierTests)

struct EvTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs `body` with a fresh folder under the temporary directory, removed afterwards.
func withEvScratch<T>(_ body: (String) throws -> T) throws -> T {
    var template = Array((NSTemporaryDirectory() + "/bodycam-evtest-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else { throw EvTestError("mkdtemp failed: errno \(errno)") }
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Writes `bytes` to `path` with open(2)/write(2) (replacing the file).
func evWrite(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw EvTestError("\(path): open failed, errno \(errno)") }
    defer { close(fd) }
    try bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
        var done = 0
        while done < b.count {
            let n = write(fd, b.baseAddress! + done, b.count - done)
            guard n > 0 else { throw EvTestError("\(path): write failed, errno \(errno)") }
            done += n
        }
    }
}

func evWrite(_ path: String, _ data: Data) throws { try evWrite(path, Array(data)) }

func evRead(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { throw EvTestError("\(path): cannot read") }
    return Array(d)
}

/// Deterministic pseudo-random bytes (SplitMix64), so every fixture is the same on every run.
struct EvRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// Fixed device keys: signatures are deterministic, so every run sees the same bytes.
enum EvKeys {
    static func identity(_ seed: UInt8) -> DeviceIdentity {
        DeviceIdentity(privateKey: try! Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: seed, count: 32)))
    }

    static let deviceA = identity(0xA1)
    static let deviceB = identity(0xB2)
}

func evSHA(_ bytes: some DataProtocol) -> String { Hex.string(SHA256.hash(data: Data(bytes))) }

/// Hash an entry is chained by: SHA-256 of its canonical bytes without `sig`.
func evEntryHash(_ e: JournalEntry) throws -> String {
    var u = e
    u.sig = nil
    return evSHA(try Canonical.bytes(u))
}

/// A small journal as the recorder writes it: clip header, init segment, fragments (1-based,
/// `spacing` seconds apart) with a marker after the second fragment.
struct EvJournal {
    var entries: [JournalEntry]
    var lines: [Data]

    static func make(
        identity: DeviceIdentity = EvKeys.deviceA, clipID: String = "CAM-1-20250102T030405Z-0001", fragments: Int = 5,
        seed: UInt64 = 1, spacing: Double = 1.25
    ) throws -> EvJournal {
        var rnd = EvRandom(seed: seed)
        var chain = JournalChain(identity: identity)
        var out = EvJournal(entries: [], lines: [])
        func add(_ e: JournalEntry) throws {
            var e = e
            out.lines.append(try chain.sign(&e))
            out.entries.append(e)
        }
        var header = JournalEntry(seq: 0, type: "clip", clipId: clipID, prev: "")
        header.header = ClipManifest(
            clipId: clipID, file: clipID + ".mp4", deviceId: "CAM-1", board: "sim", startUtc: "2025-01-02T03:04:05.000Z",
            startUnix: 1_735_787_045.25, clockTrusted: true, trigger: "button", triggeredAt: 0.1,
            initSegment: .init(offset: 0, size: 0, sha256: ""))
        try add(header)
        var initEntry = JournalEntry(seq: 0, type: "init", clipId: clipID, prev: "")
        let initBytes = rnd.bytes(200)
        initEntry.range = .init(offset: 0, size: 200, sha256: evSHA(initBytes))
        try add(initEntry)
        var offset = 200
        for k in 1...fragments {
            let size = 300 + 17 * k
            let bytes = rnd.bytes(size)
            var e = JournalEntry(seq: 0, type: "fragment", clipId: clipID, prev: "")
            e.fragment = .init(
                index: k, offset: offset, size: size, sha256: evSHA(bytes), mediaTime: Double(k - 1) * spacing,
                duration: spacing, videoFrames: 30, audioPackets: 50)
            offset += size
            try add(e)
            if k == 2 {
                var m = JournalEntry(seq: 0, type: "marker", clipId: clipID, prev: "")
                m.marker = .init(mediaTime: 1.0 * spacing + 0.3, kind: "button", utc: "2025-01-02T03:04:06.550Z", score: nil)
                try add(m)
            }
        }
        return out
    }
}

// MARK: - Journal

@Suite struct JournalTests {
    let key = EvKeys.deviceA.publicKey
    let clipID = "CAM-1-20250102T030405Z-0001"

    /// Position in `entries` of the fragment with 1-based `index`.
    func position(ofFragment index: Int, in entries: [JournalEntry]) throws -> Int {
        try #require(entries.firstIndex { $0.fragment?.index == index })
    }

    @Test func signedChainVerifies() throws {
        let j = try EvJournal.make()
        #expect(j.entries.count == 8)
        #expect(JournalCheck.verify(j.entries, key: key, clipID: clipID).isEmpty)
        // Numbered from 0, each chained to the hash of the one before it.
        #expect(j.entries.map(\.seq) == Array(0..<8))
        #expect(j.entries[0].prev == "")
        for i in 1..<j.entries.count { #expect(j.entries[i].prev == (try evEntryHash(j.entries[i - 1]))) }
        // The signature is over the hash of the entry without `sig`.
        for e in j.entries {
            let hash = try #require(evHexBytes(try evEntryHash(e)))
            #expect(key.verify(signature: try #require(e.sig), of: hash))
        }
    }

    @Test func emptyJournalAndWrongClipIDOrKey() throws {
        let j = try EvJournal.make()
        #expect(JournalCheck.verify([], key: key, clipID: clipID).isEmpty)
        let wrongClip = JournalCheck.verify(j.entries, key: key, clipID: "CAM-1-20250102T030405Z-0002")
        #expect(wrongClip.count == j.entries.count)
        #expect(wrongClip.allSatisfy { $0.message.contains("spliced in") })
        let wrongKey = JournalCheck.verify(j.entries, key: EvKeys.deviceB.publicKey, clipID: clipID)
        #expect(wrongKey.map(\.index) == Array(0..<j.entries.count))
        #expect(wrongKey.allSatisfy { $0.message.contains("signature does not verify") })
    }

    @Test(arguments: [1, 2, 3, 4])
    func removedFragmentEntryIsNamed(fragment k: Int) throws {
        var entries = try EvJournal.make().entries
        let p = try position(ofFragment: k, in: entries)
        entries.remove(at: p)
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        let first = try #require(problems.first)
        #expect(first.index == p)
        // The entry now at that place no longer follows on: its number and its chain both say so.
        #expect(first.message.hasPrefix("journal entry \(p) (\(JournalCheck.describe(entries[p])))"))
        #expect(first.message.contains("numbered \(p + 1), expected \(p)"))
        #expect(problems.contains { $0.index == p && $0.message.contains("chain broken") })
        #expect(first.mediaTime == (entries[p].fragment?.mediaTime ?? entries[p].marker?.mediaTime))
    }

    @Test func removingTheLastEntryIsNotVisibleInTheJournalAlone() throws {
        // Documented limit: a journal has no count; the manifest signature is what covers its end.
        var entries = try EvJournal.make().entries
        entries.removeLast()
        #expect(JournalCheck.verify(entries, key: key, clipID: clipID).isEmpty)
    }

    @Test func removedInitEntryIsNamed() throws {
        var entries = try EvJournal.make().entries
        entries.remove(at: 1)
        let first = try #require(JournalCheck.verify(entries, key: key, clipID: clipID).first)
        #expect(first.index == 1)
        #expect(first.message.contains("fragment 1 at 0.000 s"))
        #expect(first.mediaTime == 0)
    }

    @Test func swappedFragmentEntriesAreNamedWithMediaTime() throws {
        var entries = try EvJournal.make().entries
        let p3 = try position(ofFragment: 3, in: entries)
        let p4 = try position(ofFragment: 4, in: entries)
        entries.swapAt(p3, p4)
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        let first = try #require(problems.first)
        #expect(first.index == p3)
        #expect(first.message.contains("fragment 4 at 3.750 s"))
        #expect(first.mediaTime == 3.75)
        #expect(problems.contains { $0.index == p4 && $0.message.contains("fragment 3 at 2.500 s") })
    }

    @Test func fragmentFromAnotherClipOfTheSameDeviceIsSplicedIn() throws {
        var entries = try EvJournal.make().entries
        let other = try EvJournal.make(clipID: "CAM-1-20250102T031000Z-0002", seed: 99).entries
        let p = try position(ofFragment: 3, in: entries)
        entries[p] = other[p]  // same device key, same position, its own valid signature
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        let spliced = try #require(problems.first { $0.message.contains("spliced in") })
        #expect(spliced.index == p)
        #expect(spliced.mediaTime == 2.5)
        #expect(spliced.message.contains("belongs to clip CAM-1-20250102T031000Z-0002"))
        #expect(problems.first?.index == p)
        #expect(!problems.contains { $0.message.contains("signature does not verify") })  // it is genuinely signed
    }

    @Test func spliceWithTheSameClipIDAndContentButAnotherDevice() throws {
        // Another device whose journal has the very same entries (same clip id, same hashes): only
        // the signature can tell them apart, and it must.
        var entries = try EvJournal.make().entries
        let other = try EvJournal.make(identity: EvKeys.deviceB).entries
        let p = try position(ofFragment: 2, in: entries)
        #expect(other[p].prev == entries[p].prev)
        entries[p] = other[p]
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        #expect(problems.count == 1)
        #expect(problems.first?.index == p)
        #expect(problems.first?.mediaTime == 1.25)
        #expect(problems.first?.message == "journal entry \(p) (fragment 2 at 1.250 s): signature does not verify")
    }

    @Test func entryFromAnotherDevicesChainIsReported() throws {
        var entries = try EvJournal.make().entries
        let other = try EvJournal.make(identity: EvKeys.deviceB, seed: 7).entries  // other content, other key
        let p = try position(ofFragment: 4, in: entries)
        entries[p] = other[p]
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        #expect(problems.first?.index == p)
        #expect(problems.first?.mediaTime == 3.75)
        #expect(problems.contains { $0.index == p && $0.message.contains("chain broken") })
        #expect(problems.contains { $0.index == p && $0.message.contains("signature does not verify") })
    }

    enum Change: String, CaseIterable, Sendable {
        case sha256, mediaTime, offset, size, duration, videoFrames, markerTime, initHash, headerDevice, seqKeepingOrder
    }

    @Test(arguments: Change.allCases)
    func changedFieldIsReported(_ change: Change) throws {
        var entries = try EvJournal.make().entries
        let frag = try position(ofFragment: 3, in: entries)
        var p = frag
        switch change {
        case .sha256: entries[p].fragment!.sha256 = String(repeating: "0", count: 64)
        case .mediaTime: entries[p].fragment!.mediaTime += 0.001
        case .offset: entries[p].fragment!.offset += 1
        case .size: entries[p].fragment!.size -= 1
        case .duration: entries[p].fragment!.duration = 2
        case .videoFrames: entries[p].fragment!.videoFrames = 29
        case .markerTime:
            p = try #require(entries.firstIndex { $0.type == "marker" })
            entries[p].marker!.mediaTime = 9
        case .initHash:
            p = 1
            entries[p].range!.sha256 = evSHA([1, 2, 3])
        case .headerDevice:
            p = 0
            entries[p].header!.deviceId = "CAM-2"
        case .seqKeepingOrder:
            entries[p].seq = 100
        }
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        let first = try #require(problems.first)
        #expect(first.index == p)
        #expect(first.message.hasPrefix("journal entry \(p) ("))
        if change != .seqKeepingOrder { #expect(first.message.contains("signature does not verify")) }
        if let t = entries[p].fragment?.mediaTime ?? entries[p].marker?.mediaTime { #expect(first.mediaTime == t) }
        if change == .mediaTime { #expect(first.message.contains("fragment 3 at 2.501 s")) }
        // The entry after it no longer follows on either.
        if p + 1 < entries.count { #expect(problems.contains { $0.index == p + 1 && $0.message.contains("chain broken") }) }
    }

    @Test func missingSignatureIsReported() throws {
        var entries = try EvJournal.make().entries
        let p = try position(ofFragment: 5, in: entries)
        entries[p].sig = nil
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        #expect(problems.count == 1)
        #expect(problems[0].index == p)
        #expect(problems[0].mediaTime == 5.0)
        #expect(problems[0].message == "journal entry \(p) (fragment 5 at 5.000 s): not signed")
    }

    @Test func emptyOrGarbageSignatureIsReported() throws {
        for bad in ["", "AAAA", "not base64!", String(repeating: "A", count: 86) + "=="] {
            var entries = try EvJournal.make().entries
            entries[1].sig = bad
            let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
            #expect(problems.first?.index == 1, "sig \(bad)")
        }
    }

    @Test func signatureFromAnotherKeyIsReported() throws {
        var entries = try EvJournal.make().entries
        let p = try position(ofFragment: 1, in: entries)
        let hash = try #require(evHexBytes(try evEntryHash(entries[p])))
        entries[p].sig = EvKeys.deviceB.sign(hash)
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        #expect(problems.count == 1)
        #expect(problems.first?.index == p)
        #expect(problems.first?.mediaTime == 0)
        #expect(problems.first?.message.contains("signature does not verify") == true)
    }

    @Test func signatureOfAnotherEntryIsReported() throws {
        var entries = try EvJournal.make().entries
        entries[4].sig = entries[3].sig
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        #expect(problems.map(\.index) == [4])
    }

    @Test func reencodedSignatureWithSameBytesIsStillRejected() throws {
        // Base64 leaves 4 unused bits in the last character of a 64-byte signature; a decoder that
        // ignores them would accept 15 other spellings of every signature. Each is a changed byte.
        let j = try EvJournal.make()
        let p = 3
        let sig = try #require(j.entries[p].sig)
        var chars = Array(sig)
        let last = chars.count - 3
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var tried = 0
        for c in alphabet where c != chars[last] {
            chars[last] = c
            var entries = j.entries
            entries[p].sig = String(chars)
            tried += 1
            #expect(JournalCheck.verify(entries, key: key, clipID: clipID).first?.index == p, "sig spelled \(String(chars))")
        }
        #expect(tried == 63)
    }

    @Test func entriesSurviveCanonicalRoundTripByteForByte() throws {
        var j = try EvJournal.make()
        // Awkward numbers too: shortest round-trip Double printing must give back the same bits.
        var chain = JournalChain(identity: EvKeys.deviceA)
        var odd: [JournalEntry] = []
        for (i, t) in [0.1 + 0.2, 1.0 / 3.0, 1e-7, 123_456.789, Double.leastNonzeroMagnitude, 1.7976931348623157e308, -0.0].enumerated() {
            var e = JournalEntry(seq: 0, type: "fragment", clipId: clipID, prev: "")
            e.fragment = .init(index: i + 1, offset: i, size: 1, sha256: evSHA([UInt8(i)]), mediaTime: t, duration: t, videoFrames: 0, audioPackets: 0)
            e.seal = SealCommit(size: 1000 + i, chunks: [ChunkHash(index: i, sha256: evSHA([9]))], tail: SealedTail(file: "x.tail-1.age", sha256: evSHA([8]), size: 3, plaintextSize: 2))
            j.lines.append(try chain.sign(&e))
            odd.append(e)
        }
        var mute = JournalEntry(seq: 0, type: "mute", clipId: clipID, prev: "")
        mute.mute = .init(start: 2.5, end: nil, reason: "button")
        j.lines.append(try chain.sign(&mute))
        odd.append(mute)
        #expect(JournalCheck.verify(odd, key: key, clipID: clipID).isEmpty)
        for (e, line) in zip(j.entries + odd, j.lines) {
            #expect(try Canonical.bytes(e) == line)
            let decoded = try Canonical.decoder().decode(JournalEntry.self, from: line)
            #expect(decoded == e)
            #expect(try Canonical.bytes(decoded) == line)
            // Canonical: no whitespace, snake_case keys.
            #expect(!line.contains(0x0a) && !line.contains(0x20))
            #expect(String(decoding: line, as: UTF8.self).contains("\"clip_id\":"))
        }
        // A decoded journal still verifies.
        let decoded = try j.lines.prefix(j.entries.count).map { try Canonical.decoder().decode(JournalEntry.self, from: $0) }
        #expect(JournalCheck.verify(decoded, key: key, clipID: clipID).isEmpty)
    }

    @Test func describeAndSecondsFormatting() {
        #expect(JournalCheck.seconds(0) == "0.000 s")
        #expect(JournalCheck.seconds(1.25) == "1.250 s")
        #expect(JournalCheck.seconds(12.3456) == "12.346 s")
        #expect(JournalCheck.seconds(59.9999) == "60.000 s")
        #expect(JournalCheck.seconds(3.05) == "3.050 s")
        #expect(JournalCheck.seconds(7.007) == "7.007 s")
        // Times come from the files under examination: odd ones are shown, never trap.
        #expect(JournalCheck.seconds(-1.5) == "-1.500 s")
        #expect(JournalCheck.seconds(-0.25) == "-0.250 s")
        #expect(JournalCheck.seconds(-0.0001) == "0.000 s")
        #expect(JournalCheck.seconds(1e300) == "1e+300 s")
        #expect(JournalCheck.seconds(-1e300) == "-1e+300 s")
        #expect(JournalCheck.seconds(9.3e15) == "9.3e+15 s")
    }

    @Test(arguments: [-2.5, -1e-9, 9.3e15, 1e300, -1e300, 1.7976931348623157e308])
    func forgedEntryWithAnAbsurdMediaTimeIsReportedNotACrash(t: Double) throws {
        // `describe` runs before any signature is checked: anyone can put any number there.
        var entries = try EvJournal.make().entries
        let p = try position(ofFragment: 2, in: entries)
        entries[p].fragment!.mediaTime = t
        let marker = try #require(entries.firstIndex { $0.type == "marker" })
        entries[marker].marker!.mediaTime = t
        let problems = JournalCheck.verify(entries, key: key, clipID: clipID)
        #expect(problems.first?.index == p)
        #expect(problems.first?.mediaTime == t)
        #expect(problems.first?.message.contains("fragment 2 at \(JournalCheck.seconds(t))") == true)
    }
}

/// Bytes of a lower-case hex string.
func evHexBytes(_ hex: String) -> Data? {
    let chars = Array(hex.utf8)
    guard chars.count % 2 == 0 else { return nil }
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
    var out = [UInt8]()
    var i = 0
    while i < chars.count {
        guard let h = v(chars[i]), let l = v(chars[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return Data(out)
}
