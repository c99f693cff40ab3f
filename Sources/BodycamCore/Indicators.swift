/// The lights a board may have. Which GPIO line (if any) drives each is the board file's business.
public enum LED: String, Sendable, CaseIterable, Codable {
    /// Red, facing the subject: lit while a clip is being recorded.
    case recording
    /// Green: the pre-event buffer is running (the camera is ready).
    case ready
    /// Amber: storage low, clock not trusted, or a device fault.
    case warning
    /// Blue: docked; blinks while uploading.
    case dock
}

/// How a light shows.
public enum LEDPattern: Sendable, Equatable, Codable, CustomStringConvertible {
    case off
    case on
    case blink(onMilliseconds: Int, offMilliseconds: Int)

    public var description: String {
        switch self {
        case .off: return "off"
        case .on: return "on"
        case .blink(let on, let off): return "blink(\(on)/\(off)ms)"
        }
    }

    /// The level at `elapsed` nanoseconds after the pattern started.
    public func level(elapsed: Int64) -> Bool {
        switch self {
        case .off: return false
        case .on: return true
        case .blink(let on, let off):
            let period = Int64(on + off) * 1_000_000
            guard period > 0 else { return on > 0 }
            return (elapsed % period) < Int64(on) * 1_000_000
        }
    }
}

/// Why the warning light is lit. Several can hold at once; the light shows one pattern for all
/// of them (`WarningLight`), so clearing one reason never hides another.
public enum WarningReason: String, Sendable, CaseIterable, Codable, Comparable {
    /// Free space is below the reserve (or a write hit ENOSPC): no clip starts.
    case storageLow = "storage_low"
    /// A write to the clip store failed for another reason (EIO, a card gone read-only). Held
    /// until a later clip's fragment is written, which shows the storage works again.
    case storageFault = "storage_fault"
    /// No picture from the camera while buffering or recording.
    case cameraLost = "camera_lost"
    /// No picture reaches the encoder while the camera delivers: the video thread is stuck.
    case videoStalled = "video_stalled"
    /// The system does not report the wall clock as synchronised: UTC times in manifests, the
    /// audit log and the watermark are flagged as untrusted. The least urgent reason.
    case clockUntrusted = "clock_untrusted"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The warning light as the set of reasons behind it, shown by the most urgent one. Low storage
/// blinks fast (the operator cannot start a clip, which matters most); a write fault, a lost
/// camera or stalled video light it steadily; an untrusted clock alone gives a short flash every
/// few seconds (recording works, only its UTC times are in doubt).
public struct WarningLight: Sendable, Equatable {
    public private(set) var reasons: Set<WarningReason> = []

    public init() {}

    public static let storageLowBlink = LEDPattern.blink(onMilliseconds: 250, offMilliseconds: 250)
    public static let clockUntrustedFlash = LEDPattern.blink(onMilliseconds: 100, offMilliseconds: 2900)

    public var pattern: LEDPattern {
        if reasons.contains(.storageLow) { return Self.storageLowBlink }
        if !reasons.subtracting([.clockUntrusted]).isEmpty { return .on }
        return reasons.isEmpty ? .off : Self.clockUntrustedFlash
    }

    /// Raises (`active`) or clears one reason. Returns the light's new pattern when that changed
    /// it, nil when the light shows the same as before.
    public mutating func set(_ reason: WarningReason, _ active: Bool) -> LEDPattern? {
        let before = pattern
        if active { reasons.insert(reason) } else { reasons.remove(reason) }
        return pattern == before ? nil : pattern
    }
}

/// A vibration (or tone) pattern: alternating on and off durations in milliseconds, starting on.
public struct PulsePattern: Sendable, Equatable, Codable, CustomStringConvertible {
    public var milliseconds: [Int]

    public init(_ milliseconds: [Int]) { self.milliseconds = milliseconds }

    /// Recording started.
    public static let long = PulsePattern([700])
    /// Recording stopped.
    public static let twoShort = PulsePattern([120, 120, 120])
    /// Marker stored, or a gesture acknowledged.
    public static let short = PulsePattern([80])
    /// Still recording (every two minutes).
    public static let reminder = PulsePattern([200, 150, 200])
    /// Mute toggled.
    public static let threeShort = PulsePattern([80, 80, 80, 80, 80])
    /// Something is wrong (storage low, device fault).
    public static let alert = PulsePattern([400, 200, 400, 200, 400])

