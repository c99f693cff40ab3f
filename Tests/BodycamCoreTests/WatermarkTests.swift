import Testing

@testable import BodycamCore

/// A frame in its own buffer: luma 128 with tinted chroma (so neutralising it shows), row padding
/// and a guard area after the frame filled with sentinels.
private final class TestFrame {
    static let padByte: UInt8 = 0xEE
    static let guardBytes = 256
    let frame: RawFrame
    let size: Int
    let base: UnsafeMutableRawPointer

    init(_ pixelFormat: PixelFormat, _ width: Int, _ height: Int, rowPadding: Int = 0) {
        let format = VideoFormat(width: width, height: height, pixelFormat: pixelFormat, frameRate: FrameRate(30))
        let ch = (height + 1) / 2
        let tight = pixelFormat == .yuyv ? width * 2 : width
        let stride = tight + rowPadding
        switch pixelFormat {
        case _ where rowPadding == 0: size = format.frameSize
        case .yuyv: size = stride * height
        case .nv12: size = stride * height + stride * ch
        case .i420: size = stride * height + 2 * (stride / 2) * ch
        }
        base = UnsafeMutableRawPointer.allocate(byteCount: size + Self.guardBytes, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: Self.padByte, count: size + Self.guardBytes)
        frame =
            rowPadding == 0
            ? RawFrame(format: format, base: base, time: .zero, sequence: 0, bufferIndex: 0)
            : RawFrame(format: format, base: base, stride: stride, time: .zero, sequence: 0, bufferIndex: 0)
        // Plane by plane (per pixel is slow in debug builds).
        let f = frame
        let cw = (width + 1) / 2
        func fill(_ plane: UnsafeMutableRawPointer?, _ stride: Int, _ rows: Int, _ pattern: [UInt8], _ count: Int) {
            guard let plane else { return }
            for r in 0..<rows {
                let row = plane + r * stride
                for i in 0..<count { row.storeBytes(of: pattern[i % pattern.count], toByteOffset: i, as: UInt8.self) }
            }
        }
        switch pixelFormat {
        case .yuyv:
            fill(f.plane0, f.stride0, height, [128, 96, 128, 160], width * 2)
        case .nv12:
            fill(f.plane0, f.stride0, height, [128], width)
            fill(f.plane1, f.stride1, ch, [96, 160], cw * 2)
        case .i420:
            fill(f.plane0, f.stride0, height, [128], width)
            fill(f.plane1, f.stride1, ch, [96], cw)
            fill(f.plane2, f.stride2, ch, [160], cw)
        }
    }

    deinit { base.deallocate() }

    var width: Int { frame.format.width }
    var height: Int { frame.format.height }

    /// Byte offsets (from `base`) of the luma and chroma samples of pixel (x, y).
    func offsets(_ x: Int, _ y: Int) -> (y: Int, u: Int, v: Int) {
        let f = frame
        let p0 = f.plane0 - base
        switch f.format.pixelFormat {
        case .yuyv:
            let row = p0 + y * f.stride0
            return (row + 2 * x, row + (x & ~1) * 2 + 1, row + (x & ~1) * 2 + 3)
        case .nv12:
            let uv = f.plane1! - base + (y / 2) * f.stride1 + (x / 2) * 2
            return (p0 + y * f.stride0 + x, uv, uv + 1)
        case .i420:
            return (
                p0 + y * f.stride0 + x, f.plane1! - base + (y / 2) * f.stride1 + x / 2,
                f.plane2! - base + (y / 2) * f.stride2 + x / 2
            )
        }
    }

