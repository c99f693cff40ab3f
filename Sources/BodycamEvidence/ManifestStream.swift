public import BodycamCore
public import Foundation
import Crypto

/// A manifest's pretty canonical bytes, made a piece at a time, so that a long clip's fragment
/// list, journal (a line per second of video, 30 minutes of them at a rollover) and sealed chunk
/// list (one hash per 64 KiB) are never in memory whole: the device keeps the first two in its
/// journal file, the chunk hashes as raw bytes, and the manifest is written from them.
///
/// The bytes are exactly `Canonical.prettyBytes` of the whole manifest. The layout around the
/// lists comes from encoding the manifest once with a single marker element in each list and
/// cutting the encoding at those markers, so the layout always follows the encoder's own.
public struct ManifestLayout: Sendable {
    /// Everything before the first fragment, between the last fragment and the first journal
    /// entry, and after the last journal entry (or after the last chunk hash, when the sealed
    /// chunk list is spliced too).
    public let head: Data
    public let middle: Data
    /// With the chunk list spliced: between the last journal entry and the first chunk hash.
    public let beforeChunks: Data?
    public let tail: Data

    /// The layout of `skeleton`'s encoding; its own `fragments` and `journal` are ignored, and
    /// with `splicingChunks` (a sealed skeleton) its `sealed.chunks` too.
    public init(_ skeleton: ClipManifest, splicingChunks: Bool = false) throws(ManifestStreamError) {
        var m = skeleton
        m.fragments = [Self.fragmentMark]
        m.journal = [Self.entryMark]
        if splicingChunks {
            guard m.sealed != nil else { throw ManifestStreamError("no sealed layout to splice chunk hashes into") }
            m.sealed!.chunks = [Self.chunkMark]
        }
        let chunk = Self.chunkElement(Self.chunkMark)
        guard let all = try? Canonical.prettyBytes(m),
            let f = try? Self.element(Self.fragmentMark), let j = try? Self.element(Self.entryMark),
            let fr = Self.onlyRange(of: f, in: all), let jr = Self.onlyRange(of: j, in: all),
            fr.upperBound <= jr.lowerBound
        else { throw ManifestStreamError("the manifest's layout did not show its fragment and journal lists") }
        head = all.subdata(in: all.startIndex..<fr.lowerBound)
        middle = all.subdata(in: fr.upperBound..<jr.lowerBound)
        if splicingChunks {
            guard let cr = Self.onlyRange(of: chunk, in: all), jr.upperBound <= cr.lowerBound else {
                throw ManifestStreamError("the manifest's layout did not show its sealed chunk list after the journal")
            }
            beforeChunks = all.subdata(in: jr.upperBound..<cr.lowerBound)
            tail = all.subdata(in: cr.upperBound..<all.endIndex)
        } else {
            beforeChunks = nil
            tail = all.subdata(in: jr.upperBound..<all.endIndex)
        }
    }

    /// Between two elements of a list in pretty canonical JSON (the next element brings its indent).
    public static let separator = Data(",\n".utf8)

    /// `value`'s pretty canonical bytes as an element of one of the manifest's top-level lists
    /// (indented two levels).
    public static func element<T: Encodable>(_ value: T) throws -> Data {
        let bytes = try Canonical.encoder(pretty: true).encode(value)
        let indent: [UInt8] = [0x20, 0x20, 0x20, 0x20]
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + bytes.count / 4 + 4)
        out += indent
        // Strings escape their newlines, so every raw newline starts a line of the layout. The
        // encoder leaves the blank line inside an empty list unindented.
        var lineStart = false
        for b in bytes {
            if lineStart && b != 0x0a { out += indent }
            out.append(b)
            lineStart = b == 0x0a
        }
        return Data(out)
    }

    /// A hash as an element of `sealed.chunks` (three levels in). Hex needs no escaping.
    public static func chunkElement(_ hex: String) -> Data {
        var out = Data(capacity: hex.utf8.count + 8)
        out.append(contentsOf: [0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x22])
        out.append(contentsOf: hex.utf8)
        out.append(0x22)
        return out
    }

    private static let markText = "bodycam-manifest-layout-mark-7c1e"
    private static let chunkMark = "bodycam-manifest-layout-chunk-7c1e"
    private static let fragmentMark = ClipManifest.Fragment(
        index: -7, offset: -7, size: -7, sha256: markText, mediaTime: -7, duration: -7, videoFrames: -7, audioPackets: -7)
    private static let entryMark = JournalEntry(seq: -7, type: markText, clipId: markText, prev: markText)

    private static func onlyRange(of needle: Data, in data: Data) -> Range<Data.Index>? {
        guard let r = data.range(of: needle), data.range(of: needle, in: r.upperBound..<data.endIndex) == nil else {
            return nil
        }
        return r
    }
}

/// SHA-256 of each ciphertext chunk of a sealed clip, in order, 32 raw bytes apiece: a 30-minute
/// clip has some 7,500 chunks, and their hex is made only as the manifest is written.
public struct ChunkDigests: Sendable, Equatable {
    private var bytes: [UInt8] = []

    public init() {}

    public var count: Int { bytes.count / 32 }
    public var isEmpty: Bool { bytes.isEmpty }

