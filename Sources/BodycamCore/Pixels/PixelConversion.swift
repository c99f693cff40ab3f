#if _endian(big)
    // The vector kernels view pairs of bytes as little-endian `UInt16` lanes.
    #error("PixelConversion assumes a little-endian target")
#endif

/// Conversions between the 8-bit Y'CbCr layouts in ``PixelFormat``, run on every captured frame in front of the
/// encoder.
///
/// All functions take raw pointers and strides so that they work on driver buffers (V4L2 `mmap`), encoder picture
/// planes and test arrays alike; callers own every buffer and nothing is allocated. Source and destination must not
/// overlap. Chroma is subsampled 2×2 (4:2:0) with the chroma sample sited between the two rows it covers, which is
/// what libv4lconvert and swscale do: each 4:2:0 chroma sample is the rounded average `(a + b + 1) >> 1` of the two
/// source rows' samples. When `height` is odd the last 4:2:0 chroma row comes from the last source row alone.
///
/// The deinterleaving loops use `SIMD16` vectors because LLVM lowers them to a few SSE2 / NEON instructions per 16
/// pixels (mask or shift, pack, rounding average) that it does not reliably find on its own for the stride-2
/// accesses of packed 4:2:2; scalar tails handle widths that are not a multiple of 16. Targets are little-endian.
public enum PixelConversion {
    // MARK: - YUYV (packed 4:2:2) → 4:2:0

    /// Converts packed YUYV (`Y0 U Y1 V` per pixel pair) to NV12 (a Y plane and one plane of interleaved `U V`).
    ///
    /// - Parameters:
    ///   - src: the first byte of the YUYV image; rows are `srcStride` bytes apart (at least `width * 2`).
    ///   - width: pixels per row; must be even (YUYV carries chroma per pixel pair).
    ///   - height: rows; may be odd.
    ///   - dstY: the Y plane, `width` bytes used per row, rows `dstYStride` apart.
    ///   - dstUV: the interleaved chroma plane, `width` bytes used per row (`width / 2` pairs), `(height + 1) / 2`
    ///     rows `dstUVStride` apart.
    public static func yuyvToNV12(
        src: UnsafeRawPointer, srcStride: Int, width: Int, height: Int,
        dstY: UnsafeMutableRawPointer, dstYStride: Int,
        dstUV: UnsafeMutableRawPointer, dstUVStride: Int
    ) {
        precondition(width >= 0 && height >= 0 && width & 1 == 0, "YUYV width must be even and sizes non-negative")
        precondition(srcStride >= width * 2 && dstYStride >= width && dstUVStride >= width, "stride too small")
        var row = 0
        while row < height {
            let uv = dstUV + (row / 2) * dstUVStride
            yuyvRowToNV12(src + row * srcStride, dstY + row * dstYStride, uv, width: width)
            // An odd last row keeps its own chroma.
            if row + 1 < height {
                yuyvRowAveragingNV12(src + (row + 1) * srcStride, dstY + (row + 1) * dstYStride, uv, width: width)
            }
            row += 2
        }
    }

    /// Converts packed YUYV to I420 (Y, U and V planes).
    ///
    /// Same rules as
    /// ``yuyvToNV12(src:srcStride:width:height:dstY:dstYStride:dstUV:dstUVStride:)``;
    /// `dstU` and `dstV` hold `width / 2` bytes per row and `(height + 1) / 2` rows.
    public static func yuyvToI420(
        src: UnsafeRawPointer, srcStride: Int, width: Int, height: Int,
        dstY: UnsafeMutableRawPointer, dstYStride: Int,
        dstU: UnsafeMutableRawPointer, dstUStride: Int,
        dstV: UnsafeMutableRawPointer, dstVStride: Int
    ) {
        precondition(width >= 0 && height >= 0 && width & 1 == 0, "YUYV width must be even and sizes non-negative")
        precondition(
            srcStride >= width * 2 && dstYStride >= width && dstUStride >= width / 2 && dstVStride >= width / 2,
            "stride too small")
        var row = 0
        while row < height {
            let u = dstU + (row / 2) * dstUStride
            let v = dstV + (row / 2) * dstVStride
            yuyvRowToI420(src + row * srcStride, dstY + row * dstYStride, u, v, width: width)
            if row + 1 < height {
                yuyvRowAveragingI420(src + (row + 1) * srcStride, dstY + (row + 1) * dstYStride, u, v, width: width)
            }
            row += 2
        }
    }