    func byte(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }
    func luma(_ x: Int, _ y: Int) -> UInt8 { byte(offsets(x, y).y) }
    func chroma(_ x: Int, _ y: Int) -> (u: UInt8, v: UInt8) {
        let o = offsets(x, y)
        return (byte(o.u), byte(o.v))
    }
    /// Every byte of the buffer, guard area included.
    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: size + Self.guardBytes)) }

    /// `after` with the bytes of the pixels of `box` (luma and chroma) put back from `before`.
    func restoring(_ box: (x: Int, y: Int, width: Int, height: Int), in after: [UInt8], from before: [UInt8]) -> [UInt8] {
        var out = after
        for y in box.y..<box.y + box.height {
            for x in box.x..<box.x + box.width {
                let o = offsets(x, y)
                out[o.y] = before[o.y]
                out[o.u] = before[o.u]
                out[o.v] = before[o.v]
            }
        }
        return out
    }

    /// Luma of the box's pixels, row by row.
    func lumaIn(_ box: (x: Int, y: Int, width: Int, height: Int)) -> [UInt8] {
        var out: [UInt8] = []
        for y in box.y..<box.y + box.height {
            for x in box.x..<box.x + box.width { out.append(luma(x, y)) }
        }
        return out
    }
}

private let t0 = 1_795_788_309.0  // 2026-11-27 14:05:09Z
private let deviceID = "BC-0042"

private func watermark(_ frame: TestFrame, _ settings: WatermarkSettings = WatermarkSettings(), id: String = deviceID)
    -> Watermark
{
    Watermark(settings: settings, deviceID: id, format: frame.frame.format)
}

/// Draws, then checks the box is inside the frame and aligned, holds only box and text luma with
/// neutral chroma, and that no byte outside it changed. Returns the box.
@discardableResult
private func drawAndCheck(
    _ f: TestFrame, _ wm: Watermark, unixSeconds: Double = t0, trusted: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation
) -> (x: Int, y: Int, width: Int, height: Int) {
    let before = f.bytes
    wm.draw(into: f.frame, unixSeconds: unixSeconds, clockTrusted: trusted)
    let after = f.bytes
    let box = wm.box(clockTrusted: trusted)
    #expect(box.x >= 0 && box.y >= 0, sourceLocation: sourceLocation)
    #expect(box.x + box.width <= f.width && box.y + box.height <= f.height, sourceLocation: sourceLocation)
    #expect(box.width > 0 && box.height > 0, sourceLocation: sourceLocation)
    #expect(box.x % 2 == 0 && box.y % 2 == 0, "box on even column and row", sourceLocation: sourceLocation)
    #expect(box.width % 2 == 0 && box.height % 2 == 0, "even box size", sourceLocation: sourceLocation)
    guard box.x >= 0, box.y >= 0, box.x + box.width <= f.width, box.y + box.height <= f.height else { return box }

    var bright = 0
    var dark = 0
    var other = 0
    var tinted = 0
    for y in box.y..<box.y + box.height {
        for x in box.x..<box.x + box.width {
            switch f.luma(x, y) {
            case Watermark.textLuma: bright += 1
            case Watermark.boxLuma: dark += 1
            default: other += 1
            }
            let c = f.chroma(x, y)
            if c.u != 128 || c.v != 128 { tinted += 1 }
        }
    }
    #expect(bright > 100, "text pixels", sourceLocation: sourceLocation)
    #expect(dark > bright, "box pixels", sourceLocation: sourceLocation)
    #expect(other == 0, "only text and box luma inside the box", sourceLocation: sourceLocation)
    #expect(tinted == 0, "neutral chroma under the box", sourceLocation: sourceLocation)

    #expect(f.restoring(box, in: after, from: before) == before, "bytes changed outside the box", sourceLocation: sourceLocation)
    return box
}

@Suite struct WatermarkTests {
    @Test(arguments: PixelFormat.allCases)
    func drawsTextInTheCornerAndNothingElse(_ pf: PixelFormat) {
        let f = TestFrame(pf, 1280, 720)
        let wm = watermark(f)
        let box = drawAndCheck(f, wm)
        // Bottom-left, small.
        #expect(box.x < 32 && box.y + box.height > 720 - 32)
        #expect(box.width < 1280 / 2 && box.height < 720 / 16)
        #expect(wm.glyphScale == 2)
        #expect(wm.lines(unixSeconds: t0, clockTrusted: true) == ["BC-0042  2026-11-27 14:05:09Z"])
        #expect(wm.lines(unixSeconds: t0, clockTrusted: false) == ["BC-0042  2026-11-27 14:05:09Z CLOCK?"])
        // The untrusted box covers the trusted one (same place, grows to the right).
        let f2 = TestFrame(pf, 1280, 720)
        let untrusted = drawAndCheck(f2, wm, trusted: false)
        #expect(untrusted.x == box.x && untrusted.y == box.y && untrusted.height == box.height)
        #expect(untrusted.width > box.width)
    }

