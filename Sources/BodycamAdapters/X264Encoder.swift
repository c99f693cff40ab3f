public import BodycamCore
internal import CBodycamShim
internal import CX264

#if canImport(Glibc)
import Glibc
#endif

/// Errors from setting up or running libx264.
public enum X264Error: Error, CustomStringConvertible, Equatable, Sendable {
    case badPreset(preset: String, tune: String?)
    case badProfile(String)
    case badParameter(String)
    case openFailed
    case reopenChangedHeaders
    case encodeFailed(Int32)

    public var description: String {
        switch self {
        case .badPreset(let p, let t): return "x264 does not know preset \"\(p)\" with tune \"\(t ?? "none")\""
        case .badProfile(let p): return "x264 cannot apply profile \"\(p)\" to these settings"
        case .badParameter(let s): return "x264 refused parameter \(s)"
        case .openFailed: return "x264_encoder_open failed (invalid combination of settings)"
        case .reopenChangedHeaders: return "x264 reopened after a drain gave other parameter sets"
        case .encodeFailed(let r): return "x264_encoder_encode failed (\(r))"
        }
    }
}

/// H.264 through libx264.
///
/// Output is length-prefixed (`b_annexb = 0`) so access units go into MP4 samples as they come;
/// SPS and PPS go into `avcC` once (`b_repeat_headers = 0`). YUYV input is converted into one
/// preallocated NV12 picture; NV12 and I420 frames are handed to x264 in place (x264 copies
/// every input picture into its own frame anyway).
public final class X264Encoder: VideoEncoder {
    private var param = x264_param_t()
    /// nil only after a reopen (`drain`) failed: nothing more is encoded.
    private var handle: OpaquePointer?
    private var picIn = x264_picture_t()
    private var picOut = x264_picture_t()
    /// NV12 staging picture for YUYV input.
    private let staging: UnsafeMutableRawPointer?
    private let stagingUVOffset: Int
    public let format: VideoFormat
    public let parameterSets: (sps: [UInt8], pps: [UInt8])
    /// The settings string x264 writes into the stream (for benchmarks that compare settings).
    public private(set) var settingsString = ""
    /// x264's user-data SEI (length-prefixed), repeated in front of every keyframe.
    private let seiNAL: UnsafeMutableRawBufferPointer
    /// Capture times of frames in flight, by pts, so delayed output keeps its capture time.
    private var timesByPTS: [Int64: MonotonicTime] = [:]
    /// The last decode time given out, and after a drain the lowest the next may be.
    private var lastDTS: Int64?
    private var dtsFloor: Int64?

