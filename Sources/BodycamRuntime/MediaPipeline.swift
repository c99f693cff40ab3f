import BodycamAdapters
import BodycamCore
import Logging
import Synchronization

/// The three media threads: capture → encode (video), and audio capture → encode.
///
/// Capture and encode are separate threads joined by a short queue of frames lent by the source.
/// The capture thread always keeps up with the device: when the encoder is behind and the queue
/// is full, the frame goes straight back to the device and is counted as a pipeline drop. So the
/// device's own drops (gaps in its sequence numbers) and ours are told apart, and neither is ever
/// silent. Audio has its own thread; its clock is kept in step with CLOCK_MONOTONIC.
///
/// A file (`waitForEncoder`) has no device to keep up with: the encode thread reads its frames
/// itself, which saves a thread wake-up per frame.
final class MediaPipeline: @unchecked Sendable {
    let camera: any VideoSource
    let microphone: (any AudioSource)?
    private let videoEncoder: any VideoEncoder
    private let audioEncoder: (any AudioEncoder)?
    private let recorder: Recorder
    private let logger: Logger
    private let frames: BlockingQueue<RawFrame>
    private var threads: [DedicatedThread] = []
    /// Called on the encoder thread once the video source has ended (a file reached its end) or failed.
    var onVideoEnded: (@Sendable (_ error: (any Error)?) -> Void)?
    private let audioPeriod: Int
    /// Frames handed back unencoded because the encoder was behind (capture thread counts).
    private let queueDropped = Atomic<Int>(0)
    /// Whether the encoder waits for the source (a file: nothing is lost by waiting, and the
    /// encode thread reads it) or a capture thread drops when the encoder is behind (a live
    /// device: waiting would only move the drop into the driver).
    private let waitForEncoder: Bool
    /// Burns device id and UTC time into each frame before it is encoded (set before `start`).
    var watermark: Watermark?
    /// Maps capture times to UTC for the watermark; replaced when the wall clock is stepped.
    private let clockLock = Mutex<ClockPair?>(nil)
    var clock: ClockPair? {
        get { clockLock.withLock { $0 } }
        set { clockLock.withLock { $0 = newValue } }
    }
    /// Activity detectors (set before `start`); they look at the picture before the watermark is
    /// drawn and at the sound before muting (a muted microphone is not listened to).
    var videoDetector: VideoActivityDetector?
    var audioDetector: AudioEventDetector?
    /// Where detector events go (default: the recorder).
    var onDetector: ((DetectorUpdate) -> Void)?

    init(
        camera: any VideoSource, microphone: (any AudioSource)?, videoEncoder: any VideoEncoder,
        audioEncoder: (any AudioEncoder)?, recorder: Recorder, logger: Logger, queueDepth: Int = 3,
        audioPeriodFrames: Int = 480, waitForEncoder: Bool = false
    ) {
        self.waitForEncoder = waitForEncoder
        self.camera = camera
        self.microphone = microphone
        self.videoEncoder = videoEncoder
        self.audioEncoder = audioEncoder
        self.recorder = recorder
        self.logger = logger
        // With the encoder holding one frame and the queue full, the device still has a buffer to
        // fill: when the encoder is behind, frames are handed back here and counted as ours, and
        // the capture thread (which tells a stuck encoder from a lost camera) keeps seeing frames.
        // A device left without buffers would drop them itself, as if it had lost them.
        frames = BlockingQueue(capacity: min(queueDepth, max(1, camera.bufferCount - 2)))
        audioPeriod = audioPeriodFrames
    }

    func start() {
        if !waitForEncoder {
            threads.append(DedicatedThread(name: "bc-capture") { [self] in captureLoop() })
        }
        threads.append(DedicatedThread(name: "bc-encode") { [self] in encodeLoop() })
        if microphone != nil && audioEncoder != nil {
            threads.append(DedicatedThread(name: "bc-audio") { [self] in audioLoop() })
        }
    }

    /// Asks the sources to stop; the threads drain and end.
    func stop() {
        camera.stop()
        microphone?.stop()
    }

    /// Waits for every media thread to end.
    func join() {
        for t in threads { t.join() }
    }

    private func captureLoop() {
        var failure: (any Error)?
        do {
            while let frame = try camera.nextFrame() {
                recorder.frameCaptured(now: MonotonicTime(nanoseconds: SystemClock.monotonic()))
                if !frames.tryPush(frame) {
                    // Counted before the buffer goes back, so no later frame is reported
                    // without it.
                    queueDropped.add(1, ordering: .relaxed)
                    camera.release(frame)
                }
            }
        } catch {
            failure = error
            logger.error("camera failed: \(error)")
        }
        frames.close()
        if let failure { endError = failure }
    }

