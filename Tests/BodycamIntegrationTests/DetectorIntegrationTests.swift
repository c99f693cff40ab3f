import BodycamCore
import BodycamDetectorEval
import Foundation
import Testing

/// The detector through the real binary: `encode --detector` on generated footage, and `run` on
/// the sim board with the detector marking and starting clips.
@Suite(.serialized)
struct DetectorIntegrationTests {
    func bodycam(_ args: [String]) throws -> CommandResult {
        try Shell.run(BodycamBinary.path, args, environment: ["BODYCAM_BOARD_DIR": BodycamBinary.boardDirectory])
    }

    /// Writes `seconds` of a generated scenario as raw YUYV at 30 fps; returns the path.
    func footage(_ sc: VideoScenario, width: Int, height: Int, seconds: Double, path: String) throws -> String {
        let world = World(width: 1024 * width / 320, height: 512 * width / 320, seed: 77)
        let frameSize = width * height * 2
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: frameSize)
        defer { buf.deallocate() }
        var rng = SeededRandom(seed: 5)
        _ = FileManager.default.createPlainFile(atPath: path, contents: nil)
        let out = try #require(FileHandle(forWritingAtPath: path))
        defer { try? out.close() }
        for k in 0..<Int(seconds * 30) {
            sc.render(at: Double(k) / 30, width: width, height: height, world: world, into: buf, rng: &rng)
            try out.write(contentsOf: Data(bytesNoCopy: buf, count: frameSize, deallocator: .none))
        }
        return path
    }

    func events(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("encode --detector: an object walking into a still picture is one video event at its entry; a walking camera gives none")
    func encodeDetector() throws {
        let dir = TemporaryDirectory()
        // A person walks in from the left at 3 s, across a picture from a camera standing still.
        var still = VideoScenario(
            name: "still", category: "", duration: 10, motion: .still, objects: [], noise: 2, seed: 11, intensity: 1, worldStyle: 0)
        still.objects = [MovingObject(x0: -180, y0: 5, vx: 45, vy: 0, start: 3, end: 12, rx: 14, ry: 36, level: 45, stripes: 10, ellipse: true)]
        let labels = still.labels(width: 640, height: 360)
        let raw = try footage(still, width: 640, height: 360, seconds: 10, path: dir.path + "/still.yuv")
        let out = dir.path + "/still.mp4"
        let r = try bodycam([
            "encode", "--input", raw, "--size", "640x360", "--fps", "30", "--pixel-format", "yuyv", "--detector", "--output", out,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let found = try events(out + ".events.jsonl")
        #expect(found.count == 1, "\(found)")
        let first = try #require(found.first)
        #expect(first["kind"] as? String == "video")
        #expect((first["score"] as? Double ?? 0) > 0)
        let t = try #require(first["media_time"] as? Double)
        let entry = try #require(labels.first?.start)
        #expect(abs(t - entry) < 0.6, "event at \(t) s, object in view at \(entry) s")
        #expect(try Media.decodedFrames(out) == 300)

        let walk = VideoScenario(
            name: "walk", category: "", duration: 10, motion: .walk, objects: [], noise: 2.5, seed: 12, intensity: 1.2, worldStyle: 1)
        let raw2 = try footage(walk, width: 640, height: 360, seconds: 10, path: dir.path + "/walk.yuv")
        let out2 = dir.path + "/walk.mp4"
        let r2 = try bodycam([
            "encode", "--input", raw2, "--size", "640x360", "--fps", "30", "--pixel-format", "yuyv", "--detector", "--output", out2,
        ])
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try events(out2 + ".events.jsonl").isEmpty)
        // Without --detector no events file is written.
        let out3 = dir.path + "/plain.mp4"
        #expect(try bodycam(["encode", "--input", raw2, "--size", "640x360", "--fps", "30", "--pixel-format", "yuyv", "--output", out3]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: out3 + ".events.jsonl"))
    }

    @Test("[detector] errors exit 78 naming the key")
    func badDetectorConfig() throws {
        for (text, key) in [("[detector]\naction = \"alarm\"\n", "action"), ("[detector]\nsample_hz = 100\n", "sample_hz"),
                            ("[detector]\nface_recognition = true\n", "face_recognition")] {
            let dir = TemporaryDirectory()
            let r = try bodycam(["run", "--board", "sim", "--data", dir.path + "/data", "--for", "1", "--config", dir.file("c.toml", text)])
            #expect(r.status == 78 && r.stderr.contains(key) && r.stderr.contains("c.toml:2:"), "\(r.stderr)")
        }
    }

    /// The sim camera's shapes move across its panning background: activity, relative to the
    /// camera, all the time. With `record` the detector starts a clip by itself (pre-event included),
    /// says so in the manifest and the audit log, and marks what it sees while recording.
    @Test("run with [detector] action = record: sustained activity starts a clip with its pre-event; audit and manifest say why")
    func liveRecord() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let config = dir.file("detector.toml", """
            [recording]
            pre_event_seconds = 4
            [detector]
            action = "record"
            record_after_seconds = 1.5
            """)
        let rec = try RunningRecorder(data: data, config: config)
        try rec.waitForState("buffering")
        try rec.waitForState("recording", timeout: 20)
        let status = try rec.status()
        let det = try #require(status["detector"] as? [String: Any])
        #expect(det["action"] as? String == "record")
        #expect((det["events"] as? Int ?? 0) >= 1)
        sleep(3)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let files = ClipFiles(data)
        #expect(files.media.count == 1)
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        #expect(m["trigger"] as? String == "detector:video")
        // The clip begins before the trigger: the pre-event buffer is in it.
        #expect((double(m["triggered_at"]) ?? 0) >= 1, "\(m["triggered_at"] ?? "-")")
        let audit = try auditLines(data)
        let detector = audit.filter { $0["event"] as? String == "detector" }
        #expect(!detector.isEmpty)
        let first = try #require(detector.first?["details"] as? [String: String])
        #expect(first["kind"] == "video" && first["phase"] == "began" && first["region"] != nil, "\(first)")
        let media = try Sealed.export(files.media[0], data: data)
        #expect(try Media.fullDecodeErrors(media) == "")
    }

    @Test("run with [detector] action = mark: a recording carries video markers with scores; nothing starts by itself")
    func liveMark() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let config = dir.file("detector.toml", """
            [recording]
            pre_event_seconds = 0
            [detector]
            action = "mark"
            """)
        let rec = try RunningRecorder(data: data, config: config)
        try rec.waitForState("buffering")
        sleep(4)
        #expect(try rec.status()["state"] as? String == "buffering", "mark must not start a clip")
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        try rec.waitForState("recording")
        sleep(5)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let files = ClipFiles(data)
        #expect(files.media.count == 1)
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        #expect(m["trigger"] as? String == "button")
        let markers = (m["markers"] as? [[String: Any]]) ?? []
        let video = markers.filter { $0["kind"] as? String == "video" }
        #expect(!video.isEmpty, "\(markers)")
        for v in video {
            #expect((double(v["score"]) ?? 0) > 0)
            #expect((double(v["media_time"]) ?? -1) >= 0)
        }
    }
}
