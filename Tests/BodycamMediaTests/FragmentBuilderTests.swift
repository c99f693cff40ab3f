import BodycamCore
import Testing

@testable import BodycamMedia

/// A `trun` decoded by hand (ISO/IEC 14496-12 §8.8.8), independent of MP4Reader.
struct DecodedRun {
    var version: UInt8
    var flags: UInt32
    var count: Int
    var dataOffset: Int32?
    var durations: [UInt32] = []
    var sizes: [UInt32] = []
    var sampleFlags: [UInt32] = []
    var compositionOffsets: [Int32] = []

    /// Records an issue (rather than trapping) when the fields do not fill the box exactly.
    init(_ b: [UInt8], _ trun: MP4Box, sourceLocation: SourceLocation = #_sourceLocation) {
        let p = trun.payloadOffset
        version = b[p]
        flags = be32(b, p) & 0xff_ffff
        count = Int(be32(b, p + 4))
        var at = p + 8
        func field() -> UInt32? {
            guard at + 4 <= trun.end else { return nil }
            defer { at += 4 }
            return be32(b, at)
        }
        if flags & 0x1 != 0 { dataOffset = field().map { Int32(bitPattern: $0) } }
        if flags & 0x4 != 0 { _ = field() }
        for _ in 0..<min(count, trun.size / 4) {
            if flags & 0x100 != 0, let v = field() { durations.append(v) }
            if flags & 0x200 != 0, let v = field() { sizes.append(v) }
            if flags & 0x400 != 0, let v = field() { sampleFlags.append(v) }
            if flags & 0x800 != 0, let v = field() { compositionOffsets.append(Int32(bitPattern: v)) }
        }
        let fieldsPerSample = [0x100, 0x200, 0x400, 0x800].filter { flags & UInt32($0) != 0 }.count
        let expectedEnd =
            p + 8 + 4 * ((flags & 0x1 != 0 ? 1 : 0) + (flags & 0x4 != 0 ? 1 : 0) + count * fieldsPerSample)
        #expect(expectedEnd == trun.end, "trun fields and size disagree", sourceLocation: sourceLocation)
    }
}

/// `moof` + `mdat` header as FragmentBuilder writes it, checked against the spec by offset.
@Suite struct FragmentBuilderTests {
    static let sync: UInt32 = 0x0200_0000  // sample_depends_on = 2 (an I picture)
    static let nonSync: UInt32 = 0x0101_0000  // depends on others, sample_is_non_sync_sample

    /// Five frames: IDR then four P frames, of different sizes, pts == dts.
    static func videoFrames() -> [Sample] {
        (0..<5).map { i in
            Sample(
                bytes: [UInt8](repeating: UInt8(0x10 + i), count: 10 + 7 * i), pts: Int64(i) * 3000,
                dts: Int64(i) * 3000, duration: i == 4 ? 3003 : 3000, isSync: i == 0)
        }
    }

