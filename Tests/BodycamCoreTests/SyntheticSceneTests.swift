import Testing

@testable import BodycamCore

private func format(_ pixelFormat: PixelFormat, width: Int = 320, height: Int = 180) -> VideoFormat {
    VideoFormat(width: width, height: height, pixelFormat: pixelFormat, frameRate: FrameRate(30))
}

private func render(_ scene: inout SyntheticScene, _ index: Int) -> [UInt8] {
    var frame = [UInt8](repeating: 0, count: scene.format.frameSize)
    frame.withUnsafeMutableBytes { scene.render(frameIndex: index, into: $0) }
    return frame
}

/// The luma sample at (x, y) whatever the layout.
private func luma(_ frame: [UInt8], _ format: VideoFormat, _ x: Int, _ y: Int) -> Int {
    switch format.pixelFormat {
    case .yuyv: return Int(frame[(y * format.width + x) * 2])
    case .nv12, .i420: return Int(frame[y * format.width + x])
    }
}

private func meanLuma(_ frame: [UInt8], _ format: VideoFormat) -> Double {
    var sum = 0
    for y in 0..<format.height {
        for x in 0..<format.width { sum += luma(frame, format, x, y) }
    }
    return Double(sum) / Double(format.width * format.height)
}

@Suite("SyntheticScene")
struct SyntheticSceneTests {
    @Test("same seed and index render identical bytes; another seed renders others", arguments: PixelFormat.allCases)
    func deterministic(pixelFormat: PixelFormat) {
        var a = SyntheticScene(format: format(pixelFormat), seed: 42)
        var b = SyntheticScene(format: format(pixelFormat), seed: 42)
        var c = SyntheticScene(format: format(pixelFormat), seed: 43)
        let frame = render(&a, 17)
        #expect(render(&a, 3) != frame)
        #expect(render(&b, 17) == frame)
        #expect(render(&a, 17) == frame)
        #expect(render(&c, 17) != frame)
    }

    @Test("consecutive frames differ almost everywhere (noise) and the picture moves", arguments: PixelFormat.allCases)
    func moves(pixelFormat: PixelFormat) {
        let fmt = format(pixelFormat)
        var scene = SyntheticScene(format: fmt)
        let f0 = render(&scene, 0)
        let f1 = render(&scene, 1)
        let changed = zip(f0, f1).filter { $0 != $1 }.count
        #expect(changed > f0.count / 2)
        // Noise averages out over a frame, so a mean that moves by whole codes comes from the content.
        let means = stride(from: 0, through: 240, by: 30).map { meanLuma(render(&scene, $0), fmt) }
        #expect(means.max()! - means.min()! > 1)
    }

    @Test("noise is small and changes every frame", arguments: PixelFormat.allCases)
    func noise(pixelFormat: PixelFormat) {
        let fmt = format(pixelFormat)
        var scene = SyntheticScene(format: fmt)
        let box = scene.counterLayout(frameIndex: 0)
        let a = render(&scene, 0)
        let b = render(&scene, 1)
        // The strip of the counter box above the digits is flat (luma 24) apart from the noise.
        var differing = 0
        var seen = Set<Int>()
        for y in box.y..<(box.y + box.padding) {
            for x in box.x..<(box.x + box.width) {
                let va = luma(a, fmt, x, y)
                let vb = luma(b, fmt, x, y)
                #expect((21...27).contains(va))
                #expect((21...27).contains(vb))
                seen.insert(va)
                if va != vb { differing += 1 }
            }
        }
        #expect(seen.count >= 4)
        #expect(differing > box.padding * box.width / 2)
    }

