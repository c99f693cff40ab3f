/// The picture of the `sim` board's simulated camera.
///
/// A textured background pans diagonally, an orange disc and a blue square move across it, a large frame counter
/// sits in the top-left corner, and every byte carries a little temporal noise (at most ±3 codes) so that the encoder
/// works about as hard as on a real sensor. Frames are a pure function of `seed` and the frame index.
///
/// Everything expensive happens in `init`: the background is rendered once into a texture larger than the frame
/// (periodic, so panning wraps without a seam) and the noise into a table a little larger than a frame. Rendering a
/// frame is then a copy of each row from the texture at the frame's pan offset plus the noise table at a per-frame
/// pseudo-random offset, with a few spans painted over it; it allocates nothing.
///
/// A value is used from one thread at a time; copies share the immutable tables.
public struct SyntheticScene: Sendable {
    /// The format `render` writes.
    public let format: VideoFormat

    private let seed: UInt64
    /// Background in `format.pixelFormat`'s layout, `textureWidth` × `textureHeight`, tightly packed.
    private let texture: [UInt8]
    private let textureWidth: Int
    private let textureHeight: Int
    /// Signed noise in two's complement, wide enough for any frame at any offset below `noiseSpan`.
    private let noise: [UInt8]
    private let noiseSpan: Int
    /// Half-widths of the disc's rows, indexed by distance from its centre row.
    private let discHalfWidths: [Int]
    private let planes: [PlaneLayout]

    /// Creates a scene for `format` (width and height even and positive; any pixel format).
    public init(format: VideoFormat, seed: UInt64 = 1) {
        precondition(format.width > 0 && format.height > 0, "scene needs a non-empty frame")
        precondition(format.width % 2 == 0 && format.height % 2 == 0, "scene width and height must be even")
        self.format = format
        self.seed = seed
        let width = format.width
        let height = format.height
        // 1.25× the frame, so the visible part of the background (and with it the picture's mean) changes as it pans.
        textureWidth = (width + width / 4 + 1) & ~1
        textureHeight = (height + height / 4 + 1) & ~1
        texture = Background(width: textureWidth, height: textureHeight, seed: seed)
            .render(format.pixelFormat)

        // Each row of each frame reads its noise at its own random offset in 256 KiB of noise (about
        // 100 rows of 720p): nothing an encoder could exploit as "motion" of the noise, and a table
        // a seventh of a frame's size (the sim camera's memory counts in the recorder's).
        noiseSpan = 1 << 18
        let widestRow = format.pixelFormat.planes(width: width, height: height).map(\.stride).max() ?? 0
        noise = Self.makeNoise(count: widestRow + noiseSpan, seed: seed ^ 0x6E6F_6973_6521)

        let radius = max(2, height / 8)
        discHalfWidths = (0...radius).map { dy in
            Int((Double(radius * radius - dy * dy)).squareRoot().rounded())
        }

        let out = format.pixelFormat.planes(width: width, height: height)
        let tex = format.pixelFormat.planes(width: textureWidth, height: textureHeight)
        let kinds: [PlaneKind]
        switch format.pixelFormat {
        case .yuyv: kinds = [.packed]
        case .nv12: kinds = [.luma, .chromaPairs]
        case .i420: kinds = [.luma, .chromaU, .chromaV]
        }
        planes = kinds.indices.map { PlaneLayout(kind: kinds[$0], output: out[$0], texture: tex[$0]) }
    }

