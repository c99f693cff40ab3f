import BodycamCore

/// A small, fast, seedable generator (SplitMix64): every sequence is a pure function of its seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func uniform(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &self) }

    /// Roughly normal (sum of four uniforms), mean 0, standard deviation 1.
    public mutating func gauss() -> Double {
        var s = 0.0
        for _ in 0..<4 { s += Double(next() >> 11) * 0x1p-53 }
        return (s - 2) * 1.7320508
    }
}

/// A periodic grey world the camera looks at: smooth blobs at several scales, hard-edged
/// rectangles and lines (walls, windows, poles), so the picture has both flat areas and edges,
/// like a street or a room. `style` changes the mix, for footage the detector was not tuned on.
public final class World: @unchecked Sendable {
    public let width: Int
    public let height: Int
    let pixels: [Float]

    public init(width: Int, height: Int, seed: UInt64, style: Int = 0) {
        self.width = width
        self.height = height
        var rng = SeededRandom(seed: seed)
        var img = [Float](repeating: 0, count: width * height)
        // Value noise on periodic lattices.
        let octaves: [(cells: Int, amp: Float)] = style == 0
            ? [(4, 55), (9, 30), (23, 16), (57, 8)]
            : [(3, 40), (7, 38), (17, 22), (41, 12), (97, 5)]
        for (cells, amp) in octaves {
            let gx = cells * 2, gy = cells
            let lattice = (0..<(gx * gy)).map { _ in Float(rng.uniform(-1...1)) }
            for y in 0..<height {
                let fy = Float(y) / Float(height) * Float(gy)
                let y0 = Int(fy) % gy, y1 = (y0 + 1) % gy
                var ty = fy - Float(Int(fy))
                ty = ty * ty * (3 - 2 * ty)
                for x in 0..<width {
                    let fx = Float(x) / Float(width) * Float(gx)
                    let x0 = Int(fx) % gx, x1 = (x0 + 1) % gx
                    var tx = fx - Float(Int(fx))
                    tx = tx * tx * (3 - 2 * tx)
                    let a = lattice[y0 * gx + x0] + tx * (lattice[y0 * gx + x1] - lattice[y0 * gx + x0])
                    let b = lattice[y1 * gx + x0] + tx * (lattice[y1 * gx + x1] - lattice[y1 * gx + x0])
                    img[y * width + x] += amp * (a + ty * (b - a))
                }
            }
        }
        // Rectangles (facades, doors, windows) and thin lines (poles, frames).
        let rects = style == 0 ? width * height / 9000 : width * height / 6000
        for _ in 0..<rects {
            let w = Int(rng.uniform(6...Double(width / 8))), h = Int(rng.uniform(6...Double(height / 5)))
            let x0 = Int(rng.uniform(0...Double(width - 1))), y0 = Int(rng.uniform(0...Double(height - 1)))
            let v = Float(rng.uniform(-45...45))
            let thin = rng.uniform(0...1) < 0.3
            for y in y0..<(y0 + (thin ? 2 : h)) {
                for x in x0..<(x0 + (thin ? w * 2 : w)) { img[(y % height) * width + (x % width)] += v }
            }
        }
        pixels = img.map { min(235, max(20, 120 + $0)) }
    }

    /// Bilinear sample at world coordinates (wrapping).
    @inline(__always) public func sample(_ x: Double, _ y: Double) -> Float {
        let fx = x - (x / Double(width)).rounded(.down) * Double(width)
        let fy = y - (y / Double(height)).rounded(.down) * Double(height)
        let ix = Int(fx) % width, iy = Int(fy) % height
        let tx = Float(fx - Double(Int(fx))), ty = Float(fy - Double(Int(fy)))
        let ix1 = (ix + 1) % width, iy1 = (iy + 1) % height
        let a = pixels[iy * width + ix] + tx * (pixels[iy * width + ix1] - pixels[iy * width + ix])
        let b = pixels[iy1 * width + ix] + tx * (pixels[iy1 * width + ix1] - pixels[iy1 * width + ix])
        return a + ty * (b - a)
    }
}

/// How the wearer moves the camera.
public enum CameraMotion: String, Sendable, CaseIterable {
    /// On a tripod or a chest mount standing still: sensor noise and a slight tremor only.
    case still
    /// Turning to look around: pans of varying speed in both directions, and a few fast turns.
    case pan
    /// Walking: vertical bob at the step rate, sway, roll, and the scene growing as the wearer moves forward.
    case walk
    /// Running or a shaky hand: fast jitter with motion blur.
    case shake
}

/// A thing that moves on its own through the scene (a person, a vehicle): the activity to find.
public struct MovingObject: Sendable {
    /// World position at `start` and velocity (world pixels per second).
    public var x0: Double, y0: Double, vx: Double, vy: Double
    public var start: Double, end: Double
    /// Half-width and half-height, world pixels.
    public var rx: Double, ry: Double
    /// Brightness relative to 120 and stripe texture amplitude.
    public var level: Float, stripes: Float
    public var ellipse: Bool

