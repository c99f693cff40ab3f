import BodycamAdapters
import BodycamCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `bodycam` binary built next to this test bundle (same build configuration).
enum BodycamBinary {
    static var path: String {
        if let env = ProcessInfo.processInfo.environment["BODYCAM_BIN"] { return env }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("bodycam").path
    }

    /// The repository's board folder (tests run from the package root).
    static var boardDirectory: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("board").path
    }
}

/// Output of a finished command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Shell {
    /// Runs a command to completion.
    @discardableResult
    static func run(_ executable: String, _ args: [String], environment: [String: String] = [:]) throws -> CommandResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : try which(executable))
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes fully before waiting, so a chatty child cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            outData = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return CommandResult(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    static func which(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw TestFailure("\(name) not found on PATH")
    }

    static func has(_ name: String) -> Bool { (try? which(name)) != nil }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The warning reasons a status should list with `reasons` raised. Whether the clock counts as
/// synchronised is the host's (CI machines and VMs often run without NTP), read here from the
/// kernel as the recorder reads it; an untrusted clock adds its own reason. (The status must
/// say the same about the clock, or the list cannot match.)
func expectedWarnings(_ status: [String: Any], _ reasons: String...) -> [String] {
    let trusted = SystemClock.isSynchronized()
    let reported = (status["clock"] as? [String: Any])?["trusted"] as? Bool
    return (reasons + (trusted ? [] : [WarningReason.clockUntrusted.rawValue]) + (reported == trusted ? [] : ["clock trust reported as \(reported as Any)"])).sorted()
}

/// The warning LED with no reason but the clock's: off, or the untrusted clock's short flash.
func idleWarningLED(_ status: [String: Any]) -> String {
    SystemClock.isSynchronized() ? LEDPattern.off.description : WarningLight.clockUntrustedFlash.description
}

/// A temporary directory removed at the end of the test.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "bodycam-test") {
        var template = Array((NSTemporaryDirectory() + "\(label)-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit {
        if ProcessInfo.processInfo.environment["BODYCAM_KEEP_TEST_DATA"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    func file(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createPlainFile(atPath: p, contents: Data(text.utf8))
        return p
    }
}

/// A `bodycam run` in the background, talked to with `bodycam ctl`.
final class RunningRecorder {
    let process = Process()
    let data: String
    let logPath: String

    init(
        data: String, board: String = "sim", config: String? = nil, extra: [String] = [],
        environment: [String: String] = [:]
    ) throws {
        self.data = data
        logPath = data + ".log"
        _ = FileManager.default.createPlainFile(atPath: logPath, contents: nil)
        var args = ["run", "--board", board, "--data", data]
        if let config { args += ["--config", config] }
        process.executableURL = URL(fileURLWithPath: BodycamBinary.path)
        process.arguments = args + extra
        var env = ProcessInfo.processInfo.environment
        env["BODYCAM_BOARD_DIR"] = BodycamBinary.boardDirectory
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    @discardableResult
    func ctl(_ args: String...) throws -> CommandResult {
        try Shell.run(BodycamBinary.path, ["ctl", "--data", data] + args)
    }

    func status() throws -> [String: Any] {
        let r = try ctl("status", "--json")
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        else { throw TestFailure("status failed: \(r.stderr)") }
        return obj
    }

    /// Waits until `ctl status` reports `state`, up to `timeout` seconds.
    func waitForState(_ state: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning { throw TestFailure("bodycam exited (\(process.terminationStatus)):\n\(log)") }
            if let s = try? status(), s["state"] as? String == state { return }
            usleep(100_000)
        }
        throw TestFailure("state \(state) not reached in \(timeout) s:\n\(log)")
    }

    /// Polls `ctl status --json` until `condition` holds; returns that status, or throws with
    /// the last one seen.
    @discardableResult
    func waitForStatus(
        _ what: String, timeout: Double = 10, _ condition: ([String: Any]) -> Bool
    ) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            if !process.isRunning { throw TestFailure("bodycam exited (\(process.terminationStatus)):\n\(log)") }
            if let s = try? status() {
                if condition(s) { return s }
                last = s
            }
            usleep(100_000)
        }
        throw TestFailure("\(what) not seen in \(timeout) s; last status \(last)")
    }

    /// Waits for the process to end; returns its exit status.
    func waitForExit(timeout: Double = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("bodycam did not exit within \(timeout) s:\n\(log)")
        }
        return process.terminationStatus
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Facts about a media file, from ffprobe.
struct Probe {
    var streams: [[String: Any]]
    var format: [String: Any]

    init(_ path: String) throws {
        let r = try Shell.run("ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", path])
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        else { throw TestFailure("ffprobe failed on \(path): \(r.stderr)") }
        streams = obj["streams"] as? [[String: Any]] ?? []
        format = obj["format"] as? [String: Any] ?? [:]
    }

    func stream(_ type: String) -> [String: Any]? { streams.first { $0["codec_type"] as? String == type } }

    /// Seconds of video. (ffprobe's format duration is not used: for a fragmented MP4 whose audio
    /// starts late, ffmpeg adds the audio's start to its end time when the start falls inside
    /// its probe window, reporting up to 5 s too much.)
    var duration: Double { Double(stream("video")?["duration"] as? String ?? "") ?? 0 }
}

enum Media {
    /// Decodes every frame and sample; returns what ffmpeg printed at -v error (nothing when clean).
    static func fullDecodeErrors(_ path: String) throws -> String {
        let r = try Shell.run("ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"])
        return r.stderr + (r.status == 0 ? "" : "exit \(r.status)")
    }

    /// Video frames counted by decoding.
    static func decodedFrames(_ path: String) throws -> Int {
        let r = try Shell.run("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0",
                                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path])
        return Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Presentation time of the first audio packet, from ffprobe.
    static func firstAudioTime(_ path: String) throws -> Double? {
        let r = try Shell.run("ffprobe", ["-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time",
                                          "-read_intervals", "%+#1", "-of", "csv=p=0", path])
        return Double(r.stdout.split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "")
    }

    /// Mono 16-bit PCM at 48 kHz decoded from the file's audio track, starting at its first packet.
    static func decodeAudio(_ path: String) throws -> [Int16] {
        let out = path + ".pcm"
        let r = try Shell.run("ffmpeg", ["-v", "error", "-y", "-i", path, "-vn", "-ac", "1", "-ar", "48000",
                                         "-f", "s16le", out])
        guard r.status == 0, let d = FileManager.default.contents(atPath: out) else {
            throw TestFailure("audio decode failed: \(r.stderr)")
        }
        return d.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
    }
}