    /// Renders frame number `frameIndex` into `buffer` (at least `format.frameSize` bytes, tightly packed planes as
    /// in ``PixelFormat/planes(width:height:)``).
    public mutating func render(frameIndex: Int, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(frameIndex >= 0, "frame index must not be negative")
        precondition(buffer.count >= format.frameSize, "buffer smaller than a frame")
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let shapes = Shapes(format: format, frameIndex: frameIndex, discRadius: discHalfWidths.count - 1)
        let counter = counterLayout(frameIndex: frameIndex)
        // Two pixels a frame sideways keeps every 4:2:x chroma sample on a whole texture sample.
        let panX = (2 * frameIndex) % textureWidth
        let panY = frameIndex % textureHeight
        let frameKey = mix(seed &+ UInt64(frameIndex) &* 0x9E37_79B9_7F4A_7C15)
        let span = UInt64(noiseSpan + 1)

        texture.withUnsafeBufferPointer { tex in
            noise.withUnsafeBufferPointer { nz in
                discHalfWidths.withUnsafeBufferPointer { disc in
                    for plane in planes {
                        let out = plane.output
                        let rowBytes = out.stride
                        let texStride = plane.texture.stride
                        let shiftX = plane.kind.bytes(forPixels: panX)
                        let shiftY = panY / plane.kind.rowsPerSample
                        for row in 0..<out.rows {
                            let dst = base + out.offset + row * rowBytes
                            let rowKey = UInt64(truncatingIfNeeded: out.offset + row) &* 0xD6E8_FEB8_6659_FD93
                            let nzRow = nz.baseAddress! + Int(truncatingIfNeeded: mix(frameKey ^ rowKey) % span)
                            let texRow = tex.baseAddress! + plane.texture.offset
                                + ((row + shiftY) % plane.texture.rows) * texStride
                            // The texture is periodic across its width: copy up to its right edge, then wrap.
                            let first = min(rowBytes, texStride - shiftX)
                            addRow(dst, texRow + shiftX, nzRow, count: first)
                            addRow(dst + first, texRow, nzRow + first, count: rowBytes - first)

                            let y = row * plane.kind.rowsPerSample
                            let paint = Painter(kind: plane.kind, row: dst, noise: nzRow, width: format.width)
                            paintShapes(shapes, y: y, disc: disc, with: paint)
                            paintCounter(counter, y: y, with: paint)
                        }
                    }
                }
            }
        }
    }

    // MARK: - Overlays

    private func paintShapes(_ s: Shapes, y: Int, disc: UnsafeBufferPointer<Int>, with paint: Painter) {
        if y >= s.squareY && y < s.squareY + s.squareSide {
            paint.span(s.squareX, s.squareX + s.squareSide, Shapes.squareColor)
        }
        let dy = y < s.discY ? s.discY - y : y - s.discY
        if dy < disc.count {
            let half = disc[dy]
            paint.span(s.discX - half, s.discX + half + 1, Shapes.discColor)
        }
    }

    private func paintCounter(_ c: CounterLayout, y: Int, with paint: Painter) {
        guard y >= c.y && y < c.y + c.height else { return }
        paint.span(c.x, c.x + c.width, CounterLayout.boxColor)
        let glyphRow = (y - c.y - c.padding) / c.scale
        guard y - c.y >= c.padding, glyphRow < 7 else { return }
        var value = c.value
        // Right to left, so the number needs no digit buffer.
        for position in stride(from: c.digits - 1, through: 0, by: -1) {
            let bits = Glyphs.row(glyphRow, ofDigit: value % 10)
            value /= 10
            let left = c.x + c.padding + position * 6 * c.scale
            for column in 0..<5 where bits & (0b10000 >> column) != 0 {
                paint.lumaSpan(left + column * c.scale, left + (column + 1) * c.scale, CounterLayout.digitLuma)
            }
        }
    }

    /// Where the frame counter goes: top-left, digits 5×7 cells of `scale` pixels, at least six digits.
    struct CounterLayout {
        fileprivate static let boxColor = Color(y: 24, u: 128, v: 128)
        fileprivate static let digitLuma: UInt8 = 228

        var value: Int
        var digits: Int
        var scale: Int
        var padding: Int
        var x: Int
        var y: Int
        var width: Int { 2 * padding + digits * 6 * scale - scale }
        var height: Int { 2 * padding + 7 * scale }
    }

    /// The counter's geometry for `frameIndex` (internal so that tests can look at exactly that region).
    func counterLayout(frameIndex: Int) -> CounterLayout {
        // About 1/13 of the frame height per digit: 56 px at 720p, big enough to read in a thumbnail.
        let scale = max(1, format.height / 90)
        var digits = 1
        var rest = frameIndex / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let margin = 2 * scale
        return CounterLayout(
            value: frameIndex, digits: max(6, digits), scale: scale, padding: scale, x: margin, y: margin)
    }

    // MARK: - Tables

    private static func makeNoise(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var i = 0
            while i < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var bits = mix(state)
                // Six fair coin flips minus 3: binomial in -3...3, peaked at 0 (σ ≈ 1.2 codes), like mild sensor
                // noise. Ten draws per 64-bit word.
                for _ in 0..<10 where i < count {
                    let n = (bits & 63).nonzeroBitCount - 3
                    bits >>= 6
                    buffer[i] = UInt8(truncatingIfNeeded: n)
                    i += 1
                }
            }
            initialized = count
        }
    }
}

/// The `sim` board's simulated microphone: a sine tone plus a little white noise, as interleaved 16-bit PCM.
///
/// Successive ``fill(_:frames:)`` calls continue the waveform where the last one stopped (no click at buffer
/// boundaries), and the output is a pure function of the parameters and the number of frames produced so far.
public struct SyntheticTone: Sendable {
    public let sampleRate: Int
    public let channels: Int
    /// Tone frequency in Hz.
    public let frequency: Double
    /// Peak of the tone as a fraction of full scale.
    public let amplitude: Double
    /// Peak of the noise as a fraction of full scale (uniform, independent per channel).
    public let noiseAmplitude: Double

