public import BodycamCore

/// The detector of a camera on a wall (the kind in NVRs and `motion`): the mean absolute
/// difference of consecutive luma images per 10×10 cell, a fixed threshold, groups of cells, the
/// same sampling and the same event rules as ours (two consecutive samples open an event, 1.5 s
/// of quiet closes it). It reads the same sampled image, so the two
/// differ only in what they compare.
public final class FrameDifferenceDetector {
    public let sampler: LumaSampler
    public let threshold: Float
    private let current: LumaImage
    private let previous: LumaImage
    private var havePrevious = false
    private let cell = 10
    private var recent: UInt8 = 0
    private var firstSeen: MonotonicTime?
    private var lastSeen: MonotonicTime?
    private var open: ActivityEvent?
    private let quiet: Int64

    public init(format: VideoFormat, threshold: Float = 10, quietSeconds: Double = 1.5) {
        sampler = LumaSampler(format: format)
        self.threshold = threshold
        current = LumaImage(width: sampler.width, height: sampler.height)
        previous = LumaImage(width: sampler.width, height: sampler.height)
        quiet = Int64(quietSeconds * 1e9)
    }

    public func process(_ frame: RawFrame) -> DetectorUpdate? {
        sampler.sample(frame, into: current)
        defer {
            previous.copy(from: current)
            havePrevious = true
        }
        guard havePrevious else { return nil }
        let w = sampler.width
        let cx = w / cell, cy = sampler.height / cell
        var activeCells = [Bool](repeating: false, count: cx * cy)
        for j in 0..<cy {
            for i in 0..<cx {
                var s: Float = 0
                for y in (j * cell)..<((j + 1) * cell) {
                    for x in (i * cell)..<((i + 1) * cell) { s += abs(current[x, y] - previous[x, y]) }
                }
                activeCells[j * cx + i] = s / Float(cell * cell) > threshold
            }
        }
        var kept = 0
        for j in 0..<cy {
            for i in 0..<cx where activeCells[j * cx + i] {
                let k = j * cx + i
                if (i > 0 && activeCells[k - 1]) || (i + 1 < cx && activeCells[k + 1]) || (j > 0 && activeCells[k - cx])
                    || (j + 1 < cy && activeCells[k + cx])
                { kept += 1 }
            }
        }
        let t = frame.time
        let seen = kept > 0
        let score = Double(kept) / Double(cx * cy)
        recent = ((recent << 1) | (seen ? 1 : 0)) & 0b111
        if seen {
            if firstSeen == nil { firstSeen = t }
            lastSeen = t
        }
        if var e = open {
            e.score = max(e.score, score)
            open = e
            if let last = lastSeen, t - last >= quiet {
                e.end = last
                open = nil
                firstSeen = nil
                return .ended(e)
            }
            return nil
        }
        if seen, recent & 0b11 == 0b11, let start = firstSeen {
            let e = ActivityEvent(kind: "video", start: start, score: score)
            open = e
            return .began(e)
        }
        if recent == 0 { firstSeen = nil }
        return nil
    }

    public func finish(at time: MonotonicTime) -> DetectorUpdate? {
        guard var e = open else { return nil }
        e.end = lastSeen ?? time
        open = nil
        return .ended(e)
    }
}
