import BodycamAdapters
import BodycamCore
import BodycamMedia
import Foundation
public import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Options of `bodycam run`.
public struct RunOptions: Sendable {
    public var board: String
    public var config: String?
    public var data: String
    public var runFor: Double?
    public var logLevel: Logger.Level

    public init(board: String, config: String?, data: String, runFor: Double?, logLevel: Logger.Level = .info) {
        self.board = board
        self.config = config
        self.data = data
        self.runFor = runFor
        self.logLevel = logLevel
    }
}

/// Exit codes (sysexits(3) where one fits), as documented in the README.
public enum ExitCode {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let usage: Int32 = 64
    public static let config: Int32 = 78
    /// Stopped because the battery is about to give out (the low-battery line); the systemd unit
    /// does not restart on it, so the camera is not brought back only to lose power mid-clip.
    public static let lowBattery: Int32 = 3
}

/// A one-shot event an async task can wait for and any thread can fire.
final class StopEvent: @unchecked Sendable {
    private let state = Mutex<(reason: String?, waiter: CheckedContinuation<Void, Never>?)>((nil, nil))

    func fire(_ reason: String) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard s.reason == nil else { return nil }
            s.reason = reason
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    var reason: String? { state.withLock { $0.reason } }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let fired = state.withLock { s -> Bool in
                if s.reason != nil { return true }
                s.waiter = c
                return false
            }
            if fired { c.resume() }
        }
    }
}

/// `bodycam run`: the recorder, from start-up to a clean shutdown.
public enum Runner {
    public static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level) }
    }

    /// Runs until SIGTERM/SIGINT, `ctl stop`, the `q` key or `--for`. Returns the exit code.
    public static func run(_ options: RunOptions) async -> Int32 {
        let logger = Logger(label: "bodycam")
        let board: BoardDescription
        let config: BodycamConfig
        do {
            board = try BoardDescription.load(options.board)
            config = try ConfigLoader.loadConfig(options.config)
        } catch {
            logger.critical("configuration error: \(error.description)")
            FileHandle.standardError.write(Data("bodycam: \(error.description)\n".utf8))
            return ExitCode.config
        }
        let data = DataDirectory(options.data)
        let lockFD: Int32
        do {
            try data.prepare()
            lockFD = try data.lock()
        } catch {
            logger.critical("data directory \(data.root): \(error)")
            return ExitCode.failure
        }
        defer { Syscall.close(lockFD) }
        let evidence: Evidence
        do {
            evidence = try Evidence.prepare(data: data, board: board, config: config, options: options, logger: logger)
        } catch let e as ConfigurationFailure {
            logger.critical("configuration error: \(e.description)")
            FileHandle.standardError.write(Data("bodycam: \(e.description)\n".utf8))
            return ExitCode.config
        } catch {
            logger.critical("cannot start: \(error)")
            FileHandle.standardError.write(Data("bodycam: \(error)\n".utf8))
            return ExitCode.failure
        }
        let recovered = Recovery.recoverInterrupted(data, identity: evidence.identity, logger: logger)
        let repaired = recovered.filter { !$0.leftoverOnly }.count
        if repaired > 0 { logger.warning("recovered \(repaired) interrupted clip(s)") }
        for r in recovered { evidence.record(r.auditEvent, r.auditDetails) }

        let system: RecordingSystem
        do {
            system = try RecordingSystem(board: board, config: config, data: data, evidence: evidence, logger: logger)
        } catch let e as ConfigurationFailure {
            logger.critical("configuration error: \(e.description)")
            FileHandle.standardError.write(Data("bodycam: \(e.description)\n".utf8))
            return ExitCode.config
        } catch {
            logger.critical("cannot start: \(error)")
            return ExitCode.failure
        }
        let stop = StopEvent()
        let service = RecorderService(system: system, options: options, stop: stop, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("stopped by error: \(error)")
            return ExitCode.failure
        }
        return service.exitCode.withLock { $0 }
    }
}

