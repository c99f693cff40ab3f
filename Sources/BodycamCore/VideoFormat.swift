/// Pixel layouts the capture side can deliver and the encoder can take.
///
/// All three are 8-bit Y'CbCr. `yuyv` is packed 4:2:2 (what most USB and CSI bridges give);
/// `nv12` and `i420` are planar 4:2:0 (what x264 encodes). The encoder side converts `yuyv`
/// to 4:2:0 and passes the other two through.
public enum PixelFormat: String, Sendable, CaseIterable, Codable {
    case yuyv
    case nv12
    case i420

    /// Bytes of one whole frame of `width` × `height` with tightly packed rows.
    public func frameSize(width: Int, height: Int) -> Int {
        switch self {
        case .yuyv: return width * height * 2
        case .nv12, .i420: return width * height + 2 * (((width + 1) / 2) * ((height + 1) / 2))
        }
    }

    /// Offsets and strides of each plane for a tightly packed frame.
    public func planes(width: Int, height: Int) -> [Plane] {
        let cw = (width + 1) / 2
        let ch = (height + 1) / 2
        switch self {
        case .yuyv:
            return [Plane(offset: 0, stride: width * 2, rows: height)]
        case .nv12:
            return [
                Plane(offset: 0, stride: width, rows: height),
                Plane(offset: width * height, stride: cw * 2, rows: ch),
            ]
        case .i420:
            return [
                Plane(offset: 0, stride: width, rows: height),
                Plane(offset: width * height, stride: cw, rows: ch),
                Plane(offset: width * height + cw * ch, stride: cw, rows: ch),
            ]
        }
    }

    /// One plane of a frame: where it starts in the frame's bytes, bytes per row, rows.
    public struct Plane: Sendable, Equatable {
        public var offset: Int
        public var stride: Int
        public var rows: Int
        public init(offset: Int, stride: Int, rows: Int) {
            self.offset = offset
            self.stride = stride
            self.rows = rows
        }
    }
}

/// A frame rate as an exact fraction (30/1, 30000/1001, 25/1).
public struct FrameRate: Sendable, Hashable, Codable, CustomStringConvertible {
    public var numerator: Int
    public var denominator: Int

    public init(_ numerator: Int, _ denominator: Int = 1) {
        precondition(numerator > 0 && denominator > 0, "frame rate must be positive")
        self.numerator = numerator
        self.denominator = denominator
    }

    /// Nanoseconds between frames (rounded).
    public var frameInterval: Int64 {
        (Int64(denominator) * 1_000_000_000 + Int64(numerator) / 2) / Int64(numerator)
    }

    public var framesPerSecond: Double { Double(numerator) / Double(denominator) }

    /// A media timescale in which every frame lasts a whole number of ticks: 90 kHz where that
    /// works (the broadcast convention players expect), otherwise `numerator`.
    public var timescale: Int {
        if (90_000 * denominator) % numerator == 0 { return 90_000 }
        return numerator
    }

    /// Ticks of `timescale` one frame lasts.
    public var ticksPerFrame: Int { timescale * denominator / numerator }

    public var description: String { denominator == 1 ? "\(numerator)" : "\(numerator)/\(denominator)" }
}

/// What a video source delivers.
public struct VideoFormat: Sendable, Hashable, Codable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public var pixelFormat: PixelFormat
    public var frameRate: FrameRate

    public init(width: Int, height: Int, pixelFormat: PixelFormat, frameRate: FrameRate) {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.frameRate = frameRate
    }

    public var frameSize: Int { pixelFormat.frameSize(width: width, height: height) }

    public var description: String { "\(width)x\(height) \(pixelFormat.rawValue) @ \(frameRate) fps" }
}
