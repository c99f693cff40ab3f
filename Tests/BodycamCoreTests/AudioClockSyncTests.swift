import Testing

@testable import BodycamCore

private let rate = 48_000
private let block = 480  // 10 ms
private let anchorTime = MonotonicTime(nanoseconds: 7_000_000_000)

private struct Run {
    var sync = AudioClockSync(sampleRate: rate)
    var blocks = 0
    var counts: [String: Int] = [:]
    /// Largest |timeline − clock| seen at any block, in nanoseconds.
    var maxErrorNs: Int64 = 0
    /// |timeline − clock| at the end of the last block, in nanoseconds.
    var finalErrorNs: Int64 = 0
}

/// Where output sample `emitted` lands on the timeline, minus the monotonic time it was captured.
private func timelineError(_ sync: AudioClockSync, at t: MonotonicTime) -> Int64 {
    sync.emitted * 1_000_000_000 / Int64(rate) - (t - anchorTime)
}

/// A microphone whose crystal runs `ppm` parts per million fast (negative: slow), read in 10 ms
/// blocks for `seconds` of monotonic time. Block k starts at k × 10 ms / (1 + ppm × 10⁻⁶).
private func simulate(ppm: Int64, seconds: Int64) -> Run {
    var run = Run()
    func start(_ k: Int64) -> MonotonicTime { anchorTime + k * 10_000_000 * 1_000_000 / (1_000_000 + ppm) }
    var k: Int64 = 0
    while start(k) - anchorTime < seconds * 1_000_000_000 {
        let t = start(k)
        if k > 0 { run.maxErrorNs = max(run.maxErrorNs, abs(timelineError(run.sync, at: t))) }
        let a = run.sync.adjust(time: t, frames: block)
        run.counts["\(a)", default: 0] += 1
        k += 1
    }
    run.blocks = Int(k)
    run.finalErrorNs = abs(timelineError(run.sync, at: start(k)))
    return run
}

@Suite("AudioClockSync")
struct AudioClockSyncTests {
    @Test("the first block anchors the timeline")
    func firstBlockAnchors() {
        var s = AudioClockSync(sampleRate: rate)
        #expect(s.anchor == nil)
        #expect(s.adjust(time: anchorTime, frames: block) == .none)
        #expect(s.anchor == anchorTime)
        #expect(s.emitted == 480)
        #expect(s.time(ofSample: 48_000) == anchorTime + 1_000_000_000)
        #expect(s.time(ofSample: 24) == anchorTime + 500_000)
    }

    @Test("a microphone 100 ppm fast stays within 1 ms of the clock over an hour, dropping 1 in 10 000 samples")
    func fastClockOneHour() {
        let run = simulate(ppm: 100, seconds: 3600)
        let s = run.sync
        #expect(run.finalErrorNs <= 1_000_000)
        #expect(run.maxErrorNs <= 1_000_000)
        // The microphone delivered 100 ppm more samples than an hour holds: 17 280 at 48 kHz.
        let delivered = Int64(run.blocks * block)
        #expect(delivered - s.emitted == s.samplesDropped)
        #expect(abs(s.samplesDropped - 17_280) <= 60)
        #expect(s.samplesRepeated == 0)
        #expect(s.gaps == 0)
        #expect(run.counts["dropOne"] == Int(s.samplesDropped))
        #expect(run.counts["discard"] == nil)
    }

    @Test("a microphone 100 ppm slow stays within 1 ms of the clock over an hour, repeating 1 in 10 000 samples")
    func slowClockOneHour() {
        let run = simulate(ppm: -100, seconds: 3600)
        let s = run.sync
        #expect(run.finalErrorNs <= 1_000_000)
        #expect(run.maxErrorNs <= 1_000_000)
        let delivered = Int64(run.blocks * block)
        #expect(s.emitted - delivered == s.samplesRepeated)
        #expect(abs(s.samplesRepeated - 17_280) <= 60)
        #expect(s.samplesDropped == 0)
        #expect(s.gaps == 0)
        #expect(run.counts["repeatOne"] == Int(s.samplesRepeated))
    }

