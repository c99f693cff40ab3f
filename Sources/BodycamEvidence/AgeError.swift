#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong reading, writing or sealing an age file.
///
/// Errors never carry secret material: a malformed identity is described by its line number and the
/// reason, never by its text.
public enum AgeError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Keys

    /// An `age1…` recipient string is malformed; the payload says why.
    case invalidRecipient(String)
    /// An `AGE-SECRET-KEY-1…` identity (or an identity file) is malformed; the payload says why.
    case invalidIdentity(String)

    // MARK: Header

    /// The bytes do not start with `age-encryption.org/`.
    case notAnAgeFile
    /// An age file of a version other than v1.
    case unsupportedVersion(String)
    /// The header breaks the grammar of the spec (stanza lines, base64, the MAC line).
    case malformedHeader(String)
    /// An X25519 stanza is well-formed text but breaks that stanza type's rules (argument count,
    /// share length, body length, a low-order share). The spec says to reject the file, not skip it.
    case invalidStanza(String)
    /// Sealing was asked for with no recipients; an age header needs at least one stanza.
    case noRecipients
    /// The header parsed, but none of the identities unwraps any stanza.
    case noMatchingIdentity
    /// An identity unwrapped the file key, but the header MAC does not match: the header was altered.
    case badHeaderMAC

    // MARK: Payload

    /// The file ends where chunk `chunk` should start (or inside it, too short to be any chunk),
    /// without an authenticated final chunk.
    case truncated(chunk: Int)
    /// Chunk `index` fails authentication: it was altered, moved, or cut short.
    case badChunk(index: Int)
    /// Bytes follow the final chunk, which ended at chunk `afterChunk`.
    case trailingData(afterChunk: Int)

    // MARK: Sealing misuse

    /// More than 64 KiB of plaintext handed to one chunk.
    case chunkTooLarge(index: Int, size: Int)
    /// A non-final chunk must hold exactly 64 KiB.
    case shortNonFinalChunk(index: Int, size: Int)
    /// Only chunk 0 of an empty payload may be an empty final chunk.
    case emptyFinalChunk(index: Int)
    /// Non-final chunks are sealed once each, in order; a final chunk only at the next unsealed index.
    case chunkOutOfOrder(index: Int, expected: Int)
    /// Sealing this chunk would use its nonce a second time with different plaintext, which lets
    /// anyone holding both versions forge that chunk. See `AgeStreamWriter`.
    case nonceReuse(chunk: Int)
    /// The writer's keys were erased (`zeroizeKeys()` or `finish()`); nothing more can be sealed.
    case keysErased
    /// `finish()` with plaintext that could not be sealed without nonce reuse: append at least
    /// `minimumPadding` bytes (for MP4, a `free` box) and finish again.
    case pendingPlaintext(bytes: Int, minimumPadding: Int)

    // MARK: I/O

    /// A system call failed.
    case io(operation: String, path: String?, errno: Int32)

    public var description: String {
        switch self {
        case .invalidRecipient(let why): "invalid age recipient: \(why)"
        case .invalidIdentity(let why): "invalid age identity: \(why)"
        case .notAnAgeFile: "not an age file (it does not start with \"age-encryption.org/\")"
        case .unsupportedVersion(let v): "unsupported age version \"\(v)\" (only v1 is known)"
        case .malformedHeader(let why): "malformed age header: \(why)"
        case .invalidStanza(let why): "invalid recipient stanza: \(why)"
        case .noRecipients: "an age file needs at least one recipient"
        case .noMatchingIdentity: "no identity matches any recipient stanza of this file"
        case .badHeaderMAC: "the age header MAC does not match: the header was altered"
        case .truncated(let chunk): "the file ends at chunk \(chunk) without a final chunk: it was cut short"
        case .badChunk(let index): "chunk \(index) fails authentication: the payload was altered or cut"
        case .trailingData(let chunk): "data follows the final chunk \(chunk)"
        case .chunkTooLarge(let index, let size): "chunk \(index) is \(size) bytes; at most 65536 fit in a chunk"
        case .shortNonFinalChunk(let index, let size):
            "non-final chunk \(index) is \(size) bytes; non-final chunks hold exactly 65536"
        case .emptyFinalChunk(let index): "final chunk \(index) is empty; only an empty payload has an empty chunk"
        case .chunkOutOfOrder(let index, let expected): "chunk \(index) sealed out of order; expected \(expected)"
        case .nonceReuse(let chunk):
            "chunk \(chunk) was already sealed as final with other plaintext; sealing it again reuses its nonce"
        case .keysErased: "the payload key was erased; this writer can seal nothing more"
        case .pendingPlaintext(let bytes, let padding):
            "\(bytes) bytes are not sealed yet; append at least \(padding) bytes of padding, then finish"
        case .io(let op, let path, let code):
            "\(op)\(path.map { " \($0)" } ?? "") failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
