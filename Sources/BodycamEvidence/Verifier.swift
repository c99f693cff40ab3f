public import BodycamCore
public import Crypto
public import Foundation

/// What `bodycam verify` found for one path.
public struct VerifyReport: Encodable, Sendable {
    public var path: String
    /// "sealed clip", "clip", "manifest", "audit log".
    public var kind: String
    public var verified: Bool
    public var clipId: String?
    public var device: String?
    /// Fingerprint of the device key that signed it.
    public var deviceKey: String?
    public var fragments: Int?
    public var duration: Double?
    /// The first problem, naming the place (fragment, chunk, line) and its media time.
    public var problems: [String] = []
    /// Where the first problem is in the media, seconds from the clip's start.
    public var mediaTime: Double?
    public var warnings: [String] = []
    public var lines: Int?
}

/// Checks clips (sealed or not), exported MP4s, manifests and audit logs, without any key that
/// opens a clip: signatures, the journal's chain, and every byte against its recorded hash.
public enum Verifier {
    public static func verify(path: String, pinned: DevicePublicKey? = nil) -> VerifyReport {
        if path.hasSuffix(".jsonl") || isDirectory(path) { return verifyAudit(path: path, pinned: pinned) }
        if path.hasSuffix(".json") { return verifyManifestOnly(path: path, pinned: pinned) }
        if path.hasSuffix(".mp4.age") { return verifySealed(path: path, pinned: pinned) }
        return verifyPlain(path: path, pinned: pinned)
    }

    static func isDirectory(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
    }

    /// `X.mp4.age` and `X.mp4` have their manifest at `X.json`.
    public static func manifestPath(for media: String) -> String {
        var base = media
        if base.hasSuffix(".age") { base.removeLast(4) }
        if base.hasSuffix(".mp4") { base.removeLast(4) }
        return base + ".json"
    }

    static func loadManifest(_ path: String, pinned: DevicePublicKey?, into r: inout VerifyReport) -> ClipManifest? {
        guard let data = FileManager.default.contents(atPath: path) else {
            r.problems.append("manifest \(path) not found (it travels beside the clip as .json)")
            return nil
        }
        let (m, key, problems) = ManifestSeal.verify(data, pinned: pinned)
        r.clipId = m?.clipId
        r.device = m?.deviceId
        r.deviceKey = key?.fingerprint
        r.fragments = m?.fragments.count
        r.duration = m?.duration
        if let first = problems.first {
            r.problems.append(first.message)
            r.mediaTime = first.mediaTime
        }
        guard let m, problems.isEmpty else { return nil }
        // The readable fragment list must say exactly what the signed journal says.
        let journaled = m.journal.compactMap(\.fragment)
        if journaled != m.fragments {
            r.problems.append("manifest: fragment list differs from the signed journal")
            return nil
        }
        if let range = m.journal.first(where: { $0.type == "init" })?.range, range != m.initSegment {
            r.problems.append("manifest: init segment differs from the signed journal")
            return nil
        }
        if m.interrupted, let last = m.fragments.last {
            r.warnings.append("interrupted at \(JournalCheck.seconds(last.mediaTime + last.duration)) (\(m.endReason))")
        }
        return m
    }

    static func verifyManifestOnly(path: String, pinned: DevicePublicKey?) -> VerifyReport {
        var r = VerifyReport(path: path, kind: "manifest", verified: false)
        r.verified = loadManifest(path, pinned: pinned, into: &r) != nil
        return r
    }

