/// Marks the simulated camera and microphone put at every whole second of CLOCK_MONOTONIC: a
/// white square in the picture's bottom-right corner and a loud 1 kHz beep of 50 ms. Both come
/// from the same clock, so in a clip the flash and the beep must coincide: a direct, end-to-end
/// measurement of audio/video sync (the HIL rig does the same with a known sound).
public enum SyncMarks {
    /// Side of the white square, in pixels (even).
    public static func squareSide(height: Int) -> Int { max(8, (height / 8) & ~7) }

    public static let beepFrequency = 1000.0
    public static let beepMilliseconds = 50
    public static let beepAmplitude = 0.8

    /// Whether the frame captured at `time` is the one that carries the second's flash: the first
    /// frame at or after the whole second (with 1 ms of slack for a frame grid that is a few
    /// nanoseconds off the second).
    public static func isFlashFrame(time: MonotonicTime, frameInterval: Int64) -> Bool {
        let phase = (time.nanoseconds + 1_000_000) % 1_000_000_000
        return phase < frameInterval
    }

    /// Paints the white square into a tightly packed frame.
    public static func paintFlash(into buffer: UnsafeMutableRawBufferPointer, format: VideoFormat) {
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let side = squareSide(height: format.height)
        let w = format.width
        let h = format.height
        let x0 = (w - side - 16) & ~1
        let y0 = (h - side - 16) & ~1
        let planes = format.pixelFormat.planes(width: w, height: h)
        for y in y0..<(y0 + side) {
            switch format.pixelFormat {
            case .yuyv:
                let row = base + planes[0].offset + y * planes[0].stride
                for x in stride(from: x0, to: x0 + side, by: 2) {
                    row[x * 2] = 235
                    row[x * 2 + 1] = 128
                    row[x * 2 + 2] = 235
                    row[x * 2 + 3] = 128
                }
            case .nv12, .i420:
                let luma = base + planes[0].offset + y * planes[0].stride
                for x in x0..<(x0 + side) { luma[x] = 235 }
                if y % 2 == 0 {
                    let cy = y / 2
                    if format.pixelFormat == .nv12 {
                        let uv = base + planes[1].offset + cy * planes[1].stride
                        for x in stride(from: x0, to: x0 + side, by: 2) {
                            uv[x] = 128
                            uv[x + 1] = 128
                        }
                    } else {
                        let u = base + planes[1].offset + cy * planes[1].stride
                        let v = base + planes[2].offset + cy * planes[2].stride
                        for x in stride(from: x0 / 2, to: (x0 + side) / 2, by: 1) {
                            u[x] = 128
                            v[x] = 128
                        }
                    }
                }
            }
        }
    }

    /// Adds the beep to the samples of a block whose first sample was captured at `startNs`, one
    /// sample every `sampleNs` nanoseconds (interleaved, `channels` per frame).
    public static func addBeep(
        _ samples: UnsafeMutableBufferPointer<Int16>, frames: Int, channels: Int, startNs: Int64, sampleNs: Double
    ) {
        let beepNs = Int64(beepMilliseconds) * 1_000_000
        for i in 0..<frames {
            let t = startNs + Int64(Double(i) * sampleNs)
            let intoSecond = t % 1_000_000_000
            guard intoSecond < beepNs else { continue }
            let turns = Double(intoSecond) * beepFrequency / 1e9
            let v = beepAmplitude * 32767 * sinTurns(turns - turns.rounded(.down))
            for c in 0..<channels { samples[i * channels + c] = Int16(max(-32768, min(32767, v.rounded()))) }
        }
    }

    /// sin(2π·x) for x in [0, 1), without Foundation (Bhaskara-free: a short Taylor series after
    /// folding into [-π/2, π/2]).
    static func sinTurns(_ x: Double) -> Double {
        var a = x * 2 * Double.pi
        if a > Double.pi { a -= 2 * Double.pi }
        if a > Double.pi / 2 { a = Double.pi - a }
        if a < -Double.pi / 2 { a = -Double.pi - a }
        let a2 = a * a
        return a * (1 - a2 / 6 * (1 - a2 / 20 * (1 - a2 / 42 * (1 - a2 / 72 * (1 - a2 / 110)))))
    }
}
