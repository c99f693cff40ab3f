/// The H.264 track of a clip.
public struct VideoTrack: Sendable, Equatable {
    public var trackID: UInt32 = 1
    public var width: Int
    public var height: Int
    /// Ticks per second of the track's media time (90 000 for 30 fps).
    public var timescale: Int
    /// SPS and PPS NAL units without start codes or length prefixes.
    public var sps: [UInt8]
    public var pps: [UInt8]

    public init(width: Int, height: Int, timescale: Int, sps: [UInt8], pps: [UInt8]) {
        self.width = width
        self.height = height
        self.timescale = timescale
        self.sps = sps
        self.pps = pps
    }
}

/// The Opus track of a clip (Encapsulation of Opus in ISO Base Media File Format, v0.8.1).
public struct AudioTrack: Sendable, Equatable {
    public var trackID: UInt32 = 2
    public var sampleRate: Int
    public var channels: Int
    /// Samples the decoder discards at the start (the encoder's lookahead).
    public var preSkip: Int

    public init(sampleRate: Int, channels: Int, preSkip: Int) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.preSkip = preSkip
    }

    /// Opus in MP4 always counts time at 48 kHz, whatever the input rate.
    public var timescale: Int { 48_000 }
}

/// Builds the initialisation segment of a fragmented MP4: `ftyp` + `moov` (with `mvex`).
///
/// The sample tables in `moov` are empty; every sample lives in a later `moof`+`mdat` pair, so
/// the file is playable as soon as the first fragment is complete and after every later one.
public enum InitSegment {
    public static func build(video: VideoTrack?, audio: AudioTrack?) throws(H264.ParseError) -> [UInt8] {
        var w = ByteWriter(capacity: 1024)
        w.box("ftyp") { w in
            w.fourCC("iso6")
            w.u32(0)
            var brands: [FourCC] = ["iso6", "iso5", "isom", "mp41"]
            if video != nil { brands.append("avc1") }
            if audio != nil { brands.append("Opus") }
            for b in brands { w.fourCC(b) }
        }
        var avcC: [UInt8] = []
        var sps: H264.SPS?
        if let video {
            let parsed = try H264.parseSPS(video.sps)
            sps = parsed
            avcC = avcConfiguration(sps: video.sps, pps: video.pps, parsed: parsed)
        }
        let nextTrack = max(video?.trackID ?? 0, audio?.trackID ?? 0) + 1
        w.box("moov") { w in
            w.fullBox("mvhd", version: 0, flags: 0) { w in
                w.u32(0)  // creation_time: not recorded here; the manifest has UTC
                w.u32(0)  // modification_time
                w.u32(1000)  // timescale
                w.u32(0)  // duration: unknown, fragments follow
                w.u32(0x0001_0000)  // rate 1.0
                w.u16(0x0100)  // volume 1.0
                w.zeros(10)
                unityMatrix(&w)
                w.zeros(24)  // pre_defined
                w.u32(nextTrack)
            }
            if let video, let sps {
                trak(&w, id: video.trackID, width: video.width, height: video.height, audio: false) { w in
                    w.fullBox("mdhd", version: 0, flags: 0) { w in
                        w.u32(0)
                        w.u32(0)
                        w.u32(UInt32(video.timescale))
                        w.u32(0)
                        w.u16(0x55c4)  // language "und"
                        w.u16(0)
                    }
                    handler(&w, "vide", name: "bodycam video")
                    w.box("minf") { w in
                        w.fullBox("vmhd", version: 0, flags: 1) { w in w.zeros(8) }
                        dataInformation(&w)
                        sampleTable(&w) { w in
                            w.box("avc1") { w in
                                w.zeros(6)
                                w.u16(1)  // data_reference_index
                                w.zeros(16)  // pre_defined, reserved, pre_defined[3]
                                w.u16(UInt16(clamping: sps.width))
                                w.u16(UInt16(clamping: sps.height))
                                w.u32(0x0048_0000)  // 72 dpi
                                w.u32(0x0048_0000)
                                w.u32(0)
                                w.u16(1)  // frame_count
                                var name = Array("bodycam H.264".utf8)
                                name = [UInt8(name.count)] + name + [UInt8](repeating: 0, count: 31 - name.count)
                                w.append(name)
                                w.u16(0x0018)  // depth
                                w.u16(0xffff)  // pre_defined = -1
                                w.box("avcC") { w in w.append(avcC) }
                                w.box("pasp") { w in
                                    w.u32(1)
                                    w.u32(1)
                                }
                            }
                        }
                    }
                }
            }
            if let audio {
                trak(&w, id: audio.trackID, width: 0, height: 0, audio: true) { w in
                    w.fullBox("mdhd", version: 0, flags: 0) { w in
                        w.u32(0)
                        w.u32(0)
                        w.u32(UInt32(audio.timescale))
                        w.u32(0)
                        w.u16(0x55c4)
                        w.u16(0)
                    }
                    handler(&w, "soun", name: "bodycam audio")
                    w.box("minf") { w in
                        w.fullBox("smhd", version: 0, flags: 0) { w in w.zeros(4) }
                        dataInformation(&w)
                        sampleTable(&w) { w in
                            w.box("Opus") { w in
                                w.zeros(6)
                                w.u16(1)  // data_reference_index
                                w.zeros(8)
                                w.u16(UInt16(audio.channels))
                                w.u16(16)  // samplesize
                                w.zeros(4)  // pre_defined, reserved
                                w.u32(UInt32(audio.timescale) << 16)
                                w.box("dOps") { w in
                                    w.u8(0)  // Version
                                    w.u8(UInt8(audio.channels))
                                    w.u16(UInt16(audio.preSkip))
                                    w.u32(UInt32(audio.sampleRate))
                                    w.u16(0)  // OutputGain
                                    w.u8(0)  // ChannelMappingFamily 0: mono or stereo
                                }
                            }
                        }
                    }
                }
            }
            w.box("mvex") { w in
                for id in [video?.trackID, audio?.trackID].compactMap({ $0 }) {
                    w.fullBox("trex", version: 0, flags: 0) { w in
                        w.u32(id)
                        w.u32(1)  // default_sample_description_index
                        w.u32(0)
                        w.u32(0)
                        w.u32(0)
                    }
                }
            }
        }
        return w.bytes
    }

