import BodycamTOML
import Testing

/// A document that must not parse, the place its error must name and a piece of the message.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var line: Int
    var column: Int
    var message: String

    init(_ name: String, _ text: String, _ line: Int, _ column: Int, _ message: String) {
        self.name = name
        self.text = text
        self.line = line
        self.column = column
        self.message = message
    }

    var testDescription: String { name }
}

@Suite("TOML errors name their line and column")
struct TOMLErrorTests {
    static let structure: [InvalidCase] = [
        InvalidCase("duplicate key", "a = 1\nb = 2\na = 3", 3, 1, "duplicate key a (first defined at line 1)"),
        InvalidCase("duplicate dotted key", "x.y = 1\nx.y = 2", 2, 3, "duplicate key x.y (first defined at line 1)"),
        InvalidCase("duplicate quoted key", "\"a\" = 1\na = 2", 2, 1, "duplicate key a"),
        InvalidCase("key over dotted table", "a.b = 1\na = 2", 2, 1, "duplicate key a (first defined at line 1)"),
        InvalidCase("table redefined", "[fruit]\napple = 1\n\n[fruit]\norange = 2", 4, 2,
            "table [fruit] is already defined at line 1"),
        InvalidCase("table over key", "[fruit]\napple = \"red\"\n\n[fruit.apple]\ntexture = \"smooth\"", 4, 8,
            "key fruit.apple is already defined as a string at line 2"),
        InvalidCase("header over dotted table", "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
            + "[fruit.apple]", 4, 8, "table [fruit.apple] is already defined by dotted keys at line 2"),
        InvalidCase("header over nested dotted table", "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
            + "[fruit.apple.taste]", 4, 14, "table [fruit.apple.taste] is already defined by dotted keys at line 3"),
        InvalidCase("header over root dotted table", "a.b = 1\n[a]", 2, 2,
            "table [a] is already defined by dotted keys at line 1"),
        InvalidCase("dotted keys into header table", "[a.b]\nx = 1\n[a]\nb.y = 2", 4, 1,
            "cannot add keys to table b (defined at line 1) with dotted keys from another table"),
        InvalidCase("dotted keys into array of tables", "[[t.a]]\nx = 1\n[t]\na.y = 2", 4, 1,
            "cannot add keys to the array of tables a (line 1) with dotted keys"),
        InvalidCase("array of tables onto static array", "fruits = []\n\n[[fruits]] # Not allowed", 3, 3,
            "[[fruits]] cannot append to the static array fruits defined at line 1"),
        InvalidCase("table over array of tables", "[[fruits]]\n[[fruits.varieties]]\n[fruits.varieties]", 3, 9,
            "[fruits.varieties] is already an array of tables (line 2)"),
        InvalidCase("array of tables over table", "[[fruits]]\n[fruits.physical]\n[[fruits.physical]]", 3, 10,
            "[[fruits.physical]] cannot append to fruits.physical, which is a table (line 2)"),
        InvalidCase("parent array defined after child", "[fruit.physical]\ncolor = \"red\"\n[[fruit]]", 3, 3,
            "[[fruit]] cannot append to fruit, which is a table (line 1)"),
        InvalidCase("header into static array", "a = [1]\n[a.b]", 2, 2, "cannot add to a: it is a static array"),
        InvalidCase("dotted key into inline table", "[product]\ntype = { name = \"Nail\" }\ntype.edible = false", 3, 1,
            "cannot add to the inline table type (line 2): inline tables are complete as written"),
        InvalidCase("header into inline table", "a = { b = 1 }\n[a.c]", 2, 2, "cannot add to the inline table a"),
        InvalidCase("header over inline table", "a = {}\n[a]", 2, 2,
            "table [a] is already defined as an inline table at line 1"),
        InvalidCase("inline table over dotted table", "[product]\ntype.name = \"Nail\"\ntype = { edible = false }",
            3, 1, "duplicate key type (first defined at line 2)"),
        InvalidCase("integer used as table", "fruit.apple = 1\nfruit.apple.smooth = true", 2, 7,
            "cannot use fruit.apple as a table: it is already an integer (line 1)"),
        InvalidCase("duplicate key in inline table", "a = {b = 1, b = 2}", 1, 13, "duplicate key b"),
    ]