/// Everything `run` assembles from the board and config: sources, encoders, recorder, writer.
final class RecordingSystem: @unchecked Sendable {
    let board: BoardDescription
    let config: BodycamConfig
    let data: DataDirectory
    let deviceID: String
    let recorder: Recorder
    let writer: ClipWriter
    let pipeline: MediaPipeline
    let started = MonotonicTime(nanoseconds: SystemClock.monotonic())
    let docked = Mutex(false)
    let hardware: Hardware
    /// nil when no `[offload]` is configured: clips stay on the device.
    let offloader: Offloader?
    /// Below this much free space no clip starts and a clip in progress ends.
    let storageReserveBytes: Int64
    /// About what starting a clip writes at once (the pre-event buffer at the bitrate cap).
    let preEventBytes: Int64

    init(board: BoardDescription, config: BodycamConfig, data: DataDirectory, evidence: Evidence, logger: Logger) throws {
        self.board = board
        self.config = config
        self.data = data
        deviceID = config.deviceID ?? DataDirectory.defaultDeviceID()
        // Before anything large is allocated (x264's frames above all): see the function.
        Posix.disableTransparentHugePages()
        let hardware = try Hardware(board: board, logger: logger)
        self.hardware = hardware
        // The camera may have negotiated a different pixel format than the board's first choice.
        let format = hardware.camera.format
        var video = config.video.cappedByDefault(for: format)
        video.keyframeInterval = max(1, Int(format.frameRate.framesPerSecond.rounded()))
        let timescale = format.frameRate.timescale
        let encoder: X264Encoder
        do {
            encoder = try X264Encoder(format: format, settings: video, timescale: timescale)
        } catch {
            throw ConfigurationFailure(description: "[video]: \(error)")
        }
        let camera = hardware.camera
        var microphone: (any AudioSource)?
        var audioEncoder: OpusAudioEncoder?
        var audioTrack: AudioTrack?
        if config.audioEnabled, let mic = hardware.microphone {
            microphone = mic
            do {
                let enc = try OpusAudioEncoder(
                    sampleRate: mic.sampleRate, channels: mic.channels, bitrate: config.audioBitrateKbps * 1000,
                    voice: config.audioVoice, complexity: config.audioComplexity)
                audioEncoder = enc
                audioTrack = AudioTrack(sampleRate: mic.sampleRate, channels: mic.channels, preSkip: enc.preSkip)
            } catch {
                throw ConfigurationFailure(description: "[audio]: \(error)")
            }
        }
        let preEvent = Nanos.seconds(config.preEventSeconds)
        let ring = RingSizing(format: format, settings: video, preEventSeconds: config.preEventSeconds,
                              bufferMiB: config.bufferMiB, audioKbps: audioTrack == nil ? 0 : config.audioBitrateKbps)
        let buffer = PreEventBuffer(
            video: MediaRing(capacity: ring.videoBytes, maxEntries: ring.videoEntries),
            audio: MediaRing(capacity: ring.audioBytes, maxEntries: ring.audioEntries),
            preEvent: preEvent, includeAudio: config.preEventAudio)
        let settings = RecorderSettings(
            deviceID: deviceID, board: board.name, videoFormat: format,
            video: VideoTrack(
                width: format.width, height: format.height, timescale: timescale, sps: encoder.parameterSets.sps,
                pps: encoder.parameterSets.pps),
            audio: audioTrack, audioBitrate: config.audioBitrateKbps * 1000,
            encoderDescription: encoder.settingsString, preEvent: preEvent, preEventAudio: config.preEventAudio,
            rollover: Nanos.seconds(config.rolloverMinutes * 60), clipsDirectory: data.clips,
            journalDirectory: data.journal, outputPath: nil, firstClipSequence: data.nextClipSequence(),
            sequenceFile: data.sequenceFile, sealed: evidence.recipient != nil, audit: true, detector: config.detector.policy)
        writer = ClipWriter(logger: logger, identity: evidence.identity, audit: evidence.audit, recipient: evidence.recipient)
        let machine = RecorderMachine(
            policy: RecorderPolicy(reminderInterval: config.reminderSeconds > 0 ? Nanos.seconds(config.reminderSeconds) : Int64.max / 4))
        recorder = try Recorder(
            settings: settings, buffer: buffer, machine: machine, timing: config.buttons, writer: writer,
            indicators: hardware.indicators, logger: logger)
        writer.delegate = recorder
        if !recorder.clockPair.wall.trusted {
            logger.notice("wall clock not synchronised: UTC times are flagged untrusted and the warning LED flashes until it is")
        }
        recorder.updateClock(recorder.clockPair)
        pipeline = MediaPipeline(
            camera: camera, microphone: microphone, videoEncoder: encoder, audioEncoder: audioEncoder,
            recorder: recorder, logger: logger, audioPeriodFrames: board.microphone.periodFrames)
        if config.watermark.enabled {
            pipeline.watermark = Watermark(settings: config.watermark, deviceID: deviceID, format: format)
            pipeline.clock = recorder.clockPair
        }
        if config.detector.action != .off {
            if config.detector.video && !VideoActivityDetector.supports(format) {
                logger.warning("detector: a \(format.width)x\(format.height) picture is too small for the video detector; it stays off")
            } else if config.detector.video {
                var v = VideoActivitySettings()
                v.sampleRate = config.detector.sampleHz
                pipeline.videoDetector = VideoActivityDetector(format: format, settings: v)
            }
            if config.detector.audio, let mic = microphone {
                pipeline.audioDetector = AudioEventDetector(sampleRate: mic.sampleRate, channels: mic.channels)
            }
            logger.notice("detector: \(config.detector.action.rawValue) (video \(config.detector.video ? "on" : "off"), audio \(config.detector.audio && microphone != nil ? "on" : "off"))")
        }
        let estimatedKbps = Int64(video.maxKbps
            ?? Int(Double(format.width * format.height) * format.frameRate.framesPerSecond * 0.3 / 1000))
        storageReserveBytes = config.storageReserveMiB.map { Int64($0) * 1_048_576 }
            ?? (estimatedKbps * 125 * 60 + 16 * 1_048_576)
        preEventBytes = Int64(estimatedKbps * 125) * Int64(config.preEventSeconds.rounded(.up))
        if let o = config.offload {
            let target = try Offloader.makeTarget(o, data: data)
            let recorder = recorder
            let offloader = Offloader(
                settings: o, target: target, data: data, deviceID: deviceID, logger: logger,
                audit: { event, details, sync in recorder.audit(event, details, sync: sync) },
                indicate: { pattern in recorder.indicate(.led(.dock, pattern)) },
                isOpen: { [writer] id in writer.isOpen(id) })
            recorder.onClipClosed = { offloader.wake() }
            self.offloader = offloader
            logger.notice("offload to \(target.name) when docked (retention: \(o.retention.rawValue))")
        } else {
            offloader = nil
            logger.notice("no [offload] configured: clips stay on the device")
        }
        logger.notice(
            "bodycam \(deviceID) on board \(board.name): \(format), audio \(audioTrack.map { "\($0.sampleRate) Hz x\($0.channels) opus" } ?? "off"), pre-event \(config.preEventSeconds)s, ring \(ring.videoBytes / 1_048_576) MiB, video cap \(video.maxKbps.map { "\($0) kbit/s" } ?? "none")")
    }

