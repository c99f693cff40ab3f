import BodycamAdapters
import BodycamCore
import BodycamMedia
import Foundation
import Testing

/// libx264 and libopus through our adapters, with real frames from the synthetic scene.
struct EncoderTests {
    let format = VideoFormat(width: 320, height: 240, pixelFormat: .yuyv, frameRate: FrameRate(30))

    /// Encodes `count` synthetic frames; returns the access units' sizes, keyframe flags and pts.
    func encodeFrames(
        _ count: Int, format: VideoFormat, settings: VideoEncoderSettings = VideoEncoderSettings(),
        forceAt: Set<Int> = []
    ) throws -> [(size: Int, key: Bool, pts: Int64, prefix: Int)] {
        let encoder = try X264Encoder(format: format, settings: settings, timescale: format.frameRate.timescale)
        var scene = SyntheticScene(format: format)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: format.frameSize, alignment: 64)
        defer { buffer.deallocate() }
        var out: [(Int, Bool, Int64, Int)] = []
        for i in 0..<count {
            scene.render(frameIndex: i, into: buffer)
            let frame = RawFrame(
                format: format, base: buffer.baseAddress!, time: MonotonicTime(nanoseconds: Int64(i) * 33_333_333),
                sequence: UInt64(i), bufferIndex: 0)
            try encoder.encode(frame, pts: Int64(i * 3000), forceKeyframe: forceAt.contains(i)) { au in
                #expect(H264.lengthPrefixedNALs(au.bytes) != nil, "access unit is not length-prefixed NALs")
                out.append((au.bytes.count, au.isKeyframe, au.pts, au.prefix.count))
            }
        }
        try encoder.flush { au in out.append((au.bytes.count, au.isKeyframe, au.pts, au.prefix.count)) }
        return out
    }

    @Test("x264 gives one access unit per frame, a keyframe every second, SPS matching the format")
    func keyframeEverySecond() throws {
        var settings = VideoEncoderSettings()
        settings.keyframeInterval = 30
        settings.threads = 1
        let aus = try encodeFrames(95, format: format, settings: settings)
        #expect(aus.count == 95)
        #expect(aus.enumerated().filter { $0.element.key }.map(\.offset) == [0, 30, 60, 90])
        #expect(aus.map(\.pts) == (0..<95).map { Int64($0 * 3000) })
        // The settings SEI rides in front of keyframes only.
        #expect(aus.allSatisfy { $0.key == ($0.prefix > 0) })
        let encoder = try X264Encoder(format: format, settings: settings, timescale: 90_000)
        let sps = try H264.parseSPS(encoder.parameterSets.sps)
        #expect(sps.width == 320 && sps.height == 240)
        #expect(sps.profileIDC == 100)  // high
        #expect(encoder.settingsString.contains("keyint=30"))
    }

    @Test("a forced keyframe comes at exactly the requested frame", arguments: [PixelFormat.yuyv, .nv12, .i420])
    func forcedKeyframe(pixelFormat: PixelFormat) throws {
        let f = VideoFormat(width: 320, height: 240, pixelFormat: pixelFormat, frameRate: FrameRate(30))
        let aus = try encodeFrames(20, format: f, forceAt: [7])
        #expect(aus.enumerated().filter { $0.element.key }.map(\.offset) == [0, 7])
    }

    @Test("an encoder that holds frames gives them all up when drained, then encodes on from a keyframe; the stream decodes whole")
    func drainAndGoOn() throws {
        var settings = VideoEncoderSettings()
        // B-frames and lookahead: x264 holds frames back (the default, zerolatency, does not).
        settings.preset = "veryfast"
        settings.tune = nil
        settings.threads = 1
        let encoder = try X264Encoder(format: format, settings: settings, timescale: format.frameRate.timescale)
        var scene = SyntheticScene(format: format)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: format.frameSize, alignment: 64)
        defer { buffer.deallocate() }
        var aus: [(pts: Int64, dts: Int64, key: Bool, bytes: [UInt8])] = []
        let keep: (EncodedVideo) -> Void = { au in aus.append((au.pts, au.dts, au.isKeyframe, Array(au.bytes))) }
        func feed<S: Sequence<Int>>(_ frames: S) throws {
            for i in frames {
                scene.render(frameIndex: i, into: buffer)
                let frame = RawFrame(
                    format: format, base: buffer.baseAddress!, time: MonotonicTime(nanoseconds: Int64(i) * 33_333_333),
                    sequence: UInt64(i), bufferIndex: 0)
                try encoder.encode(frame, pts: Int64(i * 3000), forceKeyframe: false, output: keep)
            }
        }
        try feed(0..<20)
        #expect(encoder.delayedFrames > 0, "x264 held nothing back: the test proves nothing")
        #expect(aus.count < 20)
        try encoder.drain(output: keep)
        #expect(encoder.delayedFrames == 0)
        #expect(aus.map(\.pts).sorted() == (0..<20).map { Int64($0 * 3000) }, "a frame taken before the pause is missing")
        // The camera is back: the encoder goes on, from a keyframe. Its first frames come unevenly
        // (300 ms apart), which puts a new encoder's first decode times below the old ones'.
        try feed([21, 30, 39] + Array(40..<67))
        try encoder.flush(output: keep)
        #expect(aus.count == 50)
        #expect(aus[20].key && aus[20].pts == 21 * 3000, "first frame after the drain: \(aus[20].pts) key \(aus[20].key)")
        #expect(aus.allSatisfy { $0.dts <= $0.pts }, "a decode time after its presentation time")
        // The decode times kept rising only until the encoder's own caught up: a frame apart again.
        let lastSteps = zip(aus.suffix(11), aus.suffix(10)).map { $1.dts - $0.dts }
        #expect(lastSteps == Array(repeating: 3000, count: 10), "\(aus.map(\.dts))")
        #expect(zip(aus, aus.dropFirst()).allSatisfy { $0.dts < $1.dts }, "decode times go backwards: \(aus.map(\.dts))")
        // One track, one avcC: the whole stream decodes with the parameter sets of the start.
        var annexB: [UInt8] = []
        let startCode: [UInt8] = [0, 0, 0, 1]
        annexB += startCode + encoder.parameterSets.sps + startCode + encoder.parameterSets.pps
        for au in aus {
            try au.bytes.withUnsafeBytes { raw in
                for r in try #require(H264.lengthPrefixedNALs(raw)) { annexB += startCode + Array(raw[r]) }
            }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bodycam-drain-\(getpid()).264")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(annexB).write(to: file)
        let ffmpeg = try #require(["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ffmpeg)
        p.arguments = ["-v", "error", "-f", "h264", "-i", file.path, "-f", "framemd5", "-"]
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && errors.isEmpty, "\(errors)")
        #expect(lines.split(separator: "\n").filter { !$0.hasPrefix("#") }.count == 50)
    }

    @Test("unknown presets and profiles are refused with a message naming them")
    func badSettings() {
        var s = VideoEncoderSettings()
        s.preset = "ludicrous"
        #expect(throws: X264Error.badPreset(preset: "ludicrous", tune: "zerolatency")) {
            _ = try X264Encoder(format: format, settings: s, timescale: 90_000)
        }
        var p = VideoEncoderSettings()
        p.profile = "extreme"
        #expect(throws: X264Error.badProfile("extreme")) {
            _ = try X264Encoder(format: format, settings: p, timescale: 90_000)
        }
    }

    @Test("Opus: 20 ms packets, pre-skip from the encoder's lookahead, silence is small")
    func opus() throws {
        let enc = try OpusAudioEncoder(sampleRate: 48_000, channels: 1, bitrate: 32_000, voice: false)
        #expect(enc.frameSize == 960)
        #expect(enc.preSkip > 0 && enc.preSkip < 1000)
        var tone = SyntheticTone(sampleRate: 48_000, channels: 1)
        let pcm = UnsafeMutableBufferPointer<Int16>.allocate(capacity: 960)
        defer { pcm.deallocate() }
        var toneBytes = 0
        for _ in 0..<50 {
            tone.fill(pcm, frames: 960)
            toneBytes += try enc.encode(UnsafeBufferPointer(pcm)).count
        }
        pcm.update(repeating: 0)
        var silenceBytes = 0
        for _ in 0..<50 { silenceBytes += try enc.encode(UnsafeBufferPointer(pcm)).count }
        // About 32 kbit/s for a second of tone; silence far less.
        #expect(toneBytes > 2000 && toneBytes < 6000, "\(toneBytes) bytes for 1 s of tone")
        #expect(silenceBytes < toneBytes / 2)
        #expect(throws: OpusError.self) { _ = try OpusAudioEncoder(sampleRate: 44_100, channels: 1, bitrate: 32_000, voice: false) }
    }
}

