import Testing

@testable import BodycamMedia

/// Writes H.264 syntax elements (§7.2: u(n), ue(v), se(v)) to build SPS units by hand.
struct BitWriter {
    var bytes: [UInt8] = []
    var bits = 0

    mutating func u(_ n: Int, _ v: UInt64) {
        for i in stride(from: n - 1, through: 0, by: -1) {
            if bits % 8 == 0 { bytes.append(0) }
            if (v >> UInt64(i)) & 1 == 1 { bytes[bytes.count - 1] |= 0x80 >> UInt8(bits % 8) }
            bits += 1
        }
    }

    mutating func flag(_ b: Bool) { u(1, b ? 1 : 0) }

    mutating func ue(_ v: UInt64) {
        let x = v + 1
        let length = 64 - x.leadingZeroBitCount
        u(length - 1, 0)
        u(length, x)
    }

    mutating func se(_ v: Int64) { ue(v > 0 ? UInt64(2 * v - 1) : UInt64(-2 * v)) }

    /// rbsp_trailing_bits, then emulation prevention, behind an SPS NAL header.
    func spsNAL() -> [UInt8] {
        var w = self
        w.u(1, 1)
        while w.bits % 8 != 0 { w.u(1, 0) }
        return [0x67] + insertEmulationPrevention(w.bytes)
    }
}

/// 00 00 0x (x ≤ 3) → 00 00 03 0x, as an encoder does (§7.4.1).
func insertEmulationPrevention(_ rbsp: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var zeros = 0
    for b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.append(3)
            zeros = 0
        }
        out.append(b)
        zeros = b == 0 ? zeros + 1 : 0
    }
    return out
}

/// The fields of a hand-made SPS; defaults give 4:2:0 8-bit High profile, 64x48.
struct SPSFields {
    var profile: UInt64 = 100
    var chroma: UInt64 = 1
    var bitDepthLumaMinus8: UInt64 = 0
    var scalingLists = false
    var pocType: UInt64 = 0
    var widthMbs: UInt64 = 4
    var heightMapUnits: UInt64 = 3
    var frameMbsOnly = true
    var crop: (left: UInt64, right: UInt64, top: UInt64, bottom: UInt64)?

    func nal() -> [UInt8] {
        var w = BitWriter()
        w.u(8, profile)
        w.u(8, 0)  // constraint flags
        w.u(8, 30)  // level
        w.ue(0)  // seq_parameter_set_id
        if H264.hasChromaInfo(UInt8(profile)) {
            w.ue(chroma)
            if chroma == 3 { w.flag(false) }  // separate_colour_plane_flag
            w.ue(bitDepthLumaMinus8)
            w.ue(0)  // bit_depth_chroma_minus8
            w.flag(false)  // qpprime_y_zero_transform_bypass_flag
            w.flag(scalingLists)
            if scalingLists {
                for i in 0..<(chroma == 3 ? 12 : 8) {
                    w.flag(i % 2 == 0)  // every other list present
                    if i % 2 == 0 {
                        // A 4x4 list with a few deltas, then nextScale 0 ends it early; 8x8 lists likewise.
                        w.se(5)
                        w.se(-3)
                        w.se(-10)  // (8 + 5 - 3 - 10) = 0: the rest of the list repeats
                    }
                }
            }
        }
        w.ue(0)  // log2_max_frame_num_minus4
        w.ue(pocType)
        if pocType == 0 {
            w.ue(2)
        } else if pocType == 1 {
            w.flag(false)
            w.se(-2)
            w.se(1)
            w.ue(3)
            for v: Int64 in [1, -1, 4] { w.se(v) }
        }
        w.ue(1)  // max_num_ref_frames
        w.flag(false)
        w.ue(widthMbs - 1)
        w.ue(heightMapUnits - 1)
        w.flag(frameMbsOnly)
        if !frameMbsOnly { w.flag(false) }  // mb_adaptive_frame_field_flag
        w.flag(true)  // direct_8x8_inference_flag
        w.flag(crop != nil)
        if let crop {
            w.ue(crop.left)
            w.ue(crop.right)
            w.ue(crop.top)
            w.ue(crop.bottom)
        }
        w.flag(false)  // vui_parameters_present_flag
        return w.spsNAL()
    }
}