    /// One line for `systemctl status` (sd_notify STATUS=).
    func serviceStatusLine() -> String {
        let r = recorder.status()
        var parts: [String] = []
        switch r.state {
        case .starting: parts.append("starting the camera")
        case .buffering: parts.append("buffering (pre-event \(Int(r.preEventSeconds.rounded())) s)")
        case .recording: parts.append("recording \(r.clipID ?? "")")
        case .stopping: parts.append("stopping")
        }
        if r.storageLow { parts.append("STORAGE LOW") }
        if r.warnings.contains(WarningReason.storageFault.rawValue) { parts.append("STORAGE FAULT") }
        if r.cameraLost { parts.append("CAMERA LOST") }
        if r.videoStalled { parts.append("VIDEO STALLED") }
        if !r.clockTrusted { parts.append("clock not synchronised") }
        if docked.withLock({ $0 }) { parts.append("docked") }
        return parts.joined(separator: ", ")
    }

    /// The `ctl status` answer.
    func statusObject() -> [String: Any] {
        let r = recorder.status()
        let cam = hardware.camera.counters
        let mic = hardware.microphone?.counters
        var obj: [String: Any] = [
            "state": r.state.rawValue,
            "device_id": deviceID,
            "board": board.name,
            "uptime": Nanos.toSeconds(MonotonicTime(nanoseconds: SystemClock.monotonic()) - started),
            "pre_event_seconds": (r.preEventSeconds * 10).rounded() / 10,
            "pre_event_target": config.preEventSeconds,
            "clips": r.clipsClosed,
            "muted": r.muted,
            "docked": docked.withLock { $0 },
            "leds": Dictionary(uniqueKeysWithValues: LED.allCases.map { ($0.rawValue, (r.leds[$0] ?? .off).description) }),
            "warnings": r.warnings,
            "clock": ["trusted": r.clockTrusted, "utc": UTCFormat.iso8601(recorder.clockPair.unixSeconds(at: MonotonicTime(nanoseconds: SystemClock.monotonic())))] as [String: Any],
            "haptic": ["last": r.lastHaptic as Any, "count": r.hapticCount],
            "video": [
                "format": hardware.camera.format.description, "frames_captured": Int(cam.delivered),
                "frames_encoded": r.framesEncoded, "dropped_capture": Int(cam.dropped),
                "dropped_pipeline": r.pipelineDropped, "dropped_queue": r.queueDropped, "corrupt": Int(cam.corrupt), "reopened": Int(cam.recoveries),
                "gaps": r.videoGaps, "kbps": r.videoKbps.rounded(), "lost": r.cameraLost,
                "stalled": r.videoStalled,
            ] as [String: Any],
            "audio": [
                "packets": r.audioPackets, "muted": r.muted, "dropped": r.audioDropped, "gaps": r.audioGaps,
                "recovered": Int(mic?.recoveries ?? 0),
            ] as [String: Any],
            "pre_event_evictions": r.preEventEvictions,
            "detector": ["action": config.detector.action.rawValue, "events": r.detectorEvents] as [String: Any],
            "writer_backlog": r.writerBacklog,
        ]
        obj["last_clip"] = r.lastClip
        // For start-up and response measurements (CLOCK_MONOTONIC is the same clock for every
        // process, so a launcher can subtract its own exec time).
        var timing: [String: Any] = ["started_monotonic_ns": started.nanoseconds]
        if let b = r.bufferingSince { timing["buffering_monotonic_ns"] = b.nanoseconds }
        if let t = r.lastTransition {
            timing["last_transition"] = ["gesture": t.gesture, "state": t.state.rawValue,
                                         "ms": (Double(t.latency) / 1e4).rounded() / 100] as [String: Any]
        }
        obj["timing"] = timing
        if let id = r.clipID {
            obj["clip"] = ["id": id, "seconds": ((r.clipSeconds ?? 0) * 10).rounded() / 10, "markers": r.clipMarkers] as [String: Any]
        } else {
            obj["clip"] = NSNull()
        }
        if let offloader {
            obj["offload"] = offloader.statusObject()
        } else {
            let pending = FileSystem.list(data.clips).filter { $0.hasSuffix(".json") }.count
            obj["offload"] = ["configured": false, "pending": pending] as [String: Any]
        }
        var storage: [String: Any] = ["path": data.root, "low": r.storageLow, "reserve_bytes": storageReserveBytes]
        if let free = FileSystem.freeBytes(at: data.root) { storage["free_bytes"] = free }
        obj["storage"] = storage
        return obj
    }
}

