import Foundation
import Testing

/// The command line's contract: exit codes, error messages that name the problem, `encode`.
@Suite(.serialized)
struct CommandLineTests {
    func bodycam(_ args: [String]) throws -> CommandResult {
        try Shell.run(BodycamBinary.path, args, environment: ["BODYCAM_BOARD_DIR": BodycamBinary.boardDirectory])
    }

    /// Runs `run` with a config and board; expects exit 78 and a message naming key and line.
    func expectConfigError(
        config: String? = nil, board: String = "sim", mentions: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let dir = TemporaryDirectory()
        var args = ["run", "--board", board, "--data", dir.path + "/data", "--for", "1"]
        if let config { args += ["--config", dir.file("config.toml", config)] }
        let r = try bodycam(args)
        #expect(r.status == 78, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "\"\(m)\" not in: \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/clips"), "a bad config must not start recording")
    }

    @Test("config values out of range, of the wrong type or unknown exit 78 naming the key and its line")
    func badConfigs() throws {
        try expectConfigError(
            config: "[recording]\n# comment\npre_event_seconds = 150\n",
            mentions: ["config.toml:3:", "[recording] pre_event_seconds = 150 is out of range 0"])
        try expectConfigError(
            config: "[recording]\npre_event_seconds = -1\n", mentions: ["config.toml:2:", "pre_event_seconds"])
        try expectConfigError(
            config: "[video]\npreset = \"superfast\"\ncrf = \"high\"\n",
            mentions: ["config.toml:3:", "[video] crf must be a number"])
        try expectConfigError(
            config: "[video]\npresett = \"fast\"\n", mentions: ["config.toml:2:", "unknown key [video] presett"])
        try expectConfigError(config: "[vidoe]\ncrf = 20\n", mentions: ["config.toml:1:", "vidoe"])
        try expectConfigError(config: "[recording\n", mentions: ["config.toml:1:"])
        try expectConfigError(
            config: "[video]\ncrf = 20\nbitrate_kbps = 4000\n", mentions: ["config.toml:3:", "bitrate_kbps"])
        try expectConfigError(config: "[device]\nid = \"a/b\"\n", mentions: ["config.toml:2:", "[device] id"])
    }

    @Test("bad board files exit 78 naming the key and line; an unknown board names where it looked")
    func badBoards() throws {
        let dir = TemporaryDirectory()
        let board = dir.file("b.toml", "name = \"x\"\n[camera]\nwidth = 1281\n")
        let r = try bodycam(["run", "--board", board, "--data", dir.path + "/data", "--for", "1"])
        #expect(r.status == 78)
        #expect(r.stderr.contains("b.toml:3:") && r.stderr.contains("width"), "\(r.stderr)")
        let missing = try bodycam(["run", "--board", "no-such-board", "--data", dir.path + "/data", "--for", "1"])
        #expect(missing.status == 78)
        #expect(missing.stderr.contains("no-such-board"))
        let fps = dir.file("f.toml", "name = \"x\"\n[camera]\nfps = 0\n")
        let r2 = try bodycam(["run", "--board", fps, "--data", dir.path + "/data", "--for", "1"])
        #expect(r2.status == 78 && r2.stderr.contains("f.toml:3:"), "\(r2.stderr)")
    }

