import ArgumentParser
import BodycamCore
import BodycamRuntime
import Foundation
import Logging

@main
struct Bodycam: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bodycam",
        abstract: "Body-worn camera recorder: pre-event buffer, crash-safe clips, offload.",
        discussion: """
            Exit codes: 0 success, 1 the job failed, 3 run stopped for low battery, 64 usage error,
            78 configuration error.
            """,
        subcommands: [Run.self, Ctl.self, Encode.self, Keygen.self, Verify.self, Export.self, Offload.self]
    )
}

struct DataOption: ParsableArguments {
    @Option(name: .long, help: "Data directory (clips, journal, control socket).")
    var data: String = ProcessInfo.processInfo.environment["BODYCAM_DATA"] ?? "/var/lib/bodycam"
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the recorder.",
        discussion: "In a terminal, keys: r record, s stop, m marker, u mute, d/D dock/undock, q quit.")

    @Option(help: "Board name (looked up in ./board and the install's board folder) or path to a board file.")
    var board: String = "sim"

    @Option(help: "Configuration file (TOML). Without one, defaults apply.")
    var config: String?

    @OptionGroup var dataOption: DataOption

    @Option(name: .customLong("for"), help: "Stop by itself after this many seconds.")
    var seconds: Double?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if let s = seconds, !(s > 0) { throw ValidationError("--for must be a positive number of seconds") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        Runner.bootstrapLogging(level: level)
        let code = await Runner.run(
            RunOptions(board: board, config: config, data: dataOption.data, runFor: seconds, logLevel: level))
        if code != 0 { throw ExitCode(code) }
    }
}

struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running recorder over DATA/control.sock.",
        subcommands: [Press.self, Dock.self, Undock.self, Stop.self, Status.self])

    @OptionGroup var dataOption: DataOption

    struct Press: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Press a button (returns after the release).")
        @OptionGroup var dataOption: DataOption
        @Argument(help: "record, marker or mute") var button: String
        @Flag(help: "Press twice quickly.") var double = false
        @Option(help: "Hold for this many seconds.") var hold: Double?

        func validate() throws {
            guard Button(rawValue: button) != nil else { throw ValidationError("button must be record, marker or mute") }
            if double && hold != nil { throw ValidationError("--double and --hold cannot be combined") }
            if let hold, !(hold > 0 && hold <= 60) { throw ValidationError("--hold must be between 0 and 60 seconds") }
        }

        func run() throws {
            let timeout = (hold ?? 1) + 10
            _ = try send(
                CtlRequest(cmd: "press", button: button, double: double ? true : nil, hold: hold),
                data: dataOption.data, timeout: timeout)
        }
    }

    struct Dock: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Simulate docking (sim board).")
        @OptionGroup var dataOption: DataOption
        func run() throws { _ = try send(CtlRequest(cmd: "dock"), data: dataOption.data) }
    }

    struct Undock: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Simulate undocking (sim board).")
        @OptionGroup var dataOption: DataOption
        func run() throws { _ = try send(CtlRequest(cmd: "undock"), data: dataOption.data) }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the recorder (a clip in progress is finalised).")
        @OptionGroup var dataOption: DataOption
        func run() throws { _ = try send(CtlRequest(cmd: "stop"), data: dataOption.data) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the recorder's state.")
        @OptionGroup var dataOption: DataOption
        @Flag(help: "Print the status as JSON.") var json = false

        func run() throws {
            let text = try send(CtlRequest(cmd: "status"), data: dataOption.data, raw: true)
            if json {
                print(text)
            } else {
                print(ControlCommands.humanStatus(json: text))
            }
        }
    }
}

typealias CtlRequest = ControlCommands.Request