func parse(_ nal: [UInt8]) -> Result<H264.SPS, H264.ParseError> {
    Result { () throws(H264.ParseError) -> H264.SPS in try H264.parseSPS(nal) }
}

@Suite struct H264Tests {
    @Test func x264HighProfileSPS() throws {
        let sps = try H264.parseSPS(X264Fixture.sps)
        #expect(
            sps
                == H264.SPS(
                    profileIDC: 100, constraintFlags: 0, levelIDC: 31, chromaFormatIDC: 1, bitDepthLuma: 8,
                    bitDepthChroma: 8, width: 1280, height: 720))
    }

    @Test(arguments: OtherSPS.all)
    func x264CroppedSPS(_ c: OtherSPS) throws {
        let sps = try H264.parseSPS(hexBytes(c.hex))
        #expect((sps.width, sps.height) == (c.width, c.height))
        #expect((sps.profileIDC, sps.constraintFlags, sps.levelIDC) == (c.profile, c.constraints, c.level))
        #expect(sps.chromaFormatIDC == 1)
    }

    /// Crop units follow Table 6-1: 1x1 for 4:4:4, 2x2 for 4:2:0, doubled vertically for fields.
    @Test func handMadeSPSCroppingAndSkippedFields() throws {
        var f = SPSFields()
        f.profile = 244
        f.chroma = 3
        f.crop = (1, 1, 1, 2)
        var sps = try H264.parseSPS(f.nal())
        #expect((sps.width, sps.height, sps.chromaFormatIDC) == (64 - 2, 48 - 3, 3))

        f = SPSFields()
        f.frameMbsOnly = false
        f.widthMbs = 45
        f.heightMapUnits = 18
        f.crop = (0, 2, 0, 2)
        sps = try H264.parseSPS(f.nal())
        #expect((sps.width, sps.height) == (720 - 4, 576 - 8))

        f = SPSFields()
        f.scalingLists = true
        f.pocType = 1
        f.bitDepthLumaMinus8 = 2
        sps = try H264.parseSPS(f.nal())
        #expect((sps.width, sps.height, sps.bitDepthLuma, sps.bitDepthChroma) == (64, 48, 10, 8))

        f = SPSFields()
        f.profile = 66  // Baseline: no chroma fields, 4:2:0 implied
        f.pocType = 2
        sps = try H264.parseSPS(f.nal())
        #expect((sps.width, sps.height, sps.chromaFormatIDC) == (64, 48, 1))
    }

    /// bit_depth_luma_minus8 is 0...6 (§7.4.2.1.1). A larger value used to be accepted and made
    /// InitSegment trap converting it to the 3-bit avcC field.
    @Test func bitDepthOutOfRangeIsAnError() {
        var f = SPSFields()
        f.bitDepthLumaMinus8 = 300
        #expect(throws: H264.ParseError.self) { try H264.parseSPS(f.nal()) }
        let video = VideoTrack(width: 64, height: 48, timescale: 90_000, sps: f.nal(), pps: X264Fixture.pps)
        #expect(throws: H264.ParseError.self) { try InitSegment.build(video: video, audio: nil) }
        f.bitDepthLumaMinus8 = 6
        #expect((try? H264.parseSPS(f.nal()))?.bitDepthLuma == 14)
    }

    @Test func truncatedSPS() {
        let full = X264Fixture.sps
        // The frame size ends 10 bytes in; any shorter prefix lacks it.
        for n in 0..<10 {
            #expect(throws: H264.ParseError.self, "prefix of \(n) bytes") { try H264.parseSPS(Array(full[..<n])) }
        }
        // Longer prefixes cut only the VUI, which is not read: they parse, and to the same size.
        for n in 10...full.count {
            if case .success(let sps) = parse(Array(full[..<n])) {
                #expect((sps.width, sps.height) == (1280, 720), "prefix of \(n) bytes")
            }
        }
        #expect(parse(Array(full[..<6])) == .failure(H264.ParseError(message: "truncated")))
    }

    @Test func notAnSPS() {
        #expect(parse(X264Fixture.pps) == .failure(H264.ParseError(message: "not a sequence parameter set")))
        #expect(throws: H264.ParseError.self) { try H264.parseSPS([0x67, 0x64]) }
    }

    /// Random bytes behind an SPS header: an error or a picture with a size, never a trap.
    @Test func randomSPSNeverTraps() {
        var rng = SplitMix64(seed: 264)
        var parsed = 0
        for _ in 0..<5000 {
            let n = 4 + Int(rng.next() % 40)
            let nal = [0x67] + (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if case .success(let sps) = parse(nal) {
                parsed += 1
                #expect(sps.width > 0 && sps.height > 0)
                #expect((8...14).contains(sps.bitDepthLuma) && (8...14).contains(sps.bitDepthChroma))
                let video = VideoTrack(width: 16, height: 16, timescale: 90_000, sps: nal, pps: X264Fixture.pps)
                #expect((try? InitSegment.build(video: video, audio: nil)) != nil)
            }
        }
        #expect(parsed > 0)
    }

    @Test func removeEmulationPrevention() {
        #expect(H264.removeEmulationPrevention([0, 0, 3, 1]) == [0, 0, 1])
        #expect(H264.removeEmulationPrevention([0, 0, 3, 0, 0, 3, 2]) == [0, 0, 0, 0, 2])
        #expect(H264.removeEmulationPrevention([0, 0, 3]) == [0, 0])
        #expect(H264.removeEmulationPrevention([1, 0, 3, 0, 3, 3]) == [1, 0, 3, 0, 3, 3])
        #expect(H264.removeEmulationPrevention([0, 0, 3, 3]) == [0, 0, 3])  // only the first 03 is inserted
        #expect(
            H264.removeEmulationPrevention(X264Fixture.sps)
                == hexBytes("6764001facb402802dd0800000008000001e478c1950"))

        var rng = SplitMix64(seed: 3)
        for _ in 0..<500 {
            // Mostly zeros and small values, where emulation prevention happens.
            let rbsp = (0..<Int(rng.next() % 64)).map { _ in UInt8(rng.next() % 5) }
            #expect(H264.removeEmulationPrevention(insertEmulationPrevention(rbsp)) == rbsp)
        }
    }

    @Test func lengthPrefixedNALs() {
        func split(_ b: [UInt8]) -> [Range<Int>]? { b.withUnsafeBytes { H264.lengthPrefixedNALs($0) } }
        #expect(split([0, 0, 0, 2, 0x65, 9, 0, 0, 0, 1, 0x41]) == [4..<6, 10..<11])
        #expect(split([]) == [])
        #expect(split([0, 0, 0, 2, 0x65, 9, 0, 0, 0]) == nil)  // a partial length
        #expect(split([0, 0, 0, 3, 0x65, 9]) == nil)  // a length past the end
        #expect(split([0, 0, 0, 0, 0, 0, 0, 1, 0x41]) == nil)  // an empty NAL unit
        #expect(split([0xff, 0xff, 0xff, 0xff, 1]) == nil)

        let units = accessUnits(X264Fixture.annexB)
        #expect(units.count == 60)
        for (i, unit) in units.enumerated() {
            guard let nals = split(unit.bytes) else {
                Issue.record("access unit \(i) does not split")
                continue
            }
            let types = nals.map { H264.nalType(unit.bytes[$0.lowerBound]) }
            #expect(types.last == (i % 30 == 0 ? 5 : 1), "access unit \(i)")
            #expect(unit.isIDR == (i % 30 == 0))
            if i == 0 { #expect(types == [6, 5]) }  // x264's SEI, then the IDR slice
        }
    }
}
