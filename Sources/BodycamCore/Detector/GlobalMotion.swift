/// The camera's own motion between two samples, as an affine map from the current image to the
/// previous one: the scene point at (x, y) now was at (x + dx(x, y), y + dy(x, y)) before, with
/// dx = a0 + a1·(x − cx) + a2·(y − cy) and dy = a3 + a4·(x − cx) + a5·(y − cy).
/// Pan and tilt are the translation, walking forward the zoom, and a tilted head the rotation.
public struct AffineMotion: Sendable, Equatable {
    public var a: (Double, Double, Double, Double, Double, Double)
    public var cx: Double
    public var cy: Double

    public init(dx: Double, dy: Double, cx: Double, cy: Double) {
        a = (dx, 0, 0, dy, 0, 0)
        self.cx = cx
        self.cy = cy
    }

    @inline(__always) public func displacement(x: Double, y: Double) -> (Double, Double) {
        let u = x - cx
        let v = y - cy
        return (a.0 + a.1 * u + a.2 * v, a.3 + a.4 * u + a.5 * v)
    }

    public static func == (l: AffineMotion, r: AffineMotion) -> Bool {
        l.a == r.a && l.cx == r.cx && l.cy == r.cy
    }
}

/// Estimates `AffineMotion` between two luma images: a coarse-to-fine translation search on a
/// three-level pyramid, then one vector per textured block around that translation, then a
/// robust (iteratively reweighted) affine fit to the block vectors. Blocks that move on their own
/// are outliers of the fit; they are what the detector is looking for, not what it compensates.
///
/// All storage is allocated in `init`; `estimate` allocates nothing.
final class GlobalMotionEstimator {
    let width: Int
    let height: Int
    let blockSize: Int
    /// Search radius of the coarsest level (in its own pixels); ×4 at full sample resolution.
    let coarseRadius: Int
    let blockRadius = 3
    private let half0: LumaImage, half1: LumaImage
    private let quarter0: LumaImage, quarter1: LumaImage
    /// Block vectors of the last estimate: centre x, y, vector dx, dy, weight.
    private(set) var blocks: UnsafeMutableBufferPointer<(x: Double, y: Double, dx: Double, dy: Double, w: Double)>
    private(set) var blockCount = 0
    /// Scratch: each block vector's distance from the fitted model.
    private let residuals: UnsafeMutableBufferPointer<Double>
    /// How well the last fit explains the block vectors (median residual in pixels).
    private(set) var fitError: Double = 0
    /// Blocks the fit used (inliers) in the last estimate.
    private(set) var inliers = 0
    /// The integer translation of the last estimate (the prior for the next).
    private var lastShift = (0, 0)

    init(width: Int, height: Int, blockSize: Int = 10, coarseRadius: Int = 7) {
        self.width = width
        self.height = height
        self.blockSize = blockSize
        self.coarseRadius = coarseRadius
        half0 = LumaImage(width: width / 2, height: height / 2)
        half1 = LumaImage(width: width / 2, height: height / 2)
        quarter0 = LumaImage(width: width / 4, height: height / 4)
        quarter1 = LumaImage(width: width / 4, height: height / 4)
        let n = (width / blockSize + 1) * (height / blockSize + 1)
        blocks = .allocate(capacity: n)
        blocks.initialize(repeating: (0, 0, 0, 0, 0))
        residuals = .allocate(capacity: n)
        residuals.initialize(repeating: 0)
    }

    deinit {
        blocks.deallocate()
        residuals.deallocate()
    }

    /// Mean absolute difference of the zero-mean images over the interior window, with `prev`
    /// displaced by (dx, dy). The window is the same for every displacement tried at a level.
    private func cost(_ cur: LumaImage, _ prev: LumaImage, dx: Int, dy: Int, margin: Int,
                      meanDiff: Float) -> Float {
        let w = cur.width
        let c = cur.pixels.baseAddress!
        let p = prev.pixels.baseAddress!
        var sum: Float = 0
        let x0 = margin, x1 = w - margin, y0 = margin, y1 = cur.height - margin
        guard x1 > x0, y1 > y0 else { return .infinity }
        for y in y0..<y1 {
            let cr = c + y * w
            let pr = p + (y + dy) * w + dx
            for x in x0..<x1 { sum += abs(cr[x] - pr[x] - meanDiff) }
        }
        return sum / Float((x1 - x0) * (y1 - y0))
    }

    private func mean(_ img: LumaImage) -> Float {
        var s: Float = 0
        for v in img.pixels { s += v }
        return s / Float(img.pixels.count)
    }

    /// Best integer translation of `prev` against `cur` within ±radius around (gx, gy).
    private func search(_ cur: LumaImage, _ prev: LumaImage, around gx: Int, _ gy: Int, radius: Int,
                        margin: Int) -> (Int, Int, Float) {
        let md = mean(cur) - mean(prev)
        var best = (gx, gy, Float.infinity)
        for dy in (gy - radius)...(gy + radius) where abs(dy) <= margin {
            for dx in (gx - radius)...(gx + radius) where abs(dx) <= margin {
                let c = cost(cur, prev, dx: dx, dy: dy, margin: margin, meanDiff: md)
                if c < best.2 { best = (dx, dy, c) }
            }
        }
        return best
    }

