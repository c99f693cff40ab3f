/// Notices when the wall clock is stepped (NTP or a user setting the time at the dock) or gains
/// or loses the system's "synchronised" flag.
///
/// Media never depends on the wall clock: every timestamp is CLOCK_MONOTONIC and UTC is derived
/// from a paired reading of both clocks. A step therefore changes nothing already recorded; it
/// only moves the pairing, and the watch says by how much so the audit log can record it.
///
/// Each observation is compared with the previous one, not with the first: a clock being slewed
/// (at most 500 ppm, 0.5 ms per second) never adds up to a reported step, while a step of
/// `threshold` or more between two observations does.
public struct ClockWatch: Sendable {
    public enum Change: Sendable, Equatable {
        /// The wall clock moved by `seconds` (positive: forward) relative to the monotonic clock.
        case stepped(seconds: Double, before: ClockPair, after: ClockPair)
        /// The system started (true) or stopped (false) reporting the clock as synchronised.
        case trust(Bool)
    }

    /// The latest paired reading: what UTC conversions should use.
    public private(set) var pair: ClockPair
    public let threshold: Double

    public init(_ pair: ClockPair, threshold: Double = 0.1) {
        self.pair = pair
        self.threshold = threshold
    }

    /// Takes a new paired reading; returns what changed since the previous one.
    public mutating func observe(_ reading: ClockPair) -> [Change] {
        var changes: [Change] = []
        let expected = pair.unixSeconds(at: reading.monotonic)
        let step = reading.wall.unixSeconds - expected
        if abs(step) >= threshold {
            changes.append(.stepped(seconds: step, before: pair, after: reading))
        }
        if reading.wall.trusted != pair.wall.trusted { changes.append(.trust(reading.wall.trusted)) }
        pair = reading
        return changes
    }
}
