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
    }
}

/// Clip ids: `<device-id>-<UTC yyyymmddThhmmssZ>-<seq>`, safe as file names and S3 keys.
public enum ClipID {
    public static func make(deviceID: String, unixSeconds: Double, sequence: Int) -> String {
        let seq = String(sequence)
        let padded = seq.count >= 4 ? seq : String(repeating: "0", count: 4 - seq.count) + seq
        return "\(deviceID)-\(UTCFormat.compact(unixSeconds))-\(padded)"
    }

    /// Device ids go into file names and object keys: letters, digits, '-' and '_' only.
    public static func isValidDeviceID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 48
            && id.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f
            }
    }
}