/// Sizes of the pre-event rings: enough for the pre-event time at the bitrate cap, plus room for
/// fragments waiting on storage, so a slow card does not cost pre-event footage.
struct RingSizing {
    var videoBytes: Int
    var videoEntries: Int
    var audioBytes: Int
    var audioEntries: Int

    init(format: VideoFormat, settings: VideoEncoderSettings, preEventSeconds: Double, bufferMiB: Int?, audioKbps: Int = 64) {
        // The pre-event time, one more group of pictures (clips start on a keyframe), and five
        // seconds of fragments waiting on a slow card while a clip's pre-event part is written.
        let seconds = preEventSeconds + 6
        if let max = settings.maxKbps {
            // A VBV bounds what any window holds: rate x time + the buffer. 5 % for the
            // container's bytes and x264's rare overshoot of a tight VBV.
            let kbits = Double(max) * seconds + Double(settings.vbvBufferKbits ?? max)
            videoBytes = Int(kbits * 125 * 1.05)
        } else {
            // Without a cap, assume a generous 0.3 bit per pixel (noisy night scenes at CRF 23).
            let kbps = Double(format.width * format.height) * format.frameRate.framesPerSecond * 0.3 / 1000
            videoBytes = Int(kbps * 125 * seconds * 1.3)
        }
        videoBytes = bufferMiB.map { $0 * 1_048_576 } ?? Swift.max(8 * 1_048_576, videoBytes)
        videoEntries = Int(format.frameRate.framesPerSecond * seconds) + 64
        // Opus at its configured rate, twice over (packets of silence and speech vary).
        audioBytes = Swift.max(128 * 1024, Int(Double(audioKbps) * 125 * seconds * 2))
        audioEntries = Int(50 * seconds) + 64
    }
}