    /// The motion from `cur` back to `prev`, or nil if the images have too little in common
    /// (a whip pan, the lens covered).
    func estimate(current cur: LumaImage, previous prev: LumaImage, noise: Float) -> AffineMotion? {
        cur.halve(into: half1)
        prev.halve(into: half0)
        half1.halve(into: quarter1)
        half0.halve(into: quarter0)
        let r = coarseRadius
        let q = search(quarter1, quarter0, around: 0, 0, radius: r, margin: r)
        let h = search(half1, half0, around: 2 * q.0, 2 * q.1, radius: 1, margin: 2 * r + 1)
        var f = search(cur, prev, around: 2 * h.0, 2 * h.1, radius: 1, margin: 4 * r + 3)
        // In low light and on flat scenes the costs of nearby shifts differ by little more than
        // noise: a shift is believed only if it beats "no motion" (and the last motion) clearly.
        let md = mean(cur) - mean(prev)
        let clear = 0.03 * max(noise, 0.3) + 0.02
        func prefer(_ px: Int, _ py: Int) {
            guard (px, py) != (f.0, f.1), abs(px) <= 4 * r + 3, abs(py) <= 4 * r + 3 else { return }
            let c = cost(cur, prev, dx: px, dy: py, margin: 4 * r + 3, meanDiff: md)
            if c <= f.2 + clear { f = (px, py, c) }
        }
        prefer(0, 0)
        prefer(lastShift.0, lastShift.1)
        lastShift = (f.0, f.1)
        let cx = Double(width) / 2, cy = Double(height) / 2
        var model = AffineMotion(dx: Double(f.0), dy: Double(f.1), cx: cx, cy: cy)
        blockVectors(cur, prev, gx: f.0, gy: f.1, noise: noise)
        guard blockCount >= 3 else {
            fitError = 0
            inliers = blockCount
            return blockCount == 0 && f.2 > 12 * max(noise, 1) ? nil : model
        }
        fitAffine(&model)
        return model
    }

