import BodycamCore
import Crypto
import Foundation
import Testing

@testable import BodycamEvidence

@Suite struct ManifestSealTests {
    let a = EvKeys.deviceA.publicKey
    let b = EvKeys.deviceB.publicKey

    /// A small but complete manifest: clip header, init segment, two fragments and a marker.
    func smallManifest() throws -> (ClipManifest, Data) {
        let clip = try SyntheticClip.make(fragmentSizes: [10, 20])
        return (clip.manifest, try Canonical.prettyBytes(clip.manifest))
    }

    @Test func signedManifestVerifies() throws {
        let (m, data) = try smallManifest()
        let (parsed, key, problems) = ManifestSeal.verify(data)
        #expect(problems.isEmpty)
        #expect(parsed == m)
        #expect(key == a)
        #expect(ManifestSeal.verify(data, pinned: a).problems.isEmpty)
        #expect(m.devicePublicKey == a.string)
        #expect(data.last == 0x0a)
        // The signature is over SHA-256 of the pretty canonical form without it.
        var unsigned = m
        unsigned.signature = nil
        #expect(a.verify(signature: try #require(m.signature), of: Data(SHA256.hash(data: try Canonical.prettyBytes(unsigned)))))
    }

    /// The smallest manifest worth signing: an init segment and one fragment, journaled.
    func tinyManifest() throws -> Data {
        let initRange = ClipManifest.ByteRange(offset: 0, size: 300, sha256: evSHA([1]))
        var m = ClipManifest(
            clipId: "C-20250102T030405Z-0001", file: "C-20250102T030405Z-0001.mp4", deviceId: "C", board: "sim",
            startUtc: "2025-01-02T03:04:05.000Z", startUnix: 1_735_787_045.5, clockTrusted: false, trigger: "button",
            triggeredAt: 0.25, initSegment: initRange)
        let f = ClipManifest.Fragment(index: 1, offset: 300, size: 12, sha256: evSHA([2]), mediaTime: 0, duration: 1.5, videoFrames: 45, audioPackets: 75)
        var chain = JournalChain(identity: EvKeys.deviceA)
        var e1 = JournalEntry(seq: 0, type: "init", clipId: m.clipId, prev: "")
        e1.range = initRange
        _ = try chain.sign(&e1)
        var e2 = JournalEntry(seq: 0, type: "fragment", clipId: m.clipId, prev: "")
        e2.fragment = f
        _ = try chain.sign(&e2)
        m.fragments = [f]
        m.journal = [e1, e2]
        m.duration = 1.5
        m.interrupted = false
        m.endReason = "button"
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        return try Canonical.prettyBytes(m)
    }

