import BodycamCore
import Testing

@testable import BodycamMedia

/// Bytes from hex digits; whitespace is ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.utf8.filter { $0 != 32 && $0 != 10 }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: preconditionFailure("not a hex digit: \(c)")
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(digits.count / 2)
    var i = 0
    while i < digits.count {
        out.append(nibble(digits[i]) << 4 | nibble(digits[i + 1]))
        i += 2
    }
    return out
}

func be16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
}
func be64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(be32(b, at)) << 32 | UInt64(be32(b, at + 4)) }

func putBE32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(k))) }
}

/// A box of `type` around `payload`, with a 32-bit size.
func box(_ type: String, _ payload: [UInt8] = []) -> [UInt8] {
    var w = ByteWriter()
    w.box(FourCC(type)) { $0.append(payload) }
    return w.bytes
}

// MARK: Reading with MP4Reader from arrays

func scan(_ bytes: [UInt8]) -> Result<FragmentedMP4, MP4Error> {
    Result { () throws(MP4Error) -> FragmentedMP4 in try MP4Reader.scanFragmented(bytes) }
}

func topLevel(_ bytes: [UInt8]) -> Result<(boxes: [MP4Box], truncatedAt: Int?), MP4Error> {
    bytes.withUnsafeBytes { raw in
        Result { () throws(MP4Error) -> (boxes: [MP4Box], truncatedAt: Int?) in try MP4Reader.topLevelBoxes(raw) }
    }
}

/// Boxes at `path` (space-separated types from the top level); the test fails on an error.
func boxes(_ path: String, in bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [MP4Box] {
    let types = path.split(separator: " ").map { FourCC(String($0)) }
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(MP4Error) -> [MP4Box] in try MP4Reader.boxes(at: types, in: raw) }
    }
    switch result {
    case .success(let found): return found
    case .failure(let error):
        Issue.record("reading \(path): \(error)", sourceLocation: sourceLocation)
        return []
    }
}

