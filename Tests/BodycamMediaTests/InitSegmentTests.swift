import BodycamCore
import Testing

@testable import BodycamMedia

/// The init segment's boxes, field by field, against ISO/IEC 14496-12/-15 and the Opus-in-ISOBMFF
/// encapsulation. Fields are decoded here by offset, not with MP4Reader, so a mistake shared by
/// the writer and the reader still shows.
@Suite struct InitSegmentTests {
    let file: [UInt8]

    init() throws {
        file = try InitSegment.build(video: fixtureVideo, audio: fixtureAudio)
    }

    @Test func topLevelIsFtypThenMoov() throws {
        let top = try topLevel(file).get()
        #expect(top.boxes.map(\.type) == ["ftyp", "moov"])
        #expect(top.truncatedAt == nil)
        #expect(top.boxes.last?.end == file.count)
    }

    @Test func ftypBrands() throws {
        let ftyp = try #require(onlyBox("ftyp", in: file))
        let p = ftyp.payloadOffset
        #expect(FourCC(rawValue: be32(file, p)) == "iso6")
        #expect(be32(file, p + 4) == 0)
        let brands = stride(from: p + 8, to: ftyp.end, by: 4).map { FourCC(rawValue: be32(file, $0)) }
        #expect(brands == ["iso6", "iso5", "isom", "mp41", "avc1", "Opus"])

        let videoOnly = try InitSegment.build(video: fixtureVideo, audio: nil)
        let v = try #require(onlyBox("ftyp", in: videoOnly))
        let videoBrands = stride(from: v.payloadOffset + 8, to: v.end, by: 4).map {
            FourCC(rawValue: be32(videoOnly, $0))
        }
        #expect(!videoBrands.contains("Opus"))
        #expect(videoBrands.contains("avc1"))
    }

    @Test func moovHoldsHeaderTracksAndMvex() throws {
        let moov = try #require(onlyBox("moov", in: file))
        #expect(try children(moov, in: file).get().map(\.type) == ["mvhd", "trak", "trak", "mvex"])
        let mvhd = try #require(onlyBox("moov mvhd", in: file))
        #expect(file[mvhd.payloadOffset] == 0)  // version 0
        #expect(be32(file, mvhd.payloadOffset + 12) == 1000)  // timescale
        #expect(be32(file, mvhd.end - 4) == 3)  // next_track_ID: one past the highest
        #expect(mvhd.size == 108)
    }

    @Test func videoTrackHeaders() throws {
        let trak = try #require(boxes("moov trak", in: file).first)
        #expect(try children(trak, in: file).get().map(\.type) == ["tkhd", "mdia"])
        let tkhd = try #require(boxes("moov trak tkhd", in: file).first)
        #expect(be32(file, tkhd.payloadOffset) & 0xff_ffff == 3)  // enabled, in movie
        #expect(be32(file, tkhd.payloadOffset + 12) == 1)  // track_ID
        #expect(be32(file, tkhd.end - 8) == 1280 << 16)
        #expect(be32(file, tkhd.end - 4) == 720 << 16)

        let mdhd = try #require(boxes("moov trak mdia mdhd", in: file).first)
        #expect(be32(file, mdhd.payloadOffset + 12) == 90_000)
        #expect(be16(file, mdhd.payloadOffset + 20) == 0x55c4)  // "und"
        let hdlr = try #require(boxes("moov trak mdia hdlr", in: file).first)
        #expect(FourCC(rawValue: be32(file, hdlr.payloadOffset + 8)) == "vide")
        #expect(file[hdlr.end - 1] == 0)  // name is NUL-terminated
        #expect(boxes("moov trak mdia minf vmhd", in: file).count == 1)
        let dref = try #require(boxes("moov trak mdia minf dinf dref", in: file).first)
        #expect(try children(dref, in: file).get().map(\.type) == ["url "])
    }

