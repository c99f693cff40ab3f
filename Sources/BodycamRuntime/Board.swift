import BodycamCore
import BodycamTOML
import Foundation

/// The hardware description of a board (`board/<name>.toml`): which camera, microphone, buttons
/// and lights it has and how to reach them. Policy (how to record) lives in the config instead.
struct BoardDescription: Sendable, Equatable {
    var name: String
    var summary: String
    var camera: Camera
    var microphone: Microphone
    var controls: String
    var indicators: String

    struct Camera: Sendable, Equatable {
        /// "synthetic" (the sim board's generated picture).
        var kind: String
        var width: Int
        var height: Int
        var frameRate: FrameRate
        var pixelFormat: PixelFormat
        var buffers: Int
        /// Synthetic camera: flash at every whole second (A/V sync check).
        var syncMarks: Bool
    }

    struct Microphone: Sendable, Equatable {
        /// "synthetic" or "none".
        var kind: String
        var sampleRate: Int
        var channels: Int
        var clockErrorPPM: Double
        var periodFrames: Int
        /// Synthetic microphone: beep at every whole second (A/V sync check).
        var syncMarks: Bool
    }

    var videoFormat: VideoFormat {
        VideoFormat(width: camera.width, height: camera.height, pixelFormat: camera.pixelFormat, frameRate: camera.frameRate)
    }

    static func parse(_ text: String, file: String) throws(ConfigError) -> BoardDescription {
        let root = try ConfigTable(parsing: text, file: file)
        guard let name = try root.string("name") else { throw root.fail("name", "is required (the board's name)") }
        let summary = try root.string("description") ?? ""
        guard let cam = try root.table("camera") else { throw root.fail("camera", "table [camera] is required") }
        let cameraKind = try cam.string("kind", oneOf: ["synthetic"]) ?? "synthetic"
        let width = Int(try cam.int("width", range: 16...7680) ?? 1280)
        let height = Int(try cam.int("height", range: 16...4320) ?? 720)
        guard width % 2 == 0 else { throw cam.fail("width", "must be even (4:2:0 chroma), found \(width)") }
        guard height % 2 == 0 else { throw cam.fail("height", "must be even (4:2:0 chroma), found \(height)") }
        let fps = Int(try cam.int("fps", range: 1...120) ?? 30)
        let fpsDen = Int(try cam.int("fps_denominator", range: 1...1001) ?? 1)
        let pixel = try cam.string("pixel_format", oneOf: PixelFormat.allCases.map(\.rawValue)) ?? "yuyv"
        let buffers = Int(try cam.int("buffers", range: 2...32) ?? 4)
        let cameraMarks = try cam.bool("sync_marks") ?? false
        try cam.finish()

        var mic = Microphone(
            kind: "none", sampleRate: 48_000, channels: 1, clockErrorPPM: 0, periodFrames: 480, syncMarks: false)
        if let m = try root.table("microphone") {
            mic.kind = try m.string("kind", oneOf: ["synthetic", "none"]) ?? "synthetic"
            mic.sampleRate = Int(try m.int("sample_rate", range: 8000...48000) ?? 48_000)
            guard [8000, 12000, 16000, 24000, 48000].contains(mic.sampleRate) else {
                throw m.fail("sample_rate", "Opus takes 8000, 12000, 16000, 24000 or 48000 Hz, found \(mic.sampleRate)")
            }
            mic.channels = Int(try m.int("channels", range: 1...2) ?? 1)
            mic.clockErrorPPM = try m.double("clock_error_ppm", range: -1000...1000) ?? 0
            mic.periodFrames = Int(try m.int("period_frames", range: 32...8192) ?? Int64(mic.sampleRate / 100))
            mic.syncMarks = try m.bool("sync_marks") ?? false
            try m.finish()
        }
        var controls = "socket"
        if let c = try root.table("buttons") {
            controls = try c.string("kind", oneOf: ["socket"]) ?? controls
            try c.finish()
        }
        var indicators = "status"
        if let i = try root.table("indicators") {
            indicators = try i.string("kind", oneOf: ["status"]) ?? indicators
            try i.finish()
        }
        try root.finish()
        return BoardDescription(
            name: name, summary: summary,
            camera: Camera(
                kind: cameraKind, width: width, height: height, frameRate: FrameRate(fps, fpsDen),
                pixelFormat: PixelFormat(rawValue: pixel) ?? .yuyv, buffers: buffers, syncMarks: cameraMarks),
            microphone: mic, controls: controls, indicators: indicators)
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