    /// `timescale` is the track's ticks per second; pts passed to `encode` are in those ticks.
    public init(format: VideoFormat, settings: VideoEncoderSettings, timescale: Int) throws(X264Error) {
        self.format = format
        guard x264_param_default_preset(&param, settings.preset, settings.tune) == 0 else {
            throw .badPreset(preset: settings.preset, tune: settings.tune)
        }
        param.i_width = Int32(format.width)
        param.i_height = Int32(format.height)
        param.i_csp = X264_CSP_I420
        param.i_fps_num = UInt32(format.frameRate.numerator)
        param.i_fps_den = UInt32(format.frameRate.denominator)
        param.i_timebase_num = 1
        param.i_timebase_den = UInt32(timescale)
        param.b_vfr_input = 0
        param.i_keyint_max = Int32(settings.keyframeInterval)
        param.i_threads = Int32(settings.threads)
        param.b_annexb = 0
        param.b_repeat_headers = 0
        param.i_log_level = X264_LOG_WARNING
        switch settings.rateControl {
        case .crf(let crf, let maxKbps, let bufferKbits):
            param.rc.i_rc_method = X264_RC_CRF
            param.rc.f_rf_constant = Float(crf)
            if let maxKbps {
                param.rc.i_vbv_max_bitrate = Int32(maxKbps)
                param.rc.i_vbv_buffer_size = Int32(bufferKbits ?? maxKbps)
            }
        case .bitrate(let kbps, let maxKbps, let bufferKbits):
            param.rc.i_rc_method = X264_RC_ABR
            param.rc.i_bitrate = Int32(kbps)
            param.rc.i_vbv_max_bitrate = Int32(maxKbps ?? kbps)
            param.rc.i_vbv_buffer_size = Int32(bufferKbits ?? (maxKbps ?? kbps))
        }
        guard x264_param_apply_profile(&param, settings.profile) == 0 else { throw .badProfile(settings.profile) }
        guard let h = bodycam_x264_encoder_open(&param) else { throw .openFailed }
        handle = h

        x264_picture_init(&picIn)
        switch format.pixelFormat {
        case .yuyv:
            let ySize = format.width * format.height
            stagingUVOffset = ySize
            let buf = UnsafeMutableRawPointer.allocate(byteCount: ySize + ySize / 2 + 64, alignment: 64)
            staging = buf
            picIn.img.i_csp = X264_CSP_NV12
            picIn.img.i_plane = 2
            picIn.img.i_stride.0 = Int32(format.width)
            picIn.img.i_stride.1 = Int32(format.width)
            picIn.img.plane.0 = buf.assumingMemoryBound(to: UInt8.self)
            picIn.img.plane.1 = (buf + ySize).assumingMemoryBound(to: UInt8.self)
        case .nv12:
            staging = nil
            stagingUVOffset = 0
            picIn.img.i_csp = X264_CSP_NV12
            picIn.img.i_plane = 2
        case .i420:
            staging = nil
            stagingUVOffset = 0
            picIn.img.i_csp = X264_CSP_I420
            picIn.img.i_plane = 3
        }

        let headers = Self.headers(h)
        settingsString = Self.settings(fromSEI: Array(headers.sei.dropFirst(4)))
        parameterSets = (headers.sps, headers.pps)
        seiNAL = .allocate(byteCount: headers.sei.count, alignment: 16)
        seiNAL.copyBytes(from: headers.sei)
    }

    /// Parameter sets for avcC: x264_encoder_headers returns SPS, PPS and the SEI with its
    /// settings string, each prefixed by a 4-byte length because b_annexb is 0. SPS and PPS come
    /// without their prefix, the SEI with it (it goes into samples as it is).
    private static func headers(_ h: OpaquePointer) -> (sps: [UInt8], pps: [UInt8], sei: [UInt8]) {
        var nals: UnsafeMutablePointer<x264_nal_t>?
        var count: Int32 = 0
        var out: (sps: [UInt8], pps: [UInt8], sei: [UInt8]) = ([], [], [])
        guard x264_encoder_headers(h, &nals, &count) >= 0, let nals else { return out }
        for i in 0..<Int(count) {
            let nal = nals[i]
            let whole = Array(UnsafeBufferPointer(start: nal.p_payload, count: Int(nal.i_payload)))
            switch nal.i_type {
            case Int32(NAL_SPS.rawValue): out.sps = Array(whole.dropFirst(4))
            case Int32(NAL_PPS.rawValue): out.pps = Array(whole.dropFirst(4))
            case Int32(NAL_SEI.rawValue): out.sei = whole
            default: break
            }
        }
        return out
    }

    deinit {
        if let handle { x264_encoder_close(handle) }
        staging?.deallocate()
        seiNAL.deallocate()
    }

    /// x264's user-data SEI holds "x264 - core … - options: …"; pull out the printable text.
    static func settings(fromSEI sei: [UInt8]) -> String {
        let printable = sei.filter { $0 >= 0x20 && $0 < 0x7f }
        let marker = Array("x264 - core".utf8)
        guard printable.count >= marker.count else { return "" }
        for i in 0...(printable.count - marker.count) where printable[i..<(i + marker.count)].elementsEqual(marker) {
            return String(decoding: printable[i...], as: UTF8.self)
        }
        return ""
    }

