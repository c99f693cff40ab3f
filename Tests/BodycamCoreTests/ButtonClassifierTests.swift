import Testing

@testable import BodycamCore

/// Milliseconds on the manual clock.
private func ms(_ v: Int) -> MonotonicTime { MonotonicTime(nanoseconds: Int64(v) * 1_000_000) }

private func gesture(_ button: Button, _ g: Gesture, _ at: Int) -> ButtonGesture {
    ButtonGesture(button: button, gesture: g, at: ms(at))
}

/// Default timing: 30 ms debounce, 500 ms double-press window, 3 s hold; record has a double meaning.
private func classifier() -> ButtonClassifier { ButtonClassifier() }

@Suite("ButtonClassifier")
struct ButtonClassifierTests {
    // MARK: - Single and double press on the record button

    @Test("a single record press is reported only once the double-press window has passed")
    func singlePressWaitsForWindow() {
        var c = classifier()
        #expect(c.edge(.record, pressed: true, at: ms(1000)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(1100)).isEmpty)
        #expect(c.nextDeadline == ms(1600))
        #expect(c.advance(to: ms(1599)).isEmpty)
        // The press is dated by the release that decided it.
        #expect(c.advance(to: ms(1600)) == [gesture(.record, .press, 1100)])
        #expect(c.advance(to: ms(5000)).isEmpty)
        #expect(c.nextDeadline == nil)
    }

