import BodycamAdapters
import BodycamCore
import BodycamMedia
import Foundation
import Logging
import Synchronization

/// Fixed facts the recorder needs about the pipeline it sits in.
struct RecorderSettings: Sendable {
    var deviceID: String
    var board: String
    var videoFormat: VideoFormat
    var video: VideoTrack
    var audio: AudioTrack?
    var audioBitrate: Int
    var encoderDescription: String
    var preEvent: Int64
    var preEventAudio: Bool
    var rollover: Int64
    var clipsDirectory: String
    /// nil: no journal (only `encode` writes without one, to a path the user chose).
    var journalDirectory: String?
    /// Set for `encode`: the single clip goes here instead of `clipsDirectory/<id>.mp4`.
    var outputPath: String?
    var firstClipSequence: Int
    /// Where the next clip sequence number is persisted (nil for `encode`).
    var sequenceFile: String?
    /// Start a clip as soon as frames flow (`encode`: the whole input is one clip).
    var autoStart = false
    /// Clips are sealed (`<id>.mp4.age`); the writer does the sealing.
    var sealed = false
    /// Write audit-log lines (`run`; `encode` has no audit log).
    var audit = false
    /// How long to wait for late audio before cutting a fragment without it.
    var audioStallTimeout: Int64 = Nanos.milliseconds(300)
    /// What detector events do (`[detector]`).
    var detector = DetectorPolicy(action: .off)
}

/// What `ctl status` shows about the recorder.
struct RecorderStatus: Sendable {
    var state: RecorderState
    var preEventSeconds: Double
    var clipID: String?
    var clipSeconds: Double?
    var clipMarkers: Int
    var clipsClosed: Int
    var lastClip: String?
    var muted: Bool
    var leds: [LED: LEDPattern]
    /// Why the warning light is lit (`WarningReason` raw values, sorted).
    var warnings: [String]
    var lastHaptic: String?
    var hapticCount: Int
    var lastTone: String?
    var framesEncoded: Int
    var captureDropped: Int
    var pipelineDropped: Int
    /// Of those, frames the encoder could not take in time (handed back unencoded).
    var queueDropped: Int
    var audioPackets: Int
    var videoKbps: Double
    var writerBacklog: Int
    /// Groups of pictures dropped early because the ring was full (the pre-event time was cut short).
    var preEventEvictions: Int
    var audioDropped: Int
    var videoGaps: Int
    var audioGaps: Int
    /// No picture from the camera for a while (see `Recorder.cameraLostAfter`).
    var cameraLost = false
    /// No picture reached the encoder for as long while the camera kept delivering: the video
    /// thread is stuck (encoder, detector or watermark), not the camera.
    var videoStalled = false
    /// Whether the system reported the wall clock as synchronised at the last check.
    var clockTrusted = false
    /// Detector events so far (video and audio).
    var detectorEvents = 0
    /// Free storage is below the reserve (or a write hit ENOSPC): no clip starts.
    var storageLow = false
    /// CLOCK_MONOTONIC when the first picture reached the pre-event buffer ("buffering").
    var bufferingSince: MonotonicTime?
    /// The last button gesture that changed the state: which, the state it led to, and the time
    /// from the gesture's own timestamp (the kernel's edge time on GPIO) to the state change.
    var lastTransition: (gesture: String, state: RecorderState, latency: Int64)?
}

/// The heart of the device: pre-event buffer, state machine, button classifier and the clip
/// being cut into fragments, all behind one lock.
///
/// The encoder thread calls `appendVideo`, the audio thread `appendAudio`, the control thread
/// `edge` and `tick`, the writer thread `fragmentDone`. Each call is short: no I/O happens under
/// the lock (file work is queued to the writer; indicators only record a pattern).
final class Recorder: @unchecked Sendable, ClipWriterDelegate {
    let settings: RecorderSettings
    private let writer: ClipWriter
    private let indicators: any Indicators
    private let logger: Logger
    private let state: Mutex<State>
    /// CLOCK_MONOTONIC nanoseconds when the capture thread last had a frame from the camera
    /// (`frameCaptured`); `Int64.min` until then and when frames come from a file.
    private let lastCapture = Atomic<Int64>(Int64.min)
    private let mute = Mutex<(muted: Bool, since: MonotonicTime)>((false, .zero))

    private struct OpenClip {
        var id: String
        var cursor: ClipCursor
        var pendingCut: Int?
        var rolloverAt: Int?
        var stopAt: MonotonicTime?
        var endReason = "button"
        var videoFrames = 0
        var audioPackets = 0
        var markers = 0
        var captureDroppedAtStart: Int
        var pipelineDroppedAtStart: Int
        var audioStartsAt: Double?
        var audioGaps: [ClipManifest.Span] = []
        var videoGaps: [ClipManifest.Span] = []
    }

    /// A stretch the camera or microphone did not capture, on the monotonic clock.
    private struct CaptureGap {
        var video: Bool
        var from: MonotonicTime
        var to: MonotonicTime
        var reason: String
    }

    private struct State {
        var buffer: PreEventBuffer
        var machine: RecorderMachine
        var classifier: ButtonClassifier
        var builder: FragmentBuilder
        var clip: OpenClip?
        var pendingStart: (at: MonotonicTime, trigger: Trigger)?
        var forceKeyframe = false
        var outstanding: [(video: Int, audio: Int)] = []
        var lastAudioArrival: MonotonicTime?
        /// When the last picture reached the encoder (`pictureTaken`).
        var lastVideoArrival: MonotonicTime?
        var newestAudioEnd: MonotonicTime?
        var nextClipSequence: Int
        var clipsClosed = 0
        var lastClip: String?
        var leds: [LED: LEDPattern] = [:]
        /// Why the warning light is lit (low storage, a write fault, a lost camera).
        var warning = WarningLight()
        /// While a write fault (not for space) holds the warning light: the clip it hit. A
        /// fragment of another clip written after it clears it.
        var storageFaultClip: String?
        /// Since when no picture has reached the encoder, once that has lasted `cameraLostAfter`.
        var cameraLostSince: MonotonicTime?
        /// Whether that outage is the video thread's (the camera kept delivering), not the camera's.
        var videoStalled = false
        var lastHaptic: String?
        var hapticCount = 0
        var lastTone: String?
        var framesEncoded = 0
        /// Pictures handed to the encoder (`pictureTaken`); more than `framesEncoded` while it
        /// holds some back (B-frames, lookahead) or is still at work on them.
        var framesTaken = 0
        var captureDropped = 0
        /// Frames the encoder could not take in time (handed back unencoded).
        var queueDropped = 0
        var audioPackets = 0
        var audioGapCount = 0
        var videoGapCount = 0
        /// Capture gaps not yet older than the buffer, so a clip that later opens on buffered
        /// footage (pre-event, or the far side of a rollover) lists them too.
        var recentGaps: [CaptureGap] = []
        var bytesWindow: (start: MonotonicTime, bytes: Int, kbps: Double) = (.zero, 0, 0)
        var evictionsReported = 0
        var clockPair: ClockPair
        var detector: DetectorPolicy
        var detectorEvents = 0
        /// Free bytes when storage went low.
        var storageLowAtFree: Int64?
        /// The last clip whose write failed: the writer refuses its later fragments too, and the
        /// fault is told (audit, log, alert) once.
        var faultedClip: String?
        var bufferingSince: MonotonicTime?
        var lastTransition: (gesture: String, state: RecorderState, latency: Int64)?
    }

