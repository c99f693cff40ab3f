import BodycamAdapters
import BodycamCore
import BodycamMedia
import Foundation
import Logging
import Testing

@testable import BodycamRuntime

/// A stop that comes while a rollover waits for its sound, through the real recorder and clip
/// writer on a made-up timeline (the window is a fraction of a second: a recording on the sim
/// board cannot hit it on purpose).
///
/// The timeline: 30 fps with a keyframe each second, 20 ms sound packets arriving 100 ms after
/// they were captured, a control start at 0.99 s (the clip opens on the keyframe at 1 s), a
/// rollover every 2 s. So the keyframe at 3 s is the rollover point; it arrives at 3.005 s and
/// the cut there waits until the sound up to 3 s has arrived, at 3.1 s.
@Suite("stop during a pending rollover")
struct RolloverStopTests {
    static let fps = 30.0

    /// Runs the timeline with a stop made at `stopAt` seconds (the time it is made, and the
    /// time it stops at), or with the sources ending there and the recorder finishing at once
    /// (`shutdown`: a stop of the service); returns the manifests written, oldest first.
    func record(stopAt: Double, shutdown: Bool = false) throws -> [[String: Any]] {
        let dir = TemporaryDirectory("bodycam-rollstop")
        let clips = dir.path + "/clips"
        try FileManager.default.createDirectory(atPath: clips, withIntermediateDirectories: true)
        let logger = Logger(label: "test")
        let format = VideoFormat(width: 64, height: 48, pixelFormat: .i420, frameRate: FrameRate(30))
        // Real parameter sets, so the clip's init segment is what the recorder would write.
        let x264 = try X264Encoder(format: format, settings: VideoEncoderSettings(), timescale: 90_000)
        let settings = RecorderSettings(
            deviceID: "cam-9", board: "test", videoFormat: format,
            video: VideoTrack(width: 64, height: 48, timescale: 90_000, sps: x264.parameterSets.sps, pps: x264.parameterSets.pps),
            audio: AudioTrack(sampleRate: 48_000, channels: 1, preSkip: 312), audioBitrate: 32_000,
            encoderDescription: "x264", preEvent: 0, preEventAudio: false, rollover: Nanos.seconds(2),
            clipsDirectory: clips, journalDirectory: nil, outputPath: nil, firstClipSequence: 1, sequenceFile: nil)
        let buffer = PreEventBuffer(
            video: MediaRing(capacity: 1 << 20, maxEntries: 1024), audio: MediaRing(capacity: 1 << 18, maxEntries: 1024),
            preEvent: 0, includeAudio: false)
        let writer = ClipWriter(logger: logger)
        let recorder = try Recorder(
            settings: settings, buffer: buffer, machine: RecorderMachine(), timing: ButtonTiming(), writer: writer,
            indicators: StatusIndicators(), logger: logger)
        writer.delegate = recorder
        writer.start()

        let t0 = MonotonicTime(nanoseconds: SystemClock.monotonic())
        func at(_ seconds: Double) -> MonotonicTime { t0 + Int64(seconds * 1e9) }
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
        defer { payload.deallocate() }
        payload.initializeMemory(as: UInt8.self, repeating: 0x5a)
        // Everything that happens, in the order it reaches the recorder.
        enum Event { case frame(Int), sound(Int), start, stop, finish }
        var events: [(arrival: Double, event: Event)] = []
        for k in 0..<150 { events.append((Double(k) / Self.fps + 0.005, .frame(k))) }
        for j in 0..<250 { events.append((Double(j) * 0.02 + 0.1, .sound(j))) }
        events.append((0.99, .start))
        if shutdown {
            events.removeAll { $0.arrival > stopAt }
            events.append((stopAt, .finish))
        } else {
            events.append((stopAt, .stop))
        }
        events.sort { $0.arrival < $1.arrival }
        var forceKeyframe = false
        for (arrival, event) in events {
            let now = at(arrival)
            switch event {
            case .frame(let k):
                let time = t0 + Int64(k) * 1_000_000_000 / 30
                recorder.pictureTaken(now: now)
                let au = EncodedVideo(
                    bytes: UnsafeRawBufferPointer(rebasing: payload[0..<128]), pts: Int64(k) * 3000, dts: Int64(k) * 3000,
                    isKeyframe: k % 30 == 0 || forceKeyframe, time: time)
                forceKeyframe = recorder.appendVideo(au, drops: (0, 0), now: now)
            case .sound(let j):
                recorder.appendAudio(
                    UnsafeRawBufferPointer(rebasing: payload[0..<40]), time: at(Double(j) * 0.02), duration: 960, now: now)
            case .start:
                recorder.request(start: true, at: now)
            case .stop:
                recorder.request(start: false, at: now)
            case .finish:
                recorder.finishNow(reason: "shutdown", now: now)
            }
            recorder.tick(now: now)
        }
        writer.finish()
        let names = try FileManager.default.contentsOfDirectory(atPath: clips).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: clips + "/" + name))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
    }

    static func seconds(_ m: [String: Any], _ key: String) -> Double {
        (m[key] as? Double) ?? (m[key] as? NSNumber)?.doubleValue ?? -1
    }

    @Test("a stop just before the rollover point ends the one clip there: no rollover past the operator's stop")
    func stopBeforeRolloverPoint() throws {
        let m = try record(stopAt: 2.96)
        try #require(m.count == 1, "\(m)")
        #expect(m[0]["end_reason"] as? String == "button" && m[0]["next_clip"] == nil, "\(m[0])")
        // From the keyframe at 1 s to the stop.
        #expect(abs(Self.seconds(m[0], "duration") - 1.96) < 0.04, "\(m[0])")
    }

    @Test("a stop after the rollover point, while the rollover waits for sound: rolled over at the point, the stop carried into the new clip")
    func stopAfterRolloverPoint() throws {
        let m = try record(stopAt: 3.04)
        try #require(m.count == 2, "\(m)")
        let (first, second) = (m[0], m[1])
        #expect(first["end_reason"] as? String == "rollover", "\(first)")
        #expect(abs(Self.seconds(first, "duration") - 2.0) < 0.02, "\(first)")
        #expect(first["next_clip"] as? String == second["clip_id"] as? String, "\(first)\n\(second)")
        #expect(second["previous_clip"] as? String == first["clip_id"] as? String, "\(second)")
        #expect(second["trigger"] as? String == "rollover", "\(second)")
        // The stop ends the new clip where it was made, with the operator's reason: it holds
        // the frames from the rollover point to the stop, and nothing after.
        #expect(second["end_reason"] as? String == "button", "\(second)")
        #expect(Self.seconds(second, "duration") > 0.03 && Self.seconds(second, "duration") < 0.1, "\(second)")
        let frames = (second["video"] as? [String: Any])?["frames"] as? Int
        #expect(frames == 2, "\(second)")
    }

    @Test("a stop once the rollover is done belongs to the new clip, as any stop does")
    func stopAfterRollover() throws {
        let m = try record(stopAt: 3.5)
        try #require(m.count == 2, "\(m)")
        #expect(m[0]["end_reason"] as? String == "rollover" && m[1]["end_reason"] as? String == "button", "\(m)")
        #expect(abs(Self.seconds(m[1], "duration") - 0.5) < 0.04, "\(m[1])")
    }

    @Test("the service stopped while the rollover waits for sound: both clips are closed, nothing captured is lost")
    func shutdownDuringPendingRollover() throws {
        let m = try record(stopAt: 3.04, shutdown: true)
        try #require(m.count == 2, "\(m)")
        #expect(m[0]["end_reason"] as? String == "rollover" && m[0]["next_clip"] as? String == m[1]["clip_id"] as? String, "\(m)")
        #expect(abs(Self.seconds(m[0], "duration") - 2.0) < 0.02, "\(m[0])")
        // The new clip has the two pictures captured from the rollover point to the end.
        #expect(m[1]["end_reason"] as? String == "shutdown", "\(m[1])")
        #expect((m[1]["video"] as? [String: Any])?["frames"] as? Int == 2, "\(m[1])")
    }
}
