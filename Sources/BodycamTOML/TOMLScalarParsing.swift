/// Unquoted values: booleans, integers, floats and date-times.
extension TOMLParser {
    /// Reads an unquoted value up to the next delimiter and works out which kind it is.
    mutating func parseBareValue() throws(TOMLError) -> TOMLValue {
        let start = offset
        skipToken()
        // The space in `1979-05-27 07:32:00` is the one delimiter a value may contain; it belongs to the
        // value only when a full date is followed by the start of a time.
        if offset - start == 10, bytes[start + 4] == UInt8(ascii: "-"), peekIs(" "),
            let first = peek(1), isDecimalDigit(first), let second = peek(2), isDecimalDigit(second),
            peekIs(":", ahead: 3)
        {
            offset += 1
            skipToken()
        }
        let token = Array(bytes[start..<offset])
        guard let head = token.first else {
            throw failure("expected a value, found \(describeCharacter(at: offset))", at: offset)
        }
        let text = String(decoding: token, as: UTF8.self)
        switch text {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        let shown = shortened(text)
        if token.contains(UInt8(ascii: ":")) || (token.count >= 5 && token[4] == UInt8(ascii: "-")
            && token[0..<4].allSatisfy(isDecimalDigit))
        {
            if let problem = TOMLDateTimeScanner.problem(in: token) {
                throw failure("invalid date-time \(shown): \(problem)", at: start)
            }
            return .dateTime(text)
        }
        if token.count >= 2, token[0] == UInt8(ascii: "0"),
            let radix = radixOf(token[1])
        {
            return .integer(try parseRadixInteger(token, radix: radix, shown: shown, at: start))
        }
        let body = token.drop { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }
        if body.count >= 2, body.first == UInt8(ascii: "0"), let prefix = body.dropFirst().first,
            radixOf(prefix) != nil
        {
            throw failure("invalid integer \(shown): hexadecimal, octal and binary integers cannot have a sign",
                at: start)
        }
        let numberStarts: [UInt8] = [UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ".")]
        if !isDecimalDigit(head) && !numberStarts.contains(head) {
            // A word where a value should be is most likely a string someone forgot to quote.
            let isWord = head >= 0x80 || isBareKeyByte(head)
            throw failure("invalid value \(shown)" + (isWord ? " (strings must be in quotes)" : ""), at: start)
        }
        if token.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            return .float(try parseFloat(token, shown: shown, at: start))
        }
        return .integer(try parseDecimalInteger(token, shown: shown, at: start))
    }

    /// Moves past the bytes of an unquoted value.
    private mutating func skipToken() {
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
                UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "#"):
                return
            case 0..<0x20, 0x7F:
                // Control characters are never part of a value; stopping here lets the caller name them.
                return
            default:
                offset += 1
            }
        }
    }

    /// The token quoted for a message, cut short so that hostile input cannot produce huge messages.
    private func shortened(_ text: String) -> String {
        let limit = 40
        if text.unicodeScalars.count <= limit { return "'\(text)'" }
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: text.unicodeScalars.prefix(limit))
        return "'\(String(cut))...'"
    }

    private func radixOf(_ letter: UInt8) -> Int64? {
        switch letter {
        case UInt8(ascii: "x"): return 16
        case UInt8(ascii: "o"): return 8
        case UInt8(ascii: "b"): return 2
        default: return nil
        }
    }

    /// `0x`, `0o` and `0b` integers: no sign, underscores only between digits, leading zeros allowed.
    private mutating func parseRadixInteger(
        _ token: [UInt8], radix: Int64, shown: String, at start: Int
    ) throws(TOMLError) -> Int64 {
        let isDigit = { (byte: UInt8) -> Bool in
            guard let value = hexDigitValue(byte) else { return false }
            return Int64(value) < radix
        }
        guard let end = digitRun(token, from: 2, isDigit: isDigit), end == token.count else {
            throw failure("invalid integer \(shown): expected base-\(radix) digits after the prefix, "
                + "with underscores only between digits", at: start)
        }
        var value: Int64 = 0
        for byte in token[2...] where byte != UInt8(ascii: "_") {
            let digit = Int64(hexDigitValue(byte) ?? 0)
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflowB) = shifted.addingReportingOverflow(digit)
            if overflowA || overflowB {
                throw failure("integer \(shown) does not fit in 64 bits", at: start)
            }
            value = sum
        }
        return value
    }

    /// Decimal integers: optional sign, no leading zeros, underscores only between digits.
    private mutating func parseDecimalInteger(
        _ token: [UInt8], shown: String, at start: Int
    ) throws(TOMLError) -> Int64 {
        let negative = token.first == UInt8(ascii: "-")
        let first = token.first == UInt8(ascii: "+") || negative ? 1 : 0
        guard let end = digitRun(token, from: first, isDigit: isDecimalDigit), end == token.count else {
            throw failure("invalid integer \(shown): expected digits, with underscores only between digits",
                at: start)
        }
        if token[first] == UInt8(ascii: "0") && end - first > 1 {
            throw failure("invalid integer \(shown): leading zeros are not allowed", at: start)
        }
        // Accumulating towards the sign of the result lets Int64.min through without overflowing.
        var value: Int64 = 0
        for byte in token[first...] where byte != UInt8(ascii: "_") {
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = negative
                ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflowA || overflowB {
                throw failure("integer \(shown) does not fit in 64 bits", at: start)
            }
            value = sum
        }
        return value
    }

    /// Floats: a decimal integer part, then a fraction, an exponent or both.
    private mutating func parseFloat(_ token: [UInt8], shown: String, at start: Int) throws(TOMLError) -> Double {
        let hasSign = token.first == UInt8(ascii: "+") || token.first == UInt8(ascii: "-")
        let first = hasSign ? 1 : 0
        guard let integerEnd = digitRun(token, from: first, isDigit: isDecimalDigit) else {
            throw failure("invalid float \(shown): expected digits before the fraction or exponent", at: start)
        }
        if token[first] == UInt8(ascii: "0") && integerEnd - first > 1 {
            throw failure("invalid float \(shown): leading zeros are not allowed", at: start)
        }
        var index = integerEnd
        if index < token.count && token[index] == UInt8(ascii: ".") {
            guard let end = digitRun(token, from: index + 1, isDigit: isDecimalDigit) else {
                throw failure("invalid float \(shown): a decimal point must have digits on both sides", at: start)
            }
            index = end
        }
        if index < token.count && (token[index] == UInt8(ascii: "e") || token[index] == UInt8(ascii: "E")) {
            index += 1
            if index < token.count && (token[index] == UInt8(ascii: "+") || token[index] == UInt8(ascii: "-")) {
                index += 1
            }
            guard let end = digitRun(token, from: index, isDigit: isDecimalDigit) else {
                throw failure("invalid float \(shown): the exponent needs digits", at: start)
            }
            index = end
        }
        guard index == token.count, index != integerEnd else {
            throw failure("invalid float \(shown)", at: start)
        }
        let digits = String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        guard let value = Double(digits) else { throw failure("invalid float \(shown)", at: start) }
        if value.isInfinite {
            throw failure("float \(shown) is too large for a 64-bit float", at: start)
        }
        return value
    }

    /// The end of a run of digits starting at `index` in which each `_` sits between two digits, or nil
    /// when there is no digit at `index` or an underscore is misplaced.
    private func digitRun(_ token: [UInt8], from index: Int, isDigit: (UInt8) -> Bool) -> Int? {
        guard index < token.count, isDigit(token[index]) else { return nil }
        var end = index + 1
        while end < token.count {
            if isDigit(token[end]) {
                end += 1
            } else if token[end] == UInt8(ascii: "_") {
                guard end + 1 < token.count, isDigit(token[end + 1]) else { return nil }
                end += 2
            } else {
                break
            }
        }
        return end
    }
}

func isDecimalDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
}

/// Checks TOML's date and time shapes (RFC 3339 with TOML's allowances): offset date-times, local
/// date-times, local dates and local times, with seconds required as TOML 1.0 says.
struct TOMLDateTimeScanner {
    private let text: [UInt8]
    private var index = 0

    private init(_ text: [UInt8]) {
        self.text = text
    }

    /// Nil when `text` is a valid date, time or date-time; otherwise what is wrong with it.
    static func problem(in text: [UInt8]) -> String? {
        var scanner = TOMLDateTimeScanner(text)
        return scanner.check()
    }

    private mutating func check() -> String? {
        guard text.count >= 5, text[4] == UInt8(ascii: "-") else {
            if let problem = checkTime() { return problem }
            return atEnd ? nil : "a local time cannot have an offset or other text after it"
        }
        guard let year = digits(4), skip("-"), let month = digits(2), skip("-"), let day = digits(2) else {
            return "expected a date as YYYY-MM-DD"
        }
        guard (1...12).contains(month) else { return "month \(month) is not in 1...12" }
        let days = Self.daysIn(month: month, year: year)
        guard (1...days).contains(day) else { return "day \(day) is not in 1...\(days) for that month" }
        if atEnd { return nil }
        guard skip("T") || skip("t") || skip(" ") else {
            return "expected 'T' or a space between the date and the time"
        }
        if let problem = checkTime() { return problem }
        if atEnd { return nil }
        if skip("Z") || skip("z") {
            return atEnd ? nil : "unexpected text after the offset"
        }
        guard skip("+") || skip("-"), let hours = digits(2), skip(":"), let minutes = digits(2) else {
            return "expected 'Z' or an offset as +HH:MM or -HH:MM after the time"
        }
        guard hours <= 23, minutes <= 59 else { return "offset hours or minutes are out of range" }
        return atEnd ? nil : "unexpected text after the offset"
    }

    /// `HH:MM:SS` with an optional fraction of a second.
    private mutating func checkTime() -> String? {
        guard let hour = digits(2), skip(":"), let minute = digits(2), skip(":"), let second = digits(2) else {
            return "expected a time as HH:MM:SS"
        }
        guard hour <= 23 else { return "hour \(hour) is not in 0...23" }
        guard minute <= 59 else { return "minute \(minute) is not in 0...59" }
        // 60 is a leap second, which RFC 3339 allows.
        guard second <= 60 else { return "second \(second) is not in 0...60" }
        if skip(".") {
            guard let next = peek, isDecimalDigit(next) else { return "expected digits after the decimal point" }
            while let next = peek, isDecimalDigit(next) { index += 1 }
        }
        return nil
    }

    private var atEnd: Bool { index == text.count }

    private var peek: UInt8? { index < text.count ? text[index] : nil }

    private mutating func skip(_ ascii: Unicode.Scalar) -> Bool {
        guard peek == UInt8(ascii: ascii) else { return false }
        index += 1
        return true
    }

    /// Exactly `count` decimal digits as a number.
    private mutating func digits(_ count: Int) -> Int? {
        var value = 0
        for _ in 0..<count {
            guard let byte = peek, isDecimalDigit(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            index += 1
        }
        return value
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2:
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }
}
