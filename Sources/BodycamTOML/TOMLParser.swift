/// Parses a TOML 1.0 document.
///
/// Every error names the line and column where it was found. Nesting of tables, arrays and inline
/// tables is limited to `tomlMaxDepth` levels so that hostile input cannot exhaust the stack.
///
/// - Parameter text: the whole document. LF and CRLF line endings are accepted; a leading byte
///   order mark is skipped.
/// - Returns: the root table.
public func parseTOML(_ text: String) throws(TOMLError) -> TOMLTable {
    var parser = TOMLParser(text)
    return try parser.parseDocument()
}

/// The deepest nesting of tables, arrays and inline tables that `parseTOML` accepts.
public let tomlMaxDepth = 64

/// One part of a dotted key, with the byte offset where it starts (for positions and messages).
struct TOMLKeyPart {
    var name: String
    var offset: Int
}

/// A recursive-descent parser over the document's UTF-8 bytes.
///
/// Swift strings are always valid UTF-8, so the parser only checks TOML's own rules on bytes and
/// never has to validate encodings. Strings, numbers and date-times are in extensions in other files.
struct TOMLParser {
    let bytes: [UInt8]
    /// The next byte to read.
    var offset = 0
    /// Sections are numbered: the root is 0 and each `[header]` or `[[header]]` starts the next. Tables
    /// made by dotted keys remember their section, because only that section may add to them.
    var section = 0
    let root: TOMLTableBuilder
    /// The table that `key = value` lines go into: the root or the last header's table.
    var current: TOMLTableBuilder

    // Line and column are worked out lazily from byte offsets, scanning forward from the last
    // answer. Positions are asked for in document order except when reporting an error, so the
    // whole parse scans the text once.
    private var located = (offset: 0, line: 1, column: 1)
    private let firstOffset: Int

    init(_ text: String) {
        bytes = Array(text.utf8)
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        firstOffset = bytes.starts(with: bom) ? bom.count : 0
        offset = firstOffset
        located.offset = firstOffset
        root = TOMLTableBuilder(position: TOMLPosition(line: 1, column: 1), origin: .header, depth: 0)
        current = root
    }

    // MARK: - Positions and errors

