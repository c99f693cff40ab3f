/// Something the detector noticed: activity in the picture ("video") or a sound ("audio").
public struct ActivityEvent: Sendable, Equatable {
    /// "video" or "audio".
    public var kind: String
    /// For audio: "impulse" (a bang, a slam, a shot) or "loud" (a shout, an alarm, sustained noise).
    public var cause: String?
    /// When the activity began (capture clock).
    public var start: MonotonicTime
    /// When it was last seen; nil while it lasts.
    public var end: MonotonicTime?
    /// Video: the largest fraction of the picture moving on its own (0…1).
    /// Audio: the peak level above the tracked noise floor, in dB.
    public var score: Double
    /// Video: where the moving part was at the peak, as fractions of the picture (x, y, width, height).
    public var region: (x: Double, y: Double, width: Double, height: Double)?

    public init(kind: String, cause: String? = nil, start: MonotonicTime, end: MonotonicTime? = nil,
                score: Double, region: (x: Double, y: Double, width: Double, height: Double)? = nil) {
        self.kind = kind
        self.cause = cause
        self.start = start
        self.end = end
        self.score = score
        self.region = region
    }

    /// The marker kind in a manifest: "video", "audio:impulse", "audio:loud".
    public var markerKind: String { cause.map { "\(kind):\($0)" } ?? kind }

    /// The score as markers, triggers and event logs carry it (three decimals).
    public var roundedScore: Double { (score * 1000).rounded() / 1000 }

    public static func == (l: ActivityEvent, r: ActivityEvent) -> Bool {
        l.kind == r.kind && l.cause == r.cause && l.start == r.start && l.end == r.end && l.score == r.score
            && l.region?.x == r.region?.x && l.region?.y == r.region?.y
            && l.region?.width == r.region?.width && l.region?.height == r.region?.height
    }
}

/// An event opening or closing.
public enum DetectorUpdate: Sendable, Equatable {
    case began(ActivityEvent)
    case ended(ActivityEvent)
}

/// Tuning of the video activity detector (`[detector]` in the config).
public struct VideoActivitySettings: Sendable, Equatable {
    /// Samples per second taken from the camera's frames.
    public var sampleRate: Double = 10
    /// A cell counts as moving when its residual exceeds what noise and the camera's motion explain
    /// by `minExcess` grey levels (or 0.35 × the noise level, if more) plus `ratio − 1` times the
    /// misregistration part.
    public var ratio: Double = 3.0
    public var minExcess: Double = 3.0
    /// An event ends after this long without activity.
    public var quietSeconds: Double = 1.5
    /// Activity must be seen in this many consecutive samples to open an event (1…3). Noise
    /// and aliasing of fine detail flicker from sample to sample; things that move persist.
    public var confirmSamples: Int = 2
    /// Camera motion that the affine model cannot explain this well (median block error, in sample
    /// pixels) makes the sample unreliable: it is skipped rather than read as activity.
    public var maxFitError: Double = 0.75

    public init() {}
}

/// Activity in the scene, measured relative to the camera's own motion.
///
/// At `sampleRate` a ~160-pixel-wide luma image is read from the frame (``LumaSampler``). The
/// camera's motion since the previous sample is estimated as an affine map (``GlobalMotionEstimator``),
/// the previous image is warped by it, and each 10×10 cell is compared with the current image after
/// removing the cell's mean and matching its contrast (so lighting changes cancel). What is left is
/// noise, misregistration at edges (which grows with the cell's texture), and things moving on
/// their own. The first two are estimated from the picture itself in every sample (a noise level
/// and a misregistration gain per unit of gradient, both robust medians over the cells), and a
/// cell counts as moving when its residual is `ratio` times what they explain. Groups of moving
/// cells, seen in `confirmSamples` consecutive samples, open an event; `quietSeconds` without close it.
///
/// One instance per camera, used from one thread; `process` allocates nothing.
public final class VideoActivityDetector {
    public let settings: VideoActivitySettings
    public let sampler: LumaSampler
    private let estimator: GlobalMotionEstimator
    private let current: LumaImage
    private let previous: LumaImage
    private let warped: LumaImage
    private var havePrevious = false
    private var lastSampleTime: MonotonicTime?
    private let interval: Int64
    let cell = 10
    let cellsX: Int
    let cellsY: Int
    /// Per cell: residual, gradient, validity, activity.
    private let residual: UnsafeMutableBufferPointer<Double>
    private let gradient: UnsafeMutableBufferPointer<Double>
    private let valid: UnsafeMutableBufferPointer<Bool>
    private let active: UnsafeMutableBufferPointer<Bool>
    private let scratch: UnsafeMutableBufferPointer<Double>
    /// Tracked noise level (mean absolute residual of a still, flat cell), grey levels.
    public private(set) var noise: Double = 1.0
    /// Camera motion of the last sample (sample pixels at the centre).
    private var lastMotion = (0.0, 0.0)
    /// The sampled picture's own noise (standard deviation), grey levels.
    public private(set) var imageNoise: Double = 1.0
    /// Activity of the last three samples (bit 0 the newest).
    private var recent: UInt8 = 0
    private var firstSeen: MonotonicTime?
    private var lastSeen: MonotonicTime?
    private var open: ActivityEvent?
    /// Facts of the last sample, for tests, the evaluation and `status`.
    public private(set) var lastSample = SampleFacts()

