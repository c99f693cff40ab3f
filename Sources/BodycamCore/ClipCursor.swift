/// What one fragment of a clip holds: ring entries of each track and their decode times.
public struct FragmentPlan: Sendable, Equatable {
    /// 1-based, as in the `mfhd` box.
    public var sequenceNumber: Int
    /// Video entries (sequence numbers in the video ring). Their `duration` fields are filled in.
    public var video: Range<Int>
    /// Audio entries (sequence numbers in the audio ring).
    public var audio: Range<Int>
    /// Decode time of the first video entry, in video ticks from the clip's start.
    public var videoDecodeTime: Int64
    /// Decode time of the first audio entry, in audio ticks from the clip's start.
    public var audioDecodeTime: Int64
    /// Media time (nanoseconds from the clip's start) where this fragment starts and ends.
    public var startMediaTime: Int64
    public var endMediaTime: Int64
}

/// Tracks how far an open clip has been cut into fragments, and makes the cuts.
///
/// A clip starts at a keyframe (`origin`). Video is cut at each later keyframe, audio at the
/// same instant by capture time, so each fragment holds the same second of both tracks.
public struct ClipCursor: Sendable {
    /// Sequence number, decode time and capture time of the clip's first keyframe.
    public let originSeq: Int
    public let originDts: Int64
    public let originTime: MonotonicTime
    /// Audio captured before this is not part of the clip (the press, when pre-event audio is off).
    public let audioFrom: MonotonicTime
    public let videoTicksPerSecond: Int
    public let audioTicksPerSecond: Int
    /// Nominal ticks per video frame, for the last frame of a clip (its successor is not in it).
    public let videoFrameTicks: Int64
    /// Audio ticks the decoder discards at the start (Opus pre-skip): the first packet is placed
    /// this much earlier so the first real sample plays at its capture time.
    public let audioLeadTicks: Int64
    public private(set) var nextVideoSeq: Int
    public private(set) var nextAudioSeq: Int
    public private(set) var fragments = 0
    /// Where the next audio packet falls on the track's timeline if audio stays continuous.
    public private(set) var audioNextDecodeTime: Int64?
    /// Media time (ns from origin) the clip has been cut up to.
    public private(set) var cutMediaTime: Int64 = 0
    /// Media time (ns from origin) up to which the last cut took audio (its `until`): at a stop
    /// this is the stop, which can lie before the video's end (the next frame's capture time).
    public private(set) var audioCutUntil: Int64 = 0
    /// Media time (ns from origin) where the video cut so far ends (its last frame's end).
    public private(set) var videoCutEnd: Int64 = 0

    /// Audio whose capture time disagrees with the continuous timeline by more than this is
    /// re-anchored at its capture time (a gap the device reported, or clock drift caught up).
    public static let audioReanchorThreshold = Nanos.milliseconds(20)

    public init(
        video: MediaRing, originSeq: Int, audioFromSeq: Int, audioFrom: MonotonicTime,
        videoTicksPerSecond: Int, audioTicksPerSecond: Int, videoFrameTicks: Int64, audioLeadTicks: Int64 = 0
    ) {
        let origin = video[originSeq]
        self.originSeq = originSeq
        originDts = origin.dts
        originTime = origin.time
        self.audioFrom = audioFrom
        self.videoTicksPerSecond = videoTicksPerSecond
        self.audioTicksPerSecond = audioTicksPerSecond
        self.videoFrameTicks = videoFrameTicks
        self.audioLeadTicks = audioLeadTicks
        nextVideoSeq = originSeq
        nextAudioSeq = audioFromSeq
    }

    /// Nanoseconds from the clip's start to `t`.
    public func mediaTime(_ t: MonotonicTime) -> Int64 { t - originTime }

    /// Media time (ns from the origin, by capture time) where the audio cut so far ends; nil
    /// before any audio was cut.
    public var audioEndMediaTime: Int64? {
        audioNextDecodeTime.map { ($0 + audioLeadTicks) * 1_000_000_000 / Int64(audioTicksPerSecond) }
    }

    /// The media time span (ns) at the end of what has been cut that has no audio, when the audio
    /// ends more than `tolerance` before the picture (sound late or stalled when the clip
    /// closed). Nil when it does not, or when no audio was cut at all.
    public func audioMissingAtEnd(tolerance: Int64) -> Range<Int64>? {
        // Audio is only owed up to where the cuts took it, not up to the next video frame.
        let owed = min(cutMediaTime, audioCutUntil)
        guard let audioEnd = audioEndMediaTime, owed - audioEnd > tolerance else { return nil }
        return max(0, audioEnd)..<owed
    }