    @Test("a late advance still reports the single press once, at its release time")
    func lateAdvanceReportsSinglePressOnce() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(0))
        _ = c.edge(.record, pressed: false, at: ms(150))
        #expect(c.advance(to: ms(9000)) == [gesture(.record, .press, 150)])
        #expect(c.advance(to: ms(9001)).isEmpty)
    }

    @Test("a double press is reported at the second press edge, with that edge's time")
    func doublePressAtSecondEdge() {
        var c = classifier()
        #expect(c.edge(.record, pressed: true, at: ms(1000)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(1100)).isEmpty)
        #expect(c.advance(to: ms(1299)).isEmpty)
        #expect(c.edge(.record, pressed: true, at: ms(1300)) == [gesture(.record, .doublePress, 1300)])
        #expect(c.edge(.record, pressed: false, at: ms(1400)).isEmpty)
        // Neither a single press nor anything else follows.
        #expect(c.nextDeadline == nil)
        #expect(c.advance(to: ms(10_000)).isEmpty)
    }

    @Test("holding the second press of a double press is not a hold (it cannot stop the clip it started)")
    func heldSecondPressIsNotHold() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(0))
        _ = c.edge(.record, pressed: false, at: ms(100))
        #expect(c.edge(.record, pressed: true, at: ms(300)) == [gesture(.record, .doublePress, 300)])
        #expect(c.nextDeadline == nil)
        #expect(c.advance(to: ms(5000)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(6000)).isEmpty)
        #expect(c.advance(to: ms(20_000)).isEmpty)
    }

    @Test("a second press just inside the window is a double press")
    func secondPressJustInsideWindow() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(0))
        _ = c.edge(.record, pressed: false, at: ms(100))
        #expect(c.edge(.record, pressed: true, at: ms(599)) == [gesture(.record, .doublePress, 599)])
    }

    @Test("a second press after the window is a new press even when advance() has not run yet")
    func secondPressAfterWindowWithoutAdvance() {
        // The control loop handles queued edges before its timer; a slow wake-up must not turn
        // two separate presses into a double press (that would start a recording).
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(0))
        _ = c.edge(.record, pressed: false, at: ms(100))
        #expect(c.edge(.record, pressed: true, at: ms(700)) == [gesture(.record, .press, 100)])
        #expect(c.edge(.record, pressed: false, at: ms(800)).isEmpty)
        // The second press is itself a single press, reported after its own window.
        #expect(c.advance(to: ms(1299)).isEmpty)
        #expect(c.advance(to: ms(1300)) == [gesture(.record, .press, 800)])
    }

    @Test("a second press exactly at the end of the window agrees with what advance() would say")
    func secondPressAtWindowEdge() {
        var viaAdvance = classifier()
        _ = viaAdvance.edge(.record, pressed: true, at: ms(0))
        _ = viaAdvance.edge(.record, pressed: false, at: ms(100))
        let fromAdvance = viaAdvance.advance(to: ms(600))
        #expect(fromAdvance == [gesture(.record, .press, 100)])

        var viaEdge = classifier()
        _ = viaEdge.edge(.record, pressed: true, at: ms(0))
        _ = viaEdge.edge(.record, pressed: false, at: ms(100))
        #expect(viaEdge.edge(.record, pressed: true, at: ms(600)) == fromAdvance)
    }

    // MARK: - Hold

    @Test("a hold is reported at exactly since + hold while still held, and nothing on release")
    func holdWhileHeld() {
        var c = classifier()
        #expect(c.edge(.record, pressed: true, at: ms(1000)).isEmpty)
        #expect(c.nextDeadline == ms(4000))
        #expect(c.advance(to: ms(3999)).isEmpty)
        #expect(c.advance(to: ms(4000)) == [gesture(.record, .hold, 4000)])
        #expect(c.isDown(.record))
        #expect(c.nextDeadline == nil)
        #expect(c.advance(to: ms(8000)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(9000)).isEmpty)
        #expect(!c.isDown(.record))
        #expect(c.advance(to: ms(20_000)).isEmpty)
    }

    @Test("a late advance dates the hold at since + hold, not at the late time")
    func lateAdvanceDatesHold() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(1000))
        #expect(c.advance(to: ms(7000)) == [gesture(.record, .hold, 4000)])
    }

    @Test("a release exactly at the hold threshold before advance() still counts as a hold")
    func releaseAtHoldThreshold() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(1000))
        #expect(c.edge(.record, pressed: false, at: ms(4000)) == [gesture(.record, .hold, 4000)])
        // Not followed by a single press either.
        #expect(c.nextDeadline == nil)
        #expect(c.advance(to: ms(10_000)).isEmpty)
    }

    @Test("a release long after the hold time, with advance() never run, is one hold at since + hold")
    func releaseLongAfterHoldWithoutAdvance() {
        var c = classifier()
        _ = c.edge(.marker, pressed: true, at: ms(0))
        #expect(c.edge(.marker, pressed: false, at: ms(6500)) == [gesture(.marker, .hold, 3000)])
        #expect(c.advance(to: ms(10_000)).isEmpty)
    }

    @Test("a press released one millisecond short of the hold time is a press, not a hold")
    func releaseJustBeforeHold() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(1000))
        #expect(c.edge(.record, pressed: false, at: ms(3999)).isEmpty)
        #expect(c.advance(to: ms(4498)).isEmpty)
        #expect(c.advance(to: ms(4499)) == [gesture(.record, .press, 3999)])
    }

    // MARK: - Debounce

    @Test("contact bounce within the debounce time is ignored on press and on release")
    func bounceIgnored() {
        var c = classifier()
        // Press with bounce: only the first edge counts.
        #expect(c.edge(.record, pressed: true, at: ms(0)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(5)).isEmpty)
        #expect(c.edge(.record, pressed: true, at: ms(10)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(15)).isEmpty)
        #expect(c.edge(.record, pressed: true, at: ms(20)).isEmpty)
        #expect(c.isDown(.record))
        // Release with bounce.
        #expect(c.edge(.record, pressed: false, at: ms(200)).isEmpty)
        #expect(c.edge(.record, pressed: true, at: ms(205)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(210)).isEmpty)
        #expect(!c.isDown(.record))
        // The bounces were not a second press: the single press is reported after the window.
        #expect(c.advance(to: ms(699)).isEmpty)
        #expect(c.advance(to: ms(700)) == [gesture(.record, .press, 200)])
    }

    @Test("a bouncy double press is one double press at the second clean edge")
    func bouncyDoublePress() {
        var c = classifier()
        var all: [ButtonGesture] = []
        let edges: [(Bool, Int)] = [
            (true, 0), (false, 4), (true, 9),  // first press
            (false, 120), (true, 126), (false, 131),  // first release
            (true, 300), (false, 303), (true, 307),  // second press
            (false, 420), (true, 424), (false, 429),  // second release
        ]
        for (pressed, t) in edges { all += c.edge(.record, pressed: pressed, at: ms(t)) }
        all += c.advance(to: ms(5000))
        #expect(all == [gesture(.record, .doublePress, 300)])
    }

    @Test("bounce at the start of a hold does not move the hold time")
    func bounceBeforeHold() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(0))
        _ = c.edge(.record, pressed: false, at: ms(8))
        _ = c.edge(.record, pressed: true, at: ms(16))
        #expect(c.nextDeadline == ms(3000))
        #expect(c.advance(to: ms(3000)) == [gesture(.record, .hold, 3000)])
    }

    @Test("a tap shorter than the debounce time never becomes a hold")
    func tapShorterThanDebounceIsNotHold() {
        // The release of a 20 ms bump falls inside the debounce time. The button is up afterwards;
        // if the classifier kept believing it down, it would report a hold 3 s later and stop the
        // recording the operator never asked to stop.
        var c = classifier()
        var all: [ButtonGesture] = []
        all += c.edge(.record, pressed: true, at: ms(1000))
        all += c.edge(.record, pressed: false, at: ms(1020))
        var t = 1000
        while t <= 10_000 {
            all += c.advance(to: ms(t))
            t += 10
        }
        #expect(!all.contains { $0.gesture == .hold })
        #expect(!c.isDown(.record))
        // And the button still works normally afterwards.
        _ = c.edge(.record, pressed: true, at: ms(12_000))
        _ = c.edge(.record, pressed: false, at: ms(12_100))
        #expect(c.edge(.record, pressed: true, at: ms(12_300)) == [gesture(.record, .doublePress, 12_300)])
    }

    @Test("a repeated level is not an edge and does not restart the hold time")
    func repeatedLevel() {
        var c = classifier()
        _ = c.edge(.record, pressed: true, at: ms(0))
        #expect(c.edge(.record, pressed: true, at: ms(1000)).isEmpty)
        #expect(c.advance(to: ms(3000)) == [gesture(.record, .hold, 3000)])
        #expect(c.edge(.record, pressed: false, at: ms(4000)).isEmpty)
        #expect(c.edge(.record, pressed: false, at: ms(4100)).isEmpty)
        #expect(c.advance(to: ms(9000)).isEmpty)
    }

    // MARK: - Buttons without a double meaning

    @Test("a marker press is reported on release, dated by the release")
    func markerPressOnRelease() {
        var c = classifier()
        #expect(c.edge(.marker, pressed: true, at: ms(1000)).isEmpty)
        #expect(c.nextDeadline == ms(4000))
        #expect(c.edge(.marker, pressed: false, at: ms(1200)) == [gesture(.marker, .press, 1200)])
        #expect(c.nextDeadline == nil)
        #expect(c.advance(to: ms(10_000)).isEmpty)
    }

    @Test("two quick marker presses are two presses, never a double press")
    func markerTwoQuickPresses() {
        var c = classifier()
        var all: [ButtonGesture] = []
        all += c.edge(.marker, pressed: true, at: ms(0))
        all += c.edge(.marker, pressed: false, at: ms(100))
        all += c.edge(.marker, pressed: true, at: ms(200))
        all += c.edge(.marker, pressed: false, at: ms(300))
        all += c.advance(to: ms(5000))
        #expect(all == [gesture(.marker, .press, 100), gesture(.marker, .press, 300)])
    }

    @Test("the mute button presses on release; marker hold is a hold")
    func muteAndMarkerHold() {
        var c = classifier()
        _ = c.edge(.mute, pressed: true, at: ms(0))
        #expect(c.edge(.mute, pressed: false, at: ms(90)) == [gesture(.mute, .press, 90)])
        _ = c.edge(.marker, pressed: true, at: ms(1000))
        #expect(c.advance(to: ms(4000)) == [gesture(.marker, .hold, 4000)])
        #expect(c.edge(.marker, pressed: false, at: ms(4500)).isEmpty)
    }

    @Test("with no double-press buttons, a record press is reported on release")
    func noDoublePressButtons() {
        var c = ButtonClassifier(doublePressButtons: [])
        _ = c.edge(.record, pressed: true, at: ms(0))
        #expect(c.edge(.record, pressed: false, at: ms(100)) == [gesture(.record, .press, 100)])
        _ = c.edge(.record, pressed: true, at: ms(200))
        #expect(c.edge(.record, pressed: false, at: ms(300)) == [gesture(.record, .press, 300)])
    }

    @Test("custom timing is honoured")
    func customTiming() {
        let timing = ButtonTiming(
            debounce: Nanos.milliseconds(10), doublePressWindow: Nanos.milliseconds(300), hold: Nanos.seconds(1))
        var c = ButtonClassifier(timing: timing)
        _ = c.edge(.record, pressed: true, at: ms(0))
        _ = c.edge(.record, pressed: false, at: ms(15))  // past a 10 ms debounce: a real release
        #expect(c.nextDeadline == ms(315))
        #expect(c.advance(to: ms(315)) == [gesture(.record, .press, 15)])
        _ = c.edge(.record, pressed: true, at: ms(1000))
        #expect(c.nextDeadline == ms(2000))
        #expect(c.advance(to: ms(2000)) == [gesture(.record, .hold, 2000)])
    }

    // MARK: - Deadlines and independence

    @Test("nextDeadline is the earliest pending window or hold over all buttons")
    func nextDeadlineValues() {
        var c = classifier()
        #expect(c.nextDeadline == nil)
        _ = c.edge(.record, pressed: true, at: ms(1000))
        #expect(c.nextDeadline == ms(4000))  // record hold
        _ = c.edge(.record, pressed: false, at: ms(1100))
        #expect(c.nextDeadline == ms(1600))  // record double-press window
        _ = c.edge(.marker, pressed: true, at: ms(1200))
        #expect(c.nextDeadline == ms(1600))  // still the record window, before the marker hold
        #expect(c.advance(to: ms(1600)) == [gesture(.record, .press, 1100)])
        #expect(c.nextDeadline == ms(4200))  // marker hold
        _ = c.edge(.mute, pressed: true, at: ms(1300))
        #expect(c.nextDeadline == ms(4200))
        #expect(c.advance(to: ms(4200)) == [gesture(.marker, .hold, 4200)])
        #expect(c.nextDeadline == ms(4300))  // mute hold
        #expect(c.advance(to: ms(4300)) == [gesture(.mute, .hold, 4300)])
        #expect(c.nextDeadline == nil)
    }

    @Test("gestures due together from advance() come out in time order")
    func advanceSortsByTime() {
        var c = classifier()
        _ = c.edge(.mute, pressed: true, at: ms(500))
        _ = c.edge(.record, pressed: true, at: ms(700))
        _ = c.edge(.marker, pressed: true, at: ms(600))
        #expect(c.advance(to: ms(9000)) == [
            gesture(.mute, .hold, 3500), gesture(.marker, .hold, 3600), gesture(.record, .hold, 3700),
        ])
    }

    @Test("buttons are independent: a marker press during a record hold changes nothing for either")
    func independence() {
        var c = classifier()
        var all: [ButtonGesture] = []
        all += c.edge(.record, pressed: true, at: ms(0))
        // Within the record button's debounce time, but on another button: not bounce.
        all += c.edge(.marker, pressed: true, at: ms(10))
        #expect(c.isDown(.marker))
        all += c.edge(.marker, pressed: false, at: ms(200))
        #expect(all == [gesture(.marker, .press, 200)])
        #expect(c.isDown(.record))
        #expect(c.advance(to: ms(3000)) == [gesture(.record, .hold, 3000)])
    }

    @Test("a double press on record is not disturbed by marker edges in between")
    func doublePressWithMarkerInBetween() {
        var c = classifier()
        var all: [ButtonGesture] = []
        all += c.edge(.record, pressed: true, at: ms(0))
        all += c.edge(.record, pressed: false, at: ms(100))
        all += c.edge(.marker, pressed: true, at: ms(150))
        all += c.edge(.marker, pressed: false, at: ms(250))
        all += c.edge(.record, pressed: true, at: ms(400))
        all += c.edge(.record, pressed: false, at: ms(500))
        all += c.advance(to: ms(10_000))
        #expect(all == [gesture(.marker, .press, 250), gesture(.record, .doublePress, 400)])
    }
}
