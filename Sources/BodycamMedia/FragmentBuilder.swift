public import BodycamCore

/// Builds the `moof` box and `mdat` header of one fragment (ISO/IEC 14496-12 §8.8).
///
/// The sample bytes themselves stay where they are (in the pre-event ring); the writer sends
/// `header` followed by each entry's bytes in order with one `writev`. The builder keeps its
/// buffer between fragments, so steady-state recording allocates nothing here.
public struct FragmentBuilder: Sendable {
    public let video: VideoTrack?
    public let audio: AudioTrack?
    private var w = ByteWriter(capacity: 16 * 1024)

    public init(video: VideoTrack?, audio: AudioTrack?) {
        self.video = video
        self.audio = audio
    }

    /// The `moof` and the `mdat` header of the last `build`.
    public var header: [UInt8] { w.bytes }

    /// Sample flags (§8.8.3.1): a sync sample depends on nothing; others depend on earlier ones
    /// and are marked non-sync so players seek only to keyframes.
    static let syncFlags: UInt32 = 0x0200_0000
    static let nonSyncFlags: UInt32 = 0x0101_0000

    /// Builds the header for `plan`. Returns the number of payload bytes that must follow it
    /// (the video entries' bytes, then the audio entries').
    public mutating func build(plan: FragmentPlan, videoRing: MediaRing, audioRing: MediaRing) -> Int {
        w.reset()
        var videoBytes = 0
        for s in plan.video { videoBytes += videoRing[s].length }
        var audioBytes = 0
        for s in plan.audio { audioBytes += audioRing[s].length }
        let hasVideo = video != nil && !plan.video.isEmpty
        let hasAudio = audio != nil && !plan.audio.isEmpty

        let moofStart = w.count
        var dataOffsetFields: [(at: Int, add: Int)] = []
        w.box("moof") { w in
            w.fullBox("mfhd", version: 0, flags: 0) { w in w.u32(UInt32(plan.sequenceNumber)) }
            if hasVideo, let video {
                var anyCTO = false
                for s in plan.video where videoRing[s].pts != videoRing[s].dts { anyCTO = true }
                w.box("traf") { w in
                    w.fullBox("tfhd", version: 0, flags: 0x02_0000) { w in w.u32(video.trackID) }  // base is moof
                    w.fullBox("tfdt", version: 1, flags: 0) { w in w.u64(UInt64(max(0, plan.videoDecodeTime))) }
                    // data offset, sample duration, size, flags, and composition offsets if any.
                    let flags: UInt32 = 0x000001 | 0x000100 | 0x000200 | 0x000400 | (anyCTO ? 0x000800 : 0)
                    w.fullBox("trun", version: 1, flags: flags) { w in
                        w.u32(UInt32(plan.video.count))
                        dataOffsetFields.append((w.count, 0))
                        w.u32(0)  // data_offset, patched below
                        for s in plan.video {
                            let e = videoRing[s]
                            w.u32(UInt32(clamping: e.duration))
                            w.u32(UInt32(e.length))
                            w.u32(e.isSync ? Self.syncFlags : Self.nonSyncFlags)
                            if anyCTO { w.i32(Int32(clamping: e.pts - e.dts)) }
                        }
                    }
                }
            }
            if hasAudio, let audio {
                let first = audioRing[plan.audio.lowerBound].duration
                var uniform = true
                for s in plan.audio where audioRing[s].duration != first { uniform = false }
                w.box("traf") { w in
                    // base is moof, default duration (when uniform), default flags: every packet is sync.
                    let tfhdFlags: UInt32 = 0x02_0000 | 0x20 | (uniform ? 0x08 : 0)
                    w.fullBox("tfhd", version: 0, flags: tfhdFlags) { w in
                        w.u32(audio.trackID)
                        if uniform { w.u32(UInt32(clamping: first)) }
                        w.u32(Self.syncFlags)
                    }
                    w.fullBox("tfdt", version: 1, flags: 0) { w in w.u64(UInt64(max(0, plan.audioDecodeTime))) }
                    let flags: UInt32 = 0x000001 | 0x000200 | (uniform ? 0 : 0x000100)
                    w.fullBox("trun", version: 0, flags: flags) { w in
                        w.u32(UInt32(plan.audio.count))
                        dataOffsetFields.append((w.count, hasVideo ? videoBytes : 0))
                        w.u32(0)
                        for s in plan.audio {
                            let e = audioRing[s]
                            if !uniform { w.u32(UInt32(clamping: e.duration)) }
                            w.u32(UInt32(e.length))
                        }
                    }
                }
            }
        }
        let moofSize = w.count - moofStart
        let payload = (hasVideo ? videoBytes : 0) + (hasAudio ? audioBytes : 0)
        // data_offset is relative to the start of moof: past moof and the 8-byte mdat header.
        for f in dataOffsetFields { w.patch32(at: f.at, UInt32(moofSize + 8 + f.add)) }
        w.u32(UInt32(8 + payload))
        w.fourCC("mdat")
        return payload
    }
}
