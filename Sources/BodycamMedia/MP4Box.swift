/// One box of an ISO-BMFF file (ISO/IEC 14496-12 §4.2), located but not interpreted.
///
/// `size` is the whole box, header included, with a 64-bit `largesize` and a size of 0 ("to the
/// end of the enclosing box or file") already resolved; `headerSize` is 8, 16 with a `largesize`,
/// and 16 more for a `uuid` box's user type.
public struct MP4Box: Sendable, Equatable, CustomStringConvertible {
    public var type: FourCC
    /// Byte offset of the box's first byte in the file.
    public var offset: Int
    public var size: Int
    public var headerSize: Int

    public init(type: FourCC, offset: Int, size: Int, headerSize: Int) {
        self.type = type
        self.offset = offset
        self.size = size
        self.headerSize = headerSize
    }

    /// One past the box's last byte.
    public var end: Int { offset + size }
    /// Where the contents start (past the size, type, `largesize` and `uuid` fields).
    public var payloadOffset: Int { offset + headerSize }
    public var payloadSize: Int { size - headerSize }
    public var payload: Range<Int> { payloadOffset..<end }

    public var description: String { "\(type)@\(offset)+\(size)" }
}

/// What is wrong with an MP4 file, and where.
public struct MP4Error: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// A size field smaller than the box's own header (a box can never be that small).
        case sizeTooSmall(UInt64)
        /// A box claims more bytes than its parent, or the file, has left.
        case exceedsParent(size: UInt64, available: Int)
        /// A field, a table or a header needs more bytes than the box has left.
        case truncated(needed: Int, available: Int)
        /// Boxes nested deeper than the reader follows.
        case nestingTooDeep(limit: Int)
        /// A box the structure requires is absent.
        case missing(FourCC)
        /// A box that may appear once appears again.
        case duplicate(FourCC)
        /// A box where it does not belong (not `ftyp` first, not `mdat` after `moof`, …).
        case unexpected(FourCC)
        case unsupportedVersion(UInt8)
        /// A field holds a value the format does not allow.
        case invalidValue(String)
        /// A track fragment names a track that `moov` does not declare, or two tracks share an id.
        case unknownTrack(UInt32)
        case duplicateTrack(UInt32)
        /// `mfhd` sequence numbers must increase from one fragment to the next.
        case sequenceNotIncreasing(previous: UInt32, found: UInt32)
        /// A sample's bytes (file offsets) do not lie inside the payload of the `mdat` after its `moof`.
        case sampleOutsideMdat(trackID: UInt32, sample: Int, bytes: Range<Int>, mdat: Range<Int>)
        /// More samples declared than the file has bytes: no real file does that.
        case tooManySamples(Int)
    }

    /// Byte offset in the file of the box or field that is wrong.
    public var offset: Int
    /// The box being read when the problem was found, if any.
    public var box: FourCC?
    public var problem: Problem

    public init(offset: Int, box: FourCC?, problem: Problem) {
        self.offset = offset
        self.box = box
        self.problem = problem
    }

    public var description: String {
        let place = box.map { "MP4 at byte \(offset) (\($0))" } ?? "MP4 at byte \(offset)"
        return "\(place): \(problem)"
    }
}

extension FourCC {
    // Box types the reader looks for; static so that comparing types allocates nothing.
    static let ftyp: FourCC = "ftyp"
    static let moov: FourCC = "moov"
    static let mvhd: FourCC = "mvhd"
    static let trak: FourCC = "trak"
    static let tkhd: FourCC = "tkhd"
    static let mdia: FourCC = "mdia"
    static let mdhd: FourCC = "mdhd"
    static let hdlr: FourCC = "hdlr"
    static let minf: FourCC = "minf"
    static let stbl: FourCC = "stbl"
    static let stsd: FourCC = "stsd"
    static let avcC: FourCC = "avcC"
    static let dOps: FourCC = "dOps"
    static let mvex: FourCC = "mvex"
    static let trex: FourCC = "trex"
    static let moof: FourCC = "moof"
    static let mfhd: FourCC = "mfhd"
    static let traf: FourCC = "traf"
    static let tfhd: FourCC = "tfhd"
    static let tfdt: FourCC = "tfdt"
    static let trun: FourCC = "trun"
    static let mdat: FourCC = "mdat"
    static let uuid: FourCC = "uuid"
    static let vide: FourCC = "vide"
    static let soun: FourCC = "soun"
}

