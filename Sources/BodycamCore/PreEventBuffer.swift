/// The rolling pre-event buffer: encoded video (and, if allowed, audio) of the last N seconds,
/// kept in RAM and cut at keyframes so a clip can start before the button was pressed.
///
/// Retention keeps whole groups of pictures: the oldest keyframe is dropped only when the
/// remaining buffer still covers `preEvent`, so a clip started now begins between `preEvent` and
/// `preEvent` + one keyframe interval before the press. Entries pinned by an open clip are never
/// dropped. Not thread-safe; the pipeline holds its lock around every call.
public final class PreEventBuffer: @unchecked Sendable {
    public let video: MediaRing
    public let audio: MediaRing
    /// Nanoseconds of video to keep before a press.
    public var preEvent: Int64
    /// Whether audio from before a press may be kept (off by default: many jurisdictions forbid it).
    public var includeAudio: Bool
    /// After a dropped access unit, later ones are useless until the next keyframe.
    public private(set) var awaitingKeyframe = true
    /// Access units refused for lack of room or for want of a keyframe, since start.
    public private(set) var droppedVideo = 0
    /// Groups of pictures dropped early because the ring was full (pre-event shortened).
    public private(set) var evictedForRoom = 0
    public private(set) var droppedAudio = 0

    public enum VideoAppend: Sendable, Equatable {
        case stored(seq: Int)
        /// Not stored; the encoder should produce a keyframe next.
        case dropped
    }

    public init(video: MediaRing, audio: MediaRing, preEvent: Int64, includeAudio: Bool) {
        self.video = video
        self.audio = audio
        self.preEvent = preEvent
        self.includeAudio = includeAudio
    }

    /// Stores an access unit of `entry.length` bytes (written by `fill`).
    public func appendVideo(_ entry: MediaEntry, fill: (UnsafeMutableRawBufferPointer) -> Void) -> VideoAppend {
        if awaitingKeyframe && !entry.isSync {
            droppedVideo += 1
            return .dropped
        }
        while true {
            if let seq = video.append(entry, fill: fill) {
                awaitingKeyframe = false
                trim()
                return .stored(seq: seq)
            }
            // Full: give up the oldest group of pictures (shortening the pre-event time) unless it
            // belongs to an open clip. Then the frame is dropped and the chain must restart.
            guard dropOldestGroup() else {
                droppedVideo += 1
                awaitingKeyframe = true
                return .dropped
            }
            evictedForRoom += 1
            if !entry.isSync && oldestKeyframe == nil {
                // Its own group of pictures had to go: without its keyframe it cannot be decoded.
                droppedVideo += 1
                awaitingKeyframe = true
                return .dropped
            }
        }
    }

    /// Stores an audio packet. Returns its sequence number, or nil if it was dropped.
    @discardableResult
    public func appendAudio(_ entry: MediaEntry, fill: (UnsafeMutableRawBufferPointer) -> Void) -> Int? {
        trimAudio()
        while true {
            if let seq = audio.append(entry, fill: fill) { return seq }
            guard audio.dropOldest() else {
                droppedAudio += 1
                return nil
            }
        }
    }

    /// Drops the oldest keyframe and the frames that depend on it. False if nothing could go.
    private func dropOldestGroup() -> Bool {
        guard video.dropOldest() else { return false }
        while !video.isEmpty && !video[video.firstSeq].isSync {
            if !video.dropOldest() { break }
        }
        return true
    }

    /// Applies the retention policy to both rings.
    public func trim() {
        // Frames before the first keyframe can never start a clip (left over after writing).
        while !video.isEmpty && !video[video.firstSeq].isSync {
            if !video.dropOldest() { break }
        }
        if !video.isEmpty {
            let newest = video[video.endSeq - 1].time
            while let k2 = video.nextSync(atOrAfter: video.firstSeq + 1), newest - video[k2].time >= preEvent {
                var progressed = false
                while video.firstSeq < k2 && video.dropOldest() { progressed = true }
                if !progressed || video.firstSeq < k2 { break }
            }
        }
        trimAudio()
    }

    private func trimAudio() {
        if includeAudio {
            guard !video.isEmpty else { return }
            let oldestVideo = video[video.firstSeq].time
            while !audio.isEmpty && audio[audio.firstSeq].time < oldestVideo - audioSlack {
                if !audio.dropOldest() { break }
            }
        } else {
            while !audio.isEmpty {
                if !audio.dropOldest() { break }
            }
        }
    }

    /// Audio kept ahead of the oldest frame so a clip's first packet can start with its first frame.
    private let audioSlack = Nanos.milliseconds(100)

    /// The oldest keyframe, where a clip started now would begin.
    public var oldestKeyframe: Int? { video.nextSync(atOrAfter: video.firstSeq) }

    /// Seconds of video the buffer holds from its oldest keyframe to its newest frame.
    public var bufferedSeconds: Double {
        guard let k = oldestKeyframe else { return 0 }
        return Nanos.toSeconds(video[video.endSeq - 1].time - video[k].time)
    }

    /// The first audio packet whose time is at or after `t`, or `audio.endSeq` if none yet.
    public func firstAudio(atOrAfter t: MonotonicTime) -> Int {
        var s = audio.firstSeq
        while s < audio.endSeq && audio[s].time < t { s += 1 }
        return s
    }
}