    private var endError: (any Error)?

    private func detected(_ update: DetectorUpdate) {
        if let onDetector {
            onDetector(update)
        } else {
            recorder.detector(update, now: MonotonicTime(nanoseconds: SystemClock.monotonic()))
        }
    }

    private func encodeLoop() {
        let rate = camera.format.frameRate
        let interval = rate.frameInterval
        let ticks = Int64(rate.ticksPerFrame)
        var start: MonotonicTime?
        var lastPTS: Int64 = -1
        var drops = CaptureDropCounter()
        var forceKeyframe = false
        var failure: (any Error)?
        var drainFailure: (any Error)?
        let output: (EncodedVideo) -> Void = { [recorder, self] au in
            let now = MonotonicTime(nanoseconds: SystemClock.monotonic())
            let ours = self.queueDropped.load(ordering: .relaxed)
            if recorder.appendVideo(au, drops: (drops.deviceDrops(ours: ours), ours), now: now) { forceKeyframe = true }
        }
        var lastTime: MonotonicTime?
        // An encoder that holds frames back (B-frames, lookahead: not the default zerolatency)
        // gives them up when the camera pauses this long, so a clip stopped during the pause
        // has the pictures captured before it. Well past a frame interval, so a slow camera is
        // not drained (and restarted on a keyframe) at every frame; and before the recorder
        // writes sound on its own past the last picture (`Recorder.videoStallCut`, 1.5 s), so
        // the pictures are in the ring by then. A camera slower than that has its frames
        // drained one by one, each a keyframe.
        let drainAfter = min(max(Nanos.milliseconds(500), 3 * interval), Nanos.milliseconds(1200))
        let next: () -> RawFrame?
        if waitForEncoder {
            next = { [self] in
                do {
                    return try camera.nextFrame()
                } catch {
                    endError = error
                    logger.error("camera failed: \(error)")
                    return nil
                }
            }
        } else {
            next = { [self, frames] in
                while true {
                    switch frames.pop(waitingAtMost: drainAfter) {
                    case .element(let frame): return frame
                    case .closed: return nil
                    case .timedOut:
                        let held = videoEncoder.delayedFrames
                        guard held > 0 else { continue }
                        do {
                            try videoEncoder.drain(output: output)
                            logger.info("no picture for \(drainAfter / 1_000_000) ms: the encoder gave up the \(held) frame(s) it held")
                        } catch {
                            // Nothing more can be encoded: end as a failed encoder does.
                            drainFailure = error
                            logger.error("video encoder drain failed: \(error)")
                            camera.stop()
                            while let frame = frames.pop() { camera.release(frame) }
                            return nil
                        }
                    }
                }
            }
        }
        var lastSequence: UInt64?
        while let frame = next() {
            recorder.pictureTaken(now: MonotonicTime(nanoseconds: SystemClock.monotonic()))
            let ours = queueDropped.load(ordering: .relaxed)
            let deviceBefore = drops.device
            drops.saw(sequence: frame.sequence, ours: ours)
            // After an outage (the camera reopened), start again from a keyframe so the clip's
            // next fragment does not depend on pictures from before the gap. (A few frames the
            // encoder could not take are not an outage: no extra keyframe for those.)
            if let lt = lastTime, frame.time - lt > Nanos.milliseconds(500) {
                forceKeyframe = true
                // An outage of our own: this thread was stuck (the encoder, the detector, the
                // watermark) while the capture thread handed the camera's frames back. The camera
                // reports its own outages; this one is listed here, where it is known: frames
                // missing from the sequence that the device does not account for were ours. Only
                // when they make an outage themselves: a few handed back just before the camera
                // went are not listed again over the camera's own gap. (Ours come first: the
                // stall began with them.)
                let missing = lastSequence.map { frame.sequence > $0 ? Int(clamping: frame.sequence - $0 - 1) : 0 } ?? 0
                let ourShare = missing - (drops.deviceDrops(ours: ours) - deviceBefore)
                if Int64(ourShare) * interval > Nanos.milliseconds(500) {
                    let end = min(frame.time, lt + interval * Int64(ourShare + 1))
                    recorder.videoGap(from: lt + interval, to: end, reason: "frames dropped: video processing stalled")
                }
            }
            lastSequence = frame.sequence
            lastTime = frame.time
            // Presentation times sit on the frame-rate grid: capture jitter does not turn into
            // uneven frame durations, while a skipped frame still leaves its slot empty.
            let t0 = start ?? frame.time
            start = t0
            var pts = ((frame.time - t0) + interval / 2) / interval * ticks
            if pts <= lastPTS { pts = lastPTS + ticks }
            lastPTS = pts
            if let detector = videoDetector, let update = detector.process(frame) { detected(update) }
            if let watermark, let clock = self.clock {
                watermark.draw(into: frame, unixSeconds: clock.unixSeconds(at: frame.time), clockTrusted: clock.wall.trusted)
            }
            do {
                let force = forceKeyframe
                forceKeyframe = false
                try videoEncoder.encode(frame, pts: pts, forceKeyframe: force, output: output)
            } catch {
                failure = error
                logger.error("video encoder failed: \(error)")
                camera.release(frame)
                camera.stop()
                break
            }
            camera.release(frame)
        }
        // Drain any frames still in the queue (after an encoder failure) so the source gets its
        // buffers back, then flush the encoder's delayed frames.
        if !waitForEncoder {
            while let frame = frames.pop() { camera.release(frame) }
        }
        if let update = videoDetector?.finish(at: lastTime ?? .zero) { detected(update) }
        if failure == nil && drainFailure == nil {
            do { try videoEncoder.flush(output: output) } catch { logger.error("video encoder flush failed: \(error)") }
        }
        onVideoEnded?(failure ?? drainFailure ?? endError)
    }

