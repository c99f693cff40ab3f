/// Reads one complete `moof` (ISO/IEC 14496-12 §8.8) and checks it against the `mdat` after it.
enum FragmentParser {
    // tfhd flags (§8.8.7.1)
    static let baseDataOffsetPresent: UInt32 = 0x00_0001
    static let sampleDescriptionIndexPresent: UInt32 = 0x00_0002
    static let defaultDurationPresent: UInt32 = 0x00_0008
    static let defaultSizePresent: UInt32 = 0x00_0010
    static let defaultFlagsPresent: UInt32 = 0x00_0020
    static let defaultBaseIsMoof: UInt32 = 0x02_0000
    // trun flags (§8.8.8.1)
    static let dataOffsetPresent: UInt32 = 0x00_0001
    static let firstSampleFlagsPresent: UInt32 = 0x00_0004
    static let durationPresent: UInt32 = 0x00_0100
    static let sizePresent: UInt32 = 0x00_0200
    static let flagsPresent: UInt32 = 0x00_0400
    static let compositionOffsetPresent: UInt32 = 0x00_0800

    /// Returns the fragment and the file offset of its `mfhd` sequence number.
    static func parse(
        moof: MP4Box, mdat: MP4Box, tracks: [UInt32: MP4Track], budget: inout SampleBudget,
        in bytes: UnsafeRawBufferPointer
    ) throws(MP4Error) -> (MP4Fragment, Int) {
        let kids = try MP4Reader.children(of: moof, in: bytes)
        var mfhd = FieldReader(bytes, try MovieParser.one(.mfhd, in: kids, of: moof))
        let version = try mfhd.fullBoxHeader().version
        guard version == 0 else { throw mfhd.error(.unsupportedVersion(version), at: mfhd.box.payloadOffset) }
        let sequenceAt = mfhd.position
        let sequence = try mfhd.u32()

        var fragment = MP4Fragment(
            offset: moof.offset, size: moof.size + mdat.size, moofSize: moof.size, mdatPayload: mdat.payload,
            sequenceNumber: sequence, trackFragments: [])
        // Without an explicit base, a traf's data follows the previous traf's (§8.8.7.1).
        var previousDataEnd = moof.offset
        for traf in kids where traf.type == .traf {
            let trackFragment = try parseTrackFragment(
                traf, moof: moof, mdat: mdat, tracks: tracks, implicitBase: previousDataEnd, budget: &budget,
                in: bytes)
            previousDataEnd = trackFragment.dataRange.upperBound
            fragment.trackFragments.append(trackFragment)
        }
        return (fragment, sequenceAt)
    }

    private static func parseTrackFragment(
        _ traf: MP4Box, moof: MP4Box, mdat: MP4Box, tracks: [UInt32: MP4Track], implicitBase: Int,
        budget: inout SampleBudget, in bytes: UnsafeRawBufferPointer
    ) throws(MP4Error) -> MP4TrackFragment {
        let kids = try MP4Reader.children(of: traf, in: bytes)
        var tfhd = FieldReader(bytes, try MovieParser.one(.tfhd, in: kids, of: traf))
        let flags = try tfhd.fullBoxHeader().flags
        let idAt = tfhd.position
        let trackID = try tfhd.u32()
        guard let track = tracks[trackID] else {
            throw tfhd.error(.unknownTrack(trackID), at: idAt)
        }
        var base = implicitBase
        if flags & baseDataOffsetPresent != 0 {
            let at = tfhd.position
            guard let explicit = Int(exactly: try tfhd.u64()), explicit <= bytes.count else {
                throw tfhd.error(.invalidValue("base_data_offset past the end of the file"), at: at)
            }
            base = explicit
        } else if flags & defaultBaseIsMoof != 0 {
            base = moof.offset
        }
        var defaults = track.defaults
        if flags & sampleDescriptionIndexPresent != 0 { defaults.sampleDescriptionIndex = try tfhd.u32() }
        if flags & defaultDurationPresent != 0 { defaults.duration = try tfhd.u32() }
        if flags & defaultSizePresent != 0 { defaults.size = try tfhd.u32() }
        if flags & defaultFlagsPresent != 0 { defaults.flags = try tfhd.u32() }

        var decodeTime: UInt64?
        if let tfdt = try MovieParser.atMostOne(.tfdt, in: kids, of: traf) {
            var r = FieldReader(bytes, tfdt)
            let version = try r.fullBoxHeader().version
            guard version <= 1 else { throw r.error(.unsupportedVersion(version), at: tfdt.payloadOffset) }
            decodeTime = try r.versioned(version)
        }

        var result = MP4TrackFragment(
            trackID: trackID, baseDecodeTime: decodeTime, tfhdFlags: flags, defaults: defaults, samples: [],
            dataRange: base..<base)
        var next = base  // where a trun without data_offset starts
        var low = Int.max
        var high = Int.min
        for trun in kids where trun.type == .trun {
            next = try parseRun(
                trun, base: base, next: next, defaults: defaults, trackID: trackID, mdat: mdat,
                budget: &budget, into: &result.samples, in: bytes)
        }
        for s in result.samples {
            low = min(low, s.offset)
            high = max(high, s.offset + s.size)
        }
        result.dataRange = result.samples.isEmpty ? next..<next : low..<high
        return result
    }

