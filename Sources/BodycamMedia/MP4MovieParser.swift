/// Reads the init segment of a fragmented MP4: `ftyp`, then `moov` with its tracks and `mvex`.
enum MovieParser {
    struct Scan {
        /// Brands, timescale and tracks filled in; fragments not yet.
        var file: FragmentedMP4
        var moovEnd: Int
    }

    static func parseInitSegment(_ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> Scan {
        let ftyp = try completeBox(bytes, at: 0)
        guard ftyp.type == .ftyp else { throw MP4Error(offset: 0, box: ftyp.type, problem: .unexpected(ftyp.type)) }
        var r = FieldReader(bytes, ftyp)
        let major = try r.fourCC()
        let minor = try r.u32()
        var brands: [FourCC] = []
        while r.remaining >= 4 { brands.append(try r.fourCC()) }

        // Boxes such as `free`, `pdin` or `uuid` may stand between `ftyp` and `moov`.
        var at = ftyp.end
        while true {
            guard at < bytes.count else { throw MP4Error(offset: at, box: nil, problem: .missing(.moov)) }
            let box = try completeBox(bytes, at: at)
            switch box.type {
            case .moov:
                let (timescale, tracks) = try parseMovie(box, bytes)
                let file = FragmentedMP4(
                    majorBrand: major, minorVersion: minor, compatibleBrands: brands, movieTimescale: timescale,
                    initSegmentSize: box.end, tracks: tracks, fragments: [], validEnd: box.end, trailingBytes: 0)
                return Scan(file: file, moovEnd: box.end)
            case .ftyp:
                throw MP4Error(offset: box.offset, box: box.type, problem: .duplicate(.ftyp))
            case .moof, .mdat:
                throw MP4Error(offset: box.offset, box: box.type, problem: .missing(.moov))
            default:
                at = box.end
            }
        }
    }

    /// A top-level box of the init segment, which must be whole: an init segment cut short has
    /// no playable part, so here truncation is an error.
    private static func completeBox(_ bytes: UnsafeRawBufferPointer, at: Int) throws(MP4Error) -> MP4Box {
        switch BoxHeader.read(bytes, at: at, end: bytes.count) {
        case .box(let box):
            return box
        case .truncated(let needed, let available):
            throw MP4Error(
                offset: at, box: nil, problem: .truncated(needed: Int(clamping: needed), available: available))
        case .invalid(let error):
            throw error
        }
    }

    private static func parseMovie(_ moov: MP4Box, _ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> (
        UInt32, [MP4Track]
    ) {
        let kids = try MP4Reader.children(of: moov, in: bytes)
        var mvhd = FieldReader(bytes, try one(.mvhd, in: kids, of: moov))
        let version = try mvhd.fullBoxHeader().version
        guard version <= 1 else { throw mvhd.error(.unsupportedVersion(version), at: mvhd.box.payloadOffset) }
        _ = try mvhd.versioned(version)  // creation_time
        _ = try mvhd.versioned(version)  // modification_time
        let timescale = try mvhd.u32()

        // A fragmented file says so with `mvex`, which holds each track's sample defaults.
        let mvex = try one(.mvex, in: kids, of: moov)
        var defaults: [UInt32: MP4SampleDefaults] = [:]
        for trex in try MP4Reader.children(of: mvex, in: bytes) where trex.type == .trex {
            var r = FieldReader(bytes, trex)
            _ = try r.fullBoxHeader()
            let id = try r.u32()
            guard defaults[id] == nil else { throw r.error(.duplicateTrack(id), at: trex.offset) }
            defaults[id] = MP4SampleDefaults(
                sampleDescriptionIndex: try r.u32(), duration: try r.u32(), size: try r.u32(), flags: try r.u32())
        }

        var tracks: [MP4Track] = []
        var ids: Set<UInt32> = []
        for trak in kids where trak.type == .trak {
            var track = try parseTrack(trak, bytes)
            guard ids.insert(track.trackID).inserted else {
                throw MP4Error(offset: trak.offset, box: .trak, problem: .duplicateTrack(track.trackID))
            }
            guard let d = defaults[track.trackID] else {
                throw MP4Error(offset: mvex.offset, box: .mvex, problem: .missing(.trex))
            }
            track.defaults = d
            tracks.append(track)
        }
        guard !tracks.isEmpty else { throw MP4Error(offset: moov.offset, box: .moov, problem: .missing(.trak)) }
        return (timescale, tracks)
    }

    private static func parseTrack(_ trak: MP4Box, _ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> MP4Track {
        let kids = try MP4Reader.children(of: trak, in: bytes)
        var tkhd = FieldReader(bytes, try one(.tkhd, in: kids, of: trak))
        let tkhdVersion = try tkhd.fullBoxHeader().version
        guard tkhdVersion <= 1 else { throw tkhd.error(.unsupportedVersion(tkhdVersion), at: tkhd.box.payloadOffset) }
        _ = try tkhd.versioned(tkhdVersion)  // creation_time
        _ = try tkhd.versioned(tkhdVersion)  // modification_time
        let idAt = tkhd.position
        let trackID = try tkhd.u32()
        guard trackID != 0 else { throw tkhd.error(.invalidValue("track_ID 0"), at: idAt) }
        try tkhd.skip(4)  // reserved
        _ = try tkhd.versioned(tkhdVersion)  // duration
        try tkhd.skip(8 + 2 + 2 + 2 + 2 + 36)  // reserved, layer, alternate_group, volume, reserved, matrix
        let displayWidth = Int(try tkhd.u32() >> 16)
        let displayHeight = Int(try tkhd.u32() >> 16)

        let mdia = try one(.mdia, in: kids, of: trak)
        let mdiaKids = try MP4Reader.children(of: mdia, in: bytes)
        var mdhd = FieldReader(bytes, try one(.mdhd, in: mdiaKids, of: mdia))
        let mdhdVersion = try mdhd.fullBoxHeader().version
        guard mdhdVersion <= 1 else { throw mdhd.error(.unsupportedVersion(mdhdVersion), at: mdhd.box.payloadOffset) }
        _ = try mdhd.versioned(mdhdVersion)
        _ = try mdhd.versioned(mdhdVersion)
        let timescaleAt = mdhd.position
        let timescale = try mdhd.u32()
        guard timescale > 0 else { throw mdhd.error(.invalidValue("timescale 0"), at: timescaleAt) }
        var hdlr = FieldReader(bytes, try one(.hdlr, in: mdiaKids, of: mdia))
        _ = try hdlr.fullBoxHeader()
        _ = try hdlr.u32()  // pre_defined
        let handler = try hdlr.fourCC()

        let minf = try one(.minf, in: mdiaKids, of: mdia)
        let stbl = try one(.stbl, in: try MP4Reader.children(of: minf, in: bytes), of: minf)
        let stsd = try one(.stsd, in: try MP4Reader.children(of: stbl, in: bytes), of: stbl)
        var stsdFields = FieldReader(bytes, stsd)
        _ = try stsdFields.fullBoxHeader()
        let entryCount = try stsdFields.u32()
        guard entryCount >= 1, let entry = try MP4Reader.children(of: stsd, in: bytes).first else {
            throw MP4Error(offset: stsd.offset, box: .stsd, problem: .invalidValue("no sample entry"))
        }

        var track = MP4Track(
            trackID: trackID, handler: handler, timescale: timescale, codec: entry.type,
            displayWidth: displayWidth, displayHeight: displayHeight, width: 0, height: 0, channels: 0,
            sampleRate: 0, avcC: nil, avc: nil, opus: nil, defaults: MP4SampleDefaults())
        var fields = FieldReader(bytes, entry)
        if handler == .vide {
            try fields.skip(6 + 2 + 16)  // reserved, data_reference_index, pre_defined and reserved
            track.width = Int(try fields.u16())
            track.height = Int(try fields.u16())
        } else if handler == .soun {
            try fields.skip(6 + 2 + 8)  // reserved, data_reference_index, reserved
            track.channels = Int(try fields.u16())
            _ = try fields.u16()  // samplesize
            try fields.skip(4)  // pre_defined, reserved
            track.sampleRate = Int(try fields.u32() >> 16)
        }
        let entryKids = MP4Reader.containers.contains(entry.type) ? try MP4Reader.children(of: entry, in: bytes) : []
        switch entry.type.description {
        case "avc1", "avc3":
            let box = try one(.avcC, in: entryKids, of: entry)
            track.avcC = Array(bytes[box.payload])
            track.avc = try parseAVCConfig(box, bytes)
        case "Opus":
            track.opus = try parseOpusConfig(try one(.dOps, in: entryKids, of: entry), bytes)
        default:
            break  // another codec: its configuration is not ours to read
        }
        return track
    }

    /// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
    static func parseAVCConfig(_ box: MP4Box, _ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> MP4AVCConfig {
        var r = FieldReader(bytes, box)
        let version = try r.u8()
        guard version == 1 else { throw r.error(.unsupportedVersion(version), at: box.payloadOffset) }
        let profile = try r.u8()
        let constraints = try r.u8()
        let level = try r.u8()
        let lengthSize = Int(try r.u8() & 3) + 1
        guard lengthSize != 3 else { throw r.error(.invalidValue("NAL length size 3"), at: r.position - 1) }
        var sps: [[UInt8]] = []
        for _ in 0..<(try r.u8() & 0x1f) { sps.append(try r.data(Int(try r.u16()))) }
        var pps: [[UInt8]] = []
        for _ in 0..<(try r.u8()) { pps.append(try r.data(Int(try r.u16()))) }
        var config = MP4AVCConfig(
            profileIDC: profile, constraintFlags: constraints, levelIDC: level, nalLengthSize: lengthSize,
            sps: sps, pps: pps, chromaFormatIDC: nil, bitDepthLuma: nil, bitDepthChroma: nil)
        // Older writers omit the High-profile extension; it is optional for readers.
        if H264.hasChromaInfo(profile), r.remaining >= 4 {
            config.chromaFormatIDC = Int(try r.u8() & 3)
            config.bitDepthLuma = Int(try r.u8() & 7) + 8
            config.bitDepthChroma = Int(try r.u8() & 7) + 8
        }
        return config
    }

    /// OpusSpecificBox (Encapsulation of Opus in ISO Base Media File Format §4.3.2).
    static func parseOpusConfig(_ box: MP4Box, _ bytes: UnsafeRawBufferPointer) throws(MP4Error) -> MP4OpusConfig {
        var r = FieldReader(bytes, box)
        let version = try r.u8()
        guard version == 0 else { throw r.error(.unsupportedVersion(version), at: box.payloadOffset) }
        var config = MP4OpusConfig(
            version: version, outputChannelCount: Int(try r.u8()), preSkip: Int(try r.u16()),
            inputSampleRate: Int(try r.u32()), outputGain: try r.i16(), channelMappingFamily: try r.u8(),
            streamCount: nil, coupledCount: nil, channelMapping: [])
        if config.channelMappingFamily != 0 {
            config.streamCount = Int(try r.u8())
            config.coupledCount = Int(try r.u8())
            config.channelMapping = try r.data(config.outputChannelCount)
        }
        return config
    }

    /// The single box of `type` among `boxes`, the children of `parent`.
    static func one(_ type: FourCC, in boxes: [MP4Box], of parent: MP4Box) throws(MP4Error) -> MP4Box {
        guard let box = try atMostOne(type, in: boxes, of: parent) else {
            throw MP4Error(offset: parent.offset, box: parent.type, problem: .missing(type))
        }
        return box
    }

    static func atMostOne(_ type: FourCC, in boxes: [MP4Box], of parent: MP4Box) throws(MP4Error) -> MP4Box? {
        var found: MP4Box?
        for box in boxes where box.type == type {
            guard found == nil else { throw MP4Error(offset: box.offset, box: type, problem: .duplicate(type)) }
            found = box
        }
        return found
    }
}