    /// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1), 4-byte NAL lengths.
    static func avcConfiguration(sps: [UInt8], pps: [UInt8], parsed: H264.SPS) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(1)
        w.u8(parsed.profileIDC)
        w.u8(parsed.constraintFlags)
        w.u8(parsed.levelIDC)
        w.u8(0xfc | 3)  // lengthSizeMinusOne = 3
        w.u8(0xe0 | 1)  // one SPS
        w.u16(UInt16(sps.count))
        w.append(sps)
        w.u8(1)  // one PPS
        w.u16(UInt16(pps.count))
        w.append(pps)
        if H264.hasChromaInfo(parsed.profileIDC) {
            w.u8(0xfc | UInt8(parsed.chromaFormatIDC))
            w.u8(0xf8 | UInt8(parsed.bitDepthLuma - 8))
            w.u8(0xf8 | UInt8(parsed.bitDepthChroma - 8))
            w.u8(0)  // numOfSequenceParameterSetExt
        }
        return w.bytes
    }

    private static func trak(
        _ w: inout ByteWriter, id: UInt32, width: Int, height: Int, audio: Bool,
        mdia: (inout ByteWriter) -> Void
    ) {
        w.box("trak") { w in
            w.fullBox("tkhd", version: 0, flags: 3) { w in  // enabled, in movie
                w.u32(0)
                w.u32(0)
                w.u32(id)
                w.u32(0)
                w.u32(0)  // duration unknown
                w.zeros(8)
                w.u16(0)  // layer
                w.u16(audio ? 1 : 0)  // alternate_group
                w.u16(audio ? 0x0100 : 0)  // volume
                w.u16(0)
                unityMatrix(&w)
                w.u32(UInt32(width) << 16)
                w.u32(UInt32(height) << 16)
            }
            w.box("mdia", mdia)
        }
    }

    private static func handler(_ w: inout ByteWriter, _ type: FourCC, name: String) {
        w.fullBox("hdlr", version: 0, flags: 0) { w in
            w.u32(0)
            w.fourCC(type)
            w.zeros(12)
            w.append(Array(name.utf8))
            w.u8(0)
        }
    }

    private static func dataInformation(_ w: inout ByteWriter) {
        w.box("dinf") { w in
            w.fullBox("dref", version: 0, flags: 0) { w in
                w.u32(1)
                w.fullBox("url ", version: 0, flags: 1) { _ in }  // media in this file
            }
        }
    }

    private static func sampleTable(_ w: inout ByteWriter, entry: (inout ByteWriter) -> Void) {
        w.box("stbl") { w in
            w.fullBox("stsd", version: 0, flags: 0) { w in
                w.u32(1)
                entry(&w)
            }
            w.fullBox("stts", version: 0, flags: 0) { w in w.u32(0) }
            w.fullBox("stsc", version: 0, flags: 0) { w in w.u32(0) }
            w.fullBox("stsz", version: 0, flags: 0) { w in
                w.u32(0)
                w.u32(0)
            }
            w.fullBox("stco", version: 0, flags: 0) { w in w.u32(0) }
        }
    }

    private static func unityMatrix(_ w: inout ByteWriter) {
        for v: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] { w.u32(v) }
    }
}