    @Test("an exact microphone needs no correction")
    func exactClock() {
        let run = simulate(ppm: 0, seconds: 600)
        #expect(run.counts == ["none": run.blocks])
        #expect(run.finalErrorNs == 0)
    }

    @Test("a 200 ms gap becomes 200 ms of silence before the next block, and the timeline is back in step")
    func gapFilledWithSilence() {
        var s = AudioClockSync(sampleRate: rate)
        for k in 0..<100 { #expect(s.adjust(time: anchorTime + Int64(k) * 10_000_000, frames: block) == .none) }
        // The block that should have started at 1.000 s starts at 1.200 s.
        let after = anchorTime + 1_200_000_000
        #expect(s.adjust(time: after, frames: block) == .silenceBefore(frames: 9600))
        #expect(s.gaps == 1)
        #expect(s.gapSamples == 9600)
        // The block just passed on starts where it was captured.
        #expect(s.time(ofSample: s.emitted - Int64(block)) == after)
        for k in 1..<50 {
            #expect(s.adjust(time: after + Int64(k) * 10_000_000, frames: block) == .none)
        }
        #expect(s.samplesDropped == 0 && s.samplesRepeated == 0)
    }

    @Test("a shortfall under the gap threshold is corrected a sample at a time, not with silence")
    func smallShortfallNotAGap() {
        var s = AudioClockSync(sampleRate: rate)
        _ = s.adjust(time: anchorTime, frames: block)
        #expect(s.adjust(time: anchorTime + 40_000_000, frames: block) == .repeatOne)  // 30 ms late
        #expect(s.gaps == 0)
        #expect(s.samplesRepeated == 1)
    }

    @Test("a block from before audio already passed on (clock stepped back) is discarded")
    func overlapDiscarded() {
        var s = AudioClockSync(sampleRate: rate)
        for k in 0..<100 { _ = s.adjust(time: anchorTime + Int64(k) * 10_000_000, frames: block) }
        let emitted = s.emitted
        #expect(s.adjust(time: anchorTime + 900_000_000, frames: block) == .discard)
        #expect(s.emitted == emitted)
        #expect(s.adjust(time: anchorTime + 1_000_000_000, frames: block) == .none)
    }

    @Test("timestamp jitter under 1 ms changes nothing")
    func jitterIgnored() {
        var s = AudioClockSync(sampleRate: rate)
        var adjustments: [AudioClockSync.Adjustment] = []
        for k in 0..<60_000 {  // ten minutes
            let jitter = Int64(k % 3 - 1) * 900_000  // −0.9, 0, +0.9 ms
            let t = anchorTime + Int64(k) * 10_000_000 + (k == 0 ? 0 : jitter)
            adjustments.append(s.adjust(time: t, frames: block))
        }
        #expect(adjustments.allSatisfy { $0 == .none })
        #expect(s.samplesDropped == 0 && s.samplesRepeated == 0 && s.gaps == 0)
        #expect(s.emitted == 60_000 * 480)
    }

    @Test("days of uptime do not overflow the arithmetic: the timeline stays on the clock after 60 hours")
    func longUptime() {
        // The pre-event buffer runs from power-on; a device can stay up for days.
        var s = AudioClockSync(sampleRate: rate)
        let second: Int64 = 1_000_000_000
        var adjustments = 0
        for k in 0..<(60 * 3600) {
            if s.adjust(time: anchorTime + Int64(k) * second, frames: rate) != .none { adjustments += 1 }
        }
        #expect(adjustments == 0)
        let end = anchorTime + 60 * 3600 * second
        #expect(s.error(at: end) == 0)
        #expect(s.time(ofSample: s.emitted) == end)
        #expect(s.time(ofSample: s.emitted + 24) == end + 500_000)
    }
}
