import BodycamTOML
import Testing

@Suite("TOML positions")
struct TOMLPositionTests {
    private func at(_ line: Int, _ column: Int) -> TOMLPosition {
        TOMLPosition(line: line, column: column)
    }

    @Test func valuesKnowWhereTheyAre() throws {
        let doc = try parseTOML("""
            a = 1
              b = "x"
            [t]
            c = [
              1,
              [2],
            ]
            """)
        #expect(doc.position(of: "a") == at(1, 5))
        #expect(doc.position(of: "b") == at(2, 7))
        #expect(doc.position(of: "t") == at(3, 1))
        #expect(table(doc, "t")?.position == at(3, 1))
        let c = try #require(table(doc, "t")?.entry("c"))
        #expect(c.position == at(4, 5))
        #expect(c.itemPositions == [at(5, 3), at(6, 3)])
        #expect(doc.position(of: "missing") == nil)
        #expect(doc.position == at(1, 1))
    }

    @Test func implicitTableTakesItsDefiningHeaderPosition() throws {
        let doc = try parseTOML("[a.b]\nx = 1\n\n[a]\ny = 2\n")
        #expect(doc.position(of: "a") == at(4, 1))
        #expect(table(doc, "a")?.position(of: "b") == at(1, 1))
        let implicitOnly = try parseTOML("\n[a.b]")
        #expect(implicitOnly.position(of: "a") == at(2, 1))
        // A table only implied by a header is defined by the first dotted key that adds to it.
        let laterDotted = try parseTOML("[a.b.c]\n[a]\n  b.y = 2\n")
        #expect(table(laterDotted, "a")?.position(of: "b") == at(3, 3))
    }

    @Test func dottedAndInlineTablesArePlacedAtTheirFirstKeyOrBrace() throws {
        let doc = try parseTOML("\n  p.q = 1\nt = { k = 1, m.n = 2 }")
        #expect(doc.position(of: "p") == at(2, 3))
        #expect(table(doc, "p")?.position(of: "q") == at(2, 9))
        #expect(doc.position(of: "t") == at(3, 5))
        #expect(table(doc, "t")?.position(of: "k") == at(3, 11))
        #expect(table(doc, "t")?.position(of: "m") == at(3, 14))
    }

    @Test func arrayOfTablesElementsArePlacedAtTheirHeaders() throws {
        let doc = try parseTOML("[[c]]\nx = 1\n\n[[c]]\nx = 2\n")
        let entry = try #require(doc.entry("c"))
        #expect(entry.position == at(1, 1))
        #expect(entry.itemPositions == [at(1, 1), at(4, 1)])
        #expect(entry.value.arrayValue?.last?.tableValue?.position(of: "x") == at(5, 5))
    }

    @Test func crlfAndMultilineStringsKeepLinesRight() throws {
        let doc = try parseTOML("a = 1\r\nb = 2\r\ns = '''\r\none\r\n'''\r\nn = 3")
        #expect(doc.position(of: "b") == at(2, 5))
        #expect(doc.position(of: "n") == at(6, 5))
        #expect(doc["s"] == .string("one\n"))
    }

    @Test func columnsCountUnicodeScalars() throws {
        let doc = try parseTOML("\"ключ\" = \"значение\"\n'емодзі' = 1\n\"😀\" = 'x'")
        #expect(doc.position(of: "ключ") == at(1, 10))
        #expect(doc.position(of: "емодзі") == at(2, 12))
        #expect(doc.position(of: "😀") == at(3, 7))
    }
}

@Suite("TOML robustness")
struct TOMLRobustnessTests {
    @Test func nestingUpToTheLimitParses() throws {
        let depth = tomlMaxDepth
        let arrays = "a = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try #require(try parseTOML(arrays)["a"])
        for _ in 1..<depth {
            value = try #require(value.arrayValue?.first)
        }
        #expect(value == .array([]))
        let opening = String(repeating: "{b = ", count: depth - 1)
        let inline = "a = " + opening + "{}" + String(repeating: "}", count: depth - 1)
        #expect(throws: Never.self) { try parseTOML(inline) }
    }

    @Test func deepArraysFailInsteadOfCrashing() throws {
        let error = try #require(syntaxError("a = " + String(repeating: "[", count: 100_000)))
        #expect(error.line == 1)
        #expect(error.column == 4 + tomlMaxDepth + 1)
        #expect(error.message.contains("nested more than \(tomlMaxDepth) levels"))
    }

    @Test func deepInlineTablesFailInsteadOfCrashing() throws {
        let error = try #require(syntaxError("a = " + String(repeating: "{b = ", count: 100_000)))
        #expect(error.message.contains("nested more than"))
    }

    @Test func mixedDeepNestingFails() {
        let text = "a = " + String(repeating: "[{b = ", count: 50_000)
        #expect(syntaxError(text)?.message.contains("nested more than") == true)
    }

