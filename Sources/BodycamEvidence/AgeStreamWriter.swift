import Crypto
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Sizes and key schedule of the age payload (the spec's STREAM variant).
public enum AgePayload {
    /// Plaintext bytes per chunk; only the final chunk may be shorter.
    public static let chunkSize = 65_536
    /// Poly1305 tag appended to every chunk.
    public static let tagSize = 16
    /// Bytes of a full chunk on disk.
    public static let sealedChunkSize = chunkSize + tagSize
    /// Random bytes between the header and the first chunk, the salt of the payload key.
    public static let nonceSize = 16

    /// payload key = HKDF-SHA-256(ikm: file key, salt: payload nonce, info: "payload").
    static func key(fileKey: SymmetricKey, nonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: fileKey, salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
    }

    /// The chunk nonce: an 11-byte big-endian counter, then 0x01 for the final chunk, 0x00 otherwise.
    static func nonce(chunk index: Int, last: Bool) -> ChaChaPoly.Nonce {
        precondition(index >= 0, "chunk indices start at 0")
        var bytes = [UInt8](repeating: 0, count: 12)
        // The counter is 88 bits; an Int fills the low 64 of them.
        for i in 0..<8 { bytes[3 + i] = UInt8(truncatingIfNeeded: UInt64(index) >> UInt64(56 - 8 * i)) }
        bytes[11] = last ? 1 : 0
        return try! ChaChaPoly.Nonce(data: bytes)
    }
}

/// Seals a payload chunk by chunk, so a file can be written incrementally and be a complete age file
/// after every step (see `AgeAppendSealer`, which plans those steps).
///
/// On creation it makes a fresh file key, wraps it for the recipients, draws the payload nonce and derives
/// the payload key; the file key is then dropped. `headerBytes` (header and payload nonce) go at offset 0,
/// chunk `i` at `chunkOffset(i)`.
///
/// ## Re-sealing a chunk, and the one rule that keeps it safe
///
/// Chunk nonces are positional (index and final flag), so sealing the same index again with the same
/// flag reuses a ChaCha20-Poly1305 nonce. With the same plaintext that is harmless: the output is
/// identical. With different plaintext it is not: the two Poly1305 tags under one one-time key let whoever
/// holds both versions (old sectors survive on flash) recover that key and forge that chunk, e.g. a
/// final chunk with chosen bit flips that stock `age -d` accepts. So the writer enforces:
///
/// - non-final chunks are sealed once each, in order, with exactly 64 KiB;
/// - a final chunk is sealed only at the next index after the non-final ones, and once sealed there it
///   can be sealed again only with identical plaintext (`AgeError.nonceReuse` otherwise).
///
/// Turning a provisional final chunk into a non-final one is safe (the flag differs, so does the nonce);
/// growing a provisional final chunk in place is not, so it must wait until it fills up.
///
/// Thread-safe: sealing is serialized by an internal lock.
public final class AgeStreamWriter: Sendable {
    /// The header followed by the 16-byte payload nonce: the first bytes of the file.
    public let headerBytes: [UInt8]

    private struct State {
        /// The payload key; nil once erased.
        var payloadKey: AgeKeyStorage?
        /// Non-final chunks sealed so far; they are 0..<committed.
        var committed = 0
        /// SHA-256 of the final chunk sealed at index `committed`, if one was.
        var finalDigest: [UInt8]?
    }

    private let state: Mutex<State>

    /// Starts a payload sealed to `recipients`.
    ///
    /// - Throws: `AgeError.noRecipients`, or `.invalidRecipient` for a low-order key.
    public init(recipients: [AgeRecipient]) throws(AgeError) {
        let fileKey = AgeHeader.generateFileKey()
        let header = try AgeHeader.seal(fileKey: fileKey, to: recipients)
        var generator = SystemRandomNumberGenerator()  // getrandom(2): a CSPRNG, as the spec requires
        let nonce = (0..<AgePayload.nonceSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        headerBytes = header + nonce
        state = Mutex(State(payloadKey: AgeKeyStorage(AgePayload.key(fileKey: fileKey, nonce: nonce))))
        // `fileKey` goes out of scope here; swift-crypto wipes its storage when released.
    }

    /// Starts a payload sealed to one recipient.
    public convenience init(recipient: AgeRecipient) throws(AgeError) {
        try self.init(recipients: [recipient])
    }

    deinit { zeroizeKeys() }

    /// Where chunk `index` starts in the file.
    public func chunkOffset(_ index: Int) -> Int { headerBytes.count + index * AgePayload.sealedChunkSize }

    /// Number of non-final chunks sealed so far (the next non-final or final chunk has this index).
    public var sealedNonFinalChunks: Int { state.withLock { $0.committed } }

    /// Seals chunk `index`: returns its ciphertext and tag (`plaintext.count + 16` bytes) for the caller
    /// to write at `chunkOffset(index)`.
    ///
    /// - Parameters:
    ///   - plaintext: exactly 64 KiB for a non-final chunk; 1...65536 bytes for a final chunk (0 only for
    ///     the single chunk of an empty payload).
    ///   - last: whether this is the final chunk of the stream as it will stand on disk.
    /// - Throws: `.chunkTooLarge`, `.shortNonFinalChunk`, `.emptyFinalChunk`, `.chunkOutOfOrder`,
    ///   `.nonceReuse`, `.keysErased` — all mistakes of the caller; nothing is sealed then.
    public func sealChunk(index: Int, plaintext: UnsafeRawBufferPointer, last: Bool) throws(AgeError) -> [UInt8] {
        guard plaintext.count <= AgePayload.chunkSize else {
            throw .chunkTooLarge(index: index, size: plaintext.count)
        }
        let digest = last ? Array(SHA256.hash(data: plaintext)) : nil
        return try state.withLock { (state) throws(AgeError) -> [UInt8] in
            guard let key = state.payloadKey else { throw .keysErased }
            guard index == state.committed else { throw .chunkOutOfOrder(index: index, expected: state.committed) }
            if last {
                guard !plaintext.isEmpty || index == 0 else { throw .emptyFinalChunk(index: index) }
                if let earlier = state.finalDigest, earlier != digest { throw .nonceReuse(chunk: index) }
                state.finalDigest = digest
            } else {
                guard plaintext.count == AgePayload.chunkSize else {
                    throw .shortNonFinalChunk(index: index, size: plaintext.count)
                }
                state.committed += 1
                // The final-chunk nonce of `index` can never be used again: finals go after `committed`.
                state.finalDigest = nil
            }
            // Sealing with a 32-byte key and a 12-byte nonce cannot fail.
            return try! AgeHeader.chachaSeal(
                plaintext, key: key.symmetricKey, nonce: AgePayload.nonce(chunk: index, last: last))
        }
    }

    /// `sealChunk` for an array.
    public func sealChunk(index: Int, plaintext: [UInt8], last: Bool) throws(AgeError) -> [UInt8] {
        try plaintext.withAgeBytes { (buffer) throws(AgeError) in
            try sealChunk(index: index, plaintext: buffer, last: last)
        }
    }

    /// Erases the payload key; afterwards every `sealChunk` throws `.keysErased`.
    ///
    /// Called by `deinit` too. The key exists only in memory: in one buffer this writer owns, overwritten
    /// here, and for the duration of each `sealChunk` in a swift-crypto `SymmetricKey`, whose storage
    /// swift-crypto zeroes on release. The file key was dropped the same way when the writer was created.
    public func zeroizeKeys() {
        state.withLock { state in
            state.payloadKey?.wipe()
            state.payloadKey = nil
        }
    }
}

/// A 32-byte key in memory this module owns, so it can be overwritten when no longer needed.
final class AgeKeyStorage: @unchecked Sendable {
    // Written only in init and wipe(), both under the owner's lock or before sharing.
    private let bytes: UnsafeMutableRawBufferPointer

    init(_ key: SymmetricKey) {
        bytes = .allocate(byteCount: key.bitCount / 8, alignment: 16)
        key.withUnsafeBytes { bytes.copyMemory(from: $0) }
    }

    /// A swift-crypto key holding a copy; swift-crypto zeroes that copy when it is released.
    var symmetricKey: SymmetricKey { SymmetricKey(data: UnsafeRawBufferPointer(bytes)) }

    /// Overwrites the key with zeros (explicit_bzero: a plain store could be optimized away).
    func wipe() { explicit_bzero(bytes.baseAddress!, bytes.count) }

    deinit {
        wipe()
        bytes.deallocate()
    }
}
