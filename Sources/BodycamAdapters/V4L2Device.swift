public import BodycamCore
internal import CBodycamShim
internal import CV4L2

#if canImport(Glibc)
import Glibc
#endif

/// A failed V4L2 call: `V4L2Error(op: "VIDIOC_DQBUF", errno: EIO)`.
public struct V4L2Error: Error, CustomStringConvertible, Equatable, Sendable {
    public var op: String
    public var errno: Int32
    public var device: String

    public var description: String { "\(device): \(op): \(String(cString: strerror(errno))) (errno \(errno))" }

    /// The device went away (unplugged, driver unbound): reopen later.
    public var isDeviceGone: Bool { errno == ENODEV || errno == ENXIO || errno == ENOENT }
}

/// Where to find a camera and what to ask of it (the board file's `[camera]` table).
public struct V4L2CameraConfig: Sendable, Equatable {
    /// A device node (`/dev/video0`), or nil to search by `card` / `busInfo`.
    public var device: String?
    /// Match `v4l2_capability.card` (e.g. "vivid", "unicam").
    public var card: String?
    /// Match `v4l2_capability.bus_info` (e.g. "platform:vivid-000").
    public var busInfo: String?
    /// Select this input (VIDIOC_S_INPUT), e.g. 3 for vivid's HDMI input.
    public var input: Int?
    /// For HDMI-style inputs: pick DV timings of this size and rate (VIDIOC_S_DV_TIMINGS).
    public var dvTimings: Bool
    public var width: Int
    public var height: Int
    public var frameRate: FrameRate
    /// Pixel formats in order of preference; the first the device has natively wins, else the
    /// first libv4l can convert to.
    public var pixelFormats: [PixelFormat]
    public var buffers: Int
    /// No frame for this long means the device is lost.
    public var timeoutSeconds: Double

    public init(
        device: String?, card: String?, busInfo: String?, input: Int?, dvTimings: Bool, width: Int, height: Int,
        frameRate: FrameRate, pixelFormats: [PixelFormat], buffers: Int, timeoutSeconds: Double
    ) {
        self.device = device
        self.card = card
        self.busInfo = busInfo
        self.input = input
        self.dvTimings = dvTimings
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.pixelFormats = pixelFormats
        self.buffers = buffers
        self.timeoutSeconds = timeoutSeconds
    }

    /// Human description for messages: the node, or what is searched for.
    public var what: String { device ?? [card.map { "card \"\($0)\"" }, busInfo.map { "bus \"\($0)\"" }].compactMap { $0 }.joined(separator: ", ") }
}

/// One open V4L2 capture device streaming into mmap buffers (libv4l2 underneath, so formats the
/// device lacks can be converted by libv4l). Not thread-safe by itself; `V4L2Camera` guards it.
final class V4L2Stream {
    let path: String
    let fd: Int32
    let format: VideoFormat
    let bytesPerLine: Int
    let sizeImage: Int
    private(set) var buffers: [(base: UnsafeMutableRawPointer, length: Int)] = []
    private var streaming = false

    static func fourCC(_ f: PixelFormat) -> UInt32 {
        switch f {
        case .nv12: return bodycam_v4l2_pix_fmt_nv12()
        case .i420: return bodycam_v4l2_pix_fmt_yuv420()
        case .yuyv: return bodycam_v4l2_pix_fmt_yuyv()
        }
    }

    static func pixelFormat(_ code: UInt32) -> PixelFormat? { PixelFormat.allCases.first { fourCC($0) == code } }

    /// Every ioctl goes through here: EINTR retried, errors named after the request.
    static func ioctl(_ fd: Int32, _ request: UInt, _ name: String, _ arg: UnsafeMutableRawPointer, path: String)
        throws(V4L2Error)
    {
        while bodycam_v4l2_ioctl(fd, request, arg) < 0 {
            let e = Glibc.errno
            if e == EINTR { continue }
            precondition(e != EFAULT, "\(name): bad address, a bodycam bug")
            throw V4L2Error(op: name, errno: e, device: path)
        }
    }

    /// Finds the device: the configured node, or the first capture node whose card or bus matches.
    static func locate(_ config: V4L2CameraConfig) throws(CaptureError) -> String {
        if let d = config.device { return d }
        var seen: [String] = []
        for n in 0..<64 {
            let path = "/dev/video\(n)"
            guard access(path, F_OK) == 0 else { continue }
            let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var cap = v4l2_capability()
            guard (try? ioctl(fd, bodycam_vidioc_querycap(), "VIDIOC_QUERYCAP", &cap, path: path)) != nil else { continue }
            let caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS != 0 ? cap.device_caps : cap.capabilities
            guard caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0, caps & UInt32(V4L2_CAP_STREAMING) != 0 else { continue }
            let card = withUnsafeBytes(of: cap.card) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let bus = withUnsafeBytes(of: cap.bus_info) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            seen.append("\(path) (\(card), \(bus))")
            if let want = config.card, card != want && !card.hasPrefix(want) { continue }
            if let want = config.busInfo, bus != want { continue }
            return path
        }
        throw CaptureError.noDevice(
            "no capture device matches \(config.what)" + (seen.isEmpty ? " (no /dev/video* capture nodes)" : "; found \(seen.joined(separator: ", "))"))
    }