    /// The init segment is the same for every clip of this run.
    private let initSegment: [UInt8]

    init(
        settings: RecorderSettings, buffer: PreEventBuffer, machine: RecorderMachine, timing: ButtonTiming,
        writer: ClipWriter, indicators: any Indicators, logger: Logger
    ) throws(H264.ParseError) {
        self.settings = settings
        initSegment = try InitSegment.build(video: settings.video, audio: settings.audio)
        self.writer = writer
        self.indicators = indicators
        self.logger = logger
        let pair = ClockPair(
            monotonic: MonotonicTime(nanoseconds: SystemClock.monotonic()),
            wall: WallClockReading(unixSeconds: SystemClock.realtime(), trusted: SystemClock.isSynchronized()))
        state = Mutex(
            State(
                buffer: buffer, machine: machine,
                classifier: ButtonClassifier(timing: timing, doublePressButtons: [.record]),
                builder: FragmentBuilder(video: settings.video, audio: settings.audio),
                nextClipSequence: settings.firstClipSequence, clockPair: pair, detector: settings.detector))
        mute.withLock { $0 = (machine.muted, .zero) }
    }

    // MARK: - Media in

    /// A frame came from the camera, on the capture thread (before it is queued for the encoder,
    /// or handed back because the encoder is behind). Lock-free: the capture thread must keep up
    /// with the device whatever the rest is doing.
    func frameCaptured(now: MonotonicTime) {
        lastCapture.store(now.nanoseconds, ordering: .relaxed)
    }

    /// A picture from the camera reached the encoder. The camera counts as there (or lost) by
    /// these, not by the encoder's output, which an encoder holding frames back (B-frames,
    /// lookahead) delays and bunches.
    func pictureTaken(now: MonotonicTime) {
        state.withLock { s in
            s.framesTaken += 1
            s.lastVideoArrival = now
            if s.cameraLostSince != nil { cameraBack(&s, now: now) }
        }
    }

    /// Stores an encoded access unit. Returns true when the encoder should make the next frame a
    /// keyframe (a clip is waiting to start, or a frame was lost and the chain must restart).
    func appendVideo(_ au: EncodedVideo, drops: (device: Int, pipeline: Int), now: MonotonicTime) -> Bool {
        state.withLock { s in
            s.framesEncoded += 1
            s.captureDropped = drops.device
            s.queueDropped = drops.pipeline
            let length = au.prefix.count + au.bytes.count
            updateBitrate(&s, bytes: length, now: now)
            let entry = MediaEntry(
                length: length, time: au.time, pts: au.pts, dts: au.dts,
                duration: Int64(settings.videoFormat.frameRate.ticksPerFrame), isSync: au.isKeyframe)
            let result = s.buffer.appendVideo(entry) { dst in
                if !au.prefix.isEmpty { dst.copyMemory(from: au.prefix) }
                UnsafeMutableRawBufferPointer(rebasing: dst[au.prefix.count...]).copyMemory(from: au.bytes)
            }
            if s.buffer.evictedForRoom > s.evictionsReported {
                // Said once per burst, not per frame: the ring is too small for the bitrate.
                if s.evictionsReported == 0 || s.buffer.evictedForRoom - s.evictionsReported >= 30 {
                    logger.warning(
                        "pre-event ring full: oldest seconds dropped early (raise [recording] buffer_mib or cap the bitrate)",
                        metadata: ["buffered": "\(String(format: "%.1f", s.buffer.bufferedSeconds))s"])
                    s.evictionsReported = s.buffer.evictedForRoom
                }
            }
            guard case .stored(let seq) = result else {
                s.forceKeyframe = false
                return true
            }
            if s.machine.state == .starting {
                s.bufferingSince = MonotonicTime(nanoseconds: SystemClock.monotonic())
                perform(&s, s.machine.framesFlowing(at: au.time), now: now)
                if settings.autoStart { perform(&s, s.machine.start(at: au.time, trigger: .control), now: now) }
            }
            if let pending = s.pendingStart, au.isKeyframe, au.time >= pending.at - settings.videoFormat.frameRate.frameInterval {
                s.pendingStart = nil
                openClip(&s, originSeq: seq, pressedAt: pending.at, trigger: pending.trigger, previous: nil, now: now)
            } else if var clip = s.clip, au.isKeyframe, seq > clip.cursor.nextVideoSeq,
                clip.stopAt.map({ au.time < $0 }) ?? true
            {
                // (A keyframe at or past the stop is no boundary of this clip: it ends at the stop.)
                if clip.pendingCut != nil {
                    // The previous boundary is still waiting for audio; a second one means audio is
                    // far behind. Cut without it rather than let the backlog grow.
                    s.clip = clip
                    cutPending(&s, now: now)
                    guard let c = s.clip else { return false }
                    clip = c
                }
                clip.pendingCut = seq
                if au.time - clip.cursor.originTime >= settings.rollover { clip.rolloverAt = seq }
                s.clip = clip
            }
            progress(&s, now: now, force: false)
            let force = s.forceKeyframe
            s.forceKeyframe = false
            return force
        }
    }

    /// Stores an encoded audio packet of `duration` ticks (48 kHz) captured at `time`.
    func appendAudio(_ packet: UnsafeRawBufferPointer, time: MonotonicTime, duration: Int64, now: MonotonicTime) {
        state.withLock { s in
            s.audioPackets += 1
            s.lastAudioArrival = now
            s.newestAudioEnd = time + duration * 1_000_000_000 / 48_000
            let entry = MediaEntry(length: packet.count, time: time, pts: 0, dts: 0, duration: duration, isSync: true)
            s.buffer.appendAudio(entry) { $0.copyMemory(from: packet) }
            progress(&s, now: now, force: false)
        }
    }

    /// The audio thread inserted `seconds` of silence for a gap starting at `time`.
    func audioGap(at time: MonotonicTime, seconds: Double) {
        state.withLock { s in
            s.audioGapCount += 1
            captureGap(&s, CaptureGap(video: false, from: time, to: time + Nanos.seconds(seconds), reason: "capture gap"))
        }
        logger.warning("audio gap of \(Int(seconds * 1000)) ms filled with silence")
        audit("fault", ["what": "audio gap", "milliseconds": "\(Int(seconds * 1000))"])
    }

    /// The camera delivered nothing from `from` to `to` (lost and reopened).
    func videoGap(from: MonotonicTime, to: MonotonicTime, reason: String) {
        state.withLock { s in
            s.videoGapCount += 1
            captureGap(&s, CaptureGap(video: true, from: from, to: to, reason: reason))
        }
        logger.warning("video gap of \(Int(Nanos.toSeconds(to - from) * 1000)) ms: \(reason)")
        audit("fault", ["what": "video gap", "reason": reason, "milliseconds": "\(Int(Nanos.toSeconds(to - from) * 1000))"])
    }