    @Test("a board naming a GPIO line that does not exist exits 78 naming the line")
    func missingGPIOLine() throws {
        let dir = TemporaryDirectory()
        let board = dir.file("gpio.toml", """
            name = "gpio-test"
            [camera]
            kind = "synthetic"
            [buttons]
            kind = "gpio"
            record = "no-such-line-rec"
            marker = "no-such-line-mark"
            """)
        let plain = dir.file("plain.toml", "[sealing]\nenabled = false\n")
        let r = try bodycam(["run", "--board", board, "--config", plain, "--data", dir.path + "/data", "--for", "1"])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains("GPIO line \"no-such-line-mark\"") || r.stderr.contains("GPIO line \"no-such-line-rec\""),
                "\(r.stderr)")
        let chip = dir.file("chip.toml", """
            name = "gpio-test"
            [camera]
            kind = "synthetic"
            [indicators]
            kind = "gpio"
            recording = { chip = "gpiochip97", offset = 3 }
            """)
        let r2 = try bodycam(["run", "--board", chip, "--config", plain, "--data", dir.path + "/data", "--for", "1"])
        #expect(r2.status == 78 && r2.stderr.contains("gpiochip97"), "\(r2.stderr)")
    }

    @Test("a board other than sim without a sealing recipient exits 78 saying what to set")
    func sealingRequired() throws {
        let dir = TemporaryDirectory()
        let board = dir.file("b.toml", "name = \"field\"\n[camera]\nkind = \"synthetic\"\n")
        let r = try bodycam(["run", "--board", board, "--data", dir.path + "/data", "--for", "1"])
        #expect(r.status == 78)
        #expect(r.stderr.contains("[sealing] recipient"), "\(r.stderr)")
        let bad = dir.file("c.toml", "[sealing]\nrecipient = \"age1notakey\"\n")
        let r2 = try bodycam(["run", "--board", board, "--config", bad, "--data", dir.path + "/data", "--for", "1"])
        #expect(r2.status == 78 && r2.stderr.contains("c.toml:2:") && r2.stderr.contains("recipient"), "\(r2.stderr)")
    }

    @Test("usage errors exit 64; ctl without a running recorder exits 1 and says so")
    func usageAndCtl() throws {
        let dir = TemporaryDirectory()
        #expect(try bodycam(["run", "--for", "-3"]).status == 64)
        #expect(try bodycam(["frobnicate"]).status == 64)
        #expect(try bodycam(["ctl", "--data", dir.path, "press", "elbow"]).status == 64)
        let r = try bodycam(["ctl", "--data", dir.path, "status"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("not running"), "\(r.stderr)")
    }

    @Test("encode: each pixel format through the recorder's pipeline gives every frame, decodable", arguments: [
        ("yuyv", "yuyv422"), ("i420", "yuv420p"), ("nv12", "nv12"),
    ])
    func encode(format: String, ffmpegFormat: String) throws {
        let dir = TemporaryDirectory()
        let raw = dir.path + "/in.raw"
        let gen = try Shell.run("ffmpeg", [
            "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", "75",
            "-pix_fmt", ffmpegFormat, "-f", "rawvideo", raw,
        ])
        #expect(gen.status == 0)
        let out = dir.path + "/out.mp4"
        let r = try bodycam([
            "encode", "--input", raw, "--size", "320x240", "--fps", "30", "--pixel-format", format,
            "--preset", "superfast", "--tune", "zerolatency", "--crf", "23", "--threads", "1", "--output", out,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Media.decodedFrames(out) == 75)
        #expect(try Media.fullDecodeErrors(out) == "")
        let probe = try Probe(out)
        #expect(probe.stream("video")?["width"] as? Int == 320)
        #expect(probe.stream("video")?["r_frame_rate"] as? String == "30/1")
        #expect(abs(probe.duration - 2.5) < 0.05)
        // The manifest travels beside the output, with one fragment per second of video.
        let m = try ClipFiles.manifest(dir.path + "/out.json")
        #expect((m["fragments"] as? [Any])?.count == 3)
        #expect((m["video"] as? [String: Any])?["frames"] as? Int == 75)
        // Same picture as ffmpeg's own conversion and encode: PSNR against the source is sane.
        let psnr = try Shell.run("ffmpeg", [
            "-v", "error", "-i", out, "-f", "rawvideo", "-pix_fmt", ffmpegFormat, "-s", "320x240", "-framerate", "30",
            "-i", raw,
            "-lavfi", "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]psnr=stats_file=-", "-f", "null", "-",
        ])
        let values = psnr.stdout.split(separator: "\n").compactMap { line -> Double? in
            guard let r = line.range(of: "psnr_avg:") else { return nil }
            return Double(line[r.upperBound...].split(separator: " ").first ?? "")
        }
        #expect(values.count == 75)
        #expect((values.min() ?? 0) > 30, "PSNR \(values.min() ?? 0)")
    }

    @Test("encode --vbv-maxrate --seal --device: the recorder's settings and evidence chain, opened by age, verified by bodycam")
    func encodeSealedSigned() throws {
        let dir = TemporaryDirectory()
        let raw = dir.path + "/in.raw"
        #expect(try Shell.run("ffmpeg", [
            "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", "60",
            "-pix_fmt", "yuyv422", "-f", "rawvideo", raw,
        ]).status == 0)
        #expect(try bodycam(["keygen", "--agency", dir.path + "/agency.key"]).status == 0)
        #expect(try bodycam(["keygen", "--device", dir.path + "/dev"]).status == 0)
        let out = dir.path + "/out.mp4.age"
        let r = try bodycam([
            "encode", "--input", raw, "--size", "320x240", "--fps", "30", "--pixel-format", "yuyv", "--threads", "1",
            "--vbv-maxrate", "800", "--vbv-bufsize", "400", "--seal", dir.path + "/agency.key.pub", "--device", dir.path + "/dev",
            "--output", out,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        // The manifest sits beside the clip under the clip's name, as run writes it.
        #expect(FileManager.default.fileExists(atPath: dir.path + "/out.json"))
        let v = try bodycam(["verify", "--device-key", dir.path + "/dev/device.pub", out])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let opened = dir.path + "/opened.mp4"
        #expect(try Shell.run("age", ["-d", "-i", dir.path + "/agency.key", "-o", opened, out]).status == 0)
        #expect(try Media.decodedFrames(opened) == 60)
        let settings = try String(decoding: Data(contentsOf: URL(fileURLWithPath: opened)), as: UTF8.self)
        #expect(settings.contains("vbv_maxrate=800 vbv_bufsize=400"), "the VBV cap is not in the x264 settings")
        // Bad values are usage errors naming the option; a recipient that is not one is refused.
        let bad = try bodycam([
            "encode", "--input", raw, "--size", "320x240", "--fps", "30", "--pixel-format", "yuyv",
            "--vbv-bufsize", "400", "--output", dir.path + "/x.mp4",
        ])
        #expect(bad.status == 64 && bad.stderr.contains("--vbv-bufsize needs --vbv-maxrate"), "\(bad.stderr)")
        let notRecipient = try bodycam([
            "encode", "--input", raw, "--size", "320x240", "--fps", "30", "--pixel-format", "yuyv",
            "--seal", "age1nope", "--output", dir.path + "/y.mp4.age",
        ])
        #expect(notRecipient.status == 64 && notRecipient.stderr.contains("--seal"), "\(notRecipient.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/y.mp4.age"))
    }

    @Test("encode: a file that is not whole frames of the given size is a usage error naming the problem")
    func encodeWrongSize() throws {
        let dir = TemporaryDirectory()
        let raw = dir.file("in.raw", String(repeating: "x", count: 1000))
        let r = try bodycam([
            "encode", "--input", raw, "--size", "320x240", "--fps", "30", "--pixel-format", "yuyv",
            "--output", dir.path + "/o.mp4",
        ])
        #expect(r.status == 64)
        #expect(r.stderr.contains("not a whole number") && r.stderr.contains("in.raw"), "\(r.stderr)")
        let missing = try bodycam([
            "encode", "--input", dir.path + "/nope", "--size", "320x240", "--fps", "30", "--pixel-format", "yuyv",
            "--output", dir.path + "/o.mp4",
        ])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("nope"))
    }
}