/// The `sim` board's lights and motor: shown in `ctl status` and the log (by the recorder).
final class StatusIndicators: Indicators, @unchecked Sendable {
    func perform(_ action: IndicatorAction) {}
}

/// The recorder as a service: starts the threads, waits for a stop, shuts down in order.
final class RecorderService: Service, @unchecked Sendable {
    let system: RecordingSystem
    let options: RunOptions
    let stop: StopEvent
    let logger: Logger
    let exitCode = Mutex<Int32>(ExitCode.success)

    init(system: RecordingSystem, options: RunOptions, stop: StopEvent, logger: Logger) {
        self.system = system
        self.options = options
        self.stop = stop
        self.logger = logger
    }

    func run() async throws {
        let s = system
        s.writer.start()
        s.pipeline.onVideoEnded = { [self] error in
            if let error {
                logger.critical("camera stopped: \(error)")
                self.exitCode.withLock { $0 = ExitCode.failure }
            }
            self.stop.fire("video source ended")
        }
        let setDocked: @Sendable (Bool) -> Void = { [logger] on in
            // Two sensors (a dock file and ctl) may report at once: the offloader hears them in
            // the order `docked` took them.
            let changed = s.docked.withLock { d -> Bool in
                defer { d = on }
                if d != on { s.offloader?.setDocked(on) }
                return d != on
            }
            if changed {
                logger.notice(on ? "docked" : "undocked")
                s.recorder.audit(on ? "dock" : "undock", [:])
                if s.offloader == nil { s.recorder.indicate(.led(.dock, on ? .on : .off)) }
            }
        }
        s.offloader?.start()
        let dockPoller = s.board.dock.path.map { DockPoller(path: $0, kind: s.board.dock.kind, logger: logger, report: setDocked) }
        let notifier = SystemdNotifier()
        let wakeTarget = ControlLoopReference()
        var hooks = s.hardware.wire(
            recorder: s.recorder, docked: setDocked, wake: { wakeTarget.loop?.wake() },
            lowBattery: { [self] in
                logger.critical("battery low: finalising the clip in progress and stopping")
                exitCode.withLock { $0 = ExitCode.lowBattery }
                stop.fire("low battery")
            })
        let housekeeper = Housekeeper(
            recorder: s.recorder, notifier: notifier,
            probes: .init(
                captured: {
                    let c = s.hardware.camera.counters
                    return (Int(truncatingIfNeeded: c.delivered), Int(truncatingIfNeeded: c.heartbeats))
                },
                encoded: { s.recorder.framesEncoded },
                written: { (s.writer.completed.load(ordering: .relaxed), s.writer.backlog) },
                freeBytes: { FileSystem.freeBytes(at: s.data.clips) }, statusLine: { s.serviceStatusLine() },
                ready: { s.recorder.machineState != .starting }),
            reserveBytes: s.storageReserveBytes, startBurstBytes: s.preEventBytes, logger: logger,
            onClock: { pair in if s.pipeline.watermark != nil { s.pipeline.clock = pair } })
        let hardwareTick = hooks.tick
        hooks.tick = { now in
            let next = housekeeper.tick(now)
            return hardwareTick?(now).map { min($0, next) } ?? next
        }
        let control = ControlLoop(
            socketPath: s.data.socket, recorder: s.recorder, logger: logger, runFor: options.runFor,
            terminal: StatusLine.available ? StatusLine() : nil, status: { s.statusObject() },
            onStop: { [stop] reason in stop.fire(reason) }, onDock: setDocked, hooks: hooks)
        wakeTarget.loop = control
        s.recorder.detectorWake = { wakeTarget.loop?.wake() }
        do {
            try control.start()
        } catch {
            logger.critical("control socket: \(error)")
            exitCode.withLock { $0 = ExitCode.failure }
            dockPoller?.stop()
            s.offloader?.stop()
            s.writer.finish()
            return
        }
        s.pipeline.start()
        logger.notice("running; control socket \(s.data.socket)")
        await withGracefulShutdownHandler {
            await stop.wait()
        } onGracefulShutdown: { [stop] in
            stop.fire("signal")
        }
        logger.notice("stopping (\(stop.reason ?? "?"))")
        housekeeper.stopping(stop.reason ?? "?")
        s.recorder.audit("shutdown", ["reason": stop.reason ?? "unknown"])
        // The shutdown joins threads and waits on storage: do it off the cooperative pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            _ = DedicatedThread(name: "bc-shutdown") { [logger] in
                // Uploads first: a request in flight is cancelled and resumes at the next start.
                dockPoller?.stop()
                s.offloader?.stop()
                Self.shutdown(s, control: control, logger: logger)
                done.resume()
            }
        }
        logger.notice("stopped")
    }

    /// Finalise the clip in progress (media keeps flowing until its end is cut), then stop the
    /// sources, drain the encoder and the writer.
    static func shutdown(_ s: RecordingSystem, control: ControlLoop, logger: Logger) {
        let t = MonotonicTime(nanoseconds: SystemClock.monotonic())
        s.recorder.shutdown(now: t)
        let deadline = t + Nanos.seconds(3)
        while s.recorder.hasOpenClip && MonotonicTime(nanoseconds: SystemClock.monotonic()) < deadline {
            usleep(20_000)
        }
        s.pipeline.stop()
        s.pipeline.join()
        s.recorder.finishNow(reason: "shutdown", now: MonotonicTime(nanoseconds: SystemClock.monotonic()))
        s.writer.finish()
        control.stop()
        s.hardware.shutdown()
    }
}