    /// The monotonic-to-UTC mapping clip times and the watermark use.
    var clockPair: ClockPair { state.withLock { $0.clockPair } }

    /// Whether audio captured at `time` must be silenced.
    func isMuted(at time: MonotonicTime) -> Bool {
        mute.withLock { $0.muted && time >= $0.since }
    }

    // MARK: - Operator input and timers

    /// A button edge from GPIO or the control socket.
    func edge(_ button: Button, pressed: Bool, at t: MonotonicTime) {
        state.withLock { s in
            logger.debug("button \(button.rawValue) \(pressed ? "down" : "up")")
            for g in s.classifier.edge(button, pressed: pressed, at: t) { gesture(&s, g, now: t) }
        }
    }

    /// Starts or stops a clip on request (control API, detector).
    func request(start: Bool, at t: MonotonicTime, trigger: Trigger = .control) {
        state.withLock { s in
            perform(&s, start ? s.machine.start(at: t, trigger: trigger) : s.machine.stop(at: t), now: t)
        }
    }

    /// An activity detector's event opened or closed (from the media threads).
    func detector(_ update: DetectorUpdate, now: MonotonicTime) {
        state.withLock { s in
            let (phase, e) = switch update {
            case .began(let e): ("began", e)
            case .ended(let e): ("ended", e)
            }
            var details = ["kind": e.kind, "phase": phase, "score": String(format: "%.3f", e.score)]
            if let cause = e.cause { details["cause"] = cause }
            if let r = e.region { details["region"] = String(format: "%.2f,%.2f,%.2f,%.2f", r.x, r.y, r.width, r.height) }
            if let clip = s.clip { details["clip"] = clip.id }
            // The line is stamped when it is written (the log stays in time order); when the
            // activity began or ended is given relative to that.
            let at = phase == "began" ? e.start : (e.end ?? now)
            details["seconds_ago"] = String(format: "%.2f", max(0, Nanos.toSeconds(now - at)))
            if case .began = update {
                s.detectorEvents += 1
                logger.info("detector: \(e.kind)\(e.cause.map { " (\($0))" } ?? "") activity, score \(String(format: "%.3f", e.score))")
            }
            audit(&s, "detector", details, at: now)
            perform(&s, s.detector.update(update, now: now, machine: &s.machine), now: now)
        }
        // The control thread decides about starting or stopping a clip (its deadline may be now).
        detectorWake?()
    }

    /// Wakes the control loop after a detector event (set before the media threads start).
    var detectorWake: (@Sendable () -> Void)?

    /// Timers: gestures whose time has come, reminders, fragments waiting on stalled audio.
    func tick(now: MonotonicTime) {
        state.withLock { s in
            for g in s.classifier.advance(to: now) { gesture(&s, g, now: now) }
            perform(&s, s.machine.tick(now: now), now: now)
            perform(&s, s.detector.tick(now: now, machine: &s.machine), now: now)
            progress(&s, now: now, force: false)
            watchCamera(&s, now: now)
        }
    }

    /// No picture for `cameraLostAfter` while buffering or recording: the operator is told
    /// (warning light, alert vibration) rather than left recording sound alone unaware.
    ///
    /// When the camera delivered a frame after the last picture that reached the encoder (the
    /// capture thread stamps each one), it is not the camera: the video thread is stuck (the
    /// encoder, the detector or the watermark), and frames are being handed back unencoded. Told
    /// apart so that nobody replaces a working camera; the operator is alerted the same way.
    private func watchCamera(_ s: inout State, now: MonotonicTime) {
        guard let due = cameraLostDeadline(s), now >= due, let last = s.lastVideoArrival else { return }
        s.cameraLostSince = last
        // A frame captured after the last one that reached the encoder: it is waiting (or was
        // handed back), so the camera works and the video thread does not take it.
        s.videoStalled = lastCapture.load(ordering: .relaxed) > last.nanoseconds
        let doing = s.clip == nil ? "buffering sound only" : "recording sound only"
        if s.videoStalled {
            logger.error("no picture encoded for \(Nanos.toSeconds(now - last)) s while the camera delivers frames: video processing stalled (frames are dropped); \(doing)")
        } else {
            logger.error("no picture from the camera for \(Nanos.toSeconds(now - last)) s; \(doing)")
        }
        audit(&s, "fault", ["what": Self.videoLossName(stalled: s.videoStalled)] + (s.clip.map { ["clip": $0.id] } ?? [:]), at: now)
        perform(&s, [.warning(s.videoStalled ? .videoStalled : .cameraLost, true), .indicator(.haptic(.alert))], now: now)
    }

    /// The `fault` line's `what` (and a clip's end gap's cause) for a picture outage.
    static func videoLossName(stalled: Bool) -> String { stalled ? "video processing stalled" : "camera lost" }

    /// When the camera counts as lost if no picture comes first; nil when not watched (not
    /// buffering or recording, no picture yet, or lost already).
    private func cameraLostDeadline(_ s: borrowing State) -> MonotonicTime? {
        guard s.cameraLostSince == nil, let last = s.lastVideoArrival,
            s.machine.state == .buffering || s.machine.state == .recording
        else { return nil }
        return last + Self.cameraLostAfter + 1
    }

    private func cameraBack(_ s: inout State, now: MonotonicTime) {
        guard let since = s.cameraLostSince else { return }
        s.cameraLostSince = nil
        let seconds = Decimals.two(Nanos.toSeconds(now - since))
        if s.videoStalled {
            logger.notice("pictures encoded again after \(seconds) s")
        } else {
            logger.notice("picture from the camera again after \(seconds) s")
        }
        perform(&s, [.warning(s.videoStalled ? .videoStalled : .cameraLost, false)], now: now)
        s.videoStalled = false
    }

    /// How long without a picture before the camera counts as lost for the operator (the V4L2
    /// camera's default timeout; a camera at 1 fps still delivers well within it).
    static let cameraLostAfter = Nanos.seconds(2)

    /// When `tick` next has something to do.
    func nextDeadline() -> MonotonicTime? {
        state.withLock { s in
            var d = [s.classifier.nextDeadline, s.machine.nextDeadline, s.detector.nextDeadline(s.machine.state)]
                .compactMap { $0 }.min()
            // Waits that have already run out are left out: the media they wait on (sound more
            // than a stall behind, a clip closing) wakes the loop itself, and a deadline in the
            // past would make it spin.
            let now = MonotonicTime(nanoseconds: SystemClock.monotonic())
            func wake(_ t: MonotonicTime) { if t > now { d = min(d ?? t, t) } }
            if s.clip?.pendingCut != nil || s.clip?.stopAt != nil, let last = s.lastAudioArrival {
                wake(last + settings.audioStallTimeout)
            }
            if let lost = cameraLostDeadline(s) { wake(lost) }
            if let clip = s.clip, let stopAt = clip.stopAt {
                // A stop waiting on a camera that may be lost (see `progress`).
                wake(max(s.lastVideoArrival ?? clip.cursor.originTime, stopAt) + Self.videoLostAtStop + 1)
            }
            return d
        }
    }

