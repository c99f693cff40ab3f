/// Just enough H.264 (ITU-T H.264 §7.3.2.1) to describe a stream in an MP4 sample entry.
public enum H264 {
    /// NAL unit types we care about.
    public enum NALType: UInt8, Sendable {
        case slice = 1
        case idr = 5
        case sei = 6
        case sps = 7
        case pps = 8
        case accessUnitDelimiter = 9
    }

    public static func nalType(_ header: UInt8) -> UInt8 { header & 0x1f }

    /// Errors in a parameter set we were handed.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var message: String
        public var description: String { "H.264 SPS: \(message)" }
    }

    /// The fields of a sequence parameter set an `avcC` box and a track header need.
    public struct SPS: Sendable, Equatable {
        public var profileIDC: UInt8
        public var constraintFlags: UInt8
        public var levelIDC: UInt8
        public var chromaFormatIDC: Int
        public var bitDepthLuma: Int
        public var bitDepthChroma: Int
        public var width: Int
        public var height: Int
    }

    /// Profiles whose SPS carries chroma format and bit depth (and whose avcC has the extension).
    static func hasChromaInfo(_ profile: UInt8) -> Bool {
        [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(profile)
    }

    /// Parses an SPS NAL unit (starting with its one-byte NAL header, no start code or length).
    public static func parseSPS(_ nal: [UInt8]) throws(ParseError) -> SPS {
        guard nal.count >= 4, nalType(nal[0]) == NALType.sps.rawValue else {
            throw ParseError(message: "not a sequence parameter set")
        }
        var r = BitReader(rbsp: removeEmulationPrevention(Array(nal[1...])))
        let profile = UInt8(try r.bits(8))
        let constraints = UInt8(try r.bits(8))
        let level = UInt8(try r.bits(8))
        _ = try r.ue()  // seq_parameter_set_id
        var chroma = 1
        var depthLuma = 8
        var depthChroma = 8
        var separateColourPlanes = false
        if hasChromaInfo(profile) {
            chroma = Int(try r.ue())
            guard chroma <= 3 else { throw ParseError(message: "chroma_format_idc \(chroma)") }
            if chroma == 3 { separateColourPlanes = try r.bits(1) == 1 }
            depthLuma = Int(try r.ue()) + 8
            depthChroma = Int(try r.ue()) + 8
            // 0...6 (§7.4.2.1.1); avcC stores bit_depth_minus8 in 3 bits.
            guard depthLuma <= 14, depthChroma <= 14 else {
                throw ParseError(message: "bit depth \(depthLuma)/\(depthChroma)")
            }
            _ = try r.bits(1)  // qpprime_y_zero_transform_bypass_flag
            if try r.bits(1) == 1 {  // seq_scaling_matrix_present_flag
                for i in 0..<(chroma != 3 ? 8 : 12) {
                    if try r.bits(1) == 1 { try skipScalingList(&r, size: i < 6 ? 16 : 64) }
                }
            }
        }
        _ = try r.ue()  // log2_max_frame_num_minus4
        let pocType = try r.ue()
        if pocType == 0 {
            _ = try r.ue()
        } else if pocType == 1 {
            _ = try r.bits(1)
            _ = try r.se()
            _ = try r.se()
            let n = try r.ue()
            guard n <= 255 else { throw ParseError(message: "too many reference frames in POC cycle") }
            for _ in 0..<n { _ = try r.se() }
        }
        _ = try r.ue()  // max_num_ref_frames
        _ = try r.bits(1)  // gaps_in_frame_num_value_allowed_flag
        let widthMbs = Int(try r.ue()) + 1
        let heightMapUnits = Int(try r.ue()) + 1
        let frameMbsOnly = try r.bits(1) == 1
        if !frameMbsOnly { _ = try r.bits(1) }
        _ = try r.bits(1)  // direct_8x8_inference_flag
        var width = widthMbs * 16
        var height = heightMapUnits * 16 * (frameMbsOnly ? 1 : 2)
        if try r.bits(1) == 1 {  // frame_cropping_flag
            let l = Int(try r.ue()), rt = Int(try r.ue()), t = Int(try r.ue()), b = Int(try r.ue())
            let arrayType = separateColourPlanes ? 0 : chroma
            let cropX = arrayType == 0 ? 1 : (arrayType == 3 ? 1 : 2)
            let cropY = (arrayType == 1 ? 2 : 1) * (frameMbsOnly ? 1 : 2)
            width -= (l + rt) * cropX
            height -= (t + b) * cropY
        }
        guard width > 0, height > 0 else { throw ParseError(message: "cropping leaves no picture") }
        return SPS(
            profileIDC: profile, constraintFlags: constraints, levelIDC: level, chromaFormatIDC: chroma,
            bitDepthLuma: depthLuma, bitDepthChroma: depthChroma, width: width, height: height)
    }

    private static func skipScalingList(_ r: inout BitReader, size: Int) throws(ParseError) {
        var last = 8
        var next = 8
        for _ in 0..<size where next != 0 {
            let delta = try r.se()
            next = (last + Int(delta) + 256) % 256
            if next != 0 { last = next }
        }
    }

    /// Strips emulation-prevention bytes (00 00 03 → 00 00).
    public static func removeEmulationPrevention(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var zeros = 0
        for b in bytes {
            if zeros >= 2 && b == 3 {
                zeros = 0
                continue
            }
            zeros = b == 0 ? zeros + 1 : 0
            out.append(b)
        }
        return out
    }

    /// Splits a length-prefixed (4-byte big-endian sizes, as in MP4) access unit into NAL units.
    public static func lengthPrefixedNALs(_ data: UnsafeRawBufferPointer) -> [Range<Int>]? {
        var out: [Range<Int>] = []
        var i = 0
        while i < data.count {
            guard data.count - i >= 4 else { return nil }
            let n = Int(data[i]) << 24 | Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3])
            i += 4
            guard n > 0, n <= data.count - i else { return nil }
            out.append(i..<(i + n))
            i += n
        }
        return out
    }

    struct BitReader {
        let data: [UInt8]
        var bit = 0

        init(rbsp: [UInt8]) { data = rbsp }

        mutating func bits(_ n: Int) throws(ParseError) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<n {
                guard bit < data.count * 8 else { throw ParseError(message: "truncated") }
                v = v << 1 | UInt32((data[bit >> 3] >> (7 - UInt8(bit & 7))) & 1)
                bit += 1
            }
            return v
        }

        mutating func ue() throws(ParseError) -> UInt32 {
            var zeros = 0
            while try bits(1) == 0 {
                zeros += 1
                guard zeros < 32 else { throw ParseError(message: "bad Exp-Golomb code") }
            }
            return (UInt32(1) << UInt32(zeros)) - 1 + (try bits(zeros))
        }

        mutating func se() throws(ParseError) -> Int32 {
            let k = try ue()
            return k & 1 == 1 ? Int32(k / 2 + 1) : -Int32(k / 2)
        }
    }
}