    /// Phase in turns (0..<1); kept as a fraction of a cycle so it never loses precision however long the tone runs.
    private var phase: Double = 0
    private let phaseStep: Double
    private var noiseState: UInt64

    /// Creates a tone generator; `amplitude + noiseAmplitude` beyond 1 clips.
    public init(
        sampleRate: Int, channels: Int, frequency: Double = 440, amplitude: Double = 0.25,
        noiseAmplitude: Double = 0.01, seed: UInt64 = 1
    ) {
        precondition(sampleRate > 0 && channels > 0, "sample rate and channel count must be positive")
        precondition(frequency >= 0 && frequency.isFinite, "frequency must be finite and non-negative")
        self.sampleRate = sampleRate
        self.channels = channels
        self.frequency = frequency
        self.amplitude = amplitude
        self.noiseAmplitude = noiseAmplitude
        phaseStep = (frequency / Double(sampleRate)).truncatingRemainder(dividingBy: 1)
        noiseState = seed
    }

    /// Writes `frames` frames (`frames * channels` samples, interleaved) to the start of `samples`.
    public mutating func fill(_ samples: UnsafeMutableBufferPointer<Int16>, frames: Int) {
        precondition(frames >= 0 && samples.count >= frames * channels, "buffer smaller than frames × channels")
        let toneScale = amplitude * 32767
        // 2^-52 maps a 53-bit random integer to [0, 2); minus 1 (both scaled) gives [-1, 1).
        let noiseScale = noiseAmplitude * 32767 * 0x1p-52
        var index = 0
        for _ in 0..<frames {
            let tone = toneScale * sine(turns: phase)
            for _ in 0..<channels {
                noiseState &+= 0x9E37_79B9_7F4A_7C15
                let noise = Double(mix(noiseState) >> 11) * noiseScale - noiseAmplitude * 32767
                samples[index] = Int16(min(max((tone + noise).rounded(), -32768), 32767))
                index += 1
            }
            phase += phaseStep
            if phase >= 1 { phase -= 1 }
        }
    }
}

// MARK: - Layout and painting helpers

/// How a plane's bytes map to pixels.
private enum PlaneKind {
    /// YUYV: `Y0 U Y1 V` per pixel pair.
    case packed
    case luma
    /// NV12 chroma: `U V` per 2×2 block.
    case chromaPairs
    case chromaU
    case chromaV

    /// Source rows per plane row.
    var rowsPerSample: Int {
        switch self {
        case .packed, .luma: return 1
        case .chromaPairs, .chromaU, .chromaV: return 2
        }
    }

    /// Bytes in this plane spanned by `pixels` (even) pixels of a row.
    func bytes(forPixels pixels: Int) -> Int {
        switch self {
        case .packed: return pixels * 2
        case .luma, .chromaPairs: return pixels
        case .chromaU, .chromaV: return pixels / 2
        }
    }
}

private struct PlaneLayout {
    var kind: PlaneKind
    var output: PixelFormat.Plane
    var texture: PixelFormat.Plane
}

private struct Color {
    var y: UInt8
    var u: UInt8
    var v: UInt8
}

/// Paints horizontal spans of one plane row, adding that row's noise so overlays look as noisy as the background.
private struct Painter {
    let kind: PlaneKind
    let row: UnsafeMutablePointer<UInt8>
    let noise: UnsafePointer<UInt8>
    let width: Int

    /// Pixels `from..<to` (clipped to the frame) in `color`.
    @inline(__always)
    func span(_ from: Int, _ to: Int, _ color: Color) {
        let x0 = max(0, from)
        let x1 = min(width, to)
        guard x0 < x1 else { return }
        // A chroma sample covers a pixel pair; it takes the colour when either pixel of the pair is inside.
        let c0 = x0 / 2
        let c1 = (x1 + 1) / 2
        switch kind {
        case .packed:
            for x in x0..<x1 { row[2 * x] = color.y &+ noise[2 * x] }
            for c in c0..<c1 {
                row[4 * c + 1] = color.u &+ noise[4 * c + 1]
                row[4 * c + 3] = color.v &+ noise[4 * c + 3]
            }
        case .luma:
            for x in x0..<x1 { row[x] = color.y &+ noise[x] }
        case .chromaPairs:
            for c in c0..<c1 {
                row[2 * c] = color.u &+ noise[2 * c]
                row[2 * c + 1] = color.v &+ noise[2 * c + 1]
            }
        case .chromaU:
            for c in c0..<c1 { row[c] = color.u &+ noise[c] }
        case .chromaV:
            for c in c0..<c1 { row[c] = color.v &+ noise[c] }
        }
    }