    @Test func sampleTablesAreEmpty() throws {
        for type in ["stts", "stsc", "stco"] {
            for b in boxes("moov trak mdia minf stbl \(type)", in: file) {
                #expect(b.size == 16, "\(type)")
                #expect(be32(file, b.payloadOffset + 4) == 0, "\(type) entry_count")
            }
        }
        for b in boxes("moov trak mdia minf stbl stsz", in: file) {
            #expect(be32(file, b.payloadOffset + 8) == 0)  // sample_count
        }
        let stsd = boxes("moov trak mdia minf stbl stsd", in: file)
        #expect(stsd.count == 2)
        for b in stsd { #expect(be32(file, b.payloadOffset + 4) == 1) }
    }

    @Test func avc1SampleEntryAndAvcC() throws {
        let avc1 = try #require(onlyBox("moov trak mdia minf stbl stsd avc1", in: file))
        let p = avc1.payloadOffset
        #expect(be16(file, p + 6) == 1)  // data_reference_index
        #expect(be16(file, p + 24) == 1280)
        #expect(be16(file, p + 26) == 720)
        #expect(be32(file, p + 28) == 0x0048_0000)
        #expect(be16(file, p + 40) == 1)  // frame_count
        #expect(be16(file, p + 74) == 0x18)  // depth
        #expect(be16(file, p + 76) == 0xffff)
        #expect(try children(avc1, in: file).get().map(\.type) == ["avcC", "pasp"])

        let avcC = try #require(onlyBox("moov trak mdia minf stbl stsd avc1 avcC", in: file))
        let sps = X264Fixture.sps
        let pps = X264Fixture.pps
        let expected: [UInt8] =
            [1, 100, 0x00, 31, 0xff, 0xe1, 0, UInt8(sps.count)] + sps + [1, 0, UInt8(pps.count)] + pps
            + [0xfc | 1, 0xf8 | 0, 0xf8 | 0, 0]  // High profile: 4:2:0, 8-bit, no SPS extensions
        #expect(Array(file[avcC.payload]) == expected)
    }

    /// Profile, constraint flags and level in avcC come from the SPS, not from constants: a Main
    /// and a Baseline SPS (also from x264) give their own, and no High-profile extension.
    @Test(arguments: OtherSPS.all)
    func avcCFollowsTheSPS(_ c: OtherSPS) throws {
        let sps = hexBytes(c.hex)
        let video = VideoTrack(width: c.width, height: c.height, timescale: 90_000, sps: sps, pps: X264Fixture.pps)
        let bytes = try InitSegment.build(video: video, audio: nil)
        let avc1 = try #require(onlyBox("moov trak mdia minf stbl stsd avc1", in: bytes))
        #expect(be16(bytes, avc1.payloadOffset + 24) == UInt16(c.width))
        #expect(be16(bytes, avc1.payloadOffset + 26) == UInt16(c.height))
        let avcC = try #require(onlyBox("moov trak mdia minf stbl stsd avc1 avcC", in: bytes))
        let expected: [UInt8] =
            [1, c.profile, c.constraints, c.level, 0xff, 0xe1, 0, UInt8(sps.count)] + sps
            + [1, 0, UInt8(X264Fixture.pps.count)] + X264Fixture.pps
        #expect(Array(bytes[avcC.payload]) == expected)
    }

    @Test func opusTrack() throws {
        let trak = try #require(boxes("moov trak", in: file).last)
        let tkhd = try #require(try children(trak, in: file).get().first)
        #expect(be32(file, tkhd.payloadOffset + 12) == 2)  // track_ID
        #expect(be16(file, tkhd.payloadOffset + 34) == 1)  // alternate_group
        #expect(be16(file, tkhd.payloadOffset + 36) == 0x0100)  // volume 1.0

        let mdhd = try #require(boxes("moov trak mdia mdhd", in: file).last)
        #expect(be32(file, mdhd.payloadOffset + 12) == 48_000)  // Opus always counts at 48 kHz
        let hdlr = try #require(boxes("moov trak mdia hdlr", in: file).last)
        #expect(FourCC(rawValue: be32(file, hdlr.payloadOffset + 8)) == "soun")
        #expect(boxes("moov trak mdia minf smhd", in: file).count == 1)

        let opus = try #require(onlyBox("moov trak mdia minf stbl stsd Opus", in: file))
        let p = opus.payloadOffset
        #expect(be16(file, p + 6) == 1)  // data_reference_index
        #expect(be16(file, p + 16) == 1)  // channelcount
        #expect(be16(file, p + 18) == 16)  // samplesize
        #expect(be32(file, p + 24) == 48_000 << 16)

        let dOps = try #require(onlyBox("moov trak mdia minf stbl stsd Opus dOps", in: file))
        #expect(dOps.size == 8 + 11)
        let expected: [UInt8] = [
            0,  // Version
            1,  // OutputChannelCount
            0x01, 0x38,  // PreSkip 312, big-endian
            0x00, 0x00, 0x3e, 0x80,  // InputSampleRate 16000
            0, 0,  // OutputGain
            0,  // ChannelMappingFamily
        ]
        #expect(Array(file[dOps.payload]) == expected)
    }

    @Test func mvexHasOneTrexPerTrack() throws {
        let trex = boxes("moov mvex trex", in: file)
        #expect(trex.map { be32(file, $0.payloadOffset + 4) } == [1, 2])
        for t in trex {
            #expect(t.size == 32)
            #expect(be32(file, t.payloadOffset + 8) == 1)  // default_sample_description_index
        }
        let audioOnly = try InitSegment.build(video: nil, audio: fixtureAudio)
        #expect(boxes("moov mvex trex", in: audioOnly).map { be32(audioOnly, $0.payloadOffset + 4) } == [2])
        #expect(boxes("moov trak", in: audioOnly).count == 1)
    }

    /// The reader sees what the writer meant.
    @Test func readerParsesTheInitSegment() throws {
        let mp4 = try scan(file).get()
        #expect(mp4.majorBrand == "iso6")
        #expect(mp4.movieTimescale == 1000)
        #expect(mp4.fragments.isEmpty)
        #expect(mp4.initSegmentSize == file.count)
        #expect(mp4.validEnd == file.count)
        #expect(mp4.trailingBytes == 0)
        #expect(mp4.tracks.count == 2)

        let v = try #require(mp4.track(id: 1))
        #expect(v.handler == "vide")
        #expect(v.codec == "avc1")
        #expect(v.timescale == 90_000)
        #expect((v.width, v.height, v.displayWidth, v.displayHeight) == (1280, 720, 1280, 720))
        let avc = try #require(v.avc)
        #expect(avc.sps == [X264Fixture.sps])
        #expect(avc.pps == [X264Fixture.pps])
        #expect(avc.nalLengthSize == 4)
        #expect((avc.profileIDC, avc.levelIDC, avc.chromaFormatIDC, avc.bitDepthLuma) == (100, 31, 1, 8))

        let a = try #require(mp4.track(id: 2))
        #expect(a.handler == "soun")
        #expect(a.codec == "Opus")
        #expect(a.timescale == 48_000)
        #expect((a.channels, a.sampleRate) == (1, 48_000))
        let opus = try #require(a.opus)
        #expect(opus.preSkip == 312)
        #expect(opus.inputSampleRate == 16_000)
        #expect(opus.outputChannelCount == 1)
        #expect(a.defaults == MP4SampleDefaults(sampleDescriptionIndex: 1))
    }

    @Test func rejectsAnSPSThatIsNotOne() {
        let video = VideoTrack(width: 1, height: 1, timescale: 90_000, sps: X264Fixture.pps, pps: X264Fixture.pps)
        #expect(throws: H264.ParseError.self) { try InitSegment.build(video: video, audio: nil) }
    }
}