    /// The media time span (ns) at the end of what has been cut that has no picture, when the
    /// video ends more than `tolerance` before the clip (the camera was lost when it closed, and
    /// the cuts went on with sound alone). Nil when it does not.
    public func videoMissingAtEnd(tolerance: Int64) -> Range<Int64>? {
        guard cutMediaTime - videoCutEnd > tolerance else { return nil }
        return videoCutEnd..<cutMediaTime
    }

    /// Cuts a fragment of video entries up to (not including) `videoEnd` and audio captured
    /// before `until`. `videoEnd` is the next keyframe, or the ring's end when the clip ends or
    /// the camera has stalled. With no video to cut (the camera is lost), the fragment holds audio
    /// alone, so sound keeps reaching storage every second. Returns nil when there is nothing.
    public mutating func cut(
        video: MediaRing, audio: MediaRing, videoEnd: Int, until: MonotonicTime
    ) -> FragmentPlan? {
        let hasVideo = videoEnd > nextVideoSeq
        if !hasVideo {
            // Audio only: worth a fragment only if some audio is ready.
            var a = max(nextAudioSeq, audio.firstSeq)
            while a < audio.endSeq && audio[a].time < audioFrom { a += 1 }
            guard a < audio.endSeq && audio[a].time < until else { return nil }
        }
        // Fill in video durations from the decode times; the last frame borrows its successor's
        // if that is in the ring, else lasts one nominal frame.
        for s in nextVideoSeq..<videoEnd {
            let next: Int64
            if s + 1 < video.endSeq {
                next = video[s + 1].dts
            } else {
                next = video[s].dts + videoFrameTicks
            }
            video[s].duration = max(1, next - video[s].dts)
        }
        // Audio: skip what precedes `audioFrom`, take what was captured before `until`.
        var a = max(nextAudioSeq, audio.firstSeq)
        while a < audio.endSeq && audio[a].time < audioFrom { a += 1 }
        var aEnd = a
        while aEnd < audio.endSeq && audio[aEnd].time < until { aEnd += 1 }
        var audioDecodeTime: Int64 = 0
        if aEnd > a {
            let actual = ticks(audio[a].time - originTime, per: audioTicksPerSecond) - audioLeadTicks
            if let expected = audioNextDecodeTime,
                abs(actual - expected) * 1_000_000_000 / Int64(audioTicksPerSecond) <= Self.audioReanchorThreshold
            {
                audioDecodeTime = expected
            } else {
                audioDecodeTime = max(0, actual)
            }
            var t = audioDecodeTime
            for s in a..<aEnd { t += audio[s].duration }
            audioNextDecodeTime = t
        }
        fragments += 1
        let start = cutMediaTime
        let endNs: Int64
        var videoEndNs: Int64 = 0
        if !hasVideo {
            endNs = until - originTime
        } else if videoEnd < video.endSeq {
            endNs = video[videoEnd].time - originTime
            videoEndNs = endNs
        } else {
            videoEndNs = (video[videoEnd - 1].dts + video[videoEnd - 1].duration - originDts)
                * 1_000_000_000 / Int64(videoTicksPerSecond)
            // Cut at the ring's end (the camera stalled, or the clip ends there): the fragment
            // spans the sound it takes past the last picture too, so the clip's length and its
            // list of missing picture say where that sound lies.
            var end = videoEndNs
            if aEnd > a {
                let last = audio[aEnd - 1]
                let soundEnd = last.time - originTime + last.duration * 1_000_000_000 / Int64(audioTicksPerSecond)
                end = max(end, min(until - originTime, soundEnd))
            }
            endNs = end
        }
        let plan = FragmentPlan(
            sequenceNumber: fragments,
            video: nextVideoSeq..<videoEnd,
            audio: a..<aEnd,
            videoDecodeTime: hasVideo ? video[nextVideoSeq].dts - originDts : 0,
            audioDecodeTime: audioDecodeTime,
            startMediaTime: start,
            endMediaTime: max(start, endNs)
        )
        cutMediaTime = plan.endMediaTime
        if hasVideo { videoCutEnd = max(start, videoEndNs) }
        audioCutUntil = until - originTime
        nextVideoSeq = videoEnd
        nextAudioSeq = aEnd
        return plan
    }

    private func ticks(_ ns: Int64, per second: Int) -> Int64 {
        let num = ns * Int64(second)
        return num >= 0 ? (num + 500_000_000) / 1_000_000_000 : -((-num + 500_000_000) / 1_000_000_000)
    }
}