/// The result of reading one box header.
enum BoxHeader {
    case box(MP4Box)
    /// The header, or the box it announces, runs past `end`: at the top level, a torn write.
    case truncated(needed: UInt64, available: Int)
    case invalid(MP4Error)

    /// Reads the header at `offset` of a box that must end by `end` (its parent's end or the file's).
    static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int) -> BoxHeader {
        let available = end - offset
        guard available >= 8 else { return .truncated(needed: 8, available: available) }
        let size32 = readU32(bytes, offset)
        let type = FourCC(rawValue: readU32(bytes, offset + 4))
        var header = 8
        var size: UInt64
        if size32 == 1 {
            guard available >= 16 else { return .truncated(needed: 16, available: available) }
            header = 16
            size = UInt64(readU32(bytes, offset + 8)) << 32 | UInt64(readU32(bytes, offset + 12))
        } else if size32 == 0 {
            size = UInt64(available)  // to the end of the parent or file
        } else {
            size = UInt64(size32)
        }
        if type == .uuid { header += 16 }
        if size < UInt64(header) {
            // With size 0 the box simply ends too soon; otherwise the size field is impossible.
            if size32 == 0 { return .truncated(needed: UInt64(header), available: available) }
            return .invalid(MP4Error(offset: offset, box: type, problem: .sizeTooSmall(size)))
        }
        guard size <= UInt64(available) else { return .truncated(needed: size, available: available) }
        return .box(MP4Box(type: type, offset: offset, size: Int(size), headerSize: header))
    }
}

@inline(__always)
func readU32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
    UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
}

/// Reads big-endian fields from a box's contents and never past the box's end.
struct FieldReader {
    let bytes: UnsafeRawBufferPointer
    let box: MP4Box
    private(set) var position: Int

    init(_ bytes: UnsafeRawBufferPointer, _ box: MP4Box) {
        self.bytes = bytes
        self.box = box
        position = box.payloadOffset
    }

    var remaining: Int { box.end - position }

    func error(_ problem: MP4Error.Problem, at offset: Int? = nil) -> MP4Error {
        MP4Error(offset: offset ?? position, box: box.type, problem: problem)
    }

    func need(_ n: Int) throws(MP4Error) {
        guard n >= 0, n <= remaining else { throw error(.truncated(needed: n, available: remaining)) }
    }

    mutating func skip(_ n: Int) throws(MP4Error) {
        try need(n)
        position += n
    }

    mutating func u8() throws(MP4Error) -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() throws(MP4Error) -> UInt16 {
        try need(2)
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func u32() throws(MP4Error) -> UInt32 {
        try need(4)
        defer { position += 4 }
        return readU32(bytes, position)
    }

    mutating func u64() throws(MP4Error) -> UInt64 {
        let high = try u32()
        return UInt64(high) << 32 | UInt64(try u32())
    }

    mutating func i16() throws(MP4Error) -> Int16 { Int16(bitPattern: try u16()) }
    mutating func i32() throws(MP4Error) -> Int32 { Int32(bitPattern: try u32()) }
    mutating func fourCC() throws(MP4Error) -> FourCC { FourCC(rawValue: try u32()) }

    /// Version and flags of a full box (§4.2.2).
    mutating func fullBoxHeader() throws(MP4Error) -> (version: UInt8, flags: UInt32) {
        let word = try u32()
        return (UInt8(word >> 24), word & 0x00ff_ffff)
    }

    /// `n` bytes copied out; `n` is checked against the box first, so a hostile length cannot
    /// make this allocate more than the file holds.
    mutating func data(_ n: Int) throws(MP4Error) -> [UInt8] {
        try need(n)
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }

    /// A 32- or 64-bit field by version, as in `mdhd`, `tkhd` and `tfdt`.
    mutating func versioned(_ version: UInt8) throws(MP4Error) -> UInt64 {
        version == 1 ? try u64() : UInt64(try u32())
    }
}
