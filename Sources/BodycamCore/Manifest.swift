/// The manifest of one clip: `DATA/clips/<clip-id>.json`, beside the media file.
///
/// It says what the clip is (device, times, codecs), how to check it (every fragment's byte range
/// and SHA-256), and everything that went wrong or was done to it while recording (drops, gaps,
/// mute spans, markers, whether it was interrupted). Keys are snake_case in JSON.
public struct ClipManifest: Codable, Sendable, Equatable {
    public var schema = "bodycam.clip/1"
    public var clipId: String
    /// The media file's name, in the same folder as the manifest.
    public var file: String
    public var deviceId: String
    public var board: String
    /// UTC of the clip's first frame (ISO 8601) and as seconds since 1970.
    public var startUtc: String
    public var startUnix: Double
    /// Whether the wall clock was synchronised when the clip started.
    public var clockTrusted: Bool
    /// Seconds of media.
    public var duration: Double
    public var trigger: String
    /// Media time (seconds from the clip's start) of the press or trigger that opened it.
    public var triggeredAt: Double
    public var previousClip: String?
    public var nextClip: String?
    public var video: VideoInfo?
    public var audio: AudioInfo?
    public var initSegment: ByteRange
    public var fragments: [Fragment]
    public var markers: [Marker]
    public var muteSpans: [Span]
    public var droppedFrames: DroppedFrames
    public var audioGaps: [Span]
    /// Stretches with no video: the camera was lost and reopened (the clip goes on across them).
    public var videoGaps: [Span]
    public var interrupted: Bool
    /// Why the clip ended: "button", "shutdown", "rollover", "storage", "error", "power-loss".
    public var endReason: String
    public var sizeBytes: Int
    /// The device's signing key (`ed25519:<base64>`): the journal entries and this manifest are
    /// signed with it. An agency pins it per device to know the clip came from that camera.
    public var devicePublicKey: String?
    /// For a sealed clip: how the `age` file is laid out and every ciphertext chunk's hash, so
    /// anyone can check every byte without the key that opens it.
    public var sealed: SealInfo?
    /// The signed, hash-chained journal: what was recorded, entry by entry, as it was written.
    public var journal: [JournalEntry]
    /// Ed25519 signature (base64) over SHA-256 of this manifest's canonical JSON without this field.
    public var signature: String?

    public struct VideoInfo: Codable, Sendable, Equatable {
        public var codec = "h264"
        public var width: Int
        public var height: Int
        public var frameRate: String
        public var timescale: Int
        public var profile: Int
        public var level: Int
        public var frames: Int
        public var encoder: String

        public init(width: Int, height: Int, frameRate: String, timescale: Int, profile: Int, level: Int,
                    frames: Int, encoder: String) {
            self.width = width
            self.height = height
            self.frameRate = frameRate
            self.timescale = timescale
            self.profile = profile
            self.level = level
            self.frames = frames
            self.encoder = encoder
        }
    }

    public struct AudioInfo: Codable, Sendable, Equatable {
        public var codec = "opus"
        public var sampleRate: Int
        public var channels: Int
        public var bitrate: Int
        public var packets: Int
        /// Whether audio from before the trigger is included.
        public var preEvent: Bool
        /// Media time of the first audio sample.
        public var startsAt: Double?

        public init(sampleRate: Int, channels: Int, bitrate: Int, packets: Int, preEvent: Bool, startsAt: Double?) {
            self.sampleRate = sampleRate
            self.channels = channels
            self.bitrate = bitrate
            self.packets = packets
            self.preEvent = preEvent
            self.startsAt = startsAt
        }
    }

    public struct ByteRange: Codable, Sendable, Equatable {
        public var offset: Int
        public var size: Int
        public var sha256: String

        public init(offset: Int, size: Int, sha256: String) {
            self.offset = offset
            self.size = size
            self.sha256 = sha256
        }
    }

    public struct Fragment: Codable, Sendable, Equatable {
        /// 1-based, as in the fragment's `mfhd`.
        public var index: Int
        public var offset: Int
        public var size: Int
        public var sha256: String
        /// Media time where the fragment starts, and seconds it covers.
        public var mediaTime: Double
        public var duration: Double
        public var videoFrames: Int
        public var audioPackets: Int

        public init(index: Int, offset: Int, size: Int, sha256: String, mediaTime: Double, duration: Double,
                    videoFrames: Int, audioPackets: Int) {
            self.index = index
            self.offset = offset
            self.size = size
            self.sha256 = sha256
            self.mediaTime = mediaTime
            self.duration = duration
            self.videoFrames = videoFrames
            self.audioPackets = audioPackets
        }
    }