/// Opens sealed clips the way an evidence examiner would: `bodycam export` with the agency key
/// (on the sim board, the demo key the recorder made in DATA/keys).
enum Sealed {
    /// Exports `clip` (a `.mp4.age`) to a plaintext MP4 beside it; returns its path.
    static func export(_ clip: String, data: String) throws -> String {
        let out = clip.replacingOccurrences(of: ".mp4.age", with: ".export.mp4")
        let r = try Shell.run(BodycamBinary.path, ["export", "--identity", data + "/keys/demo-agency.key", clip, "--output", out])
        guard r.status == 0 else { throw TestFailure("export of \(clip) failed (\(r.status)): \(r.stderr)") }
        return out
    }
}

/// Clip files in a data directory.
struct ClipFiles {
    var media: [String]
    var manifests: [String]

    init(_ data: String) {
        let dir = data + "/clips"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.contains(".export.") }
        media = names.filter { $0.hasSuffix(".mp4") || $0.hasSuffix(".mp4.age") }.sorted().map { dir + "/" + $0 }
        manifests = names.filter { $0.hasSuffix(".json") }.sorted().map { dir + "/" + $0 }
    }

    static func manifest(_ path: String) throws -> [String: Any] {
        guard let d = FileManager.default.contents(atPath: path),
            let obj = try JSONSerialization.jsonObject(with: d) as? [String: Any]
        else { throw TestFailure("unreadable manifest \(path)") }
        return obj
    }
}

func double(_ any: Any?) -> Double? {
    if let d = any as? Double { return d }
    if let n = any as? NSNumber { return n.doubleValue }
    if let s = any as? String { return Double(s) }
    return nil
}
