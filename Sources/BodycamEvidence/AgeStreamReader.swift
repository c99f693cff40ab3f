import Crypto

#if canImport(Glibc)
import Glibc
#endif

/// How a payload ended.
public enum AgeStreamEnd: Sendable, Equatable {
    /// With an authenticated final chunk; `chunks` chunks in all.
    case complete(chunks: Int)
    /// Without one: chunks `0..<chunk` are authentic and were delivered; the file's last
    /// `discardedBytes` bytes, from chunk `chunk` on, are missing, torn or damaged.
    case truncated(chunk: Int, discardedBytes: Int)
}

/// A whole decrypted payload and how it ended.
public struct AgeDecryption: Sendable, Equatable {
    public var plaintext: [UInt8]
    public var end: AgeStreamEnd

    /// Whether the payload ended with an authenticated final chunk.
    public var isComplete: Bool {
        if case .complete = end { return true }
        return false
    }
}

/// Opens an age file with an identity and decrypts its payload chunk by chunk.
///
/// Reading from a file uses `pread` one chunk at a time, so a 2 GB clip is decrypted in bounded memory
/// (`decrypt(into:)`, `decrypt(toFileDescriptor:)`); `decryptAll` is for small payloads.
///
/// A strict reader (the default) accepts only a payload that ends with an authenticated final chunk and
/// nothing after it. With `allowTruncated`, a file cut off by a crash (missing final chunk, or damage
/// that reaches the end of the file: a torn write) yields every authentic chunk before the cut and says
/// where it stopped. Damage followed by an authentic chunk is never taken for truncation: it throws
/// `AgeError.badChunk` naming the first bad chunk.
public final class AgeStreamReader: Sendable {
    private enum Source: Sendable {
        case bytes([UInt8])
        case file(fd: Int32, path: String?, owned: Bool)
    }

    private let source: Source
    /// The file's size when opened; later growth is not read.
    public let fileSize: Int
    /// Bytes of the header text; the 16-byte payload nonce follows.
    public let headerLength: Int
    private let payloadKey: AgeKeyStorage

    /// Where chunk 0 starts.
    public var payloadOffset: Int { headerLength + AgePayload.nonceSize }
    private var payloadSize: Int { max(0, fileSize - payloadOffset) }

    /// Chunk positions the payload spans, complete or not.
    public var chunkCount: Int { (payloadSize + AgePayload.sealedChunkSize - 1) / AgePayload.sealedChunkSize }

    /// Where chunk `index` starts in the file.
    public func chunkOffset(_ index: Int) -> Int { payloadOffset + index * AgePayload.sealedChunkSize }

    /// Opens an age file held in memory.
    ///
    /// All initializers parse the header, unwrap the file key and derive the payload key; they throw the
    /// header errors of `AgeHeader.open`, and `.truncated(chunk: 0)` when the file ends inside the payload
    /// nonce.
    public convenience init(bytes: [UInt8], identities: [AgeIdentity]) throws(AgeError) {
        try self.init(source: .bytes(bytes), size: bytes.count, identities: identities)
    }

    /// Opens an age file from a descriptor (read with `pread`, so its position is untouched). The caller
    /// keeps ownership of `fd` and must keep it open while the reader is used.
    public convenience init(fileDescriptor fd: Int32, identities: [AgeIdentity]) throws(AgeError) {
        let size = try AgePOSIX.size(fd)
        try self.init(source: .file(fd: fd, path: nil, owned: false), size: size, identities: identities)
    }

    /// Opens the age file at `path`; the descriptor is closed when the reader is released.
    public convenience init(path: String, identities: [AgeIdentity]) throws(AgeError) {
        let fd = try AgePOSIX.open(path, flags: O_RDONLY)
        do {
            let size = try AgePOSIX.size(fd, path: path)
            try self.init(source: .file(fd: fd, path: path, owned: true), size: size, identities: identities)
        } catch {
            AgePOSIX.close(fd)
            throw error
        }
    }

    private init(source: Source, size: Int, identities: [AgeIdentity]) throws(AgeError) {
        self.source = source
        self.fileSize = size
        // Read the header in growing pieces: it is usually a few hundred bytes, but its size is not bounded
        // by anything but the spec's grammar (and our limit).
        var length = min(size, 4096)
        while true {
            let prefix = try Self.read(source, at: 0, count: length)
            if let header = try prefix.withAgeBytes({ (bytes) throws(AgeError) in try AgeHeader.parse(bytes) }) {
                let fileKey = try prefix.withAgeBytes { (bytes) throws(AgeError) in
                    try header.unwrap(identities: identities, bytes: bytes)
                }
                headerLength = header.length
                let nonce = try Self.read(source, at: header.length, count: AgePayload.nonceSize)
                // Without the whole nonce there is no payload key, and no chunk could be authentic.
                guard nonce.count == AgePayload.nonceSize else { throw .truncated(chunk: 0) }
                payloadKey = AgeKeyStorage(AgePayload.key(fileKey: fileKey, nonce: nonce))
                return
            }
            if length >= size { throw AgeHeader.incomplete(available: size) }
            length = min(size, length * 4)
        }
    }

    deinit {
        if case .file(let fd, _, true) = source { AgePOSIX.close(fd) }
    }

