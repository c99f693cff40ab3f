import Testing

@testable import BodycamCore

/// What the LED, vibration and buzzer lines show over time.
@Suite("IndicatorTimeline")
struct IndicatorTimelineTests {
    let t0 = MonotonicTime(nanoseconds: 1_000_000_000)

    func at(_ ms: Int) -> MonotonicTime { t0 + Int64(ms) * 1_000_000 }

    @Test("a steady LED is on until switched off, and never asks to be woken")
    func steady() {
        var t = IndicatorTimeline()
        t.apply(.led(.recording, .on), at: t0)
        #expect(t.levels(at: at(0)).leds[.recording] == true)
        #expect(t.levels(at: at(60_000)).leds[.recording] == true)
        #expect(t.nextChange(after: at(5)) == nil)
        t.apply(.led(.recording, .off), at: at(100))
        #expect(t.levels(at: at(101)).leds[.recording] == false)
        #expect(t.levels(at: at(101)).leds[.ready] == false)
    }

    @Test("a blinking LED toggles at its on and off times, and the next change is exact")
    func blink() {
        var t = IndicatorTimeline()
        t.apply(.led(.dock, .blink(onMilliseconds: 200, offMilliseconds: 800)), at: t0)
        #expect(t.levels(at: at(0)).leds[.dock] == true)
        #expect(t.levels(at: at(199)).leds[.dock] == true)
        #expect(t.levels(at: at(200)).leds[.dock] == false)
        #expect(t.levels(at: at(999)).leds[.dock] == false)
        #expect(t.levels(at: at(1000)).leds[.dock] == true)
        #expect(t.nextChange(after: at(50)) == at(200))
        #expect(t.nextChange(after: at(200)) == at(1000))
        // Asking for the same pattern again keeps its phase.
        t.apply(.led(.dock, .blink(onMilliseconds: 200, offMilliseconds: 800)), at: at(500))
        #expect(t.nextChange(after: at(500)) == at(1000))
    }

    @Test("a vibration pattern pulses and then stops, with each edge reported")
    func pulses() {
        var t = IndicatorTimeline()
        t.apply(.haptic(.twoShort), at: t0)  // 120 on, 120 off, 120 on
        #expect(t.levels(at: at(0)).haptic)
        #expect(!t.levels(at: at(130)).haptic)
        #expect(t.levels(at: at(250)).haptic)
        #expect(!t.levels(at: at(361)).haptic)
        #expect(t.nextChange(after: at(0)) == at(120))
        #expect(t.nextChange(after: at(120)) == at(240))
        #expect(t.nextChange(after: at(240)) == at(360))
        #expect(t.nextChange(after: at(360)) == nil)
        #expect(!t.levels(at: at(0)).tone)
    }
}