    public struct SampleFacts: Sendable, Equatable {
        public var time = MonotonicTime.zero
        public var reliable = false
        /// Camera motion at the picture's centre, sample pixels (x, y).
        public var motion = (0.0, 0.0)
        public var fitError = 0.0
        public var activeCells = 0
        public var score = 0.0
        public var noise = 0.0
        public var misregistration = 0.0

        public static func == (l: SampleFacts, r: SampleFacts) -> Bool {
            l.time == r.time && l.reliable == r.reliable && l.motion == r.motion && l.fitError == r.fitError
                && l.activeCells == r.activeCells && l.score == r.score
        }
    }

    /// Whether pictures of `format` give a sample image the detector can work on (at least
    /// 40×24: four cells by two, and a motion pyramid three levels deep).
    public static func supports(_ format: VideoFormat) -> Bool {
        let s = LumaSampler(format: format)
        return s.width >= 40 && s.height >= 24
    }

    public init(format: VideoFormat, settings: VideoActivitySettings = VideoActivitySettings()) {
        precondition(Self.supports(format), "picture too small for the video detector")
        self.settings = settings
        sampler = LumaSampler(format: format)
        estimator = GlobalMotionEstimator(width: sampler.width, height: sampler.height)
        current = LumaImage(width: sampler.width, height: sampler.height)
        previous = LumaImage(width: sampler.width, height: sampler.height)
        warped = LumaImage(width: sampler.width, height: sampler.height)
        interval = Int64(1e9 / max(0.1, settings.sampleRate))
        cellsX = sampler.width / cell
        cellsY = sampler.height / cell
        let n = cellsX * cellsY
        residual = .allocate(capacity: n)
        residual.initialize(repeating: 0)
        gradient = .allocate(capacity: n)
        gradient.initialize(repeating: 0)
        valid = .allocate(capacity: n)
        valid.initialize(repeating: false)
        active = .allocate(capacity: n)
        active.initialize(repeating: false)
        scratch = .allocate(capacity: n)
        scratch.initialize(repeating: 0)
    }

    deinit {
        residual.deallocate()
        gradient.deallocate()
        valid.deallocate()
        active.deallocate()
        scratch.deallocate()
    }

    /// Whether a frame captured at `time` would be sampled (so callers can skip work for the rest).
    public func wants(_ time: MonotonicTime) -> Bool {
        guard let last = lastSampleTime else { return true }
        // Half a frame of slack, so 30 fps sampled at 10 Hz takes every third frame, not every fourth.
        return time - last >= interval - interval / 6
    }

    /// Looks at a frame (if it is time for a sample). The frame is only read.
    public func process(_ frame: RawFrame) -> DetectorUpdate? {
        guard wants(frame.time) else { return nil }
        sampler.sample(frame, into: current)
        return process(sampled: frame.time)
    }

    /// Closes an open event (end of input).
    public func finish(at time: MonotonicTime) -> DetectorUpdate? {
        guard var e = open else { return nil }
        e.end = lastSeen ?? time
        open = nil
        return .ended(e)
    }

