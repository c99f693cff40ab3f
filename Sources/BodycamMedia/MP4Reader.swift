/// Reads ISO-BMFF (MP4) files that may be hostile, torn or cut short.
///
/// Every size and count is checked against the bytes actually present before it is used, so no
/// input can make the reader trap, loop or allocate more than a small multiple of its own size;
/// nesting is followed at most `maxDepth` levels. Problems are `MP4Error`s with the byte offset.
public enum MP4Reader {
    /// How many levels of boxes `walk` and `boxes(at:in:)` follow. Our files nest 8 deep
    /// (`moov/trak/mdia/minf/stbl/stsd/avc1/avcC`).
    public static let maxDepth = 16

    /// Top-level boxes, in order, up to the first one that is cut short by the end of the file.
    ///
    /// - Returns: the complete boxes and, when the file ends inside a box (or inside a header),
    ///   the offset of that box. A box of size 0 runs to the end of the file and is complete.
    /// - Throws: when a size field is impossible (smaller than its header): that is corruption,
    ///   not a torn write.
    public static func topLevelBoxes(
        _ bytes: UnsafeRawBufferPointer
    ) throws(MP4Error) -> (boxes: [MP4Box], truncatedAt: Int?) {
        var boxes: [MP4Box] = []
        var at = 0
        while at < bytes.count {
            switch BoxHeader.read(bytes, at: at, end: bytes.count) {
            case .box(let box):
                boxes.append(box)
                at = box.end
            case .truncated:
                return (boxes, at)
            case .invalid(let error):
                throw error
            }
        }
        return (boxes, nil)
    }

    /// The boxes inside `box`, which must lie within `bytes`.
    ///
    /// Sample entries and full boxes that hold boxes after fields of their own (`stsd`, `dref`,
    /// `meta`, `avc1`, `Opus`, `mp4a`, …) are read from past those fields. A child that does not
    /// fit in its parent is an error: inside a complete box, nothing is torn.
    public static func children(of box: MP4Box, in bytes: UnsafeRawBufferPointer) throws(MP4Error) -> [MP4Box] {
        // Checked without forming offset + size, which a made-up MP4Box could overflow.
        guard box.offset >= 0, box.offset <= bytes.count, box.headerSize >= 8, box.size >= box.headerSize,
            box.size <= bytes.count - box.offset
        else {
            let inside = box.offset >= 0 && box.offset <= bytes.count
            throw MP4Error(
                offset: inside ? box.offset : bytes.count, box: box.type,
                problem: .exceedsParent(
                    size: UInt64(max(0, box.size)), available: inside ? bytes.count - box.offset : 0))
        }
        let skip = fieldsBeforeChildren(box.type)
        guard skip <= box.payloadSize else {
            throw MP4Error(
                offset: box.payloadOffset, box: box.type,
                problem: .truncated(needed: skip, available: box.payloadSize))
        }
        var out: [MP4Box] = []
        var at = box.payloadOffset + skip
        while at < box.end {
            switch BoxHeader.read(bytes, at: at, end: box.end) {
            case .box(let child):
                out.append(child)
                at = child.end
            case .truncated(let needed, let available):
                throw MP4Error(offset: at, box: box.type, problem: .exceedsParent(size: needed, available: available))
            case .invalid(let error):
                throw error
            }
        }
        return out
    }

    /// Every box reached by following `path` from the top level, e.g. `["moov", "trak", "mdia"]`
    /// gives each track's `mdia`. Top-level boxes cut short by the end of the file are ignored.
    public static func boxes(at path: [FourCC], in bytes: UnsafeRawBufferPointer) throws(MP4Error) -> [MP4Box] {
        guard path.count <= maxDepth else {
            throw MP4Error(offset: 0, box: nil, problem: .nestingTooDeep(limit: maxDepth))
        }
        guard let first = path.first else { return [] }
        var level = try topLevelBoxes(bytes).boxes.filter { $0.type == first }
        for type in path.dropFirst() {
            var next: [MP4Box] = []
            for parent in level {
                next += try children(of: parent, in: bytes).filter { $0.type == type }
            }
            level = next
        }
        return level
    }

