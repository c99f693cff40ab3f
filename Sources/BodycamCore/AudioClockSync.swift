/// Keeps the count of audio samples in step with CLOCK_MONOTONIC.
///
/// A microphone's crystal is off by tens of ppm (100 ppm is 360 ms an hour), so counting samples
/// is not a clock. Each block read from the device carries the monotonic time of its first
/// sample; comparing that with the number of samples already passed on tells how far the audio
/// timeline has wandered. Inside `tolerance` nothing happens; on reaching it one sample per block
/// is dropped or repeated (inaudible at these rates), so the timeline stays within it; a shortfall
/// larger than `gapThreshold` is a real gap (an overrun, a device reset) and is filled with
/// silence of the right length, so the track stays continuous and later audio stays in sync with
/// the picture.
public struct AudioClockSync: Sendable {
    public let sampleRate: Int
    public let tolerance: Int64
    public let gapThreshold: Int64
    /// Monotonic time of output sample 0.
    public private(set) var anchor: MonotonicTime?
    /// Samples passed on since the anchor.
    public private(set) var emitted: Int64 = 0
    public private(set) var samplesDropped: Int64 = 0
    public private(set) var samplesRepeated: Int64 = 0
    public private(set) var gapSamples: Int64 = 0
    public private(set) var gaps = 0

    /// What to do with one block.
    public enum Adjustment: Sendable, Equatable {
        case none
        /// Pass the block on without its last sample.
        case dropOne
        /// Pass the block on with its last sample twice.
        case repeatOne
        /// Insert this many frames of silence before the block.
        case silenceBefore(frames: Int)
        /// Discard the whole block: it overlaps audio already passed on (the device clock jumped back).
        case discard
    }

    public init(sampleRate: Int, toleranceMs: Int = 1, gapThresholdMs: Int = 40) {
        self.sampleRate = sampleRate
        // At least one sample: a zero tolerance would drop and repeat on alternate blocks.
        tolerance = max(1, Int64(sampleRate * toleranceMs / 1000))
        gapThreshold = Int64(sampleRate * gapThresholdMs / 1000)
    }

    /// The monotonic time of output sample `n`.
    public func time(ofSample n: Int64) -> MonotonicTime {
        // Whole seconds apart from the rest: n × 10⁹ overflows Int64 after about 53 hours at 48 kHz,
        // and capture runs from power-on.
        let (seconds, rest) = n.quotientAndRemainder(dividingBy: Int64(sampleRate))
        return (anchor ?? .zero) + seconds * 1_000_000_000 + rest * 1_000_000_000 / Int64(sampleRate)
    }

    /// Samples the clock says have passed from `anchor` to `time`, to the nearest sample (truncating
    /// would make the error read up to a sample high, letting slow microphones run further off).
    private func clockSamples(from anchor: MonotonicTime, to time: MonotonicTime) -> Int64 {
        let (seconds, rest) = (time - anchor).quotientAndRemainder(dividingBy: 1_000_000_000)
        let scaled = rest * Int64(sampleRate)
        let rounded = scaled >= 0 ? (scaled + 500_000_000) / 1_000_000_000 : (scaled - 500_000_000) / 1_000_000_000
        return seconds * Int64(sampleRate) + rounded
    }

    /// Where the timeline stands against the clock for a block stamped `time`: positive when
    /// more samples were passed on than time has elapsed.
    public func error(at time: MonotonicTime) -> Int64 {
        guard let anchor else { return 0 }
        return emitted - clockSamples(from: anchor, to: time)
    }

    /// Decides what to do with a block of `frames` frames whose first sample was captured at `time`,
    /// and accounts for it.
    public mutating func adjust(time: MonotonicTime, frames: Int) -> Adjustment {
        guard anchor != nil else {
            anchor = time
            emitted = Int64(frames)
            return .none
        }
        let err = error(at: time)
        let result: Adjustment
        if err < -gapThreshold {
            let missing = -err
            gaps += 1
            gapSamples += missing
            emitted += missing + Int64(frames)
            return .silenceBefore(frames: Int(missing))
        } else if err > gapThreshold + Int64(frames) {
            return .discard
        } else if err >= tolerance && frames > 1 {
            samplesDropped += 1
            result = .dropOne
            emitted += Int64(frames - 1)
        } else if err <= -tolerance {
            samplesRepeated += 1
            result = .repeatOne
            emitted += Int64(frames + 1)
        } else {
            result = .none
            emitted += Int64(frames)
        }
        return result
    }
}
