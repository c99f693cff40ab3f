import BodycamAdapters
import BodycamCore
import BodycamEvidence
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a clip's plaintext goes: a plain MP4 file, or an `age` file sealed to the agency.
///
/// `append` writes and syncs a fragment; what it returns goes into that fragment's journal
/// entry; `committed` is called once the entry is on storage (so what it replaces may go).
protocol ClipSink: AnyObject {
    /// For a sealed clip: its header's facts, known before anything else is written.
    var initialSealInfo: SealInfo? { get }
    func append(_ parts: [UnsafeRawBufferPointer]) throws(SystemError) -> SealCommit?
    func committed()
    /// Undo a failed `append` (cut the file back to the last committed state).
    func rollBack()
    /// Complete the file at the end of the clip; sealed clips return their layout, with
    /// `info.chunks` left empty and every chunk's hash (the final one too) in `chunks`.
    func finish() throws -> (info: SealInfo, chunks: ChunkDigests)?
    /// Remove working files once the manifest is written.
    func removeScratch()
}

/// A plain fragmented MP4 file.
final class PlainSink: ClipSink {
    let path: String
    private let fd: Int32
    private var offset = 0
    private var committedOffset = 0
    private let sync: Bool

    init(path: String, sync: Bool) throws(SystemError) {
        self.path = path
        self.sync = sync
        fd = try Syscall.retrying("open", path: path) {
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        }
    }

    deinit { Syscall.close(fd) }

    var initialSealInfo: SealInfo? { nil }

    func append(_ parts: [UnsafeRawBufferPointer]) throws(SystemError) -> SealCommit? {
        let n = try Syscall.writeVector(fd, parts, at: offset, path: path)
        if sync { try Syscall.retrying("fdatasync", path: path) { fdatasync(fd) } }
        offset += n
        return nil
    }

    func committed() { committedOffset = offset }

    /// Back to the last journaled state: a failed append, or an append whose journal line
    /// could not be written (recovery trusts the journal, so the file must not hold more).
    func rollBack() {
        _ = ftruncate(fd, off_t(committedOffset))
        offset = committedOffset
    }

    func finish() throws -> (info: SealInfo, chunks: ChunkDigests)? {
        if sync { _ = fsync(fd) }
        return nil
    }

    func removeScratch() {}
}

extension Syscall {
    /// pwritev of all `parts` at `offset`, resuming after short writes. Returns the bytes written.
    @discardableResult
    static func writeVector(_ fd: Int32, _ parts: [UnsafeRawBufferPointer], at offset: Int, path: String)
        throws(SystemError) -> Int
    {
        var iov = [iovec]()
        iov.reserveCapacity(parts.count)
        for s in parts where s.count > 0 {
            iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: s.baseAddress), iov_len: s.count))
        }
        var index = 0
        var position = offset
        let maxVectors = 1024  // IOV_MAX on Linux
        while index < iov.count {
            let n = try iov.withUnsafeBufferPointer { p throws(SystemError) -> Int in
                try Syscall.retrying("pwritev", path: path) {
                    pwritev(fd, p.baseAddress! + index, Int32(min(maxVectors, iov.count - index)), off_t(position))
                }
            }
            position += n
            var left = n
            while left > 0 && index < iov.count {
                if iov[index].iov_len <= left {
                    left -= iov[index].iov_len
                    index += 1
                } else {
                    iov[index].iov_base = iov[index].iov_base! + left
                    iov[index].iov_len -= left
                    left = 0
                }
            }
        }
        return position - offset
    }
}

/// A clip sealed with `age` to the agency's recipient, written so that no byte already on
/// storage is ever rewritten.
///
/// Whole 64 KiB chunks are sealed (non-final) and appended as soon as they are complete; the
/// plaintext after the last whole chunk (up to 64 KiB) is sealed after every fragment into a
/// small age file of its own (`<clip-id>.tail-<n>.age`, fresh key each time) beside the journal.
/// So every fragment is on storage, sealed, when its journal entry is written, and a power cut
/// loses nothing that was committed: recovery keeps the main file's whole chunks and the tail
/// file the last entry names. When the clip closes, the tail becomes the final chunk of the main
/// file, which is then a complete age file `age -d` opens. No chunk index is ever sealed twice
/// with different plaintext (age's STREAM nonces are the chunk counter and the last-chunk flag).
final class SealedSink: ClipSink {
    let path: String
    private let fd: Int32
    private let sync: Bool
    private let recipient: AgeRecipient
    private let writer: AgeStreamWriter
    private let clipID: String
    private let scratch: String?
    let initialSealInfo: SealInfo?
    private var tail: [UInt8] = []
    private var nextChunk = 0
    private var size: Int
    private var lastCommittedSize: Int
    /// SHA-256 of each whole chunk written.
    private var chunkDigests = ChunkDigests()
    private var tailSeq = 0
    private var committedTail: String?
    private var pendingTail: String?