    /// Begins shutting down: a clip in progress is stopped at `now` and cut as media arrives.
    func shutdown(now: MonotonicTime) {
        state.withLock { s in
            if s.clip != nil { s.clip?.endReason = "shutdown" }
            perform(&s, s.machine.shutdown(at: now), now: now)
        }
    }

    /// The wall clock was stepped or its trust changed: later UTC times (clip starts, markers,
    /// audit lines) use the new pairing; media timestamps are monotonic and unaffected. An
    /// untrusted clock shows on the warning light (its least urgent pattern).
    func updateClock(_ pair: ClockPair) {
        state.withLock { s in
            s.clockPair = pair
            perform(&s, [.warning(.clockUntrusted, !pair.wall.trusted)], now: pair.monotonic)
        }
    }

    /// The state machine's state.
    var machineState: RecorderState { state.withLock { $0.machine.state } }

    /// Frames encoded so far.
    var framesEncoded: Int { state.withLock { $0.framesEncoded } }

    /// Whether storage is below its reserve, as the recorder last heard.
    var storageLow: Bool { state.withLock { $0.machine.storageLow } }

    /// Free bytes at the moment storage went low (nil while it is not).
    var storageLowAtFree: Int64? { state.withLock { $0.machine.storageLow ? $0.storageLowAtFree : nil } }

    /// Free storage crossed the reserve: `low` ends a clip in progress (reason "storage") and
    /// refuses new ones until space returns. Audited both ways.
    func storage(low: Bool, freeBytes: Int64, reserveBytes: Int64, now: MonotonicTime) {
        state.withLock { s in
            guard low != s.machine.storageLow else { return }
            let details = ["free_mib": "\(freeBytes / 1_048_576)", "reserve_mib": "\(reserveBytes / 1_048_576)"]
            s.storageLowAtFree = low ? freeBytes : nil
            if low {
                logger.critical("storage low: \(freeBytes / 1_048_576) MiB free, reserve \(reserveBytes / 1_048_576) MiB")
                audit(&s, "storage_low", details + (s.clip.map { ["clip": $0.id] } ?? [:]), at: now)
                // Only a clip this ends: one already stopping keeps its own reason.
                if s.machine.state == .recording, s.clip?.stopAt == nil { s.clip?.endReason = "storage" }
            } else {
                logger.notice("storage available again: \(freeBytes / 1_048_576) MiB free")
                audit(&s, "storage_ok", details, at: now)
            }
            perform(&s, s.machine.storage(low: low, at: now), now: now)
        }
    }

    /// Whether a clip is still open (shutdown waits for it to close).
    var hasOpenClip: Bool { state.withLock { $0.clip != nil || $0.pendingStart != nil } }

    /// Closes the clip in progress with whatever media has arrived (sources have stopped).
    func finishNow(reason: String, now: MonotonicTime) {
        state.withLock { s in
            s.pendingStart = nil
            guard var clip = s.clip else { return }
            if clip.stopAt == nil {
                clip.stopAt = s.buffer.video.isEmpty ? now : s.buffer.video[s.buffer.video.endSeq - 1].time
                clip.endReason = reason
            }
            s.clip = clip
            progress(&s, now: now, force: true)
        }
    }

    func status() -> RecorderStatus {
        state.withLock { s in
            RecorderStatus(
                state: s.machine.state, preEventSeconds: s.buffer.bufferedSeconds, clipID: s.clip?.id,
                clipSeconds: s.clip.map { c in
                    s.buffer.video.isEmpty ? 0 : Nanos.toSeconds(s.buffer.video[s.buffer.video.endSeq - 1].time - c.cursor.originTime)
                },
                clipMarkers: s.clip?.markers ?? 0, clipsClosed: s.clipsClosed, lastClip: s.lastClip,
                muted: s.machine.muted, leds: s.leds, warnings: s.warning.reasons.sorted().map(\.rawValue), lastHaptic: s.lastHaptic, hapticCount: s.hapticCount,
                lastTone: s.lastTone, framesEncoded: s.framesEncoded, captureDropped: s.captureDropped,
                pipelineDropped: s.buffer.droppedVideo + s.queueDropped, queueDropped: s.queueDropped, audioPackets: s.audioPackets, videoKbps: s.bytesWindow.kbps,
                writerBacklog: writer.backlog, preEventEvictions: s.buffer.evictedForRoom,
                audioDropped: s.buffer.droppedAudio, videoGaps: s.videoGapCount, audioGaps: s.audioGapCount,
                cameraLost: s.cameraLostSince != nil && !s.videoStalled,
                videoStalled: s.cameraLostSince != nil && s.videoStalled, clockTrusted: s.clockPair.wall.trusted,
                detectorEvents: s.detectorEvents, storageLow: s.machine.storageLow, bufferingSince: s.bufferingSince,
                lastTransition: s.lastTransition)
        }
    }

    // MARK: - Writer callbacks

    func fragmentDone(_ job: FragmentJob, error: SystemError?) {
        state.withLock { s in
            if !s.outstanding.isEmpty { s.outstanding.removeFirst() }
            updatePins(&s)
            // The writer reports its failure again for each later fragment of a clip that failed:
            // it was told once.
            if error != nil && s.faultedClip == job.clipID { return }
            if let error, s.clip?.id == job.clipID {
                s.faultedClip = job.clipID
                logger.critical("storage failed while recording: \(error)")
                audit(&s, "fault", ["what": "storage", "clip": job.clipID, "error": error.description],
                      at: MonotonicTime(nanoseconds: SystemClock.monotonic()))
                s.clip?.endReason = error.isNoSpace ? "storage" : "error"
                let video = s.buffer.video
                let newest = video.isEmpty ? MonotonicTime.zero : video[video.endSeq - 1].time
                if error.isNoSpace {
                    noSpace(&s, clipID: job.clipID, stopAt: newest)
                } else {
                    s.storageFaultClip = job.clipID
                    perform(&s, s.machine.stop(at: newest), now: newest)
                    perform(&s, [.warning(.storageFault, true), .indicator(.haptic(.alert))], now: newest)
                }
            } else if let error {
                // The clip before a rollover (or one stopped), still being written when it
                // failed: the writer ends it through recovery.
                finishingFailed(&s, clipID: job.clipID, error: error)
            } else if let faulted = s.storageFaultClip, faulted != job.clipID {
                // Another clip's fragment is on storage after the fault (the writer works in
                // order): writing works again.
                s.storageFaultClip = nil
                logger.notice("storage writes again: clip \(job.clipID) is being written")
                perform(&s, [.warning(.storageFault, false)], now: MonotonicTime(nanoseconds: SystemClock.monotonic()))
            }
        }
    }