    // MARK: - I420 ↔ NV12

    /// Converts I420 to NV12: copies Y and interleaves U and V. `width` and `height` may be odd; chroma planes have
    /// `(width + 1) / 2` samples per row and `(height + 1) / 2` rows.
    public static func i420ToNV12(
        srcY: UnsafeRawPointer, srcYStride: Int,
        srcU: UnsafeRawPointer, srcUStride: Int,
        srcV: UnsafeRawPointer, srcVStride: Int,
        width: Int, height: Int,
        dstY: UnsafeMutableRawPointer, dstYStride: Int,
        dstUV: UnsafeMutableRawPointer, dstUVStride: Int
    ) {
        precondition(width >= 0 && height >= 0, "sizes must be non-negative")
        let cw = (width + 1) / 2
        let ch = (height + 1) / 2
        precondition(
            srcYStride >= width && srcUStride >= cw && srcVStride >= cw && dstYStride >= width
                && dstUVStride >= 2 * cw, "stride too small")
        copyPlane(srcY, srcYStride, dstY, dstYStride, rowBytes: width, rows: height)
        for row in 0..<ch {
            interleaveRow(
                srcU + row * srcUStride, srcV + row * srcVStride, dstUV + row * dstUVStride, count: cw)
        }
    }

    /// Converts NV12 to I420: copies Y and splits the interleaved chroma. Sizes as in
    /// ``i420ToNV12(srcY:srcYStride:srcU:srcUStride:srcV:srcVStride:width:height:dstY:dstYStride:dstUV:dstUVStride:)``.
    public static func nv12ToI420(
        srcY: UnsafeRawPointer, srcYStride: Int,
        srcUV: UnsafeRawPointer, srcUVStride: Int,
        width: Int, height: Int,
        dstY: UnsafeMutableRawPointer, dstYStride: Int,
        dstU: UnsafeMutableRawPointer, dstUStride: Int,
        dstV: UnsafeMutableRawPointer, dstVStride: Int
    ) {
        precondition(width >= 0 && height >= 0, "sizes must be non-negative")
        let cw = (width + 1) / 2
        let ch = (height + 1) / 2
        precondition(
            srcYStride >= width && srcUVStride >= 2 * cw && dstYStride >= width && dstUStride >= cw
                && dstVStride >= cw, "stride too small")
        copyPlane(srcY, srcYStride, dstY, dstYStride, rowBytes: width, rows: height)
        for row in 0..<ch {
            deinterleaveRow(
                srcUV + row * srcUVStride, dstU + row * dstUStride, dstV + row * dstVStride, count: cw)
        }
    }

    // MARK: - Kernels
    //
    // The YUYV kernels read each source row once, front to back, instead of walking two rows side by side: a single
    // sequential read stream keeps the hardware prefetcher ahead of the loop and runs at close to `memcpy` speed
    // from DRAM, where two interleaved streams measured about 1.7× slower on a 720p frame. The first row of a pair
    // therefore parks its chroma in the destination chroma row (which stays in L1), and the second row averages
    // into it.

    /// Pixels per vector step. 16 pixels of YUYV are 32 bytes: two SSE registers or one AVX2 / two NEON registers.
    /// (Wider `SIMD32`/`SIMD64` conversions are not lowered to vector code by Swift 6.3 and run ~100× slower.)
    private static let step = 16

    private typealias Words = SIMD16<UInt16>
    private typealias Bytes = SIMD16<UInt8>

    /// Rounded-up average `(a + b + 1) >> 1` without widening; LLVM recognises it as `pavgb` / `urhadd`.
    @inline(__always)
    private static func average(_ a: Bytes, _ b: Bytes) -> Bytes {
        (a | b) &- ((a ^ b) &>> 1)
    }

