public import BodycamCore
import Synchronization

/// The `sim` board's camera: renders a moving, noisy picture with a frame counter, in real time.
///
/// It behaves like a capture device with a small buffer pool: frames are stamped with the
/// monotonic time of their slot, and when every buffer is still held by the pipeline the slot is
/// skipped and counted as dropped (exactly what a V4L2 driver does when it runs out of buffers).
public final class SyntheticCamera: VideoSource, @unchecked Sendable {
    public let format: VideoFormat
    private let buffers: [UnsafeMutableRawPointer]
    private let state: Mutex<State>
    private var scene: SyntheticScene
    private var slot: Int64 = 0
    private var start: Int64 = 0
    /// How much faster than real time the picture runs (1 = real time). Soak tests speed it up.
    public let speed: Double
    /// Flash a white square at every whole second of the monotonic clock (see `SyncMarks`).
    public let syncMarks: Bool

    private struct State {
        var inUse: [Bool]
        var stopped = false
        var counters = CaptureCounters()
    }

    /// Seconds after the first frame when the camera stops delivering (a wedged driver), if ever.
    public let stallAfter: Double?
    /// A fault to test against: once, `loss.after` seconds after the first frame, the camera
    /// delivers nothing for `loss.seconds` (a device lost and reopened), then carries on and
    /// reports the outage through `onGap`, as the V4L2 camera does.
    public let loss: (after: Double, seconds: Double)?
    /// Slots the loss swallowed: taken off the sequence numbers, so the outage is a gap and not
    /// a run of dropped frames (as the V4L2 camera numbers frames across a reopen).
    private var lostSlots: Int64 = 0
    /// Called on the capture thread when frames flow again after the loss: (first missing
    /// instant, first frame back, why).
    public var onGap: (@Sendable (MonotonicTime, MonotonicTime, String) -> Void)?

    public init(
        format: VideoFormat, bufferCount: Int = 4, seed: UInt64 = 1, speed: Double = 1, syncMarks: Bool = false,
        stallAfter: Double? = nil, loss: (after: Double, seconds: Double)? = nil
    ) {
        self.format = format
        self.stallAfter = stallAfter
        self.loss = loss
        self.speed = speed
        self.syncMarks = syncMarks
        buffers = (0..<bufferCount).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: format.frameSize, alignment: 64)
        }
        state = Mutex(State(inUse: Array(repeating: false, count: bufferCount)))
        scene = SyntheticScene(format: format, seed: seed)
    }

    deinit {
        for b in buffers { b.deallocate() }
    }

    public var bufferCount: Int { buffers.count }

    public var counters: CaptureCounters { state.withLock { $0.counters } }

    public func nextFrame() throws -> RawFrame? {
        let interval = format.frameRate.frameInterval
        if start == 0 {
            // Frames fall on multiples of the frame interval, like a free-running sensor, so the
            // frame at each whole second is the second itself (to within nanoseconds).
            start = (SystemClock.monotonic() / interval + 1) * interval
        }
        while true {
            // Slot k is due at start + k·interval (absolute, so timing does not drift).
            let due = start + Int64(Double(slot * interval) / speed)
            if let stallAfter, due - start >= Nanos.seconds(stallAfter) {
                // Wedged: nothing more until stopped, like a DQBUF that never returns.
                while !state.withLock({ $0.stopped }) { SystemClock.sleep(untilMonotonic: SystemClock.monotonic() + 50_000_000) }
                return nil
            }
            if let loss, lostSlots == 0, due - start >= Nanos.seconds(loss.after) {
                // Lost: the slots of the outage never come. Wait it out (a stop still ends the
                // wait), then report it with the first frame back.
                let from = start + slot * interval
                let skip = max(1, Int64((Double(Nanos.seconds(loss.seconds)) / Double(interval)).rounded()))
                lostSlots = skip
                slot += skip
                let back = start + Int64(Double(slot * interval) / speed)
                while SystemClock.monotonic() < back {
                    // Still looping, like a V4L2 camera trying to reopen: the watchdog tells that
                    // from a wedged capture thread by these heartbeats.
                    let stopped = state.withLock { s in
                        s.counters.heartbeats &+= 1
                        return s.stopped
                    }
                    if stopped { return nil }
                    SystemClock.sleep(untilMonotonic: min(back, SystemClock.monotonic() + 50_000_000))
                }
                state.withLock { $0.counters.recoveries += 1 }
                onGap?(
                    MonotonicTime(nanoseconds: from), MonotonicTime(nanoseconds: start + slot * interval),
                    "camera lost: synthetic fault")
                continue
            }
            SystemClock.sleep(untilMonotonic: due)
            let k = slot
            slot += 1
            let index: Int? = state.withLock { s in
                if s.stopped { return -1 }
                guard let i = s.inUse.firstIndex(of: false) else {
                    s.counters.dropped += 1
                    return nil
                }
                s.inUse[i] = true
                s.counters.delivered += 1
                return i
            }
            guard let index else { continue }
            if index < 0 { return nil }
            let frame = UnsafeMutableRawBufferPointer(start: buffers[index], count: format.frameSize)
            scene.render(frameIndex: Int(k), into: frame)
            // The frame's time is its slot on the sensor clock (monotonic, sped up for soaks).
            let time = MonotonicTime(nanoseconds: start + k * interval)
            if syncMarks && SyncMarks.isFlashFrame(time: time, frameInterval: interval) {
                SyncMarks.paintFlash(into: frame, format: format)
            }
            return RawFrame(
                format: format, base: buffers[index], time: time, sequence: UInt64(k - lostSlots), bufferIndex: index)
        }
    }

    public func release(_ frame: RawFrame) {
        state.withLock { $0.inUse[frame.bufferIndex] = false }
    }

    public func stop() {
        state.withLock { $0.stopped = true }
    }
}