    /// Storage failed for a clip that is no longer the open one (still being written after a
    /// rollover or stop, or being closed). The open clip goes on (its own writes will tell
    /// whether the storage is gone), but the failure is not silent. A full card is low storage,
    /// as for the open clip: that one ends cleanly now rather than on its own failed write.
    private func finishingFailed(_ s: inout State, clipID: String, error: SystemError) {
        s.faultedClip = clipID
        let now = MonotonicTime(nanoseconds: SystemClock.monotonic())
        logger.critical("storage failed while finishing clip \(clipID): \(error)")
        audit(&s, "fault", ["what": "storage", "clip": clipID, "error": error.description], at: now)
        if error.isNoSpace {
            noSpace(&s, clipID: clipID, stopAt: now)
        } else {
            s.storageFaultClip = clipID
            perform(&s, [.warning(.storageFault, true), .indicator(.haptic(.alert))], now: now)
        }
    }

    /// A write found the card full before the reserve said so (another writer, a small card):
    /// low storage until the housekeeper sees the reserve free again, and more than was free at
    /// this moment (statvfs may show room a write cannot use). A clip in progress stops at `stopAt`.
    private func noSpace(_ s: inout State, clipID: String, stopAt: MonotonicTime) {
        // The clip in progress ends for lack of space, whichever clip's write found it.
        if s.machine.state == .recording, s.clip?.stopAt == nil { s.clip?.endReason = "storage" }
        let free = FileSystem.freeBytes(at: settings.clipsDirectory) ?? 0
        if !s.machine.storageLow {
            audit(&s, "storage_low", ["cause": "ENOSPC", "clip": clipID, "free_mib": "\(free / 1_048_576)"],
                  at: MonotonicTime(nanoseconds: SystemClock.monotonic()))
        }
        s.storageLowAtFree = free
        perform(&s, s.machine.storage(low: true, at: stopAt), now: stopAt)
    }

    func clipClosed(_ manifest: ClipManifest, path: String) {
        state.withLock { s in
            s.clipsClosed += 1
            s.lastClip = manifest.clipId
        }
        onClipClosed?()
    }

    /// Not counted as closed (`encode` takes a count of one as its output written whole); the
    /// offload queue is told, so a finalised clip is sent and one left over shows as blocked. A
    /// clip finalised from its journal is audited as start-up recovery audits one (what was
    /// kept, what was cut), after the fault line that said why.
    func clipEndedEarly(_ clipID: String, recovered: Recovery.Recovered?) {
        if let recovered { audit(recovered.auditEvent, recovered.auditDetails) }
        onClipClosed?()
    }

    func clipNotFinalised(_ clipID: String, error: SystemError) {
        state.withLock { s in
            guard s.faultedClip != clipID else { return }
            finishingFailed(&s, clipID: clipID, error: error)
        }
    }

    /// Told when a clip is final (the offload queue has something new).
    var onClipClosed: (@Sendable () -> Void)?

    // MARK: - Inside the lock

    /// Lists a capture gap in the open clip, and keeps it for a clip that opens later on footage
    /// already buffered.
    private func captureGap(_ s: inout State, _ gap: CaptureGap) {
        let oldest = s.buffer.video.isEmpty ? gap.from : s.buffer.video[s.buffer.video.firstSeq].time
        s.recentGaps.removeAll { $0.to < oldest }
        if s.recentGaps.count >= Self.recentGapLimit { s.recentGaps.removeFirst() }
        s.recentGaps.append(gap)
        listCaptureGap(&s, gap)
    }

    /// Gaps kept for clips still to open; a camera that flaps faster than this within one
    /// buffer's length has its oldest gaps listed only in the log and audit.
    static let recentGapLimit = 32

    /// The part of `gap` inside the open clip (its picture from the first frame; its sound from
    /// where sound begins), in the manifest and journal.
    private func listCaptureGap(_ s: inout State, _ gap: CaptureGap) {
        guard let clip = s.clip else { return }
        // Sound can begin at the press, before the clip's first picture (no pre-event: the clip
        // waits for a keyframe); the clip and its media times begin at that picture.
        let from = max(gap.from, clip.cursor.originTime, gap.video ? clip.cursor.originTime : clip.cursor.audioFrom)
        guard gap.to > from else { return }
        listGap(&s, video: gap.video, ClipManifest.Span(
            start: Nanos.toSeconds(clip.cursor.mediaTime(from)), end: Nanos.toSeconds(clip.cursor.mediaTime(gap.to)),
            reason: gap.reason))
    }

    /// Adds a span to the open clip's gap list; journaled first, so recovery keeps it.
    private func listGap(_ s: inout State, video: Bool, _ span: ClipManifest.Span) {
        guard var clip = s.clip else { return }
        if video { clip.videoGaps.append(span) } else { clip.audioGaps.append(span) }
        s.clip = clip
        writer.submit(.gap(clipID: clip.id, video: video, span))
    }

    private func gesture(_ s: inout State, _ g: ButtonGesture, now: MonotonicTime) {
        logger.info("gesture \(g.button.rawValue) \(g.gesture.rawValue)")
        audit(&s, "button", ["button": g.button.rawValue, "gesture": g.gesture.rawValue], at: g.at)
        let before = s.machine.state
        perform(&s, s.machine.handle(g), now: now)
        if s.machine.state != before {
            let latency = SystemClock.monotonic() - g.at.nanoseconds
            s.lastTransition = ("\(g.button.rawValue) \(g.gesture.rawValue)", s.machine.state, latency)
        }
    }

    private func perform(_ s: inout State, _ actions: [RecorderAction], now: MonotonicTime) {
        for a in actions {
            switch a {
            case .startClip(let at, let trigger):
                if s.clip?.stopAt != nil {
                    // The clip stopped a moment ago is still waiting for its last media (sound
                    // catching up, or a camera that may be lost): close it with what has arrived,
                    // rather than open the new clip over it.
                    logger.notice("a new clip starts: \(s.clip?.id ?? "") closes now, with the media that has arrived")
                    progress(&s, now: now, force: true)
                }
                s.detector.clipStarted(trigger: trigger)
                let video = s.buffer.video
                let newest = video.isEmpty ? nil : video.endSeq - 1
                if settings.preEvent > 0, let origin = s.buffer.oldestKeyframe {
                    openClip(&s, originSeq: origin, pressedAt: at, trigger: trigger, previous: nil, now: now)
                } else if let n = newest, video[n].isSync, video[n].time >= at - settings.videoFormat.frameRate.frameInterval {
                    // The frame just stored is a keyframe at the trigger: start there.
                    openClip(&s, originSeq: n, pressedAt: at, trigger: trigger, previous: nil, now: now)
                } else {
                    // No pre-event: the clip starts at the next frame, which is made a keyframe.
                    s.pendingStart = (at, trigger)
                    s.forceKeyframe = true
                }
            case .stopClip(let at):
                s.detector.clipStopped()
                if s.pendingStart != nil {
                    s.pendingStart = nil
                } else if var clip = s.clip, clip.stopAt == nil {
                    clip.stopAt = at
                    s.clip = clip
                    progress(&s, now: now, force: false)
                }
            case .marker(let kind, let at, let score):
                guard var clip = s.clip else { break }
                // An event may have begun a moment before the clip's first picture.
                let mt = max(0, Nanos.toSeconds(clip.cursor.mediaTime(at)))
                clip.markers += 1
                s.clip = clip
                let utc = UTCFormat.iso8601(s.clockPair.unixSeconds(at: at))
                writer.submit(.marker(clipID: clip.id, ClipManifest.Marker(mediaTime: mt, kind: kind, utc: utc, score: score)))
                audit(&s, "marker", ["clip": clip.id, "kind": kind, "media_time": String(format: "%.3f", mt)], at: at)
                logger.info("marker \(kind) at \(String(format: "%.2f", mt)) s in \(clip.id)")
            case .setMute(let on, let at):
                mute.withLock { $0 = (on, at) }
                logger.notice("audio \(on ? "muted" : "unmuted")")
                audit(&s, on ? "mute" : "unmute", s.clip.map { ["clip": $0.id] } ?? [:], at: at)
                if let clip = s.clip {
                    let mt = max(0, Nanos.toSeconds(clip.cursor.mediaTime(at)))
                    let span = on ? ClipManifest.Span(start: mt, end: nil) : ClipManifest.Span(start: mt, end: mt)
                    writer.submit(.mute(clipID: clip.id, span))
                }
            case .indicator(let action):
                switch action {
                case .led(let led, let pattern):
                    s.leds[led] = pattern
                    logger.info("led \(led.rawValue) \(pattern)")
                case .haptic(let p):
                    s.lastHaptic = p.description
                    s.hapticCount += 1
                    logger.info("haptic \(p)")
                case .tone(let p):
                    s.lastTone = p.description
                    logger.info("tone \(p)")
                }
                indicators.perform(action)
            case .warning(let reason, let active):
                guard let pattern = s.warning.set(reason, active) else { break }
                s.leds[.warning] = pattern
                logger.info("led warning \(pattern) (\(s.warning.reasons.sorted().map(\.rawValue).joined(separator: ",")))")
                indicators.perform(.led(.warning, pattern))
            case .note(let text):
                logger.info("\(text)")
            }
        }
    }

