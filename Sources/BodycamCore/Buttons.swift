/// The operator's buttons. A board may lack some (then their gestures are mapped elsewhere,
/// e.g. mute by holding the marker button).
public enum Button: String, Sendable, CaseIterable, Codable {
    case record
    case marker
    case mute
}

/// What the operator did with a button, after debouncing and timing.
public enum Gesture: String, Sendable, Equatable, Codable {
    /// One short press (reported once the double-press window has passed, for buttons that have a
    /// double-press meaning; on release otherwise).
    case press
    /// Two presses in quick succession, reported at the second press's edge.
    case doublePress = "double_press"
    /// Held down for the hold time, reported while still held.
    case hold
}

/// A classified gesture with the monotonic time of the edge that decided it.
public struct ButtonGesture: Sendable, Equatable {
    public var button: Button
    public var gesture: Gesture
    public var at: MonotonicTime

    public init(button: Button, gesture: Gesture, at: MonotonicTime) {
        self.button = button
        self.gesture = gesture
        self.at = at
    }
}

/// Timing rules for turning edges into gestures.
public struct ButtonTiming: Sendable, Equatable {
    /// Edges closer than this to the previous accepted edge are contact bounce and ignored, unless
    /// the contact then stays at the new level for this long.
    public var debounce: Int64 = Nanos.milliseconds(30)
    /// The second press of a double press must start within this time of the first release.
    public var doublePressWindow: Int64 = Nanos.milliseconds(500)
    /// How long a press must last to count as a hold.
    public var hold: Int64 = Nanos.seconds(3)

    public init() {}

    public init(debounce: Int64, doublePressWindow: Int64, hold: Int64) {
        self.debounce = debounce
        self.doublePressWindow = doublePressWindow
        self.hold = hold
    }
}

/// Turns raw edges of the buttons into gestures: debounce, double press, hold.
///
/// A value type driven by the caller: feed it edges with `edge(_:pressed:at:)` and call
/// `advance(to:)` at or after `nextDeadline`. It never reads a clock itself, so tests drive it
/// with exact times and GPIO and the control socket share it.
public struct ButtonClassifier: Sendable {
    private enum Phase: Sendable {
        case idle
        /// Down since `since`; `presses` is 1 for a first press, 2 for the second of a double.
        case down(since: MonotonicTime, presses: Int, holdReported: Bool)
        /// Released after a first short press; waiting to see whether a second press follows.
        case awaitingSecond(releasedAt: MonotonicTime)
    }

    private struct ButtonState: Sendable {
        var phase: Phase = .idle
        var lastEdge: MonotonicTime?
        var lastLevel = false
        /// Where the contact came to rest after the last raw edge, and when: an edge ignored as
        /// bounce may still be the real one (a tap shorter than the debounce time).
        var rawLevel = false
        var rawEdge: MonotonicTime?
        var doublePressMeaningful: Bool
    }

    public let timing: ButtonTiming
    private var states: [Button: ButtonState]

    /// `doublePressButtons` are the buttons whose single press must wait out the double-press
    /// window (the record button: a single press does nothing, so a pocket bump cannot start).
    public init(timing: ButtonTiming = ButtonTiming(), doublePressButtons: Set<Button> = [.record]) {
        self.timing = timing
        var states: [Button: ButtonState] = [:]
        for b in Button.allCases { states[b] = ButtonState(doublePressMeaningful: doublePressButtons.contains(b)) }
        self.states = states
    }

    /// True while `button` is held down (after debouncing).
    public func isDown(_ button: Button) -> Bool { states[button]?.lastLevel ?? false }

    /// Feeds one edge. Returns the gestures it completes (at most two: one left pending by an
    /// earlier edge, one of its own).
    public mutating func edge(_ button: Button, pressed: Bool, at t: MonotonicTime) -> [ButtonGesture] {
        guard var s = states[button] else { return [] }
        defer { states[button] = s }
        var out = settle(&s, button, now: t)
        if pressed == s.rawLevel { return out }  // a repeated level is not an edge
        s.rawLevel = pressed
        s.rawEdge = t
        if pressed == s.lastLevel { return out }  // the end of a bounce: back where it was
        if let last = s.lastEdge, t - last < timing.debounce { return out }
        out += accept(&s, button, pressed: pressed, at: t)
        return out
    }