    public func encode(
        _ frame: RawFrame, pts: Int64, forceKeyframe: Bool, output: (EncodedVideo) throws -> Void
    ) throws {
        switch frame.format.pixelFormat {
        case .yuyv:
            guard let staging else { preconditionFailure("encoder opened for another pixel format") }
            PixelConversion.yuyvToNV12(
                src: frame.plane0, srcStride: frame.stride0, width: format.width, height: format.height,
                dstY: staging, dstYStride: format.width, dstUV: staging + stagingUVOffset, dstUVStride: format.width)
        case .nv12:
            picIn.img.plane.0 = frame.plane0.assumingMemoryBound(to: UInt8.self)
            picIn.img.i_stride.0 = Int32(frame.stride0)
            picIn.img.plane.1 = frame.plane1?.assumingMemoryBound(to: UInt8.self)
            picIn.img.i_stride.1 = Int32(frame.stride1)
        case .i420:
            picIn.img.plane.0 = frame.plane0.assumingMemoryBound(to: UInt8.self)
            picIn.img.i_stride.0 = Int32(frame.stride0)
            picIn.img.plane.1 = frame.plane1?.assumingMemoryBound(to: UInt8.self)
            picIn.img.i_stride.1 = Int32(frame.stride1)
            picIn.img.plane.2 = frame.plane2?.assumingMemoryBound(to: UInt8.self)
            picIn.img.i_stride.2 = Int32(frame.stride2)
        }
        picIn.i_pts = pts
        picIn.i_type = forceKeyframe ? X264_TYPE_IDR : X264_TYPE_AUTO
        if param.i_bframe > 0 || param.rc.i_lookahead > 0 || param.i_sync_lookahead > 0 {
            timesByPTS[pts] = frame.time
        }
        try run(&picIn, fallbackTime: frame.time, output: output)
    }

    public func flush(output: (EncodedVideo) throws -> Void) throws {
        while let handle, x264_encoder_delayed_frames(handle) > 0 {
            try run(nil, fallbackTime: .zero, output: output)
        }
    }

    public var delayedFrames: Int { handle.map { Int(x264_encoder_delayed_frames($0)) } ?? 0 }

    /// x264 takes no more frames once flushed (its lookahead thread has been told to end), so
    /// the drained encoder is closed and a new one opened with the same parameters. Its first
    /// frame is an IDR, and its parameter sets are the same bytes (checked), so the track and its
    /// `avcC` carry on unchanged.
    ///
    /// A new encoder starts its decode times below its first presentation time (by the B-frame
    /// delay), so after uneven frame spacing they could fall below the last one given out; they
    /// are kept rising (never above the presentation time: every later one exceeds every earlier).
    public func drain(output: (EncodedVideo) throws -> Void) throws {
        guard delayedFrames > 0 else { return }
        try flush(output: output)
        timesByPTS.removeAll(keepingCapacity: true)
        // Closed before the new one opens, so the two never hold their frames (and threads) at
        // once; if the new one cannot be opened, nothing more is encoded.
        if let handle { x264_encoder_close(handle) }
        handle = nil
        guard let h = bodycam_x264_encoder_open(&param) else { throw X264Error.openFailed }
        let headers = Self.headers(h)
        guard headers.sps == parameterSets.sps && headers.pps == parameterSets.pps else {
            x264_encoder_close(h)
            throw X264Error.reopenChangedHeaders
        }
        handle = h
        dtsFloor = lastDTS.map { $0 + 1 }
    }

    private func run(
        _ pic: UnsafeMutablePointer<x264_picture_t>?, fallbackTime: MonotonicTime,
        output: (EncodedVideo) throws -> Void
    ) throws {
        var nals: UnsafeMutablePointer<x264_nal_t>?
        var count: Int32 = 0
        guard let handle else { throw X264Error.openFailed }
        let size = x264_encoder_encode(handle, &nals, &count, pic, &picOut)
        guard size >= 0 else { throw X264Error.encodeFailed(size) }
        guard size > 0, let nals, count > 0 else { return }
        // x264 guarantees the payloads of one call are contiguous in memory.
        let bytes = UnsafeRawBufferPointer(start: nals[0].p_payload, count: Int(size))
        let time = timesByPTS.removeValue(forKey: picOut.i_pts) ?? fallbackTime
        var dts = picOut.i_dts
        if let floor = dtsFloor {
            if dts < floor { dts = floor } else { dtsFloor = nil }
        }
        lastDTS = dts
        if dtsFloor != nil { dtsFloor = dts + 1 }
        try output(
            EncodedVideo(
                bytes: bytes, prefix: picOut.b_keyframe != 0 ? UnsafeRawBufferPointer(seiNAL) : UnsafeRawBufferPointer(start: nil, count: 0),
                pts: picOut.i_pts, dts: dts, isKeyframe: picOut.b_keyframe != 0, time: time))
    }
}
