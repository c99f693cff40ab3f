import Testing

@testable import BodycamCore

private func sec(_ s: Double) -> MonotonicTime { MonotonicTime(nanoseconds: Nanos.seconds(s)) }

private func press(_ button: Button, _ g: Gesture, at s: Double) -> ButtonGesture {
    ButtonGesture(button: button, gesture: g, at: sec(s))
}

/// A machine whose pre-event buffer is running (frames flowed at t = 0.5 s).
private func buffering(policy: RecorderPolicy = RecorderPolicy()) -> RecorderMachine {
    var m = RecorderMachine(policy: policy)
    _ = m.framesFlowing(at: sec(0.5))
    return m
}

/// A machine recording since `start`.
private func recording(since start: Double = 10) -> RecorderMachine {
    var m = buffering()
    _ = m.handle(press(.record, .doublePress, at: start))
    return m
}

private func starts(_ actions: [RecorderAction]) -> [MonotonicTime] {
    actions.compactMap { if case .startClip(let at, _) = $0 { return at } else { return nil } }
}

private func stops(_ actions: [RecorderAction]) -> [MonotonicTime] {
    actions.compactMap { if case .stopClip(let at) = $0 { return at } else { return nil } }
}

private func markers(_ actions: [RecorderAction]) -> [RecorderAction] {
    actions.filter { if case .marker = $0 { return true } else { return false } }
}

private func mutes(_ actions: [RecorderAction]) -> [Bool] {
    actions.compactMap { if case .setMute(let on, _) = $0 { return on } else { return nil } }
}

private func indicators(_ actions: [RecorderAction]) -> [IndicatorAction] {
    actions.compactMap { if case .indicator(let i) = $0 { return i } else { return nil } }
}

private let reminder: [RecorderAction] = [.indicator(.tone(.reminder)), .indicator(.haptic(.reminder))]

@Suite("RecorderMachine")
struct RecorderMachineTests {
    // MARK: - Start-up

    @Test("the first frames move starting to buffering and light the ready LED, once")
    func framesFlowing() {
        var m = RecorderMachine()
        #expect(m.state == .starting)
        let actions = m.framesFlowing(at: sec(0.5))
        #expect(m.state == .buffering)
        #expect(indicators(actions) == [.led(.ready, .on)])
        #expect(m.framesFlowing(at: sec(0.6)).isEmpty)
        #expect(m.state == .buffering)
    }

    @Test("a start before any frame has arrived is ignored")
    func startBeforeFrames() {
        var m = RecorderMachine()
        let byButton = m.handle(press(.record, .doublePress, at: 1))
        #expect(starts(byButton).isEmpty)
        #expect(indicators(byButton).isEmpty)
        let byControl = m.start(at: sec(1.5), trigger: .control)
        #expect(starts(byControl).isEmpty)
        #expect(m.state == .starting)
        #expect(m.recordingSince == nil)
        #expect(m.nextDeadline == nil)
        // Frames arriving later do not start a clip by themselves.
        #expect(starts(m.framesFlowing(at: sec(2))).isEmpty)
        #expect(m.state == .buffering)
    }

    // MARK: - Start and stop

