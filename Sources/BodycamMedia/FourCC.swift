/// An ISO-BMFF four-character code (`moov`, `mdat`, `avc1`, …), stored big-endian in a UInt32.
public struct FourCC: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `code` must be exactly four ASCII characters; anything else is a programming error.
    public init(_ code: String) {
        let bytes = Array(code.utf8)
        precondition(bytes.count == 4, "a FourCC has four ASCII characters: \(code)")
        rawValue = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    public init(stringLiteral value: String) { self.init(value) }

    public var description: String {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (24 - 8 * UInt32($0))) }
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return "0x" + String(rawValue, radix: 16)
    }
}