/// Lets hardware callbacks created before the control loop wake it once it exists.
final class ControlLoopReference: @unchecked Sendable {
    private let lock = Mutex<ControlLoop?>(nil)
    var loop: ControlLoop? {
        get { lock.withLock { $0 } }
        set { lock.withLock { $0 = newValue } }
    }
}

/// Reads a dock file (a power supply's `online`, an interface's `carrier`) once a second; sysfs
/// attributes like these do not all support poll(), and a second is fast enough for a dock.
final class DockPoller: @unchecked Sendable {
    private let cond = Condition()
    private var stopping = false
    private var thread: DedicatedThread?

    init(path: String, kind: String, logger: Logger, report: @escaping @Sendable (Bool) -> Void) {
        thread = DedicatedThread(name: "bc-dock") { [self] in
            var last: Bool?
            var warned = false
            while true {
                let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                if text == nil && !warned {
                    logger.warning("dock sensor (\(kind)) \(path) cannot be read: treated as undocked")
                    warned = true
                } else if text != nil {
                    warned = false
                }
                let on = text == "1"
                if on != last {
                    last = on
                    report(on)
                }
                let done = cond.withLock { () -> Bool in
                    if !stopping { _ = cond.wait(untilMonotonic: SystemClock.monotonic() + 1_000_000_000) }
                    return stopping
                }
                if done { return }
            }
        }
    }

    func stop() {
        cond.withLock {
            stopping = true
            cond.broadcast()
        }
        thread?.join()
    }
}