/// Sends one request; prints the error and exits 1 if it fails.
func send(_ request: CtlRequest, data: String, timeout: Double = 10, raw: Bool = false) throws -> String {
    switch ControlCommands.send(request, data: data, timeout: timeout) {
    case .success(let text): return text
    case .failure(let message):
        FileHandle.standardError.write(Data("bodycam: \(message)\n".utf8))
        throw ExitCode(1)
    }
}

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode a raw video file through the recorder's own pipeline into a fragmented MP4.")

    @Option(help: "Raw input file: tightly packed frames.") var input: String
    @Option(help: "Frame size, WIDTHxHEIGHT.") var size: String
    @Option(help: "Frame rate, N or N/D.") var fps: String
    @Option(help: "yuyv, i420 or nv12.") var pixelFormat: String
    @Option(help: "x264 preset.") var preset: String = "superfast"
    @Option(help: "x264 tune, or none.") var tune: String = "zerolatency"
    @Option(help: "Constant rate factor (0–51).") var crf: Double = 23
    @Option(help: "Encoder threads (0 = automatic).") var threads: Int = 0
    @Option(help: "Output MP4 (its manifest is written beside it as .json).") var output: String
    @Flag(help: "Run the activity detector too; its events go to OUTPUT.events.jsonl.") var detector = false
    @Option(help: "Cap the bitrate (x264 VBV) at this many kbit/s, as run does (run's default: 0.15 bit per pixel, 4100 at 720p30).")
    var vbvMaxrate: Int?
    @Option(help: "VBV buffer in kbit (default: the --vbv-maxrate value, one second).") var vbvBufsize: Int?
    @Option(help: "Seal the output with age to this recipient (age1…, or a file holding it), as run does.")
    var seal: String?
    @Option(help: "Sign a fragment journal and the manifest with the device identity in this folder, as run does.")
    var device: String?

    func parsedSize() -> (Int, Int)? {
        let parts = size.lowercased().split(separator: "x")
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w >= 16, h >= 16, w % 2 == 0, h % 2 == 0,
            w <= 7680, h <= 4320
        else { return nil }
        return (w, h)
    }

    func parsedRate() -> FrameRate? {
        let parts = fps.split(separator: "/")
        guard let n = Int(parts.first ?? ""), n > 0, n <= 240 else { return nil }
        if parts.count == 2 {
            guard let d = Int(parts[1]), d > 0, d <= 1001 else { return nil }
            return FrameRate(n, d)
        }
        return parts.count == 1 ? FrameRate(n) : nil
    }

    func validate() throws {
        guard parsedSize() != nil else { throw ValidationError("--size must be WIDTHxHEIGHT with even numbers, e.g. 1280x720") }
        guard parsedRate() != nil else { throw ValidationError("--fps must be N or N/D, e.g. 30 or 30000/1001") }
        guard PixelFormat(rawValue: pixelFormat) != nil else { throw ValidationError("--pixel-format must be yuyv, i420 or nv12") }
        guard (0...51).contains(crf) else { throw ValidationError("--crf must be between 0 and 51") }
        guard (0...64).contains(threads) else { throw ValidationError("--threads must be between 0 and 64") }
        if let v = vbvMaxrate, !(100...1_000_000).contains(v) { throw ValidationError("--vbv-maxrate must be between 100 and 1000000 kbit/s") }
        if let v = vbvBufsize, !(100...1_000_000).contains(v) { throw ValidationError("--vbv-bufsize must be between 100 and 1000000 kbit") }
        if vbvBufsize != nil, vbvMaxrate == nil { throw ValidationError("--vbv-bufsize needs --vbv-maxrate") }
    }

    /// `--seal` names the recipient itself or a file holding it (`keygen --agency` writes PATH.pub).
    func sealRecipient() throws -> String? {
        guard let seal else { return nil }
        if seal.hasPrefix("age1") { return seal }
        guard let data = FileManager.default.contents(atPath: seal),
            let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first
        else {
            FileHandle.standardError.write(Data("bodycam: --seal \(seal): neither an age1… recipient nor a readable file\n".utf8))
            throw ExitCode(64)
        }
        return line.trimmingCharacters(in: .whitespaces)
    }

    func run() throws {
        Runner.bootstrapLogging(level: .warning)
        let (w, h) = parsedSize()!
        let code = FileEncoder.encode(
            EncodeOptions(
                input: input, width: w, height: h, frameRate: parsedRate()!, pixelFormat: PixelFormat(rawValue: pixelFormat)!,
                preset: preset, tune: tune == "none" ? nil : tune, crf: crf, threads: threads, output: output,
                detector: detector, maxKbps: vbvMaxrate, bufferKbits: vbvBufsize, recipient: try sealRecipient(),
                deviceDirectory: device))
        if code != 0 { throw ExitCode(code) }
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the device's signing identity, or an agency's age identity.")

    @Option(help: "Write the device identity (device.key, mode 0600, and device.pub) into this folder.")
    var device: String?

    @Option(help: "Write an age X25519 identity here (mode 0600) and its recipient to PATH.pub.")
    var agency: String?

    func validate() throws {
        if (device == nil) == (agency == nil) { throw ValidationError("give exactly one of --device DIR or --agency PATH") }
    }

    func run() throws {
        let code = device.map { EvidenceCommands.keygenDevice(directory: $0) }
            ?? EvidenceCommands.keygenAgency(path: agency!)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check sealed clips, exported MP4s, manifests and audit logs without any key that opens a clip.",
        discussion: "Exit 0 when everything verifies, 1 when anything does not (the first problem is named).")

    @Flag(help: "Print the results as JSON.") var json = false
    @Option(help: "Require this device key (ed25519:…, or a device.pub file).") var deviceKey: String?
    @Argument(help: "Clips (.mp4.age, .mp4), manifests (.json), audit logs (.jsonl or the audit folder).")
    var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one path") }
    }

    func run() throws {
        let code = EvidenceCommands.verify(paths: paths, json: json, deviceKey: deviceKey)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decrypt a sealed clip with the agency identity and verify it; the manifest goes beside the output.")

    @Option(help: "The agency's age identity file (AGE-SECRET-KEY-1…).") var identity: String
    @Argument(help: "The sealed clip (<clip-id>.mp4.age); its manifest is read from beside it.") var clip: String
    @Option(help: "Where to write the MP4 (its manifest goes to the same name with .json).") var output: String

    func run() throws {
        let code = EvidenceCommands.export(identity: identity, clip: clip, output: output)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Offload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send every pending clip and audit segment to the [offload] target now, without recording.",
        discussion: """
            The same queue, verification and retention as a docked recorder; not while one runs on the \
            same data directory. Exit 0 when nothing is left, 1 when something could not be offloaded.
            """)

    @Option(help: "Configuration file (TOML) with an [offload] table.") var config: String?
    @OptionGroup var dataOption: DataOption
    @Option(help: "Give up on an item after this many failed attempts in a row.") var attempts: Int = 3
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "notice"

    func validate() throws {
        if !(1...100).contains(attempts) { throw ValidationError("--attempts must be 1–100") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() throws {
        Runner.bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .notice)
        let code = OffloadCommand.run(config: config, data: dataOption.data, attempts: attempts)
        if code != 0 { throw ExitCode(code) }
    }
}
