public import BodycamCore
public import Logging
internal import CALSA
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A failed ALSA call, with ALSA's own message.
public struct ALSAError: Error, CustomStringConvertible, Equatable, Sendable {
    public var op: String
    public var code: Int32
    public var device: String
    public var description: String { "\(device): \(op): \(String(cString: snd_strerror(code)))" }
}

/// The board file's `[microphone]` table for an ALSA device.
public struct ALSAMicrophoneConfig: Sendable, Equatable {
    /// An ALSA PCM name: `hw:CARD=…,DEV=0`, `plughw:1,0`, `default`.
    public var device: String
    public var sampleRate: Int
    public var channels: Int
    /// Frames per read (10 ms at 48 kHz is 480).
    public var periodFrames: Int
    /// Frames the device buffers; a few periods, so a late read does not overrun.
    public var bufferFrames: Int

    public init(device: String, sampleRate: Int, channels: Int, periodFrames: Int, bufferFrames: Int) {
        self.device = device
        self.sampleRate = sampleRate
        self.channels = channels
        self.periodFrames = periodFrames
        self.bufferFrames = bufferFrames
    }
}

/// An ALSA capture device as an `AudioSource`: blocking reads on the audio thread, hardware
/// timestamps on CLOCK_MONOTONIC, overruns and suspends recovered with `snd_pcm_recover`
/// (counted; the time lost shows up as a gap the pipeline fills with silence and records),
/// and a device that disappears reopened with back-off.
public final class ALSAMicrophone: AudioSource, @unchecked Sendable {
    public let config: ALSAMicrophoneConfig
    public var sampleRate: Int { config.sampleRate }
    public var channels: Int { config.channels }
    private let logger: Logger
    private var pcm: OpaquePointer?
    private let stopped = Atomic<Bool>(false)
    private let state = Mutex(CaptureCounters())
    private var repeatedFailure = ""
    private var monotonicStamps = true

    public init(config: ALSAMicrophoneConfig, logger: Logger) throws(ALSAError) {
        self.config = config
        self.logger = logger
        pcm = try Self.open(config)
        logger.notice("microphone \(config.device): \(config.sampleRate) Hz x\(config.channels), period \(config.periodFrames)")
    }

    deinit {
        if let pcm { snd_pcm_close(pcm) }
    }

    public var counters: CaptureCounters { state.withLock { $0 } }

    public func stop() { stopped.store(true, ordering: .relaxed) }

    private static func check(_ r: Int32, _ op: String, _ device: String) throws(ALSAError) {
        if r < 0 { throw ALSAError(op: op, code: r, device: device) }
    }