/// The `sim` board's microphone: a tone plus noise, delivered in real time by a clock that may
/// run fast or slow by `clockErrorPPM` (real crystals are off by tens of ppm; the pipeline must
/// keep audio in step with video regardless).
public final class SyntheticMicrophone: AudioSource, @unchecked Sendable {
    public let sampleRate: Int
    public let channels: Int
    public let clockErrorPPM: Double
    public let speed: Double
    /// Beep at every whole second of the monotonic clock (see `SyncMarks`).
    public let syncMarks: Bool
    private var tone: SyntheticTone
    private var produced: Int64 = 0
    private var start: Int64 = 0
    private let state = Mutex(State())
    /// A fault to test against: once, this many seconds after the first sample, the next
    /// `loss.seconds` of sound are never delivered (an overrun, as ALSA reports with `-EPIPE`).
    public let loss: (after: Double, seconds: Double)?
    private var lost = false

    private struct State {
        var stopped = false
        var counters = CaptureCounters()
    }

    public init(
        sampleRate: Int, channels: Int, clockErrorPPM: Double = 0, seed: UInt64 = 1, speed: Double = 1,
        syncMarks: Bool = false, loss: (after: Double, seconds: Double)? = nil
    ) {
        self.syncMarks = syncMarks
        self.loss = loss
        self.sampleRate = sampleRate
        self.channels = channels
        self.clockErrorPPM = clockErrorPPM
        self.speed = speed
        tone = SyntheticTone(sampleRate: sampleRate, channels: channels, seed: seed)
    }

    public var counters: CaptureCounters { state.withLock { $0.counters } }

    /// Nanoseconds of real time at which sample `n` is captured by the drifting clock.
    private func captureTime(ofSample n: Int64) -> Int64 {
        let actualRate = Double(sampleRate) * (1 + clockErrorPPM / 1e6)
        return start + Int64(Double(n) / actualRate * 1e9)
    }

    public func read(into buffer: UnsafeMutableBufferPointer<Int16>, frames: Int) throws -> AudioRead? {
        if start == 0 { start = SystemClock.monotonic() }
        if let loss, !lost, captureTime(ofSample: produced) - start >= Nanos.seconds(loss.after) {
            // Captured by nobody: the samples of the lost stretch are skipped, in time as well.
            lost = true
            produced += Int64((loss.seconds * Double(sampleRate)).rounded())
        }
        // The block is complete once its last sample has been captured.
        let ready = captureTime(ofSample: produced + Int64(frames))
        SystemClock.sleep(untilMonotonic: start + Int64(Double(ready - start) / speed))
        let stopped = state.withLock { s in
            if !s.stopped { s.counters.delivered += 1 }
            return s.stopped
        }
        if stopped { return nil }
        tone.fill(buffer, frames: frames)
        let time = MonotonicTime(nanoseconds: captureTime(ofSample: produced))
        if syncMarks {
            let sampleNs = 1e9 / (Double(sampleRate) * (1 + clockErrorPPM / 1e6))
            SyncMarks.addBeep(buffer, frames: frames, channels: channels, startNs: time.nanoseconds, sampleNs: sampleNs)
        }
        produced += Int64(frames)
        return AudioRead(frames: frames, time: time)
    }

    public func stop() {
        state.withLock { $0.stopped = true }
    }
}
