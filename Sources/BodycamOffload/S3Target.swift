import Crypto
public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An S3-compatible base station. Every object is written with `If-None-Match: *` (a retry can
/// never overwrite), every body carries its SHA-256, and an object counts as offloaded only when
/// the store's checksum of it (or, where the store gives none, a read-back) matches the device's.
///
/// Files larger than a part go up as a multipart upload, one part at a time, so an interruption
/// costs at most the part in flight. The upload id is kept in `stateDirectory` (synced) and found
/// again with ListMultipartUploads when that file was lost; after an undock or a crash, ListParts
/// says which parts are stored. Their checksums are recomputed from the file (stores do not list
/// them), and a stored part whose size or MD5 ETag does not match the file is sent again.
public final class S3Target: OffloadTarget, @unchecked Sendable {
    public let client: S3Client
    public let partSize: Int
    public let stateDirectory: String

    public init(client: S3Client, partSize: Int, stateDirectory: String) {
        self.client = client
        self.partSize = partSize
        self.stateDirectory = stateDirectory
    }

    public var name: String { "s3://\(client.bucket) at \(client.endpoint)" }

    public func cancelAll() { client.transport.cancelAll() }

    public func resume() { client.transport.resume() }

    public func probe() throws(OffloadError) {
        do { try client.headBucket() } catch { throw Self.map(error) }
    }

    public func send(
        _ object: LocalObject, progress: (Int64) -> Void, isCancelled: () -> Bool
    ) throws(OffloadError) -> OffloadReceipt {
        let file = try FileReader(path: object.path)
        do {
            if file.size <= Int64(partSize) {
                return try sendWhole(object, file: file, progress: progress)
            }
            return try sendParts(object, file: file, progress: progress, isCancelled: isCancelled)
        } catch let e as S3Error {
            throw Self.map(e)
        } catch let e as OffloadError {
            throw e
        } catch {
            throw OffloadError(.local, "\(error)")
        }
    }

    // MARK: - One request

    private func sendWhole(_ object: LocalObject, file: borrowing FileReader, progress: (Int64) -> Void) throws -> OffloadReceipt {
        let data = try file.read(offset: 0, count: Int(file.size))
        guard Int64(data.count) == file.size else { throw OffloadError(.local, "\(object.path): changed while read") }
        let digest = Array(SHA256.hash(data: data))
        // Sent before (a crash between the upload and the deletion): verify, do not send again.
        let result: S3Client.PutResult =
            try client.head(object.key) != nil ? .alreadyExists : client.put(object.key, data: data, contentType: object.contentType)
        progress(result == .created ? Int64(data.count) : 0)
        let how = try verify(object.key, size: file.size, sha256: digest, partDigests: nil)
        return OffloadReceipt(
            key: object.key, size: file.size, sha256: Hex.string(digest), verifiedBy: how,
            sentBytes: result == .created ? file.size : 0, resumedParts: 0, sentParts: result == .created ? 1 : 0,
            alreadyPresent: result == .alreadyExists)
    }

    // MARK: - Multipart

    private func sendParts(
        _ object: LocalObject, file: borrowing FileReader, progress: (Int64) -> Void, isCancelled: () -> Bool
    ) throws -> OffloadReceipt {
        let key = object.key
        let count = Int((file.size + Int64(partSize) - 1) / Int64(partSize))
        var uploadID = loadUploadID(key)
        var stored: [Int: S3Part] = [:]
        if let id = uploadID {
            if let parts = try client.listParts(key: key, uploadID: id) {
                for p in parts { stored[p.number] = p }
            } else {
                // Gone: completed by an earlier attempt whose answer was lost, or aborted.
                uploadID = nil
                forgetUploadID(key)
            }
        }
        if uploadID == nil {
            if try client.head(key) != nil {
                // Already complete: only verify it (and drop any upload of it still open).
                abort((try? client.listMultipartUploads(key: key)) ?? [], of: key)
                let digests = try Self.digests(file, partSize: partSize)
                let how = try verify(key, size: file.size, sha256: digests.whole, partDigests: digests.parts)
                return OffloadReceipt(
                    key: key, size: file.size, sha256: Hex.string(digests.whole), verifiedBy: how, sentBytes: 0,
                    resumedParts: 0, sentParts: 0, alreadyPresent: true)
            }
            // A state file lost in a crash: the store still lists the upload. The newest one
            // the store still has is resumed; any other is an earlier attempt of ours whose id
            // was lost (an answer lost on the way back), and is aborted, or the store would keep
            // its parts for ever.
            let uploads = try client.listMultipartUploads(key: key)
            for found in uploads.reversed() where uploadID == nil {
                if let parts = try client.listParts(key: key, uploadID: found.uploadID) {
                    uploadID = found.uploadID
                    for p in parts { stored[p.number] = p }
                }
            }
            if let resumed = uploadID {
                abort(uploads.filter { $0.uploadID != resumed }, of: key)
            } else {
                uploadID = try client.createMultipartUpload(key, contentType: object.contentType)
            }
            saveUploadID(key, uploadID!)
        }
        let id = uploadID!

        var whole = SHA256()
        var partDigests: [[UInt8]] = []
        var completed: [(number: Int, etag: String, sha256: [UInt8])] = []
        var sent: Int64 = 0
        var resumed = 0
        var sentParts = 0
        // Part n+1 is read and hashed while part n is on the wire (the store's time per part is
        // the bottleneck; this hides ours). Only one part is ever in flight to the store.
        let prefetcher = PartPrefetcher(fd: file.fd, path: file.path, size: file.size, partSize: partSize)
        defer { prefetcher.finish() }
        prefetcher.start(1)
        for n in 1...count {
            if isCancelled() { throw OffloadError(.cancelled, "cancelled") }
            let (data, digest) = try prefetcher.take()
            if n < count { prefetcher.start(n + 1) }
            whole.update(data: data)
            partDigests.append(digest)
            if let have = stored[n], have.size == Int64(data.count), Self.etagMatches(have.etag, data) {
                completed.append((n, have.etag, digest))
                resumed += 1
                continue
            }
            let etag = try client.uploadPart(key: key, uploadID: id, number: n, data: data, sha256: digest)
            completed.append((n, etag, digest))
            sent += Int64(data.count)
            sentParts += 1
            progress(Int64(data.count))
        }
        let wholeDigest = Array(whole.finalize())
        var alreadyPresent = false
        switch try client.completeMultipartUpload(key: key, uploadID: id, parts: completed) {
        case .completed: break
        case .alreadyExists:
            // Someone (an earlier attempt of ours) completed it first; verification decides.
            alreadyPresent = true
            try? client.abortMultipartUpload(key: key, uploadID: id)
        case .noSuchUpload:
            alreadyPresent = true
        }
        forgetUploadID(key)
        let how = try verify(key, size: file.size, sha256: wholeDigest, partDigests: partDigests)
        return OffloadReceipt(
            key: key, size: file.size, sha256: Hex.string(wholeDigest), verifiedBy: how, sentBytes: sent,
            resumedParts: resumed, sentParts: sentParts, alreadyPresent: alreadyPresent)
    }

    /// Aborts these multipart uploads of `key`. Best effort: a failure here costs the store
    /// some space, never a clip.
    private func abort(_ uploads: [S3Upload], of key: String) {
        for u in uploads { try? client.abortMultipartUpload(key: key, uploadID: u.uploadID) }
    }

    // MARK: - Verification

    /// HeadObject with checksum mode; the object's size and SHA-256 (whole, or the composite over
    /// its parts) must be the device's. Without a checksum from the store, read it back.
    private func verify(_ key: String, size: Int64, sha256: [UInt8], partDigests: [[UInt8]]?) throws -> String {
        guard let info = try client.head(key) else {
            throw OffloadError(.mismatch, "\(key): not found on the store after upload")
        }
        guard info.size == size else {
            throw OffloadError(.conflict, "\(key): the store holds \(info.size) bytes, the device \(size)")
        }
        if let sum = info.checksumSHA256?.trimmingCharacters(in: .whitespaces), !sum.isEmpty {
            let whole = S3Client.base64(sha256)
            if sum == whole || sum == whole + "-1" { return "checksum" }
            if let dash = sum.lastIndex(of: "-"), let parts = partDigests, Int(sum[sum.index(after: dash)...]) == parts.count {
                let composite = S3Client.base64(SHA256.hash(data: Data(parts.joined())))
                if String(sum[..<dash]) == composite { return "composite-checksum" }
            }
            if let dash = sum.lastIndex(of: "-"), Int(sum[sum.index(after: dash)...]) != partDigests?.count {
                // A composite over other parts (uploaded with another part size): we cannot
                // recompute it, so the bytes decide.
                return try readBack(key, size: size, sha256: sha256)
            }
            // Same parts, different checksum: the store holds something else, or says so. Never
            // trusted; the clip stays and this is tried again later.
            throw OffloadError(.mismatch, "\(key): store checksum \(sum) does not match the device's \(whole)")
        }
        return try readBack(key, size: size, sha256: sha256)
    }

    private func readBack(_ key: String, size: Int64, sha256: [UInt8]) throws -> String {
        let back = try client.readBack(key, expectedSize: size)
        guard back.size == size, back.sha256 == sha256 else {
            throw OffloadError(.mismatch, "\(key): read back \(back.size) bytes with SHA-256 \(Hex.string(back.sha256)), the device has \(size) bytes, \(Hex.string(sha256))")
        }
        return "readback"
    }

    /// Whole-file and per-part SHA-256, as the upload would cut it.
    static func digests(_ file: borrowing FileReader, partSize: Int) throws(OffloadError) -> (whole: [UInt8], parts: [[UInt8]]) {
        var whole = SHA256()
        var parts: [[UInt8]] = []
        var offset: Int64 = 0
        while offset < file.size {
            let d = try file.read(offset: offset, count: Int(min(Int64(partSize), file.size - offset)))
            whole.update(data: d)
            parts.append(Array(SHA256.hash(data: d)))
            offset += Int64(d.count)
        }
        return (Array(whole.finalize()), parts)
    }

    /// A stored part is reused only if its ETag, when it is a plain MD5 (as S3 and SeaweedFS give
    /// for parts), is the MD5 of the file's bytes.
    static func etagMatches(_ etag: String, _ data: Data) -> Bool {
        let e = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        // Not an MD5 we can check: send the part again rather than trust unknown bytes.
        guard e.count == 32, e.allSatisfy(\.isHexDigit) else { return false }
        return e.lowercased() == Hex.string(Insecure.MD5.hash(data: data))
    }

    // MARK: - Upload ids on storage

    private func statePath(_ key: String) -> String {
        stateDirectory + "/" + Hex.string(SHA256.hash(data: Data(key.utf8)).prefix(12)) + ".upload"
    }

    private func loadUploadID(_ key: String) -> String? {
        guard let text = try? String(contentsOfFile: statePath(key), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        guard lines.count == 2, lines[0] == key else { return nil }
        return String(lines[1])
    }

    /// Best effort: without it (a full data partition) ListMultipartUploads finds the upload again.
    private func saveUploadID(_ key: String, _ id: String) {
        try? StateFile.write(Data("\(key)\n\(id)\n".utf8), to: statePath(key))
    }

    private func forgetUploadID(_ key: String) { StateFile.remove(statePath(key)) }

    static func map(_ e: S3Error) -> OffloadError {
        if e.isCancellation { return OffloadError(.cancelled, "cancelled") }
        let text = "\(e)"
        switch e.status {
        case nil: return OffloadError(.unavailable, text)
        case 401, 403, 404: return OffloadError(.refused, text)
        case 409 where e.code == "BucketAlreadyExists" || e.code == "InvalidBucketState": return OffloadError(.refused, text)
        case 400 where e.code == "BadDigest" || e.code == "InvalidDigest" || e.code.hasPrefix("XAmzContent"):
            return OffloadError(.mismatch, text)
        default:
            if e.code == "ChecksumMismatch" { return OffloadError(.mismatch, text) }
            return OffloadError(.unavailable, text)
        }
    }
}

/// Small files written so a crash leaves the old or the new content, never a torn one.
public enum StateFile {
    public static func write(_ data: Data, to path: String) throws(OffloadError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw OffloadError(.local, "\(tmp): \(String(cString: strerror(errno)))") }
        let ok = data.withUnsafeBytes { b -> Bool in
            var done = 0
            while done < b.count {
                let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return fsync(fd) == 0
        }
        let e = errno
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw OffloadError(.local, "\(path): \(String(cString: strerror(ok ? errno : e)))")
        }
        syncDirectory(of: path)
    }

    public static func remove(_ path: String) {
        if unlink(path) == 0 { syncDirectory(of: path) }
    }

    public static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}

/// Reads and hashes one part ahead on a background queue. `finish()` waits for a read still
/// running, so the file is never read after its descriptor is closed.
final class PartPrefetcher: @unchecked Sendable {
    let fd: Int32
    let path: String
    let size: Int64
    let partSize: Int
    private let ready = DispatchSemaphore(value: 0)
    private var result: Result<(Data, [UInt8]), OffloadError>?
    private var running = false

    init(fd: Int32, path: String, size: Int64, partSize: Int) {
        self.fd = fd
        self.path = path
        self.size = size
        self.partSize = partSize
    }

    func start(_ n: Int) {
        running = true
        let offset = Int64(n - 1) * Int64(partSize)
        let count = Int(min(Int64(partSize), size - offset))
        DispatchQueue.global(qos: .utility).async { [self] in
            do throws(OffloadError) {
                let d = try FileReader.read(fd: fd, path: path, offset: offset, count: count)
                result = .success((d, Array(SHA256.hash(data: d))))
            } catch {
                result = .failure(error)
            }
            ready.signal()
        }
    }

    func take() throws(OffloadError) -> (Data, [UInt8]) {
        ready.wait()
        running = false
        let r = result!
        result = nil
        return try r.get()
    }

    func finish() {
        if running {
            ready.wait()
            running = false
        }
    }
}
