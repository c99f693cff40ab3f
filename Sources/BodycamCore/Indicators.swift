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
