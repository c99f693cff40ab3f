import Testing

@testable import BodycamCore

/// 25 frames per second (40 ms, exact in nanoseconds), a keyframe every `gop` frames, 90 kHz ticks.
private let frameNs: Int64 = 40_000_000
private let audioNs: Int64 = 20_000_000

private func frame(_ i: Int, gop: Int = 25, length: Int = 1000, keyLength: Int = 4000) -> MediaEntry {
    let sync = i % gop == 0
    return MediaEntry(
        length: sync ? keyLength : length, time: MonotonicTime(nanoseconds: Int64(i) * frameNs),
        pts: Int64(i) * 3600, dts: Int64(i) * 3600, duration: 3600, isSync: sync)
}

/// Opus packet `k`: 20 ms captured at k × 20 ms.
private func packet(_ k: Int) -> MediaEntry {
    MediaEntry(
        length: 80, time: MonotonicTime(nanoseconds: Int64(k) * audioNs), pts: Int64(k) * 960,
        dts: Int64(k) * 960, duration: 960, isSync: true)
}

private func fill(_ tag: Int) -> (UnsafeMutableRawBufferPointer) -> Void {
    { dst in for j in 0..<dst.count { dst[j] = UInt8(truncatingIfNeeded: tag &* 13 &+ j) } }
}

private func filled(_ ring: MediaRing, _ seq: Int, tag: Int) -> Bool {
    let b = ring.bytes(seq)
    return (0..<b.count).allSatisfy { b[$0] == UInt8(truncatingIfNeeded: tag &* 13 &+ $0) }
}

private func buffer(
    preEvent: Double, includeAudio: Bool = false, videoBytes: Int = 2_000_000, videoEntries: Int = 2048,
    audioBytes: Int = 200_000, audioEntries: Int = 2048
) -> PreEventBuffer {
    PreEventBuffer(
        video: MediaRing(capacity: videoBytes, maxEntries: videoEntries),
        audio: MediaRing(capacity: audioBytes, maxEntries: audioEntries),
        preEvent: Nanos.seconds(preEvent), includeAudio: includeAudio)
}

@discardableResult
private func appendFrame(_ b: PreEventBuffer, _ i: Int, gop: Int = 25, length: Int = 1000, keyLength: Int = 4000)
    -> PreEventBuffer.VideoAppend
{
    b.appendVideo(frame(i, gop: gop, length: length, keyLength: keyLength), fill: fill(i))
}

private func isStored(_ r: PreEventBuffer.VideoAppend) -> Bool {
    if case .stored = r { return true } else { return false }
}

@Suite("PreEventBuffer")
struct PreEventBufferTests {
    @Test("with keyframes every second, the buffer spans [N, N+1) s from its oldest keyframe", arguments: [1, 5, 30])
    func retentionSpan(seconds: Int) throws {
        let b = buffer(preEvent: Double(seconds))
        let n = Double(seconds)
        for i in 0..<((seconds + 12) * 25) {
            let r = appendFrame(b, i)
            #expect(r == .stored(seq: i))
            let oldest = try #require(b.oldestKeyframe)
            #expect(oldest == b.video.firstSeq)
            #expect(b.video[b.video.firstSeq].isSync)
            let newest = Double(i) * 0.04
            if newest >= n {
                #expect(b.bufferedSeconds >= n && b.bufferedSeconds < n + 1, "at \(newest) s")
            } else {
                // Not yet N seconds of video: everything is kept.
                #expect(b.video.firstSeq == 0)
            }
        }
        #expect(b.droppedVideo == 0)
        #expect(b.evictedForRoom == 0)
    }

    @Test("preEvent = 0 keeps only the newest group of pictures")
    func zeroPreEvent() throws {
        let b = buffer(preEvent: 0)
        for i in 0..<200 {
            #expect(isStored(appendFrame(b, i)))
            let newestKey = i - i % 25
            #expect(b.video.firstSeq == newestKey)
            #expect(try #require(b.oldestKeyframe) == newestKey)
            #expect(b.video.count == i % 25 + 1)
            #expect(b.bufferedSeconds < 1)
        }
    }

