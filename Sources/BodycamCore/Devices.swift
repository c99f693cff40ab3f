/// A raw picture lent by a video source: plane pointers into the source's own buffer.
///
/// Valid until handed back with `VideoSource.release(_:)`; the pipeline never copies it except
/// where the encoder needs another layout (YUYV → NV12).
public struct RawFrame: @unchecked Sendable {
    public var format: VideoFormat
    /// Up to three planes (YUYV: one; NV12: two; I420: three). Unused ones are nil.
    public var plane0: UnsafeMutableRawPointer
    public var stride0: Int
    public var plane1: UnsafeMutableRawPointer?
    public var stride1: Int
    public var plane2: UnsafeMutableRawPointer?
    public var stride2: Int
    /// CLOCK_MONOTONIC time the frame was captured (V4L2: the buffer timestamp).
    public var time: MonotonicTime
    /// The device's frame counter; a jump means frames were lost before they reached us.
    public var sequence: UInt64
    /// Which of the source's buffers this is, for `release`.
    public var bufferIndex: Int

    public init(
        format: VideoFormat, base: UnsafeMutableRawPointer, time: MonotonicTime, sequence: UInt64, bufferIndex: Int
    ) {
        self.format = format
        // Computed inline rather than through `PixelFormat.planes`, which builds an array: this
        // runs for every frame.
        let w = format.width
        let h = format.height
        let cw = (w + 1) / 2
        let ch = (h + 1) / 2
        plane0 = base
        plane1 = nil
        plane2 = nil
        stride1 = 0
        stride2 = 0
        switch format.pixelFormat {
        case .yuyv:
            stride0 = w * 2
        case .nv12:
            stride0 = w
            plane1 = base + w * h
            stride1 = cw * 2
        case .i420:
            stride0 = w
            plane1 = base + w * h
            stride1 = cw
            plane2 = base + w * h + cw * ch
            stride2 = cw
        }
        self.time = time
        self.sequence = sequence
        self.bufferIndex = bufferIndex
    }
}

extension RawFrame {
    /// A frame whose first plane's rows are `stride` bytes apart (V4L2's `bytesperline`), with
    /// the other planes following at the offsets V4L2 defines for single-buffer NV12 and YUV420.
    public init(
        format: VideoFormat, base: UnsafeMutableRawPointer, stride: Int, time: MonotonicTime, sequence: UInt64,
        bufferIndex: Int
    ) {
        self.init(format: format, base: base, time: time, sequence: sequence, bufferIndex: bufferIndex)
        let h = format.height
        switch format.pixelFormat {
        case .yuyv:
            stride0 = stride
        case .nv12:
            stride0 = stride
            plane1 = base + stride * h
            stride1 = stride
        case .i420:
            stride0 = stride
            plane1 = base + stride * h
            stride1 = stride / 2
            plane2 = base + stride * h + (stride / 2) * ((h + 1) / 2)
            stride2 = stride / 2
        }
    }
}

/// Counters a capture device keeps; the manifest and status report them.
public struct CaptureCounters: Sendable, Equatable, Codable {
    /// Frames (or audio periods) delivered to the pipeline.
    public var delivered: UInt64 = 0
    /// Frames the device skipped (sequence gaps) or the source could not deliver in time.
    public var dropped: UInt64 = 0
    /// Buffers the device flagged as corrupt.
    public var corrupt: UInt64 = 0
    /// Times the device was lost and reopened (or, for ALSA, xruns recovered).
    public var recoveries: UInt64 = 0
    /// Passes of a capture loop that waits with a timeout (frames, timeouts, reopen attempts):
    /// the watchdog's evidence that capture is alive through an outage rather than wedged.
    public var heartbeats: UInt64 = 0

    public init() {}
}

/// Errors a capture device reports in terms the operator and the audit log understand.
public enum CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The device node is missing or went away.
    case noDevice(String)
    /// The device is there but delivers nothing (no signal, timeout).
    case noSignal(String)
    /// Its answer cannot be used (format refused, corrupt data).
    case unusable(String)

    public var description: String {
        switch self {
        case .noDevice(let s): return "no device: \(s)"
        case .noSignal(let s): return "no signal: \(s)"
        case .unusable(let s): return "unusable: \(s)"
        }
    }
}

/// Where raw frames come from: a V4L2 camera, the synthetic camera, a raw file.
///
/// Called from the capture thread only (except `release`, which the encoder thread calls and
/// must be thread-safe).
public protocol VideoSource: AnyObject, Sendable {
    var format: VideoFormat { get }
    /// Blocks until the next frame. nil at the end of a file, or once `stop()` was called.
    func nextFrame() throws -> RawFrame?
    /// Returns a frame's buffer to the source.
    func release(_ frame: RawFrame)
    /// Makes a blocked `nextFrame` return nil soon. Thread-safe.
    func stop()
    var counters: CaptureCounters { get }
    /// How many frames the source can lend at once (a device's buffers). The pipeline queues
    /// fewer, so the device always has one to fill.
    var bufferCount: Int { get }
}

