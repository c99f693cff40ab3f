public import BodycamCore
public import Foundation
import Crypto

/// A manifest's pretty canonical bytes, made a piece at a time, so that a long clip's fragment
/// list and journal (a line per second of video, 30 minutes of them at a rollover) are never in
/// memory whole: the device keeps them in its journal file and the manifest is written from it.
///
/// The bytes are exactly `Canonical.prettyBytes` of the whole manifest. The layout around the
/// two lists comes from encoding the manifest once with a single marker element in each list
/// and cutting the encoding at those markers, so the layout always follows the encoder's own.
public struct ManifestLayout: Sendable {
    /// Everything before the first fragment, between the last fragment and the first journal
    /// entry, and after the last journal entry.
    public let head: Data
    public let middle: Data
    public let tail: Data

    /// The layout of `skeleton`'s encoding; its own `fragments` and `journal` are ignored.
    public init(_ skeleton: ClipManifest) throws(ManifestStreamError) {
        var m = skeleton
        m.fragments = [Self.fragmentMark]
        m.journal = [Self.entryMark]
        guard let all = try? Canonical.prettyBytes(m),
            let f = try? Self.element(Self.fragmentMark), let j = try? Self.element(Self.entryMark),
            let fr = Self.onlyRange(of: f, in: all), let jr = Self.onlyRange(of: j, in: all),
            fr.upperBound <= jr.lowerBound
        else { throw ManifestStreamError("the manifest's layout did not show its fragment and journal lists") }
        head = all.subdata(in: all.startIndex..<fr.lowerBound)
        middle = all.subdata(in: fr.upperBound..<jr.lowerBound)
        tail = all.subdata(in: jr.upperBound..<all.endIndex)
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

    private static let markText = "bodycam-manifest-layout-mark-7c1e"
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

public struct ManifestStreamError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writes a manifest whose fragments and journal are read from the clip's journal, one entry at
/// a time (`entries` is called once per list, or twice per list when the signature's place needs
/// a separate hashing pass; it must give the same entries in the same order each time, and
/// `fragmentCount` of them must carry a fragment), signed like `ManifestSeal.sign` when there is
/// an identity.
public enum ManifestStream {
    /// Calls `emit` with the manifest's bytes in order and returns the manifest as written,
    /// without its lists (the signature and public key set if signed).
    @discardableResult
    public static func write(
        _ skeleton: ClipManifest, identity: DeviceIdentity?, fragmentCount: Int,
        entries: (_ each: (JournalEntry) throws -> Void) throws -> Void,
        emit: (Data) throws -> Void
    ) throws -> ClipManifest {
        var m = skeleton
        m.fragments = []
        m.journal = []
        m.signature = nil
        if let identity { m.devicePublicKey = identity.publicKey.string }
        // An empty list is written differently from a list of elements; such a clip is tiny (and
        // a journal without fragments has no fragment list either).
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
        let unsigned = try ManifestLayout(m)
        guard let identity else {
            try body(unsigned, entries: entries) { try emit($0) }
            try emit(unsigned.tail)
            return m
        }
        // The signature is over the unsigned bytes. Its key sorts after "journal", so what comes
        // before the tail is the same signed or not and is hashed as it is written.
        var probe = m
        probe.signature = String(repeating: "A", count: 88)
        let signedLayout = try ManifestLayout(probe)
        var hasher = SHA256()
        if signedLayout.head == unsigned.head && signedLayout.middle == unsigned.middle {
            try body(unsigned, entries: entries) { d in
                hasher.update(data: d)
                try emit(d)
            }
            hasher.update(data: unsigned.tail)
            m.signature = identity.sign(Data(hasher.finalize()))
            try emit(try ManifestLayout(m).tail)
        } else {
            try body(unsigned, entries: entries) { hasher.update(data: $0) }
            hasher.update(data: unsigned.tail)
            m.signature = identity.sign(Data(hasher.finalize()))
            let signed = try ManifestLayout(m)
            try body(signed, entries: entries) { try emit($0) }
            try emit(signed.tail)
        }
        return m
    }

    /// Head, fragments, middle and journal (not the tail).
    private static func body(
        _ layout: ManifestLayout, entries: (_ each: (JournalEntry) throws -> Void) throws -> Void,
        emit: (Data) throws -> Void
    ) throws {
        // `entries` calls back into `emit` while it runs; neither keeps the other.
        try withoutActuallyEscaping(emit) { emit in try writeBody(layout, entries: entries, emit: emit) }
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