    @Test("a double press starts a clip at the press time, red LED on, long vibration")
    func doublePressStarts() {
        var m = buffering()
        let actions = m.handle(press(.record, .doublePress, at: 12.25))
        #expect(
            actions == [
                .startClip(at: sec(12.25), trigger: .button),
                .indicator(.led(.recording, .on)),
                .indicator(.haptic(.long)),
            ])
        #expect(m.state == .recording)
        #expect(m.recordingSince == sec(12.25))
    }

    @Test("a second double press while recording does not start another clip")
    func secondDoublePressWhileRecording() {
        var m = recording(since: 10)
        let actions = m.handle(press(.record, .doublePress, at: 20))
        #expect(starts(actions).isEmpty)
        #expect(stops(actions).isEmpty)
        #expect(indicators(actions).isEmpty)
        #expect(m.state == .recording)
        #expect(m.recordingSince == sec(10))
        // The reminder schedule is that of the first start.
        #expect(m.nextDeadline == sec(130))
    }

    @Test("a single record press neither starts nor stops")
    func singleRecordPress() {
        var idle = buffering()
        #expect(starts(idle.handle(press(.record, .press, at: 5))).isEmpty)
        #expect(idle.state == .buffering)
        var rec = recording()
        #expect(stops(rec.handle(press(.record, .press, at: 15))).isEmpty)
        #expect(rec.state == .recording)
    }

    @Test("holding record 3 s stops the clip: stopClip at the hold time, red LED off, two short vibrations")
    func holdStops() {
        var m = recording(since: 10)
        let actions = m.handle(press(.record, .hold, at: 73))
        #expect(
            actions == [
                .stopClip(at: sec(73)),
                .indicator(.led(.recording, .off)),
                .indicator(.haptic(.twoShort)),
            ])
        #expect(m.state == .buffering)
        #expect(m.recordingSince == nil)
        #expect(m.nextDeadline == nil)
    }

    @Test("a hold while not recording stops nothing and signals nothing")
    func holdWhileBuffering() {
        var m = buffering()
        let actions = m.handle(press(.record, .hold, at: 5))
        #expect(stops(actions).isEmpty)
        #expect(indicators(actions).isEmpty)
        #expect(m.state == .buffering)
    }

    @Test("after a stop, a new double press starts a new clip")
    func restartAfterStop() {
        var m = recording(since: 10)
        _ = m.handle(press(.record, .hold, at: 40))
        let actions = m.handle(press(.record, .doublePress, at: 50))
        #expect(starts(actions) == [sec(50)])
        #expect(m.nextDeadline == sec(170))
    }

    @Test("a start from the detector carries its trigger")
    func detectorStart() {
        var m = buffering()
        let trigger = Trigger.detector(kind: "video", score: 0.8)
        let actions = m.start(at: sec(7), trigger: trigger)
        #expect(actions.first == .startClip(at: sec(7), trigger: trigger))
        #expect(m.state == .recording)
    }

    // MARK: - Markers and mute

    @Test("a marker press while recording stores a marker at the press time, with a short vibration")
    func markerWhileRecording() {
        var m = recording()
        let actions = m.handle(press(.marker, .press, at: 33.5))
        #expect(actions == [.marker(kind: "button", at: sec(33.5), score: nil), .indicator(.haptic(.short))])
        #expect(m.state == .recording)
    }

    @Test("a marker press while buffering stores nothing and does not vibrate")
    func markerWhileBuffering() {
        var m = buffering()
        let actions = m.handle(press(.marker, .press, at: 3))
        #expect(markers(actions).isEmpty)
        #expect(indicators(actions).isEmpty)
        var detector = buffering()
        #expect(detector.marker(kind: "audio", at: sec(3), score: 0.9).isEmpty)
    }

    @Test("a detector marker while recording keeps its kind and score")
    func detectorMarker() {
        var m = recording()
        #expect(m.marker(kind: "audio", at: sec(21), score: 0.75) == [.marker(kind: "audio", at: sec(21), score: 0.75)])
    }

    @Test("holding the marker button toggles mute, and so does the mute button: true, then false")
    func muteToggles() {
        var m = recording()
        let first = m.handle(press(.marker, .hold, at: 20))
        #expect(first == [.setMute(true, at: sec(20)), .indicator(.haptic(.threeShort))])
        #expect(m.muted)
        #expect(markers(first).isEmpty)
        let second = m.handle(press(.mute, .press, at: 25))
        #expect(second == [.setMute(false, at: sec(25)), .indicator(.haptic(.threeShort))])
        #expect(!m.muted)
        #expect(mutes(m.handle(press(.mute, .hold, at: 30))) == [true])
        #expect(m.state == .recording)
    }

    @Test("mute also toggles while buffering, and a machine started muted unmutes first")
    func muteWhileBufferingAndInitialMute() {
        var m = buffering()
        #expect(mutes(m.handle(press(.marker, .hold, at: 4))) == [true])
        var startedMuted = RecorderMachine(muted: true)
        _ = startedMuted.framesFlowing(at: sec(0.1))
        #expect(mutes(startedMuted.handle(press(.mute, .press, at: 1))) == [false])
        #expect(!startedMuted.muted)
    }

    // MARK: - Reminder

    @Test("while recording, a tone and a vibration every 2 minutes from the start")
    func reminderEveryTwoMinutes() {
        var m = recording(since: 10)
        #expect(m.nextDeadline == sec(130))
        #expect(m.tick(now: sec(129.999)).isEmpty)
        #expect(m.tick(now: sec(130)) == reminder)
        #expect(m.tick(now: sec(130.1)).isEmpty)
        #expect(m.nextDeadline == sec(250))
        #expect(m.tick(now: sec(249)).isEmpty)
        #expect(m.tick(now: sec(250)) == reminder)
        #expect(m.nextDeadline == sec(370))
    }

    @Test("the reminder interval comes from the policy")
    func reminderFromPolicy() {
        var m = buffering(policy: RecorderPolicy(reminderInterval: Nanos.seconds(30)))
        _ = m.handle(press(.record, .doublePress, at: 1))
        #expect(m.nextDeadline == sec(31))
        #expect(m.tick(now: sec(31)) == reminder)
    }

    @Test("no reminder while buffering, before or after a recording")
    func noReminderWhileBuffering() {
        var m = buffering()
        #expect(m.nextDeadline == nil)
        #expect(m.tick(now: sec(120)).isEmpty)
        #expect(m.tick(now: sec(10_000)).isEmpty)
        _ = m.handle(press(.record, .doublePress, at: 10_000))
        _ = m.handle(press(.record, .hold, at: 10_060))
        #expect(m.tick(now: sec(10_120)).isEmpty)
        #expect(m.tick(now: sec(10_500)).isEmpty)
    }

    @Test("a stalled clock gives one reminder, not a burst, and the schedule stays on the 2-minute grid")
    func stalledClockNoBurst() {
        var m = recording(since: 0)
        // Ten minutes pass without a tick (the process was stalled).
        #expect(m.tick(now: sec(605)) == reminder)
        #expect(m.tick(now: sec(605)).isEmpty)
        #expect(m.tick(now: sec(606)).isEmpty)
        #expect(m.nextDeadline == sec(720))
        #expect(m.tick(now: sec(720)) == reminder)
    }

    // MARK: - Shutdown

    @Test("shutdown while recording stops the clip at the shutdown time and leaves no timer behind")
    func shutdownWhileRecording() {
        var m = recording(since: 10)
        let actions = m.shutdown(at: sec(50))
        #expect(stops(actions) == [sec(50)])
        #expect(indicators(actions).contains(.led(.recording, .off)))
        #expect(m.state == .stopping)
        // The control loop sleeps until nextDeadline: a stale reminder would make it spin.
        #expect(m.nextDeadline == nil)
        #expect(m.tick(now: sec(130)).isEmpty)
        // Nothing starts again while stopping.
        #expect(starts(m.handle(press(.record, .doublePress, at: 51))).isEmpty)
        #expect(starts(m.start(at: sec(52), trigger: .control)).isEmpty)
        #expect(m.state == .stopping)
    }

    @Test("shutdown while buffering stops no clip and turns the ready LED off")
    func shutdownWhileBuffering() {
        var m = buffering()
        let actions = m.shutdown(at: sec(5))
        #expect(stops(actions).isEmpty)
        #expect(indicators(actions).contains(.led(.ready, .off)))
        #expect(m.state == .stopping)
    }
}