/// A block of PCM read from a microphone.
public struct AudioRead: Sendable, Equatable {
    /// Frames (samples per channel) read.
    public var frames: Int
    /// CLOCK_MONOTONIC time of the first frame.
    public var time: MonotonicTime

    public init(frames: Int, time: MonotonicTime) {
        self.frames = frames
        self.time = time
    }
}

/// Where PCM comes from: ALSA or the synthetic microphone. Used from the audio thread only.
public protocol AudioSource: AnyObject, Sendable {
    var sampleRate: Int { get }
    var channels: Int { get }
    /// Blocks until up to `frames` interleaved frames are in `buffer`. nil once stopped.
    func read(into buffer: UnsafeMutableBufferPointer<Int16>, frames: Int) throws -> AudioRead?
    /// Makes a blocked `read` return nil soon. Thread-safe.
    func stop()
    var counters: CaptureCounters { get }
}

/// One encoded H.264 access unit, lent to the callback only.
public struct EncodedVideo {
    /// Length-prefixed NAL units (4-byte sizes), exactly as they go into an MP4 sample.
    public var bytes: UnsafeRawBufferPointer
    /// NAL units to put in front of `bytes` in the same sample (x264's settings SEI on keyframes,
    /// so every clip, which starts at a keyframe, records how it was encoded). Often empty.
    public var prefix: UnsafeRawBufferPointer
    public var pts: Int64
    public var dts: Int64
    public var isKeyframe: Bool
    /// Capture time of the frame it encodes.
    public var time: MonotonicTime

    public init(
        bytes: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        pts: Int64, dts: Int64, isKeyframe: Bool, time: MonotonicTime
    ) {
        self.bytes = bytes
        self.prefix = prefix
        self.pts = pts
        self.dts = dts
        self.isKeyframe = isKeyframe
        self.time = time
    }
}

/// How the video encoder spends bits and CPU (the `[video]` config table).
public struct VideoEncoderSettings: Sendable, Equatable {
    public enum RateControl: Sendable, Equatable {
        /// Constant quality, optionally capped by a VBV (kbit/s, kbit).
        case crf(Double, maxKbps: Int?, bufferKbits: Int?)
        /// Average bitrate with a VBV.
        case bitrate(kbps: Int, maxKbps: Int?, bufferKbits: Int?)
    }

    public var preset = "superfast"
    public var tune: String? = "zerolatency"
    public var profile = "high"
    public var rateControl = RateControl.crf(23, maxKbps: nil, bufferKbits: nil)
    /// 0 lets x264 choose.
    public var threads = 0
    /// Frames between keyframes (one per second: fragments and clip starts fall on them).
    public var keyframeInterval = 30

    public init() {}

    /// The VBV buffer, if there is a VBV.
    public var vbvBufferKbits: Int? {
        switch rateControl {
        case .crf(_, let max, let buffer): return max == nil ? nil : (buffer ?? max)
        case .bitrate(let kbps, let max, let buffer): return buffer ?? max ?? kbps
        }
    }

    /// The most bits per second the settings can produce, if bounded (sizes the pre-event ring).
    public var maxKbps: Int? {
        switch rateControl {
        case .crf(_, let max, _): return max
        case .bitrate(let kbps, let max, _): return max ?? kbps * 2
        }
    }
}

/// Turns raw frames into H.264 access units. Used from the encoder thread only.
public protocol VideoEncoder: AnyObject {
    /// SPS and PPS without start codes, for the MP4 sample entry.
    var parameterSets: (sps: [UInt8], pps: [UInt8]) { get }
    /// Encodes one frame with presentation time `pts` (track ticks). `output` receives zero or
    /// more access units (encoders with lookahead return earlier frames later).
    func encode(
        _ frame: RawFrame, pts: Int64, forceKeyframe: Bool, output: (EncodedVideo) throws -> Void
    ) throws
    /// Drains delayed frames at the end of a stream.
    func flush(output: (EncodedVideo) throws -> Void) throws
    /// Frames taken but not yet given back (B-frames, lookahead); 0 with `tune = zerolatency`.
    var delayedFrames: Int { get }
    /// Gives back every delayed frame now, and goes on taking frames afterwards, the next one as
    /// a keyframe with the same parameter sets. For a source that paused (a camera lost): the
    /// pictures it took before the pause reach the clip now, not when it resumes.
    func drain(output: (EncodedVideo) throws -> Void) throws
}

/// Turns PCM into Opus packets. Used from the audio thread only.
public protocol AudioEncoder: AnyObject {
    /// Samples per channel in every packet.
    var frameSize: Int { get }
    /// Samples the decoder discards at the start.
    var preSkip: Int { get }
    /// Encodes exactly `frameSize` frames; returns the packet, valid until the next call.
    func encode(_ pcm: UnsafeBufferPointer<Int16>) throws -> UnsafeRawBufferPointer
}