    init(path: String, recipient recipientString: String, clipID: String, scratchDirectory: String?, sync: Bool) throws {
        self.path = path
        self.sync = sync
        self.clipID = clipID
        scratch = scratchDirectory
        recipient = try AgeRecipient(parsing: recipientString)
        writer = try AgeStreamWriter(recipient: recipient)
        let file = try Syscall.retrying("open", path: path) { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640) }
        fd = file
        let header = writer.headerBytes
        try withBytes(header) { (b: UnsafeRawBufferPointer) throws(SystemError) in try Syscall.writeAll(file, b, path: path) }
        if sync { try Syscall.retrying("fdatasync", path: path) { fdatasync(file) } }
        size = header.count
        lastCommittedSize = header.count
        initialSealInfo = SealInfo(
            recipient: recipient.string, headerSize: header.count, headerSha256: Hex.string(SHA256.hash(data: header)))
        tail.reserveCapacity(2 * SealInfo.chunkPlaintext)
    }

    deinit {
        writer.zeroizeKeys()
        Syscall.close(fd)
    }

    func append(_ parts: [UnsafeRawBufferPointer]) throws(SystemError) -> SealCommit? {
        var sealed: [[UInt8]] = []
        var hashes: [ChunkHash] = []
        let first = nextChunk
        do {
            for part in parts {
                tail.append(contentsOf: part)
                // Keep up to one whole chunk back: the clip's final chunk must not be empty.
                while tail.count > SealInfo.chunkPlaintext {
                    let c = try tail.withUnsafeBytes { b in
                        try writer.sealChunk(
                            index: nextChunk, plaintext: UnsafeRawBufferPointer(rebasing: b[0..<SealInfo.chunkPlaintext]),
                            last: false)
                    }
                    tail.removeFirst(SealInfo.chunkPlaintext)
                    let digest = SHA256.hash(data: c)
                    hashes.append(ChunkHash(index: nextChunk, sha256: Hex.string(digest)))
                    chunkDigests.append(digest)
                    sealed.append(c)
                    nextChunk += 1
                }
            }
        } catch {
            throw SystemError(op: "seal (\(error))", errno: EIO, path: path)
        }
        if !sealed.isEmpty {
            let parts = sealed.map { c in c.withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count) } }
            // The arrays outlive the write: `sealed` holds them.
            let n = try withExtendedLifetime(sealed) { () throws(SystemError) -> Int in
                try Syscall.writeVector(fd, parts, at: writer.chunkOffset(first), path: path)
            }
            if sync { try Syscall.retrying("fdatasync", path: path) { fdatasync(fd) } }
            size = writer.chunkOffset(first) + n
        }
        return SealCommit(size: size, chunks: hashes, tail: try writeTail())
    }

    /// Seals the current tail into a fresh age file beside the journal (write, sync, rename).
    private func writeTail() throws(SystemError) -> SealedTail? {
        guard let scratch, !tail.isEmpty else { return nil }
        tailSeq += 1
        let name = "\(clipID).tail-\(tailSeq).age"
        let bytes: [UInt8]
        do {
            let w = try AgeStreamWriter(recipient: recipient)
            bytes = w.headerBytes + (try w.sealChunk(index: 0, plaintext: tail, last: true))
            w.zeroizeKeys()
        } catch {
            throw SystemError(op: "seal tail (\(error))", errno: EIO, path: path)
        }
        try FileSystem.writeAtomically(Data(bytes), to: scratch + "/" + name)
        pendingTail = name
        return SealedTail(file: name, sha256: Hex.string(SHA256.hash(data: bytes)), size: bytes.count, plaintextSize: tail.count)
    }

    func committed() {
        lastCommittedSize = size
        if let p = pendingTail {
            if let old = committedTail, let scratch { unlink(scratch + "/" + old) }
            committedTail = p
            pendingTail = nil
        }
    }

    func rollBack() {
        _ = ftruncate(fd, off_t(lastCommittedSize))
        if let p = pendingTail, let scratch { unlink(scratch + "/" + p) }
        pendingTail = nil
    }

    func finish() throws -> (info: SealInfo, chunks: ChunkDigests)? {
        let last = try writer.sealChunk(index: nextChunk, plaintext: tail, last: true)
        try withBytes(last) { (b: UnsafeRawBufferPointer) throws(SystemError) in
            _ = try Syscall.writeVector(fd, [b], at: writer.chunkOffset(nextChunk), path: path)
        }
        if sync { try Syscall.retrying("fsync", path: path) { fsync(fd) } }
        writer.zeroizeKeys()
        guard var info = initialSealInfo else { return nil }
        chunkDigests.append(SHA256.hash(data: last))
        info.finalChunk = true
        info.size = writer.chunkOffset(nextChunk) + last.count
        return (info, chunkDigests)
    }

    func removeScratch() {
        guard let scratch else { return }
        for name in [committedTail, pendingTail].compactMap({ $0 }) { unlink(scratch + "/" + name) }
        committedTail = nil
        pendingTail = nil
    }
}