    public init(x0: Double, y0: Double, vx: Double, vy: Double, start: Double, end: Double, rx: Double, ry: Double,
                level: Float, stripes: Float, ellipse: Bool) {
        self.x0 = x0; self.y0 = y0; self.vx = vx; self.vy = vy
        self.start = start; self.end = end; self.rx = rx; self.ry = ry
        self.level = level; self.stripes = stripes; self.ellipse = ellipse
    }

    func position(at t: Double) -> (Double, Double)? {
        guard t >= start, t <= end else { return nil }
        let d = t - start
        // A walker bobs a little.
        return (x0 + vx * d, y0 + vy * d + (ellipse ? 2 * sin2pi(d * 1.8) : 0))
    }
}

/// Lighting over time: a global gain and offset (exposure hunting, a light switched on or off, the
/// sun behind a cloud), optionally a soft shadow edge sweeping across the picture.
public struct Lighting: Sendable {
    public var steps: [(time: Double, gain: Double)] = []
    /// Slow ramps: gain(t) *= 1 + amplitude·sin(2π t / period).
    public var rampAmplitude = 0.0, rampPeriod = 20.0
    public var shadowSpeed = 0.0, shadowDepth = 0.0
    public var base = 1.0, offset = 0.0

    public init() {}

    func gain(at t: Double) -> Double {
        var g = base * (1 + rampAmplitude * sin2pi(t / rampPeriod))
        for s in steps where t >= s.time {
            // Auto-exposure answers a step within about half a second, as cameras do.
            let k = min(1, (t - s.time) / 0.5)
            g *= 1 + (s.gain - 1) * (1 - 0.6 * k)
        }
        return g
    }
}

/// sin(2πx) without the C maths library, good to 1e-6.
@inline(__always) func sin2pi(_ x: Double) -> Double {
    var f = x - x.rounded(.down)  // [0, 1)
    var sign = 1.0
    if f >= 0.5 { f -= 0.5; sign = -1 }
    // sin(π·2f) on [0, π): use symmetry around π/2.
    var a = 2 * f  // [0,1) ↦ angle aπ
    if a > 0.5 { a = 1 - a }
    let t = a * Double.pi
    let t2 = t * t
    let s = t * (1 - t2 / 6 * (1 - t2 / 20 * (1 - t2 / 42 * (1 - t2 / 72 * (1 - t2 / 110)))))
    return sign * s
}

@inline(__always) func cos2pi(_ x: Double) -> Double { sin2pi(x + 0.25) }

/// One generated video sequence: a camera moving through a world, objects, light, sensor noise.
public struct VideoScenario: Sendable {
    public var name: String
    public var category: String
    public var duration: Double
    public var motion: CameraMotion
    public var objects: [MovingObject]
    public var lighting = Lighting()
    /// Sensor noise, standard deviation in grey levels (day ≈ 2–3, night ≈ 8–12).
    public var noise: Double
    public var seed: UInt64
    /// Motion strength multiplier (1 = typical for the kind).
    public var intensity: Double
    public var worldStyle: Int

    public init(name: String, category: String, duration: Double, motion: CameraMotion, objects: [MovingObject],
                lighting: Lighting = Lighting(), noise: Double, seed: UInt64, intensity: Double, worldStyle: Int) {
        self.name = name; self.category = category; self.duration = duration; self.motion = motion
        self.objects = objects; self.lighting = lighting; self.noise = noise; self.seed = seed
        self.intensity = intensity; self.worldStyle = worldStyle
    }

    /// Camera pose at `t`: world position of the picture's centre, roll (radians), scale (world
    /// pixels per picture pixel).
    func pose(at t: Double, width: Int) -> (x: Double, y: Double, roll: Double, scale: Double) {
        var rng = SeededRandom(seed: seed ^ 0xCA3E)
        let k = intensity
        // Per-sequence constants drawn from the seed.
        let p1 = rng.uniform(0...1), p2 = rng.uniform(0...1), p3 = rng.uniform(0...1)
        let f1 = rng.uniform(1.6...2.2)  // step rate, Hz
        var x = 0.0, y = 0.0, roll = 0.0, scale = 1.0
        switch motion {
        case .still:
            x = 0.3 * k * sin2pi(0.7 * t + p1)
            y = 0.3 * k * sin2pi(0.9 * t + p2)
        case .pan:
            // Piecewise: speeds change every few seconds; every ~15 s a fast turn.
            var pos = 0.0, tt = 0.0, segment = 0
            var r2 = SeededRandom(seed: seed ^ 0x9A17)
            while tt < t {
                let len = r2.uniform(2...5)
                var speed = r2.uniform(-110...110) * k
                if segment % 5 == 4 { speed = (r2.uniform(0...1) < 0.5 ? -1 : 1) * r2.uniform(220...320) * k }
                let d = min(len, t - tt)
                pos += speed * d
                tt += len
                segment += 1
            }
            x = pos
            y = 6 * k * sin2pi(0.13 * t + p1) + 1.5 * k * sin2pi(f1 * t + p2)
            roll = 0.01 * intensity * sin2pi(0.2 * t + p3)
        case .walk:
            x = 3 * k * sin2pi(f1 / 2 * t + p1) + 10 * k * sin2pi(0.05 * t + p3)
            y = 4 * k * abs(sin2pi(f1 / 2 * t + p2)) + 2 * k * sin2pi(0.3 * t)
            roll = 0.03 * intensity * sin2pi(f1 / 2 * t + p1)
            // Forward and back along the street: the scene grows and shrinks by up to ±15 %.
            scale = 1 + 0.15 * intensity * sin2pi(t / 30 + p2)
        case .shake:
            var sx = 0.0, sy = 0.0
            for (i, f) in [3.1, 4.7, 7.3].enumerated() {
                sx += 5 * k / Double(i + 1) * sin2pi(f * t + p1 + Double(i) * 0.37)
                sy += 4 * k / Double(i + 1) * sin2pi(f * 1.13 * t + p2 + Double(i) * 0.21)
            }
            x = sx + 6 * k * sin2pi(0.1 * t)
            y = sy
            roll = 0.025 * intensity * sin2pi(2.3 * t + p3)
            scale = 1 + 0.03 * intensity * sin2pi(0.4 * t)
        }
        return (x, y, roll, scale)
    }

