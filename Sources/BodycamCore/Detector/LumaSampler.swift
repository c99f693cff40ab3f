/// A small grey image: row-major `Float` luma, owned by whoever created it and reused for every
/// sample (the detector allocates its images once).
public final class LumaImage {
    public let width: Int
    public let height: Int
    public let pixels: UnsafeMutableBufferPointer<Float>

    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "empty luma image")
        self.width = width
        self.height = height
        pixels = .allocate(capacity: width * height)
        pixels.initialize(repeating: 0)
    }

    deinit { pixels.deallocate() }

    @inline(__always) public subscript(x: Int, y: Int) -> Float {
        get { pixels[y &* width &+ x] }
        set { pixels[y &* width &+ x] = newValue }
    }

    /// This image halved in each direction (2×2 means) into `out` (`width/2` × `height/2`).
    public func halve(into out: LumaImage) {
        precondition(out.width == width / 2 && out.height == height / 2, "halve: wrong size")
        let src = pixels.baseAddress!
        let dst = out.pixels.baseAddress!
        for y in 0..<out.height {
            let r0 = src + 2 * y * width
            let r1 = r0 + width
            let o = dst + y * out.width
            for x in 0..<out.width {
                o[x] = 0.25 * (r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1])
            }
        }
    }

    /// Standard deviation of the image's noise, estimated from the image alone (Immerkær's
    /// method: the mean absolute response to a 3×3 mask that cancels smooth structure).
    public func noiseSigma() -> Float {
        guard width >= 3, height >= 3 else { return 0 }
        let p = pixels.baseAddress!
        var sum: Float = 0
        for y in 1..<(height - 1) {
            let a = p + (y - 1) * width, b = p + y * width, c = p + (y + 1) * width
            for x in 1..<(width - 1) {
                let v = a[x - 1] - 2 * a[x] + a[x + 1] - 2 * (b[x - 1] - 2 * b[x] + b[x + 1]) + c[x - 1] - 2 * c[x] + c[x + 1]
                sum += abs(v)
            }
        }
        // sqrt(pi/2) / 6 per pixel.
        return sum * 0.20888568 / Float((width - 2) * (height - 2))
    }

    public func copy(from other: LumaImage) {
        precondition(other.width == width && other.height == height, "copy: wrong size")
        pixels.baseAddress!.update(from: other.pixels.baseAddress!, count: width * height)
    }
}

/// Reads a reduced luma image straight out of a camera frame: each output pixel is the mean of
/// up to 4×4 luma samples spread over its `factor`×`factor` cell. Nothing is copied from the frame
/// but those samples (16 of every 64 luma bytes at 1/8 scale), and nothing is allocated.
public struct LumaSampler: Sendable {
    public let format: VideoFormat
    /// Frame pixels per sample pixel, chosen so the image is about 160 pixels wide.
    public let factor: Int
    public let width: Int
    public let height: Int
    /// Offsets inside a cell of the rows and columns read.
    private let offsets: [Int]

    public init(format: VideoFormat, targetWidth: Int = 160) {
        self.format = format
        factor = max(1, format.width / max(16, targetWidth))
        width = format.width / factor
        height = format.height / factor
        let step = max(1, factor / 4)
        offsets = Array(stride(from: step / 2, to: factor, by: step).prefix(4))
    }

    /// Fills `image` (`width` × `height`) from `frame`.
    public func sample(_ frame: RawFrame, into image: LumaImage) {
        precondition(image.width == width && image.height == height, "sampler: image size")
        // 1/8 scale (720p and similar) reads luma 1, 3, 5 and 7 of every 8: one vector load per
        // cell row picks the four at once. Same samples, same sums as the general loop.
        if isLittleEndian && factor == 8 && offsets == [1, 3, 5, 7] {
            if format.pixelFormat == .yuyv { sampleYUYVEighth(frame, into: image) } else { samplePlanarEighth(frame, into: image) }
            return
        }
        sampleGeneral(frame, into: image)
    }

    private var isLittleEndian: Bool {
        #if _endian(little)
        return true
        #else
        return false
        #endif
    }

    /// The general loop, for any factor and layout (and the reference the fast paths must match).
    func sampleGeneral(_ frame: RawFrame, into image: LumaImage) {
        let n = offsets.count
        let scale = 1 / Float(n * n)
        // YUYV carries luma in every other byte; NV12 and I420 in a plane of its own.
        let bytesPerPixel = format.pixelFormat == .yuyv ? 2 : 1
        let base = frame.plane0.assumingMemoryBound(to: UInt8.self)
        let stride = frame.stride0
        let out = image.pixels.baseAddress!
        offsets.withUnsafeBufferPointer { off in
            for cy in 0..<height {
                for cx in 0..<width {
                    var sum: UInt32 = 0
                    for oy in off {
                        let row = base + (cy * factor + oy) * stride
                        for ox in off { sum &+= UInt32(row[(cx * factor + ox) * bytesPerPixel]) }
                    }
                    out[cy * width + cx] = Float(sum) * scale
                }
            }
        }
    }

    /// YUYV at 1/8: a cell row is 16 bytes, its luma samples 1, 3, 5, 7 are bytes 2, 6, 10 and 14,
    /// the third byte of each 32-bit lane.
    private func sampleYUYVEighth(_ frame: RawFrame, into image: LumaImage) {
        let base = UnsafeRawPointer(frame.plane0)
        let stride = frame.stride0
        let out = image.pixels.baseAddress!
        for cy in 0..<height {
            let r1 = base + (cy &* 8 &+ 1) &* stride
            let r3 = r1 + 2 &* stride
            let r5 = r3 + 2 &* stride
            let r7 = r5 + 2 &* stride
            for cx in 0..<width {
                let o = cx &* 16
                var v = (r1.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt32>.self) &>> 16) & 0xFF
                v &+= (r3.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt32>.self) &>> 16) & 0xFF
                v &+= (r5.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt32>.self) &>> 16) & 0xFF
                v &+= (r7.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt32>.self) &>> 16) & 0xFF
                out[cy &* width &+ cx] = Float(v.wrappedSum()) * (1 / 16)
            }
        }
    }

    /// A luma plane at 1/8: a cell row is 8 bytes, its samples 1, 3, 5, 7 the odd bytes, the high
    /// byte of each 16-bit lane.
    private func samplePlanarEighth(_ frame: RawFrame, into image: LumaImage) {
        let base = UnsafeRawPointer(frame.plane0)
        let stride = frame.stride0
        let out = image.pixels.baseAddress!
        for cy in 0..<height {
            let r1 = base + (cy &* 8 &+ 1) &* stride
            let r3 = r1 + 2 &* stride
            let r5 = r3 + 2 &* stride
            let r7 = r5 + 2 &* stride
            for cx in 0..<width {
                let o = cx &* 8
                var v = r1.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt16>.self) &>> 8
                v &+= r3.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt16>.self) &>> 8
                v &+= r5.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt16>.self) &>> 8
                v &+= r7.loadUnaligned(fromByteOffset: o, as: SIMD4<UInt16>.self) &>> 8
                out[cy &* width &+ cx] = Float(SIMD4<UInt32>(truncatingIfNeeded: v).wrappedSum()) * (1 / 16)
            }
        }
    }
}
