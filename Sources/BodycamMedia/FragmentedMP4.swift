/// The structure of a fragmented MP4 file as `MP4Reader.scanFragmented` found it.
public struct FragmentedMP4: Sendable, Equatable {
    /// `ftyp`: major brand, minor version and compatible brands.
    public var majorBrand: FourCC
    public var minorVersion: UInt32
    public var compatibleBrands: [FourCC]
    /// `mvhd` timescale.
    public var movieTimescale: UInt32
    /// Bytes before the first `moof`: `ftyp`, `moov` and anything between (the whole valid
    /// prefix when there is no fragment yet).
    public var initSegmentSize: Int
    /// Tracks in `moov` order.
    public var tracks: [MP4Track]
    /// Every complete `moof`+`mdat` pair, in file order.
    public var fragments: [MP4Fragment]
    /// One past the last byte of the last complete fragment (or of the last complete box after
    /// `moov` that may stand between fragments, such as `free` or `mfra`). A file cut here plays
    /// everything that was read.
    public var validEnd: Int
    /// Bytes after `validEnd`: a fragment torn by a power cut (a `moof` cut short, a `moof`
    /// without its complete `mdat`, or a zero-filled tail). Zero for a cleanly closed file.
    public var trailingBytes: Int

    public func track(id: UInt32) -> MP4Track? { tracks.first { $0.trackID == id } }

    /// Samples of track `id` over all fragments.
    public func sampleCount(trackID id: UInt32) -> Int {
        fragments.reduce(0) { $0 + $1.trackFragments.filter { $0.trackID == id }.reduce(0) { $0 + $1.samples.count } }
    }
}

/// One track declared in `moov`.
public struct MP4Track: Sendable, Equatable {
    public var trackID: UInt32
    /// `hdlr` handler type: `vide`, `soun`, …
    public var handler: FourCC
    /// `mdhd` timescale: media ticks per second.
    public var timescale: UInt32
    /// Type of the first sample entry in `stsd`: `avc1`, `Opus`, …
    public var codec: FourCC
    /// Presentation size from `tkhd` (integer part of its 16.16 fields).
    public var displayWidth: Int
    public var displayHeight: Int
    /// Coded size from a visual sample entry; 0 for other tracks.
    public var width: Int
    public var height: Int
    /// Channel count and sample rate (integer part) from an audio sample entry; 0 for other tracks.
    public var channels: Int
    public var sampleRate: Int
    /// The `avcC` box's contents, as stored, and what they say.
    public var avcC: [UInt8]?
    public var avc: MP4AVCConfig?
    /// The `dOps` box's contents.
    public var opus: MP4OpusConfig?
    /// `trex` defaults for samples whose fragment does not say otherwise.
    public var defaults: MP4SampleDefaults
}

/// `trex` (§8.8.3) or `tfhd` default sample values.
public struct MP4SampleDefaults: Sendable, Equatable {
    public var sampleDescriptionIndex: UInt32
    public var duration: UInt32
    public var size: UInt32
    public var flags: UInt32

    public init(sampleDescriptionIndex: UInt32 = 1, duration: UInt32 = 0, size: UInt32 = 0, flags: UInt32 = 0) {
        self.sampleDescriptionIndex = sampleDescriptionIndex
        self.duration = duration
        self.size = size
        self.flags = flags
    }
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
public struct MP4AVCConfig: Sendable, Equatable {
    public var profileIDC: UInt8
    public var constraintFlags: UInt8
    public var levelIDC: UInt8
    /// Bytes in each NAL unit's length prefix in the samples (1, 2 or 4).
    public var nalLengthSize: Int
    public var sps: [[UInt8]]
    public var pps: [[UInt8]]
    /// The High-profile extension, when present.
    public var chromaFormatIDC: Int?
    public var bitDepthLuma: Int?
    public var bitDepthChroma: Int?
}

/// OpusSpecificBox (Encapsulation of Opus in ISO Base Media File Format §4.3.2).
public struct MP4OpusConfig: Sendable, Equatable {
    public var version: UInt8
    public var outputChannelCount: Int
    /// Samples at 48 kHz the decoder discards at the start.
    public var preSkip: Int
    /// The sample rate of the encoder's input (informational).
    public var inputSampleRate: Int
    public var outputGain: Int16
    public var channelMappingFamily: UInt8
    /// Stream count, coupled count and channel mapping, present when the family is not 0.
    public var streamCount: Int?
    public var coupledCount: Int?
    public var channelMapping: [UInt8]
}

/// One complete `moof`+`mdat` pair.
public struct MP4Fragment: Sendable, Equatable {
    /// Offset of the `moof`.
    public var offset: Int
    /// `moof` and `mdat` together.
    public var size: Int
    public var moofSize: Int
    /// File offsets of the `mdat` contents.
    public var mdatPayload: Range<Int>
    /// `mfhd` sequence number.
    public var sequenceNumber: UInt32
    /// One per `traf`, in file order.
    public var trackFragments: [MP4TrackFragment]

    public var end: Int { offset + size }

    /// The first `traf` of track `id`.
    public func track(_ id: UInt32) -> MP4TrackFragment? { trackFragments.first { $0.trackID == id } }
}

/// One `traf`: a run of samples of one track.
public struct MP4TrackFragment: Sendable, Equatable {
    public var trackID: UInt32
    /// `tfdt` base media decode time, in the track's timescale; nil when the `traf` has no `tfdt`.
    public var baseDecodeTime: UInt64?
    /// `tfhd` flags (§8.8.7), e.g. 0x020000 default-base-is-moof.
    public var tfhdFlags: UInt32
    /// Values from `tfhd` (falling back to `trex`) for samples whose `trun` omits them.
    public var defaults: MP4SampleDefaults
    /// Samples of all the `traf`'s `trun` boxes, in decode order.
    public var samples: [MP4Sample]
    /// File offsets from the first sample's first byte to the end of the last byte of any sample.
    public var dataRange: Range<Int>

    public var sampleCount: Int { samples.count }
    /// Sum of the sample durations, in the track's timescale.
    public var duration: UInt64 { samples.reduce(0) { $0 + UInt64($1.duration) } }
    public var syncSampleCount: Int { samples.reduce(0) { $0 + ($1.isSync ? 1 : 0) } }
}

/// One sample (an access unit, an audio packet) of a track fragment.
public struct MP4Sample: Sendable, Equatable {
    /// File offset of its first byte (inside the fragment's `mdat`).
    public var offset: Int
    public var size: Int
    public var duration: UInt32
    /// Sample flags (§8.8.3.1).
    public var flags: UInt32
    /// Presentation minus decode time, in the track's timescale.
    public var compositionOffset: Int64

    public init(offset: Int, size: Int, duration: UInt32, flags: UInt32, compositionOffset: Int64) {
        self.offset = offset
        self.size = size
        self.duration = duration
        self.flags = flags
        self.compositionOffset = compositionOffset
    }

    public var bytes: Range<Int> { offset..<(offset + size) }
    /// `sample_is_non_sync_sample` is clear: a player may start decoding here.
    public var isSync: Bool { flags & 0x0001_0000 == 0 }
}
