import BodycamTOML
import Testing

/// The valid examples of the TOML 1.0.0 specification, construct by construct.
@Suite("TOML 1.0 spec examples")
struct TOMLSpecExampleTests {
    @Test func comments() throws {
        let doc = try parseTOML("""
            # This is a full-line comment
            key = "value"  # This is a comment at the end of a line
            another = "# This is not a comment"
            """)
        #expect(doc["key"] == .string("value"))
        #expect(doc["another"] == .string("# This is not a comment"))
        #expect(doc.count == 2)
    }

    @Test func bareAndQuotedKeys() throws {
        let doc = try parseTOML("""
            key = "value"
            bare_key = "value"
            bare-key = "value"
            1234 = "value"
            "127.0.0.1" = "value"
            "character encoding" = "value"
            "ʎǝʞ" = "value"
            'key2' = "value"
            'quoted "value"' = "value"
            """)
        #expect(doc.keys == [
            "key", "bare_key", "bare-key", "1234", "127.0.0.1", "character encoding", "ʎǝʞ", "key2",
            "quoted \"value\"",
        ])
    }

    @Test func emptyQuotedKeysAreValid() throws {
        #expect(try parseTOML(#""" = "blank""#)[""] == .string("blank"))
        #expect(try parseTOML("'' = 'blank'")[""] == .string("blank"))
    }

    @Test func dottedKeys() throws {
        let doc = try parseTOML("""
            name = "Orange"
            physical.color = "orange"
            physical.shape = "round"
            site."google.com" = true
            fruit.name = "banana"     # this is best practice
            fruit. color = "yellow"    # same as fruit.color
            fruit . flavor = "banana"   # same as fruit.flavor
            """)
        #expect(value(doc, "physical", "color") == .string("orange"))
        #expect(value(doc, "physical", "shape") == .string("round"))
        #expect(value(doc, "site", "google.com") == .boolean(true))
        #expect(table(doc, "fruit")?.keys == ["name", "color", "flavor"])
    }

    @Test func dottedKeysOutOfOrderAreValid() throws {
        let doc = try parseTOML("""
            apple.type = "fruit"
            orange.type = "fruit"

            apple.skin = "thin"
            orange.skin = "thick"

            apple.color = "red"
            orange.color = "orange"
            """)
        #expect(table(doc, "apple")?.keys == ["type", "skin", "color"])
        #expect(value(doc, "orange", "skin") == .string("thick"))
    }

    @Test func numericLookingKeyIsDotted() throws {
        let doc = try parseTOML(#"3.14159 = "pi""#)
        #expect(value(doc, "3", "14159") == .string("pi"))
    }

    @Test func basicStringEscapes() throws {
        let doc = try parseTOML(#"""
            str = "I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF."
            all = "\b\t\n\f\r\"\\\u0041\U0001F600"
            """#)
        #expect(doc["str"] == .string("I'm a string. \"You can quote me\". Name\tJos\u{E9}\nLocation\tSF."))
        #expect(doc["all"] == .string("\u{08}\t\n\u{0C}\r\"\\A\u{1F600}"))
    }

    @Test func multilineBasicStrings() throws {
        let doc = try parseTOML(#"""
            str1 = """
            Roses are red
            Violets are blue"""
            """#)
        #expect(doc["str1"] == .string("Roses are red\nViolets are blue"))
    }

    @Test func lineEndingBackslash() throws {
        let doc = try parseTOML(#"""
            str1 = "The quick brown fox jumps over the lazy dog."

            str2 = """
            The quick brown \


              fox jumps over \
                the lazy dog."""

            str3 = """\
                   The quick brown \
                   fox jumps over \
                   the lazy dog.\
                   """
            """#)
        #expect(doc["str1"] == doc["str2"])
        #expect(doc["str1"] == doc["str3"])
    }

    @Test func quotesInsideMultilineBasicStrings() throws {
        let doc = try parseTOML(#"""
            str4 = """Here are two quotation marks: "". Simple enough."""
            str5 = """Here are three quotation marks: ""\"."""
            str6 = """Here are fifteen quotation marks: ""\"""\"""\"""\"""\"."""
            str7 = """"This," she said, "is just a pointless statement.""""
            """#)
        #expect(doc["str4"] == .string(#"Here are two quotation marks: "". Simple enough."#))
        #expect(doc["str5"] == .string(#"Here are three quotation marks: """."#))
        #expect(doc["str6"] == .string("Here are fifteen quotation marks: " + String(repeating: "\"", count: 15) + "."))
        #expect(doc["str7"] == .string(#""This," she said, "is just a pointless statement.""#))
    }

    @Test func literalStrings() throws {
        let doc = try parseTOML(#"""
            winpath  = 'C:\Users\nodejs\templates'
            winpath2 = '\\ServerX\admin$\system32\'
            quoted   = 'Tom "Dubs" Preston-Werner'
            regex    = '<\i\c*\s*>'
            """#)
        #expect(doc["winpath"] == .string(#"C:\Users\nodejs\templates"#))
        #expect(doc["winpath2"] == .string(#"\\ServerX\admin$\system32\"#))
        #expect(doc["quoted"] == .string(#"Tom "Dubs" Preston-Werner"#))
        #expect(doc["regex"] == .string(#"<\i\c*\s*>"#))
    }

    @Test func multilineLiteralStrings() throws {
        let doc = try parseTOML(#"""
            regex2 = '''I [dw]on't need \d{2} apples'''
            lines  = '''
            The first newline is
            trimmed in raw strings.
               All other whitespace
               is preserved.
            '''
            quot15 = '''Here are fifteen quotation marks: """""""""""""""'''
            apos15 = "Here are fifteen apostrophes: '''''''''''''''"
            str = ''''That,' she said, 'is still pointless.''''
            """#)
        #expect(doc["regex2"] == .string(#"I [dw]on't need \d{2} apples"#))
        #expect(doc["lines"] == .string(
            "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"))
        #expect(doc["quot15"] == .string("Here are fifteen quotation marks: " + String(repeating: "\"", count: 15)))
        #expect(doc["apos15"] == .string("Here are fifteen apostrophes: " + String(repeating: "'", count: 15)))
        #expect(doc["str"] == .string("'That,' she said, 'is still pointless.'"))
    }

    @Test func integers() throws {
        let doc = try parseTOML("""
            int1 = +99
            int2 = 42
            int3 = 0
            int4 = -17
            int5 = 1_000
            int6 = 5_349_221
            int7 = 53_49_221  # Indian number system grouping
            int8 = 1_2_3_4_5  # VALID but discouraged
            hex1 = 0xDEADBEEF
            hex2 = 0xdeadbeef
            hex3 = 0xdead_beef
            oct1 = 0o01234567
            oct2 = 0o755 # useful for Unix file permissions
            bin1 = 0b11010110
            zeros = [+0, -0, 0x0, 0o0, 0b0]
            max = 9223372036854775807
            min = -9223372036854775808
            hexmax = 0x7FFFFFFFFFFFFFFF
            """)
        let expected: [(String, Int64)] = [
            ("int1", 99), ("int2", 42), ("int3", 0), ("int4", -17), ("int5", 1000), ("int6", 5_349_221),
            ("int7", 5_349_221), ("int8", 12345), ("hex1", 0xDEAD_BEEF), ("hex2", 0xDEAD_BEEF),
            ("hex3", 0xDEAD_BEEF), ("oct1", 0o1234567), ("oct2", 0o755), ("bin1", 0b1101_0110),
            ("max", .max), ("min", .min), ("hexmax", .max),
        ]
        for (key, number) in expected {
            #expect(doc[key] == .integer(number), "\(key)")
        }
        #expect(doc["zeros"] == .array(Array(repeating: .integer(0), count: 5)))
    }

    @Test func floats() throws {
        let doc = try parseTOML("""
            flt1 = +1.0
            flt2 = 3.1415
            flt3 = -0.01
            flt4 = 5e+22
            flt5 = 1e06
            flt6 = -2E-2
            flt7 = 6.626e-34
            flt8 = 224_617.445_991_228
            sf1 = inf  # positive infinity
            sf2 = +inf # positive infinity
            sf3 = -inf # negative infinity
            sf4 = nan  # actual sNaN/qNaN encoding is implementation-specific
            sf5 = +nan # same as `nan`
            sf6 = -nan # valid, actual encoding is implementation-specific
            zero = -0.0
            """)
        let expected: [(String, Double)] = [
            ("flt1", 1.0), ("flt2", 3.1415), ("flt3", -0.01), ("flt4", 5e22), ("flt5", 1e6), ("flt6", -2e-2),
            ("flt7", 6.626e-34), ("flt8", 224_617.445_991_228), ("sf1", .infinity), ("sf2", .infinity),
            ("sf3", -.infinity), ("zero", -0.0),
        ]
        for (key, number) in expected {
            #expect(doc[key] == .float(number), "\(key)")
        }
        for key in ["sf4", "sf5", "sf6"] {
            #expect(doc[key]?.floatValue?.isNaN == true, "\(key)")
        }
    }

    @Test func booleans() throws {
        let doc = try parseTOML("bool1 = true\nbool2 = false")
        #expect(doc["bool1"] == .boolean(true))
        #expect(doc["bool2"] == .boolean(false))
    }

    @Test func datesAndTimes() throws {
        let doc = try parseTOML("""
            odt1 = 1979-05-27T07:32:00Z
            odt2 = 1979-05-27T00:32:00-07:00
            odt3 = 1979-05-27T00:32:00.999999-07:00
            odt4 = 1979-05-27 07:32:00Z
            ldt1 = 1979-05-27T07:32:00
            ldt2 = 1979-05-27T00:32:00.999999
            ld1 = 1979-05-27
            lt1 = 07:32:00
            lt2 = 00:32:00.999999
            lower = 1979-05-27t07:32:00z
            leap = 2000-02-29
            in_array = [1979-05-27, 07:32:00, 1979-05-27 07:32:00]
            """)
        let expected = [
            ("odt1", "1979-05-27T07:32:00Z"), ("odt2", "1979-05-27T00:32:00-07:00"),
            ("odt3", "1979-05-27T00:32:00.999999-07:00"), ("odt4", "1979-05-27 07:32:00Z"),
            ("ldt1", "1979-05-27T07:32:00"), ("ldt2", "1979-05-27T00:32:00.999999"), ("ld1", "1979-05-27"),
            ("lt1", "07:32:00"), ("lt2", "00:32:00.999999"), ("lower", "1979-05-27t07:32:00z"),
            ("leap", "2000-02-29"),
        ]
        for (key, text) in expected {
            #expect(doc[key] == .dateTime(text), "\(key)")
        }
        #expect(doc["in_array"] == .array([
            .dateTime("1979-05-27"), .dateTime("07:32:00"), .dateTime("1979-05-27 07:32:00"),
        ]))
    }

    @Test func arrays() throws {
        let doc = try parseTOML("""
            integers = [ 1, 2, 3 ]
            colors = [ "red", "yellow", "green" ]
            nested_arrays_of_ints = [ [ 1, 2 ], [3, 4, 5] ]
            nested_mixed_array = [ [ 1, 2 ], ["a", "b", "c"] ]
            string_array = [ "all", 'strings', \"""are the same\""", '''type''' ]

            # Mixed-type arrays are allowed
            numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]
            contributors = [
              "Foo Bar <foo@example.com>",
              { name = "Baz Qux", email = "bazqux@example.com", url = "https://example.com/bazqux" }
            ]
            integers2 = [
              1, 2, 3
            ]

            integers3 = [
              1,
              2, # this is ok
            ]
            empty = [ ]
            commented = [ # first
              # alone
              1 # after
              , 2
            ]
            """)
        #expect(doc["integers"] == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(doc["nested_arrays_of_ints"] == .array([
            .array([.integer(1), .integer(2)]), .array([.integer(3), .integer(4), .integer(5)]),
        ]))
        #expect(doc["string_array"] == .array(["all", "strings", "are the same", "type"].map(TOMLValue.string)))
        #expect(doc["numbers"] == .array([
            .float(0.1), .float(0.2), .float(0.5), .integer(1), .integer(2), .integer(5),
        ]))
        let contributor = makeTable([
            "name": .string("Baz Qux"), "email": .string("bazqux@example.com"),
            "url": .string("https://example.com/bazqux"),
        ])
        #expect(doc["contributors"] == .array([.string("Foo Bar <foo@example.com>"), .table(contributor)]))
        #expect(doc["integers2"] == doc["integers"])
        #expect(doc["integers3"] == .array([.integer(1), .integer(2)]))
        #expect(doc["empty"] == .array([]))
        #expect(doc["commented"] == .array([.integer(1), .integer(2)]))
    }

    @Test func tables() throws {
        let doc = try parseTOML("""
            [table]

            [table-1]
            key1 = "some string"
            key2 = 123

            [table-2]
            key1 = "another string"
            key2 = 456

            [dog."tater.man"]
            type.name = "pug"
            """)
        #expect(doc["table"] == .table(TOMLTable()))
        #expect(value(doc, "table-1", "key2") == .integer(123))
        #expect(value(doc, "table-2", "key1") == .string("another string"))
        #expect(value(doc, "dog", "tater.man", "type", "name") == .string("pug"))
    }

    @Test func headerWhitespaceAndQuoting() throws {
        let doc = try parseTOML("""
            [a.b.c]            # this is best practice
            [ d.e.f ]          # same as [d.e.f]
            [ g .  h  . i ]    # same as [g.h.i]
            [ j . "ʞ" . 'l' ]  # same as [j."ʞ".'l']
            """)
        #expect(table(doc, "a", "b", "c") != nil)
        #expect(table(doc, "d", "e", "f") != nil)
        #expect(table(doc, "g", "h", "i") != nil)
        #expect(table(doc, "j", "ʞ", "l") != nil)
    }

    @Test func superTableAfterwards() throws {
        let doc = try parseTOML("""
            # [x] you
            # [x.y] don't
            # [x.y.z] need these
            [x.y.z.w] # for this to work

            [x] # defining a super-table afterward is ok
            key = 1
            """)
        #expect(table(doc, "x", "y", "z", "w") != nil)
        #expect(value(doc, "x", "key") == .integer(1))
    }

    @Test func tablesOutOfOrder() throws {
        let doc = try parseTOML("[fruit.apple]\n[animal]\n[fruit.orange]\n")
        #expect(table(doc, "fruit")?.keys == ["apple", "orange"])
    }

    @Test func rootTableThenHeader() throws {
        let doc = try parseTOML("""
            # Top-level table begins.
            name = "Fido"
            breed = "pug"

            # Top-level table ends.
            [owner]
            name = "Regina Dogman"
            member_since = 1999-08-04
            """)
        #expect(doc["name"] == .string("Fido"))
        #expect(value(doc, "owner", "member_since") == .dateTime("1999-08-04"))
    }

    @Test func dottedKeysDefineTables() throws {
        let doc = try parseTOML("""
            fruit.apple.color = "red"
            fruit.apple.taste.sweet = true
            """)
        #expect(value(doc, "fruit", "apple", "taste", "sweet") == .boolean(true))
    }

    @Test func subTableOfDottedTable() throws {
        let doc = try parseTOML("""
            [fruit]
            apple.color = "red"
            apple.taste.sweet = true

            [fruit.apple.texture]  # you can add sub-tables
            smooth = true
            """)
        #expect(value(doc, "fruit", "apple", "texture", "smooth") == .boolean(true))
        #expect(value(doc, "fruit", "apple", "color") == .string("red"))
    }

    @Test func inlineTablesEqualStandardTables() throws {
        let inline = try parseTOML("""
            name = { first = "Tom", last = "Preston-Werner" }
            point = { x = 1, y = 2 }
            animal = { type.name = "pug" }
            """)
        let standard = try parseTOML("""
            [name]
            first = "Tom"
            last = "Preston-Werner"

            [point]
            x = 1
            y = 2

            [animal]
            type.name = "pug"
            """)
        #expect(inline == standard)
        #expect(try parseTOML("empty = {}")["empty"] == .table(TOMLTable()))
        let nested = try parseTOML("n = { a = { b = [ { c = 1 } ] } }")
        #expect(value(nested, "n", "a", "b") == .array([.table(makeTable(["c": .integer(1)]))]))
    }

    @Test func arrayOfTables() throws {
        let doc = try parseTOML("""
            [[products]]
            name = "Hammer"
            sku = 738594937

            [[products]]  # empty table within the array

            [[products]]
            name = "Nail"
            sku = 284758393

            color = "gray"
            """)
        guard case .array(let products)? = doc["products"] else {
            Issue.record("products is not an array")
            return
        }
        #expect(products.count == 3)
        #expect(products[1] == .table(TOMLTable()))
        #expect(products[2].tableValue?["color"] == .string("gray"))
        #expect(products[0].tableValue?["sku"] == .integer(738_594_937))
    }

    @Test func nestedArraysOfTables() throws {
        let doc = try parseTOML("""
            [[fruits]]
            name = "apple"

            [fruits.physical]  # subtable
            color = "red"
            shape = "round"

            [[fruits.varieties]]  # nested array of tables
            name = "red delicious"

            [[fruits.varieties]]
            name = "granny smith"


            [[fruits]]
            name = "banana"

            [[fruits.varieties]]
            name = "plantain"
            """)
        let fruits = doc["fruits"]?.arrayValue ?? []
        #expect(fruits.count == 2)
        let apple = fruits.first?.tableValue ?? TOMLTable()
        #expect(value(apple, "physical", "color") == .string("red"))
        #expect(apple["varieties"] == .array([
            .table(makeTable(["name": .string("red delicious")])),
            .table(makeTable(["name": .string("granny smith")])),
        ]))
        #expect(fruits.last?.tableValue?["varieties"] == .array([.table(makeTable(["name": .string("plantain")]))]))
    }

    @Test func arrayOfInlineTables() throws {
        let doc = try parseTOML("""
            points = [ { x = 1, y = 2, z = 3 },
                       { x = 7, y = 8, z = 9 },
                       { x = 2, y = 4, z = 8 } ]
            """)
        #expect(doc["points"]?.arrayValue?.count == 3)
        let second = makeTable(["x": .integer(7), "y": .integer(8), "z": .integer(9)])
        #expect(doc["points"]?.arrayValue?[1] == .table(second))
    }

    @Test func crlfLineEndings() throws {
        let doc = try parseTOML("a = 1\r\n# comment\r\n[t]\r\nb = \"\"\"\r\nx\r\ny\"\"\"\r\nc = [\r\n 1,\r\n]\r\n")
        #expect(doc["a"] == .integer(1))
        #expect(value(doc, "t", "b") == .string("x\ny"))
        #expect(value(doc, "t", "c") == .array([.integer(1)]))
    }

    @Test func byteOrderMarkAndEmptyDocument() throws {
        #expect(try parseTOML("\u{FEFF}a = 1")["a"] == .integer(1))
        #expect(try parseTOML("").isEmpty)
        #expect(try parseTOML("\n  \n# only a comment\n").isEmpty)
    }

    @Test func implicitTableCanGetKeysFromDottedKeysLater() throws {
        // `a.b` exists only as the parent of [a.b.c], so [a] may still add to it with dotted keys.
        let doc = try parseTOML("[a.b.c]\nz = 1\n[a]\nb.y = 2\n")
        #expect(value(doc, "a", "b", "y") == .integer(2))
        #expect(value(doc, "a", "b", "c", "z") == .integer(1))
    }
}