    /// Luma only, for the digits drawn on the (neutral) counter box.
    @inline(__always)
    func lumaSpan(_ from: Int, _ to: Int, _ luma: UInt8) {
        let x0 = max(0, from)
        let x1 = min(width, to)
        guard x0 < x1 else { return }
        switch kind {
        case .packed:
            for x in x0..<x1 { row[2 * x] = luma &+ noise[2 * x] }
        case .luma:
            for x in x0..<x1 { row[x] = luma &+ noise[x] }
        case .chromaPairs, .chromaU, .chromaV:
            break
        }
    }
}

/// `dst[i] = src[i] + noise[i]` with wrapping; texture and overlay values stay ≥ 4 codes away from 0 and 255 so
/// the wrap never happens in practice, and the plain loop vectorises.
@inline(__always)
private func addRow(
    _ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafePointer<UInt8>, _ noise: UnsafePointer<UInt8>, count: Int
) {
    var i = 0
    while i < count {
        dst[i] = src[i] &+ noise[i]
        i &+= 1
    }
}

/// Positions of the moving shapes in frame `frameIndex`.
private struct Shapes {
    static let discColor = Color(y: 152, u: 54, v: 186)  // orange
    static let squareColor = Color(y: 84, u: 196, v: 110)  // blue

    var discX: Int
    var discY: Int
    var squareX: Int
    var squareY: Int
    var squareSide: Int

    init(format: VideoFormat, frameIndex: Int, discRadius: Int) {
        let w = format.width
        let h = format.height
        // The disc follows a Lissajous figure (periods 240 and 170 frames); the square slides back and forth along
        // the lower third in 300 frames. Both keep moving at any frame rate the sim board uses.
        let t = Double(frameIndex)
        discX = w / 2 + Int((Double(w / 2 - discRadius) * sine(turns: t / 240)).rounded())
        discY = h / 2 + Int((Double(h / 2 - discRadius) * sine(turns: t / 170 + 0.125)).rounded())
        squareSide = max(2, h / 6)
        let travel = max(1, w - squareSide)
        let phase = frameIndex % 300
        let along = phase < 150 ? phase : 300 - phase
        squareX = travel * along / 150
        squareY = h * 2 / 3
    }
}

/// 5×7 digits, one 5-bit row each (bit 4 is the leftmost column).
private enum Glyphs {
    static func row(_ row: Int, ofDigit digit: Int) -> Int {
        let rows: UInt64
        switch digit {
        case 0: rows = 0x0E_11_13_15_19_11_0E
        case 1: rows = 0x04_0C_04_04_04_04_0E
        case 2: rows = 0x0E_11_01_02_04_08_1F
        case 3: rows = 0x1F_02_04_02_01_11_0E
        case 4: rows = 0x02_06_0A_12_1F_02_02
        case 5: rows = 0x1F_10_1E_01_01_11_0E
        case 6: rows = 0x06_08_10_1E_11_11_0E
        case 7: rows = 0x1F_01_02_04_08_08_08
        case 8: rows = 0x0E_11_11_0E_11_11_0E
        default: rows = 0x0E_11_11_0F_01_02_0C
        }
        return Int((rows >> UInt64(8 * (6 - row))) & 0x1F)
    }
}

/// The periodic background: a checkerboard of tinted tiles with gradients, stripes and two diagonal waves whose
/// periods divide the texture, so that it wraps seamlessly in both directions.
private struct Background {
    let width: Int
    let height: Int
    let tilesX: Int
    let tilesY: Int
    let tileShade: [Int]
    let tileU: [Int]
    let tileV: [Int]
    /// sin/cos of 2π·k·x/width (k = 7 and −5) and of 2π·k·y/height (k = 3 and 11): the waves sin(a + b) are
    /// separable, so the whole texture needs only these 8 short tables of sines.
    let waves: [[Double]]