    /// Renders the picture at `t` as YUYV into `frame` (`width`×`height`, tightly packed).
    /// Motion blur: the exposure (1/60 s) is sampled at three instants when the camera is shaking.
    public func render(at t: Double, width: Int, height: Int, world: World, into frame: UnsafeMutablePointer<UInt8>,
                       rng: inout SeededRandom) {
        let exposures: [Double] = motion == .shake || motion == .pan ? [-1.0 / 120, 0, 1.0 / 120] : [0]
        // Scene units: the picture is 320 units wide whatever its pixel size; the world has
        // world.width / 1024 texels per unit.
        let unit = 320.0 / Double(width)
        let res = Double(world.width) / 1024
        let poses = exposures.map { e -> (x: Double, y: Double, c: Double, s: Double, k: Double, objs: [(MovingObject, (Double, Double))]) in
            let p = pose(at: t + e, width: width)
            let objs = objects.compactMap { o in o.position(at: t + e).map { (o, $0) } }
            return (p.x, p.y, cos2pi(p.roll / (2 * Double.pi)), sin2pi(p.roll / (2 * Double.pi)), p.scale * unit, objs)
        }
        let gain = Float(lighting.gain(at: t))
        let off = Float(lighting.offset)
        let cx = Double(width) / 2, cy = Double(height) / 2
        let shadowX = lighting.shadowSpeed * t
        for y in 0..<height {
            let row = frame + y * width * 2
            for x in 0..<width {
                var v: Float = 0
                for p in poses {
                    let u = (Double(x) - cx) * p.k, w = (Double(y) - cy) * p.k
                    let wx = p.x + p.c * u - p.s * w, wy = p.y + p.s * u + p.c * w
                    var s = world.sample((wx + 5000) * res, (wy + 3000) * res)
                    for (o, pos) in p.objs {
                        let dx = (wx - pos.0) / o.rx
                        let dy = (wy - pos.1) / o.ry
                        let inside = o.ellipse ? dx * dx + dy * dy <= 1 : abs(dx) <= 1 && abs(dy) <= 1
                        if inside {
                            s = 120 + o.level + o.stripes * (sin2pi(dy * 2.5) > 0 ? 1 : -1)
                        }
                    }
                    v += s
                }
                v /= Float(poses.count)
                var lit = v * gain + off
                if lighting.shadowDepth > 0 {
                    // A soft shadow edge moving across (a cloud, a passing light): darker left of it.
                    let e = (Double(x) * unit - (shadowX.truncatingRemainder(dividingBy: 640) - 160)) / 40
                    let m = e < -1 ? 1.0 : e > 1 ? 0.0 : (1 - e) / 2
                    lit *= Float(1 - lighting.shadowDepth * m)
                }
                lit += Float(noise * rng.gauss())
                let byte = UInt8(max(0, min(255, lit.rounded())))
                row[2 * x] = byte
                row[2 * x + 1] = 128
            }
        }
    }

    /// The intervals in which an object is in the picture and moving: what a detector should find.
    public func labels(width: Int, height: Int, step: Double = 0.05) -> [(start: Double, end: Double)] {
        var out: [(Double, Double)] = []
        for o in objects {
            var first: Double?, last: Double?
            var t = o.start
            while t <= min(o.end, duration) {
                if let pos = o.position(at: t) {
                    let p = pose(at: t, width: width)
                    // Object centre relative to the picture centre, in picture units (320 wide).
                    let dx = (pos.0 - p.x) / p.scale, dy = (pos.1 - p.y) / p.scale
                    // In view once a third of its width is inside the picture.
                    let halfH = 160.0 * Double(height) / Double(width)
                    let vx = 160 + o.rx / p.scale / 3, vy = halfH + o.ry / p.scale / 3
                    if abs(dx) < vx, abs(dy) < vy {
                        if first == nil { first = t }
                        last = t
                    }
                }
                t += step
            }
            if let f = first, let l = last { out.append((f, l)) }
        }
        return out
    }
}
