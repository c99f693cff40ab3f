import Testing

@testable import BodycamCore

// 25 fps video on a 90 kHz timescale (3600 ticks a frame), a keyframe every 25 frames; Opus at
// 48 kHz in 20 ms packets (960 ticks). The pipeline's running timeline does not start at zero.
private let frameNs: Int64 = 40_000_000
private let base = MonotonicTime(nanoseconds: 1000 * 1_000_000_000)
private let dtsBase: Int64 = 123_456
private let frameTicks: Int64 = 3600

/// A video ring holding the frames with these frame numbers (a missing number is a dropped frame).
/// Durations start out wrong on purpose: the cursor must fill them in.
private func videoRing(_ frames: [Int]) -> MediaRing {
    let ring = MediaRing(capacity: 1 << 20, maxEntries: 1024)
    for n in frames {
        let e = MediaEntry(
            length: 100, time: base + Int64(n) * frameNs, pts: dtsBase + Int64(n) * frameTicks,
            dts: dtsBase + Int64(n) * frameTicks, duration: 1, isSync: n % 25 == 0)
        ring.append(e) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }
    return ring
}

private func videoRing(count: Int) -> MediaRing { videoRing(Array(0..<count)) }

/// Time of frame number `n`.
private func frameTime(_ n: Int) -> MonotonicTime { base + Int64(n) * frameNs }

/// An audio ring of 20 ms packets captured at these times.
private func audioRing(_ times: [MonotonicTime]) -> MediaRing {
    let ring = MediaRing(capacity: 1 << 20, maxEntries: 4096)
    for t in times {
        ring.append(MediaEntry(length: 60, time: t, pts: 0, dts: 0, duration: 960, isSync: true)) {
            $0.initializeMemory(as: UInt8.self, repeating: 0)
        }
    }
    return ring
}

/// Packets every 20 ms from `from` (ms relative to `origin`) up to, not including, `to`, shifted
/// by `shift(k)` ms for the packet that starts at k × 20 ms.
private func audioTimes(
    origin: MonotonicTime, fromMs: Int, toMs: Int, shiftMs: (Int) -> Int = { _ in 0 }
) -> [MonotonicTime] {
    stride(from: fromMs, to: toMs, by: 20).map { origin + Nanos.milliseconds($0 + shiftMs($0)) }
}

private func cursor(
    _ video: MediaRing, originSeq: Int, audioFrom: MonotonicTime, audioFromSeq: Int = 0, lead: Int64 = 0
) -> ClipCursor {
    ClipCursor(
        video: video, originSeq: originSeq, audioFromSeq: audioFromSeq, audioFrom: audioFrom,
        videoTicksPerSecond: 90_000, audioTicksPerSecond: 48_000, videoFrameTicks: frameTicks, audioLeadTicks: lead)
}

/// One cut that must produce a fragment.
private func cut(
    _ c: inout ClipCursor, _ video: MediaRing, _ audio: MediaRing, _ videoEnd: Int, _ until: MonotonicTime
) throws -> FragmentPlan {
    let plan = c.cut(video: video, audio: audio, videoEnd: videoEnd, until: until)
    return try #require(plan)
}

/// Cuts at every keyframe after the cursor's position, then the rest at the ring's end.
private func cutAll(_ c: inout ClipCursor, _ video: MediaRing, _ audio: MediaRing) -> [FragmentPlan] {
    var plans: [FragmentPlan] = []
    while let k = video.nextSync(atOrAfter: c.nextVideoSeq + 1) {
        if let p = c.cut(video: video, audio: audio, videoEnd: k, until: video[k].time) { plans.append(p) }
    }
    let end = video[video.endSeq - 1].time + frameNs
    if let p = c.cut(video: video, audio: audio, videoEnd: video.endSeq, until: end) { plans.append(p) }
    return plans
}

@Suite("ClipCursor")
struct ClipCursorTests {
    // MARK: - Video