    init(width: Int, height: Int, seed: UInt64) {
        self.width = width
        self.height = height
        // An even number of tiles keeps the checkerboard continuous across the wrap.
        tilesX = max(2, (width / 96) & ~1)
        tilesY = max(2, (height / 96) & ~1)
        var shade = [Int]()
        var u = [Int]()
        var v = [Int]()
        var state = seed ^ 0x7469_6C65
        for _ in 0..<(tilesX * tilesY) {
            state &+= 0x9E37_79B9_7F4A_7C15
            let r = mix(state)
            shade.append(Int(r & 31) - 16)
            u.append(Int((r >> 8) & 63) - 32)
            v.append(Int((r >> 16) & 63) - 32)
        }
        tileShade = shade
        tileU = u
        tileV = v
        var tables = [[Double]]()
        for (k, n) in [(7, width), (-5, width), (3, height), (11, height)] {
            tables.append((0..<n).map { sine(turns: Double(k * $0) / Double(n)) })
            tables.append((0..<n).map { sine(turns: Double(k * $0) / Double(n) + 0.25) })
        }
        waves = tables
    }

    /// (Y, U, V) at texture pixel (x, y), all kept within 20...235 so that ±3 noise never wraps.
    func sample(_ x: Int, _ y: Int) -> Color {
        let tx = x * tilesX / width
        let ty = y * tilesY / height
        let tile = ty * tilesX + tx
        let localX = x - (tx * width + tilesX - 1) / tilesX
        let localY = y - (ty * height + tilesY - 1) / tilesY
        let wave1 = waves[0][x] * waves[5][y] + waves[1][x] * waves[4][y]  // sin(2π(7x/W + 3y/H))
        let wave2 = waves[2][x] * waves[7][y] + waves[3][x] * waves[6][y]  // sin(2π(−5x/W + 11y/H))
        var luma = (tx + ty) % 2 == 0 ? 96 : 150
        luma += tileShade[tile] + (localX + localY) / 6 - 12
        luma += Int(14 * wave1 + 9 * wave2)
        // Fine diagonal stripes in a third of the tiles and dark grout lines give the encoder sharp edges to track.
        if tile % 3 == 0 && (localX + localY) & 8 != 0 { luma += 18 }
        if localX < 2 || localY < 2 { luma = 40 }
        let u = 128 + tileU[tile] + Int(12 * wave2)
        let v = 128 + tileV[tile] + Int(12 * wave1)
        return Color(y: clampCode(luma), u: clampCode(u), v: clampCode(v))
    }

    /// The texture in `format`'s layout.
    func render(_ format: PixelFormat) -> [UInt8] {
        let planes = format.planes(width: width, height: height)
        var out = [UInt8](repeating: 128, count: format.frameSize(width: width, height: height))
        let cw = width / 2
        switch format {
        case .yuyv:
            for y in 0..<height {
                for p in 0..<cw {
                    let i = y * width * 2 + p * 4
                    let c = sample(2 * p, y)
                    out[i] = c.y
                    out[i + 1] = c.u
                    out[i + 2] = sample(2 * p + 1, y).y
                    out[i + 3] = c.v
                }
            }
        case .nv12, .i420:
            for y in 0..<height {
                for x in 0..<width { out[y * width + x] = sample(x, y).y }
            }
            for cy in 0..<(height / 2) {
                for cx in 0..<cw {
                    let c = sample(2 * cx, 2 * cy)
                    if format == .nv12 {
                        out[planes[1].offset + cy * planes[1].stride + 2 * cx] = c.u
                        out[planes[1].offset + cy * planes[1].stride + 2 * cx + 1] = c.v
                    } else {
                        out[planes[1].offset + cy * planes[1].stride + cx] = c.u
                        out[planes[2].offset + cy * planes[2].stride + cx] = c.v
                    }
                }
            }
        }
        return out
    }
}

@inline(__always)
private func clampCode(_ value: Int) -> UInt8 {
    UInt8(min(max(value, 20), 235))
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of a 64-bit counter.
@inline(__always)
private func mix(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// sin(2π·turns) for any finite `turns`, good to about 1e-11: the stdlib has no `sin` without Foundation or libm.
private func sine(turns: Double) -> Double {
    var t = turns - turns.rounded()  // -0.5...0.5
    // Fold into -0.25...0.25, where the Taylor series below converges quickly; sin(π - x) = sin(x).
    if t > 0.25 {
        t = 0.5 - t
    } else if t < -0.25 {
        t = -0.5 - t
    }
    let x = 2 * Double.pi * t
    let x2 = x * x
    var p = 1.0 / 1_307_674_368_000  // 1/15!
    p = p * -x2 + 1.0 / 6_227_020_800  // 1/13!
    p = p * -x2 + 1.0 / 39_916_800
    p = p * -x2 + 1.0 / 362_880
    p = p * -x2 + 1.0 / 5040
    p = p * -x2 + 1.0 / 120
    p = p * -x2 + 1.0 / 6
    p = p * -x2 + 1
    return x * p
}
