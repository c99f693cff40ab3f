import BodycamAdapters
public import BodycamCore
import BodycamEvidence
import BodycamMedia
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Options of `bodycam encode`.
public struct EncodeOptions: Sendable {
    public var input: String
    public var width: Int
    public var height: Int
    public var frameRate: FrameRate
    public var pixelFormat: PixelFormat
    public var preset: String
    public var tune: String?
    public var crf: Double
    public var threads: Int
    public var output: String
    /// Run the activity detector over the input; events go to `OUTPUT.events.jsonl`.
    public var detector: Bool
    /// VBV cap on top of CRF (kbit/s and kbit), as `run` records with; nil: none.
    public var maxKbps: Int?
    public var bufferKbits: Int?
    /// Seal the output with age to this recipient, as `run` does; nil: plain MP4.
    public var recipient: String?
    /// Sign a fragment journal (OUTPUT's clip id + `.jsonl`, beside it) and the manifest with the
    /// device identity in this folder, as `run` does; nil: unsigned, no journal.
    public var deviceDirectory: String?

    public init(
        input: String, width: Int, height: Int, frameRate: FrameRate, pixelFormat: PixelFormat, preset: String,
        tune: String?, crf: Double, threads: Int, output: String, detector: Bool = false, maxKbps: Int? = nil,
        bufferKbits: Int? = nil, recipient: String? = nil, deviceDirectory: String? = nil
    ) {
        self.detector = detector
        self.maxKbps = maxKbps
        self.bufferKbits = bufferKbits
        self.recipient = recipient
        self.deviceDirectory = deviceDirectory
        self.input = input
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.pixelFormat = pixelFormat
        self.preset = preset
        self.tune = tune
        self.crf = crf
        self.threads = threads
        self.output = output
    }
}

/// `bodycam encode`: a raw file through the very stages `run` uses (pixel conversion, x264, the
/// pre-event ring, the fragment builder, the clip writer with its hashes and syncs), with only
/// the source swapped for the file. What it costs is what recording costs on the device.
public enum FileEncoder {
    static func folder(of path: String) -> String {
        let d = (path as NSString).deletingLastPathComponent
        return d.isEmpty ? "." : d
    }