    @Test("fragments are cut at keyframes with the right ranges, decode times and sequence numbers")
    func videoRanges() throws {
        let video = videoRing(count: 125)
        let audio = audioRing([])
        var c = cursor(video, originSeq: 25, audioFrom: frameTime(25))
        #expect(c.mediaTime(frameTime(30)) == 5 * frameNs)
        let p1 = try cut(&c, video, audio, 50, frameTime(50))
        #expect(p1.sequenceNumber == 1)
        #expect(p1.video == 25..<50)
        #expect(p1.videoDecodeTime == 0)
        #expect(p1.audio.isEmpty)
        let p2 = try cut(&c, video, audio, 75, frameTime(75))
        #expect(p2.sequenceNumber == 2)
        #expect(p2.video == 50..<75)
        #expect(p2.videoDecodeTime == 25 * frameTicks)
        #expect(c.fragments == 2)
        #expect(c.nextVideoSeq == 75)
    }

    @Test("audio that stops before the picture is reported at the clip's end, jitter is not")
    func audioMissingAtEnd() throws {
        let video = videoRing(count: 75)
        let origin = frameTime(0)
        // Sound from 0.1 s up to 2.0 s of a 3 s clip (the microphone stalled), with a lead (pre-skip).
        let short = audioRing(audioTimes(origin: origin, fromMs: 100, toMs: 2000))
        var c = cursor(video, originSeq: 0, audioFrom: origin, lead: 312)
        #expect(c.audioMissingAtEnd(tolerance: Nanos.milliseconds(250)) == nil)  // nothing cut yet
        _ = cutAll(&c, video, short)
        #expect(c.cutMediaTime == 75 * frameNs)
        #expect(c.audioEndMediaTime == Nanos.milliseconds(2000))
        #expect(c.audioMissingAtEnd(tolerance: Nanos.milliseconds(250)) == Nanos.milliseconds(2000)..<(75 * frameNs))
        // Sound to within a packet of the end: nothing missing.
        let whole = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 2980))
        var d = cursor(video, originSeq: 0, audioFrom: origin)
        _ = cutAll(&d, video, whole)
        #expect(d.audioMissingAtEnd(tolerance: Nanos.milliseconds(250)) == nil)
        // A stop at 2.0 s whose next frame comes 0.6 s later (a slow camera): audio is owed only
        // up to the stop, so nothing is missing.
        let sparse = videoRing([0, 25, 50, 65])
        let toStop = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 2000))
        var f = cursor(sparse, originSeq: 0, audioFrom: origin)
        _ = try cut(&f, sparse, toStop, 1, frameTime(25))
        _ = try cut(&f, sparse, toStop, 2, frameTime(50))
        _ = try cut(&f, sparse, toStop, 3, frameTime(50) + 1)
        #expect(f.cutMediaTime == 65 * frameNs)
        #expect(f.audioMissingAtEnd(tolerance: Nanos.milliseconds(250)) == nil)
        // No sound at all: not a gap at the end (the packet count says it).
        var e = cursor(video, originSeq: 0, audioFrom: origin)
        _ = cutAll(&e, video, audioRing([]))
        #expect(e.audioEndMediaTime == nil && e.audioMissingAtEnd(tolerance: 0) == nil)
    }

    @Test("picture that stops before the clip's end (camera lost at the stop) is reported, a normal end is not")
    func videoMissingAtEnd() throws {
        let tolerance = Nanos.milliseconds(250)
        let origin = frameTime(0)
        // Frames up to 1.96 s (49 frames), then the camera is lost; sound runs on to the stop at 4 s.
        let video = videoRing(count: 50)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 4000))
        var c = cursor(video, originSeq: 0, audioFrom: origin)
        #expect(c.videoMissingAtEnd(tolerance: tolerance) == nil)  // nothing cut yet
        _ = try cut(&c, video, audio, 25, frameTime(25))
        _ = try cut(&c, video, audio, 50, frameTime(50))
        #expect(c.videoMissingAtEnd(tolerance: tolerance) == nil)
        // Sound alone while the picture is gone, then the stop.
        let alone = try cut(&c, video, audio, 50, origin + Nanos.milliseconds(3000))
        #expect(alone.video.isEmpty && !alone.audio.isEmpty)
        _ = try cut(&c, video, audio, 50, origin + Nanos.milliseconds(4000) + 1)
        #expect(c.cutMediaTime == Nanos.milliseconds(4000) + 1)
        #expect(c.videoMissingAtEnd(tolerance: tolerance) == (50 * frameNs)..<(Nanos.milliseconds(4000) + 1))
        // The stop soon after the loss: the last frames are still uncut, so the final cut takes
        // them and the sound up to the stop together; the picture still ends at the loss.
        var soon = cursor(video, originSeq: 0, audioFrom: origin)
        _ = try cut(&soon, video, audio, 25, frameTime(25))
        let last = try cut(&soon, video, audio, 50, origin + Nanos.milliseconds(3000) + 1)
        #expect(last.video == 25..<50 && last.endMediaTime == Nanos.milliseconds(3000) + 1)
        #expect(soon.videoMissingAtEnd(tolerance: tolerance) == (50 * frameNs)..<(Nanos.milliseconds(3000) + 1))
        // … and only as far as sound was taken: none past 4 s exists, so a stop at 5 s ends at 4 s.
        var late = cursor(video, originSeq: 0, audioFrom: origin)
        _ = try cut(&late, video, audio, 50, origin + Nanos.milliseconds(5000))
        #expect(late.cutMediaTime == Nanos.milliseconds(4000))
        // The picture coming back (a cut with video) ends the missing stretch: the camera's own
        // report lists that gap.
        var d = cursor(video, originSeq: 0, audioFrom: origin)
        _ = try cut(&d, video, audio, 25, frameTime(25))
        _ = try cut(&d, video, audio, 50, frameTime(50))
        _ = try cut(&d, video, audio, 50, origin + Nanos.milliseconds(3000))
        #expect(d.videoMissingAtEnd(tolerance: tolerance) != nil)
        let back = videoRing(Array(0..<50) + Array(100..<126))
        _ = try cut(&d, back, audio, 75, frameTime(125))
        #expect(d.videoMissingAtEnd(tolerance: tolerance) == nil)
        // An ordinary stop: the last cut takes the frames up to the stop, so nothing is missing.
        var e = cursor(video, originSeq: 0, audioFrom: origin)
        _ = cutAll(&e, video, audio)
        #expect(e.videoMissingAtEnd(tolerance: 0) == nil)
    }

    @Test("nothing to cut gives nil and changes nothing")
    func nothingToCut() throws {
        let video = videoRing(count: 60)
        let audio = audioRing([])
        var c = cursor(video, originSeq: 0, audioFrom: frameTime(0))
        #expect(c.cut(video: video, audio: audio, videoEnd: 0, until: frameTime(0)) == nil)
        _ = try cut(&c, video, audio, 25, frameTime(25))
        #expect(c.cut(video: video, audio: audio, videoEnd: 25, until: frameTime(25)) == nil)
        #expect(c.fragments == 1)
        #expect(c.cutMediaTime == 25 * frameNs)
    }

    @Test("video durations come from the next decode time, across a dropped frame and the fragment edge")
    func durationsFromSuccessiveDts() throws {
        // Frames 30 and 49 were dropped: 29 and 48 last two frames each.
        let numbers = (0..<75).filter { $0 != 30 && $0 != 49 }
        let video = videoRing(numbers)
        let audio = audioRing([])
        var c = cursor(video, originSeq: 0, audioFrom: frameTime(0))
        let k1 = try #require(video.nextSync(atOrAfter: 1))
        _ = try cut(&c, video, audio, k1, video[k1].time)
        let k2 = try #require(video.nextSync(atOrAfter: k1 + 1))
        let p2 = try cut(&c, video, audio, k2, video[k2].time)
        for s in 0..<k2 {
            let n = numbers[s]
            let expected = (n == 29 || n == 48) ? 2 * frameTicks : frameTicks
            #expect(video[s].duration == expected, "frame \(n)")
        }
        // The last frame of fragment 2 (frame 48) borrows the keyframe's decode time.
        #expect(numbers[k2 - 1] == 48)
        #expect(p2.endMediaTime == 50 * frameNs)
    }

    @Test("the last frame of a clip lasts one nominal frame, and the clip ends there")
    func lastFrameNominal() throws {
        let video = videoRing(count: 40)
        let audio = audioRing([])
        var c = cursor(video, originSeq: 0, audioFrom: frameTime(0))
        _ = try cut(&c, video, audio, 25, frameTime(25))
        let last = try cut(&c, video, audio, 40, frameTime(40))
        #expect(last.video == 25..<40)
        #expect(video[39].duration == frameTicks)
        #expect(video[38].duration == frameTicks)
        // 40 frames of 40 ms.
        #expect(last.endMediaTime == 40 * frameNs)
    }

    @Test("startMediaTime and endMediaTime chain without gaps and add up to the clip's length")
    func mediaTimesChain() throws {
        let video = videoRing(count: 25 * 6 + 7)
        let audio = audioRing([])
        var c = cursor(video, originSeq: 25, audioFrom: frameTime(25))
        let plans = cutAll(&c, video, audio)
        #expect(plans.count == 6)
        #expect(plans.map(\.sequenceNumber) == Array(1...6))
        #expect(plans.first?.startMediaTime == 0)
        for i in plans.indices.dropFirst() {
            #expect(plans[i].startMediaTime == plans[i - 1].endMediaTime)
            #expect(plans[i].video.lowerBound == plans[i - 1].video.upperBound)
        }
        for p in plans.dropLast() { #expect(p.endMediaTime - p.startMediaTime == 1_000_000_000) }
        // From frame 25 to the end of frame 156: 132 frames.
        #expect(plans.last?.endMediaTime == 132 * frameNs)
        #expect(c.cutMediaTime == 132 * frameNs)
        let totalFrames = plans.reduce(0) { $0 + $1.video.count }
        #expect(totalFrames == 132)
    }

    // MARK: - Audio

    @Test("audio captured before audioFrom is not in the clip")
    func audioBeforeAudioFromExcluded() throws {
        let video = videoRing(count: 75)
        let origin = frameTime(25)
        // Pre-event audio from 100 ms before the origin; the press was 600 ms after it.
        let audio = audioRing(audioTimes(origin: origin, fromMs: -100, toMs: 2000))
        let press = origin + Nanos.milliseconds(600)
        var c = cursor(video, originSeq: 25, audioFrom: press)
        let p1 = try cut(&c, video, audio, 50, frameTime(50))
        let first = p1.audio.lowerBound
        #expect(audio[first].time == press)
        #expect(audio[first - 1].time < press)
        #expect(p1.audio.count == 20)  // 600 ms to 1000 ms
        // Placed at its capture time: 0.6 s into the clip.
        #expect(p1.audioDecodeTime == 28_800)
        let p2 = try cut(&c, video, audio, 75, frameTime(75))
        #expect(p2.audio.lowerBound == p1.audio.upperBound)
        #expect(p2.audioDecodeTime == 28_800 + 20 * 960)
    }

    @Test("audio is split by capture time: a packet captured exactly at the boundary opens the next fragment")
    func audioSplitAtBoundary() throws {
        let video = videoRing(count: 75)
        let origin = frameTime(0)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 2000))
        var c = cursor(video, originSeq: 0, audioFrom: origin)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audio == 0..<50)
        #expect(audio[p1.audio.upperBound].time == frameTime(25))
        let p2 = try cut(&c, video, audio, 50, frameTime(50))
        #expect(p2.audio == 50..<100)
        #expect(c.nextAudioSeq == 100)
    }

    @Test("audio not yet captured is left for the next fragment")
    func audioNotYetArrived() throws {
        let video = videoRing(count: 75)
        let origin = frameTime(0)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 600))
        var c = cursor(video, originSeq: 0, audioFrom: origin)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audio == 0..<30)
        for k in 30..<100 {
            audio.append(MediaEntry(length: 60, time: origin + Int64(k) * 20_000_000, pts: 0, dts: 0, duration: 960,
                                    isSync: true)) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        }
        let p2 = try cut(&c, video, audio, 50, frameTime(50))
        #expect(p2.audio == 30..<100)
        #expect(p2.audioDecodeTime == 30 * 960)
    }

    @Test("audio decode time continues across fragments despite capture jitter up to 20 ms",
          arguments: [0, 5, 15, 20])
    func audioContinuous(lateMs: Int) throws {
        let video = videoRing(count: 75)
        let origin = frameTime(0)
        // From the second fragment on, packets are stamped `lateMs` later than a continuous track.
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 3000) { $0 >= 1000 ? lateMs : 0 })
        var c = cursor(video, originSeq: 0, audioFrom: origin)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audioDecodeTime == 0)
        let p2 = try cut(&c, video, audio, 50, frameTime(50))
        #expect(p2.audioDecodeTime == Int64(p1.audio.count) * 960)
        #expect(c.audioNextDecodeTime == p2.audioDecodeTime + Int64(p2.audio.count) * 960)
    }

    @Test("audio is re-anchored at its capture time when it jumps by more than 20 ms", arguments: [21, 50, 200])
    func audioReanchored(jumpMs: Int) throws {
        let video = videoRing(count: 75)
        let origin = frameTime(0)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 3000) { $0 >= 1000 ? jumpMs : 0 })
        var c = cursor(video, originSeq: 0, audioFrom: origin)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audio.count == 50)
        let p2 = try cut(&c, video, audio, 50, frameTime(50))
        // First packet of fragment 2 was captured at 1000 + jump ms.
        #expect(p2.audioDecodeTime == Int64(1000 + jumpMs) * 48)
        // And the track continues from there.
        let p3 = try cut(&c, video, audio, 75, frameTime(75))
        #expect(p3.audioDecodeTime == p2.audioDecodeTime + Int64(p2.audio.count) * 960)
    }

    @Test("audioLeadTicks places the first packet earlier by the decoder's pre-skip, and the track follows")
    func audioLead() throws {
        let video = videoRing(count: 75)
        let origin = frameTime(0)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 100, toMs: 3000))
        var c = cursor(video, originSeq: 0, audioFrom: origin, lead: 312)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audioDecodeTime == 4800 - 312)
        #expect(p1.audio.count == 45)
        let p2 = try cut(&c, video, audio, 50, frameTime(50))
        #expect(p2.audioDecodeTime == 48_000 - 312)

        // Without the lead the same audio sits at its capture time.
        var plain = cursor(video, originSeq: 0, audioFrom: origin)
        let q1 = try cut(&plain, video, audio, 25, frameTime(25))
        #expect(q1.audioDecodeTime == 4800)
    }

    @Test("a decode time is never negative, even when the lead reaches before the clip's start")
    func audioLeadClamped() throws {
        let video = videoRing(count: 30)
        let origin = frameTime(0)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 1000))
        var c = cursor(video, originSeq: 0, audioFrom: origin, lead: 312)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audioDecodeTime >= 0)
    }

    @Test("audio already dropped from the ring is skipped, not read")
    func audioDroppedFromRing() throws {
        let video = videoRing(count: 30)
        let origin = frameTime(0)
        let audio = audioRing(audioTimes(origin: origin, fromMs: 0, toMs: 1000))
        for _ in 0..<5 { audio.dropOldest() }
        var c = cursor(video, originSeq: 0, audioFrom: origin, audioFromSeq: 0)
        let p1 = try cut(&c, video, audio, 25, frameTime(25))
        #expect(p1.audio == 5..<50)
        #expect(p1.audioDecodeTime == 5 * 960)
    }
}