    /// A level the contact settled at inside the debounce time and kept for the debounce time
    /// is real: a bump shorter than the debounce time must not leave the button "held".
    private func settle(_ s: inout ButtonState, _ button: Button, now: MonotonicTime) -> [ButtonGesture] {
        guard s.rawLevel != s.lastLevel, let raw = s.rawEdge, now - raw >= timing.debounce else { return [] }
        return accept(&s, button, pressed: s.rawLevel, at: raw)
    }

    /// Applies a debounced edge.
    private func accept(_ s: inout ButtonState, _ button: Button, pressed: Bool, at t: MonotonicTime)
        -> [ButtonGesture]
    {
        s.lastEdge = t
        s.lastLevel = pressed
        var out: [ButtonGesture] = []
        switch (s.phase, pressed) {
        case (.idle, true):
            s.phase = .down(since: t, presses: 1, holdReported: false)
        case (.awaitingSecond(let releasedAt), true) where t - releasedAt >= timing.doublePressWindow:
            // The window ran out before advance() was called: that was a single press, and
            // this is a new first press.
            out.append(ButtonGesture(button: button, gesture: .press, at: releasedAt))
            s.phase = .down(since: t, presses: 1, holdReported: false)
        case (.awaitingSecond, true):
            s.phase = .down(since: t, presses: 2, holdReported: false)
            out.append(ButtonGesture(button: button, gesture: .doublePress, at: t))
        case (.down(let since, let presses, let held), false):
            if held || presses == 2 {
                s.phase = .idle
            } else if t - since >= timing.hold {
                // Released exactly at the hold time before advance() ran: still a hold.
                out.append(ButtonGesture(button: button, gesture: .hold, at: since + timing.hold))
                s.phase = .idle
            } else if s.doublePressMeaningful {
                s.phase = .awaitingSecond(releasedAt: t)
            } else {
                out.append(ButtonGesture(button: button, gesture: .press, at: t))
                s.phase = .idle
            }
        default:
            // A press while down or a release while up cannot happen after the level check;
            // a release while awaiting a second press is likewise impossible.
            break
        }
        return out
    }

    /// The earliest time at which `advance(to:)` has something to report, if any.
    public var nextDeadline: MonotonicTime? {
        var best: MonotonicTime?
        for s in states.values {
            let d: MonotonicTime?
            switch s.phase {
            case .idle: d = nil
            case .down(let since, let presses, let held): d = (held || presses == 2) ? nil : since + timing.hold
            case .awaitingSecond(let releasedAt): d = releasedAt + timing.doublePressWindow
            }
            if let d, best == nil || d < best! { best = d }
            if s.rawLevel != s.lastLevel, let raw = s.rawEdge, best == nil || raw + timing.debounce < best! {
                best = raw + timing.debounce
            }
        }
        return best
    }

    /// Reports holds and single presses whose time has come.
    public mutating func advance(to now: MonotonicTime) -> [ButtonGesture] {
        var out: [ButtonGesture] = []
        for button in Button.allCases {
            guard var s = states[button] else { continue }
            out += settle(&s, button, now: now)
            switch s.phase {
            case .down(let since, let presses, false) where presses == 1 && now - since >= timing.hold:
                s.phase = .down(since: since, presses: presses, holdReported: true)
                out.append(ButtonGesture(button: button, gesture: .hold, at: since + timing.hold))
            case .awaitingSecond(let releasedAt) where now - releasedAt >= timing.doublePressWindow:
                s.phase = .idle
                out.append(ButtonGesture(button: button, gesture: .press, at: releasedAt))
            default:
                break
            }
            states[button] = s
        }
        return out.sorted { $0.at < $1.at }
    }
}