    /// Replacements tried at every byte: all single-bit flips, every JSON whitespace byte and, at
    /// the end of base64 values (where unused bits and padding are), every other base64 character.
    func replacements(for byte: UInt8, inBase64: Bool) -> [UInt8] {
        var out = Set((0..<8).map { byte ^ (1 << $0) })
        out.formUnion(Array(" \n\t\r".utf8))
        if inBase64 { out.formUnion(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".utf8)) }
        out.remove(byte)
        return out.sorted()
    }

    /// Byte ranges of the string values of `"key": "…"` in `data`.
    func valueRanges(of key: String, in data: [UInt8]) -> [Range<Int>] {
        let needle = Array("\"\(key)\" : \"".utf8)
        var out: [Range<Int>] = []
        var i = 0
        while i + needle.count <= data.count {
            if Array(data[i..<(i + needle.count)]) == needle {
                let start = i + needle.count
                var end = start
                while data[end] != 0x22 { end += 1 }
                out.append(start..<end)
                i = end
            } else {
                i += 1
            }
        }
        return out
    }

    @Test func everySingleByteChangeIsFound() throws {
        let data = try tinyManifest()
        let bytes = Array(data)
        #expect(ManifestSeal.verify(data).problems.isEmpty)
        let base64 = (valueRanges(of: "signature", in: bytes) + valueRanges(of: "sig", in: bytes)
            + valueRanges(of: "device_public_key", in: bytes)).map { ($0.upperBound - 4)..<$0.upperBound }
        #expect(base64.count == 1 + 2 + 1)  // manifest; 2 journal entries; key
        // The file has every kind of byte the test means to cover.
        for c in Array(" \n{}[]\":,.0123456789".utf8) { #expect(bytes.contains(c), "no \(Character(UnicodeScalar(c)))") }
        var survivors: [String] = []
        var tried = 0
        for i in bytes.indices {
            let inBase64 = base64.contains { $0.contains(i) }
            for r in replacements(for: bytes[i], inBase64: inBase64) {
                var changed = bytes
                changed[i] = r
                tried += 1
                if ManifestSeal.verify(Data(changed)).problems.isEmpty {
                    let context = String(decoding: bytes[max(0, i - 20)..<min(bytes.count, i + 20)], as: UTF8.self)
                    survivors.append("byte \(i) \(bytes[i]) → \(r) in …\(context)…")
                }
            }
        }
        #expect(tried > bytes.count * 10)
        #expect(survivors.isEmpty, "\(survivors.count) changes verified, e.g. \(survivors.prefix(5))")
    }

    @Test func removedOrInsertedBytesAreFound() throws {
        let (_, data) = try smallManifest()
        let bytes = Array(data)
        var survivors: [Int] = []
        for i in stride(from: 0, to: bytes.count, by: 3) {
            var removed = bytes
            removed.remove(at: i)
            var inserted = bytes
            inserted.insert(0x20, at: i)
            if ManifestSeal.verify(Data(removed)).problems.isEmpty || ManifestSeal.verify(Data(inserted)).problems.isEmpty {
                survivors.append(i)
            }
        }
        #expect(survivors.isEmpty)
        // Without its final newline, or with one more, it is not the file the device wrote.
        #expect(ManifestSeal.verify(Data(bytes.dropLast())).problems.first?.message.hasPrefix("manifest: altered") == true)
        #expect(ManifestSeal.verify(Data(bytes + [0x0a])).problems.first?.message.hasPrefix("manifest: altered") == true)
    }

    @Test func sameContentInAnotherJSONLayoutIsAltered() throws {
        let (m, data) = try smallManifest()
        let compact = try Canonical.bytes(m)
        let r = ManifestSeal.verify(compact)
        #expect(r.manifest == m)  // same content…
        #expect(r.problems.count == 1)  // …and a valid signature, but not the bytes the device wrote
        #expect(r.problems.first?.message == "manifest: altered (differs from its canonical form at byte 1)")
        var crlf = [UInt8]()
        for c in data { if c == 0x0a { crlf.append(0x0d) }; crlf.append(c) }
        #expect(ManifestSeal.verify(Data(crlf)).problems.first?.message.hasPrefix("manifest: altered") == true)
    }

    @Test func everyAlternativeSpellingOfTheSignatureIsRejected() throws {
        // Base64 of 64 bytes leaves 4 bits of the last character unused; a lenient decoder maps 16
        // spellings to the same signature. The file must be the one the device wrote.
        let (m, data) = try smallManifest()
        let sig = try #require(m.signature)
        let text = String(decoding: data, as: UTF8.self)
        var survivors: [String] = []
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
            var chars = Array(sig)
            guard chars[chars.count - 3] != c else { continue }
            chars[chars.count - 3] = c
            let changed = text.replacingOccurrences(of: "\"signature\" : \"\(sig)\"", with: "\"signature\" : \"\(String(chars))\"")
            #expect(changed != text)
            if ManifestSeal.verify(Data(changed.utf8)).problems.isEmpty { survivors.append(String(chars)) }
        }
        #expect(survivors.isEmpty)
    }

    @Test func manifestResignedByAnotherKeyFailsWhenPinned() throws {
        let (m, _) = try smallManifest()
        var resigned = m
        try ManifestSeal.sign(&resigned, identity: EvKeys.deviceB)
        #expect(resigned.devicePublicKey == b.string)
        let data = try Canonical.prettyBytes(resigned)
        let pinned = ManifestSeal.verify(data, pinned: a)
        #expect(pinned.problems.first?.message == "manifest: signed by device key \(b.fingerprint), expected \(a.fingerprint)")
        // Unpinned, the journal (signed by the camera) still gives it away.
        let unpinned = ManifestSeal.verify(data)
        #expect(unpinned.key == b)
        #expect(!unpinned.problems.isEmpty)
        #expect(unpinned.problems.allSatisfy { $0.message.contains("signature does not verify") && $0.index != nil })

        // A whole clip from another device is consistent in itself: only the pin catches it.
        let other = try SyntheticClip.make(identity: EvKeys.deviceB, fragmentSizes: [10, 20])
        let otherData = try Canonical.prettyBytes(other.manifest)
        #expect(ManifestSeal.verify(otherData).problems.isEmpty)
        #expect(ManifestSeal.verify(otherData, pinned: b).problems.isEmpty)
        #expect(ManifestSeal.verify(otherData, pinned: a).problems.map(\.message) == [
            "manifest: signed by device key \(b.fingerprint), expected \(a.fingerprint)"
        ])
    }