    public struct Marker: Codable, Sendable, Equatable {
        /// Seconds from the clip's start.
        public var mediaTime: Double
        /// "button", or a detector's kind ("video", "audio").
        public var kind: String
        public var utc: String?
        public var score: Double?

        public init(mediaTime: Double, kind: String, utc: String?, score: Double?) {
            self.mediaTime = mediaTime
            self.kind = kind
            self.utc = utc
            self.score = score
        }
    }

    /// A stretch of media time, in seconds from the clip's start.
    public struct Span: Codable, Sendable, Equatable {
        public var start: Double
        public var end: Double?
        public var reason: String?

        public init(start: Double, end: Double?, reason: String? = nil) {
            self.start = start
            self.end = end
            self.reason = reason
        }

        /// `spans` as they fall in a clip `duration` seconds long: those that begin in it, each
        /// ending by its end (a gap across a rollover is listed in both clips, each its part).
        public static func within(_ spans: [Span], duration: Double) -> [Span] {
            spans.filter { $0.start < duration }.map { Span(start: $0.start, end: $0.end.map { min($0, duration) }, reason: $0.reason) }
        }

        /// Mute spans as a finished clip lists them: `within` the clip, one still open ending at
        /// its end.
        public static func closed(_ spans: [Span], duration: Double) -> [Span] {
            within(spans, duration: duration).map { Span(start: $0.start, end: $0.end ?? duration, reason: $0.reason) }
        }

        /// Adds a mute toggle to `spans`: an ending (`end` set) closes the open span, anything
        /// else starts a new one. Both the writer and journal recovery fold mute lines this way.
        public static func toggle(_ spans: inout [Span], with span: Span) {
            if let last = spans.last, last.end == nil, span.end != nil {
                spans[spans.count - 1].end = span.end
            } else {
                spans.append(span)
            }
        }
    }

    public struct DroppedFrames: Codable, Sendable, Equatable {
        /// Frames the camera skipped (sequence gaps) while the clip was recorded.
        public var capture: Int
        /// Frames lost inside bodycam (encoder behind, buffer full).
        public var pipeline: Int
        public var total: Int { capture + pipeline }

        public init(capture: Int = 0, pipeline: Int = 0) {
            self.capture = capture
            self.pipeline = pipeline
        }

        enum CodingKeys: String, CodingKey { case capture, pipeline, total }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            capture = try c.decode(Int.self, forKey: .capture)
            pipeline = try c.decode(Int.self, forKey: .pipeline)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(capture, forKey: .capture)
            try c.encode(pipeline, forKey: .pipeline)
            try c.encode(total, forKey: .total)
        }
    }

    public init(
        clipId: String, file: String, deviceId: String, board: String, startUtc: String, startUnix: Double,
        clockTrusted: Bool, trigger: String, triggeredAt: Double, initSegment: ByteRange
    ) {
        self.clipId = clipId
        self.file = file
        self.deviceId = deviceId
        self.board = board
        self.startUtc = startUtc
        self.startUnix = startUnix
        self.clockTrusted = clockTrusted
        duration = 0
        self.trigger = trigger
        self.triggeredAt = triggeredAt
        self.initSegment = initSegment
        fragments = []
        markers = []
        muteSpans = []
        droppedFrames = DroppedFrames()
        audioGaps = []
        videoGaps = []
        interrupted = true
        endReason = "power-loss"
        sizeBytes = initSegment.size
        journal = []
    }
}

/// Clip ids: `<device-id>-<UTC yyyymmddThhmmssZ>-<seq>`, safe as file names and S3 keys.
public enum ClipID {
    public static func make(deviceID: String, unixSeconds: Double, sequence: Int) -> String {
        let seq = String(sequence)
        let padded = seq.count >= 4 ? seq : String(repeating: "0", count: 4 - seq.count) + seq
        return "\(deviceID)-\(UTCFormat.compact(unixSeconds))-\(padded)"
    }

    /// The clip id of a file named `<clip-id><suffix>`; nil for other names, and for names whose
    /// id part holds a dot (an export's `<clip-id>.export.mp4`, a temporary file): clip ids never
    /// do, since device ids cannot.
    public static func of(fileName name: String, suffix: String) -> String? {
        guard name.hasSuffix(suffix) else { return nil }
        let id = name.dropLast(suffix.count)
        return id.isEmpty || id.contains(".") ? nil : String(id)
    }

    /// The clip id of a clip's media file (`<clip-id>.mp4`, or `<clip-id>.mp4.age` sealed).
    public static func of(mediaFile name: String) -> String? {
        of(fileName: name, suffix: ".mp4.age") ?? of(fileName: name, suffix: ".mp4")
    }

