/// Compact JSON, keys sorted, for the control socket's replies (`[String: Any]` trees of
/// strings, booleans, integers, doubles, arrays and objects).
///
/// Foundation's JSONSerialization formats every non-integer number through ICU's number
/// formatter, which pages about 3.5 MB of ICU and Foundation into a recorder that otherwise never
/// touches them, once something polls `status`. Swift prints a Double in its shortest
/// round-trip form, which is valid JSON as it is.
enum ReplyJSON {
    static func encode(_ value: [String: Any]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(value, into: &out)
        return out
    }

    private static func write(_ value: Any, into out: inout [UInt8]) {
        switch value {
        case let s as String: string(s, into: &out)
        case let b as Bool: out.append(contentsOf: (b ? "true" : "false").utf8)
        case let d as Double: number(d, into: &out)
        case let f as Float: number(Double(f), into: &out)
        case let i as any BinaryInteger: out.append(contentsOf: "\(i)".utf8)
        case let a as [Any]:
            out.append(UInt8(ascii: "["))
            for (k, e) in a.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                write(e, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let o as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (k, key) in o.keys.sorted().enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                string(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(o[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        default:
            // nil inside `Any` (an absent optional) and anything unknown.
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional, let inner = mirror.children.first {
                write(inner.value, into: &out)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        }
    }

    private static func number(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else { return out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: "\(d)".utf8)
    }

    private static func string(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), b])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), b])
            case 0x0a: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0d: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