    /// Opens, configures and starts streaming.
    init(config: V4L2CameraConfig, path: String) throws(V4L2Error) {
        self.path = path
        let fd = bodycam_v4l2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw V4L2Error(op: "open", errno: errno, device: path) }
        self.fd = fd
        let negotiated: (format: VideoFormat, bytesPerLine: Int, sizeImage: Int)
        do throws(V4L2Error) {
            negotiated = try Self.configure(fd, config: config, path: path)
        } catch {
            v4l2_close(fd)
            throw error
        }
        format = negotiated.format
        bytesPerLine = negotiated.bytesPerLine
        sizeImage = negotiated.sizeImage
        do throws(V4L2Error) {
            try mapBuffers(count: max(4, config.buffers))
            try start()
        } catch {
            cleanup()
            throw error
        }
    }

    /// Input, DV timings, pixel format, size and frame rate.
    private static func configure(_ fd: Int32, config: V4L2CameraConfig, path: String) throws(V4L2Error)
        -> (format: VideoFormat, bytesPerLine: Int, sizeImage: Int)
    {
        if var input = config.input.map(Int32.init) {
            try ioctl(fd, bodycam_vidioc_s_input(), "VIDIOC_S_INPUT", &input, path: path)
        }
        if config.dvTimings { try setTimings(fd, config: config, path: path) }
        let chosen = try chooseFormat(fd, config: config, path: path)
        var fmt = v4l2_format()
        fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        fmt.fmt.pix.width = UInt32(config.width)
        fmt.fmt.pix.height = UInt32(config.height)
        fmt.fmt.pix.pixelformat = fourCC(chosen)
        fmt.fmt.pix.field = V4L2_FIELD_NONE.rawValue
        try ioctl(fd, bodycam_vidioc_s_fmt(), "VIDIOC_S_FMT", &fmt, path: path)
        guard Int(fmt.fmt.pix.width) == config.width, Int(fmt.fmt.pix.height) == config.height,
            let got = pixelFormat(fmt.fmt.pix.pixelformat)
        else {
            throw V4L2Error(
                op: "VIDIOC_S_FMT (device chose \(fmt.fmt.pix.width)x\(fmt.fmt.pix.height))", errno: EINVAL, device: path)
        }
        // Frame rate: cameras honour VIDIOC_S_PARM; HDMI inputs take it from the DV timings and
        // refuse it, which is fine.
        var parm = v4l2_streamparm()
        parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        parm.parm.capture.timeperframe = v4l2_fract(
            numerator: UInt32(config.frameRate.denominator), denominator: UInt32(config.frameRate.numerator))
        _ = try? ioctl(fd, bodycam_vidioc_s_parm(), "VIDIOC_S_PARM", &parm, path: path)
        let format = VideoFormat(width: config.width, height: config.height, pixelFormat: got, frameRate: config.frameRate)
        return (format, Int(fmt.fmt.pix.bytesperline), Int(fmt.fmt.pix.sizeimage))
    }

    deinit { cleanup() }

    private func cleanup() {
        if streaming {
            var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
            _ = try? Self.ioctl(fd, bodycam_vidioc_streamoff(), "VIDIOC_STREAMOFF", &type, path: path)
            streaming = false
        }
        for b in buffers { v4l2_munmap(b.base, b.length) }
        buffers.removeAll()
        if fd >= 0 { v4l2_close(fd) }
    }

    /// Picks the DV timings matching the configured size and rate (CEA-861 first: exact rates).
    private static func setTimings(_ fd: Int32, config: V4L2CameraConfig, path: String) throws(V4L2Error) {
        var best: v4l2_dv_timings?
        var bestError = Double.infinity
        for i in 0..<256 {
            var e = v4l2_enum_dv_timings()
            e.index = UInt32(i)
            do {
                try ioctl(fd, bodycam_vidioc_enum_dv_timings(), "VIDIOC_ENUM_DV_TIMINGS", &e, path: path)
            } catch {
                if error.errno == EINVAL { break }
                throw error
            }
            let bt = e.timings.bt
            guard Int(bt.width) == config.width, Int(bt.height) == config.height, bt.interlaced == 0 else { continue }
            let total = Double(bt.width + bt.hfrontporch + bt.hsync + bt.hbackporch)
                * Double(bt.height + bt.vfrontporch + bt.vsync + bt.vbackporch)
            guard total > 0 else { continue }
            let fps = Double(bt.pixelclock) / total
            let error = abs(fps - config.frameRate.framesPerSecond)
            if error < bestError {
                bestError = error
                best = e.timings
            }
        }
        guard var timings = best, bestError < 0.5 else {
            throw V4L2Error(
                op: "VIDIOC_ENUM_DV_TIMINGS (no \(config.width)x\(config.height)p\(config.frameRate) timings)",
                errno: EINVAL, device: path)
        }
        try ioctl(fd, bodycam_vidioc_s_dv_timings(), "VIDIOC_S_DV_TIMINGS", &timings, path: path)
    }

    /// The first preferred format the device has natively; else the first libv4l emulates.
    private static func chooseFormat(_ fd: Int32, config: V4L2CameraConfig, path: String) throws(V4L2Error) -> PixelFormat {
        var native: Set<UInt32> = []
        var emulated: Set<UInt32> = []
        for i in 0..<128 {
            var d = v4l2_fmtdesc()
            d.index = UInt32(i)
            d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            do {
                try ioctl(fd, bodycam_vidioc_enum_fmt(), "VIDIOC_ENUM_FMT", &d, path: path)
            } catch {
                if error.errno == EINVAL { break }
                throw error
            }
            if d.flags & UInt32(V4L2_FMT_FLAG_EMULATED) != 0 { emulated.insert(d.pixelformat) } else { native.insert(d.pixelformat) }
        }
        if let f = config.pixelFormats.first(where: { native.contains(fourCC($0)) }) { return f }
        if let f = config.pixelFormats.first(where: { emulated.contains(fourCC($0)) }) { return f }
        throw V4L2Error(
            op: "VIDIOC_ENUM_FMT (none of \(config.pixelFormats.map(\.rawValue).joined(separator: ", ")) offered)",
            errno: EINVAL, device: path)
    }

    private func mapBuffers(count: Int) throws(V4L2Error) {
        var req = v4l2_requestbuffers()
        req.count = UInt32(count)
        req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        req.memory = V4L2_MEMORY_MMAP.rawValue
        try Self.ioctl(fd, bodycam_vidioc_reqbufs(), "VIDIOC_REQBUFS", &req, path: path)
        guard req.count >= 2 else { throw V4L2Error(op: "VIDIOC_REQBUFS (\(req.count) buffers)", errno: ENOMEM, device: path) }
        for i in 0..<Int(req.count) {
            var b = v4l2_buffer()
            b.index = UInt32(i)
            b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            b.memory = V4L2_MEMORY_MMAP.rawValue
            try Self.ioctl(fd, bodycam_vidioc_querybuf(), "VIDIOC_QUERYBUF", &b, path: path)
            guard let m = v4l2_mmap(nil, Int(b.length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, Int64(b.m.offset)),
                m != MAP_FAILED
            else { throw V4L2Error(op: "mmap", errno: errno, device: path) }
            buffers.append((m, Int(b.length)))
        }
        for i in 0..<buffers.count { try queue(i) }
    }

    private func start() throws(V4L2Error) {
        var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
        try Self.ioctl(fd, bodycam_vidioc_streamon(), "VIDIOC_STREAMON", &type, path: path)
        streaming = true
    }

    func queue(_ index: Int) throws(V4L2Error) {
        var b = v4l2_buffer()
        b.index = UInt32(index)
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        b.memory = V4L2_MEMORY_MMAP.rawValue
        try Self.ioctl(fd, bodycam_vidioc_qbuf(), "VIDIOC_QBUF", &b, path: path)
    }

    struct Dequeued {
        var index: Int
        var sequence: UInt32
        var bytesUsed: Int
        var timeNs: Int64?
        var corrupt: Bool
    }

    /// Waits up to `timeoutMs` for a filled buffer. nil on timeout.
    func dequeue(timeoutMs: Int32) throws(V4L2Error) -> Dequeued? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let n = poll(&p, 1, timeoutMs)
        if n < 0 {
            if errno == EINTR { return nil }
            throw V4L2Error(op: "poll", errno: errno, device: path)
        }
        if n == 0 { return nil }
        if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && p.revents & Int16(POLLIN) == 0 {
            throw V4L2Error(op: "poll (device error)", errno: ENODEV, device: path)
        }
        var b = v4l2_buffer()
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        b.memory = V4L2_MEMORY_MMAP.rawValue
        do {
            try Self.ioctl(fd, bodycam_vidioc_dqbuf(), "VIDIOC_DQBUF", &b, path: path)
        } catch {
            if error.errno == EAGAIN { return nil }
            throw error
        }
        let monotonic = b.flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK) == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
        let ts = Int64(b.timestamp.tv_sec) * 1_000_000_000 + Int64(b.timestamp.tv_usec) * 1000
        return Dequeued(
            index: Int(b.index), sequence: b.sequence, bytesUsed: Int(b.bytesused),
            timeNs: monotonic && ts > 0 ? ts : nil, corrupt: b.flags & UInt32(V4L2_BUF_FLAG_ERROR) != 0)
    }
}