    /// One vector per textured block, searched ±`blockRadius` around the global translation,
    /// refined to subpixel by a parabola through the costs either side of the minimum.
    private func blockVectors(_ cur: LumaImage, _ prev: LumaImage, gx: Int, gy: Int, noise: Float) {
        let b = blockSize
        let w = width
        let c = cur.pixels.baseAddress!
        let p = prev.pixels.baseAddress!
        let rr = blockRadius
        let side = 2 * rr + 1
        blockCount = 0
        // Costs of every displacement of one block, on the stack.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: side * side) { costs in
            var by = 0
            while by + b <= height {
                var bx = 0
                while bx + b <= w {
                    defer { bx += b }
                    // The whole search window must lie inside the previous image.
                    guard bx + gx - rr >= 0, bx + gx + b + rr <= w, by + gy - rr >= 0, by + gy + b + rr <= height
                    else { continue }
                    // Texture: mean absolute deviation of the block; flat blocks give no vector.
                    var m: Float = 0
                    for y in by..<(by + b) { for x in bx..<(bx + b) { m += c[y * w + x] } }
                    m /= Float(b * b)
                    var dev: Float = 0
                    for y in by..<(by + b) { for x in bx..<(bx + b) { dev += abs(c[y * w + x] - m) } }
                    dev /= Float(b * b)
                    // Pure noise has a mean absolute deviation of 0.8 σ: ask for clear structure.
                    guard dev > 1.5 * max(noise, 0.3) + 1.5 else { continue }
                    var best = Float.infinity, bi = 0, bj = 0
                    for j in 0..<side {
                        for i in 0..<side {
                            let ox = bx + gx + i - rr, oy = by + gy + j - rr
                            var pm: Float = 0
                            for y in 0..<b { for x in 0..<b { pm += p[(oy + y) * w + ox + x] } }
                            let off = m - pm / Float(b * b)
                            var s: Float = 0
                            for y in 0..<b {
                                let cr = c + (by + y) * w + bx
                                let pr = p + (oy + y) * w + ox
                                for x in 0..<b { s += abs(cr[x] - pr[x] - off) }
                            }
                            costs[j * side + i] = s
                            if s < best { best = s; bi = i; bj = j }
                        }
                    }
                    // A minimum on the window's edge may lie outside it: no reliable vector.
                    guard bi > 0, bi < side - 1, bj > 0, bj < side - 1 else { continue }
                    func vertex(_ l: Float, _ m: Float, _ r: Float) -> Double {
                        let d = Double(l - 2 * m + r)
                        return d > 1e-6 ? max(-0.5, min(0.5, Double(l - r) / (2 * d))) : 0
                    }
                    let sx = vertex(costs[bj * side + bi - 1], best, costs[bj * side + bi + 1])
                    let sy = vertex(costs[(bj - 1) * side + bi], best, costs[(bj + 1) * side + bi])
                    // Distinctness: how much worse the neighbours are than the minimum.
                    let around = min(costs[bj * side + bi - 1], costs[bj * side + bi + 1],
                                     costs[(bj - 1) * side + bi], costs[(bj + 1) * side + bi])
                    let weight = Double(max(0, around - best)) / Double(b * b) + 0.05
                    blocks[blockCount] = (
                        Double(bx) + Double(b) / 2, Double(by) + Double(b) / 2,
                        Double(gx + bi - rr) + sx, Double(gy + bj - rr) + sy, min(weight, 8)
                    )
                    blockCount += 1
                }
                by += b
            }
        }
    }

    /// Iteratively reweighted least squares with Tukey's biweight on the vector residuals.
    private func fitAffine(_ model: inout AffineMotion) {
        let n = blockCount
        var scale = 1.5  // pixels: a block further than this from the model does not count
        for iteration in 0..<5 {
            // Normal equations for [1, u, v], solved for x and y separately.
            var s = Matrix3()
            var bx = (0.0, 0.0, 0.0), by = (0.0, 0.0, 0.0)
            var used = 0
            for k in 0..<n {
                let blk = blocks[k]
                var w = blk.w
                if iteration > 0 {
                    let (mx, my) = model.displacement(x: blk.x, y: blk.y)
                    let e = ((blk.dx - mx) * (blk.dx - mx) + (blk.dy - my) * (blk.dy - my)).squareRoot()
                    if e >= scale { continue }
                    let t = 1 - (e / scale) * (e / scale)
                    w *= t * t
                }
                used += 1
                let u = blk.x - model.cx, v = blk.y - model.cy
                s.add(u, v, weight: w)
                bx.0 += w * blk.dx; bx.1 += w * u * blk.dx; bx.2 += w * v * blk.dx
                by.0 += w * blk.dy; by.1 += w * u * blk.dy; by.2 += w * v * blk.dy
            }
            inliers = used
            // Too few blocks agree for an affine map: keep what we have (the translation).
            guard used >= 3, let ax = s.solve(bx), let ay = s.solve(by) else { break }
            model.a = (ax.0, ax.1, ax.2, ay.0, ay.1, ay.2)
            if iteration >= 2 { scale = 1.0 }
        }
        for k in 0..<n {
            let blk = blocks[k]
            let (mx, my) = model.displacement(x: blk.x, y: blk.y)
            residuals[k] = ((blk.dx - mx) * (blk.dx - mx) + (blk.dy - my) * (blk.dy - my)).squareRoot()
        }
        fitError = n == 0 ? 0 : Median.of(UnsafeMutableBufferPointer(rebasing: residuals[0..<n]))
    }
}

/// The symmetric normal matrix of a weighted least-squares fit to [1, u, v].
struct Matrix3 {
    var m00 = 0.0, m01 = 0.0, m02 = 0.0, m11 = 0.0, m12 = 0.0, m22 = 0.0

    mutating func add(_ u: Double, _ v: Double, weight w: Double) {
        m00 += w; m01 += w * u; m02 += w * v
        m11 += w * u * u; m12 += w * u * v; m22 += w * v * v
    }

    /// Solves `M · x = b` by Cramer's rule; nil if M is (nearly) singular.
    func solve(_ b: (Double, Double, Double)) -> (Double, Double, Double)? {
        func det(_ a: Double, _ b: Double, _ c: Double, _ d: Double, _ e: Double, _ f: Double,
                 _ g: Double, _ h: Double, _ i: Double) -> Double {
            a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
        }
        let d = det(m00, m01, m02, m01, m11, m12, m02, m12, m22)
        guard abs(d) > 1e-9 * (abs(m00 * m11 * m22) + 1e-12) else { return nil }
        let x0 = det(b.0, m01, m02, b.1, m11, m12, b.2, m12, m22) / d
        let x1 = det(m00, b.0, m02, m01, b.1, m12, m02, b.2, m22) / d
        let x2 = det(m00, m01, b.0, m01, m11, b.1, m02, m12, b.2) / d
        return (x0, x1, x2)
    }
}

/// Medians of scratch buffers, in place (the buffer is reordered), without allocating.
enum Median {
    static func of<T: Comparable>(_ buf: UnsafeMutableBufferPointer<T>) -> T {
        precondition(!buf.isEmpty, "median of nothing")
        return select(buf, buf.count / 2)
    }

    /// The k-th smallest element (quickselect, Hoare partition with a median-of-three pivot).
    static func select<T: Comparable>(_ a: UnsafeMutableBufferPointer<T>, _ k: Int) -> T {
        var lo = 0, hi = a.count - 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while pivot < a[j] { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return a[k] }
        }
        return a[k]
    }
}
