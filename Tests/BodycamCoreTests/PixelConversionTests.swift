import Testing

@testable import BodycamCore

/// Deterministic bytes for images too big to write by hand (the vector paths start at 16 pixels).
private func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

/// The textbook definition, one sample at a time, to check the vector kernels against.
private func referenceYUYVTo420(_ src: [UInt8], width: Int, height: Int) -> (y: [UInt8], u: [UInt8], v: [UInt8]) {
    let cw = width / 2
    let ch = (height + 1) / 2
    var y = [UInt8](repeating: 0, count: width * height)
    var u = [UInt8](repeating: 0, count: cw * ch)
    var v = [UInt8](repeating: 0, count: cw * ch)
    for row in 0..<height {
        for x in 0..<width { y[row * width + x] = src[row * width * 2 + x * 2] }
    }
    for crow in 0..<ch {
        let r0 = 2 * crow
        let r1 = min(r0 + 1, height - 1)
        for p in 0..<cw {
            let u0 = Int(src[r0 * width * 2 + p * 4 + 1])
            let u1 = Int(src[r1 * width * 2 + p * 4 + 1])
            let v0 = Int(src[r0 * width * 2 + p * 4 + 3])
            let v1 = Int(src[r1 * width * 2 + p * 4 + 3])
            u[crow * cw + p] = UInt8((u0 + u1 + 1) / 2)
            v[crow * cw + p] = UInt8((v0 + v1 + 1) / 2)
        }
    }
    return (y, u, v)
}

/// Runs `yuyvToNV12` on tightly packed buffers.
private func nv12(fromYUYV src: [UInt8], width: Int, height: Int) -> (y: [UInt8], uv: [UInt8]) {
    var y = [UInt8](repeating: 0xEE, count: width * height)
    var uv = [UInt8](repeating: 0xEE, count: width * ((height + 1) / 2))
    src.withUnsafeBytes { s in
        y.withUnsafeMutableBytes { yb in
            uv.withUnsafeMutableBytes { uvb in
                PixelConversion.yuyvToNV12(
                    src: s.baseAddress!, srcStride: width * 2, width: width, height: height,
                    dstY: yb.baseAddress!, dstYStride: width, dstUV: uvb.baseAddress!, dstUVStride: width)
            }
        }
    }
    return (y, uv)
}

/// Runs `yuyvToI420` on tightly packed buffers.
private func i420(fromYUYV src: [UInt8], width: Int, height: Int) -> (y: [UInt8], u: [UInt8], v: [UInt8]) {
    let cw = width / 2
    let ch = (height + 1) / 2
    var y = [UInt8](repeating: 0xEE, count: width * height)
    var u = [UInt8](repeating: 0xEE, count: cw * ch)
    var v = [UInt8](repeating: 0xEE, count: cw * ch)
    src.withUnsafeBytes { s in
        y.withUnsafeMutableBytes { yb in
            u.withUnsafeMutableBytes { ub in
                v.withUnsafeMutableBytes { vb in
                    PixelConversion.yuyvToI420(
                        src: s.baseAddress!, srcStride: width * 2, width: width, height: height,
                        dstY: yb.baseAddress!, dstYStride: width,
                        dstU: ub.baseAddress!, dstUStride: cw, dstV: vb.baseAddress!, dstVStride: cw)
                }
            }
        }
    }
    return (y, u, v)
}

/// Runs `i420ToNV12` on tightly packed buffers.
private func nv12(
    fromI420 y: [UInt8], _ u: [UInt8], _ v: [UInt8], width: Int, height: Int
) -> (y: [UInt8], uv: [UInt8]) {
    let cw = (width + 1) / 2
    var outY = [UInt8](repeating: 0xEE, count: width * height)
    var outUV = [UInt8](repeating: 0xEE, count: 2 * cw * ((height + 1) / 2))
    y.withUnsafeBytes { yb in
        u.withUnsafeBytes { ub in
            v.withUnsafeBytes { vb in
                outY.withUnsafeMutableBytes { oy in
                    outUV.withUnsafeMutableBytes { ouv in
                        PixelConversion.i420ToNV12(
                            srcY: yb.baseAddress!, srcYStride: width, srcU: ub.baseAddress!, srcUStride: cw,
                            srcV: vb.baseAddress!, srcVStride: cw, width: width, height: height,
                            dstY: oy.baseAddress!, dstYStride: width, dstUV: ouv.baseAddress!, dstUVStride: 2 * cw)
                    }
                }
            }
        }
    }
    return (outY, outUV)
}