    static let syntax: [InvalidCase] = [
        InvalidCase("invalid character starting a key", "@ = 1", 1, 1, "expected a key, found '@'"),
        InvalidCase("invalid character in a key", "a@b = 1", 1, 2, "expected '=' after key a, found '@'"),
        InvalidCase("non-ASCII bare key", "é = 1", 1, 1, "expected a key, found 'é'"),
        InvalidCase("missing key", "= \"no key name\"", 1, 1, "expected a key, found '='"),
        InvalidCase("missing equals", "key value", 1, 5, "expected '=' after key key, found 'v'"),
        InvalidCase("missing equals at end of line", "a = 1\nkey\n", 2, 4, "expected '=' after key key, found newline"),
        InvalidCase("missing value", "key = # INVALID", 1, 7, "expected a value, found '#'"),
        InvalidCase("missing value at end of file", "key =", 1, 6, "expected a value, found end of file"),
        InvalidCase("two pairs on a line", "first = \"Tom\" last = \"Preston-Werner\"", 1, 15,
            "expected end of line after value, found 'l'"),
        InvalidCase("garbage after number", "a = 1 2", 1, 7, "expected end of line after value, found '2'"),
        InvalidCase("garbage after header", "[a] b = 1", 1, 5, "expected end of line after table header, found 'b'"),
        InvalidCase("unquoted string", "a = hello", 1, 5, "invalid value 'hello' (strings must be in quotes)"),
        InvalidCase("unclosed header", "[a\nb = 1", 1, 3, "expected ']' to close the table header, found newline"),
        InvalidCase("unclosed array header", "[[a]\n", 1, 4, "expected ']]' to close the table header"),
        InvalidCase("bare carriage return", "a = 1\rb = 2", 1, 6, "carriage return must be followed by a line feed"),
        InvalidCase("multi-line key", "\"\"\"a\"\"\" = 1", 1, 1, "a multi-line string cannot be used as a key"),
        InvalidCase("control character in comment", "a = 1 # bell \u{07}", 1, 14,
            "control character U+0007 is not allowed in a comment"),
        InvalidCase("unterminated basic string", "a = 1\nb = \"abc", 2, 5, "unterminated string"),
        InvalidCase("basic string broken by newline", "a = \"abc\nb = 1", 1, 5, "unterminated string"),
        InvalidCase("unterminated literal string", "a = 'abc", 1, 5, "unterminated string"),
        InvalidCase("unterminated multi-line string", "a = \"\"\"abc\n\n", 1, 5, "unterminated multi-line string"),
        InvalidCase("unterminated multi-line literal", "\na = '''abc", 2, 5, "unterminated multi-line string"),
        InvalidCase("unterminated quoted key", "\"a = 1", 1, 1, "unterminated string"),
        InvalidCase("control character in basic string", "a = \"x\u{01}y\"", 1, 7,
            "control character U+0001 must be escaped in a string"),
        InvalidCase("DEL in literal string", "a = 'x\u{7F}'", 1, 7, "control character U+007F"),
        InvalidCase("NUL in multi-line string", "a = \"\"\"\n\u{00}\"\"\"", 2, 1, "control character U+0000"),
        InvalidCase("too many closing quotes", "a = \"\"\"x\"\"\"\"\"\"", 1, 9, "too many quotes"),
        InvalidCase("unknown escape", #"a = "\x41""#, 1, 6, "invalid escape sequence: backslash followed by 'x'"),
        InvalidCase("TOML 1.1 escape", #"a = "\e""#, 1, 6, "invalid escape sequence"),
        InvalidCase("escaped space", #"a = """\ x""""#, 1, 8, "invalid escape sequence: backslash followed by space"),
        InvalidCase("surrogate escape", #"a = "\uD800""#, 1, 6, "U+D800 is not a Unicode scalar value"),
        InvalidCase("escape above U+10FFFF", #"a = "\U00110000""#, 1, 6, "is not a Unicode scalar value"),
        InvalidCase("short unicode escape", #"a = "\u12""#, 1, 6, "\\u escape needs exactly 4 hexadecimal digits"),
        InvalidCase("short long unicode escape", #"a = "\U1234""#, 1, 6, "\\U escape needs exactly 8"),
        InvalidCase("integer overflow", "a = 9223372036854775808", 1, 5, "does not fit in 64 bits"),
        InvalidCase("integer underflow", "a = -9223372036854775809", 1, 5, "does not fit in 64 bits"),
        InvalidCase("hex overflow", "a = 0x8000000000000000", 1, 5, "does not fit in 64 bits"),
        InvalidCase("leading zero", "a = 012", 1, 5, "leading zeros are not allowed"),
        InvalidCase("double underscore", "a = 1__2", 1, 5, "underscores only between digits"),
        InvalidCase("trailing underscore", "a = 1_", 1, 5, "underscores only between digits"),
        InvalidCase("leading underscore", "a = _1", 1, 5, "invalid value '_1'"),
        InvalidCase("underscore after prefix", "a = 0x_1", 1, 5, "underscores only between digits"),
        InvalidCase("capital prefix", "a = 0X1F", 1, 5, "invalid integer '0X1F'"),
        InvalidCase("signed hex", "a = -0x1", 1, 5, "cannot have a sign"),
        InvalidCase("bad octal digit", "a = 0o8", 1, 5, "expected base-8 digits"),
        InvalidCase("float without leading digit", "invalid_float_1 = .7", 1, 19, "invalid float '.7'"),
        InvalidCase("float without trailing digit", "invalid_float_2 = 7.", 1, 19,
            "a decimal point must have digits on both sides"),
        InvalidCase("float dot before exponent", "invalid_float_3 = 3.e+20", 1, 19, "invalid float '3.e+20'"),
        InvalidCase("float exponent without digits", "a = 1e", 1, 5, "the exponent needs digits"),
        InvalidCase("float too large", "a = 1e400", 1, 5, "too large for a 64-bit float"),
        InvalidCase("capitalised inf", "a = Inf", 1, 5, "invalid value 'Inf'"),
        InvalidCase("capitalised boolean", "a = True", 1, 5, "invalid value 'True'"),
        InvalidCase("February 29 in a common year", "a = 2021-02-29", 1, 5, "day 29 is not in 1...28"),
        InvalidCase("hour 24", "a = 24:00:00", 1, 5, "hour 24 is not in 0...23"),
        InvalidCase("time without seconds", "a = 1979-05-27T07:32", 1, 5, "expected a time as HH:MM:SS"),
        InvalidCase("bad offset", "a = 1979-05-27T07:32:00+7", 1, 5, "offset as +HH:MM"),
        InvalidCase("month 13", "a = 2006-13-01", 1, 5, "month 13 is not in 1...12"),
        InvalidCase("array without comma", "a = [1 2]", 1, 8, "expected ',' or ']' after an array item, found '2'"),
        InvalidCase("array double comma", "a = [1,,2]", 1, 8, "expected a value, found ','"),
        InvalidCase("array only comma", "a = [,]", 1, 6, "expected a value, found ','"),
        InvalidCase("unterminated array", "a = [1,\n2\n", 1, 5, "unterminated array: missing ']'"),
        InvalidCase("inline table trailing comma", "a = {b = 1,}", 1, 12,
            "trailing comma is not allowed in an inline table"),
        InvalidCase("inline table across lines", "a = {b = 1\n}", 1, 11,
            "inline table must be closed with '}' on the line where it starts"),
        InvalidCase("inline table missing comma", "a = {b = 1 c = 2}", 1, 12, "expected ',' or '}'"),
        InvalidCase("unterminated inline table", "a = {b = 1", 1, 5, "unterminated inline table"),
        InvalidCase("columns count characters, not bytes", "\"ключ\" = \"значение\" x", 1, 21,
            "expected end of line after value, found 'x'"),
        InvalidCase("tab is one column", "\ta = 1 x", 1, 8, "found 'x'"),
        InvalidCase("line count includes multi-line strings",
            "s = \"\"\"\none\ntwo\"\"\"\nt = \"\"\"\r\n\r\n\"\"\" ?", 6, 5, "found '?'"),
    ]

    @Test(arguments: structure)
    func structureErrors(_ invalid: InvalidCase) throws {
        let error = try #require(syntaxError(invalid.text))
        #expect(error.line == invalid.line)
        #expect(error.column == invalid.column)
        #expect(error.message.contains(invalid.message), "\(error.message)")
    }

    @Test(arguments: syntax)
    func syntaxErrors(_ invalid: InvalidCase) throws {
        let error = try #require(syntaxError(invalid.text))
        #expect(error.line == invalid.line)
        #expect(error.column == invalid.column)
        #expect(error.message.contains(invalid.message), "\(error.message)")
    }

    @Test func descriptionIsLineColonColumn() throws {
        let error = try #require(syntaxError("a = 1\nb = \n"))
        #expect(error.description == "2:5: expected a value, found newline")
        #expect(error.position == TOMLPosition(line: 2, column: 5))
    }

    @Test func arrayOfTablesSpecExampleFails() {
        let text = """
            [[fruits]]
            name = "apple"

            [[fruits.varieties]]
            name = "red delicious"

            # INVALID: This table conflicts with the previous array of tables
            [fruits.varieties]
            name = "granny smith"
            """
        #expect(syntaxError(text)?.line == 8)
    }

    @Test func eachArrayOfTablesElementStartsFresh() throws {
        // A sub-table may be defined once per element, not once per document.
        let doc = try parseTOML("[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2\n")
        #expect(doc["a"]?.arrayValue?.count == 2)
        #expect(syntaxError("[[a]]\n[a.b]\n[a.b]\n")?.line == 3)
    }
}
