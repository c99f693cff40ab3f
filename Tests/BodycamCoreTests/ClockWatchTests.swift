import Testing

@testable import BodycamCore

@Suite("Clock watch")
struct ClockWatchTests {
    func pair(_ mono: Double, _ wall: Double, trusted: Bool = true) -> ClockPair {
        ClockPair(
            monotonic: MonotonicTime(nanoseconds: Nanos.seconds(mono)),
            wall: WallClockReading(unixSeconds: 1_800_000_000 + wall, trusted: trusted))
    }

    @Test("a step forward or back is reported with its size; the pairing follows it")
    func steps() {
        var w = ClockWatch(pair(100, 0))
        #expect(w.observe(pair(101, 1)).isEmpty)
        let forward = w.observe(pair(102, 3602))
        guard case .stepped(let s, _, _) = forward.first else {
            Issue.record("no step: \(forward)")
            return
        }
        #expect(abs(s - 3600) < 1e-6)
        #expect(w.pair == pair(102, 3602))
        let back = w.observe(pair(103, 3598))
        guard case .stepped(let b, _, _) = back.first else {
            Issue.record("no step back: \(back)")
            return
        }
        #expect(abs(b + 5) < 1e-6)
    }

    @Test("slewing at NTP's limit (500 ppm) for a day, observed every 10 s, is never a step")
    func slewIsNotAStep() {
        var w = ClockWatch(pair(0, 0))
        for tick in 1...8_640 {
            let t = Double(tick * 10)
            #expect(w.observe(pair(t, t * (1 + 500e-6))).isEmpty)
        }
    }

    @Test("trust gained and lost is reported")
    func trust() {
        var w = ClockWatch(pair(0, 0, trusted: false))
        #expect(w.observe(pair(1, 1, trusted: true)) == [.trust(true)])
        #expect(w.observe(pair(2, 2, trusted: false)) == [.trust(false)])
    }
}