    /// Appends one 32-byte digest.
    public mutating func append<D: Sequence>(_ digest: D) where D.Element == UInt8 {
        let before = bytes.count
        bytes.append(contentsOf: digest)
        precondition(bytes.count == before + 32, "a chunk digest is 32 bytes")
    }

    /// Chunk `index`'s hash as lower-case hex.
    public func hex(_ index: Int) -> String { Hex.string(bytes[index * 32..<index * 32 + 32]) }

    public var hexStrings: [String] { (0..<count).map(hex) }
}

public struct ManifestStreamError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writes a manifest whose fragments and journal are read from the clip's journal, one entry at
/// a time (`entries` is called once per list, or twice per list when the signature's place needs
/// a separate hashing pass; it must give the same entries in the same order each time, and
/// `fragmentCount` of them must carry a fragment), signed like `ManifestSeal.sign` when there is
/// an identity. For a sealed clip, `chunks` (when given) is the whole `sealed.chunks` list, in
/// place of the skeleton's.
public enum ManifestStream {
    /// Calls `emit` with the manifest's bytes in order and returns the manifest as written,
    /// without its lists (and without the chunk hashes when `chunks` was spliced; the signature
    /// and public key set if signed).
    @discardableResult
    public static func write(
        _ skeleton: ClipManifest, identity: DeviceIdentity?, fragmentCount: Int, chunks: ChunkDigests? = nil,
        entries: (_ each: (JournalEntry) throws -> Void) throws -> Void,
        emit: (Data) throws -> Void
    ) throws -> ClipManifest {
        var m = skeleton
        m.fragments = []
        m.journal = []
        m.signature = nil
        if let identity { m.devicePublicKey = identity.publicKey.string }
        // An empty list is written differently from a list of elements: such a list is spliced
        // only when it has elements.
        var spliced: ChunkDigests?
        if let chunks, m.sealed != nil {
            if chunks.isEmpty || fragmentCount == 0 {
                m.sealed!.chunks = chunks.hexStrings
            } else {
                m.sealed!.chunks = []
                spliced = chunks
            }
        }
        // Such a clip is tiny (and a journal without fragments has no fragment list either).
        if fragmentCount == 0 {
            var whole = m
            try entries { e in
                whole.journal.append(e)
                if let f = e.fragment { whole.fragments.append(f) }
            }
            if let identity { try ManifestSeal.sign(&whole, identity: identity) }
            try emit(try Canonical.prettyBytes(whole))
            whole.fragments = []
            whole.journal = []
            return whole
        }
        let splicing = spliced != nil
        let unsigned = try ManifestLayout(m, splicingChunks: splicing)
        guard let identity else {
            try body(unsigned, entries: entries, chunks: spliced) { try emit($0) }
            try emit(unsigned.tail)
            return m
        }
        // The signature is over the unsigned bytes. Its key sorts after "journal", so what comes
        // before the tail is the same signed or not and is hashed as it is written.
        var probe = m
        probe.signature = String(repeating: "A", count: 88)
        let signedLayout = try ManifestLayout(probe, splicingChunks: splicing)
        var hasher = SHA256()
        if signedLayout.head == unsigned.head && signedLayout.middle == unsigned.middle
            && signedLayout.beforeChunks == unsigned.beforeChunks
        {
            try body(unsigned, entries: entries, chunks: spliced) { d in
                hasher.update(data: d)
                try emit(d)
            }
            hasher.update(data: unsigned.tail)
            m.signature = identity.sign(Data(hasher.finalize()))
            try emit(try ManifestLayout(m, splicingChunks: splicing).tail)
        } else {
            try body(unsigned, entries: entries, chunks: spliced) { hasher.update(data: $0) }
            hasher.update(data: unsigned.tail)
            m.signature = identity.sign(Data(hasher.finalize()))
            let signed = try ManifestLayout(m, splicingChunks: splicing)
            try body(signed, entries: entries, chunks: spliced) { try emit($0) }
            try emit(signed.tail)
        }
        return m
    }

    /// Head, fragments, middle, journal and the spliced chunk list (not the tail).
    private static func body(
        _ layout: ManifestLayout, entries: (_ each: (JournalEntry) throws -> Void) throws -> Void,
        chunks: ChunkDigests?, emit: (Data) throws -> Void
    ) throws {
        // `entries` calls back into `emit` while it runs; neither keeps the other.
        try withoutActuallyEscaping(emit) { emit in try writeBody(layout, entries: entries, emit: emit) }
        if let chunks, let before = layout.beforeChunks {
            try emit(before)
            for i in 0..<chunks.count {
                if i > 0 { try emit(ManifestLayout.separator) }
                try emit(ManifestLayout.chunkElement(chunks.hex(i)))
            }
        }
    }

    private static func writeBody(
        _ layout: ManifestLayout, entries: (_ each: (JournalEntry) throws -> Void) throws -> Void,
        emit: @escaping (Data) throws -> Void
    ) throws {
        try emit(layout.head)
        var first = true
        try entries { e in
            guard let f = e.fragment else { return }
            if !first { try emit(ManifestLayout.separator) }
            first = false
            try emit(try ManifestLayout.element(f))
        }
        try emit(layout.middle)
        first = true
        try entries { e in
            if !first { try emit(ManifestLayout.separator) }
            first = false
            try emit(try ManifestLayout.element(e))
        }
    }
}
