import BodycamCore
import BodycamEvidence
import BodycamTOML
import Foundation
import Logging
import Testing

@testable import BodycamRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Inputs the fuzzer (Tests/Fuzz) found, run through what its `recovery`, `config`, `board` and
/// `control` targets run: each must come out as a clean error, never a trap.
@Suite struct FuzzRegressionTests {
    static let regressions: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fuzz/regressions").path
    }()

    static func inputs(_ target: String) -> [String] {
        let dir = regressions + "/" + target
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    static func input(_ target: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: regressions + "/" + target + "/" + name)))
    }

    /// The fuzz target's layout: `<journal>\0<media>`, the journal as `DATA/journal/<id>.jsonl`,
    /// the media as `DATA/clips/clip.mp4` (and `.mp4.age`), a sealed tail beside the journal,
    /// and a file outside both folders that no journal may reach.
    struct Layout {
        static let clipID = "CAM-1-20260101T000000Z-0001"
        let root: String
        var journalDir: String { root + "/journal" }
        var clips: String { root + "/clips" }
        var journal: String { journalDir + "/" + Self.clipID + ".jsonl" }
        let media: [UInt8]

        init(_ bytes: [UInt8]) throws {
            root = NSTemporaryDirectory() + "/bodycam-fuzz-regression-\(getpid())-\(UUID().uuidString)"
            let nul = bytes.firstIndex(of: 0) ?? bytes.count
            media = nul < bytes.count ? Array(bytes[(nul + 1)...]) : []
            for dir in [journalDir, clips] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try Data(bytes[..<nul]).write(to: URL(fileURLWithPath: journal))
            for name in ["clip.mp4", "clip.mp4.age"] { try Data(media).write(to: URL(fileURLWithPath: clips + "/" + name)) }
            for name in ["clip.tail-1.age", Self.clipID + ".tail-1.age"] {
                try Data([1, 2, 3]).write(to: URL(fileURLWithPath: journalDir + "/" + name))
            }
            for name in ["victim.mp4", "victim.age"] { try Data("keep me".utf8).write(to: URL(fileURLWithPath: root + "/" + name)) }
        }

        func recover() -> Recovery.Recovered? {
            Recovery.recover(
                journal: journal, clips: clips, identity: nil, reason: "power-loss",
                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        }

        /// The journal and media as they were: left in place for inspection.
        func untouched() -> Bool {
            FileManager.default.fileExists(atPath: journal)
                && FileManager.default.contents(atPath: clips + "/clip.mp4") == Data(media)
                && !FileManager.default.fileExists(atPath: clips + "/" + Self.clipID + ".json")
        }

        func victimsUntouched() -> Bool {
            ["victim.mp4", "victim.age"].allSatisfy { FileManager.default.contents(atPath: root + "/" + $0) == Data("keep me".utf8) }
        }

        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test("every recovery regression input recovers or is left in place, and nothing outside the data folders changes")
    func recoveryInputs() throws {
        for path in Self.inputs("recovery") {
            let layout = try Layout(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            defer { layout.remove() }
            _ = layout.recover()
            #expect(layout.victimsUntouched(), "\(path)")
        }
    }

    /// A fragment at offset Int.max: computing its end trapped (overflow). Found by the fuzzer's
    /// recovery target in the arithmetic on journal numbers.
    @Test func fragmentEndOverflowIsDamageNotATrap() throws {
        let layout = try Layout(try Self.input("recovery", "fragment-end-overflows"))
        defer { layout.remove() }
        #expect(layout.recover() == nil)
        #expect(layout.untouched())
    }

    /// An init segment of Int.min bytes: the cut-bytes count (`onDisk - keep`) trapped.
    @Test func negativeInitSizeIsDamageNotATrap() throws {
        let layout = try Layout(try Self.input("recovery", "init-size-negative"))
        defer { layout.remove() }
        #expect(layout.recover() == nil)
        #expect(layout.untouched())
    }

    /// A journal naming its clip file `../victim.mp4` made recovery truncate a file outside the
    /// clips folder; one naming its sealed tail `../victim.age` made it move one in.
    @Test func fileNamesInAJournalAreNotPaths() throws {
        let file = try Layout(try Self.input("recovery", "file-name-is-a-path"))
        defer { file.remove() }
        #expect(file.recover() == nil)
        #expect(file.untouched() && file.victimsUntouched())

        let tail = try Layout(try Self.input("recovery", "tail-name-is-a-path"))
        defer { tail.remove() }
        let recovered = try #require(tail.recover())
        #expect(recovered.clipID == Layout.clipID)
        #expect(tail.victimsUntouched())
        let manifest = try Canonical.decoder().decode(
            ClipManifest.self, from: try Data(contentsOf: URL(fileURLWithPath: tail.clips + "/" + Layout.clipID + ".json")))
        #expect(manifest.sealed != nil && manifest.sealed?.tail == nil)
    }

    @Test("config, board and control regression inputs give clean errors")
    func textInputs() {
        for path in Self.inputs("config") {
            let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
            #expect(throws: ConfigError.self, "\(path)") { try BodycamConfig.parse(text, file: "config.toml") }
        }
        for path in Self.inputs("board") {
            let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
            #expect(throws: ConfigError.self, "\(path)") { try BoardDescription.parse(text, file: "board.toml") }
        }
        for path in Self.inputs("control") {
            for line in (FileManager.default.contents(atPath: path) ?? Data()).split(separator: 0x0a) {
                if let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line)) { _ = request.command() }
            }
        }
    }
}