@Suite("Recorder machine: storage below the reserve")
struct RecorderMachineStorageTests {
    @Test("going low while recording stops the clip and alerts; starts are refused until space returns")
    func lowWhileRecording() {
        var m = recording(since: 10)
        let low = m.storage(low: true, at: sec(20))
        #expect(stops(low) == [sec(20)])
        #expect(low.contains(.warning(.storageLow, true)))
        #expect(low.contains(.indicator(.haptic(.alert))))
        #expect(!low.contains(.indicator(.haptic(.twoShort))), "the alert replaces the stop's two short pulses")
        #expect(m.state == .buffering && m.storageLow)
        // Repeated reports change nothing.
        #expect(m.storage(low: true, at: sec(21)).isEmpty)
        let refused = m.handle(press(.record, .doublePress, at: 22))
        #expect(starts(refused).isEmpty)
        #expect(refused.contains(.indicator(.haptic(.alert))))
        #expect(m.state == .buffering)
        let back = m.storage(low: false, at: sec(30))
        #expect(back.contains(.warning(.storageLow, false)))
        #expect(starts(m.handle(press(.record, .doublePress, at: 31))) == [sec(31)])
    }

    @Test("going low while buffering only alerts")
    func lowWhileBuffering() {
        var m = buffering()
        let low = m.storage(low: true, at: sec(5))
        #expect(stops(low).isEmpty)
        #expect(low.contains(.indicator(.haptic(.alert))))
        #expect(m.state == .buffering)
    }
}
