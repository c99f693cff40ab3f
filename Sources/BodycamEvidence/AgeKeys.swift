public import Crypto

/// An X25519 age recipient: the public key a clip is sealed to, written `age1…`.
///
/// The device holds only this; the matching `AgeIdentity` stays with the agency.
// swift-crypto 3 does not mark its key types Sendable. They are immutable values whose storage is never
// mutated after creation, so sharing them across threads is safe.
public struct AgeRecipient: @unchecked Sendable, Hashable, CustomStringConvertible {
    /// Bech32 human-readable part of X25519 recipients. Lowercase: age rejects `AGE1…` recipients.
    static let hrp = "age"

    /// The recipient's X25519 public key.
    public let publicKey: Curve25519.KeyAgreement.PublicKey

    /// Wraps a public key.
    public init(publicKey: Curve25519.KeyAgreement.PublicKey) {
        self.publicKey = publicKey
    }

    /// Parses an `age1…` recipient as `age-keygen -y` prints it.
    ///
    /// - Throws: `AgeError.invalidRecipient` for a bad checksum, another type (`age1pq1…`, an
    ///   identity, uppercase), or a key that is not 32 bytes.
    public init(parsing string: String) throws(AgeError) {
        let decoded: (hrp: String, data: [UInt8])
        do {
            decoded = try Bech32.decode(string)
        } catch {
            throw .invalidRecipient("\"\(string)\" \(error)")
        }
        guard decoded.hrp == Self.hrp else {
            throw .invalidRecipient("\"\(string)\" is of type \"\(decoded.hrp)\", not an X25519 recipient (\"age\")")
        }
        guard decoded.data.count == 32,
            let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: decoded.data)
        else {
            throw .invalidRecipient("\"\(string)\" holds \(decoded.data.count) bytes, not a 32-byte X25519 key")
        }
        self.publicKey = key
    }

    /// The raw 32 bytes of the public key.
    var rawKey: [UInt8] { Array(publicKey.rawRepresentation) }

    /// The `age1…` form.
    public var string: String { Bech32.encode(hrp: Self.hrp, data: rawKey) }

    public var description: String { string }

    public static func == (a: AgeRecipient, b: AgeRecipient) -> Bool { a.rawKey == b.rawKey }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawKey) }
}

/// An X25519 age identity: the secret key that opens files sealed to its recipient, written
/// `AGE-SECRET-KEY-1…`.
///
/// The device never holds the agency's identity; this type exists for `bodycam keygen --agency`,
/// `bodycam export` and tests. Its `description` shows only the recipient, so logging an identity
/// by mistake does not leak it.
public struct AgeIdentity: @unchecked Sendable, CustomStringConvertible {  // see AgeRecipient
    /// Bech32 human-readable part of X25519 identities; uppercase, as age writes and requires it.
    static let hrp = "AGE-SECRET-KEY-"

    /// The X25519 private key.
    public let privateKey: Curve25519.KeyAgreement.PrivateKey

    /// Wraps a private key.
    public init(privateKey: Curve25519.KeyAgreement.PrivateKey) {
        self.privateKey = privateKey
    }

    /// A new identity from the system's secure random generator.
    public static func generate() -> AgeIdentity {
        AgeIdentity(privateKey: Curve25519.KeyAgreement.PrivateKey())
    }

    /// Parses one `AGE-SECRET-KEY-1…` line as `age-keygen` writes it.
    ///
    /// - Throws: `AgeError.invalidIdentity`; the message never repeats the key text.
    public init(parsing string: String) throws(AgeError) {
        let decoded: (hrp: String, data: [UInt8])
        do {
            decoded = try Bech32.decode(string)
        } catch {
            throw .invalidIdentity("the secret key \(error)")
        }
        guard decoded.hrp == Self.hrp else {
            if decoded.hrp == "AGE-SECRET-KEY-PQ-" {
                throw .invalidIdentity("post-quantum (AGE-SECRET-KEY-PQ-) identities are not supported")
            }
            throw .invalidIdentity("type \"\(decoded.hrp)\" is not an X25519 identity (\"AGE-SECRET-KEY-\")")
        }
        guard decoded.data.count == 32,
            let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: decoded.data)
        else {
            throw .invalidIdentity("the secret key holds \(decoded.data.count) bytes, not 32")
        }
        self.privateKey = key
    }

    /// The recipient that files for this identity are sealed to.
    public var recipient: AgeRecipient { AgeRecipient(publicKey: privateKey.publicKey) }

    /// The `AGE-SECRET-KEY-1…` form. This is the secret: write it only to a 0600 file.
    public var string: String { Bech32.encode(hrp: Self.hrp, data: Array(privateKey.rawRepresentation)) }

    public var description: String { "AgeIdentity(\(recipient.string))" }
}