    /// Every box in the file, depth first, descending into the container boxes this reader knows
    /// (`moov`, `trak`, `moof`, sample entries, …). `depth` is 0 at the top level.
    ///
    /// - Throws: `nestingTooDeep` past `maxDepth`, or any error of `children(of:in:)`.
    public static func walk(_ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> [(depth: Int, box: MP4Box)] {
        var out: [(depth: Int, box: MP4Box)] = []
        func visit(_ box: MP4Box, depth: Int) throws(MP4Error) {
            out.append((depth, box))
            guard containers.contains(box.type) else { return }
            guard depth + 1 < maxDepth else {
                throw MP4Error(offset: box.offset, box: box.type, problem: .nestingTooDeep(limit: maxDepth))
            }
            for child in try children(of: box, in: bytes) { try visit(child, depth: depth + 1) }
        }
        for box in try topLevelBoxes(bytes).boxes { try visit(box, depth: 0) }
        return out
    }

    /// Boxes whose contents are boxes (after `fieldsBeforeChildren` bytes of fields).
    static let containers: Set<FourCC> = [
        "moov", "trak", "mdia", "minf", "stbl", "stsd", "dinf", "dref", "edts", "mvex", "moof", "traf",
        "mfra", "udta", "meta", "tref", "sinf", "schi", "avc1", "avc3", "encv", "Opus", "mp4a", "enca",
    ]

    /// Bytes of a box's own fields before its child boxes.
    static func fieldsBeforeChildren(_ type: FourCC) -> Int { ownFields[type] ?? 0 }

    private static let ownFields: [FourCC: Int] = [
        "stsd": 8, "dref": 8,  // version, flags, entry_count
        "meta": 4,  // version, flags
        // VisualSampleEntry (§12.1.3)
        "avc1": 78, "avc2": 78, "avc3": 78, "avc4": 78, "encv": 78, "mp4v": 78, "hvc1": 78, "hev1": 78,
        // AudioSampleEntry (§12.2.3)
        "Opus": 28, "mp4a": 28, "enca": 28, "fLaC": 28, "ac-3": 28, "ec-3": 28,
    ]

    /// Reads a fragmented MP4: its init segment's tracks and every complete `moof`+`mdat` pair.
    ///
    /// A file torn by a power cut is not an error: the scan stops at the last complete fragment
    /// (`validEnd`) and counts what follows as `trailingBytes`. Torn means the file ends inside a
    /// `moof` or its `mdat`, ends right after a `moof`, or is all zero bytes from some point on
    /// (a file system that extended the file but never wrote the data).
    ///
    /// - Throws: an init segment that is missing, cut short or malformed; a complete fragment
    ///   that is malformed (a `trun` whose samples are not inside the `mdat` that follows, an
    ///   unknown track, a sequence number that does not increase, …); a top-level box that does
    ///   not belong between fragments. Such files were not torn but damaged or are not ours, and
    ///   truncating them would throw evidence away.
    public static func scanFragmented(_ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> FragmentedMP4 {
        var scan = try MovieParser.parseInitSegment(bytes)
        var at = scan.moovEnd
        var validEnd = at
        var firstMoof: Int?
        var fragments: [MP4Fragment] = []
        var budget = SampleBudget(remaining: bytes.count)
        var tracks: [UInt32: MP4Track] = [:]
        for track in scan.file.tracks { tracks[track.trackID] = track }
        scanning: while at < bytes.count {
            let box: MP4Box
            switch BoxHeader.read(bytes, at: at, end: bytes.count) {
            case .box(let b):
                box = b
            case .truncated:
                break scanning
            case .invalid(let error):
                if isZeroFilled(bytes, from: at) { break scanning }
                throw error
            }
            if box.type == .moof {
                let mdat: MP4Box
                switch BoxHeader.read(bytes, at: box.end, end: bytes.count) {  // truncated if nothing follows
                case .box(let m) where m.type == .mdat:
                    mdat = m
                case .box(let m):
                    if isZeroFilled(bytes, from: box.end) { break scanning }
                    throw MP4Error(offset: m.offset, box: m.type, problem: .unexpected(m.type))
                case .truncated:
                    break scanning
                case .invalid(let error):
                    if isZeroFilled(bytes, from: box.end) { break scanning }
                    throw error
                }
                let (fragment, sequenceAt) = try FragmentParser.parse(
                    moof: box, mdat: mdat, tracks: tracks, budget: &budget, in: bytes)
                if let previous = fragments.last?.sequenceNumber, fragment.sequenceNumber <= previous {
                    throw MP4Error(
                        offset: sequenceAt, box: .mfhd,
                        problem: .sequenceNotIncreasing(previous: previous, found: fragment.sequenceNumber))
                }
                if firstMoof == nil { firstMoof = box.offset }
                fragments.append(fragment)
                at = mdat.end
                validEnd = at
            } else if betweenFragments.contains(box.type) {
                at = box.end
                validEnd = at
            } else {
                if isZeroFilled(bytes, from: at) { break scanning }
                throw MP4Error(offset: box.offset, box: box.type, problem: .unexpected(box.type))
            }
        }
        scan.file.initSegmentSize = firstMoof ?? validEnd
        scan.file.fragments = fragments
        scan.file.validEnd = validEnd
        scan.file.trailingBytes = bytes.count - validEnd
        return scan.file
    }

    /// Convenience for `scanFragmented` on an array.
    public static func scanFragmented(_ bytes: [UInt8]) throws(MP4Error) -> FragmentedMP4 {
        let result: Result<FragmentedMP4, MP4Error> = bytes.withUnsafeBytes { raw in
            Result { () throws(MP4Error) -> FragmentedMP4 in try scanFragmented(raw) }
        }
        return try result.get()
    }

    /// Top-level boxes that may stand after `moov` and between fragments, and are skipped.
    static let betweenFragments: Set<FourCC> = [
        "free", "skip", "styp", "sidx", "ssix", "prft", "emsg", "mfra", "udta", "meta", "uuid",
    ]

    static func isZeroFilled(_ bytes: UnsafeRawBufferPointer, from: Int) -> Bool {
        var i = from
        while i < bytes.count {
            if bytes[i] != 0 { return false }
            i += 1
        }
        return true
    }
}

/// Caps the samples of a whole file: a `trun` can declare samples that take no bytes of its own
/// (all values from defaults), so without a file-wide cap many small `trun`s could make the
/// reader allocate far more than the file's size. A real file has at least one byte per sample.
struct SampleBudget {
    var remaining: Int

    mutating func take(_ n: Int, at offset: Int) throws(MP4Error) {
        guard n <= remaining else { throw MP4Error(offset: offset, box: .trun, problem: .tooManySamples(n)) }
        remaining -= n
    }
}
