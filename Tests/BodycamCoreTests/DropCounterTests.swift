import Testing

@testable import BodycamCore

@Suite struct CaptureDropCounterTests {
    @Test("gaps in the sequence that the pipeline did not make are the device's")
    func deviceGaps() {
        var c = CaptureDropCounter()
        for s: UInt64 in [0, 1, 2, 5, 6, 9] { c.saw(sequence: s, ours: 0) }
        #expect(c.deviceDrops(ours: 0) == 4)
        // Two more frames lost, both ours: the gap is ours, not the device's.
        c.saw(sequence: 12, ours: 2)
        #expect(c.deviceDrops(ours: 2) == 4)
    }

    @Test("our drops counted before their gap is seen never take the device's count back")
    func pendingDrops() {
        var c = CaptureDropCounter()
        for s: UInt64 in [0, 1, 4] { c.saw(sequence: s, ours: 0) }
        #expect(c.deviceDrops(ours: 0) == 2)
        // Frames 5…8 handed back while 4 was encoding; the camera then goes away for a while.
        #expect(c.deviceDrops(ours: 4) == 2)
        // It comes back numbering on: the gap of 4 is ours.
        c.saw(sequence: 9, ours: 4)
        #expect(c.deviceDrops(ours: 4) == 2)
        c.saw(sequence: 11, ours: 4)
        #expect(c.deviceDrops(ours: 4) == 3)
    }

    @Test("a repeated sequence number is neither a gap nor a restart, even with our drops pending")
    func repeatedSequence() {
        var c = CaptureDropCounter()
        for s: UInt64 in [0, 1, 2, 2, 3] { c.saw(sequence: s, ours: 0) }
        #expect(c.deviceDrops(ours: 0) == 0)
        // 4…7 handed back, then 3 comes again before 8.
        c.saw(sequence: 3, ours: 4)
        c.saw(sequence: 8, ours: 4)
        #expect(c.deviceDrops(ours: 4) == 0)
    }

    @Test("a source that numbers from zero again after a reopen is re-based")
    func restartedSequence() {
        var c = CaptureDropCounter()
        for s: UInt64 in [100, 101, 103] { c.saw(sequence: s, ours: 0) }
        #expect(c.deviceDrops(ours: 0) == 1)
        // 104…107 were ours, then the device was reopened and counts from 0.
        c.saw(sequence: 0, ours: 4)
        #expect(c.deviceDrops(ours: 4) == 1)
        c.saw(sequence: 1, ours: 4)
        c.saw(sequence: 3, ours: 4)
        #expect(c.deviceDrops(ours: 4) == 2)
        c.saw(sequence: 6, ours: 6)
        #expect(c.deviceDrops(ours: 6) == 2)
    }
}