    @Test(arguments: PixelFormat.allCases)
    func rendersOncePerSecondAndTrustChange(_ pf: PixelFormat) {
        let wm = watermark(TestFrame(pf, 640, 480))
        let a = TestFrame(pf, 640, 480)
        let b = TestFrame(pf, 640, 480)
        let c = TestFrame(pf, 640, 480)
        let d = TestFrame(pf, 640, 480)
        let boxT = drawAndCheck(a, wm, unixSeconds: t0 + 0.001)
        drawAndCheck(b, wm, unixSeconds: t0 + 0.999)
        #expect(a.bytes == b.bytes, "same second, same picture")
        #expect(wm.renderCount == 1)

        drawAndCheck(c, wm, unixSeconds: t0 + 1)
        #expect(wm.renderCount == 2)
        #expect(c.lumaIn(boxT) != a.lumaIn(boxT), "next second, different text")
        #expect(wm.lines(unixSeconds: t0 + 1, clockTrusted: true) == ["BC-0042  2026-11-27 14:05:10Z"])

        let boxU = drawAndCheck(d, wm, unixSeconds: t0 + 1, trusted: false)
        #expect(wm.renderCount == 3)
        let brightT = c.lumaIn(boxU).filter { $0 == Watermark.textLuma }.count
        let brightU = d.lumaIn(boxU).filter { $0 == Watermark.textLuma }.count
        #expect(brightU > brightT + 100, "CLOCK? and the dashed border add bright pixels")
        // The border is dashed: the top row alternates between bright and dark.
        var transitions = 0
        for x in boxU.x + 1..<boxU.x + boxU.width where d.luma(x, boxU.y) != d.luma(x - 1, boxU.y) { transitions += 1 }
        #expect(transitions > 10)
        // The trusted box has no border.
        #expect((boxT.x..<boxT.x + boxT.width).allSatisfy { c.luma($0, boxT.y) == Watermark.boxLuma })

        // Flipping back re-renders; frames within a second stay identical after the flip.
        let e = TestFrame(pf, 640, 480)
        drawAndCheck(e, wm, unixSeconds: t0 + 1.5, trusted: true)
        #expect(wm.renderCount == 4)
        #expect(e.bytes == c.bytes)
    }

    @Test(arguments: WatermarkSettings.Corner.allCases, PixelFormat.allCases)
    func eachCornerPutsTheTextThere(_ corner: WatermarkSettings.Corner, _ pf: PixelFormat) {
        let f = TestFrame(pf, 640, 480)
        let wm = watermark(f, WatermarkSettings(corner: corner))
        for trusted in [true, false] {
            let g = TestFrame(pf, 640, 480)
            let box = drawAndCheck(g, wm, trusted: trusted)
            let left = box.x <= 8
            let right = box.x + box.width >= 640 - 8
            let top = box.y <= 8
            let bottom = box.y + box.height >= 480 - 8
            switch corner {
            case .topLeft: #expect(left && top && !right && !bottom)
            case .topRight: #expect(right && top && !left && !bottom)
            case .bottomLeft: #expect(left && bottom && !right && !top)
            case .bottomRight: #expect(right && bottom && !left && !top)
            }
        }
    }

