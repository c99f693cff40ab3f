/// What detector events do (`[detector] action`).
public enum DetectorAction: String, Sendable, CaseIterable {
    /// Nothing runs.
    case off
    /// Events become markers in the clip in progress and audit-log entries.
    case mark
    /// As `mark`, and sustained activity starts a clip (pre-event included).
    case record
}

/// Turns detector events into recorder decisions. Pure: the recorder feeds it updates and the
/// clock, and performs the actions it returns.
public struct DetectorPolicy: Sendable {
    public var action: DetectorAction
    /// Activity must last this long (nanoseconds) before `record` starts a clip.
    public var recordAfter: Int64
    /// A clip the detector started stops after this long (nanoseconds) with no activity; nil: the
    /// operator stops it.
    public var stopAfterQuiet: Int64?
    /// Events open now, by kind.
    private var open: [String: ActivityEvent] = [:]
    /// The clip in progress was started by the detector (so it may stop it).
    public private(set) var startedClip = false
    /// Kinds whose open event has had its clip: it lasted into a recording, so once that clip is
    /// stopped (by the operator, or after quiet) it does not start another; a new event may.
    private var spent: Set<String> = []
    private var quietSince: MonotonicTime?

    public init(action: DetectorAction, recordAfter: Int64 = Nanos.seconds(2), stopAfterQuiet: Int64? = nil) {
        self.action = action
        self.recordAfter = recordAfter
        self.stopAfterQuiet = stopAfterQuiet
    }

    public mutating func update(_ u: DetectorUpdate, now: MonotonicTime, machine: inout RecorderMachine) -> [RecorderAction] {
        guard action != .off else { return [] }
        var actions: [RecorderAction] = []
        switch u {
        case .began(let e):
            open[e.kind] = e
            quietSince = nil
            actions += machine.marker(kind: e.markerKind, at: e.start, score: e.roundedScore)
        case .ended(let e):
            open[e.kind] = nil
            spent.remove(e.kind)
            if open.isEmpty { quietSince = e.end ?? now }
        }
        // Starting or stopping a clip is left to `tick` on the control thread: updates arrive on
        // the media threads, which must not cut a pre-event buffer into fragments.
        return actions
    }

    /// The recorder opened a clip (any trigger): only a clip the detector asked for is its to stop.
    public mutating func clipStarted(trigger: Trigger) {
        if case .detector = trigger { startedClip = true } else { startedClip = false }
    }

    /// The recorder closed the clip in progress.
    public mutating func clipStopped() {
        startedClip = false
    }

    public mutating func tick(now: MonotonicTime, machine: inout RecorderMachine) -> [RecorderAction] {
        guard action == .record else { return [] }
        if machine.state != .recording { startedClip = false }
        if machine.state == .recording { spent.formUnion(open.keys) }
        if machine.state == .buffering, let e = fresh, now - e.start >= recordAfter {
            spent.insert(e.kind)
            return machine.start(at: now, trigger: .detector(kind: e.kind, score: e.roundedScore))
        }
        if startedClip, machine.state == .recording, open.isEmpty, let quiet = stopAfterQuiet, let since = quietSince,
            now - since >= quiet
        {
            return [.note("detector: no activity for \(quiet / 1_000_000_000) s, stopping the clip it started")]
                + machine.stop(at: now)
        }
        return []
    }

    /// Events open now, oldest first (none when the action is `off`).
    public var openEvents: [ActivityEvent] {
        action == .off ? [] : open.values.sorted { $0.start < $1.start }
    }

    /// The oldest open event that has not had a clip yet.
    private var fresh: ActivityEvent? {
        open.values.filter { !spent.contains($0.kind) }.min(by: { $0.start < $1.start })
    }

    /// When `tick` next has something to do, given the recorder's state.
    public func nextDeadline(_ state: RecorderState) -> MonotonicTime? {
        guard action == .record else { return nil }
        if state == .buffering, let e = fresh { return e.start + recordAfter }
        guard state == .recording else { return nil }
        if startedClip, let quiet = stopAfterQuiet, let since = quietSince { return since + quiet }
        return nil
    }
}