    private func process(sampled time: MonotonicTime) -> DetectorUpdate? {
        defer {
            previous.copy(from: current)
            havePrevious = true
            lastSampleTime = time
        }
        var facts = SampleFacts()
        facts.time = time
        var seen = false
        // Sensor noise of this picture (low light raises it many times over). Smooth structure
        // cancels in the estimate, but edges add to it a little: the lowest of recent samples counts.
        let sigma = Double(current.noiseSigma())
        imageNoise = havePrevious ? min(sigma, imageNoise + 0.1 * (sigma - imageNoise) + 0.05) : sigma
        if !havePrevious { noise = 1.13 * imageNoise }
        // A long pause (the camera came back, the detector was idle) makes the old image useless.
        if havePrevious, let last = lastSampleTime, time - last < 3 * interval,
            let motion = estimator.estimate(current: current, previous: previous, noise: Float(imageNoise))
        {
            facts.motion = motion.displacement(x: motion.cx, y: motion.cy)
            facts.fitError = estimator.fitError
            // With few textured blocks (a dark or flat scene) the motion is a translation nobody
            // checked; believe it only if it continues the last one (a camera cannot jerk several
            // pixels one way and back within 0.2 s while walking).
            let jump = abs(facts.motion.0 - lastMotion.0) + abs(facts.motion.1 - lastMotion.1)
            let checked = estimator.blockCount >= 6 || jump <= 2
            lastMotion = facts.motion
            // Noise makes block vectors scatter: allow for it.
            if checked, estimator.fitError <= settings.maxFitError + 0.1 * imageNoise {
                facts.reliable = true
                measure(motion, &facts)
                seen = facts.activeCells > 0
            }
        }
        facts.noise = imageNoise
        lastSample = facts
        return decide(seen: seen, facts: facts)
    }

