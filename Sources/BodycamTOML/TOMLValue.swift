/// A place in a TOML document: 1-based line and 1-based column.
///
/// Columns count Unicode scalars, not bytes, so they match what an editor shows for text without
/// combining marks; a tab counts as one column.
public struct TOMLPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// 1-based line number.
    public var line: Int
    /// 1-based column, in Unicode scalars from the start of the line.
    public var column: Int

    /// Creates a position from a 1-based line and column.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// Orders positions as they appear in the text.
    public static func < (lhs: TOMLPosition, rhs: TOMLPosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }

    /// `line:column`, as compilers print it.
    public var description: String { "\(line):\(column)" }
}

/// One TOML value.
///
/// Where a value appears is kept by its container: `TOMLTable.Entry.position` for a table's values and
/// `TOMLTable.Entry.itemPositions` for the items of an array held directly by a table.
public enum TOMLValue: Sendable, Equatable, CustomStringConvertible {
    /// A string, with escapes resolved and CRLF inside multi-line strings folded to LF.
    case string(String)
    /// A 64-bit signed integer, from decimal, hexadecimal, octal or binary notation.
    case integer(Int64)
    /// A binary64 float, including `inf`, `-inf` and `nan`.
    case float(Double)
    /// `true` or `false`.
    case boolean(Bool)
    /// An offset date-time, local date-time, local date or local time, kept exactly as written once
    /// its shape and field ranges have been checked (e.g. `1979-05-27T07:32:00Z`, `07:32:00`).
    case dateTime(String)
    /// An array; TOML 1.0 allows items of mixed types.
    case array([TOMLValue])
    /// A table: a `[header]` table, an inline table, a table made by dotted keys, or one element of
    /// an array of tables.
    case table(TOMLTable)

    /// The TOML name of the value's type, for messages: "string", "integer", "float", "boolean",
    /// "date-time", "array" or "table".
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .dateTime: return "date-time"
        case .array: return "array"
        case .table: return "table"
        }
    }

    /// The string, if this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, if this is an integer.
    public var integerValue: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The float, if this is a float (integers are not converted).
    public var floatValue: Double? {
        if case .float(let value) = self { return value }
        return nil
    }

    /// The boolean, if this is a boolean.
    public var boolValue: Bool? {
        if case .boolean(let value) = self { return value }
        return nil
    }

    /// The validated text, if this is a date, time or date-time.
    public var dateTimeText: String? {
        if case .dateTime(let value) = self { return value }
        return nil
    }

    /// The items, if this is an array.
    public var arrayValue: [TOMLValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The table, if this is a table.
    public var tableValue: TOMLTable? {
        if case .table(let value) = self { return value }
        return nil
    }

    /// The value written as TOML (strings quoted and escaped, tables inline), for messages.
    public var description: String {
        switch self {
        case .string(let value): return quotedTOMLString(value)
        case .integer(let value): return String(value)
        // Swift spells non-finite values "inf", "-inf" and "nan", which is also TOML's spelling.
        case .float(let value): return value.description
        case .boolean(let value): return value ? "true" : "false"
        case .dateTime(let value): return value
        case .array(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .table(let table): return table.description
        }
    }
}

/// `text` as a TOML basic string: quoted, with quotes, backslashes and control characters escaped.
func quotedTOMLString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\u{08}": out += "\\b"
        case "\t": out += "\\t"
        case "\n": out += "\\n"
        case "\u{0C}": out += "\\f"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// `key` as it must be written in TOML: bare when it can be, quoted otherwise.
func tomlKeyText(_ key: String) -> String {
    let isBare = !key.isEmpty && key.utf8.allSatisfy(isBareKeyByte)
    return isBare ? key : quotedTOMLString(key)
}

/// Bytes allowed in a bare key: A-Z a-z 0-9 _ -.
func isBareKeyByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
        return true
    default:
        return false
    }
}