    /// `stop`: a stop already made (after a rollover point, it belongs to the new clip) and why.
    private func openClip(
        _ s: inout State, originSeq: Int, pressedAt: MonotonicTime, trigger: Trigger, previous: String?,
        now: MonotonicTime, stop: (at: MonotonicTime, reason: String)? = nil
    ) {
        let video = s.buffer.video
        let origin = video[originSeq]
        let sequence = s.nextClipSequence
        s.nextClipSequence += 1
        let unix = s.clockPair.unixSeconds(at: origin.time)
        let id = ClipID.make(deviceID: settings.deviceID, unixSeconds: unix, sequence: sequence)
        let audioFrom = (settings.preEventAudio || previous != nil) ? origin.time : pressedAt
        let audioFromSeq = settings.preEventAudio || previous != nil
            ? s.buffer.audio.firstSeq : s.buffer.firstAudio(atOrAfter: pressedAt)
        let cursor = ClipCursor(
            video: video, originSeq: originSeq, audioFromSeq: audioFromSeq, audioFrom: audioFrom,
            videoTicksPerSecond: settings.video.timescale, audioTicksPerSecond: 48_000,
            videoFrameTicks: Int64(settings.videoFormat.frameRate.ticksPerFrame),
            // Decoders drop the Opus pre-skip (from dOps) and play the first real sample at the
            // packet's time, so the first packet goes at its capture time. Measured with the sim's
            // flash and beep: shifting by the pre-skip made audio 6.4 ms early in ffmpeg.
            audioLeadTicks: 0)
        let triggerName: String
        switch trigger {
        case .button: triggerName = previous == nil ? "button" : "rollover"
        case .control: triggerName = previous == nil ? "control" : "rollover"
        case .detector(let kind, _): triggerName = "detector:\(kind)"
        }
        let suffix = settings.sealed ? ".mp4.age" : ".mp4"
        let file = settings.outputPath.map { String($0.split(separator: "/").last ?? Substring($0)) } ?? "\(id)\(suffix)"
        let mediaPath = settings.outputPath ?? "\(settings.clipsDirectory)/\(id)\(suffix)"
        let manifestPath = settings.outputPath.map { Self.sidecar(of: $0) } ?? "\(settings.clipsDirectory)/\(id).json"
        var manifest = ClipManifest(
            clipId: id, file: file, deviceId: settings.deviceID, board: settings.board,
            startUtc: UTCFormat.iso8601(unix), startUnix: unix, clockTrusted: s.clockPair.wall.trusted,
            trigger: triggerName, triggeredAt: max(0, Nanos.toSeconds(pressedAt - origin.time)),
            initSegment: ClipManifest.ByteRange(offset: 0, size: 0, sha256: ""))
        manifest.previousClip = previous
        let sps = try? H264.parseSPS(settings.video.sps)
        manifest.video = ClipManifest.VideoInfo(
            width: settings.video.width, height: settings.video.height,
            frameRate: settings.videoFormat.frameRate.description, timescale: settings.video.timescale,
            profile: Int(sps?.profileIDC ?? 0), level: Int(sps?.levelIDC ?? 0), frames: 0,
            encoder: settings.encoderDescription)
        if s.machine.muted { manifest.muteSpans = [ClipManifest.Span(start: 0, end: nil)] }
        manifest.audio = settings.audio.map { a in
            ClipManifest.AudioInfo(
                sampleRate: a.sampleRate, channels: a.channels, bitrate: settings.audioBitrate, packets: 0,
                preEvent: settings.preEventAudio, startsAt: nil)
        }
        writer.submit(
            .open(
                ClipOpening(
                    manifest: manifest, initSegment: initSegment, mediaPath: mediaPath, manifestPath: manifestPath,
                    journalPath: settings.journalDirectory.map { "\($0)/\(id).jsonl" },
                    sequenceFile: settings.sequenceFile, nextSequence: s.nextClipSequence)))
        s.clip = OpenClip(
            id: id, cursor: cursor, captureDroppedAtStart: s.captureDropped,
            pipelineDroppedAtStart: s.buffer.droppedVideo + s.queueDropped)
        if let stop {
            s.clip?.stopAt = stop.at
            s.clip?.endReason = stop.reason
        }
        updatePins(&s)
        // Gaps already in the footage this clip starts with (pre-event, or across a rollover).
        for gap in s.recentGaps { listCaptureGap(&s, gap) }
        audit(&s, "record_start", [
            "clip": id, "trigger": triggerName,
            "pre_event": String(format: "%.3f", max(0, Nanos.toSeconds(pressedAt - origin.time))),
        ] + (previous.map { ["previous_clip": $0] } ?? [:]), at: pressedAt)
        // Activity going on as the clip opens is marked in it (where it began, or at the clip's
        // first picture if it began earlier).
        for e in s.detector.openEvents {
            perform(&s, [.marker(kind: e.markerKind, at: max(e.start, origin.time), score: e.roundedScore)], now: now)
        }
        logger.notice(
            "recording \(id)",
            metadata: ["pre-event": "\(String(format: "%.1f", Nanos.toSeconds(pressedAt - origin.time)))s"])
        // Whole groups of pictures already in the buffer become fragments at once.
        // (Not past a stop already made: the clip ends there.)
        func isBoundary(_ seq: Int) -> Bool { stop.map { video[seq].time < $0.at } ?? true }
        var k = video.nextSync(atOrAfter: originSeq + 1)
        while let boundary = k, boundary < video.endSeq - 1, isBoundary(boundary) {
            s.clip?.pendingCut = boundary
            cutPending(&s, now: now)
            k = video.nextSync(atOrAfter: boundary + 1)
        }
        if let boundary = k, isBoundary(boundary) { s.clip?.pendingCut = boundary }
        progress(&s, now: now, force: false)
    }