    /// Residual per cell after compensating `motion`, the noise and misregistration model, and
    /// the cells that move on their own.
    private func measure(_ motion: AffineMotion, _ facts: inout SampleFacts) {
        let w = sampler.width, h = sampler.height
        let c = current.pixels.baseAddress!
        let p = previous.pixels.baseAddress!
        let out = warped.pixels.baseAddress!
        // Warp the previous image onto the current one (bilinear); NaN where it has no source.
        for y in 0..<h {
            var (dx, dy) = motion.displacement(x: 0, y: Double(y))
            let ddx = motion.a.1, ddy = motion.a.4
            for x in 0..<w {
                let sx = Double(x) + dx, sy = Double(y) + dy
                dx += ddx
                dy += ddy
                guard sx >= 0, sy >= 0, sx < Double(w - 1), sy < Double(h - 1) else {
                    out[y * w + x] = .nan
                    continue
                }
                let ix = Int(sx), iy = Int(sy)
                let fx = Float(sx - Double(ix)), fy = Float(sy - Double(iy))
                let q = p + iy * w + ix
                let top = q[0] + fx * (q[1] - q[0])
                let bottom = q[w] + fx * (q[w + 1] - q[w])
                out[y * w + x] = top + fy * (bottom - top)
            }
        }
        let n = cellsX * cellsY
        let area = Float(cell * cell)
        var validCount = 0
        for cy in 0..<cellsY {
            for cx in 0..<cellsX {
                let k = cy * cellsX + cx
                var sc: Float = 0, sw: Float = 0, count: Float = 0
                var ok = true
                for y in (cy * cell)..<((cy + 1) * cell) {
                    for x in (cx * cell)..<((cx + 1) * cell) {
                        let wv = out[y * w + x]
                        if wv.isNaN { ok = false; break }
                        sc += c[y * w + x]
                        sw += wv
                        count += 1
                    }
                    if !ok { break }
                }
                valid[k] = ok
                guard ok else { continue }
                let mc = sc / area, mw = sw / area
                var dc: Float = 0, dw: Float = 0, grad: Float = 0
                for y in (cy * cell)..<((cy + 1) * cell) {
                    for x in (cx * cell)..<((cx + 1) * cell) {
                        dc += abs(c[y * w + x] - mc)
                        dw += abs(out[y * w + x] - mw)
                        if x + 1 < w { grad += abs(c[y * w + x + 1] - c[y * w + x]) }
                        if y + 1 < h { grad += abs(c[(y + 1) * w + x] - c[y * w + x]) }
                    }
                }
                // Match the cell's contrast (a light switched on, the exposure adapting), within reason.
                let gain = dw > 1 ? min(1.5, max(0.67, dc / dw)) : 1
                var r: Float = 0
                for y in (cy * cell)..<((cy + 1) * cell) {
                    for x in (cx * cell)..<((cx + 1) * cell) {
                        r += abs((c[y * w + x] - mc) - gain * (out[y * w + x] - mw))
                    }
                }
                residual[k] = Double(r / area)
                gradient[k] = Double(grad / area)
                validCount += 1
            }
        }
        for k in 0..<n { active[k] = false }
        guard validCount >= 6 else { return }
        // Noise: the median residual of the flattest third of the cells.
        var m = 0
        for k in 0..<n where valid[k] { scratch[m] = gradient[k]; m += 1 }
        let flatLimit = Median.select(UnsafeMutableBufferPointer(rebasing: scratch[0..<m]), m / 3)
        m = 0
        for k in 0..<n where valid[k] && gradient[k] <= flatLimit { scratch[m] = residual[k]; m += 1 }
        let frameNoise = max(0.3, Median.of(UnsafeMutableBufferPointer(rebasing: scratch[0..<m])))
        // Misregistration: residual beyond noise per unit of gradient, the median over all cells.
        m = 0
        for k in 0..<n where valid[k] { scratch[m] = max(0, residual[k] - frameNoise) / max(gradient[k], 1); m += 1 }
        let misregistration = Median.of(UnsafeMutableBufferPointer(rebasing: scratch[0..<m]))
        noise += (frameNoise - noise) * 0.2
        facts.misregistration = misregistration
        // A cell moves on its own when its residual exceeds what noise and misregistration explain
        // by a margin: a few grey levels (a cell averages 100 pixels, so noise alone scatters
        // little), and `ratio` times the misregistration, which is the less predictable part.
        let n0 = max(noise, frameNoise)
        let noiseMargin = max(settings.minExcess, 0.35 * n0)
        for k in 0..<n where valid[k] {
            let misreg = misregistration * gradient[k]
            let margin = noiseMargin + (settings.ratio - 1) * misreg
            active[k] = residual[k] - (n0 + misreg) >= margin
        }
        // A lone cell is noise unless it is far beyond the threshold; groups are activity.
        var x0 = cellsX, y0 = cellsY, x1 = -1, y1 = -1
        var kept = 0
        for cy in 0..<cellsY {
            for cx in 0..<cellsX {
                let k = cy * cellsX + cx
                guard active[k] else { continue }
                let neighbour = (cx > 0 && active[k - 1]) || (cx + 1 < cellsX && active[k + 1])
                    || (cy > 0 && active[k - cellsX]) || (cy + 1 < cellsY && active[k + cellsX])
                let misreg = misregistration * gradient[k]
                let strong = residual[k] - (n0 + misreg) >= 2 * (noiseMargin + (settings.ratio - 1) * misreg)
                guard neighbour || strong else { continue }
                kept += 1
                x0 = min(x0, cx); y0 = min(y0, cy); x1 = max(x1, cx); y1 = max(y1, cy)
            }
        }
        facts.activeCells = kept
        facts.score = Double(kept) / Double(max(1, validCount))
        if kept > 0 {
            regionNow = (Double(x0) / Double(cellsX), Double(y0) / Double(cellsY),
                         Double(x1 - x0 + 1) / Double(cellsX), Double(y1 - y0 + 1) / Double(cellsY))
        }
    }

    private var regionNow: (x: Double, y: Double, width: Double, height: Double)?

    private func decide(seen: Bool, facts: SampleFacts) -> DetectorUpdate? {
        recent = ((recent << 1) | (seen ? 1 : 0)) & 0b111
        let t = facts.time
        if seen {
            if firstSeen == nil || (lastSeen.map { t - $0 > 3 * interval } ?? true) && open == nil { firstSeen = t }
            lastSeen = t
        }
        if var e = open {
            if seen, facts.score > e.score {
                e.score = facts.score
                e.region = regionNow
                open = e
            }
            if let last = lastSeen, t - last >= Int64(settings.quietSeconds * 1e9) {
                e.end = last
                open = nil
                firstSeen = nil
                return .ended(e)
            }
            return nil
        }
        let run: UInt8 = (1 << UInt8(max(1, min(3, settings.confirmSamples)))) - 1
        if seen, recent & run == run, let start = firstSeen {
            let e = ActivityEvent(kind: "video", start: start, score: facts.score, region: regionNow)
            open = e
            return .began(e)
        }
        if !seen, recent == 0 { firstSeen = nil }
        return nil
    }
}