    private static func read(_ source: Source, at offset: Int, count: Int) throws(AgeError) -> [UInt8] {
        switch source {
        case .bytes(let bytes):
            let start = min(offset, bytes.count)
            return Array(bytes[start..<min(bytes.count, start + count)])
        case .file(let fd, let path, _):
            var buffer = [UInt8](repeating: 0, count: count)
            let n = try buffer.withAgeMutableBytes { (b) throws(AgeError) in
                try AgePOSIX.read(fd, into: b, at: offset, path: path)
            }
            buffer.removeLast(count - n)
            return buffer
        }
    }

    // MARK: - Chunks

    private enum Attempt {
        case plaintext([UInt8], last: Bool)
        /// The file ends where the chunk should start.
        case missing
        /// Too few bytes left for any chunk (a final chunk after chunk 0 holds at least one byte).
        case tooShort(Int)
        /// The bytes are there but authenticate neither as a non-final nor as a final chunk.
        case unauthentic
    }

    private func attempt(_ index: Int) throws(AgeError) -> Attempt {
        let start = index * AgePayload.sealedChunkSize
        let region = min(AgePayload.sealedChunkSize, payloadSize - start)
        if region <= 0 { return .missing }
        if region < AgePayload.tagSize + (index == 0 ? 0 : 1) { return .tooShort(region) }
        let sealed = try Self.read(source, at: payloadOffset + start, count: region)
        let symmetricKey = payloadKey.symmetricKey
        return sealed.withUnsafeBytes { bytes in
            // Only a full-size chunk can be non-final; a full-size one may also be the final chunk.
            if region == AgePayload.sealedChunkSize,
                let plaintext = AgeHeader.chachaOpen(
                    bytes, key: symmetricKey, nonce: AgePayload.nonce(chunk: index, last: false))
            {
                return .plaintext(plaintext, last: false)
            }
            if let plaintext = AgeHeader.chachaOpen(
                bytes, key: symmetricKey, nonce: AgePayload.nonce(chunk: index, last: true))
            {
                return .plaintext(plaintext, last: true)
            }
            return .unauthentic
        }
    }

    /// Decrypts chunk `index` alone (to seek, or to salvage what follows a damaged chunk).
    ///
    /// - Returns: its plaintext and whether it is the final chunk.
    /// - Throws: `.truncated(chunk:)` if the file holds no chunk there, `.badChunk(index:)` if it does not
    ///   authenticate.
    public func chunk(_ index: Int) throws(AgeError) -> (plaintext: [UInt8], isFinal: Bool) {
        switch try attempt(index) {
        case .plaintext(let plaintext, let last): return (plaintext, last)
        case .missing, .tooShort: throw .truncated(chunk: index)
        case .unauthentic: throw .badChunk(index: index)
        }
    }

    /// Whether any chunk after `index` authenticates at its own position: then the damage at `index` is
    /// inside the file, not a cut or torn end.
    private func authenticChunkFollows(_ index: Int) throws(AgeError) -> Bool {
        for later in (index + 1)..<max(index + 1, chunkCount) {
            if case .plaintext = try attempt(later) { return true }
        }
        return false
    }

    // MARK: - Whole payload

    /// Decrypts the payload in order, handing each authentic chunk's plaintext to `sink` as soon as it is
    /// verified; memory stays at one chunk.
    ///
    /// - Parameter allowTruncated: accept a file that was cut off or torn at its end (see the type).
    /// - Returns: how the payload ended (always `.complete` unless `allowTruncated`).
    /// - Throws: `.truncated(chunk:)` (strict only), `.badChunk(index:)`, `.trailingData`, or whatever
    ///   `sink` throws. Plaintext already handed to `sink` is authentic even when an error follows.
    public func decrypt(
        allowTruncated: Bool = false, into sink: (UnsafeRawBufferPointer) throws(AgeError) -> Void
    ) throws(AgeError) -> AgeStreamEnd {
        var index = 0
        while true {
            let discarded = payloadSize - index * AgePayload.sealedChunkSize
            switch try attempt(index) {
            case .plaintext(let plaintext, last: false):
                try plaintext.withAgeBytes(sink)
                index += 1
            case .plaintext(let plaintext, last: true):
                try plaintext.withAgeBytes(sink)
                // Only a full-size final chunk can have bytes after it.
                if discarded > plaintext.count + AgePayload.tagSize { throw .trailingData(afterChunk: index) }
                return .complete(chunks: index + 1)
            case .missing, .tooShort:
                guard allowTruncated else { throw .truncated(chunk: index) }
                return .truncated(chunk: index, discardedBytes: discarded)
            case .unauthentic:
                guard allowTruncated, try !authenticChunkFollows(index) else { throw .badChunk(index: index) }
                return .truncated(chunk: index, discardedBytes: discarded)
            }
        }
    }

    /// Decrypts the whole payload into memory. For large files use `decrypt(into:)`.
    public func decryptAll(allowTruncated: Bool = false) throws(AgeError) -> AgeDecryption {
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(payloadSize)
        let end = try decrypt(allowTruncated: allowTruncated) { plaintext += $0 }
        return AgeDecryption(plaintext: plaintext, end: end)
    }

    /// Decrypts the payload to a descriptor (a file or a pipe), one chunk at a time.
    public func decrypt(allowTruncated: Bool = false, toFileDescriptor fd: Int32) throws(AgeError) -> AgeStreamEnd {
        try decrypt(allowTruncated: allowTruncated) { (bytes) throws(AgeError) in try AgePOSIX.writeAll(fd, bytes) }
    }
}