    public static func encode(_ o: EncodeOptions) -> Int32 {
        let logger = Logger(label: "bodycam.encode")
        let format = VideoFormat(width: o.width, height: o.height, pixelFormat: o.pixelFormat, frameRate: o.frameRate)
        let camera: RawFileCamera
        do {
            camera = try RawFileCamera(path: o.input, format: format)
        } catch {
            Posix.printError("bodycam: \(error)\n")
            if case .notWholeFrames = error { return ExitCode.usage }
            return ExitCode.failure
        }
        var settings = VideoEncoderSettings()
        settings.preset = o.preset
        settings.tune = o.tune
        settings.rateControl = .crf(o.crf, maxKbps: o.maxKbps, bufferKbits: o.bufferKbits ?? o.maxKbps)
        settings.threads = o.threads
        settings.keyframeInterval = max(1, Int(o.frameRate.framesPerSecond.rounded()))
        let timescale = o.frameRate.timescale
        let encoder: X264Encoder
        // As `run` does, so that what `encode` measures is what the device does.
        Posix.disableTransparentHugePages()
        do {
            encoder = try X264Encoder(format: format, settings: settings, timescale: timescale)
        } catch {
            Posix.printError("bodycam: \(error)\n")
            return ExitCode.usage
        }
        var identity: DeviceIdentity?
        if let dir = o.deviceDirectory {
            do {
                identity = try DeviceIdentity.load(directory: dir)
            } catch {
                Posix.printError("bodycam: --device \(dir): \(error)\n")
                return ExitCode.usage
            }
        }
        if let r = o.recipient {
            do {
                _ = try AgeRecipient(parsing: r)
            } catch {
                Posix.printError("bodycam: --seal: \(error)\n")
                return ExitCode.usage
            }
        }
        let writer = ClipWriter(logger: logger, identity: identity, recipient: o.recipient)
        let recorderSettings = RecorderSettings(
            deviceID: DataDirectory.defaultDeviceID(), board: "file", videoFormat: format,
            video: VideoTrack(
                width: o.width, height: o.height, timescale: timescale, sps: encoder.parameterSets.sps,
                pps: encoder.parameterSets.pps),
            audio: nil, audioBitrate: 0, encoderDescription: encoder.settingsString, preEvent: 0,
            preEventAudio: false, rollover: Int64.max / 4, clipsDirectory: ".",
            journalDirectory: identity == nil ? nil : Self.folder(of: o.output),
            outputPath: o.output, firstClipSequence: 1, sequenceFile: nil, autoStart: true)
        // The ring only has to hold what the writer has not yet synced: a few seconds.
        let ring = 32 * 1_048_576
        let buffer = PreEventBuffer(
            video: MediaRing(capacity: ring, maxEntries: Int(o.frameRate.framesPerSecond * 30) + 64),
            audio: MediaRing(capacity: 4096, maxEntries: 16), preEvent: 0, includeAudio: false)
        let recorder: Recorder
        do {
            recorder = try Recorder(
                settings: recorderSettings, buffer: buffer, machine: RecorderMachine(), timing: ButtonTiming(),
                writer: writer, indicators: StatusIndicators(), logger: logger)
        } catch {
            Posix.printError("bodycam: encoder produced an unusable SPS: \(error)\n")
            return ExitCode.failure
        }
        writer.delegate = recorder
        unlink(o.output)
        writer.start()
        let pipeline = MediaPipeline(
            camera: camera, microphone: nil, videoEncoder: encoder, audioEncoder: nil, recorder: recorder,
            logger: logger, waitForEncoder: true)
        // Events as JSON lines, one per event once it has ended (so each has its end and peak).
        let events = EventLog()
        if o.detector {
            guard VideoActivityDetector.supports(format) else {
                Posix.printError("bodycam: --detector: a \(o.width)x\(o.height) picture is too small for the video detector "
                    + "(reduced to about 160 pixels wide it must keep at least 40x24)\n")
                return ExitCode.usage
            }
            pipeline.videoDetector = VideoActivityDetector(format: format)
            pipeline.onDetector = { update in
                if case .ended(let e) = update { events.add(e) }
            }
        }
        pipeline.start()
        pipeline.join()
        recorder.finishNow(reason: "end-of-input", now: MonotonicTime(nanoseconds: SystemClock.monotonic()))
        writer.finish()
        let status = recorder.status()
        guard FileSystem.exists(o.output), status.clipsClosed == 1 else {
            Posix.printError("bodycam: \(o.output) was not written completely\n")
            return ExitCode.failure
        }
        if o.detector {
            let path = o.output + ".events.jsonl"
            do {
                try FileSystem.writeAtomically(Data(events.jsonLines().utf8), to: path)
            } catch {
                Posix.printError("bodycam: \(path): \(error)\n")
                return ExitCode.failure
            }
        }
        if status.pipelineDropped > 0 {
            Posix.printError("bodycam: \(status.pipelineDropped) frames were dropped (storage too slow)\n")
            return ExitCode.failure
        }
        return ExitCode.success
    }
}

/// Detector events of `encode --detector`, written as JSON lines: `media_time` and `end_time` in
/// seconds from the first frame, `kind`, `score`, and for video the `region` (x, y, width, height
/// as fractions of the picture).
final class EventLog: @unchecked Sendable {
    private var events: [ActivityEvent] = []
    private let lock = NSLock()

    func add(_ e: ActivityEvent) {
        lock.lock()
        events.append(e)
        lock.unlock()
    }

    func jsonLines() -> String {
        lock.lock()
        defer { lock.unlock() }
        return events.sorted { $0.start < $1.start }.map { e in
            var o: [String: Any] = [
                "media_time": (e.start.seconds * 1000).rounded() / 1000,
                "end_time": ((e.end ?? e.start).seconds * 1000).rounded() / 1000,
                "kind": e.kind, "score": e.roundedScore,
            ]
            if let c = e.cause { o["cause"] = c }
            if let r = e.region { o["region"] = [r.x, r.y, r.width, r.height].map { ($0 * 1000).rounded() / 1000 } }
            let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }.joined()
    }
}
