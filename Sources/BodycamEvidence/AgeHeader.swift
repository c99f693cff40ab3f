public import Crypto

/// The age v1 header: the version line, one X25519 recipient stanza per recipient, and the MAC line.
///
/// ```
/// age-encryption.org/v1
/// -> X25519 <base64 ephemeral share>
/// <base64 wrapped file key>
/// --- <base64 HMAC>
/// ```
public enum AgeHeader {
    /// The file key is 16 bytes of CSPRNG output, new for every file.
    public static let fileKeySize = 16

    static let versionLine = Array("age-encryption.org/v1\n".utf8)
    static let versionPrefix = Array("age-encryption.org/".utf8)
    static let x25519Label = Array("age-encryption.org/v1/X25519".utf8)
    /// Stanza bodies are wrapped at 64 base64 columns, i.e. 48 bytes per full line.
    static let columns = 64
    /// Headers larger than this are refused rather than read without bound (about 10,000 stanzas).
    public static let sizeLimit = 1 << 20

    /// A new random file key.
    public static func generateFileKey() -> SymmetricKey {
        SymmetricKey(size: SymmetricKeySize(bitCount: fileKeySize * 8))
    }

    /// The header text, through the `--- <mac>\n` line, that wraps `fileKey` for every recipient.
    ///
    /// Each stanza uses its own ephemeral X25519 key, as the spec requires.
    /// - Throws: `AgeError.noRecipients`; `.invalidRecipient` for a low-order public key (whose shared
    ///   secret would be all zeros: such a file could be opened by anyone).
    public static func seal(fileKey: SymmetricKey, to recipients: [AgeRecipient]) throws(AgeError) -> [UInt8] {
        precondition(fileKey.bitCount == fileKeySize * 8, "age file keys are 16 bytes")
        guard !recipients.isEmpty else { throw .noRecipients }
        var header = versionLine
        for recipient in recipients {
            let ephemeral = Curve25519.KeyAgreement.PrivateKey()
            let share = Array(ephemeral.publicKey.rawRepresentation)
            guard let shared = try? ephemeral.sharedSecretFromKeyAgreement(with: recipient.publicKey),
                let wrapKey = wrappingKey(shared, share: share, recipient: recipient.rawKey)
            else { throw .invalidRecipient("\(recipient.string) is a low-order point") }
            // Sealing 16 bytes with a valid key and nonce cannot fail.
            let body = fileKey.withUnsafeBytes { try! chachaSeal($0, key: wrapKey, nonce: zeroNonce) }
            header += Array("-> X25519 ".utf8) + AgeBase64.encode(share) + [0x0A]
            header += wrappedBody(body)
        }
        header += Array("---".utf8)
        let mac = headerMAC(fileKey: fileKey, header: header)
        header += [0x20] + AgeBase64.encode(mac) + [0x0A]
        return header
    }

    /// Parses the header at the start of `bytes` (which may hold the payload too) and unwraps the file key
    /// with the first identity that matches a stanza, then checks the header MAC.
    ///
    /// Stanzas of other types are skipped, as the spec says; a malformed X25519 stanza is an error.
    /// - Returns: the file key and the header's length in bytes (the payload nonce starts there).
    public static func open(
        _ bytes: UnsafeRawBufferPointer, identities: [AgeIdentity]
    ) throws(AgeError) -> (fileKey: SymmetricKey, headerLength: Int) {
        guard let header = try parse(bytes) else { throw incomplete(available: bytes.count) }
        return (try header.unwrap(identities: identities, bytes: bytes), header.length)
    }

    /// `open` for an array.
    public static func open(
        _ bytes: [UInt8], identities: [AgeIdentity]
    ) throws(AgeError) -> (fileKey: SymmetricKey, headerLength: Int) {
        try bytes.withAgeBytes { (buffer) throws(AgeError) in try open(buffer, identities: identities) }
    }

    /// The error for bytes that end before the header's MAC line.
    static func incomplete(available: Int) -> AgeError {
        available < versionLine.count ? .notAnAgeFile : .malformedHeader("the file ends inside the header")
    }

    // MARK: - Crypto helpers

    /// The fixed all-zero nonce of stanza bodies: each wrap key is used once.
    static var zeroNonce: ChaChaPoly.Nonce { try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)) }

    /// HKDF-SHA-256(ikm: shared secret, salt: share ‖ recipient, info: the X25519 label); nil when the
    /// shared secret is all zeros (a low-order point), which swift-crypto allows and the spec forbids.
    static func wrappingKey(_ shared: SharedSecret, share: [UInt8], recipient: [UInt8]) -> SymmetricKey? {
        let isZero = shared.withUnsafeBytes { $0.reduce(UInt8(0)) { $0 | $1 } } == 0
        if isZero { return nil }
        return shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: share + recipient, sharedInfo: x25519Label, outputByteCount: 32)
    }

    /// ChaCha20-Poly1305 ciphertext ‖ tag.
    static func chachaSeal(
        _ plaintext: UnsafeRawBufferPointer, key: SymmetricKey, nonce: ChaChaPoly.Nonce
    ) throws -> [UInt8] {
        let box = try ChaChaPoly.seal(plaintext, using: key, nonce: nonce)
        var out = [UInt8]()
        out.reserveCapacity(plaintext.count + 16)
        out += box.ciphertext
        out += box.tag
        return out
    }

    /// Opens ciphertext ‖ tag; nil if it does not authenticate.
    static func chachaOpen(
        _ sealed: UnsafeRawBufferPointer, key: SymmetricKey, nonce: ChaChaPoly.Nonce
    ) -> [UInt8]? {
        guard sealed.count >= 16,
            let box = try? ChaChaPoly.SealedBox(
                nonce: nonce, ciphertext: sealed[..<(sealed.count - 16)], tag: sealed[(sealed.count - 16)...]),
            let plaintext = try? ChaChaPoly.open(box, using: key)
        else { return nil }
        return Array(plaintext)
    }

    /// HMAC-SHA-256 keyed with HKDF(ikm: file key, salt: empty, info: "header").
    static func headerMAC(fileKey: SymmetricKey, header: some Collection<UInt8>) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: fileKey, salt: [UInt8](), info: Array("header".utf8), outputByteCount: 32)
        return Array(HMAC<SHA256>.authenticationCode(for: Array(header), using: key))
    }

    /// Base64 lines of 64 columns; the last line is always shorter, so it is empty when the encoding
    /// fills whole lines (that is how a reader knows the body ended).
    static func wrappedBody(_ body: [UInt8]) -> [UInt8] {
        let text = AgeBase64.encode(body)
        var out: [UInt8] = []
        var start = 0
        while text.count - start >= columns {
            out += text[start..<(start + columns)] + [0x0A]
            start += columns
        }
        out += text[start...] + [0x0A]
        return out
    }
}