    private func audioLoop() {
        guard let microphone, let encoder = audioEncoder else { return }
        let channels = microphone.channels
        let rate = microphone.sampleRate
        let frameSize = encoder.frameSize
        let packetTicks = Int64(frameSize * 48_000 / rate)
        let period = audioPeriod
        let block = UnsafeMutableBufferPointer<Int16>.allocate(capacity: (period + 1) * channels)
        // Samples waiting to make up a whole Opus frame: at most one frame plus one block.
        let pending = UnsafeMutableBufferPointer<Int16>.allocate(capacity: (frameSize + period + 1) * channels)
        defer {
            block.deallocate()
            pending.deallocate()
        }
        var pendingFrames = 0
        var sync = AudioClockSync(sampleRate: rate)
        var packetSample: Int64 = 0  // output sample index of pending[0]
        var wasMuted = false

        func encodeWhole() throws {
            while pendingFrames >= frameSize {
                let packet = try encoder.encode(UnsafeBufferPointer(rebasing: pending[0..<(frameSize * channels)]))
                let now = MonotonicTime(nanoseconds: SystemClock.monotonic())
                recorder.appendAudio(packet, time: sync.time(ofSample: packetSample), duration: packetTicks, now: now)
                packetSample += Int64(frameSize)
                pendingFrames -= frameSize
                if pendingFrames > 0 {
                    let rest = pendingFrames * channels
                    UnsafeMutableRawPointer(pending.baseAddress!).copyMemory(
                        from: pending.baseAddress! + frameSize * channels, byteCount: rest * 2)
                }
            }
        }

        func append(_ src: UnsafeMutablePointer<Int16>?, frames: Int) throws {
            var done = 0
            while done < frames {
                let n = min(frames - done, frameSize + period - pendingFrames)
                let dst = pending.baseAddress! + pendingFrames * channels
                if let src {
                    dst.update(from: src + done * channels, count: n * channels)
                } else {
                    dst.update(repeating: 0, count: n * channels)
                }
                pendingFrames += n
                done += n
                try encodeWhole()
            }
        }

        do {
            while let read = try microphone.read(into: block, frames: period) {
                let adjustment = sync.adjust(time: read.time, frames: read.frames)
                if recorder.isMuted(at: read.time) {
                    block.baseAddress!.update(repeating: 0, count: read.frames * channels)
                    if !wasMuted, let detector = audioDetector {
                        // Not listening any more: what was heard ends here.
                        if let update = detector.finish(at: read.time) { detected(update) }
                        detector.reset()
                    }
                    wasMuted = true
                } else if let detector = audioDetector {
                    wasMuted = false
                    detector.process(UnsafeBufferPointer(block), frames: read.frames, time: read.time) { detected($0) }
                }
                var frames = read.frames
                switch adjustment {
                case .none:
                    break
                case .discard:
                    continue
                case .dropOne:
                    frames -= 1
                case .repeatOne:
                    let last = (read.frames - 1) * channels
                    for c in 0..<channels { block[read.frames * channels + c] = block[last + c] }
                    frames += 1
                case .silenceBefore(let missing):
                    recorder.audioGap(at: sync.time(ofSample: packetSample + Int64(pendingFrames)),
                                      seconds: Double(missing) / Double(rate))
                    try append(nil, frames: missing)
                }
                try append(block.baseAddress!, frames: frames)
            }
        } catch {
            logger.error("audio failed: \(error)")
        }
        if let update = audioDetector?.finish(at: MonotonicTime(nanoseconds: SystemClock.monotonic())) { detected(update) }
    }
}
