public import BodycamCore
internal import CGPIOD
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a GPIO line is: by name (the device tree's `gpio-line-names`, the portable choice) or
/// by chip and offset.
public enum GPIOLineSpec: Sendable, Equatable, CustomStringConvertible {
    case named(String)
    case chip(String, offset: Int)

    public var description: String {
        switch self {
        case .named(let n): return "line \"\(n)\""
        case .chip(let c, let o): return "\(c) line \(o)"
        }
    }
}

/// Electrical options of a line.
public struct GPIOLineOptions: Sendable, Equatable {
    /// Pressed / on is a low level (buttons to ground with a pull-up).
    public var activeLow: Bool
    /// "pull-up", "pull-down", "disable" or nil to leave the bias as it is.
    public var bias: String?

    public init(activeLow: Bool, bias: String?) {
        self.activeLow = activeLow
        self.bias = bias
    }

    var flags: Int32 {
        var f: Int32 = 0
        if activeLow { f |= Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) }
        switch bias {
        case "pull-up": f |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP)
        case "pull-down": f |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)
        case "disable": f |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE)
        default: break
        }
        return f
    }
}

public enum GPIOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The chip or line does not exist: a board-file problem (exit 78).
    case notFound(String)
    /// The line exists but could not be requested (busy, permission).
    case request(String, errno: Int32)

    public var description: String {
        switch self {
        case .notFound(let s): return s
        case .request(let s, let e): return "\(s): \(String(cString: strerror(e)))"
        }
    }
}

/// One requested GPIO line (libgpiod 1.6 API).
public final class GPIOLine: @unchecked Sendable {
    public let spec: GPIOLineSpec
    private let line: OpaquePointer
    private let chip: OpaquePointer
    private let ownsChip: Bool

    private init(spec: GPIOLineSpec, line: OpaquePointer, chip: OpaquePointer, ownsChip: Bool) {
        self.spec = spec
        self.line = line
        self.chip = chip
        self.ownsChip = ownsChip
    }

    deinit {
        gpiod_line_release(line)
        if ownsChip { gpiod_chip_close(chip) } else { gpiod_line_close_chip(line) }
    }

    /// Finds the line; a missing chip or line is `GPIOError.notFound` naming it.
    private static func find(_ spec: GPIOLineSpec) throws(GPIOError) -> (line: OpaquePointer, chip: OpaquePointer, owns: Bool) {
        switch spec {
        case .named(let name):
            // Searches every chip; the line keeps its chip open (closed with gpiod_line_close_chip).
            guard let line = gpiod_line_find(name) else {
                let chips = FileList.names(in: "/dev").filter { $0.hasPrefix("gpiochip") }.sorted()
                throw .notFound(
                    "GPIO line \"\(name)\" not found on any chip (" + (chips.isEmpty ? "no GPIO chips" : chips.joined(separator: ", ")) + ")")
            }
            guard let chip = gpiod_line_get_chip(line) else { throw .notFound("GPIO line \"\(name)\": no chip") }
            return (line, chip, false)
        case .chip(let name, let offset):
            guard let chip = gpiod_chip_open_lookup(name) else { throw .notFound("GPIO chip \"\(name)\" not found") }
            guard let line = gpiod_chip_get_line(chip, UInt32(offset)) else {
                let n = gpiod_chip_num_lines(chip)
                gpiod_chip_close(chip)
                throw .notFound("GPIO \(name) has no line \(offset) (it has \(n) lines)")
            }
            return (line, chip, true)
        }
    }

    /// Requests `spec` as an input delivering both edges as events (buttons, dock detect).
    public static func input(_ spec: GPIOLineSpec, options: GPIOLineOptions, consumer: String) throws(GPIOError) -> GPIOLine {
        let (line, chip, owns) = try find(spec)
        if gpiod_line_request_both_edges_events_flags(line, consumer, options.flags) != 0 {
            let e = errno
            if owns { gpiod_chip_close(chip) } else { gpiod_line_close_chip(line) }
            throw .request("cannot request \(spec) as an input", errno: e)
        }
        return GPIOLine(spec: spec, line: line, chip: chip, ownsChip: owns)
    }

