import BodycamTOML
import Testing

@Suite("Strict configuration reader")
struct ConfigTableTests {
    static let sample = """
        log_level = "info"

        [video]
        preset = "fast"
        crf = 23
        tune = "film"
        tags = ["day", "night"]

        [recording]
        pre_event_seconds = 30
        gain_db = 2

        [recording.storage]
        path = "/data"

        [[camera]]
        name = "front"
        width = 1920

        [[camera]]
        name = "rear"
        width = 1280
        """

    @Test func readsEveryTypeAndFinishesCleanly() throws {
        let config = try ConfigTable(parsing: Self.sample, file: "config.toml")
        #expect(try config.string("log_level", oneOf: ["debug", "info", "error"]) == "info")
        let video = try #require(try config.table("video"))
        #expect(try video.string("preset") == "fast")
        #expect(try video.int("crf", range: 0...51) == 23)
        #expect(try video.string("tune") == "film")
        #expect(try video.strings("tags") == ["day", "night"])
        #expect(try video.bool("hdr") == nil)
        try video.finish()

        let recording = try #require(try config.table("recording"))
        #expect(try recording.int("pre_event_seconds", range: 0...120) == 30)
        // Integers are accepted where a number is expected.
        #expect(try recording.double("gain_db", range: -20...20) == 2.0)
        let storage = try #require(try recording.table("storage"))
        #expect(try storage.string("path") == "/data")
        #expect(storage.keyPath == "recording.storage")
        try storage.finish()
        try recording.finish()

        let cameras = try config.tables("camera")
        #expect(cameras.count == 2)
        #expect(try cameras.map { (camera) throws(ConfigError) -> String? in try camera.string("name") } == [
            "front", "rear",
        ])
        #expect(cameras[1].keyPath == "camera[1]")
        #expect(cameras[1].headerLine == 20)
        #expect(try config.tables("microphone").isEmpty)
        #expect(try config.table("audio") == nil)
        try config.finish()
    }

    @Test func outOfRangeNamesFileLineTableAndKey() throws {
        let text = "# sim board\n\n[recording]\n\n\n\n\n\n\n\n\npre_event_seconds = 150\n"
        let recording = try #require(try ConfigTable(parsing: text, file: "board/sim.toml").table("recording"))
        let error = try #require(configError { () throws(ConfigError) in
            _ = try recording.int("pre_event_seconds", range: 0...120)
        })
        #expect(error.description == "board/sim.toml:12: [recording] pre_event_seconds = 150 is out of range 0...120")
        #expect(error == ConfigError(file: "board/sim.toml", line: 12, keyPath: "recording.pre_event_seconds",
            message: "[recording] pre_event_seconds = 150 is out of range 0...120"))
    }

    @Test func unknownKeyListsTheKnownKeys() throws {
        let text = "[video]\npreset = \"fast\"\npresett = \"slow\"\n"
        let config = try ConfigTable(parsing: text, file: "config.toml")
        let video = try #require(try config.table("video"))
        _ = try video.string("preset")
        _ = try video.string("tune")
        _ = try video.int("crf", range: 0...51)
        let error = try #require(configError { () throws(ConfigError) in try video.finish() })
        #expect(error.description == "config.toml:3: unknown key [video] presett (known keys: preset, tune, crf)")
        #expect(error.line == 3)
        #expect(error.keyPath == "video.presett")
    }

    @Test func unreadSubTableIsAnUnknownKey() throws {
        let config = try ConfigTable(parsing: "[video]\ncrf = 1\n\n[audoi]\ngain = 1\n", file: "config.toml")
        _ = try config.table("video")
        _ = try config.table("audio")
        let error = try #require(configError { () throws(ConfigError) in try config.finish() })
        #expect(error.description == "config.toml:4: unknown key audoi (known keys: video, audio)")
    }

    @Test func unknownKeyWithNothingKnown() throws {
        let config = try ConfigTable(parsing: "x = 1", file: "empty.toml")
        let error = try #require(configError { () throws(ConfigError) in try config.finish() })
        #expect(error.description == "empty.toml:1: unknown key x (known keys: none)")
    }

    @Test func wrongTypeShowsWhatWasFound() throws {
        let text = "[video]\npreset = \"fast\"\n\ncrf = \"high\"\n"
        let video = try #require(try ConfigTable(parsing: text, file: "config.toml").table("video"))
        let error = try #require(configError { () throws(ConfigError) in
            _ = try video.double("crf", range: 0...51)
        })
        #expect(error.description == #"config.toml:4: [video] crf must be a number, found string "high""#)
        let read = "[video] preset must be"
        let found = "found string \"fast\""
        #expect(configError { () throws(ConfigError) in _ = try video.int("preset", range: 0...1) }?.message
            == "\(read) an integer, \(found)")
        #expect(configError { () throws(ConfigError) in _ = try video.bool("preset") }?.message
            == "\(read) a boolean, \(found)")
        #expect(configError { () throws(ConfigError) in _ = try video.table("preset") }?.message
            == "\(read) a table, \(found)")
        #expect(configError { () throws(ConfigError) in _ = try video.tables("preset") }?.message
            == "\(read) an array of tables, \(found)")
        #expect(configError { () throws(ConfigError) in _ = try video.strings("preset") }?.message
            == "\(read) an array of strings, \(found)")
        #expect(configError { () throws(ConfigError) in _ = try video.ints("preset", range: 0...1) }?.message
            == "\(read) an array of integers, \(found)")
        #expect(try video.string("crf") == "high")
    }

    @Test func floatIsNotAnInteger() throws {
        let config = try ConfigTable(parsing: "fps = 29.97", file: "c.toml")
        let error = configError { () throws(ConfigError) in _ = try config.int("fps", range: 1...120) }
        #expect(error?.description == "c.toml:1: fps must be an integer, found float 29.97")
    }

    @Test func tableInsteadOfArrayOfTables() throws {
        let config = try ConfigTable(parsing: "[camera]\nname = \"x\"", file: "c.toml")
        let error = configError { () throws(ConfigError) in _ = try config.tables("camera") }
        #expect(error?.description == "c.toml:1: camera must be an array of tables, found table")
        let other = try ConfigTable(parsing: "[[camera]]\n", file: "c.toml")
        let tableError = configError { () throws(ConfigError) in _ = try other.table("camera") }
        #expect(tableError?.description == "c.toml:1: camera must be a table, found array of tables")
    }

    @Test func nonFiniteFloatsAreAlwaysOutOfRange() throws {
        let config = try ConfigTable(parsing: "a = nan\nb = inf\nc = -inf\nd = 0.5\n", file: "c.toml")
        let wide = -Double.infinity...Double.infinity
        #expect(configError { () throws(ConfigError) in _ = try config.double("a", range: wide) }?.description
            == "c.toml:1: a = nan is out of range -inf...inf")
        #expect(configError { () throws(ConfigError) in _ = try config.double("b", range: wide) }?.line == 2)
        #expect(configError { () throws(ConfigError) in _ = try config.double("c", range: wide) }?.line == 3)
        #expect(try config.double("d", range: 0...1) == 0.5)
        #expect(configError { () throws(ConfigError) in _ = try config.double("d", range: 1...2) }?.message
            == "d = 0.5 is out of range 1.0...2.0")
    }

    @Test func oneOfListsTheAllowedValues() throws {
        let config = try ConfigTable(parsing: "[video]\npreset = \"fastest\"", file: "c.toml")
        let video = try #require(try config.table("video"))
        let error = configError { () throws(ConfigError) in
            _ = try video.string("preset", oneOf: ["ultrafast", "fast", "medium"])
        }
        #expect(error?.description
            == #"c.toml:2: [video] preset = "fastest" must be one of "ultrafast", "fast", "medium""#)
    }

    @Test func arrayItemErrorsPointAtTheItem() throws {
        let text = "ids = [\n  1,\n  2,\n  500,\n]\nnames = [\"a\",\n  3]\n"
        let config = try ConfigTable(parsing: text, file: "c.toml")
        let range = configError { () throws(ConfigError) in _ = try config.ints("ids", range: 0...255) }
        #expect(range?.description == "c.toml:4: ids[2] = 500 is out of range 0...255")
        #expect(range?.keyPath == "ids[2]")
        let type = configError { () throws(ConfigError) in _ = try config.strings("names") }
        #expect(type?.description == "c.toml:7: names[1] must be a string, found integer 3")
    }

    @Test func arrayOfTablesElementsAreNamedAsInTheFile() throws {
        let text = "[[camera]]\nwidth = 1920\n\n[[camera]]\nwidth = 99999\nlens = { focal = 0 }\n"
        let cameras = try ConfigTable(parsing: text, file: "c.toml").tables("camera")
        #expect(try cameras[0].int("width", range: 16...4096) == 1920)
        let error = configError { () throws(ConfigError) in _ = try cameras[1].int("width", range: 16...4096) }
        #expect(error?.description == "c.toml:5: [[camera]] width = 99999 is out of range 16...4096")
        #expect(error?.keyPath == "camera[1].width")
        let lens = try #require(try cameras[1].table("lens"))
        let lensError = configError { () throws(ConfigError) in _ = try lens.int("focal", range: 1...100) }
        #expect(lensError?.description == "c.toml:6: [camera.lens] focal = 0 is out of range 1...100")
        #expect(lensError?.keyPath == "camera[1].lens.focal")
    }

    @Test func missingOptionalKeysReturnNil() throws {
        let config = try ConfigTable(parsing: "[video]\n", file: "c.toml")
        let video = try #require(try config.table("video"))
        #expect(try video.string("preset") == nil)
        #expect(try video.string("preset", oneOf: ["fast"]) == nil)
        #expect(try video.int("crf", range: 0...51) == nil)
        #expect(try video.double("gain", range: 0...1) == nil)
        #expect(try video.bool("hdr") == nil)
        #expect(try video.strings("tags") == nil)
        #expect(try video.ints("ids", range: 0...1) == nil)
        #expect(try video.table("sub") == nil)
        #expect(try video.tables("subs").isEmpty)
        try video.finish()
        try config.finish()
    }

    @Test func failUsesTheKeyLineOrTheTableLine() throws {
        let text = "top = 1\n[recording]\npre = 60\n\nsegment = 30\n"
        let config = try ConfigTable(parsing: text, file: "c.toml")
        let recording = try #require(try config.table("recording"))
        #expect(recording.line(of: "segment") == 5)
        #expect(recording.fail("pre", "must be shorter than segment (30)").description
            == "c.toml:3: [recording] pre must be shorter than segment (30)")
        #expect(recording.fail("post", "is required").description == "c.toml:2: [recording] post is required")
        #expect(config.fail("missing", "is required").description == "c.toml: missing is required")
        #expect(config.fail("missing", "is required").line == nil)
        // line(of:) and fail() do not make a key known.
        let error = configError { () throws(ConfigError) in try config.finish() }
        #expect(error?.keyPath == "top")
    }

    @Test func syntaxErrorsKeepLineAndColumn() {
        let error = configError { () throws(ConfigError) in
            _ = try ConfigTable(parsing: "[video]\npreset =\n", file: "board/sim.toml")
        }
        #expect(error?.description == "board/sim.toml:2:9: expected a value, found newline")
        #expect(error?.line == 2)
        #expect(error?.column == 9)
    }

    @Test func quotedKeysAreQuotedInMessages() throws {
        let config = try ConfigTable(parsing: "[\"my table\"]\n\"odd key\" = 1\n", file: "c.toml")
        let sub = try #require(try config.table("my table"))
        let error = configError { () throws(ConfigError) in try sub.finish() }
        #expect(error?.description == #"c.toml:2: unknown key ["my table"] "odd key" (known keys: none)"#)
        #expect(error?.keyPath == #""my table"."odd key""#)
    }

    @Test func longValuesAreShortenedInMessages() throws {
        let long = String(repeating: "x", count: 500)
        let config = try ConfigTable(parsing: "n = \"\(long)\"", file: "c.toml")
        let error = try #require(configError { () throws(ConfigError) in _ = try config.int("n", range: 0...1) })
        #expect(error.message.count < 120)
        #expect(error.message.hasSuffix("..."))
    }

    @Test func keysListsPresentKeysWithoutMarkingThemKnown() throws {
        let config = try ConfigTable(parsing: "[labels]\nfront = \"F\"\nrear = \"R\"\n", file: "c.toml")
        let labels = try #require(try config.table("labels"))
        #expect(labels.keys == ["front", "rear"])
        #expect(configError { () throws(ConfigError) in try labels.finish() } != nil)
        for key in labels.keys { _ = try labels.string(key) }
        try labels.finish()
    }
}