    /// Opens and configures the device: interleaved S16, the board's rate, channels, period and
    /// buffer; timestamps from CLOCK_MONOTONIC so audio lines up with video buffers.
    static func open(_ c: ALSAMicrophoneConfig) throws(ALSAError) -> OpaquePointer {
        var handle: OpaquePointer?
        try check(snd_pcm_open(&handle, c.device, SND_PCM_STREAM_CAPTURE, 0), "snd_pcm_open", c.device)
        guard let pcm = handle else { throw ALSAError(op: "snd_pcm_open", code: -ENODEV, device: c.device) }
        do {
            var hw: OpaquePointer?
            try check(snd_pcm_hw_params_malloc(&hw), "snd_pcm_hw_params_malloc", c.device)
            defer { snd_pcm_hw_params_free(hw) }
            try check(snd_pcm_hw_params_any(pcm, hw), "snd_pcm_hw_params_any", c.device)
            try check(snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED), "set access", c.device)
            try check(snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE), "set format S16_LE", c.device)
            try check(snd_pcm_hw_params_set_channels(pcm, hw, UInt32(c.channels)), "set channels \(c.channels)", c.device)
            try check(snd_pcm_hw_params_set_rate(pcm, hw, UInt32(c.sampleRate), 0), "set rate \(c.sampleRate)", c.device)
            var period = snd_pcm_uframes_t(c.periodFrames)
            var dir: Int32 = 0
            try check(snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, &dir), "set period size", c.device)
            var buffer = snd_pcm_uframes_t(c.bufferFrames)
            try check(snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer), "set buffer size", c.device)
            try check(snd_pcm_hw_params(pcm, hw), "snd_pcm_hw_params", c.device)

            var sw: OpaquePointer?
            try check(snd_pcm_sw_params_malloc(&sw), "snd_pcm_sw_params_malloc", c.device)
            defer { snd_pcm_sw_params_free(sw) }
            try check(snd_pcm_sw_params_current(pcm, sw), "snd_pcm_sw_params_current", c.device)
            try check(snd_pcm_sw_params_set_tstamp_mode(pcm, sw, SND_PCM_TSTAMP_ENABLE), "set tstamp mode", c.device)
            try check(
                snd_pcm_sw_params_set_tstamp_type(pcm, sw, SND_PCM_TSTAMP_TYPE_MONOTONIC), "set tstamp type", c.device)
            try check(snd_pcm_sw_params_set_start_threshold(pcm, sw, 1), "set start threshold", c.device)
            try check(snd_pcm_sw_params(pcm, sw), "snd_pcm_sw_params", c.device)
            try check(snd_pcm_prepare(pcm), "snd_pcm_prepare", c.device)
            try check(snd_pcm_start(pcm), "snd_pcm_start", c.device)
        } catch {
            snd_pcm_close(pcm)
            throw error
        }
        return pcm
    }

    public func read(into buffer: UnsafeMutableBufferPointer<Int16>, frames: Int) throws -> AudioRead? {
        precondition(buffer.count >= frames * channels)
        var backoffMs: Int64 = 100
        while !stopped.load(ordering: .relaxed) {
            guard let pcm else {
                // Lost: try again after a pause, checking for stop meanwhile.
                SystemClock.sleep(untilMonotonic: SystemClock.monotonic() + backoffMs * 1_000_000)
                backoffMs = min(backoffMs * 2, 1000)
                do {
                    self.pcm = try Self.open(config)
                    logger.notice("microphone \(config.device) back")
                    repeatedFailure = ""
                } catch {
                    if error.description != repeatedFailure {
                        logger.warning("microphone not back yet: \(error)")
                        repeatedFailure = error.description
                    }
                }
                continue
            }
            // Wait with a timeout so a stop is noticed even if the device stops delivering.
            let ready = snd_pcm_wait(pcm, 250)
            if ready == 0 { continue }
            if ready < 0 {
                handle(Int32(ready), pcm: pcm)
                continue
            }
            let n = snd_pcm_readi(pcm, buffer.baseAddress, snd_pcm_uframes_t(frames))
            if n < 0 {
                handle(Int32(n), pcm: pcm)
                continue
            }
            if n == 0 { continue }
            let time = captureTime(pcm: pcm, framesRead: Int(n))
            state.withLock { $0.delivered += 1 }
            return AudioRead(frames: Int(n), time: time)
        }
        return nil
    }

    /// Monotonic time of the first frame just read. `snd_pcm_htimestamp` gives the time at which
    /// `avail` frames were waiting; the block read ends `avail` frames before that instant.
    private func captureTime(pcm: OpaquePointer, framesRead: Int) -> MonotonicTime {
        var avail: snd_pcm_uframes_t = 0
        var ts = snd_htimestamp_t()
        let rate = Int64(config.sampleRate)
        if monotonicStamps && snd_pcm_htimestamp(pcm, &avail, &ts) == 0 && (ts.tv_sec != 0 || ts.tv_nsec != 0) {
            let stamp = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
            let now = SystemClock.monotonic()
            // A stamp from another clock (old drivers) would be far off: fall back to now.
            if abs(now - stamp) < 5_000_000_000 {
                return MonotonicTime(nanoseconds: stamp - (Int64(avail) + Int64(framesRead)) * 1_000_000_000 / rate)
            }
            monotonicStamps = false
            logger.warning("microphone timestamps are not CLOCK_MONOTONIC; using the time of the read")
        }
        let queued = max(0, Int64(snd_pcm_avail(pcm)))
        return MonotonicTime(nanoseconds: SystemClock.monotonic() - (queued + Int64(framesRead)) * 1_000_000_000 / rate)
    }

    /// Overrun or suspend: `snd_pcm_recover` (counted). Anything else: close and reopen later.
    private func handle(_ code: Int32, pcm: OpaquePointer) {
        if code == -EPIPE || code == -ESTRPIPE || code == -EINTR {
            let r = snd_pcm_recover(pcm, code, 1)
            if r == 0 {
                if code != -EINTR {
                    state.withLock { $0.recoveries += 1 }
                    logger.warning("microphone \(code == -EPIPE ? "overrun" : "suspend") recovered")
                }
                if snd_pcm_state(pcm) != SND_PCM_STATE_RUNNING { _ = snd_pcm_start(pcm) }
                return
            }
        }
        logger.error("microphone lost: \(String(cString: snd_strerror(code))); reopening")
        state.withLock { $0.recoveries += 1 }
        snd_pcm_close(pcm)
        self.pcm = nil
    }
}
