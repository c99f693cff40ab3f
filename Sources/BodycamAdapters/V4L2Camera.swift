public import BodycamCore
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A V4L2 camera as a `VideoSource`, surviving the device going away.
///
/// Frames are the driver's mmap buffers, lent to the encoder and queued back on `release`.
/// Drops are counted from `v4l2_buffer.sequence`; buffers the driver flags with
/// `V4L2_BUF_FLAG_ERROR` are counted as corrupt and not encoded. When the device is lost (ENODEV,
/// EIO, no frame within the timeout) the stream is closed once every lent buffer is back, then
/// reopened with back-off; the outage is reported through `onGap` and recording carries on in the
/// same clip. Sequence numbers given to the pipeline stay increasing across reopens, so an
/// outage is a gap, not a flood of "dropped" frames.
public final class V4L2Camera: VideoSource, @unchecked Sendable {
    public let format: VideoFormat
    public let config: V4L2CameraConfig
    /// The buffers the driver granted at the first open.
    public let bufferCount: Int
    private let logger: Logger
    private let cond = Condition()
    /// Guarded by `cond`.
    private var stream: V4L2Stream?
    private var generation = 0
    private var outstanding = 0
    private var counters_ = CaptureCounters()
    private let stopped = Atomic<Bool>(false)
    // Capture-thread state.
    private var lastDeviceSequence: UInt32?
    private var sequenceBase: UInt64 = 0
    private var lastSequence: UInt64 = 0
    private var lastFrameTime: Int64 = 0
    private var lostAt: Int64?
    private var lostReason = ""
    private var backoffMs = 100
    private var nextAttempt: Int64 = 0
    private var repeatedFailure = ""
    /// Called on the capture thread when frames flow again after an outage: (first missing
    /// instant, first frame back, why).
    public var onGap: (@Sendable (MonotonicTime, MonotonicTime, String) -> Void)?

    public init(config: V4L2CameraConfig, logger: Logger) throws(CaptureError) {
        self.config = config
        self.logger = logger
        let path = try V4L2Stream.locate(config)
        do {
            let s = try V4L2Stream(config: config, path: path)
            stream = s
            format = s.format
            bufferCount = s.buffers.count
            logger.notice(
                "camera \(path): \(s.format), \(s.buffers.count) buffers, \(s.bytesPerLine) bytes per line")
        } catch {
            throw error.isDeviceGone ? .noDevice(error.description) : .unusable(error.description)
        }
    }

    public var counters: CaptureCounters { cond.withLock { counters_ } }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    private func now() -> Int64 { SystemClock.monotonic() }

    public func nextFrame() throws -> RawFrame? {
        let timeoutNs = Int64(config.timeoutSeconds * 1e9)
        if lastFrameTime == 0 { lastFrameTime = now() }
        while !stopped.load(ordering: .relaxed) {
            cond.withLock { counters_.heartbeats &+= 1 }
            guard let s = cond.withLock({ stream }) else {
                reopen()
                continue
            }
            let d: V4L2Stream.Dequeued?
            do {
                d = try s.dequeue(timeoutMs: 200)
            } catch {
                lose(error.description)
                continue
            }
            guard let d else {
                if now() - lastFrameTime > timeoutNs {
                    lose("no frame for \(config.timeoutSeconds) s")
                }
                continue
            }
            if d.corrupt {
                cond.withLock { counters_.corrupt += 1 }
                try? s.queue(d.index)
                continue
            }
            let time = d.timeNs ?? now()
            if let last = lastDeviceSequence, d.sequence > last &+ 1 {
                let missed = UInt64(d.sequence &- last &- 1)
                cond.withLock { counters_.dropped += missed }
            }
            lastDeviceSequence = d.sequence
            lastSequence = sequenceBase + UInt64(d.sequence)
            lastFrameTime = now()
            let base: UnsafeMutableRawPointer = cond.withLock {
                outstanding += 1
                counters_.delivered += 1
                return s.buffers[d.index].base
            }
            return RawFrame(
                format: format, base: base, stride: s.bytesPerLine, time: MonotonicTime(nanoseconds: time),
                sequence: lastSequence, bufferIndex: generation << 16 | d.index)
        }
        return nil
    }

    public func release(_ frame: RawFrame) {
        cond.withLock {
            outstanding -= 1
            if frame.bufferIndex >> 16 == generation, let s = stream {
                do {
                    try s.queue(frame.bufferIndex & 0xffff)
                } catch {
                    // The device is going; the capture thread will notice and reopen.
                }
            }
            cond.broadcast()
        }
    }

    /// Closes the stream once every lent buffer is back (unmapping one in use would crash the
    /// encoder), and schedules a reopen.
    private func lose(_ reason: String) {
        let t = now()
        logger.error("camera lost: \(reason); reopening")
        cond.lock()
        let deadline = t + 2_000_000_000
        while outstanding > 0 && now() < deadline { cond.wait(untilMonotonic: deadline) }
        if outstanding > 0 {
            // Never unmap under the encoder; keep the old stream alive (leaked) instead.
            logger.critical("camera buffers still held after 2 s; abandoning them")
            _ = Unmanaged.passRetained(stream!)
        }
        stream = nil
        generation += 1
        counters_.recoveries += 1
        cond.unlock()
        lostAt = lostAt ?? (lastFrameTime + format.frameRate.frameInterval)
        lostReason = reason
        sequenceBase = lastSequence + 1
        lastDeviceSequence = nil
        backoffMs = 100
        nextAttempt = t
    }

    /// One reopen attempt, after the back-off delay (100 ms doubling to 500 ms, so a device that
    /// comes back is streaming again within a second).
    private func reopen() {
        let t = now()
        if t < nextAttempt {
            let wait = min(nextAttempt - t, 50_000_000)
            SystemClock.sleep(untilMonotonic: t + wait)
            return
        }
        do {
            let path = try V4L2Stream.locate(config)
            let s = try V4L2Stream(config: config, path: path)
            guard s.format == format else {
                throw CaptureError.unusable("came back as \(s.format), recording \(format)")
            }
            cond.withLock {
                stream = s
                cond.broadcast()
            }
            let back = now()
            lastFrameTime = back
            repeatedFailure = ""
            if let since = lostAt {
                logger.notice("camera back on \(path) after \(Decimals.two(Double(back - since) / 1e9)) s")
                onGap?(MonotonicTime(nanoseconds: since), MonotonicTime(nanoseconds: back), "camera lost: \(lostReason)")
            }
            lostAt = nil
        } catch {
            let text = "\(error)"
            // A repeated failure is logged once, not every attempt.
            if text != repeatedFailure {
                logger.warning("camera not back yet: \(text)")
                repeatedFailure = text
            }
            nextAttempt = t + Int64(backoffMs) * 1_000_000
            backoffMs = min(backoffMs * 2, 500)
        }
    }
}