    /// Cuts the fragment ending at the pending boundary (rolling over if it is the rollover point).
    private func cutPending(_ s: inout State, now: MonotonicTime) {
        guard var clip = s.clip, let b = clip.pendingCut else { return }
        clip.pendingCut = nil
        let boundaryTime = s.buffer.video[b].time
        s.clip = clip
        cut(&s, videoEnd: b, until: boundaryTime)
        if clip.rolloverAt == b {
            let old = clip
            let trigger = Trigger.control
            // The new clip begins at this very keyframe, so no frame falls between the two.
            let nextID = peekNextID(&s, origin: b)
            closeClip(&s, reason: "rollover", next: nextID)
            // Stopped after the rollover point: the stop belongs to the new clip.
            openClip(
                &s, originSeq: b, pressedAt: s.buffer.video[b].time, trigger: trigger, previous: old.id, now: now,
                stop: old.stopAt.map { ($0, old.endReason) })
        }
    }

    private func peekNextID(_ s: inout State, origin: Int) -> String {
        let unix = s.clockPair.unixSeconds(at: s.buffer.video[origin].time)
        return ClipID.make(deviceID: settings.deviceID, unixSeconds: unix, sequence: s.nextClipSequence)
    }

    /// Makes the cuts whose media is complete: a boundary once audio has caught up (or stalled),
    /// and the end of a stopped clip once video and audio have reached the stop time.
    private func progress(_ s: inout State, now: MonotonicTime, force: Bool) {
        guard var clip = s.clip else { return }
        if let b = clip.pendingCut, let stop = clip.stopAt, s.buffer.video[b].time >= stop {
            // Stopped before this boundary, which arrived first: the clip ends at the stop, so
            // there is no cut there, and no rollover past the stop (which would carry on in a
            // new clip the operator stopped).
            clip.pendingCut = nil
            clip.rolloverAt = nil
            s.clip = clip
        }
        let audioStalled = settings.audio == nil || force
            || (s.lastAudioArrival.map { now - $0 > settings.audioStallTimeout } ?? (now - clip.cursor.originTime > settings.audioStallTimeout))
        func audioReached(_ t: MonotonicTime) -> Bool { audioStalled || (s.newestAudioEnd.map { $0 >= t } ?? false) }
        if let b = clip.pendingCut {
            if audioReached(s.buffer.video[b].time) { cutPending(&s, now: now) } else { return }
        }
        guard let c = s.clip, let stopAt = c.stopAt else {
            cutIfVideoStalled(&s, now: now)
            return
        }
        let video = s.buffer.video
        // A camera lost at the stop (nothing for a while) will not bring the picture up to it:
        // the clip closes at the stop all the same, its missing picture listed as a gap.
        let cameraLost = now - max(s.lastVideoArrival ?? c.cursor.originTime, stopAt) > Self.videoLostAtStop
        let videoReached = force || cameraLost || (!video.isEmpty && video[video.endSeq - 1].time >= stopAt)
        guard videoReached && audioReached(stopAt) else { return }
        var end = c.cursor.nextVideoSeq
        while end < video.endSeq && video[end].time <= stopAt { end += 1 }
        cut(&s, videoEnd: end, until: stopAt + 1)
        closeClip(&s, reason: c.endReason, next: nil)
    }

    /// The camera has delivered nothing for a while (lost, or reopening): write what there is,
    /// audio included, rather than hold it in RAM until the picture returns.
    private func cutIfVideoStalled(_ s: inout State, now: MonotonicTime) {
        let sinceVideo = now - (s.lastVideoArrival ?? (s.clip?.cursor.originTime ?? now))
        guard let clip = s.clip, clip.pendingCut == nil, let audioEnd = s.newestAudioEnd,
            sinceVideo > Self.videoStallCut,
            audioEnd - clip.cursor.originTime - clip.cursor.cutMediaTime >= 1_000_000_000,
            // Pictures still inside the encoder (it gives them up after a pause: MediaPipeline's
            // drain) come first, lest the sound be cut past them; unless it is wedged.
            s.framesTaken <= s.framesEncoded || sinceVideo > Self.videoLostAtStop
        else { return }
        cut(&s, videoEnd: s.buffer.video.endSeq, until: audioEnd)
    }

    /// How long without video before audio is written on its own.
    static let videoStallCut = Nanos.milliseconds(1500)

    /// How long without video, past a stop, before the clip closes without the picture up to the
    /// stop. Longer than a hiccup of the encoder thread (whose late frames would then miss the
    /// clip), shorter than an operator waiting for the light to change.
    static let videoLostAtStop = Nanos.seconds(3)

    private func cut(_ s: inout State, videoEnd: Int, until: MonotonicTime) {
        guard var clip = s.clip,
            let plan = clip.cursor.cut(video: s.buffer.video, audio: s.buffer.audio, videoEnd: videoEnd, until: until)
        else { return }
        _ = s.builder.build(plan: plan, videoRing: s.buffer.video, audioRing: s.buffer.audio)
        var slices: [UnsafeRawBufferPointer] = []
        slices.reserveCapacity(plan.video.count + plan.audio.count)
        for q in plan.video { slices.append(s.buffer.video.bytes(q)) }
        for q in plan.audio { slices.append(s.buffer.audio.bytes(q)) }
        var audioStarts: Double?
        if clip.audioStartsAt == nil && !plan.audio.isEmpty {
            clip.audioStartsAt = Double(plan.audioDecodeTime) / 48_000
            audioStarts = clip.audioStartsAt
        }
        clip.videoFrames += plan.video.count
        clip.audioPackets += plan.audio.count
        s.clip = clip
        s.outstanding.append((plan.video.lowerBound, plan.audio.lowerBound))
        updatePins(&s)
        writer.submit(
            .fragment(
                FragmentJob(
                    clipID: clip.id, sequenceNumber: plan.sequenceNumber, header: s.builder.header, slices: slices,
                    mediaTime: Nanos.toSeconds(plan.startMediaTime),
                    duration: Nanos.toSeconds(plan.endMediaTime - plan.startMediaTime),
                    videoFrames: plan.video.count, audioPackets: plan.audio.count, videoEnd: plan.video.upperBound,
                    audioEnd: plan.audio.upperBound, dropped: droppedSoFar(s, clip), audioStartsAt: audioStarts)))
    }

    /// The span at a closing clip's end with no sound (`ClipCursor.audioMissingAtEnd`), nil when
    /// there is none or the clip has no audio at all (its manifest's packet count says so).
    static func audioMissingAtEnd(_ cursor: ClipCursor) -> ClipManifest.Span? {
        guard let gap = cursor.audioMissingAtEnd(tolerance: audioTailTolerance) else { return nil }
        return ClipManifest.Span(
            start: Nanos.toSeconds(gap.lowerBound), end: Nanos.toSeconds(gap.upperBound),
            reason: "audio late at the clip's end")
    }