/// Runs `nv12ToI420` on tightly packed buffers.
private func i420(fromNV12 y: [UInt8], _ uv: [UInt8], width: Int, height: Int) -> (y: [UInt8], u: [UInt8], v: [UInt8]) {
    let cw = (width + 1) / 2
    let ch = (height + 1) / 2
    var outY = [UInt8](repeating: 0xEE, count: width * height)
    var outU = [UInt8](repeating: 0xEE, count: cw * ch)
    var outV = [UInt8](repeating: 0xEE, count: cw * ch)
    y.withUnsafeBytes { yb in
        uv.withUnsafeBytes { uvb in
            outY.withUnsafeMutableBytes { oy in
                outU.withUnsafeMutableBytes { ou in
                    outV.withUnsafeMutableBytes { ov in
                        PixelConversion.nv12ToI420(
                            srcY: yb.baseAddress!, srcYStride: width, srcUV: uvb.baseAddress!, srcUVStride: 2 * cw,
                            width: width, height: height, dstY: oy.baseAddress!, dstYStride: width,
                            dstU: ou.baseAddress!, dstUStride: cw, dstV: ov.baseAddress!, dstVStride: cw)
                    }
                }
            }
        }
    }
    return (outY, outU, outV)
}

/// 4×3 YUYV, rows written as `Y0 U Y1 V  Y2 U Y3 V`. The chroma pairs are chosen so that plain truncation,
/// rounding half down and rounding half up all give different answers.
private let smallYUYV: [UInt8] = [
    10, 100, 20, 200, 30, 50, 40, 60,
    11, 101, 21, 203, 31, 52, 41, 61,
    12, 7, 22, 9, 32, 250, 42, 255,
]

@Suite("PixelConversion")
struct PixelConversionTests {
    @Test("YUYV → NV12: Y copied, chroma rounded average of two rows, odd last row alone")
    func yuyvToNV12Small() {
        let out = nv12(fromYUYV: smallYUYV, width: 4, height: 3)
        #expect(out.y == [10, 20, 30, 40, 11, 21, 31, 41, 12, 22, 32, 42])
        // (100+101+1)/2 = 101, (200+203+1)/2 = 202, (50+52+1)/2 = 51, (60+61+1)/2 = 61; then row 2 as is.
        #expect(out.uv == [101, 202, 51, 61, 7, 9, 250, 255])
    }

    @Test("YUYV → I420 on the same image")
    func yuyvToI420Small() {
        let out = i420(fromYUYV: smallYUYV, width: 4, height: 3)
        #expect(out.y == [10, 20, 30, 40, 11, 21, 31, 41, 12, 22, 32, 42])
        #expect(out.u == [101, 51, 7, 250])
        #expect(out.v == [202, 61, 9, 255])
    }

    @Test("averaging rounds half up and cannot overflow at 255")
    func roundingExtremes() {
        // One pixel pair, two rows: U 255/255, V 0/1.
        let src: [UInt8] = [0, 255, 255, 0, 255, 255, 0, 1]
        let out = nv12(fromYUYV: src, width: 2, height: 2)
        #expect(out.y == [0, 255, 255, 0])
        #expect(out.uv == [255, 1])
    }

