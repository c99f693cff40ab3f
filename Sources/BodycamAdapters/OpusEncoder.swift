public import BodycamCore
internal import CBodycamShim
internal import COpus

/// Errors from libopus, with its own message.
public struct OpusError: Error, CustomStringConvertible, Equatable, Sendable {
    public var op: String
    public var code: Int32
    public var description: String { "\(op): \(String(cString: opus_strerror(code)))" }
}

/// Opus through libopus: 20 ms packets at 48 kHz, as the MP4 Opus mapping expects.
public final class OpusAudioEncoder: AudioEncoder {
    private let encoder: OpaquePointer
    public let sampleRate: Int
    public let channels: Int
    public let frameSize: Int
    public let preSkip: Int
    private let packet: UnsafeMutableRawPointer
    /// RFC 6716 caps a packet at 1275 bytes per frame; 4000 is libopus's recommended buffer.
    private static let maxPacket = 4000

    public init(sampleRate: Int, channels: Int, bitrate: Int, voice: Bool, complexity: Int = 9) throws(OpusError) {
        var err: Int32 = 0
        guard
            let enc = opus_encoder_create(
                Int32(sampleRate), Int32(channels), voice ? OPUS_APPLICATION_VOIP : OPUS_APPLICATION_AUDIO, &err),
            err == OPUS_OK
        else { throw OpusError(op: "opus_encoder_create", code: err) }
        encoder = enc
        self.sampleRate = sampleRate
        self.channels = channels
        frameSize = sampleRate / 50
        var r = bodycam_opus_set_bitrate(enc, Int32(bitrate))
        guard r == OPUS_OK else {
            opus_encoder_destroy(enc)
            throw OpusError(op: "OPUS_SET_BITRATE(\(bitrate))", code: r)
        }
        if voice { _ = bodycam_opus_set_signal_voice(enc) }
        r = bodycam_opus_set_complexity(enc, Int32(complexity))
        guard r == OPUS_OK else {
            opus_encoder_destroy(enc)
            throw OpusError(op: "OPUS_SET_COMPLEXITY(\(complexity))", code: r)
        }
        var lookahead: Int32 = 0
        r = bodycam_opus_get_lookahead(enc, &lookahead)
        // Pre-skip is counted at 48 kHz in the Opus mapping whatever the input rate.
        preSkip = r == OPUS_OK ? Int(lookahead) * 48_000 / sampleRate : 312
        packet = .allocate(byteCount: Self.maxPacket, alignment: 16)
    }

    deinit {
        opus_encoder_destroy(encoder)
        packet.deallocate()
    }

    public func encode(_ pcm: UnsafeBufferPointer<Int16>) throws -> UnsafeRawBufferPointer {
        precondition(pcm.count >= frameSize * channels, "an Opus packet needs a whole frame of samples")
        let n = opus_encode(
            encoder, pcm.baseAddress!, Int32(frameSize), packet.assumingMemoryBound(to: UInt8.self),
            Int32(Self.maxPacket))
        guard n > 0 else { throw OpusError(op: "opus_encode", code: n) }
        return UnsafeRawBufferPointer(start: packet, count: Int(n))
    }
}