/// The synthetic and raw-file sources behave like capture devices.
struct SourceTests {
    @Test("the synthetic microphone's clock error shows in its timestamps, at the configured ppm")
    func microphoneClockError() throws {
        let mic = SyntheticMicrophone(sampleRate: 48_000, channels: 1, clockErrorPPM: 500, speed: 1000)
        let buf = UnsafeMutableBufferPointer<Int16>.allocate(capacity: 480)
        defer { buf.deallocate() }
        let first = try #require(try mic.read(into: buf, frames: 480))
        var last = first
        for _ in 0..<999 { last = try #require(try mic.read(into: buf, frames: 480)) }
        // 999 blocks of 10 ms by a clock 500 ppm fast take 9.99 s / 1.0005 of real time.
        let elapsed = Double(last.time - first.time) / 1e9
        let expected = 9.99 / 1.0005
        #expect(abs(elapsed - expected) < 1e-6, "elapsed \(elapsed), expected \(expected)")
        mic.stop()
        #expect(try mic.read(into: buf, frames: 480) == nil)
    }

    @Test("the synthetic camera counts frames as dropped while the pipeline holds every buffer")
    func cameraDropsWhenBuffersHeld() throws {
        let f = VideoFormat(width: 64, height: 48, pixelFormat: .nv12, frameRate: FrameRate(30))
        let cam = SyntheticCamera(format: f, bufferCount: 2, speed: 10)
        let a = try #require(try cam.nextFrame())
        let b = try #require(try cam.nextFrame())
        #expect(a.bufferIndex != b.bufferIndex && b.sequence == a.sequence + 1)
        #expect(cam.counters.dropped == 0)
        // Both buffers are held; one comes back 50 ms later (about 15 slots at 10x speed).
        let release = Thread {
            usleep(50_000)
            cam.release(a)
        }
        release.start()
        let c = try #require(try cam.nextFrame())
        #expect(c.bufferIndex == a.bufferIndex)
        let skipped = c.sequence - b.sequence - 1
        #expect(skipped >= 5, "only \(skipped) slots skipped")
        #expect(cam.counters.dropped == skipped, "the gap in sequence numbers is what was counted")
        cam.release(b)
        cam.release(c)
    }

    @Test("a raw file that is not whole frames is refused naming the file and the sizes")
    func rawFileSize() throws {
        let path = NSTemporaryDirectory() + "bodycam-raw-\(getpid()).raw"
        _ = FileManager.default.createPlainFile(atPath: path, contents: Data(count: 1000))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = VideoFormat(width: 16, height: 16, pixelFormat: .i420, frameRate: FrameRate(30))
        #expect(throws: RawFileCamera.OpenError.self) { _ = try RawFileCamera(path: path, format: f) }
        _ = FileManager.default.createPlainFile(atPath: path, contents: Data(count: f.frameSize * 3))
        let cam = try RawFileCamera(path: path, format: f)
        #expect(cam.frameCount == 3)
        var n = 0
        while let frame = try cam.nextFrame() {
            #expect(frame.sequence == UInt64(n))
            cam.release(frame)
            n += 1
        }
        #expect(n == 3)
    }
}
