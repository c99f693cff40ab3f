public import Foundation

/// The one JSON form signed bytes are made from: sorted keys, snake_case, no insignificant
/// whitespace (or, for manifests people read, pretty-printed the same way every time).
///
/// Verification re-encodes what it parsed and requires the very bytes it read: any changed byte,
/// even whitespace, is a difference. Swift prints each Double in its shortest round-trip form,
/// so numbers survive the round trip exactly.
public enum Canonical {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// Compact canonical bytes of `value`.
    public static func bytes<T: Encodable>(_ value: T) throws -> Data { try encoder().encode(value) }

    /// Pretty canonical bytes of `value`, with a final newline (manifests).
    public static func prettyBytes<T: Encodable>(_ value: T) throws -> Data {
        var d = try encoder(pretty: true).encode(value)
        d.append(0x0a)
        return d
    }
}

/// Lower-case hex of bytes.
public enum Hex {
    public static func string<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
