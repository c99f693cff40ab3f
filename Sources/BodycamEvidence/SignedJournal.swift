public import BodycamCore
public import Crypto
public import Foundation

/// Writes a clip's journal entries: numbered, chained to the previous entry by hash, signed.
///
/// An entry's hash is SHA-256 of its canonical JSON without `sig`; `sig` is the device's Ed25519
/// signature over that hash; the next entry carries it in `prev`. Each entry goes to storage
/// (and is synced) together with the media it describes, so the journal on disk is always a
/// signed account of what the file holds.
public struct JournalChain: Sendable {
    public let identity: DeviceIdentity
    public private(set) var nextSeq = 0
    public private(set) var lastHash = ""

    public init(identity: DeviceIdentity) { self.identity = identity }

    /// Numbers, chains and signs `entry`; returns its canonical line (without newline).
    public mutating func sign(_ entry: inout JournalEntry) throws -> Data {
        entry.seq = nextSeq
        entry.prev = lastHash
        entry.sig = nil
        let unsigned = try Canonical.bytes(entry)
        let hash = SHA256.hash(data: unsigned)
        entry.sig = identity.sign(Data(hash))
        nextSeq += 1
        lastHash = Hex.string(hash)
        return try Canonical.bytes(entry)
    }
}

/// A problem found while checking a journal, a manifest, a clip or an audit log.
public struct EvidenceProblem: Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, naming the place: "journal entry 7 (fragment 6, media time 5.00 s): signature does not verify".
    public var message: String
    /// Media time (seconds) the problem concerns, when there is one.
    public var mediaTime: Double?
    /// The journal entry (or log line, or fragment) it concerns, when there is one.
    public var index: Int?

    public init(_ message: String, mediaTime: Double? = nil, index: Int? = nil) {
        self.message = message
        self.mediaTime = mediaTime
        self.index = index
    }

    public var description: String { message }
}

public enum JournalCheck {
    /// "fragment 6 at 5.00 s" style description of an entry, for messages.
    public static func describe(_ e: JournalEntry) -> String {
        switch e.type {
        case "fragment":
            if let f = e.fragment { return "fragment \(f.index) at \(seconds(f.mediaTime))" }
        case "marker":
            if let m = e.marker { return "marker at \(seconds(m.mediaTime))" }
        case "video_gap", "audio_gap":
            if let g = e.gap { return "\(e.type == "video_gap" ? "video" : "audio") gap at \(seconds(g.start))" }
        case "init": return "init segment"
        case "clip": return "clip header"
        default: break
        }
        return e.type
    }

    static func seconds(_ t: Double) -> String {
        // Times come from files being checked: huge or negative ones must not trap.
        guard t.isFinite, abs(t) < 1e12 else { return "\(t) s" }
        let ms = Int((abs(t) * 1000).rounded())
        let sign = t < 0 && ms > 0 ? "-" : ""
        return "\(sign)\(ms / 1000).\(String(repeating: "0", count: 3 - String(ms % 1000).count))\(ms % 1000) s"
    }

    /// Checks numbering, the hash chain and every signature. Returns the problems, first one first.
    public static func verify(_ entries: [JournalEntry], key: DevicePublicKey, clipID: String) -> [EvidenceProblem] {
        var problems: [EvidenceProblem] = []
        var prev = ""
        for (i, var e) in entries.enumerated() {
            let what = "journal entry \(i) (\(describe(e)))"
            let time = e.fragment?.mediaTime ?? e.marker?.mediaTime ?? e.gap?.start
            if e.seq != i { problems.append(EvidenceProblem("\(what): numbered \(e.seq), expected \(i) (entries removed or reordered)", mediaTime: time, index: i)) }
            if e.clipId != clipID { problems.append(EvidenceProblem("\(what): belongs to clip \(e.clipId), not \(clipID) (spliced in)", mediaTime: time, index: i)) }
            if e.prev != prev { problems.append(EvidenceProblem("\(what): does not follow the entry before it (chain broken)", mediaTime: time, index: i)) }
            guard let sig = e.sig else {
                problems.append(EvidenceProblem("\(what): not signed", mediaTime: time, index: i))
                continue
            }
            e.sig = nil
            guard let unsigned = try? Canonical.bytes(e) else {
                problems.append(EvidenceProblem("\(what): cannot be encoded", mediaTime: time, index: i))
                continue
            }
            let hash = SHA256.hash(data: unsigned)
            if !key.verify(signature: sig, of: Data(hash)) {
                problems.append(EvidenceProblem("\(what): signature does not verify", mediaTime: time, index: i))
            }
            prev = Hex.string(hash)
            if problems.count > 20 { break }
        }
        return problems
    }
}

/// Signs and checks manifests.
public enum ManifestSeal {
    /// Sets `signature`: Ed25519 over SHA-256 of the pretty canonical JSON without it.
    public static func sign(_ m: inout ClipManifest, identity: DeviceIdentity) throws {
        m.devicePublicKey = identity.publicKey.string
        m.signature = nil
        let hash = SHA256.hash(data: try Canonical.prettyBytes(m))
        m.signature = identity.sign(Data(hash))
    }

    /// Parses a manifest file and checks it is exactly what the device wrote: canonical bytes
    /// (any changed byte, even whitespace, shows), a valid signature by the key it names (or by
    /// `pinned`, if given), and a journal whose chain and signatures hold.
    public static func verify(_ data: Data, pinned: DevicePublicKey? = nil) -> (manifest: ClipManifest?, key: DevicePublicKey?, problems: [EvidenceProblem]) {
        guard let m = try? Canonical.decoder().decode(ClipManifest.self, from: data) else {
            return (nil, nil, [EvidenceProblem("manifest: not a bodycam manifest (unreadable JSON or missing fields)")])
        }
        var problems: [EvidenceProblem] = []
        if let again = try? Canonical.prettyBytes(m), again != data {
            let at = zip(again, data).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(again.count, data.count)
            problems.append(EvidenceProblem("manifest: altered (differs from its canonical form at byte \(at))"))
        }
        guard let keyString = m.devicePublicKey, let key = DevicePublicKey(string: keyString) else {
            return (m, nil, problems + [EvidenceProblem("manifest: no device public key")])
        }
        if let pinned, pinned != key {
            problems.append(EvidenceProblem("manifest: signed by device key \(key.fingerprint), expected \(pinned.fingerprint)"))
        }
        var unsigned = m
        unsigned.signature = nil
        if let sig = m.signature, let bytes = try? Canonical.prettyBytes(unsigned) {
            if !key.verify(signature: sig, of: Data(SHA256.hash(data: bytes))) {
                problems.append(EvidenceProblem("manifest: signature does not verify"))
            }
        } else {
            problems.append(EvidenceProblem("manifest: not signed"))
        }
        problems += JournalCheck.verify(m.journal, key: key, clipID: m.clipId)
        return (m, key, problems)
    }
}