    /// The line and column of byte `target`.
    mutating func position(at target: Int) -> TOMLPosition {
        let target = min(max(target, firstOffset), bytes.count)
        if target < located.offset {
            located = (firstOffset, 1, 1)
        }
        var (index, line, column) = located
        while index < target {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                // Continuation bytes belong to the scalar already counted.
                column += 1
            }
            index += 1
        }
        located = (index, line, column)
        return TOMLPosition(line: line, column: column)
    }

    /// An error at byte `target`.
    mutating func failure(_ message: String, at target: Int) -> TOMLError {
        let place = position(at: target)
        return TOMLError(line: place.line, column: place.column, message: message)
    }

    /// The character at `index` for a message: 'x' for printable ASCII, a name or U+XXXX otherwise.
    func describeCharacter(at index: Int) -> String {
        guard index < bytes.count else { return "end of file" }
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "\n"): return "newline"
        case UInt8(ascii: "\r"): return "carriage return"
        case UInt8(ascii: "\t"): return "tab"
        case UInt8(ascii: " "): return "space"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        case 0x80...:
            var end = index + 1
            while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
            return "'" + String(decoding: bytes[index..<end], as: UTF8.self) + "'"
        default:
            return "control character " + unicodeName(UInt32(byte))
        }
    }

    /// `U+0007` style name of a code point.
    func unicodeName(_ value: UInt32) -> String {
        let hex = String(value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    // MARK: - Bytes

    func peek(_ ahead: Int = 0) -> UInt8? {
        let index = offset + ahead
        return index < bytes.count ? bytes[index] : nil
    }

    func peekIs(_ ascii: Unicode.Scalar, ahead: Int = 0) -> Bool {
        peek(ahead) == UInt8(ascii: ascii)
    }

    /// Skips spaces and tabs.
    mutating func skipSpaces() {
        while let byte = peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
            offset += 1
        }
    }

    /// Consumes LF or CRLF at `offset`; a carriage return alone is an error.
    mutating func consumeNewline() throws(TOMLError) {
        if peekIs("\n") {
            offset += 1
        } else if peekIs("\r") && peekIs("\n", ahead: 1) {
            offset += 2
        } else {
            throw failure("carriage return must be followed by a line feed", at: offset)
        }
    }

    /// Skips a comment from its `#` up to, not including, the end of the line.
    mutating func skipComment() throws(TOMLError) {
        offset += 1
        while let byte = peek() {
            if byte == UInt8(ascii: "\n") || (byte == UInt8(ascii: "\r") && peekIs("\n", ahead: 1)) {
                return
            }
            if (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
                throw failure("\(describeCharacter(at: offset)) is not allowed in a comment", at: offset)
            }
            offset += 1
        }
    }

    /// Skips whitespace, newlines and comments, as allowed between the items of an array.
    mutating func skipBlankLines() throws(TOMLError) {
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): offset += 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): try consumeNewline()
            case UInt8(ascii: "#"): try skipComment()
            default: return
            }
        }
    }

    /// After a header or a key/value pair: only spaces, a comment and the end of the line may follow.
    mutating func expectLineEnd(after what: String) throws(TOMLError) {
        skipSpaces()
        if peekIs("#") { try skipComment() }
        guard let byte = peek() else { return }
        if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
            try consumeNewline()
            return
        }
        throw failure("expected end of line after \(what), found \(describeCharacter(at: offset))", at: offset)
    }

    // MARK: - Document

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                offset += 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try consumeNewline()
            case UInt8(ascii: "#"):
                try skipComment()
            case UInt8(ascii: "["):
                try parseHeader()
                try expectLineEnd(after: "table header")
            default:
                try parseKeyValue(into: current)
                try expectLineEnd(after: "value")
            }
        }
        return root.build()
    }

    // MARK: - Keys

    /// Reads a possibly dotted key, stopping before whatever follows it (`=`, `]`).
    mutating func parseKey() throws(TOMLError) -> [TOMLKeyPart] {
        var parts: [TOMLKeyPart] = []
        while true {
            skipSpaces()
            let start = offset
            let name = try parseSimpleKey()
            parts.append(TOMLKeyPart(name: name, offset: start))
            if parts.count > tomlMaxDepth {
                throw failure("dotted key has more than \(tomlMaxDepth) parts", at: start)
            }
            skipSpaces()
            guard peekIs(".") else { return parts }
            offset += 1
        }
    }

    /// Reads one bare or quoted key.
    private mutating func parseSimpleKey() throws(TOMLError) -> String {
        guard let byte = peek() else { throw failure("expected a key, found end of file", at: offset) }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            if peek(1) == byte && peek(2) == byte {
                throw failure("a multi-line string cannot be used as a key", at: offset)
            }
            return byte == UInt8(ascii: "\"") ? try parseBasicString() : try parseLiteralString()
        case _ where isBareKeyByte(byte):
            let start = offset
            while let next = peek(), isBareKeyByte(next) { offset += 1 }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        default:
            let found = describeCharacter(at: offset)
            throw failure(
                "expected a key, found \(found) (bare keys may contain only A-Z a-z 0-9 _ -)", at: offset)
        }
    }

    /// `a.b."c d"` as written for messages, quoting the parts that need it.
    func keyText(_ parts: ArraySlice<TOMLKeyPart>) -> String {
        parts.map { tomlKeyText($0.name) }.joined(separator: ".")
    }

    // MARK: - Headers

    /// Reads `[key]` or `[[key]]` and makes its table the current one.
    private mutating func parseHeader() throws(TOMLError) {
        let start = offset
        offset += 1
        let isArray = peekIs("[")
        if isArray { offset += 1 }
        let key = try parseKey()
        let closing = isArray ? "]]" : "]"
        guard peekIs("]"), !isArray || peekIs("]", ahead: 1) else {
            throw failure("expected '\(closing)' to close the table header, found \(describeCharacter(at: offset))",
                at: offset)
        }
        offset += closing.utf8.count
        section += 1
        let place = position(at: start)
        let parent = try headerParent(key, at: place)
        current = isArray ? try openTableArray(key, in: parent, at: place) : try openTable(key, in: parent, at: place)
    }

    /// Walks a header's key up to its last part, creating implicit tables and entering the last element
    /// of arrays of tables, as TOML prescribes for `[a.b.c]`. Implicit tables are placed at the header
    /// until a header of their own defines them.
    private mutating func headerParent(
        _ key: [TOMLKeyPart], at place: TOMLPosition
    ) throws(TOMLError) -> TOMLTableBuilder {
        var table = root
        for (index, part) in key.dropLast().enumerated() {
            switch table.node(part.name) {
            case nil:
                table = try addTable(part, to: table, origin: .implicit)
                table.position = place
            case .table(let child):
                table = child
            case .tables(let array):
                table = array.last
            case .value(let value, let valuePlace, _):
                let name = keyText(key[...index])
                throw failure(notATableMessage(name, value, valuePlace), at: part.offset)
            }
        }
        return table
    }

    /// Defines the table of a `[header]`.
    private mutating func openTable(
        _ key: [TOMLKeyPart], in parent: TOMLTableBuilder, at place: TOMLPosition
    ) throws(TOMLError) -> TOMLTableBuilder {
        guard let last = key.last else { throw failure("expected a key", at: offset) }
        let name = keyText(key[...])
        switch parent.node(last.name) {
        case nil:
            let table = try addTable(last, to: parent, origin: .header)
            table.position = place
            return table
        case .table(let table):
            switch table.origin {
            case .implicit:
                // Until now the table existed only as the parent of other headers; this header
                // defines it, so this is where it is.
                table.origin = .header
                table.position = place
                return table
            case .header:
                throw failure("table [\(name)] is already defined at line \(table.position.line)", at: last.offset)
            case .dotted:
                throw failure("table [\(name)] is already defined by dotted keys at line \(table.position.line)",
                    at: last.offset)
            }
        case .tables(let array):
            throw failure("[\(name)] is already an array of tables (line \(array.position.line)); "
                + "it cannot also be a table", at: last.offset)
        case .value(let value, let valuePlace, _):
            throw failure(redefinedMessage(name, value, valuePlace), at: last.offset)
        }
    }

    /// Appends a table to the array of a `[[header]]`, creating the array on first use.
    private mutating func openTableArray(
        _ key: [TOMLKeyPart], in parent: TOMLTableBuilder, at place: TOMLPosition
    ) throws(TOMLError) -> TOMLTableBuilder {
        guard let last = key.last else { throw failure("expected a key", at: offset) }
        let name = keyText(key[...])
        let depth = parent.depth + 2
        if depth > tomlMaxDepth {
            throw failure("tables are nested more than \(tomlMaxDepth) levels deep", at: last.offset)
        }
        let element = TOMLTableBuilder(position: place, origin: .header, depth: depth)
        switch parent.node(last.name) {
        case nil:
            parent.add(last.name, .tables(TOMLTableArrayBuilder(first: element)))
        case .tables(let array):
            array.append(element)
        case .table(let table):
            throw failure("[[\(name)]] cannot append to \(name), which is a table (line \(table.position.line))",
                at: last.offset)
        case .value(.array, let valuePlace, _):
            throw failure("[[\(name)]] cannot append to the static array \(name) defined at line \(valuePlace.line)",
                at: last.offset)
        case .value(let value, let valuePlace, _):
            throw failure(redefinedMessage(name, value, valuePlace), at: last.offset)
        }
        return element
    }

    // MARK: - Key/value pairs

    /// Reads `key = value` and stores it in `table`, creating the tables of a dotted key.
    mutating func parseKeyValue(into table: TOMLTableBuilder) throws(TOMLError) {
        let key = try parseKey()
        guard let last = key.last else { throw failure("expected a key", at: offset) }
        guard peekIs("=") else {
            let found = describeCharacter(at: offset)
            throw failure("expected '=' after key \(keyText(key[...])), found \(found)", at: offset)
        }
        offset += 1
        skipSpaces()
        let parent = try dottedParent(key, from: table)
        if let existing = parent.node(last.name) {
            let line: Int
            switch existing {
            case .value(_, let place, _): line = place.line
            case .table(let child): line = child.position.line
            case .tables(let array): line = array.position.line
            }
            throw failure("duplicate key \(keyText(key[...])) (first defined at line \(line))", at: last.offset)
        }
        // The value's position is taken before reading it, so that positions stay in document order.
        let place = position(at: offset)
        var itemPositions: [TOMLPosition] = []
        let value = try parseValue(depth: parent.depth + 1, itemPositions: &itemPositions)
        parent.add(last.name, .value(value, position: place, itemPositions: itemPositions))
    }

    /// Walks the leading parts of a dotted key from `table`, creating the tables they name.
    private mutating func dottedParent(
        _ key: [TOMLKeyPart], from start: TOMLTableBuilder
    ) throws(TOMLError) -> TOMLTableBuilder {
        var table = start
        for (index, part) in key.dropLast().enumerated() {
            let name = keyText(key[...index])
            switch table.node(part.name) {
            case nil:
                table = try addTable(part, to: table, origin: .dotted(section: section))
            case .table(let child):
                switch child.origin {
                case .implicit:
                    // The first dotted key to add to a table that only headers had implied defines it.
                    child.origin = .dotted(section: section)
                    child.position = position(at: part.offset)
                case .dotted(let owner) where owner == section:
                    break
                case .dotted, .header:
                    throw failure("cannot add keys to table \(name) (defined at line \(child.position.line)) "
                        + "with dotted keys from another table", at: part.offset)
                }
                table = child
            case .tables(let array):
                throw failure("cannot add keys to the array of tables \(name) (line \(array.position.line)) "
                    + "with dotted keys", at: part.offset)
            case .value(let value, let place, _):
                throw failure(notATableMessage(name, value, place), at: part.offset)
            }
        }
        return table
    }

    /// Adds an empty table named by `part` to `parent`, enforcing the depth limit.
    private mutating func addTable(
        _ part: TOMLKeyPart, to parent: TOMLTableBuilder, origin: TOMLTableBuilder.Origin
    ) throws(TOMLError) -> TOMLTableBuilder {
        let depth = parent.depth + 1
        if depth > tomlMaxDepth {
            throw failure("tables are nested more than \(tomlMaxDepth) levels deep", at: part.offset)
        }
        let table = TOMLTableBuilder(position: position(at: part.offset), origin: origin, depth: depth)
        parent.add(part.name, .table(table))
        return table
    }

    private func notATableMessage(_ name: String, _ value: TOMLValue, _ place: TOMLPosition) -> String {
        switch value {
        case .table:
            return "cannot add to the inline table \(name) (line \(place.line)): inline tables are complete as written"
        case .array:
            return "cannot add to \(name): it is a static array (line \(place.line)), not a table"
        default:
            return "cannot use \(name) as a table: it is already \(withArticle(value.typeName)) (line \(place.line))"
        }
    }

    private func redefinedMessage(_ name: String, _ value: TOMLValue, _ place: TOMLPosition) -> String {
        switch value {
        case .table:
            return "table [\(name)] is already defined as an inline table at line \(place.line)"
        default:
            return "key \(name) is already defined as \(withArticle(value.typeName)) at line \(place.line)"
        }
    }

    /// "an integer", "a string".
    private func withArticle(_ noun: String) -> String {
        let vowels: Set<Character> = ["a", "e", "i", "o", "u"]
        return (noun.first.map(vowels.contains) ?? false ? "an " : "a ") + noun
    }

    // MARK: - Values

    /// Reads one value. `depth` is the nesting level the value would have if it is an array or inline
    /// table; `itemPositions` receives the positions of an array's items.
    mutating func parseValue(depth: Int, itemPositions: inout [TOMLPosition]) throws(TOMLError) -> TOMLValue {
        guard let byte = peek() else { throw failure("expected a value, found end of file", at: offset) }
        switch byte {
        case UInt8(ascii: "\""):
            if peekIs("\"", ahead: 1) && peekIs("\"", ahead: 2) { return .string(try parseMultilineBasicString()) }
            return .string(try parseBasicString())
        case UInt8(ascii: "'"):
            if peekIs("'", ahead: 1) && peekIs("'", ahead: 2) { return .string(try parseMultilineLiteralString()) }
            return .string(try parseLiteralString())
        case UInt8(ascii: "["):
            try checkDepth(depth)
            return try parseArray(depth: depth, itemPositions: &itemPositions)
        case UInt8(ascii: "{"):
            try checkDepth(depth)
            return try parseInlineTable(depth: depth)
        default:
            return try parseBareValue()
        }
    }

    private mutating func checkDepth(_ depth: Int) throws(TOMLError) {
        if depth > tomlMaxDepth {
            throw failure("arrays and tables are nested more than \(tomlMaxDepth) levels deep", at: offset)
        }
    }

    /// Reads `[ ... ]`: items separated by commas, with newlines, comments and a trailing comma allowed.
    private mutating func parseArray(depth: Int, itemPositions: inout [TOMLPosition]) throws(TOMLError) -> TOMLValue {
        let open = offset
        offset += 1
        var items: [TOMLValue] = []
        while true {
            try skipBlankLines()
            guard let byte = peek() else { throw failure("unterminated array: missing ']'", at: open) }
            if byte == UInt8(ascii: "]") {
                offset += 1
                return .array(items)
            }
            itemPositions.append(position(at: offset))
            // Positions of items of nested arrays are not kept: `TOMLTable.Entry` tracks one level.
            var nestedPositions: [TOMLPosition] = []
            items.append(try parseValue(depth: depth + 1, itemPositions: &nestedPositions))
            try skipBlankLines()
            guard let next = peek() else { throw failure("unterminated array: missing ']'", at: open) }
            switch next {
            case UInt8(ascii: ","):
                offset += 1
            case UInt8(ascii: "]"):
                offset += 1
                return .array(items)
            default:
                let found = describeCharacter(at: offset)
                throw failure("expected ',' or ']' after an array item, found \(found)", at: offset)
            }
        }
    }

    /// Reads `{ key = value, ... }` on one line, without a trailing comma (TOML 1.0).
    private mutating func parseInlineTable(depth: Int) throws(TOMLError) -> TOMLValue {
        let open = offset
        let table = TOMLTableBuilder(position: position(at: open), origin: .header, depth: depth)
        offset += 1
        skipSpaces()
        if peekIs("}") {
            offset += 1
            return .table(table.build())
        }
        while true {
            skipSpaces()
            try checkInlineTableContinues(open: open)
            if peekIs("}") {
                throw failure("trailing comma is not allowed in an inline table", at: offset)
            }
            try parseKeyValue(into: table)
            skipSpaces()
            try checkInlineTableContinues(open: open)
            guard let byte = peek() else { throw failure("unterminated inline table: missing '}'", at: open) }
            switch byte {
            case UInt8(ascii: ","):
                offset += 1
            case UInt8(ascii: "}"):
                offset += 1
                return .table(table.build())
            default:
                let found = describeCharacter(at: offset)
                throw failure("expected ',' or '}' after a value in an inline table, found \(found)", at: offset)
            }
        }
    }

    /// Inline tables end on the line they start on, so a newline, comment or end of file is an error.
    private mutating func checkInlineTableContinues(open: Int) throws(TOMLError) {
        guard let byte = peek() else { throw failure("unterminated inline table: missing '}'", at: open) }
        if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "#") {
            throw failure("inline table must be closed with '}' on the line where it starts", at: offset)
        }
    }
}