    @Test("the frame counter changes only in the digits that change, 9 → 10", arguments: PixelFormat.allCases)
    func counter(pixelFormat: PixelFormat) {
        let fmt = format(pixelFormat)
        var scene = SyntheticScene(format: fmt)
        let layout = scene.counterLayout(frameIndex: 9)
        #expect(layout.digits == 6)
        #expect(layout.scale == 2)
        let nine = render(&scene, 9)
        let ten = render(&scene, 10)
        /// Luma samples in digit cell `position` that differ by more than noise can explain (2 × 3 codes).
        func bigChanges(inDigit position: Int) -> Int {
            let left = layout.x + layout.padding + position * 6 * layout.scale
            let top = layout.y + layout.padding
            var count = 0
            for y in top..<(top + 7 * layout.scale) {
                for x in left..<(left + 5 * layout.scale)
                where abs(luma(nine, fmt, x, y) - luma(ten, fmt, x, y)) > 6 {
                    count += 1
                }
            }
            return count
        }
        for position in 0..<4 { #expect(bigChanges(inDigit: position) == 0) }
        #expect(bigChanges(inDigit: 4) > 0)  // 0 → 1
        #expect(bigChanges(inDigit: 5) > 0)  // 9 → 0
        // Digits are bright on the dark box: glyph row 1, column 2 is lit in "1" (frame 10) but not in "0".
        let column = layout.x + layout.padding + 4 * 6 * layout.scale + 2 * layout.scale
        let row = layout.y + layout.padding + 1 * layout.scale
        #expect(luma(ten, fmt, column, row) > 200)
        #expect(luma(nine, fmt, column, row) < 40)
    }

    @Test("the counter grows past six digits")
    func longCounter() {
        let scene = SyntheticScene(format: format(.nv12))
        #expect(scene.counterLayout(frameIndex: 999_999).digits == 6)
        #expect(scene.counterLayout(frameIndex: 1_000_000).digits == 7)
        var copy = scene
        _ = render(&copy, 12_345_678)
    }

    @Test("bytes past the frame are left alone", arguments: PixelFormat.allCases)
    func staysInsideFrame(pixelFormat: PixelFormat) {
        let fmt = format(pixelFormat, width: 64, height: 48)
        var scene = SyntheticScene(format: fmt)
        var buffer = [UInt8](repeating: 0xA5, count: fmt.frameSize + 64)
        buffer.withUnsafeMutableBytes { scene.render(frameIndex: 5, into: $0) }
        #expect(buffer[fmt.frameSize...].allSatisfy { $0 == 0xA5 })
        #expect(Array(buffer[..<fmt.frameSize]) == render(&scene, 5))
    }
}

@Suite("SyntheticTone")
struct SyntheticToneTests {
    private func samples(_ tone: inout SyntheticTone, frames: Int) -> [Int16] {
        var out = [Int16](repeating: 0, count: frames * tone.channels)
        out.withUnsafeMutableBufferPointer { tone.fill($0, frames: frames) }
        return out
    }

    @Test("continues across calls exactly as one long call")
    func continuity() {
        var whole = SyntheticTone(sampleRate: 48_000, channels: 2, seed: 9)
        var parts = SyntheticTone(sampleRate: 48_000, channels: 2, seed: 9)
        let one = samples(&whole, frames: 1000)
        let two = samples(&parts, frames: 333) + samples(&parts, frames: 0) + samples(&parts, frames: 667)
        #expect(one == two)
    }

    @Test("a 440 Hz tone at the requested level, with a little independent noise per channel")
    func toneAndNoise() {
        var tone = SyntheticTone(sampleRate: 48_000, channels: 2)
        let pcm = samples(&tone, frames: 48_000)
        let left = stride(from: 0, to: pcm.count, by: 2).map { Int(pcm[$0]) }
        let right = stride(from: 1, to: pcm.count, by: 2).map { Int(pcm[$0]) }
        let peak = left.map(abs).max()!
        #expect(peak > Int(0.25 * 32767) - 10 && peak <= Int(0.26 * 32767) + 1)
        #expect(left != right)
        #expect(zip(left, right).allSatisfy { abs($0 - $1) <= Int(0.02 * 32767) + 1 })
    }

    @Test("frequency: 440 cycles a second")
    func frequency() {
        // Without noise, so that a zero crossing is counted once.
        var tone = SyntheticTone(sampleRate: 48_000, channels: 1, noiseAmplitude: 0)
        let pcm = samples(&tone, frames: 48_000)
        var rising = 0
        for i in 1..<pcm.count where pcm[i - 1] < 0 && pcm[i] >= 0 { rising += 1 }
        // 440 cycles start in the second; the first at sample 0 has no sample before it.
        #expect(rising == 439)
    }

    @Test("silence with noise off is exact zero; odd rates and mono work")
    func silence() {
        var tone = SyntheticTone(sampleRate: 22_050, channels: 1, frequency: 0, amplitude: 0, noiseAmplitude: 0)
        #expect(samples(&tone, frames: 100).allSatisfy { $0 == 0 })
    }
}