    @Test(arguments: PixelFormat.allCases)
    func disabledDrawsNothing(_ pf: PixelFormat) {
        let f = TestFrame(pf, 320, 240)
        let before = f.bytes
        let wm = watermark(f, WatermarkSettings(enabled: false))
        wm.draw(into: f.frame, unixSeconds: t0, clockTrusted: false)
        wm.draw(into: f.frame, unixSeconds: t0 + 1, clockTrusted: true)
        #expect(f.bytes == before)
        #expect(wm.renderCount == 0)
    }

    @Test(arguments: PixelFormat.allCases)
    func smallestFrameHoldsTheWholeText(_ pf: PixelFormat) {
        for corner in WatermarkSettings.Corner.allCases {
            let wm = watermark(TestFrame(pf, 160, 120), WatermarkSettings(corner: corner))
            #expect(wm.glyphScale == 1)
            drawAndCheck(TestFrame(pf, 160, 120), wm, trusted: true)
            drawAndCheck(TestFrame(pf, 160, 120), wm, trusted: false)
            #expect(wm.lines(unixSeconds: t0, clockTrusted: false) == ["BC-0042", "2026-11-27 14:05:09Z", "CLOCK?"])
        }
        // A device id too long for a line is broken, not cut.
        let long = "REGIONAL-POLICE-UNIT-0042-CAM-17"
        let wm = watermark(TestFrame(pf, 160, 120), id: long)
        drawAndCheck(TestFrame(pf, 160, 120), wm, trusted: false)
        let lines = wm.lines(unixSeconds: t0, clockTrusted: false)
        #expect(lines.prefix(2).joined() == long)
        #expect(lines.dropFirst(2) == ["2026-11-27 14:05:09Z", "CLOCK?"])
    }

    @Test(arguments: PixelFormat.allCases)
    func oddAndSmallSizesStayInside(_ pf: PixelFormat) {
        // YUYV needs an even width (pixel pairs); 4:2:0 takes odd sizes (chroma rounded up).
        let sizes = [(160, 120), (161, 121), (176, 144), (201, 151), (641, 361)]
        for (w, h) in sizes where pf != .yuyv || w % 2 == 0 {
            let format = VideoFormat(width: w, height: h, pixelFormat: pf, frameRate: FrameRate(30))
            for corner in WatermarkSettings.Corner.allCases {
                for scale in [0, 3, 40] {
                    let wm = Watermark(settings: WatermarkSettings(corner: corner, scale: scale), deviceID: deviceID, format: format)
                    drawAndCheck(TestFrame(pf, w, h), wm, trusted: false)
                    drawAndCheck(TestFrame(pf, w, h), wm, trusted: true)
                }
            }
        }
    }

    @Test(arguments: PixelFormat.allCases, WatermarkSettings.Corner.allCases)
    func stridesWiderThanTheRowAreHonoured(_ pf: PixelFormat, _ corner: WatermarkSettings.Corner) {
        let settings = WatermarkSettings(corner: corner)
        let padded = TestFrame(pf, 320, 240, rowPadding: 96)
        let tight = TestFrame(pf, 320, 240)
        let wm = watermark(tight, settings)
        #expect(padded.frame.stride0 > (pf == .yuyv ? 640 : 320))
        // drawAndCheck compares every byte outside the box, the row padding included.
        let box = drawAndCheck(padded, wm, trusted: false)
        drawAndCheck(tight, wm, trusted: false)
        #expect(padded.lumaIn(box) == tight.lumaIn(box))
        // Padding bytes of every plane still hold the sentinel.
        let f = padded.frame
        let planes: [(UnsafeMutableRawPointer?, Int, Int, Int)] =
            switch pf {
            case .yuyv: [(f.plane0, f.stride0, 640, 240)]
            case .nv12: [(f.plane0, f.stride0, 320, 240), (f.plane1, f.stride1, 320, 120)]
            case .i420: [(f.plane0, f.stride0, 320, 240), (f.plane1, f.stride1, 160, 120), (f.plane2, f.stride2, 160, 120)]
            }
        for (plane, stride, rowBytes, rows) in planes {
            guard let plane else { continue }
            for r in 0..<rows {
                for i in rowBytes..<stride {
                    #expect(plane.load(fromByteOffset: r * stride + i, as: UInt8.self) == TestFrame.padByte)
                }
            }
        }
    }

