/// The four kinds of TOML strings: basic `"..."`, literal `'...'`, and their multi-line `"""` and
/// `'''` forms.
extension TOMLParser {
    /// Whether `byte` is a control character that may not appear raw in a string (tab may).
    private func isForbiddenControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F
    }

    private mutating func controlCharacterError() -> TOMLError {
        let name = unicodeName(UInt32(peek() ?? 0))
        return failure("control character \(name) must be escaped in a string", at: offset)
    }

    /// Reads `"..."` starting at its opening quote.
    mutating func parseBasicString() throws(TOMLError) -> String {
        let open = offset
        offset += 1
        var out: [UInt8] = []
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &out)
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                throw failure("unterminated string: missing '\"' before the end of the line", at: open)
            case _ where isForbiddenControl(byte):
                throw controlCharacterError()
            default:
                out.append(byte)
                offset += 1
            }
        }
        throw failure("unterminated string: missing '\"' before the end of the file", at: open)
    }

    /// Reads `'...'` starting at its opening quote. Literal strings have no escapes.
    mutating func parseLiteralString() throws(TOMLError) -> String {
        let open = offset
        offset += 1
        let start = offset
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: "'"):
                let text = String(decoding: bytes[start..<offset], as: UTF8.self)
                offset += 1
                return text
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                throw failure("unterminated string: missing \"'\" before the end of the line", at: open)
            case _ where isForbiddenControl(byte):
                throw controlCharacterError()
            default:
                offset += 1
            }
        }
        throw failure("unterminated string: missing \"'\" before the end of the file", at: open)
    }

    /// Reads `"""..."""` starting at its opening quotes.
    mutating func parseMultilineBasicString() throws(TOMLError) -> String {
        try parseMultiline(quote: UInt8(ascii: "\""))
    }

    /// Reads `'''...'''` starting at its opening quotes.
    mutating func parseMultilineLiteralString() throws(TOMLError) -> String {
        try parseMultiline(quote: UInt8(ascii: "'"))
    }

    /// Both multi-line forms; only the basic one (`"`) has escapes and line-ending backslashes.
    private mutating func parseMultiline(quote: UInt8) throws(TOMLError) -> String {
        let open = offset
        let isBasic = quote == UInt8(ascii: "\"")
        offset += 3
        // A newline right after the opening quotes is not part of the string.
        if peekIs("\n") {
            offset += 1
        } else if peekIs("\r") && peekIs("\n", ahead: 1) {
            offset += 2
        }
        var out: [UInt8] = []
        while let byte = peek() {
            switch byte {
            case quote:
                var run = 0
                while peek(run) == quote { run += 1 }
                if run < 3 {
                    out.append(contentsOf: repeatElement(quote, count: run))
                    offset += run
                    continue
                }
                // Up to two quotes may sit just before the closing three ("""a"""""" is `a""`).
                if run > 5 {
                    throw failure("too many quotes: three in a row end a multi-line string", at: offset)
                }
                out.append(contentsOf: repeatElement(quote, count: run - 3))
                offset += run
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\") where isBasic:
                if try !skipLineEndingBackslash() {
                    try parseEscape(into: &out)
                }
            case UInt8(ascii: "\n"):
                out.append(byte)
                offset += 1
            case UInt8(ascii: "\r"):
                // CRLF is folded to LF so that values do not depend on how the file was saved.
                try consumeNewline()
                out.append(UInt8(ascii: "\n"))
            case _ where isForbiddenControl(byte):
                throw controlCharacterError()
            default:
                out.append(byte)
                offset += 1
            }
        }
        let closing = isBasic ? "\"\"\"" : "'''"
        throw failure("unterminated multi-line string: missing \(closing) before the end of the file", at: open)
    }

    /// At a backslash in a multi-line basic string: if only spaces follow it on its line, skips it, the
    /// newline and all whitespace and newlines after, and returns true. Otherwise leaves it alone.
    private mutating func skipLineEndingBackslash() throws(TOMLError) -> Bool {
        var ahead = 1
        while let byte = peek(ahead), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { ahead += 1 }
        guard peekIs("\n", ahead: ahead) || (peekIs("\r", ahead: ahead) && peekIs("\n", ahead: ahead + 1)) else {
            return false
        }
        offset += ahead
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): offset += 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): try consumeNewline()
            default: return true
            }
        }
        return true
    }

    /// Reads an escape sequence at its backslash and appends the character's UTF-8 bytes.
    private mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
        let start = offset
        offset += 1
        guard let byte = peek() else { throw failure("unterminated string: escape at end of file", at: start) }
        offset += 1
        switch byte {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(byte)
        case UInt8(ascii: "\\"): out.append(byte)
        case UInt8(ascii: "u"): try parseUnicodeEscape(digits: 4, start: start, into: &out)
        case UInt8(ascii: "U"): try parseUnicodeEscape(digits: 8, start: start, into: &out)
        default:
            offset -= 1
            let found = describeCharacter(at: offset)
            throw failure("invalid escape sequence: backslash followed by \(found)", at: start)
        }
    }

    /// Reads the hex digits of `\uXXXX` or `\UXXXXXXXX`; surrogates and values past U+10FFFF are errors.
    private mutating func parseUnicodeEscape(digits: Int, start: Int, into out: inout [UInt8]) throws(TOMLError) {
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let byte = peek(), let digit = hexDigitValue(byte) else {
                let letter = digits == 4 ? "u" : "U"
                throw failure("\\\(letter) escape needs exactly \(digits) hexadecimal digits", at: start)
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw failure("escape \(unicodeName(value)) is not a Unicode scalar value "
                + "(surrogates and values above U+10FFFF are not allowed)", at: start)
        }
        UTF8.encode(scalar) { out.append($0) }
    }
}

/// The value of a hexadecimal digit, or nil.
func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}
