import Crypto
public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file leaving the device.
public struct LocalObject: Sendable {
    public var path: String
    /// Where it goes, relative to the target's root: `<prefix>/<device>/<yyyy>/<mm>/<dd>/<name>`.
    public var key: String
    public var contentType: String

    public init(path: String, key: String, contentType: String) {
        self.path = path
        self.key = key
        self.contentType = contentType
    }
}

/// Proof that a copy on the target matches the device's file.
public struct OffloadReceipt: Sendable, Equatable {
    public var key: String
    public var size: Int64
    /// SHA-256 of the whole file, hex.
    public var sha256: String
    /// How the copy was checked: `"checksum"` (the store's SHA-256 of the object),
    /// `"composite-checksum"` (the store's SHA-256 over its parts' SHA-256s), `"readback"`.
    public var verifiedBy: String
    /// Bytes actually sent this time.
    public var sentBytes: Int64
    /// Parts found already stored (resumed), and parts sent.
    public var resumedParts: Int
    public var sentParts: Int
    /// The object was already there (an earlier attempt finished before a crash or cut).
    public var alreadyPresent: Bool
}

/// Why an offload did not happen, for the log, the audit log and `ctl status`.
public struct OffloadError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Undocked or shutting down: not a failure.
        case cancelled
        /// The target could not be reached or answered with a server error: try again later.
        case unavailable
        /// The target refused us (credentials, permissions, missing bucket): try again later, but
        /// someone has to fix something.
        case refused
        /// The copy does not match the device's file (a wrong checksum, a short object).
        case mismatch
        /// Something else already sits at the key and differs: never overwritten.
        case conflict
        /// The device's own file could not be read.
        case local
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// A base station: S3-compatible store or a mounted directory.
public protocol OffloadTarget: AnyObject, Sendable {
    /// For logs: `s3://bucket/prefix at http://…` or the directory.
    var name: String { get }
    /// Can we reach it, and may we write? (Confirms the dock.)
    func probe() throws(OffloadError)
    /// Sends a file, resuming what an earlier attempt left, and verifies the copy. `progress` gets
    /// the bytes sent by each step (and may block, to pace the upload); `isCancelled` is polled
    /// between steps. Throws `.cancelled` quickly after `cancelAll()`.
    func send(
        _ object: LocalObject, progress: (Int64) -> Void, isCancelled: () -> Bool
    ) throws(OffloadError) -> OffloadReceipt
    /// Stops every request in flight, and any started until `resume()` (undocked).
    func cancelAll()
    /// Requests may run again (docked).
    func resume()
}

/// Reads a file in pieces with pread: parts of a clip, never the whole clip in memory.
public struct FileReader: ~Copyable {
    public let fd: Int32
    public let size: Int64
    public let path: String
    /// What a failure to open or read is: `.local` for the device's own files; a copy on the
    /// base station's share that cannot be read is the target's problem (`.unavailable`).
    public let errorKind: OffloadError.Kind

    public init(path: String, errorKind: OffloadError.Kind = .local) throws(OffloadError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OffloadError(errorKind, "\(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw OffloadError(errorKind, "\(path): \(String(cString: strerror(e)))")
        }
        self.fd = fd
        self.size = Int64(st.st_size)
        self.path = path
        self.errorKind = errorKind
    }

    deinit { close(fd) }

    /// Asks the kernel to forget the file's cached pages (clean ones; call after an fsync), so
    /// that what is read next comes from the storage, or the share's server, rather than from
    /// this machine's memory of what was written. Advice only: where it is not honoured the read
    /// still checks what the kernel holds.
    public func dropCachedPages() {
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
    }

    /// `count` bytes at `offset` (fewer only at the end of the file).
    public func read(offset: Int64, count: Int) throws(OffloadError) -> Data {
        try Self.read(fd: fd, path: path, offset: offset, count: count, errorKind: errorKind)
    }

    static func read(
        fd: Int32, path: String, offset: Int64, count: Int, errorKind: OffloadError.Kind = .local
    ) throws(OffloadError) -> Data {
        var data = Data(count: count)
        var done = 0
        let err: Int32 = data.withUnsafeMutableBytes { buf -> Int32 in
            while done < count {
                let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { break }
                done += n
            }
            return 0
        }
        if err != 0 { throw OffloadError(errorKind, "\(path): read: \(String(cString: strerror(err)))") }
        if done < count { data.removeSubrange(done..<count) }
        return data
    }

    /// SHA-256 of the whole file.
    public func sha256(chunk: Int = 1 << 20) throws(OffloadError) -> [UInt8] {
        var h = SHA256()
        var offset: Int64 = 0
        while offset < size {
            let d = try read(offset: offset, count: Int(min(Int64(chunk), size - offset)))
            if d.isEmpty { break }
            h.update(data: d)
            offset += Int64(d.count)
        }
        return Array(h.finalize())
    }
}

public enum Hex {
    public static func string(_ bytes: some Sequence<UInt8>) -> String { SigV4Signer.hex(bytes) }
}