    /// A plaintext MP4 (an unsealed clip, or an export): the init segment and every fragment
    /// hashed against the signed journal.
    static func verifyPlain(path: String, pinned: DevicePublicKey?) -> VerifyReport {
        var r = VerifyReport(path: path, kind: "clip", verified: false)
        guard let m = loadManifest(manifestPath(for: path), pinned: pinned, into: &r) else { return r }
        guard let file = FileHandle(forReadingAtPath: path) else {
            r.problems.append("\(path): cannot be read")
            return r
        }
        defer { try? file.close() }
        let size = Int((try? file.seekToEnd()) ?? 0)
        let ranges: [(String, Int, Int, String, Double?)] =
            [("init segment", m.initSegment.offset, m.initSegment.size, m.initSegment.sha256, nil)]
            + m.fragments.map { ("fragment \($0.index) at \(JournalCheck.seconds($0.mediaTime))", $0.offset, $0.size, $0.sha256, $0.mediaTime) }
        var expectedOffset = 0
        for (what, offset, length, sha, time) in ranges {
            if offset != expectedOffset {
                r.problems.append("\(what): recorded at byte \(offset), expected \(expectedOffset) (journal altered)")
                r.mediaTime = time
                return r
            }
            guard length >= 0 else {
                r.problems.append("\(what): recorded with \(length) bytes (journal altered)")
                r.mediaTime = time
                return r
            }
            // `offset` is `expectedOffset`, within the file: no overflow.
            guard length <= size - offset else {
                r.problems.append("\(what): missing (the file ends at byte \(size))")
                r.mediaTime = time
                return r
            }
            try? file.seek(toOffset: UInt64(offset))
            let bytes = (try? file.read(upToCount: length)) ?? Data()
            if Hex.string(SHA256.hash(data: bytes)) != sha {
                r.problems.append("\(what): bytes \(offset)–\(offset + length) do not match the signed journal")
                r.mediaTime = time
                return r
            }
            expectedOffset = offset + length
        }
        if size > expectedOffset {
            let extra = size - expectedOffset
            if m.interrupted {
                r.warnings.append("\(extra) bytes after the last journaled fragment (written as the power went; not covered)")
            } else {
                r.problems.append("\(extra) bytes after the last fragment that no journal entry covers (appended)")
                return r
            }
        }
        r.verified = true
        return r
    }