    /// Device ids go into file names and object keys: letters, digits, '-' and '_' only.
    public static func isValidDeviceID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 48
            && id.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f
            }
    }
}

/// The layout of a sealed clip (`<clip-id>.mp4.age`): an `age` header, then 64 KiB plaintext
/// chunks of 65 552 ciphertext bytes each, the last one shorter and flagged final.
public struct SealInfo: Codable, Sendable, Equatable {
    /// The agency's age recipient (`age1…`) the clip is sealed to.
    public var recipient: String
    /// Bytes of the age header and the 16-byte payload nonce that follows it.
    public var headerSize: Int
    public var headerSha256: String
    /// SHA-256 of every ciphertext chunk, in order.
    public var chunks: [String]
    /// True when the file ends with age's final chunk (closed cleanly), so `age -d` opens it.
    public var finalChunk: Bool
    /// After a power cut: the plaintext that followed the last whole chunk, sealed to the same
    /// recipient in a file of its own beside the clip (`bodycam export` joins the two).
    public var tail: SealedTail?
    /// Bytes of the sealed file.
    public var size: Int

    public init(recipient: String, headerSize: Int, headerSha256: String) {
        self.recipient = recipient
        self.headerSize = headerSize
        self.headerSha256 = headerSha256
        chunks = []
        finalChunk = false
        tail = nil
        size = headerSize
    }

    /// Ciphertext bytes of one 64 KiB plaintext chunk.
    public static let chunkPlaintext = 65_536
    public static let chunkCiphertext = 65_536 + 16
}

/// The sealed remainder of an interrupted clip.
public struct SealedTail: Codable, Sendable, Equatable {
    /// File name, in the clip's folder.
    public var file: String
    public var sha256: String
    public var size: Int
    /// Plaintext bytes it holds (they follow the main file's last chunk).
    public var plaintextSize: Int

    public init(file: String, sha256: String, size: Int, plaintextSize: Int) {
        self.file = file
        self.sha256 = sha256
        self.size = size
        self.plaintextSize = plaintextSize
    }
}

/// One entry of a clip's journal: written and synced with the media it describes, chained to
/// the entry before it by hash, signed with the device key.
///
/// `type` says which field is set: "clip" (`header`: the clip's facts when it opened), "init"
/// (`range`: the init segment), "fragment", "marker", "mute", "video_gap" and "audio_gap" (`gap`).
/// Sealed clips add `seal` to "init" and "fragment" entries: the sealed file's committed size, the
/// chunks completed with it and the sealed tail after them. A "fragment" entry also carries the
/// clip's dropped-frame counts when they changed, and the first one with audio where the audio
/// track starts, so that a clip recovered from its journal says what its closed manifest would.
public struct JournalEntry: Codable, Sendable, Equatable {
    public var seq: Int
    public var type: String
    public var clipId: String
    public var header: ClipManifest?
    public var range: ClipManifest.ByteRange?
    public var fragment: ClipManifest.Fragment?
    public var marker: ClipManifest.Marker?
    public var mute: ClipManifest.Span?
    /// A stretch without picture ("video_gap") or without the sound captured ("audio_gap": silence
    /// in its place, or no sound at all at a clip's end).
    public var gap: ClipManifest.Span?
    /// The clip's dropped frames so far, on a "fragment" entry when they changed since the last.
    public var dropped: ClipManifest.DroppedFrames?
    /// Media time (seconds) where the audio track starts, on the first "fragment" entry with audio.
    public var audioStartsAt: Double?
    public var seal: SealCommit?
    /// Hex SHA-256 of the previous entry's canonical bytes (without its signature); empty for the first.
    public var prev: String
    /// Base64 Ed25519 signature over SHA-256 of this entry's canonical bytes without `sig`.
    public var sig: String?

    public init(seq: Int, type: String, clipId: String, prev: String) {
        self.seq = seq
        self.type = type
        self.clipId = clipId
        self.prev = prev
    }
}

/// What a sealed clip's file holds once an entry is committed.
public struct SealCommit: Codable, Sendable, Equatable {
    /// Bytes of the sealed file that are final (header and whole chunks).
    public var size: Int
    /// Chunks completed by this commit: index and SHA-256 of the ciphertext.
    public var chunks: [ChunkHash]
    /// The plaintext after the last whole chunk, sealed on its own (nil when there is none).
    public var tail: SealedTail?

    public init(size: Int, chunks: [ChunkHash], tail: SealedTail?) {
        self.size = size
        self.chunks = chunks
        self.tail = tail
    }
}

public struct ChunkHash: Codable, Sendable, Equatable {
    public var index: Int
    public var sha256: String

    public init(index: Int, sha256: String) {
        self.index = index
        self.sha256 = sha256
    }
}