    @inline(__always)
    private static func average(_ a: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt16(a) &+ UInt16(b) &+ 1) &>> 1)
    }

    /// One YUYV row to a Y row, with its chroma copied as is into the NV12 chroma row (`U V` order is the same in
    /// both). Each step views 32 source bytes as sixteen little-endian `UInt16` lanes `Y | C << 8`.
    @inline(__always)
    private static func yuyvRowToNV12(
        _ s: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ uv: UnsafeMutableRawPointer, width: Int
    ) {
        var x = 0
        while x &+ step <= width {
            let w = s.loadUnaligned(fromByteOffset: x &* 2, as: Words.self)
            y.storeBytes(of: Bytes(truncatingIfNeeded: w), toByteOffset: x, as: Bytes.self)
            uv.storeBytes(of: Bytes(truncatingIfNeeded: w &>> 8), toByteOffset: x, as: Bytes.self)
            x &+= step
        }
        let sp = s.assumingMemoryBound(to: UInt8.self)
        let yp = y.assumingMemoryBound(to: UInt8.self)
        let cp = uv.assumingMemoryBound(to: UInt8.self)
        while x < width {
            yp[x] = sp[x &* 2]
            cp[x] = sp[x &* 2 &+ 1]
            x &+= 1
        }
    }

    /// The second YUYV row of a pair: its Y row, and its chroma averaged into the chroma the first row left.
    @inline(__always)
    private static func yuyvRowAveragingNV12(
        _ s: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ uv: UnsafeMutableRawPointer, width: Int
    ) {
        var x = 0
        while x &+ step <= width {
            let w = s.loadUnaligned(fromByteOffset: x &* 2, as: Words.self)
            let above = uv.loadUnaligned(fromByteOffset: x, as: Bytes.self)
            y.storeBytes(of: Bytes(truncatingIfNeeded: w), toByteOffset: x, as: Bytes.self)
            uv.storeBytes(
                of: average(above, Bytes(truncatingIfNeeded: w &>> 8)), toByteOffset: x, as: Bytes.self)
            x &+= step
        }
        let sp = s.assumingMemoryBound(to: UInt8.self)
        let yp = y.assumingMemoryBound(to: UInt8.self)
        let cp = uv.assumingMemoryBound(to: UInt8.self)
        while x < width {
            yp[x] = sp[x &* 2]
            cp[x] = average(cp[x], sp[x &* 2 &+ 1])
            x &+= 1
        }
    }

    /// 32 YUYV pixels (64 bytes from `s + offset`) to 32 Y bytes and 16 `U V` pairs viewed as `UInt16` lanes
    /// `U | V << 8`, so that U and V each come out as one 16-byte vector.
    @inline(__always)
    private static func load32(_ s: UnsafeRawPointer, _ offset: Int) -> (y0: Bytes, y1: Bytes, chroma: Words) {
        let w0 = s.loadUnaligned(fromByteOffset: offset, as: Words.self)
        let w1 = s.loadUnaligned(fromByteOffset: offset &+ 32, as: Words.self)
        let c = SIMD32<UInt8>(
            lowHalf: Bytes(truncatingIfNeeded: w0 &>> 8), highHalf: Bytes(truncatingIfNeeded: w1 &>> 8))
        return (Bytes(truncatingIfNeeded: w0), Bytes(truncatingIfNeeded: w1), unsafeBitCast(c, to: Words.self))
    }

    /// One YUYV row to a Y row and its own chroma in the U and V rows.
    @inline(__always)
    private static func yuyvRowToI420(
        _ s: UnsafeRawPointer, _ y: UnsafeMutableRawPointer,
        _ u: UnsafeMutableRawPointer, _ v: UnsafeMutableRawPointer, width: Int
    ) {
        var x = 0
        while x &+ 2 &* step <= width {
            let p = load32(s, x &* 2)
            y.storeBytes(of: p.y0, toByteOffset: x, as: Bytes.self)
            y.storeBytes(of: p.y1, toByteOffset: x &+ step, as: Bytes.self)
            u.storeBytes(of: Bytes(truncatingIfNeeded: p.chroma), toByteOffset: x &>> 1, as: Bytes.self)
            v.storeBytes(of: Bytes(truncatingIfNeeded: p.chroma &>> 8), toByteOffset: x &>> 1, as: Bytes.self)
            x &+= 2 &* step
        }
        let sp = s.assumingMemoryBound(to: UInt8.self)
        let yp = y.assumingMemoryBound(to: UInt8.self)
        let up = u.assumingMemoryBound(to: UInt8.self)
        let vp = v.assumingMemoryBound(to: UInt8.self)
        while x < width {
            let i = x &* 2
            yp[x] = sp[i]
            yp[x &+ 1] = sp[i &+ 2]
            up[x &>> 1] = sp[i &+ 1]
            vp[x &>> 1] = sp[i &+ 3]
            x &+= 2
        }
    }

    /// The second YUYV row of a pair: its Y row, and its chroma averaged into the U and V the first row left.
    @inline(__always)
    private static func yuyvRowAveragingI420(
        _ s: UnsafeRawPointer, _ y: UnsafeMutableRawPointer,
        _ u: UnsafeMutableRawPointer, _ v: UnsafeMutableRawPointer, width: Int
    ) {
        var x = 0
        while x &+ 2 &* step <= width {
            let p = load32(s, x &* 2)
            let c = x &>> 1
            y.storeBytes(of: p.y0, toByteOffset: x, as: Bytes.self)
            y.storeBytes(of: p.y1, toByteOffset: x &+ step, as: Bytes.self)
            let uAbove = u.loadUnaligned(fromByteOffset: c, as: Bytes.self)
            let vAbove = v.loadUnaligned(fromByteOffset: c, as: Bytes.self)
            u.storeBytes(
                of: average(uAbove, Bytes(truncatingIfNeeded: p.chroma)), toByteOffset: c, as: Bytes.self)
            v.storeBytes(
                of: average(vAbove, Bytes(truncatingIfNeeded: p.chroma &>> 8)), toByteOffset: c, as: Bytes.self)
            x &+= 2 &* step
        }
        let sp = s.assumingMemoryBound(to: UInt8.self)
        let yp = y.assumingMemoryBound(to: UInt8.self)
        let up = u.assumingMemoryBound(to: UInt8.self)
        let vp = v.assumingMemoryBound(to: UInt8.self)
        while x < width {
            let i = x &* 2
            yp[x] = sp[i]
            yp[x &+ 1] = sp[i &+ 2]
            up[x &>> 1] = average(up[x &>> 1], sp[i &+ 1])
            vp[x &>> 1] = average(vp[x &>> 1], sp[i &+ 3])
            x &+= 2
        }
    }

    /// `count` U and V samples to `count` `U V` pairs. A plain loop: LLVM vectorises it into unpack instructions,
    /// whereas widening `SIMD16<UInt8>` to `SIMD16<UInt16>` is an out-of-line call in Swift 6.3 and half as fast.
    @inline(__always)
    private static func interleaveRow(
        _ u: UnsafeRawPointer, _ v: UnsafeRawPointer, _ uv: UnsafeMutableRawPointer, count: Int
    ) {
        let up = u.assumingMemoryBound(to: UInt8.self)
        let vp = v.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < count {
            // Byte order in memory is U then V on any little-endian target, which all our targets are.
            uv.storeBytes(of: UInt16(up[i]) | UInt16(vp[i]) &<< 8, toByteOffset: i &* 2, as: UInt16.self)
            i &+= 1
        }
    }

    /// `count` `U V` pairs to `count` U and `count` V samples.
    @inline(__always)
    private static func deinterleaveRow(
        _ uv: UnsafeRawPointer, _ u: UnsafeMutableRawPointer, _ v: UnsafeMutableRawPointer, count: Int
    ) {
        var i = 0
        while i &+ step <= count {
            let w = uv.loadUnaligned(fromByteOffset: i &* 2, as: Words.self)
            u.storeBytes(of: Bytes(truncatingIfNeeded: w), toByteOffset: i, as: Bytes.self)
            v.storeBytes(of: Bytes(truncatingIfNeeded: w &>> 8), toByteOffset: i, as: Bytes.self)
            i &+= step
        }
        let inp = uv.assumingMemoryBound(to: UInt8.self)
        let up = u.assumingMemoryBound(to: UInt8.self)
        let vp = v.assumingMemoryBound(to: UInt8.self)
        while i < count {
            up[i] = inp[i &* 2]
            vp[i] = inp[i &* 2 &+ 1]
            i &+= 1
        }
    }

    /// Copies a plane, in one `memmove` when both sides are tightly packed.
    @inline(__always)
    private static func copyPlane(
        _ src: UnsafeRawPointer, _ srcStride: Int, _ dst: UnsafeMutableRawPointer, _ dstStride: Int,
        rowBytes: Int, rows: Int
    ) {
        guard rowBytes > 0, rows > 0 else { return }
        if srcStride == rowBytes && dstStride == rowBytes {
            dst.copyMemory(from: src, byteCount: rowBytes * rows)
            return
        }
        for row in 0..<rows {
            (dst + row * dstStride).copyMemory(from: src + row * srcStride, byteCount: rowBytes)
        }
    }
}