    /// Sound may end this much before the picture without a gap being recorded (packets are 10 to
    /// 20 ms; the cut takes audio captured before the clip's end).
    static let audioTailTolerance = Nanos.milliseconds(250)

    /// The picture may end this much before the clip (its sound) without a gap being listed.
    static let videoTailTolerance = Nanos.milliseconds(250)

    /// The open clip's dropped frames so far.
    private func droppedSoFar(_ s: borrowing State, _ clip: borrowing OpenClip) -> ClipManifest.DroppedFrames {
        ClipManifest.DroppedFrames(
            capture: s.captureDropped - clip.captureDroppedAtStart,
            pipeline: s.buffer.droppedVideo + s.queueDropped - clip.pipelineDroppedAtStart)
    }

    private func closeClip(_ s: inout State, reason: String, next: String?) {
        if settings.audio != nil, let c = s.clip, let tail = Self.audioMissingAtEnd(c.cursor) {
            // Sound that had not arrived when the clip closed (the microphone stalled just
            // before a rollover or a stop) cannot join it later: say so rather than leave the
            // audio track silently shorter than the picture. Not counted as a capture gap: the
            // stall behind it, if the microphone lost sound, is counted when reported.
            listGap(&s, video: false, tail)
            logger.warning("clip \(c.id): no sound from \(String(format: "%.3f", tail.start)) s to its end (audio late)")
        }
        if let c = s.clip, let tail = c.cursor.videoMissingAtEnd(tolerance: Self.videoTailTolerance) {
            // The camera was lost and had not come back when the clip closed: its report comes
            // only with the first frame back, too late for this clip, so the clip says so itself.
            // (When it came back just after the stop, its report is listed already: only what
            // that leaves uncovered is added.)
            var from = Nanos.toSeconds(tail.lowerBound)
            let to = Nanos.toSeconds(tail.upperBound)
            let slack = Nanos.toSeconds(Self.videoTailTolerance)
            for g in c.videoGaps.sorted(by: { $0.start < $1.start }) where g.start <= from + slack {
                from = max(from, g.end ?? to)
            }
            if to - from > slack {
                let why = s.cameraLostSince != nil ? Self.videoLossName(stalled: s.videoStalled) : "picture late"
                listGap(&s, video: true, ClipManifest.Span(start: from, end: to, reason: "no picture at the clip's end (\(why))"))
                logger.warning("clip \(c.id): no picture from \(String(format: "%.3f", from)) s to its end (\(why))")
            }
        }
        guard let clip = s.clip else { return }
        let duration = Nanos.toSeconds(clip.cursor.cutMediaTime)
        let audio = settings.audio.map { a in
            ClipManifest.AudioInfo(
                sampleRate: a.sampleRate, channels: a.channels, bitrate: settings.audioBitrate,
                packets: clip.audioPackets, preEvent: settings.preEventAudio, startsAt: clip.audioStartsAt)
        }
        writer.submit(
            .close(
                ClipClosing(
                    clipID: clip.id, endReason: reason, nextClip: next,
                    duration: duration,
                    droppedFrames: droppedSoFar(s, clip),
                    videoFrames: clip.videoFrames, audio: audio,
                    // A gap running on past the cut (into the next clip, or reported as open-ended
                    // media time) is listed up to this clip's end.
                    audioGaps: ClipManifest.Span.within(clip.audioGaps, duration: duration),
                    videoGaps: ClipManifest.Span.within(clip.videoGaps, duration: duration))))
        logger.notice("stopped \(clip.id) (\(reason))")
        audit(&s, "record_stop", [
            "clip": clip.id, "reason": reason, "duration": String(format: "%.3f", duration),
        ] + (next.map { ["next_clip": $0] } ?? [:]), at: clip.cursor.originTime + clip.cursor.cutMediaTime)
        s.clip = nil
        updatePins(&s)
    }

    /// Queues an audit-log line (written and synced by the writer thread, in order with clips).
    private func audit(_ s: inout State, _ event: String, _ details: [String: String], at t: MonotonicTime) {
        guard settings.audit else { return }
        writer.submit(
            .audit(
                AuditEvent(
                    event: event, details: details, monotonic: t.nanoseconds, unixSeconds: s.clockPair.unixSeconds(at: t),
                    clockTrusted: s.clockPair.wall.trusted)))
    }

    /// An audit line from outside the recorder (dock, offload, faults, shutdown). With `sync`,
    /// returns once the line is on storage.
    @discardableResult
    func audit(_ event: String, _ details: [String: String], sync: Bool = false) -> Bool {
        let t = MonotonicTime(nanoseconds: SystemClock.monotonic())
        state.withLock { s in audit(&s, event, details, at: t) }
        guard sync && settings.audit else { return true }
        final class Outcome: @unchecked Sendable { var ok = false }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        guard writer.submit(.barrier { ok in
            outcome.ok = ok
            done.signal()
        }) else { return false }
        done.wait()
        return outcome.ok
    }

    /// A light or motor action from outside the recorder (the dock LED of the offload queue).
    func indicate(_ action: IndicatorAction) {
        // The warning light shows the recorder's reasons (`WarningLight`); nothing sets it directly.
        if case .led(.warning, _) = action {
            assertionFailure("the warning LED is set through .warning(reason, on)")
            return
        }
        let t = MonotonicTime(nanoseconds: SystemClock.monotonic())
        state.withLock { s in perform(&s, [.indicator(action)], now: t) }
    }

    /// Entries still owed to a clip (queued for the writer, or not yet cut) must stay in the ring.
    private func updatePins(_ s: inout State) {
        var video = s.outstanding.map(\.video).min()
        var audio = s.outstanding.map(\.audio).min()
        if let c = s.clip {
            video = min(video ?? c.cursor.nextVideoSeq, c.cursor.nextVideoSeq)
            audio = min(audio ?? c.cursor.nextAudioSeq, c.cursor.nextAudioSeq)
        }
        s.buffer.video.pinnedSeq = video
        s.buffer.audio.pinnedSeq = audio
    }

    private func updateBitrate(_ s: inout State, bytes: Int, now: MonotonicTime) {
        s.bytesWindow.bytes += bytes
        let elapsed = now - s.bytesWindow.start
        if elapsed >= 1_000_000_000 {
            s.bytesWindow.kbps = Double(s.bytesWindow.bytes) * 8 / Double(elapsed) * 1e6
            s.bytesWindow = (now, 0, s.bytesWindow.kbps)
        }
    }

    /// `out.mp4` → `out.json`.
    static func sidecar(of path: String) -> String {
        if path.hasSuffix(".mp4") { return String(path.dropLast(4)) + ".json" }
        if path.hasSuffix(".mp4.age") { return String(path.dropLast(8)) + ".json" }
        return path + ".json"
    }
}

extension Dictionary where Key == String, Value == String {
    /// Merge, the right side winning.
    static func + (a: [String: String], b: [String: String]) -> [String: String] { a.merging(b) { $1 } }
}