    @Test func keyNamedButSignatureByAnotherKeyFails() throws {
        let (m, _) = try smallManifest()
        var forged = m
        forged.signature = nil
        let hash = SHA256.hash(data: try Canonical.prettyBytes(forged))
        forged.signature = EvKeys.deviceB.sign(Data(hash))  // names A, signed by B
        let r = ManifestSeal.verify(try Canonical.prettyBytes(forged))
        #expect(r.problems.map(\.message) == ["manifest: signature does not verify"])
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(forged), pinned: a).problems.map(\.message) == ["manifest: signature does not verify"])
    }

    @Test func unsignedKeylessAndUnreadableManifestsFail() throws {
        let (m, data) = try smallManifest()
        var unsigned = m
        unsigned.signature = nil
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(unsigned)).problems.map(\.message) == ["manifest: not signed"])
        var keyless = m
        keyless.devicePublicKey = nil
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(keyless)).problems.last?.message == "manifest: no device public key")
        var badKey = m
        badKey.devicePublicKey = "ed25519:AAAA"
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(badKey)).problems.last?.message == "manifest: no device public key")
        for junk in [Data(), Data("{}".utf8), Data("null\n".utf8), data.prefix(data.count / 2)] {
            let r = ManifestSeal.verify(junk)
            #expect(r.manifest == nil)
            #expect(r.problems.map(\.message) == ["manifest: not a bodycam manifest (unreadable JSON or missing fields)"])
        }
    }

    @Test func journalProblemsComeBackNamingEntryAndMediaTime() throws {
        let (m, _) = try smallManifest()
        var changed = m
        let p = try #require(changed.journal.firstIndex { $0.fragment?.index == 2 })
        changed.journal.remove(at: p)
        changed.fragments.remove(at: 1)
        try ManifestSeal.sign(&changed, identity: EvKeys.deviceA)
        let r = ManifestSeal.verify(try Canonical.prettyBytes(changed))
        let first = try #require(r.problems.first)
        #expect(first.index == p)
        #expect(first.message.hasPrefix("journal entry \(p) (marker at 1.650 s): numbered \(p + 1), expected \(p)"))
        #expect(first.mediaTime == 1.65)
    }

    @Test func fragmentListDifferingFromJournalFailsInVerifier() throws {
        let (m, _) = try smallManifest()
        var changed = m
        changed.fragments[0].size += 1
        try ManifestSeal.sign(&changed, identity: EvKeys.deviceA)
        #expect(ManifestSeal.verify(try Canonical.prettyBytes(changed)).problems.isEmpty)  // the seal alone holds
        try withEvScratch { dir in
            let path = dir + "/" + changed.clipId + ".json"
            try evWrite(path, try Canonical.prettyBytes(changed))
            let r = Verifier.verify(path: path)
            #expect(r.kind == "manifest")
            #expect(!r.verified)
            #expect(r.problems == ["manifest: fragment list differs from the signed journal"])
            try evWrite(path, try Canonical.prettyBytes(m))
            #expect(Verifier.verify(path: path).verified)
        }
    }
}

/// The device writes a closing manifest from its journal file an entry at a time; the bytes must
/// be exactly the whole-manifest encoding, signed the same way.
@Suite struct ManifestStreamTests {
    /// `m`'s journal given an entry at a time, as the device reads it back from its journal file.
    func stream(_ m: ClipManifest, identity: DeviceIdentity?) throws -> (Data, ClipManifest) {
        var out = Data()
        var calls = 0
        let written = try ManifestStream.write(m, identity: identity, fragmentCount: m.fragments.count, entries: { each in
            calls += 1
            for e in m.journal { try each(e) }
        }, emit: { out.append($0) })
        #expect(calls <= 4)  // twice per list at most
        return (out, written)
    }

    @Test("signed: the same bytes as the whole manifest, for one fragment and for many", arguments: [1, 2, 7, 40])
    func signed(fragments: Int) throws {
        let clip = try SyntheticClip.make(fragmentSizes: (0..<fragments).map { 300 + 37 * $0 })
        let expected = try Canonical.prettyBytes(clip.manifest)
        let (bytes, written) = try stream(clip.manifest, identity: EvKeys.deviceA)
        if bytes != expected, let at = zip(bytes, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            print("DIFF at \(at)\nGOT<<\(String(decoding: bytes[max(0,at-300)..<min(bytes.count,at+200)], as: UTF8.self))>>\nWANT<<\(String(decoding: expected[max(0,at-300)..<min(expected.count,at+200)], as: UTF8.self))>>")
        }
        #expect(bytes == expected)
        #expect(written.signature == clip.manifest.signature)
        #expect(written.journal.isEmpty && written.fragments.isEmpty)
        #expect(ManifestSeal.verify(bytes).problems.isEmpty)
    }