    /// Requests `spec` as an output, initially off (LEDs, the vibration motor, the buzzer).
    public static func output(_ spec: GPIOLineSpec, options: GPIOLineOptions, consumer: String) throws(GPIOError) -> GPIOLine {
        let (line, chip, owns) = try find(spec)
        if gpiod_line_request_output_flags(line, consumer, options.flags, 0) != 0 {
            let e = errno
            if owns { gpiod_chip_close(chip) } else { gpiod_line_close_chip(line) }
            throw .request("cannot request \(spec) as an output", errno: e)
        }
        return GPIOLine(spec: spec, line: line, chip: chip, ownsChip: owns)
    }

    /// The descriptor that becomes readable when an edge event is waiting (poll it; no polling loops).
    public var eventFD: Int32 { gpiod_line_event_get_fd(line) }

    /// The current logical level (active-low already applied).
    public var value: Bool { gpiod_line_get_value(line) == 1 }

    public func set(_ on: Bool) { _ = gpiod_line_set_value(line, on ? 1 : 0) }

    /// Reads one waiting edge: logical level after it and its kernel timestamp.
    public func readEvent() -> (active: Bool, time: MonotonicTime)? {
        var ev = gpiod_line_event()
        guard gpiod_line_event_read(line, &ev) == 0 else { return nil }
        let ns = Int64(ev.ts.tv_sec) * 1_000_000_000 + Int64(ev.ts.tv_nsec)
        let now = SystemClock.monotonic()
        // Kernels since 5.7 stamp line events with CLOCK_MONOTONIC; older ones used the wall
        // clock. A stamp far from now is from the other clock: use the time of reading instead.
        let time = abs(now - ns) < 10_000_000_000 ? ns : now
        return (ev.event_type == GPIOD_LINE_EVENT_RISING_EDGE, MonotonicTime(nanoseconds: time))
    }
}

/// Directory listing without Foundation (for error messages).
enum FileList {
    static func names(in path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }
}

/// LEDs, vibration motor and buzzer on GPIO lines, driven from an `IndicatorTimeline`.
///
/// `perform` (called under the recorder's lock) only records the pattern and wakes the control
/// loop; the control loop calls `apply(now:)` at `nextDeadline`, which sets the lines.
public final class GPIOIndicators: Indicators, @unchecked Sendable {
    private let leds: [LED: GPIOLine]
    private let haptic: GPIOLine?
    private let buzzer: GPIOLine?
    private let timeline = Mutex(IndicatorTimeline())
    private let applied = Mutex<IndicatorTimeline.Levels?>(nil)
    /// Called after `perform` so the control loop re-evaluates its deadline.
    public var wake: (@Sendable () -> Void)?

    public init(leds: [LED: GPIOLine], haptic: GPIOLine?, buzzer: GPIOLine?) {
        self.leds = leds
        self.haptic = haptic
        self.buzzer = buzzer
    }

    public func perform(_ action: IndicatorAction) {
        let t = MonotonicTime(nanoseconds: SystemClock.monotonic())
        timeline.withLock { $0.apply(action, at: t) }
        wake?()
    }

    /// Sets every line to its level now (only the ones that changed).
    public func apply(now: MonotonicTime) {
        let levels = timeline.withLock { $0.levels(at: now) }
        applied.withLock { last in
            for (led, line) in leds where last?.leds[led] != levels.leds[led] { line.set(levels.leds[led] ?? false) }
            if last?.haptic != levels.haptic { haptic?.set(levels.haptic) }
            if last?.tone != levels.tone { buzzer?.set(levels.tone) }
            last = levels
        }
    }

    public func nextDeadline(after now: MonotonicTime) -> MonotonicTime? {
        timeline.withLock { $0.nextChange(after: now) }
    }

    /// Everything off (at shutdown).
    public func allOff() {
        for line in leds.values { line.set(false) }
        haptic?.set(false)
        buzzer?.set(false)
    }
}
