import BodycamAdapters
import BodycamCore
package import BodycamTOML
import Foundation

/// The hardware description of a board (`board/<name>.toml`): which camera, microphone, buttons
/// and lights it has and how to reach them. Policy (how to record) lives in the config instead.
/// board/README.md documents every key.
package struct BoardDescription: Sendable, Equatable {
    var name: String
    var summary: String
    var camera: Camera
    var microphone: Microphone
    var buttons: Buttons
    var indicators: IndicatorLines
    var dock: Dock
    /// `[power] low_battery`: a line that goes active when the battery is about to give out; the
    /// recorder then shuts down as on SIGTERM (the clip in progress is finalised).
    var lowBattery: PowerLine? = nil

    struct PowerLine: Sendable, Equatable {
        var line: GPIOLineSpec
        var options: GPIOLineOptions
    }

    enum CameraKind: String, Sendable { case synthetic, v4l2 }

    struct Camera: Sendable, Equatable {
        var kind: CameraKind
        var width: Int
        var height: Int
        var frameRate: FrameRate
        /// Preference order; the synthetic camera uses the first.
        var pixelFormats: [PixelFormat]
        var buffers: Int
        /// Synthetic camera: flash at every whole second (A/V sync check).
        var syncMarks: Bool
        var device: String?
        var card: String?
        var busInfo: String?
        var input: Int?
        var dvTimings: Bool
        var timeoutSeconds: Double
        /// Synthetic camera: stop delivering after this many seconds, like a wedged driver whose
        /// DQBUF never returns (tests the watchdog).
        var stallAfterSeconds: Double?
        /// Synthetic camera, a fault to test against: once, `lossAfterSeconds` after its first
        /// frame, nothing for `lossSeconds` (a device lost and back), reported as a video gap.
        var lossAfterSeconds: Double? = nil
        var lossSeconds: Double = 0
    }

    enum MicrophoneKind: String, Sendable { case synthetic, alsa, none }

    struct Microphone: Sendable, Equatable {
        var kind: MicrophoneKind
        var device: String
        var sampleRate: Int
        var channels: Int
        var clockErrorPPM: Double
        var periodFrames: Int
        var bufferFrames: Int
        /// Synthetic microphone: beep at every whole second (A/V sync check).
        var syncMarks: Bool
        /// Synthetic microphone, a fault to test against: once, `lossAfterSeconds` after its first
        /// sample, `lossSeconds` of sound are never delivered (an overrun).
        var lossAfterSeconds: Double? = nil
        var lossSeconds: Double = 0
    }

    struct Buttons: Sendable, Equatable {
        /// "socket": pressed through the control socket only; "gpio": lines below (and the socket).
        var kind: String
        var lines: [Button: GPIOLineSpec]
        var options: GPIOLineOptions
    }

    struct IndicatorLines: Sendable, Equatable {
        /// "status": shown in status and log only; "gpio": the lines below (and status).
        var kind: String
        var leds: [LED: GPIOLineSpec]
        var haptic: GPIOLineSpec?
        var buzzer: GPIOLineSpec?
        var options: GPIOLineOptions
    }

    struct Dock: Sendable, Equatable {
        /// "socket" (ctl dock/undock), "gpio" (a dock-detect line), "power_supply" (a sysfs
        /// `online` file, e.g. /sys/class/power_supply/usb/online) or "carrier" (a network
        /// interface's link, /sys/class/net/IF/carrier).
        var kind: String
        var line: GPIOLineSpec?
        var options: GPIOLineOptions
        /// The file read for "power_supply" and "carrier" (1 = docked).
        var path: String?
    }

    var videoFormat: VideoFormat {
        VideoFormat(
            width: camera.width, height: camera.height, pixelFormat: camera.pixelFormats.first ?? .yuyv,
            frameRate: camera.frameRate)
    }

    package static func parse(_ text: String, file: String) throws(ConfigError) -> BoardDescription {
        let root = try ConfigTable(parsing: text, file: file)
        guard let name = try root.string("name") else { throw root.fail("name", "is required (the board's name)") }
        let summary = try root.string("description") ?? ""
        guard let cam = try root.table("camera") else { throw root.fail("camera", "table [camera] is required") }
        let camera = try parseCamera(cam)
        var mic = Microphone(
            kind: .none, device: "default", sampleRate: 48_000, channels: 1, clockErrorPPM: 0, periodFrames: 480,
            bufferFrames: 4800, syncMarks: false)
        if let m = try root.table("microphone") {
            mic.kind = MicrophoneKind(rawValue: try m.string("kind", oneOf: ["synthetic", "alsa", "none"]) ?? "synthetic")!
            mic.device = try m.string("device") ?? mic.device
            if mic.kind == .alsa && m.line(of: "device") == nil {
                throw m.fail("device", "is required for an ALSA microphone (e.g. \"hw:CARD=sndrpii2scard,DEV=0\")")
            }
            mic.sampleRate = Int(try m.int("sample_rate", range: 8000...48000) ?? 48_000)
            guard [8000, 12000, 16000, 24000, 48000].contains(mic.sampleRate) else {
                throw m.fail("sample_rate", "Opus takes 8000, 12000, 16000, 24000 or 48000 Hz, found \(mic.sampleRate)")
            }
            mic.channels = Int(try m.int("channels", range: 1...2) ?? 1)
            mic.clockErrorPPM = try m.double("clock_error_ppm", range: -1000...1000) ?? 0
            mic.periodFrames = Int(try m.int("period_frames", range: 32...8192) ?? Int64(mic.sampleRate / 100))
            mic.bufferFrames = Int(try m.int("buffer_frames", range: 64...65536) ?? Int64(mic.periodFrames * 8))
            guard mic.bufferFrames >= 2 * mic.periodFrames else {
                throw m.fail("buffer_frames", "must hold at least two periods (\(2 * mic.periodFrames) frames)")
            }
            mic.syncMarks = try m.bool("sync_marks") ?? false
            if let loss = try lossFault(
                m, synthetic: mic.kind == .synthetic, device: "microphone", seconds: 0.05...60,
                lost: ("how much sound is lost", "when the sound is lost"))
            {
                (mic.lossAfterSeconds, mic.lossSeconds) = loss
            }
            try m.finish()
        }
        var buttons = Buttons(kind: "socket", lines: [:], options: GPIOLineOptions(activeLow: true, bias: "pull-up"))
        if let b = try root.table("buttons") {
            buttons.kind = try b.string("kind", oneOf: ["socket", "gpio"]) ?? buttons.kind
            buttons.options = try lineOptions(b, defaultActiveLow: true, defaultBias: "pull-up")
            for button in Button.allCases {
                if let spec = try lineSpec(b, button.rawValue) { buttons.lines[button] = spec }
            }
            if buttons.kind == "gpio" {
                for required in [Button.record, .marker] where buttons.lines[required] == nil {
                    throw b.fail(required.rawValue, "is required: the GPIO line of the \(required.rawValue) button")
                }
            }
            try b.finish()
        }
        var indicators = IndicatorLines(
            kind: "status", leds: [:], haptic: nil, buzzer: nil, options: GPIOLineOptions(activeLow: false, bias: nil))
        if let i = try root.table("indicators") {
            indicators.kind = try i.string("kind", oneOf: ["status", "gpio"]) ?? indicators.kind
            indicators.options = try lineOptions(i, defaultActiveLow: false, defaultBias: nil)
            for led in LED.allCases {
                if let spec = try lineSpec(i, led.rawValue) { indicators.leds[led] = spec }
            }
            indicators.haptic = try lineSpec(i, "haptic")
            indicators.buzzer = try lineSpec(i, "buzzer")
            if indicators.kind == "gpio" && indicators.leds[.recording] == nil {
                throw i.fail("recording", "is required: the subject-facing recording LED")
            }
            try i.finish()
        }
        var dock = Dock(kind: "socket", line: nil, options: GPIOLineOptions(activeLow: false, bias: nil))
        if let d = try root.table("dock") {
            dock.kind = try d.string("kind", oneOf: ["socket", "gpio", "power_supply", "carrier"]) ?? dock.kind
            dock.line = try lineSpec(d, "line")
            dock.options = try lineOptions(d, defaultActiveLow: false, defaultBias: nil)
            if dock.kind == "gpio" && dock.line == nil { throw d.fail("line", "is required for a GPIO dock-detect line") }
            let path = try d.string("path")
            let interface = try d.string("interface")
            switch dock.kind {
            case "power_supply":
                guard let path, path.hasPrefix("/") else {
                    throw d.fail("path", "is required for kind = \"power_supply\": the supply's online file, e.g. /sys/class/power_supply/usb/online")
                }
                dock.path = path
            case "carrier":
                guard let interface, !interface.isEmpty, !interface.contains("/") else {
                    throw d.fail("interface", "is required for kind = \"carrier\": a network interface name, e.g. usb0")
                }
                dock.path = "/sys/class/net/\(interface)/carrier"
            default:
                break
            }
            try d.finish()
        }
        var lowBattery: PowerLine?
        if let p = try root.table("power") {
            let options = try lineOptions(p, defaultActiveLow: false, defaultBias: nil)
            if let line = try lineSpec(p, "low_battery") { lowBattery = PowerLine(line: line, options: options) }
            try p.finish()
        }
        try root.finish()
        return BoardDescription(
            name: name, summary: summary, camera: camera, microphone: mic, buttons: buttons, indicators: indicators,
            dock: dock, lowBattery: lowBattery)
    }

    private static func parseCamera(_ cam: ConfigTable) throws(ConfigError) -> Camera {
        let kind = CameraKind(rawValue: try cam.string("kind", oneOf: ["synthetic", "v4l2"]) ?? "synthetic")!
        let width = Int(try cam.int("width", range: 16...7680) ?? 1280)
        let height = Int(try cam.int("height", range: 16...4320) ?? 720)
        guard width % 2 == 0 else { throw cam.fail("width", "must be even (4:2:0 chroma), found \(width)") }
        guard height % 2 == 0 else { throw cam.fail("height", "must be even (4:2:0 chroma), found \(height)") }
        let fps = Int(try cam.int("fps", range: 1...120) ?? 30)
        let fpsDen = Int(try cam.int("fps_denominator", range: 1...1001) ?? 1)
        let names = PixelFormat.allCases.map(\.rawValue)
        var formats: [PixelFormat] = []
        if let one = try cam.string("pixel_format", oneOf: names) { formats = [PixelFormat(rawValue: one)!] }
        if let many = try cam.strings("pixel_formats") {
            guard formats.isEmpty else {
                throw cam.fail("pixel_formats", "cannot be combined with pixel_format: give one or the other")
            }
            for n in many {
                guard let f = PixelFormat(rawValue: n) else {
                    throw cam.fail("pixel_formats", "\"\(n)\" is not one of \(names.joined(separator: ", "))")
                }
                formats.append(f)
            }
        }
        if formats.isEmpty { formats = kind == .v4l2 ? [.nv12, .i420, .yuyv] : [.yuyv] }
        let device = try cam.string("device")
        let card = try cam.string("card")
        let bus = try cam.string("bus_info")
        if kind == .v4l2 && device == nil && card == nil && bus == nil {
            throw cam.fail("device", "a V4L2 camera needs device, card or bus_info")
        }
        let stall = try cam.double("stall_after_seconds", range: 0.1...86_400)
        if stall != nil && kind != .synthetic {
            throw cam.fail("stall_after_seconds", "is a fault of the synthetic camera only")
        }
        var camera = Camera(
            kind: kind, width: width, height: height, frameRate: FrameRate(fps, fpsDen), pixelFormats: formats,
            buffers: Int(try cam.int("buffers", range: 2...32) ?? 4),
            syncMarks: try cam.bool("sync_marks") ?? false, device: device, card: card, busInfo: bus,
            input: try cam.int("input", range: 0...255).map(Int.init), dvTimings: try cam.bool("dv_timings") ?? false,
            timeoutSeconds: try cam.double("timeout_seconds", range: 0.2...30) ?? 2, stallAfterSeconds: stall)
        if let loss = try lossFault(
            cam, synthetic: kind == .synthetic, device: "camera", seconds: 0.1...3_600,
            lost: ("how long the camera is gone", "when the camera is lost"))
        {
            (camera.lossAfterSeconds, camera.lossSeconds) = loss
        }
        return camera
    }

    /// A synthetic device's loss fault: `loss_after_seconds` and `loss_seconds`, both or neither,
    /// on a synthetic device only. `lost` says what each key means, for the error naming the other.
    private static func lossFault(
        _ t: ConfigTable, synthetic: Bool, device: String, seconds range: ClosedRange<Double>,
        lost: (seconds: String, after: String)
    ) throws(ConfigError) -> (after: Double, seconds: Double)? {
        guard let after = try t.double("loss_after_seconds", range: 0.1...86_400) else {
            if t.line(of: "loss_seconds") != nil {
                throw t.fail("loss_seconds", "needs loss_after_seconds (\(lost.after))")
            }
            return nil
        }
        guard synthetic else { throw t.fail("loss_after_seconds", "is a fault of the synthetic \(device) only") }
        guard let seconds = try t.double("loss_seconds", range: range) else {
            throw t.fail("loss_after_seconds", "needs loss_seconds (\(lost.seconds))")
        }
        return (after, seconds)
    }

    /// A line is a name (`record = "bodycam-record"`) or a chip and offset
    /// (`record = { chip = "gpiochip0", offset = 17 }`).
    private static func lineSpec(_ t: ConfigTable, _ key: String) throws(ConfigError) -> GPIOLineSpec? {
        guard let v = t.value(key) else { return nil }
        switch v {
        case .string(let name):
            guard !name.isEmpty else { throw t.fail(key, "must name a GPIO line") }
            return .named(name)
        case .table(let table):
            let sub = ConfigTable(table, file: t.file)
            guard let chip = try sub.string("chip") else { throw t.fail(key, "needs chip = \"gpiochipN\" and offset = N") }
            guard let offset = try sub.int("offset", range: 0...1023) else {
                throw t.fail(key, "needs chip = \"gpiochipN\" and offset = N")
            }
            do { try sub.finish() } catch { throw t.fail(key, "takes only chip and offset") }
            return .chip(chip, offset: Int(offset))
        default:
            throw t.fail(key, "must be a line name (string) or { chip = \"gpiochipN\", offset = N }")
        }
    }

    private static func lineOptions(_ t: ConfigTable, defaultActiveLow: Bool, defaultBias: String?) throws(ConfigError)
        -> GPIOLineOptions
    {
        let activeLow = try t.bool("active_low") ?? defaultActiveLow
        var bias = defaultBias
        if let b = try t.string("bias", oneOf: ["pull-up", "pull-down", "disable", "as-is"]) { bias = b == "as-is" ? nil : b }
        return GPIOLineOptions(activeLow: activeLow, bias: bias)
    }

    /// Finds a board by name or path. A name is looked up in `$BODYCAM_BOARD_DIR`, `./board`,
    /// the `board` folder of the source tree the binary was built in, `/etc/bodycam/board` and
    /// `/usr/share/bodycam/board`.
    static func locate(_ nameOrPath: String) throws(ConfigurationFailure) -> String {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".toml") {
            guard FileManager.default.fileExists(atPath: nameOrPath) else {
                throw ConfigurationFailure(description: "\(nameOrPath): board file not found")
            }
            return nameOrPath
        }
        guard nameOrPath.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ConfigurationFailure(description: "board name \"\(nameOrPath)\" is not a name or a path")
        }
        var dirs: [String] = []
        if let env = ProcessInfo.processInfo.environment["BODYCAM_BOARD_DIR"] { dirs.append(env) }
        dirs.append(FileManager.default.currentDirectoryPath + "/board")
        // .build/<config>/bodycam → the package root's board/ folder, for runs from a checkout.
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var up = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            up = up.deletingLastPathComponent()
            dirs.append(up.path + "/board")
        }
        dirs += ["/etc/bodycam/board", "/usr/share/bodycam/board"]
        for d in dirs {
            let p = d + "/" + nameOrPath + ".toml"
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        throw ConfigurationFailure(
            description: "board \"\(nameOrPath)\" not found (looked in \(dirs.joined(separator: ", ")))")
    }

    static func load(_ nameOrPath: String) throws(ConfigurationFailure) -> BoardDescription {
        let path = try locate(nameOrPath)
        let text = try ConfigLoader.read(path, what: "board")
        do {
            return try parse(text, file: path)
        } catch {
            throw ConfigurationFailure(description: error.description)
        }
    }
}