    @Test("sealed clips (chunk list, markers) come out the same too")
    func sealed() throws {
        var clip = try SyntheticClip.make(
            fragmentSizes: [40_000, 70_000, 40_000], recipient: AgeIdentity.generate().recipient)
        clip.manifest.markers = [ClipManifest.Marker(mediaTime: 1.5, kind: "button", utc: nil, score: nil)]
        try ManifestSeal.sign(&clip.manifest, identity: EvKeys.deviceA)
        let (bytes, _) = try stream(clip.manifest, identity: EvKeys.deviceA)
        #expect(bytes == (try Canonical.prettyBytes(clip.manifest)))
    }

    /// A sealed manifest's chunk list as the device keeps it: raw digests.
    func digests(_ m: ClipManifest) throws -> ChunkDigests {
        var d = ChunkDigests()
        for hex in try #require(m.sealed).chunks {
            let bytes = stride(from: 0, to: hex.utf8.count, by: 2).map { i -> UInt8 in
                let a = hex.utf8.index(hex.utf8.startIndex, offsetBy: i)
                return UInt8(String(hex.utf8[a..<hex.utf8.index(a, offsetBy: 2)])!, radix: 16)!
            }
            d.append(bytes)
        }
        return d
    }

    @Test("sealed chunk hashes spliced from raw digests: the same bytes, signed or not", arguments: [[40_000], [70_000], [40_000, 70_000, 400_000]])
    func splicedChunks(sizes: [Int]) throws {
        var clip = try SyntheticClip.make(fragmentSizes: sizes, recipient: AgeIdentity.generate().recipient)
        let chunks = try digests(clip.manifest)
        #expect(chunks.count >= 1 + sizes.reduce(0, +) / 65_536)
        #expect(chunks.hexStrings == clip.manifest.sealed?.chunks)
        for identity in [EvKeys.deviceA, nil] {
            if identity == nil { clip.manifest.signature = nil }
            var out = Data()
            let written = try ManifestStream.write(
                clip.manifest, identity: identity, fragmentCount: clip.manifest.fragments.count, chunks: chunks,
                entries: { each in for e in clip.manifest.journal { try each(e) } }, emit: { out.append($0) })
            #expect(out == (try Canonical.prettyBytes(clip.manifest)))
            #expect(written.sealed?.chunks == [])
            #expect(written.signature == clip.manifest.signature)
        }
        // The skeleton's own chunk list does not matter when the digests are given.
        var skeleton = clip.manifest
        skeleton.sealed?.chunks = ["00"]
        var out = Data()
        try ManifestStream.write(
            skeleton, identity: nil, fragmentCount: skeleton.fragments.count, chunks: chunks,
            entries: { each in for e in skeleton.journal { try each(e) } }, emit: { out.append($0) })
        #expect(out == (try Canonical.prettyBytes(clip.manifest)))
    }

    @Test("unsigned, and a clip without fragments, as the whole encoding")
    func unsignedAndEmpty() throws {
        var m = try SyntheticClip.make(fragmentSizes: [500, 600]).manifest
        m.signature = nil
        #expect(try stream(m, identity: nil).0 == (try Canonical.prettyBytes(m)))

        m.journal = m.journal.filter { $0.fragment == nil }
        m.fragments = []
        try ManifestSeal.sign(&m, identity: EvKeys.deviceA)
        #expect(try stream(m, identity: EvKeys.deviceA).0 == (try Canonical.prettyBytes(m)))
    }

    @Test("an element of a top-level list is indented two levels on every line")
    func element() throws {
        let f = ClipManifest.Fragment(index: 1, offset: 2, size: 3, sha256: "ab", mediaTime: 0.5, duration: 1, videoFrames: 30, audioPackets: 50)
        let text = String(decoding: try ManifestLayout.element(f), as: UTF8.self)
        #expect(text.hasPrefix("    {\n      \""))
        #expect(text.hasSuffix("\n    }"))
        #expect(text.split(separator: "\n").allSatisfy { $0.hasPrefix("    ") })
    }
}