/// The single box at `path`; records an issue unless there is exactly one.
func onlyBox(_ path: String, in bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> MP4Box? {
    let found = boxes(path, in: bytes, sourceLocation: sourceLocation)
    guard found.count == 1 else {
        Issue.record("expected one \(path), found \(found.count)", sourceLocation: sourceLocation)
        return nil
    }
    return found[0]
}

func children(_ box: MP4Box, in bytes: [UInt8]) -> Result<[MP4Box], MP4Error> {
    bytes.withUnsafeBytes { raw in
        Result { () throws(MP4Error) -> [MP4Box] in try MP4Reader.children(of: box, in: raw) }
    }
}

// MARK: H.264 stream from the x264 fixture

/// NAL units of an Annex-B byte stream (without start codes).
func annexBNALs(_ stream: [UInt8]) -> [[UInt8]] {
    var starts: [(code: Int, body: Int)] = []
    var i = 0
    while i + 3 <= stream.count {
        if stream[i] == 0, stream[i + 1] == 0, stream[i + 2] == 1 {
            starts.append((i, i + 3))
            i += 3
        } else {
            i += 1
        }
    }
    var nals: [[UInt8]] = []
    for (k, s) in starts.enumerated() {
        var end = k + 1 < starts.count ? starts[k + 1].code : stream.count
        while end > s.body, stream[end - 1] == 0 { end -= 1 }  // the leading zero of a 4-byte start code
        nals.append(Array(stream[s.body..<end]))
    }
    return nals
}

/// One coded picture as it goes into an MP4 sample: NAL units with 4-byte lengths; SPS and PPS
/// left out (they live in `avcC`), SEI kept, as `X264Encoder` does.
struct AccessUnit {
    var bytes: [UInt8]
    var isIDR: Bool
}

func accessUnits(_ stream: [UInt8]) -> [AccessUnit] {
    var out: [AccessUnit] = []
    var pending: [UInt8] = []
    for nal in annexBNALs(stream) {
        let type = H264.nalType(nal[0])
        if type == 7 || type == 8 { continue }
        let n = UInt32(nal.count)
        pending += [
            UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
            UInt8(truncatingIfNeeded: n),
        ]
        pending += nal
        if type == 1 || type == 5 {  // one slice per picture in the fixture
            out.append(AccessUnit(bytes: pending, isIDR: type == 5))
            pending = []
        }
    }
    return out
}

// MARK: Rings, plans and clips

/// A ring entry made by hand: its bytes and timing.
struct Sample {
    var bytes: [UInt8]
    var pts: Int64
    var dts: Int64
    var duration: Int64 = 0
    var isSync: Bool
    var time: MonotonicTime = .zero
}

/// A ring holding `samples` in order; returns the ring and their sequence numbers.
func ring(_ samples: [Sample], capacity: Int = 1 << 20) -> (MediaRing, [Int]) {
    let r = MediaRing(capacity: capacity, maxEntries: max(16, samples.count * 2))
    var seqs: [Int] = []
    for s in samples {
        let e = MediaEntry(
            length: s.bytes.count, time: s.time, pts: s.pts, dts: s.dts, duration: s.duration, isSync: s.isSync)
        let seq = r.append(e) { dst in dst.copyBytes(from: s.bytes) }
        precondition(seq != nil, "test ring too small")
        seqs.append(seq!)
    }
    return (r, seqs)
}

/// A FragmentPlan with the given fields. It has no public initializer, so one is cut from a
/// throwaway ClipCursor and every field is then set here.
func plan(
    sequenceNumber: Int, video: Range<Int>, audio: Range<Int>, videoDecodeTime: Int64, audioDecodeTime: Int64
) -> FragmentPlan {
    let (v, _) = ring([Sample(bytes: [0], pts: 0, dts: 0, isSync: true)])
    let (a, _) = ring([])
    var cursor = ClipCursor(
        video: v, originSeq: v.firstSeq, audioFromSeq: 0, audioFrom: .zero, videoTicksPerSecond: 90_000,
        audioTicksPerSecond: 48_000, videoFrameTicks: 3000)
    var p = cursor.cut(video: v, audio: a, videoEnd: v.endSeq, until: .zero + 1)!
    p.sequenceNumber = sequenceNumber
    p.video = video
    p.audio = audio
    p.videoDecodeTime = videoDecodeTime
    p.audioDecodeTime = audioDecodeTime
    return p
}

/// Writes fragments the way the recorder does: the builder's header, then each video entry's
/// bytes, then each audio entry's.
struct ClipAssembler {
    var builder: FragmentBuilder
    var bytes: [UInt8]
    /// Offset of each fragment's moof, and one past each fragment's end.
    var fragmentStarts: [Int] = []
    var fragmentEnds: [Int] = []

    init(video: VideoTrack?, audio: AudioTrack?) throws {
        builder = FragmentBuilder(video: video, audio: audio)
        bytes = try InitSegment.build(video: video, audio: audio)
    }

    @discardableResult
    mutating func append(_ plan: FragmentPlan, videoRing: MediaRing, audioRing: MediaRing) -> [UInt8] {
        let payload = builder.build(plan: plan, videoRing: videoRing, audioRing: audioRing)
        fragmentStarts.append(bytes.count)
        bytes += builder.header
        var written = 0
        if builder.video != nil {
            for s in plan.video {
                bytes += videoRing.bytes(s)
                written += videoRing[s].length
            }
        }
        if builder.audio != nil {
            for s in plan.audio {
                bytes += audioRing.bytes(s)
                written += audioRing[s].length
            }
        }
        precondition(written == payload, "payload bytes disagree with the builder")
        fragmentEnds.append(bytes.count)
        return builder.header
    }
}

/// The SPS/PPS of the x264 fixture as a video track (90 kHz).
let fixtureVideo = VideoTrack(width: 1280, height: 720, timescale: 90_000, sps: X264Fixture.sps, pps: X264Fixture.pps)
let fixtureAudio = AudioTrack(sampleRate: 16_000, channels: 1, preSkip: 312)

/// A one-byte Opus packet: TOC 0xF8 (CELT fullband 20 ms, mono, one frame) with an empty frame,
/// which RFC 6716 §3.2.1 allows (the decoder fills it in). Real enough for a demuxer.
let opusPacket: [UInt8] = [0xf8]

/// A two-fragment clip of the fixture stream: frames 0..<30 and 30..<60 at 3000 ticks (30 fps),
/// 50 audio packets of 960 ticks per fragment. Returns the file and its assembler.
func fixtureClip(withAudio: Bool = true) throws -> ClipAssembler {
    let units = accessUnits(X264Fixture.annexB)
    precondition(units.count == 60)
    let (v, vs) = ring(
        units.enumerated().map { i, u in
            Sample(bytes: u.bytes, pts: Int64(i) * 3000, dts: Int64(i) * 3000, duration: 3000, isSync: u.isIDR)
        })
    let (a, as_) = ring(
        (0..<100).map { i in
            Sample(
                bytes: opusPacket + [UInt8(i)], pts: Int64(i) * 960, dts: Int64(i) * 960, duration: 960, isSync: true)
        })
    var clip = try ClipAssembler(video: fixtureVideo, audio: withAudio ? fixtureAudio : nil)
    for k in 0..<2 {
        let p = plan(
            sequenceNumber: k + 1, video: vs[k * 30]..<(vs[k * 30 + 29] + 1),
            audio: withAudio ? as_[k * 50]..<(as_[k * 50 + 49] + 1) : 0..<0,
            videoDecodeTime: Int64(k) * 90_000, audioDecodeTime: Int64(k) * 48_000)
        clip.append(p, videoRing: v, audioRing: a)
    }
    return clip
}
