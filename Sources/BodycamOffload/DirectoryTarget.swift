import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A mounted share as the base station. The share's folder must hold a file named
/// `.bodycam-base-station` (`markerName`), put there when the base station is set up: a mount
/// point whose share is not mounted (yet) is an empty, often writable folder on the device's own
/// storage, and copies "verified" there would let the clips be deleted. Without the marker the
/// target is unavailable, checked by `probe` and again before every file.
///
/// Each file is copied to a temporary name in its final
/// folder, synced (file, then folder), read back past this machine's page cache and hashed, and
/// only then renamed into place
/// (and the folder synced again): the share never shows a partial clip under its real name, and
/// an existing file is never overwritten.
public final class DirectoryTarget: OffloadTarget, @unchecked Sendable {
    public let root: String
    private let cancelled = CancelFlag()
    /// The file that marks the base station's folder.
    public static let markerName = ".bodycam-base-station"

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    public var name: String { "directory \(root)" }

    public func cancelAll() { cancelled.set() }

    public func resume() { cancelled.clear() }

    public func probe() throws(OffloadError) {
        var st = stat()
        guard stat(root, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw OffloadError(.unavailable, "\(root): not a directory (share not mounted?)")
        }
        try checkMarker()
        guard access(root, W_OK) == 0 else { throw OffloadError(.refused, "\(root): not writable") }
    }

    private func checkMarker() throws(OffloadError) {
        guard access(root + "/" + Self.markerName, F_OK) == 0 else {
            throw OffloadError(
                .unavailable,
                "\(root): no \(Self.markerName) file, so not the base station's share (not mounted yet?); create it once on the share")
        }
    }

    public func send(
        _ object: LocalObject, progress: (Int64) -> Void, isCancelled: () -> Bool
    ) throws(OffloadError) -> OffloadReceipt {
        // The share may have gone (unmounted) since the last file, leaving the bare mount point.
        try checkMarker()
        let file = try FileReader(path: object.path)
        let final = root + "/" + object.key
        let folder = (final as NSString).deletingLastPathComponent
        try makeDirectories(folder)
        let local = try file.sha256()
        var st = stat()
        if lstat(final, &st) == 0 {
            // Copied before (the answer lost in a crash): verify, never overwrite. Something
            // other than a file there (a folder, a link) is not ours to replace either.
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw OffloadError(.conflict, "\(final) exists and is not a regular file")
            }
            guard access(final, R_OK) == 0 else {
                throw OffloadError(.refused, "\(final) exists but this device may not read it back")
            }
            let there = try FileReader(path: final, errorKind: .unavailable)
            there.dropCachedPages()
            let digest = try there.sha256()
            guard there.size == file.size, digest == local else {
                throw OffloadError(.conflict, "\(final) exists and differs from the device's file")
            }
            return OffloadReceipt(
                key: object.key, size: file.size, sha256: Hex.string(local), verifiedBy: "readback", sentBytes: 0,
                resumedParts: 0, sentParts: 0, alreadyPresent: true)
        }
        let tmp = folder + "/." + (final as NSString).lastPathComponent + ".partial"
        unlink(tmp)
        let out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard out >= 0 else { throw OffloadError(.unavailable, "\(tmp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var offset: Int64 = 0
        let chunk = 1 << 20
        var outOpen = true
        defer { if outOpen { close(out) } }
        while offset < file.size {
            if isCancelled() || cancelled.isSet { throw OffloadError(.cancelled, "cancelled") }
            let d = try file.read(offset: offset, count: Int(min(Int64(chunk), file.size - offset)))
            if d.isEmpty { break }
            let written = d.withUnsafeBytes { b -> Int in
                var done = 0
                while done < b.count {
                    let n = write(out, b.baseAddress! + done, b.count - done)
                    if n < 0 { if errno == EINTR { continue }; return -Int(errno) }
                    done += n
                }
                return done
            }
            if written < 0 {
                throw OffloadError(.unavailable, "\(tmp): write: \(String(cString: strerror(Int32(-written))))")
            }
            offset += Int64(d.count)
            progress(Int64(d.count))
        }
        if fsync(out) != 0 {
            throw OffloadError(.unavailable, "\(tmp): fsync: \(String(cString: strerror(errno)))")
        }
        close(out)
        outOpen = false
        StateFile.syncDirectory(of: tmp)
        // Read back what the share holds: its pages are dropped from this machine's cache first
        // (they are clean after the fsync), so the bytes hashed come from the disk or the share's
        // server, not from the memory they were written from.
        let back = try FileReader(path: tmp, errorKind: .unavailable)
        back.dropCachedPages()
        let digest = try back.sha256()
        guard back.size == file.size, digest == local else {
            throw OffloadError(.mismatch, "\(tmp): read back \(back.size) bytes that do not match the device's file")
        }
        // link() fails if the name exists: never overwrite, even racing another writer. Shares
        // without hard links (vfat, some SMB mounts) get a checked rename instead.
        if link(tmp, final) == 0 {
            unlink(tmp)
        } else {
            let e = errno
            if e == EEXIST { throw OffloadError(.conflict, "\(final) appeared while copying") }
            guard e == EPERM || e == ENOTSUP || e == ENOSYS || e == EXDEV, access(final, F_OK) != 0,
                rename(tmp, final) == 0
            else {
                throw OffloadError(.unavailable, "\(final): \(String(cString: strerror(e)))")
            }
        }
        ok = true
        StateFile.syncDirectory(of: final)
        return OffloadReceipt(
            key: object.key, size: file.size, sha256: Hex.string(local), verifiedBy: "readback", sentBytes: file.size,
            resumedParts: 0, sentParts: 1, alreadyPresent: false)
    }

    private func makeDirectories(_ path: String) throws(OffloadError) {
        var built = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            built += "/" + part
            if mkdir(built, 0o750) == 0 {
                // A new folder is durable only once its parent is synced.
                StateFile.syncDirectory(of: built)
            } else if errno != EEXIST {
                throw OffloadError(.unavailable, "\(built): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// A flag any thread may set.
final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    func clear() { lock.withLock { value = false } }
    var isSet: Bool { lock.withLock { value } }
}