    @Test func videoFragmentFields() throws {
        let (v, vs) = ring(Self.videoFrames())
        let (a, _) = ring([])
        var builder = FragmentBuilder(video: fixtureVideo, audio: fixtureAudio)
        let decodeTime: Int64 = 0x1_2345_6789  // needs tfdt version 1
        let p = plan(
            sequenceNumber: 7, video: vs[0]..<(vs[4] + 1), audio: 0..<0, videoDecodeTime: decodeTime,
            audioDecodeTime: 0)
        let payload = builder.build(plan: p, videoRing: v, audioRing: a)
        let h = builder.header
        #expect(payload == Self.videoFrames().reduce(0) { $0 + $1.bytes.count })

        let top = try topLevel(h).get()
        #expect(top.boxes.map(\.type) == ["moof"])
        let moof = top.boxes[0]
        #expect(top.truncatedAt == moof.end)  // the mdat header announces the payload that follows
        #expect(h.count == moof.size + 8)
        #expect(Int(be32(h, moof.end)) == payload + 8)
        #expect(FourCC(rawValue: be32(h, moof.end + 4)) == "mdat")

        #expect(try children(moof, in: h).get().map(\.type) == ["mfhd", "traf"])
        let mfhd = try #require(boxes("moof mfhd", in: h).first)
        #expect(be32(h, mfhd.payloadOffset + 4) == 7)
        let traf = try #require(boxes("moof traf", in: h).first)
        #expect(try children(traf, in: h).get().map(\.type) == ["tfhd", "tfdt", "trun"])
        let tfhd = try #require(boxes("moof traf tfhd", in: h).first)
        #expect(be32(h, tfhd.payloadOffset) == 0x02_0000)  // version 0, default-base-is-moof only
        #expect(be32(h, tfhd.payloadOffset + 4) == 1)
        #expect(tfhd.size == 16)
        let tfdt = try #require(boxes("moof traf tfdt", in: h).first)
        #expect(h[tfdt.payloadOffset] == 1)
        #expect(be64(h, tfdt.payloadOffset + 4) == UInt64(decodeTime))

        let run = DecodedRun(h, try #require(boxes("moof traf trun", in: h).first))
        #expect(run.flags == 0x000701)  // data offset, duration, size, flags; no composition offsets
        #expect(run.count == 5)
        #expect(run.durations == [3000, 3000, 3000, 3000, 3003])
        #expect(run.sizes == [10, 17, 24, 31, 38])
        #expect(run.sampleFlags == [Self.sync, Self.nonSync, Self.nonSync, Self.nonSync, Self.nonSync])
        #expect(run.compositionOffsets.isEmpty)
        #expect(run.dataOffset == Int32(moof.size + 8))  // first byte after the mdat header
    }

    @Test func compositionOffsetsOnlyWhenReordered() throws {
        // Reordered frames as an encoder with B-frames emits them (pts ahead of dts), plus one
        // negative offset, which only trun version 1 can carry.
        let frames = [
            Sample(bytes: [1, 1], pts: 6000, dts: 0, duration: 3000, isSync: true),
            Sample(bytes: [2], pts: 15000, dts: 3000, duration: 3000, isSync: false),
            Sample(bytes: [3], pts: 9000, dts: 6000, duration: 3000, isSync: false),
            Sample(bytes: [4], pts: 9000, dts: 9000, duration: 3000, isSync: false),
            Sample(bytes: [5], pts: 9000, dts: 12000, duration: 3000, isSync: false),
        ]
        let (v, vs) = ring(frames)
        let (a, _) = ring([])
        var builder = FragmentBuilder(video: fixtureVideo, audio: nil)
        _ = builder.build(
            plan: plan(
                sequenceNumber: 1, video: vs[0]..<(vs[4] + 1), audio: 0..<0, videoDecodeTime: 0, audioDecodeTime: 0),
            videoRing: v, audioRing: a)
        let h = builder.header
        let run = DecodedRun(h, try #require(boxes("moof traf trun", in: h).first))
        #expect(run.version == 1)
        #expect(run.flags & 0x800 != 0)
        #expect(run.compositionOffsets == [6000, 12000, 3000, 0, -3000])

        // The same frames without reordering: the field disappears.
        let (v2, vs2) = ring(
            frames.map {
                var f = $0
                f.pts = f.dts
                return f
            })
        _ = builder.build(
            plan: plan(
                sequenceNumber: 2, video: vs2[0]..<(vs2[4] + 1), audio: 0..<0, videoDecodeTime: 0, audioDecodeTime: 0),
            videoRing: v2, audioRing: a)
        let run2 = DecodedRun(builder.header, try #require(boxes("moof traf trun", in: builder.header).first))
        #expect(run2.flags & 0x800 == 0)
        #expect(run2.count == 5)
    }

    /// Audio with uniform packet durations puts the duration in tfhd once; otherwise in each sample.
    @Test(arguments: [[960, 960, 960, 960], [960, 960, 480, 960]])
    func audioDurations(durations: [Int]) throws {
        let packets = durations.enumerated().map { i, d in
            Sample(
                bytes: opusPacket + [UInt8](repeating: UInt8(i), count: i + 1), pts: 0, dts: 0, duration: Int64(d),
                isSync: true)
        }
        let (a, as_) = ring(packets)
        let (v, _) = ring([])
        var builder = FragmentBuilder(video: fixtureVideo, audio: fixtureAudio)
        let p = plan(
            sequenceNumber: 3, video: 0..<0, audio: as_[0]..<(as_.last! + 1), videoDecodeTime: 0,
            audioDecodeTime: 96_000)
        let payload = builder.build(plan: p, videoRing: v, audioRing: a)
        let h = builder.header
        #expect(payload == packets.reduce(0) { $0 + $1.bytes.count })
        #expect(boxes("moof traf", in: h).count == 1)  // no video traf for an empty video plan

        let uniform = Set(durations).count == 1
        let tfhd = try #require(boxes("moof traf tfhd", in: h).first)
        #expect(be32(h, tfhd.payloadOffset + 4) == 2)
        if uniform {
            #expect(be32(h, tfhd.payloadOffset) == 0x02_0028)  // base is moof, default duration, default flags
            #expect(be32(h, tfhd.payloadOffset + 8) == 960)
            #expect(be32(h, tfhd.payloadOffset + 12) == Self.sync)
        } else {
            #expect(be32(h, tfhd.payloadOffset) == 0x02_0020)
            #expect(be32(h, tfhd.payloadOffset + 8) == Self.sync)
        }
        let tfdt = try #require(boxes("moof traf tfdt", in: h).first)
        #expect(be64(h, tfdt.payloadOffset + 4) == 96_000)

        let run = DecodedRun(h, try #require(boxes("moof traf trun", in: h).first))
        #expect(run.count == durations.count)
        #expect(run.sizes == packets.map { UInt32($0.bytes.count) })
        #expect(run.sampleFlags.isEmpty)
        #expect(run.durations == (uniform ? [] : durations.map(UInt32.init)))
        let moof = try #require(boxes("moof", in: h).first)
        #expect(run.dataOffset == Int32(moof.size + 8))

        // The reader applies the defaults the same way.
        let mp4 = try scan(
            try InitSegment.build(video: fixtureVideo, audio: fixtureAudio) + h + packets.flatMap(\.bytes)
        ).get()
        let t = try #require(mp4.fragments.first?.track(2))
        #expect(t.samples.map(\.duration) == durations.map(UInt32.init))
        #expect(t.syncSampleCount == durations.count)
        #expect(t.baseDecodeTime == 96_000)
    }

    /// Each trun's data offset, counted from the moof, lands on exactly that track's bytes.
    @Test func dataOffsetsPointAtEachTracksBytes() throws {
        let video = Self.videoFrames()
        let audio = (0..<6).map { i in
            Sample(
                bytes: opusPacket + [UInt8](repeating: 0xa0 + UInt8(i), count: 3), pts: 0, dts: 0, duration: 960,
                isSync: true)
        }
        let (v, vs) = ring(video)
        let (a, as_) = ring(audio)
        var clip = try ClipAssembler(video: fixtureVideo, audio: fixtureAudio)
        let p = plan(
            sequenceNumber: 1, video: vs[0]..<(vs[4] + 1), audio: as_[0]..<(as_[5] + 1), videoDecodeTime: 0,
            audioDecodeTime: 0)
        clip.append(p, videoRing: v, audioRing: a)
        let file = clip.bytes
        let moofAt = clip.fragmentStarts[0]
        let fragment = Array(file[moofAt...])

        let moof = try #require(boxes("moof", in: fragment).first)
        let mdatSize = Int(be32(fragment, moof.end))
        #expect(moof.end + mdatSize == fragment.count)
        let payload = video.reduce(0) { $0 + $1.bytes.count } + audio.reduce(0) { $0 + $1.bytes.count }
        #expect(mdatSize == payload + 8)

        let runs = boxes("moof traf trun", in: fragment).map { DecodedRun(fragment, $0) }
        #expect(runs.count == 2)
        for (run, samples) in zip(runs, [video, audio]) {
            var at = Int(try #require(run.dataOffset))
            for (size, sample) in zip(run.sizes, samples) {
                try #require(at >= moof.end + 8 && at + Int(size) <= fragment.count, "sample outside the mdat")
                #expect(Array(fragment[at..<(at + Int(size))]) == sample.bytes)
                at += Int(size)
            }
        }
        #expect(runs.last?.dataOffset == Int32(moof.size + 8 + video.reduce(0) { $0 + $1.bytes.count }))
    }

    /// A builder without an audio track writes no audio traf and counts no audio payload, even
    /// if the plan lists audio entries.
    @Test func videoOnlyBuilderIgnoresAudio() throws {
        let (v, vs) = ring(Self.videoFrames())
        let (a, as_) = ring([Sample(bytes: opusPacket, pts: 0, dts: 0, duration: 960, isSync: true)])
        var builder = FragmentBuilder(video: fixtureVideo, audio: nil)
        let payload = builder.build(
            plan: plan(
                sequenceNumber: 1, video: vs[0]..<(vs[4] + 1), audio: as_[0]..<(as_[0] + 1), videoDecodeTime: 0,
                audioDecodeTime: 0),
            videoRing: v, audioRing: a)
        #expect(boxes("moof traf", in: builder.header).count == 1)
        #expect(payload == Self.videoFrames().reduce(0) { $0 + $1.bytes.count })
    }

    /// Init segment + two fragments of the real x264 stream, read back with MP4Reader.
    @Test func twoFragmentsReadBack() throws {
        let clip = try fixtureClip()
        let mp4 = try scan(clip.bytes).get()
        #expect(mp4.tracks.map(\.trackID) == [1, 2])
        #expect(mp4.tracks.map(\.codec) == ["avc1", "Opus"])
        #expect(mp4.initSegmentSize == clip.fragmentStarts[0])
        #expect(mp4.fragments.map(\.offset) == clip.fragmentStarts)
        #expect(mp4.fragments.map(\.end) == clip.fragmentEnds)
        #expect(mp4.fragments.map(\.sequenceNumber) == [1, 2])
        #expect(mp4.validEnd == clip.bytes.count)
        #expect(mp4.trailingBytes == 0)
        #expect(mp4.sampleCount(trackID: 1) == 60)
        #expect(mp4.sampleCount(trackID: 2) == 100)

        let units = accessUnits(X264Fixture.annexB)
        for (k, fragment) in mp4.fragments.enumerated() {
            let video = try #require(fragment.track(1))
            #expect(video.sampleCount == 30)
            #expect(video.syncSampleCount == 1)
            #expect(video.samples.first?.isSync == true)
            #expect(video.baseDecodeTime == UInt64(k) * 90_000)
            #expect(video.duration == 90_000)
            #expect(video.samples.allSatisfy { $0.compositionOffset == 0 })
            for (i, s) in video.samples.enumerated() {
                #expect(Array(clip.bytes[s.bytes]) == units[k * 30 + i].bytes)
            }
            let audio = try #require(fragment.track(2))
            #expect(audio.sampleCount == 50)
            #expect(audio.baseDecodeTime == UInt64(k) * 48_000)
            #expect(audio.duration == 48_000)
            #expect(audio.samples.map { clip.bytes[$0.offset + 1] } == (0..<50).map { UInt8(k * 50 + $0) })
            #expect(video.dataRange.upperBound == audio.dataRange.lowerBound)
            #expect(audio.dataRange.upperBound == fragment.end)
            #expect(video.dataRange.lowerBound == fragment.mdatPayload.lowerBound)
        }
    }
}