    /// Appends a `trun`'s samples after checking each lies inside `mdat`; returns where its data ends.
    private static func parseRun(
        _ trun: MP4Box, base: Int, next: Int, defaults: MP4SampleDefaults, trackID: UInt32, mdat: MP4Box,
        budget: inout SampleBudget, into samples: inout [MP4Sample], in bytes: UnsafeRawBufferPointer
    ) throws(MP4Error) -> Int {
        var r = FieldReader(bytes, trun)
        let (version, flags) = try r.fullBoxHeader()
        guard version <= 1 else { throw r.error(.unsupportedVersion(version), at: trun.payloadOffset) }
        let countAt = r.position
        let count = Int(try r.u32())
        var position = next
        if flags & dataOffsetPresent != 0 { position = base + Int(try r.i32()) }
        let firstFlags = flags & firstSampleFlagsPresent != 0 ? try r.u32() : nil

        // Check the table fits in the box before reserving room for it.
        let fields = [durationPresent, sizePresent, flagsPresent, compositionOffsetPresent]
        let perSample = 4 * fields.reduce(0) { $0 + (flags & $1 != 0 ? 1 : 0) }
        if perSample > 0, count > r.remaining / perSample {
            throw r.error(.truncated(needed: count &* perSample, available: r.remaining), at: countAt)
        }
        try budget.take(count, at: countAt)
        samples.reserveCapacity(samples.count + count)

        for i in 0..<count {
            let duration = flags & durationPresent != 0 ? try r.u32() : defaults.duration
            let size = Int(flags & sizePresent != 0 ? try r.u32() : defaults.size)
            var sampleFlags = defaults.flags
            if flags & flagsPresent != 0 {
                sampleFlags = try r.u32()
            } else if i == 0, let firstFlags {
                sampleFlags = firstFlags
            }
            var compositionOffset: Int64 = 0
            if flags & compositionOffsetPresent != 0 {
                // Version 0 offsets are unsigned; version 1 allows negative ones (§8.8.8.3).
                let raw = try r.u32()
                compositionOffset = version == 0 ? Int64(raw) : Int64(Int32(bitPattern: raw))
            }
            guard position >= mdat.payloadOffset, position <= mdat.end, size <= mdat.end - position else {
                throw MP4Error(
                    offset: trun.offset, box: .trun,
                    problem: .sampleOutsideMdat(
                        trackID: trackID, sample: samples.count, bytes: position..<(position + size),
                        mdat: mdat.payload))
            }
            samples.append(
                MP4Sample(
                    offset: position, size: size, duration: duration, flags: sampleFlags,
                    compositionOffset: compositionOffset))
            position += size
        }
        return position
    }
}
