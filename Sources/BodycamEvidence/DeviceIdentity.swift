public import Crypto
public import Foundation

/// The device's signing identity: an Ed25519 key that signs every journal entry, manifest and
/// audit-log line. Created once per device (`bodycam keygen --device DIR`, or by `run` on first
/// start in `DATA/keys/`); the private key file is mode 0600 and never leaves the device.
///
/// Files: `device.key` (the private key) and `device.pub` (`ed25519:<base64>`, what the agency
/// registers for the device).
public struct DeviceIdentity: @unchecked Sendable {  // swift-crypto's key types are not Sendable; never mutated
    public let privateKey: Curve25519.Signing.PrivateKey

    public static let keyPrefix = "BODYCAM-DEVICE-SECRET-KEY-1:"

    public init(privateKey: Curve25519.Signing.PrivateKey) { self.privateKey = privateKey }

    public static func generate() -> DeviceIdentity { DeviceIdentity(privateKey: Curve25519.Signing.PrivateKey()) }

    public var publicKey: DevicePublicKey { DevicePublicKey(key: privateKey.publicKey) }

    /// Signs `data`: base64 Ed25519 signature.
    public func sign(_ data: some DataProtocol) -> String {
        let sig = (try? privateKey.signature(for: Data(data))) ?? Data()
        return sig.base64EncodedString()
    }

    public enum LoadError: Error, CustomStringConvertible, Equatable, Sendable {
        case unreadable(String)
        case malformed(String)
        case tooOpen(String, mode: Int)

        public var description: String {
            switch self {
            case .unreadable(let p): return "\(p): cannot read the device key"
            case .malformed(let p): return "\(p): not a bodycam device key (expected a line \(DeviceIdentity.keyPrefix)<base64>)"
            case .tooOpen(let p, let m):
                return "\(p): mode \(String(m, radix: 8)) lets others read the device key; chmod 600 it"
            }
        }
    }

    /// The private key file's text.
    public var fileContents: String {
        """
        # bodycam device signing key (Ed25519). Readable by the bodycam user only; never copy it off the device.
        # public key: \(publicKey.string)
        \(Self.keyPrefix)\(privateKey.rawRepresentation.base64EncodedString())

        """
    }

    public init(fileContents text: String, path: String) throws(LoadError) {
        for line in text.split(separator: "\n") where line.hasPrefix(Self.keyPrefix) {
            guard let raw = Data(base64Encoded: String(line.dropFirst(Self.keyPrefix.count)).trimmingCharacters(in: .whitespaces)),
                let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
            else { throw .malformed(path) }
            privateKey = key
            return
        }
        throw .malformed(path)
    }

    /// Loads `DIR/device.key`, refusing a file others can read.
    public static func load(directory: String) throws(LoadError) -> DeviceIdentity {
        let path = directory + "/device.key"
        var st = stat()
        guard stat(path, &st) == 0, let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path)
        }
        let mode = Int(st.st_mode) & 0o777
        guard mode & 0o077 == 0 else { throw .tooOpen(path, mode: mode) }
        return try DeviceIdentity(fileContents: String(decoding: data, as: UTF8.self), path: path)
    }

    public static func exists(in directory: String) -> Bool { FileManager.default.fileExists(atPath: directory + "/device.key") }

    /// Writes `device.key` (0600, created exclusively: an existing identity is never replaced)
    /// and `device.pub` into `directory`.
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let keyPath = directory + "/device.key"
        let fd = open(keyPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: keyPath])
        }
        let bytes = Array(fileContents.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: keyPath]) }
        try PublicFile.write(publicKey.string + "\n", to: directory + "/device.pub")
    }
}

/// A device's public key as written in manifests and `device.pub`: `ed25519:<base64>`.
public struct DevicePublicKey: @unchecked Sendable, Equatable {  // see DeviceIdentity
    public let key: Curve25519.Signing.PublicKey

    public init(key: Curve25519.Signing.PublicKey) { self.key = key }

    public init?(string: String) {
        let text = string.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("ed25519:"), let raw = Data(base64Encoded: String(text.dropFirst(8))),
            let k = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { return nil }
        key = k
    }

    public var string: String { "ed25519:" + key.rawRepresentation.base64EncodedString() }

    /// Short fingerprint for messages: the first 16 hex digits of SHA-256 of the key.
    public var fingerprint: String { String(Hex.string(SHA256.hash(data: key.rawRepresentation)).prefix(16)) }

    public func verify(signature base64: String, of data: some DataProtocol) -> Bool {
        // Only the canonical spelling: Foundation's decoder ignores the unused bits of the last
        // character, so 16 spellings would decode to one signature (a changed byte that verifies).
        guard let sig = Data(base64Encoded: base64), sig.base64EncodedString() == base64 else { return false }
        return key.isValidSignature(sig, for: Data(data))
    }

    public static func == (a: DevicePublicKey, b: DevicePublicKey) -> Bool { a.key.rawRepresentation == b.key.rawRepresentation }
}