    public var totalMilliseconds: Int { milliseconds.reduce(0, +) }

    public var description: String { milliseconds.map(String.init).joined(separator: "/") + "ms" }

    /// Output level at `elapsedMs` since the pattern started; nil once it has finished.
    public func level(elapsedMs: Int) -> Bool? {
        var t = 0
        for (i, d) in milliseconds.enumerated() {
            if elapsedMs < t + d { return i % 2 == 0 }
            t += d
        }
        return nil
    }
}

/// An instruction to the lights, the vibration motor or the buzzer.
public enum IndicatorAction: Sendable, Equatable {
    case led(LED, LEDPattern)
    case haptic(PulsePattern)
    case tone(PulsePattern)
}

/// Whatever drives the lights and motor: GPIO lines on a board, the status display on `sim`.
public protocol Indicators: AnyObject, Sendable {
    func perform(_ action: IndicatorAction)
}

/// What each indicator output should show over time, from the patterns last asked for.
///
/// The GPIO adapter applies `levels(at:)` whenever `nextChange(after:)` comes due, so blinking and
/// vibration pulses are timed by the control loop's clock, not by sleeping threads.
public struct IndicatorTimeline: Sendable, Equatable {
    public private(set) var leds: [LED: Started<LEDPattern>] = [:]
    public private(set) var haptic: Started<PulsePattern>?
    public private(set) var tone: Started<PulsePattern>?

    public struct Started<P: Sendable & Equatable>: Sendable, Equatable {
        public var pattern: P
        public var since: MonotonicTime
    }

    /// The level of every output at one instant.
    public struct Levels: Sendable, Equatable {
        public var leds: [LED: Bool]
        public var haptic: Bool
        public var tone: Bool
    }

    public init() {}

    public mutating func apply(_ action: IndicatorAction, at t: MonotonicTime) {
        switch action {
        case .led(let led, let pattern):
            // Re-asserting the same pattern keeps its phase (no visible restart of a blink).
            if leds[led]?.pattern != pattern { leds[led] = Started(pattern: pattern, since: t) }
        case .haptic(let p): haptic = Started(pattern: p, since: t)
        case .tone(let p): tone = Started(pattern: p, since: t)
        }
    }

    private static func pulseLevel(_ s: Started<PulsePattern>?, at t: MonotonicTime) -> Bool {
        guard let s, t >= s.since else { return false }
        return s.pattern.level(elapsedMs: Int((t - s.since) / 1_000_000)) ?? false
    }

    public func levels(at t: MonotonicTime) -> Levels {
        var l: [LED: Bool] = [:]
        for led in LED.allCases {
            if let s = leds[led] { l[led] = s.pattern.level(elapsed: t - s.since) } else { l[led] = false }
        }
        return Levels(leds: l, haptic: Self.pulseLevel(haptic, at: t), tone: Self.pulseLevel(tone, at: t))
    }

    /// The next instant after `t` at which some output changes level, if any will.
    public func nextChange(after t: MonotonicTime) -> MonotonicTime? {
        var best: MonotonicTime?
        func consider(_ c: MonotonicTime?) {
            if let c, c > t, best == nil || c < best! { best = c }
        }
        for s in leds.values {
            if case .blink(let on, let off) = s.pattern {
                let period = Int64(on + off) * 1_000_000
                guard period > 0 else { continue }
                let elapsed = max(0, t - s.since)
                let intoPeriod = elapsed % period
                let onNs = Int64(on) * 1_000_000
                consider(intoPeriod < onNs ? t + (onNs - intoPeriod) : t + (period - intoPeriod))
            }
        }
        for p in [haptic, tone].compactMap({ $0 }) {
            var edge = p.since
            for d in p.pattern.milliseconds {
                edge = edge + Int64(d) * 1_000_000
                if edge > t {
                    consider(edge)
                    break
                }
            }
        }
        return best
    }
}