    @Test("strides: padding bytes of the destination are left alone")
    func strides() {
        let width = 4
        let height = 3
        // Source rows padded to 12 bytes with junk that must not be read into the output.
        var src = [UInt8]()
        for row in 0..<height {
            src += smallYUYV[(row * 8)..<(row * 8 + 8)]
            src += [0xAA, 0xAA, 0xAA, 0xAA]
        }
        var y = [UInt8](repeating: 0xEE, count: 6 * height)
        var uv = [UInt8](repeating: 0xEE, count: 7 * 2)
        src.withUnsafeBytes { s in
            y.withUnsafeMutableBytes { yb in
                uv.withUnsafeMutableBytes { uvb in
                    PixelConversion.yuyvToNV12(
                        src: s.baseAddress!, srcStride: 12, width: width, height: height,
                        dstY: yb.baseAddress!, dstYStride: 6, dstUV: uvb.baseAddress!, dstUVStride: 7)
                }
            }
        }
        #expect(y == [10, 20, 30, 40, 0xEE, 0xEE, 11, 21, 31, 41, 0xEE, 0xEE, 12, 22, 32, 42, 0xEE, 0xEE])
        #expect(uv == [101, 202, 51, 61, 0xEE, 0xEE, 0xEE, 7, 9, 250, 255, 0xEE, 0xEE, 0xEE])
    }

    @Test("I420 → NV12 interleaves, NV12 → I420 splits (odd width and height)")
    func planarSmall() {
        // 5×3: chroma is 3×2.
        let y: [UInt8] = Array(1...15)
        let u: [UInt8] = [100, 101, 102, 103, 104, 105]
        let v: [UInt8] = [200, 201, 202, 203, 204, 205]
        let out = nv12(fromI420: y, u, v, width: 5, height: 3)
        #expect(out.y == y)
        #expect(out.uv == [100, 200, 101, 201, 102, 202, 103, 203, 104, 204, 105, 205])
        let back = i420(fromNV12: out.y, out.uv, width: 5, height: 3)
        #expect(back.y == y)
        #expect(back.u == u)
        #expect(back.v == v)
    }

    @Test(
        "vector paths match the per-sample definition",
        arguments: [(2, 1), (16, 2), (30, 5), (32, 4), (38, 7), (64, 3), (98, 6), (1280, 3)])
    func yuyvMatchesReference(width: Int, height: Int) {
        let src = pseudoRandomBytes(width * height * 2, seed: UInt64(width * 1000 + height))
        let expected = referenceYUYVTo420(src, width: width, height: height)
        let planar = i420(fromYUYV: src, width: width, height: height)
        #expect(planar.y == expected.y)
        #expect(planar.u == expected.u)
        #expect(planar.v == expected.v)
        let semi = nv12(fromYUYV: src, width: width, height: height)
        #expect(semi.y == expected.y)
        var interleaved = [UInt8]()
        for i in 0..<expected.u.count { interleaved += [expected.u[i], expected.v[i]] }
        #expect(semi.uv == interleaved)
    }

    @Test(
        "YUYV → NV12 equals YUYV → I420 → NV12",
        arguments: [(4, 3), (36, 9), (66, 10), (320, 17)])
    func yuyvPathsAgree(width: Int, height: Int) {
        let src = pseudoRandomBytes(width * height * 2, seed: 7)
        let direct = nv12(fromYUYV: src, width: width, height: height)
        let planar = i420(fromYUYV: src, width: width, height: height)
        let viaI420 = nv12(fromI420: planar.y, planar.u, planar.v, width: width, height: height)
        #expect(direct.y == viaI420.y)
        #expect(direct.uv == viaI420.uv)
    }

    @Test("I420 ↔ NV12 round trips are lossless", arguments: [(1, 1), (5, 3), (34, 7), (70, 9), (640, 4)])
    func roundTrips(width: Int, height: Int) {
        let cw = (width + 1) / 2
        let ch = (height + 1) / 2
        let y = pseudoRandomBytes(width * height, seed: 1)
        let u = pseudoRandomBytes(cw * ch, seed: 2)
        let v = pseudoRandomBytes(cw * ch, seed: 3)
        let semi = nv12(fromI420: y, u, v, width: width, height: height)
        let planar = i420(fromNV12: semi.y, semi.uv, width: width, height: height)
        #expect(planar.y == y)
        #expect(planar.u == u)
        #expect(planar.v == v)
        let uv = pseudoRandomBytes(2 * cw * ch, seed: 4)
        let split = i420(fromNV12: y, uv, width: width, height: height)
        let joined = nv12(fromI420: split.y, split.u, split.v, width: width, height: height)
        #expect(joined.uv == uv)
    }
}