    @Test("non-keyframes before the first keyframe are refused and counted")
    func refusedBeforeFirstKeyframe() {
        let b = buffer(preEvent: 5)
        #expect(b.awaitingKeyframe)
        #expect(appendFrame(b, 1) == .dropped)
        #expect(appendFrame(b, 2) == .dropped)
        #expect(b.video.isEmpty)
        #expect(b.droppedVideo == 2)
        #expect(b.oldestKeyframe == nil)
        #expect(b.bufferedSeconds == 0)
        #expect(appendFrame(b, 25) == .stored(seq: 0))
        #expect(!b.awaitingKeyframe)
        #expect(appendFrame(b, 26) == .stored(seq: 1))
        #expect(b.droppedVideo == 2)
    }

    @Test("after a frame is dropped for lack of room, frames are refused until the next keyframe")
    func awaitingKeyframeAfterDrop() {
        // 20 000 bytes: a 4000-byte keyframe and sixteen 1000-byte frames fill it.
        let b = buffer(preEvent: 30, videoBytes: 20_000)
        #expect(appendFrame(b, 0) == .stored(seq: 0))
        b.video.pinnedSeq = 0  // an open clip owns everything
        for i in 1...16 { #expect(appendFrame(b, i) == .stored(seq: i)) }
        #expect(appendFrame(b, 17) == .dropped)
        #expect(b.awaitingKeyframe)
        #expect(b.droppedVideo == 1)
        #expect(b.evictedForRoom == 0)
        // Recorded media is untouched.
        #expect(b.video.count == 17)
        #expect(filled(b.video, 0, tag: 0) && filled(b.video, 16, tag: 16))
        // The clip writer catches up; room could now be made, but the chain is broken.
        b.video.pinnedSeq = nil
        for i in 18...24 { #expect(appendFrame(b, i) == .dropped) }
        #expect(b.droppedVideo == 8)
        #expect(appendFrame(b, 25) == .stored(seq: 17))
        #expect(!b.awaitingKeyframe)
        #expect(b.video[b.video.firstSeq].isSync)
        #expect(b.video[b.video.firstSeq].time == MonotonicTime(nanoseconds: 25 * frameNs))
        #expect(appendFrame(b, 26) == .stored(seq: 18))
    }

    @Test("a frame whose own group of pictures had to be evicted for room is refused, not stored orphaned")
    func ownGroupEvicted() {
        // Room for three frames, a keyframe every five: the fourth frame could only be stored by
        // evicting the keyframe it depends on.
        let b = buffer(preEvent: 30, videoBytes: 3000)
        var results: [PreEventBuffer.VideoAppend] = []
        for i in 0..<10 {
            let r = appendFrame(b, i, gop: 5, length: 1000, keyLength: 1000)
            results.append(r)
            if case .stored(let seq) = r {
                // What is reported stored is in the ring, behind a keyframe of its own group.
                guard seq >= b.video.firstSeq && seq < b.video.endSeq else {
                    Issue.record("frame \(i) reported stored as \(seq) but is not in the ring")
                    continue
                }
                #expect(b.video[b.video.firstSeq].isSync)
            }
        }
        #expect(
            results == [
                .stored(seq: 0), .stored(seq: 1), .stored(seq: 2), .dropped, .dropped,
                .stored(seq: 3), .stored(seq: 4), .stored(seq: 5), .dropped, .dropped,
            ])
        #expect(b.droppedVideo == 4)
        #expect(b.awaitingKeyframe)
    }

    @Test("a full ring shortens the pre-event time instead of losing new frames")
    func fullRingEvictsOldGroups() throws {
        // About three seconds of room (each second: 4000 + 24 × 1000 bytes) for 30 s of pre-event.
        let b = buffer(preEvent: 30, videoBytes: 90_000)
        for i in 0..<(20 * 25) {
            #expect(isStored(appendFrame(b, i)))
            #expect(b.video[b.video.firstSeq].isSync)
        }
        #expect(b.droppedVideo == 0)
        #expect(b.evictedForRoom > 0)
        #expect(!b.awaitingKeyframe)
        #expect(b.bufferedSeconds >= 2 && b.bufferedSeconds < 4)
        // The newest frame is intact.
        #expect(filled(b.video, b.video.endSeq - 1, tag: 20 * 25 - 1))
    }

    @Test("entries pinned by an open clip survive retention; unpinned, retention resumes")
    func pinnedSurviveRetention() throws {
        let b = buffer(preEvent: 2)
        for i in 0..<38 { appendFrame(b, i) }  // 1.5 s
        let origin = try #require(b.oldestKeyframe)
        #expect(origin == 0)
        b.video.pinnedSeq = origin
        for i in 38..<250 { #expect(isStored(appendFrame(b, i))) }  // to 10 s
        #expect(b.video.firstSeq == 0)
        #expect(b.video.count == 250)
        #expect(filled(b.video, 0, tag: 0) && filled(b.video, 1, tag: 1))
        // The writer has cut up to the keyframe at 5 s: older groups may go, that one may not.
        b.video.pinnedSeq = 125
        b.trim()
        #expect(b.video.firstSeq == 125)
        #expect(filled(b.video, 125, tag: 125))
        b.video.pinnedSeq = nil
        b.trim()
        #expect(b.bufferedSeconds >= 2 && b.bufferedSeconds < 3)
    }

    @Test("without pre-event audio, audio is dropped entirely unless pinned by a clip")
    func audioExcluded() {
        let b = buffer(preEvent: 5, includeAudio: false)
        for i in 0..<250 {
            appendFrame(b, i)
            #expect(b.audio.isEmpty, "at frame \(i)")
            b.appendAudio(packet(2 * i), fill: fill(2 * i))
            b.appendAudio(packet(2 * i + 1), fill: fill(2 * i + 1))
        }
        b.trim()
        #expect(b.audio.isEmpty)
        #expect(b.droppedAudio == 0)
        // A clip in progress pins its audio: it stays through retention.
        let first = b.audio.endSeq
        b.audio.pinnedSeq = first
        for k in 500..<600 { b.appendAudio(packet(k), fill: fill(k)) }
        for i in 250..<300 { appendFrame(b, i) }
        #expect(b.audio.firstSeq == first)
        #expect(b.audio.count == 100)
        #expect(filled(b.audio, first, tag: 500))
    }

    @Test("with pre-event audio, audio is kept back to the oldest video frame")
    func audioIncluded() throws {
        let b = buffer(preEvent: 2, includeAudio: true)
        for i in 0..<500 {
            appendFrame(b, i)
            b.appendAudio(packet(2 * i), fill: fill(2 * i))
            b.appendAudio(packet(2 * i + 1), fill: fill(2 * i + 1))
            guard i >= 100 else { continue }
            let oldestVideo = b.video[b.video.firstSeq].time
            let oldestAudio = b.audio[b.audio.firstSeq].time
            // The clip's first frame has sound, and no more than 100 ms more is held.
            #expect(oldestAudio <= oldestVideo, "at frame \(i)")
            #expect(oldestVideo - oldestAudio <= Nanos.milliseconds(100), "at frame \(i)")
        }
        #expect(b.droppedAudio == 0)
        // Everything from the oldest kept packet to the newest is there, in order.
        let s = b.audio.firstSeq
        #expect(b.audio[b.audio.endSeq - 1].time == MonotonicTime(nanoseconds: 999 * audioNs))
        #expect(b.audio[s].time == MonotonicTime(nanoseconds: Int64(s) * audioNs))
        #expect(filled(b.audio, s, tag: s))
    }

    @Test("firstAudio(atOrAfter:) finds the first packet at or after a time")
    func firstAudio() {
        let b = buffer(preEvent: 30, includeAudio: true)
        appendFrame(b, 0)
        for k in 0..<10 { b.appendAudio(packet(k), fill: fill(k)) }
        #expect(b.firstAudio(atOrAfter: MonotonicTime(nanoseconds: 0)) == 0)
        #expect(b.firstAudio(atOrAfter: MonotonicTime(nanoseconds: 60_000_000)) == 3)
        #expect(b.firstAudio(atOrAfter: MonotonicTime(nanoseconds: 60_000_001)) == 4)
        #expect(b.firstAudio(atOrAfter: MonotonicTime(nanoseconds: 10_000_000_000)) == b.audio.endSeq)
    }
}