    /// A sealed clip, checked without the key: the age header and every ciphertext chunk against
    /// the hashes in the signed manifest, and the sealed tail of an interrupted clip.
    static func verifySealed(path: String, pinned: DevicePublicKey?) -> VerifyReport {
        var r = VerifyReport(path: path, kind: "sealed clip", verified: false)
        guard let m = loadManifest(manifestPath(for: path), pinned: pinned, into: &r) else { return r }
        guard let sealed = m.sealed else {
            r.problems.append("manifest describes a clip that is not sealed")
            return r
        }
        // Every chunk in the manifest must be the one journaled when it was written.
        let journaled = m.journal.compactMap(\.seal).flatMap(\.chunks).sorted { $0.index < $1.index }
        let finalCount = sealed.finalChunk ? sealed.chunks.count - 1 : sealed.chunks.count
        for (i, c) in journaled.enumerated() where i < finalCount && (c.index != i || c.sha256 != sealed.chunks[i]) {
            r.problems.append("manifest: chunk \(i) differs from the signed journal")
            return r
        }
        if journaled.count != finalCount {
            r.problems.append("manifest: \(finalCount) whole chunks, the signed journal records \(journaled.count) (differs from the signed journal)")
            return r
        }
        // Numbers from the file under examination: impossible ones are reported, never computed with.
        guard sealed.headerSize >= 0, sealed.size >= sealed.headerSize else {
            r.problems.append("manifest: impossible sealed layout (header \(sealed.headerSize) bytes, file \(sealed.size) bytes)")
            return r
        }
        guard let file = FileHandle(forReadingAtPath: path) else {
            r.problems.append("\(path): cannot be read")
            return r
        }
        defer { try? file.close() }
        let size = Int((try? file.seekToEnd()) ?? 0)
        if size != sealed.size {
            let what = size < sealed.size ? "missing \(sealed.size - size) bytes at the end" : "\(size - sealed.size) bytes appended"
            r.problems.append("\(path): \(size) bytes, the manifest says \(sealed.size) (\(what))")
            if size < sealed.size { r.mediaTime = mediaTime(atPlaintext: plaintextOffset(ofCipher: size, sealed), m) }
            return r
        }
        try? file.seek(toOffset: 0)
        let header = (try? file.read(upToCount: sealed.headerSize)) ?? Data()
        if Hex.string(SHA256.hash(data: header)) != sealed.headerSha256 {
            r.problems.append("age header (bytes 0–\(sealed.headerSize)) does not match the manifest")
            r.mediaTime = 0
            return r
        }
        var offset = sealed.headerSize
        for (i, sha) in sealed.chunks.enumerated() {
            let length = min(SealInfo.chunkCiphertext, max(0, size - offset))
            let bytes = (try? file.read(upToCount: length)) ?? Data()
            if Hex.string(SHA256.hash(data: bytes)) != sha {
                let plain = i * SealInfo.chunkPlaintext
                let t = mediaTime(atPlaintext: plain, m)
                r.problems.append(
                    "chunk \(i) (bytes \(offset)–\(offset + length), \(fragmentName(atPlaintext: plain, m))) does not match the manifest")
                r.mediaTime = t
                return r
            }
            offset += length
        }
        if offset != size {
            r.problems.append("bytes \(offset)–\(size) are covered by no chunk hash in the manifest")
            r.mediaTime = mediaTime(atPlaintext: plaintextOffset(ofCipher: offset, sealed), m)
            return r
        }
        if let tail = sealed.tail {
            let tailPath = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(tail.file)
            guard let data = FileManager.default.contents(atPath: tailPath) else {
                r.problems.append("sealed tail \(tail.file) missing (the last \(tail.plaintextSize) bytes of the clip)")
                return r
            }
            if Hex.string(SHA256.hash(data: data)) != tail.sha256 {
                r.problems.append("sealed tail \(tail.file) does not match the manifest")
                return r
            }
        }
        r.verified = true
        return r
    }

    static func plaintextOffset(ofCipher offset: Int, _ s: SealInfo) -> Int {
        max(0, (offset - s.headerSize) / SealInfo.chunkCiphertext * SealInfo.chunkPlaintext)
    }

    /// Media time of the fragment holding plaintext byte `offset`.
    static func mediaTime(atPlaintext offset: Int, _ m: ClipManifest) -> Double? {
        m.fragments.last { $0.offset <= offset }?.mediaTime ?? (offset < m.initSegment.size ? 0 : nil)
    }

    static func fragmentName(atPlaintext offset: Int, _ m: ClipManifest) -> String {
        if offset < m.initSegment.size { return "init segment" }
        guard let f = m.fragments.last(where: { $0.offset <= offset }) else { return "after the last fragment" }
        return "fragment \(f.index) at \(JournalCheck.seconds(f.mediaTime))"
    }

    /// An audit-log segment, or a folder of them (checked in order, one chain).
    static func verifyAudit(path: String, pinned: DevicePublicKey?) -> VerifyReport {
        var r = VerifyReport(path: path, kind: "audit log", verified: false)
        let files = isDirectory(path) ? AuditLog.segments(in: path) : [path]
        guard !files.isEmpty else {
            r.problems.append("no audit-log segments in \(path)")
            return r
        }
        guard let key = pinned ?? AuditCheck.announcedKey(in: files[0]) else {
            let name = (files[0] as NSString).lastPathComponent
            r.problems.append(
                "\(name) line 1: altered or unreadable (it names the device key; give --device-key to check the other lines)")
            return r
        }
        r.deviceKey = key.fingerprint
        let report = AuditCheck.verify(files: files, key: key)
        r.lines = report.lines
        r.device = report.devices.sorted().joined(separator: ",")
        r.problems = report.problems.map(\.message)
        r.warnings = report.warnings
        r.verified = report.problems.isEmpty
        return r
    }
}