    @Test func longDottedKeysAndHeadersFail() {
        let parts = Array(repeating: "k", count: 100_000).joined(separator: ".")
        #expect(syntaxError(parts + " = 1")?.message.contains("more than \(tomlMaxDepth) parts") == true)
        #expect(syntaxError("[" + parts + "]")?.message.contains("more than \(tomlMaxDepth) parts") == true)
        // Headers and dotted keys together may not build deeper tables than the limit either.
        let half = Array(repeating: "k", count: 40).joined(separator: ".")
        #expect(syntaxError("[" + half + "]\n" + half + " = 1")?.message.contains("nested more than") == true)
    }

    @Test func tenThousandKeysParseQuickly() throws {
        var text = ""
        for section in 0..<100 {
            text += "[section_\(section)]\n"
            for key in 0..<100 {
                switch key % 5 {
                case 0: text += "int_\(key) = \(key * 1000 + section)\n"
                case 1: text += "str_\(key) = \"value \(key) \\u00E9\" # comment\n"
                case 2: text += "flt_\(key) = \(key).5e1\n"
                case 3: text += "arr_\(key) = [1, 2, \"three\", { four = 4 }]\n"
                default: text += "dotted_\(key).inner = true\n"
                }
            }
        }
        let clock = ContinuousClock()
        var doc = TOMLTable()
        let elapsed = try clock.measure { doc = try parseTOML(text) }
        #expect(doc.count == 100)
        #expect(table(doc, "section_99")?.count == 100)
        #expect(value(doc, "section_42", "int_10") == .integer(10_042))
        #expect(elapsed < .seconds(1), "10 000 keys took \(elapsed)")
    }

    @Test func longSingleLineArrayParsesQuickly() throws {
        let items = (0..<20_000).map(String.init).joined(separator: ",")
        let clock = ContinuousClock()
        var doc = TOMLTable()
        let elapsed = try clock.measure { doc = try parseTOML("a = [" + items + "]") }
        #expect(doc.entry("a")?.itemPositions.last == TOMLPosition(line: 1, column: 5 + items.count - 4))
        #expect(elapsed < .seconds(1), "20 000 items took \(elapsed)")
    }

    @Test func everyPrefixOfAValidDocumentParsesOrFails() {
        let text = """
            # bodycam
            title = "TOML \\u00E9 \\U0001F600"
            [owner]
            dob = 1979-05-27T07:32:00-08:00
            ints = [ 0x1, 0o7, 0b1, +1_000, -0 ]
            [[cams]]
            lit = '''
            a'' '''
            ml = \"""\\
              x \"" \"""
            t = { a.b = [1.5e-3, inf, nan], c = {} }
            """
        var failures = 0
        var index = text.startIndex
        while index < text.endIndex {
            if syntaxError(String(text[..<index])) != nil { failures += 1 }
            index = text.index(after: index)
        }
        #expect(failures > 0)
        #expect(syntaxError(text) == nil)
    }

    /// Pseudo-random documents from TOML's own punctuation: they must all end in a value or an error.
    @Test func randomInputNeverCrashes() {
        var generator = SplitMix64(seed: 0x5EED)
        let alphabet = Array("[]{}=,.\"'\\#\n\r\t -_+:0123456789abefinstxuUoTZ ").map(String.init)
            + ["\"\"\"", "'''", "[[", "]]", "true", "inf", "1979-05-27", "07:32:00", "\\u00", "é"]
        var parsed = 0
        for _ in 0..<3000 {
            let length = Int(generator.next() % 60)
            var text = ""
            for _ in 0..<length {
                text += alphabet[Int(generator.next() % UInt64(alphabet.count))]
            }
            if syntaxError(text) == nil { parsed += 1 }
        }
        #expect(parsed < 3000)
    }

    @Test func mutatedDocumentsNeverCrash() {
        var generator = SplitMix64(seed: 42)
        let seed = Array("""
            a = [1, "two", { three = 3.0 }]
            [t."q k".r]
            s = \"""x\\
            y\"""
            [[u]]
            d = 1979-05-27 07:32:00Z
            """.utf8)
        let bytes: [UInt8] = Array("[]{}=,.\"'\\#\n\r \t0_e+-:".utf8)
        for _ in 0..<3000 {
            var text = seed
            for _ in 0..<(1 + generator.next() % 4) {
                let position = Int(generator.next() % UInt64(text.count))
                let byte = bytes[Int(generator.next() % UInt64(bytes.count))]
                switch generator.next() % 3 {
                case 0: text[position] = byte
                case 1: text.insert(byte, at: position)
                default: text.remove(at: position)
                }
            }
            _ = syntaxError(String(decoding: text, as: UTF8.self))
        }
    }
}

/// A small deterministic generator, so that failures can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
