import BodycamCore

#if canImport(Glibc)
import Glibc
#endif

/// Identity files in the form `age-keygen` writes and `age -d -i` reads.
extension AgeIdentity {
    /// age refuses identity files larger than this; so do we, rather than read an arbitrary file whole.
    static let fileSizeLimit = 1 << 24

    /// Parses the text of an identity file: `#` comment lines and blank lines are skipped, every other
    /// line must be an X25519 identity. CRLF line ends are accepted, as age accepts them.
    ///
    /// - Throws: `AgeError.invalidIdentity` naming the line, or when the file holds no identity.
    public static func parseFile(_ text: String) throws(AgeError) -> [AgeIdentity] {
        var identities: [AgeIdentity] = []
        // Split on LF bytes: as Characters, "\r\n" is one grapheme and would not split at "\n".
        for (number, rawLine) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.last == 0x0D ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            guard line.starts(with: "AGE-SECRET-KEY-".utf8) else {
                throw .invalidIdentity("line \(number + 1) is not an age identity")
            }
            do {
                identities.append(try AgeIdentity(parsing: String(decoding: line, as: UTF8.self)))
            } catch {
                guard case .invalidIdentity(let why) = error else { throw error }
                throw .invalidIdentity("line \(number + 1): \(why)")
            }
        }
        if identities.isEmpty { throw .invalidIdentity("the identity file holds no identity") }
        return identities
    }

    /// Reads and parses the identity file at `path`.
    public static func readFile(atPath path: String) throws(AgeError) -> [AgeIdentity] {
        let fd = try AgePOSIX.open(path, flags: O_RDONLY)
        defer { AgePOSIX.close(fd) }
        let size = try AgePOSIX.size(fd, path: path)
        guard size <= fileSizeLimit else { throw .invalidIdentity("\(path) is larger than 16 MiB") }
        var bytes = [UInt8](repeating: 0, count: size)
        let count = try bytes.withAgeMutableBytes { (buffer) throws(AgeError) -> Int in
            try AgePOSIX.read(fd, into: buffer, at: 0, path: path)
        }
        guard let text = String(validating: bytes[..<count], as: UTF8.self) else {
            throw .invalidIdentity("\(path) is not valid UTF-8")
        }
        return try parseFile(text)
    }

    /// The identity file text `age-keygen` would write: creation time, public key, secret key.
    ///
    /// - Parameter unixSeconds: the creation time, written in RFC 3339 UTC to whole seconds.
    public func fileContents(createdAt unixSeconds: Double) -> String {
        // UTCFormat.compact is `yyyymmddThhmmssZ`; age-keygen writes `yyyy-mm-ddThh:mm:ssZ`-style RFC 3339.
        let c = Array(UTCFormat.compact(unixSeconds.rounded(.down)))
        let created =
            "\(String(c[0..<4]))-\(String(c[4..<6]))-\(String(c[6..<8]))T"
            + "\(String(c[9..<11])):\(String(c[11..<13])):\(String(c[13..<15]))Z"
        return "# created: \(created)\n# public key: \(recipient.string)\n\(string)\n"
    }

    /// Writes a new identity file readable only by its owner (mode 0600) and syncs it.
    ///
    /// Like `age-keygen -o`, this never overwrites: an existing file (perhaps the only copy of a key
    /// that opens years of evidence) makes it fail with `EEXIST`.
    public func writeFile(atPath path: String, createdAt unixSeconds: Double? = nil) throws(AgeError) {
        let fd = try AgePOSIX.open(path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        var done = false
        defer {
            AgePOSIX.close(fd)
            // A half-written key file would later fail to parse or, worse, be taken for a key.
            if !done { unlink(path) }
        }
        // The umask can only remove bits; set exactly 0600 in case the file system gave more.
        try AgePOSIX.chmod(fd, 0o600, path: path)
        let text = fileContents(createdAt: unixSeconds ?? AgePOSIX.now())
        try Array(text.utf8).withAgeBytes { (bytes) throws(AgeError) in
            try AgePOSIX.writeAll(fd, bytes, path: path)
        }
        try AgePOSIX.sync(fd, path: path)
        done = true
    }
}
