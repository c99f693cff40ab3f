/// What the recorder is doing, as the operator and `ctl status` see it.
public enum RecorderState: String, Sendable, Codable {
    /// Started, no frame has reached the pre-event buffer yet.
    case starting
    /// Frames flow into the pre-event buffer; no clip is open.
    case buffering
    /// A clip is open and being written.
    case recording
    /// Shutting down: the clip in progress (if any) is being finalised.
    case stopping
}

/// Why a clip was started or a marker placed.
public enum Trigger: Sendable, Equatable, Codable {
    case button
    case control
    case detector(kind: String, score: Double)
}

/// The recorder's decisions. The machine decides; the pipeline performs.
public enum RecorderAction: Sendable, Equatable {
    /// Open a clip beginning at the oldest buffered keyframe (or, with no pre-event buffer, at
    /// the next frame, which is made a keyframe).
    case startClip(at: MonotonicTime, trigger: Trigger)
    /// Close the clip in progress with media up to `at`.
    case stopClip(at: MonotonicTime)
    /// Store a marker at `at` in the clip in progress.
    case marker(kind: String, at: MonotonicTime, score: Double?)
    /// Silence the microphone from `at` (true) or restore it (false).
    case setMute(Bool, at: MonotonicTime)
    case indicator(IndicatorAction)
    /// Raise or clear one reason for the warning light (which shows them all: `WarningLight`).
    case warning(WarningReason, Bool)
    /// Something worth a log line and an audit entry that changes nothing else.
    case note(String)
}

/// Policy knobs of the recorder (from the `[recording]` config table).
public struct RecorderPolicy: Sendable, Equatable {
    /// A tone and vibration this often while recording, so the operator knows.
    public var reminderInterval: Int64 = Nanos.seconds(120)

    public init() {}

    public init(reminderInterval: Int64) { self.reminderInterval = reminderInterval }
}

/// The recorder state machine: operator gestures and pipeline events in, actions out.
///
/// It owns no media and does no I/O. The pipeline feeds it and performs the actions it returns,
/// in order; tests feed it with a manual clock and read the actions back.
public struct RecorderMachine: Sendable {
    public private(set) var state: RecorderState = .starting
    public private(set) var muted = false
    /// Free storage is below the reserve: no clip starts until space returns.
    public private(set) var storageLow = false
    /// When the clip in progress was requested (for the reminder timer).
    public private(set) var recordingSince: MonotonicTime?
    private var nextReminder: MonotonicTime?
    public let policy: RecorderPolicy

    public init(policy: RecorderPolicy = RecorderPolicy(), muted: Bool = false) {
        self.policy = policy
        self.muted = muted
    }

    /// The first frame reached the pre-event buffer.
    public mutating func framesFlowing(at t: MonotonicTime) -> [RecorderAction] {
        guard state == .starting else { return [] }
        state = .buffering
        return [.indicator(.led(.ready, .on)), .note("pre-event buffer running")]
    }

    /// A classified button gesture.
    public mutating func handle(_ g: ButtonGesture) -> [RecorderAction] {
        switch (g.button, g.gesture) {
        case (.record, .doublePress):
            return start(at: g.at, trigger: .button)
        case (.record, .hold):
            return stop(at: g.at)
        case (.record, .press):
            // A single press does nothing by design (pocket bumps); say so in the log only.
            return [.note("record pressed once: a double press starts recording")]
        case (.marker, .press), (.marker, .doublePress):
            guard state == .recording else {
                return [.note("marker pressed while not recording: ignored")]
            }
            return [.marker(kind: "button", at: g.at, score: nil), .indicator(.haptic(.short))]
        case (.marker, .hold), (.mute, .press), (.mute, .doublePress), (.mute, .hold):
            return toggleMute(at: g.at)
        }
    }

    /// Start a clip on request of something other than a button (the detector, the control API).
    public mutating func start(at t: MonotonicTime, trigger: Trigger) -> [RecorderAction] {
        switch state {
        case .buffering where storageLow:
            // Refused, and the wearer feels it: a start that silently did nothing would be worse.
            return [.note("storage below its reserve: no new clip"), .indicator(.haptic(.alert))]
        case .buffering:
            state = .recording
            recordingSince = t
            nextReminder = t + policy.reminderInterval
            return [
                .startClip(at: t, trigger: trigger),
                .indicator(.led(.recording, .on)),
                .indicator(.haptic(.long)),
            ]
        case .recording:
            return [.note("already recording")]
        case .starting:
            return [.note("start requested before the camera delivered a frame: ignored")]
        case .stopping:
            return []
        }
    }

    /// Stop the clip in progress.
    public mutating func stop(at t: MonotonicTime) -> [RecorderAction] {
        guard state == .recording else { return [.note("stop requested while not recording: ignored")] }
        state = .buffering
        recordingSince = nil
        nextReminder = nil
        return [.stopClip(at: t), .indicator(.led(.recording, .off)), .indicator(.haptic(.twoShort))]
    }

    /// Free storage fell below the reserve (`low`) or is back above it. Going low ends a clip in
    /// progress (it is finalised normally) and raises the warning light and an alert; nothing is
    /// deleted to make room, that is the offload queue's job once verified copies exist.
    public mutating func storage(low: Bool, at t: MonotonicTime) -> [RecorderAction] {
        guard low != storageLow else { return [] }
        storageLow = low
        guard low else {
            return [.warning(.storageLow, false), .note("storage above its reserve again: clips can start")]
        }
        var actions: [RecorderAction] = []
        if state == .recording {
            actions = stop(at: t).filter { if case .indicator(.haptic) = $0 { return false } else { return true } }
        }
        actions.append(.warning(.storageLow, true))
        actions.append(.indicator(.haptic(.alert)))
        actions.append(.note("storage below its reserve: no new clip starts"))
        return actions
    }

    /// A marker from a source other than the marker button (the detector in `mark` mode).
    public mutating func marker(kind: String, at t: MonotonicTime, score: Double?) -> [RecorderAction] {
        guard state == .recording else { return [] }
        return [.marker(kind: kind, at: t, score: score)]
    }

    private mutating func toggleMute(at t: MonotonicTime) -> [RecorderAction] {
        muted.toggle()
        return [.setMute(muted, at: t), .indicator(.haptic(.threeShort))]
    }

    /// The next time `tick` has work, if any.
    public var nextDeadline: MonotonicTime? { nextReminder }

    /// Timers: the recording reminder.
    public mutating func tick(now: MonotonicTime) -> [RecorderAction] {
        guard state == .recording, let due = nextReminder, now >= due else { return [] }
        // Skip reminders missed while the process was stalled rather than firing a burst.
        var next = due + policy.reminderInterval
        while next <= now { next = next + policy.reminderInterval }
        nextReminder = next
        return [.indicator(.tone(.reminder)), .indicator(.haptic(.reminder))]
    }

    /// Shut down: a clip in progress is stopped so it gets finalised.
    public mutating func shutdown(at t: MonotonicTime) -> [RecorderAction] {
        var actions: [RecorderAction] = []
        if state == .recording {
            actions.append(.stopClip(at: t))
            actions.append(.indicator(.led(.recording, .off)))
        }
        state = .stopping
        // No reminder is due any more; a stale deadline would keep the control loop waking.
        recordingSince = nil
        nextReminder = nil
        actions.append(.indicator(.led(.ready, .off)))
        return actions
    }
}
