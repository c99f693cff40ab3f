import BodycamCore
import Foundation
import Testing

@testable import BodycamMedia

/// A program on PATH, if installed.
func executable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// FFmpeg's tools (Debian: `apt-get install ffmpeg`).
let ffprobePath = executable("ffprobe")
let ffmpegPath = executable("ffmpeg")

/// Runs `tool` to completion and returns its exit status and output.
func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr on another thread so that a full pipe cannot stall the tool.
    nonisolated(unsafe) var stderr = Data()
    let drained = DispatchGroup()
    DispatchQueue.global().async(group: drained) { stderr = err.fileHandleForReading.readDataToEndOfFile() }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    drained.wait()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// A fresh temporary directory, removed after `body`.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bodycam-media-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir)
}

/// Runs ffprobe on `bytes` written to a temporary file; returns each stream's key=value fields
/// and what ffprobe wrote to stderr.
func ffprobeStreams(_ bytes: [UInt8], name: String) throws -> (streams: [[String: String]], errors: String) {
    try withTemporaryDirectory { dir in
        let file = dir.appendingPathComponent(name)
        try Data(bytes).write(to: file)
        let result = try run(try #require(ffprobePath), ["-v", "error", "-count_frames", "-show_streams", file.path])
        #expect(result.status == 0, "ffprobe exit status")
        var streams: [[String: String]] = []
        for line in result.stdout.split(separator: "\n") {
            if line == "[STREAM]" {
                streams.append([:])
            } else if let eq = line.firstIndex(of: "="), !streams.isEmpty {
                streams[streams.count - 1][String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        return (streams, result.stderr)
    }
}

/// The clip as FFmpeg, an independent demuxer and decoder, sees it.
@Suite(
    .enabled(if: ffprobePath != nil, "ffprobe is not installed (apt-get install ffmpeg); skipping the end-to-end check")
)
struct FFprobeTests {
    @Test func ffprobeReadsTheClip() throws {
        let clip = try fixtureClip()
        let probe = try ffprobeStreams(clip.bytes, name: "clip.mp4")
        #expect(probe.errors.isEmpty, "ffprobe: \(probe.errors)")
        let video = try #require(probe.streams.first { $0["codec_type"] == "video" })
        #expect(video["codec_name"] == "h264")
        #expect(video["profile"] == "High")
        #expect(video["width"] == "1280")
        #expect(video["height"] == "720")
        #expect(video["nb_read_frames"] == "60")  // every frame demuxed and decoded
        #expect(video["r_frame_rate"] == "30/1")
        let audio = try #require(probe.streams.first { $0["codec_type"] == "audio" })
        #expect(audio["codec_name"] == "opus")
        #expect(audio["channels"] == "1")
        #expect(audio["sample_rate"] == "48000")
    }

    /// Torn after the first fragment's end: the first second still plays, and the reader's
    /// `validEnd` is where a recovered file should be cut.
    @Test func tornClipPlaysUpToItsLastCompleteFragment() throws {
        let clip = try fixtureClip()
        let torn = Array(clip.bytes[..<(clip.fragmentEnds[0] + 100)])
        let mp4 = try scan(torn).get()
        #expect(mp4.validEnd == clip.fragmentEnds[0])

        let recovered = try ffprobeStreams(Array(torn[..<mp4.validEnd]), name: "recovered.mp4")
        #expect(recovered.errors.isEmpty, "ffprobe: \(recovered.errors)")
        let video = try #require(recovered.streams.first { $0["codec_type"] == "video" })
        #expect(video["nb_read_frames"] == "30")
    }

    /// The reader against an independent writer: FFmpeg's own fragmented MP4 of the same stream.
    @Test(.enabled(if: ffmpegPath != nil, "ffmpeg is not installed; skipping the FFmpeg-written file"))
    func readsWhatFFmpegWrites() throws {
        let bytes = try withTemporaryDirectory { dir in
            let input = dir.appendingPathComponent("in.264")
            let output = dir.appendingPathComponent("out.mp4")
            try Data(X264Fixture.annexB).write(to: input)
            let result = try run(
                try #require(ffmpegPath),
                [
                    "-v", "error", "-f", "h264", "-framerate", "30", "-i", input.path, "-c:v", "copy",
                    "-movflags", "frag_keyframe+empty_moov+default_base_moof", output.path,
                ])
            #expect(result.status == 0, "ffmpeg: \(result.stderr)")
            return try [UInt8](Data(contentsOf: output))
        }
        let mp4 = try scan(bytes).get()
        #expect(mp4.trailingBytes == 0)
        let track = try #require(mp4.tracks.first)
        #expect(mp4.tracks.count == 1)
        #expect((track.codec, track.handler, track.width, track.height) == ("avc1", "vide", 1280, 720))
        #expect(track.avc?.sps == [X264Fixture.sps])
        #expect(mp4.fragments.count == 2)  // one per keyframe
        #expect(mp4.fragments.map { $0.track(track.trackID)?.sampleCount } == [30, 30])
        #expect(mp4.fragments.map { $0.track(track.trackID)?.syncSampleCount } == [1, 1])
        let units = accessUnits(X264Fixture.annexB)
        let samples = mp4.fragments.flatMap { $0.trackFragments.flatMap(\.samples) }
        // FFmpeg converts Annex B to length prefixes but keeps SPS and PPS in the first sample.
        #expect(samples.count == 60)
        for (i, s) in samples.enumerated().dropFirst() where i % 30 != 0 {
            #expect(Array(bytes[s.bytes]) == units[i].bytes, "sample \(i)")
        }
    }
}
