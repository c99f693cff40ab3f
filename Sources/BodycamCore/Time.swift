/// A point on CLOCK_MONOTONIC, in nanoseconds.
///
/// Every media timestamp in bodycam is one of these (V4L2 and ALSA stamp buffers on this clock),
/// so video, audio and button edges compare directly. Wall-clock time is only ever derived from
/// it, never the other way round, so a clock step at the dock cannot reorder media.
public struct MonotonicTime: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicTime(nanoseconds: 0)

    public static func < (a: MonotonicTime, b: MonotonicTime) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: MonotonicTime, ns: Int64) -> MonotonicTime {
        MonotonicTime(nanoseconds: a.nanoseconds &+ ns)
    }

    public static func - (a: MonotonicTime, ns: Int64) -> MonotonicTime {
        MonotonicTime(nanoseconds: a.nanoseconds &- ns)
    }

    /// Nanoseconds from `b` to `a`.
    public static func - (a: MonotonicTime, b: MonotonicTime) -> Int64 { a.nanoseconds &- b.nanoseconds }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String { "\(seconds)s" }
}

/// Nanosecond helpers, so call sites read `.seconds(3)` rather than `3_000_000_000`.
public enum Nanos {
    public static func seconds(_ s: Double) -> Int64 { Int64((s * 1e9).rounded()) }
    public static func milliseconds(_ ms: Int) -> Int64 { Int64(ms) * 1_000_000 }
    public static func toSeconds(_ ns: Int64) -> Double { Double(ns) / 1e9 }
}

/// A source of monotonic time. The runtime reads CLOCK_MONOTONIC; tests drive a manual clock.
public protocol MonotonicClock: Sendable {
    func now() -> MonotonicTime
}

/// Wall-clock UTC as seconds since 1970 plus whether the system says it is synchronised.
public struct WallClockReading: Sendable, Equatable, Codable {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var unixSeconds: Double
    /// True when the kernel reports the clock as synchronised (NTP or similar).
    public var trusted: Bool

    public init(unixSeconds: Double, trusted: Bool) {
        self.unixSeconds = unixSeconds
        self.trusted = trusted
    }
}

/// Converts between monotonic and UTC time using one paired reading of both clocks.
public struct ClockPair: Sendable, Equatable {
    public var monotonic: MonotonicTime
    public var wall: WallClockReading

    public init(monotonic: MonotonicTime, wall: WallClockReading) {
        self.monotonic = monotonic
        self.wall = wall
    }

    /// The UTC time (seconds since 1970) at monotonic instant `t`.
    public func unixSeconds(at t: MonotonicTime) -> Double {
        wall.unixSeconds + Double(t - monotonic) / 1e9
    }
}

/// Formats UTC timestamps without Foundation (the core stays free of it).
public enum UTCFormat {
    /// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func parts(_ unixSeconds: Double) -> (Int64, Int64, Int64, Int64, Int64, Int64, Int64) {
        let totalMillis = Int64((unixSeconds * 1000).rounded(.down))
        let secs = totalMillis >= 0 ? totalMillis / 1000 : (totalMillis - 999) / 1000
        let millis = totalMillis - secs * 1000
        let days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let rem = secs - days * 86_400
        let (y, mo, d) = civil(days: days)
        return (y, mo, d, rem / 3600, (rem % 3600) / 60, rem % 60, millis)
    }

    /// `2026-11-27T11:20:03.250Z`
    public static func iso8601(_ unixSeconds: Double) -> String {
        let (y, mo, d, h, mi, s, ms) = parts(unixSeconds)
        return "\(pad(y, 4))-\(pad(mo, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)).\(pad(ms, 3))Z"
    }

    /// `20261127T112003Z`, the compact form used in clip ids.
    public static func compact(_ unixSeconds: Double) -> String {
        let (y, mo, d, h, mi, s, _) = parts(unixSeconds)
        return "\(pad(y, 4))\(pad(mo, 2))\(pad(d, 2))T\(pad(h, 2))\(pad(mi, 2))\(pad(s, 2))Z"
    }

    /// (year, month, day) in UTC, for storage paths such as `yyyy/mm/dd`.
    public static func date(_ unixSeconds: Double) -> (year: Int, month: Int, day: Int) {
        let (y, mo, d, _, _, _, _) = parts(unixSeconds)
        return (Int(y), Int(mo), Int(d))
    }
}