    @Test func scaleFollowsTheFrameHeightOrTheSetting() {
        func scale(_ w: Int, _ h: Int, _ s: Int = 0) -> Int {
            watermark(TestFrame(.nv12, w, h), WatermarkSettings(scale: s)).glyphScale
        }
        #expect(scale(160, 120) == 1)
        #expect(scale(640, 480) == 1)
        #expect(scale(1280, 720) == 2)
        #expect(scale(1920, 1080) == 3)
        #expect(scale(1280, 720, 3) == 3)
        // Too big to fit: wrapped first, then made smaller until it does.
        let wm = watermark(TestFrame(.nv12, 640, 480), WatermarkSettings(scale: 4))
        #expect(wm.glyphScale == 4)
        #expect(wm.lines(unixSeconds: t0, clockTrusted: false) == ["BC-0042", "2026-11-27 14:05:09Z", "CLOCK?"])
        #expect(scale(640, 480, 100) < 100)
    }

    @Test func timeMatchesUTCFormat() {
        let wm = watermark(TestFrame(.i420, 640, 480), id: "")
        for t in [0.0, 0.999_999, 951_782_400.5, 1_795_788_309.999_9, 4_102_444_799, 253_402_300_799] {
            let iso = UTCFormat.iso8601(t)
            let expected = String(iso.prefix(10)) + " " + String(iso.dropFirst(11).prefix(8)) + "Z"
            #expect(wm.lines(unixSeconds: t, clockTrusted: true) == [expected])
        }
        for bad in [Double.nan, .infinity, -1, 1e300] {
            #expect(wm.lines(unixSeconds: bad, clockTrusted: true) == ["????-??-?? ??:??:??Z"])
            drawAndCheck(TestFrame(.i420, 640, 480), wm, unixSeconds: bad)
        }
    }

    @Test func deviceIDIsUpperCasedAndUnknownCharactersShowAsQuestionMarks() {
        #expect(Watermark.sanitize("bc-0042_a.b:c/d") == Array("BC-0042_A.B:C/D".utf8))
        #expect(Watermark.sanitize("Kamera Ü1 ") == Array("KAMERA ?1".utf8))
        #expect(Watermark.sanitize(String(repeating: "x", count: 100)).count == Watermark.maxDeviceIDLength)
    }

    @Test func fontCoversTheCharactersAndTellsThemApart() {
        let required = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_:. ?"
        var seen: [[UInt8]: Character] = [:]
        for ch in required {
            let code = ch.asciiValue!
            #expect(WatermarkFont.glyphCode(for: ch.unicodeScalars.first!) == code, "\(ch) has a glyph")
            let rows = (0..<WatermarkFont.glyphHeight).map { WatermarkFont.row($0, of: code) }
            #expect(rows.allSatisfy { $0 < 32 })
            #expect((ch == " ") == rows.allSatisfy { $0 == 0 }, "\(ch) is blank only if it is a space")
            if let other = seen[rows] { Issue.record("\(ch) looks like \(other)") }
            seen[rows] = ch
        }
        #expect(WatermarkFont.glyphCode(for: "q") == UInt8(ascii: "Q"))
        #expect(WatermarkFont.glyphCode(for: "#") == UInt8(ascii: "?"))
        #expect(WatermarkFont.glyphCode(for: "é") == UInt8(ascii: "?"))
    }

    @Test func aFrameOfAnotherFormatIsStillDrawnInside() {
        let wm = watermark(TestFrame(.nv12, 1280, 720), WatermarkSettings(corner: .bottomRight))
        drawAndCheck(TestFrame(.nv12, 1280, 720), wm)
        let box = drawAndCheck(TestFrame(.yuyv, 320, 240), wm)
        #expect(box.x + box.width >= 320 - 8 && box.y + box.height >= 240 - 8)
    }
}
