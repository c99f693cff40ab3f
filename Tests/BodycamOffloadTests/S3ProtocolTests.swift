import Crypto
import Foundation
import Testing

@testable import BodycamOffload

@Suite("SigV4 and S3 answers")
struct S3ProtocolTests {
    @Test("SigV4 matches botocore's signature for an UploadPart with an encoded key and query")
    func sigV4MatchesBotocore() {
        // Reference computed with botocore's S3SigV4Auth for the same request at 2026-11-27T12:34:56Z.
        let signer = SigV4Signer(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let h = signer.sign(
            method: "PUT", path: "/cam1/evidence/cam-1/2026/11/27/a b.mp4.age",
            query: [("uploadId", "abc+def"), ("partNumber", "3")],
            headers: ["host": "127.0.0.1:8333", "x-amz-checksum-sha256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="],
            payloadHash: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            date: Date(timeIntervalSince1970: 1_795_782_896))
        #expect(h["x-amz-date"] == "20261127T123456Z")
        #expect(
            h["Authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-sha256;x-amz-content-sha256;x-amz-date, Signature=81deebf2f1d65ff68a36053cb42a2d97242b279ca6a85b9da28bbb63676862a4"
        )
    }

    @Test("a different secret, time or body gives a different signature")
    func sigV4Sensitivity() {
        let a = SigV4Signer(accessKeyID: "AK", secretAccessKey: "one", region: "us-east-1")
        let b = SigV4Signer(accessKeyID: "AK", secretAccessKey: "two", region: "us-east-1")
        let d = Date(timeIntervalSince1970: 1_700_000_000)
        func sig(_ s: SigV4Signer, _ hash: String, _ date: Date) -> String {
            s.sign(method: "GET", path: "/b/k", query: [], headers: ["host": "h"], payloadHash: hash, date: date)["Authorization"]!
        }
        let base = sig(a, SigV4Signer.emptyPayloadHash, d)
        #expect(base != sig(b, SigV4Signer.emptyPayloadHash, d))
        #expect(base != sig(a, String(repeating: "0", count: 64), d))
        #expect(base != sig(a, SigV4Signer.emptyPayloadHash, d.addingTimeInterval(1)))
    }

    @Test("URI encoding keeps unreserved characters and encodes the rest as UTF-8 bytes")
    func uriEncoding() {
        #expect(SigV4Signer.uriEncode("a-b_c.d~e/f g+h=ü", keepSlash: true) == "a-b_c.d~e/f%20g%2Bh%3D%C3%BC")
        #expect(SigV4Signer.uriEncode("a/b", keepSlash: false) == "a%2Fb")
        #expect(SigV4Signer.canonicalQuery([("uploads", "")]) == "uploads=")
        #expect(SigV4Signer.canonicalQuery([("prefix", "a b"), ("max-parts", "1")]) == "max-parts=1&prefix=a%20b")
    }

    @Test("ListParts and ListMultipartUploads answers are read; entities decoded")
    func listParts() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>cam1</Bucket><Key>a&amp;b</Key>
            <UploadId>xyz</UploadId><IsTruncated>false</IsTruncated>
            <Part><PartNumber>1</PartNumber><ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>8388608</Size></Part>
            <Part><PartNumber>2</PartNumber><ETag>"abc"</ETag><Size>12</Size></Part>
            </ListPartsResult>
            """
        let r = S3XML(xml)
        #expect(r.string("Key") == "a&b")
        let parts = r.all("Part")
        #expect(parts.count == 2)
        #expect(parts[0].string("ETag") == "\"0cc175b9c0f1b6a831c399e269772661\"")
        #expect(parts[1].string("Size") == "12")
        // <PartNumberMarker> must not be taken for <Part>.
        #expect(S3XML("<PartNumberMarker>3</PartNumberMarker>").all("Part").isEmpty)
        #expect(S3XML("<Upload/><Upload><UploadId>u</UploadId></Upload>").all("Upload").count == 2)
    }

    @Test("garbage, truncated and hostile answers yield nothing, never a crash")
    func garbage() {
        for text in ["", "<", "<Part>", "<Part><PartNumber>1", "\u{0}\u{1}\u{2}<<<>>>", String(repeating: "<Part>", count: 10_000),
                     "<Error><Code>SlowDown</Code>", "<Part></Part></Part>"] {
            let x = S3XML(text)
            _ = x.all("Part").map { $0.string("PartNumber") }
            _ = x.string("Code")
        }
        #expect(S3XML("<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>").first("Error")?.string("Code") == "NoSuchBucket")
    }

    @Test("a stored part is reused only if its MD5 ETag matches the file's bytes; an unknown ETag means send again")
    func etag() {
        let data = Data("a".utf8)
        #expect(S3Target.etagMatches("\"0cc175b9c0f1b6a831c399e269772661\"", data))
        #expect(!S3Target.etagMatches("\"0cc175b9c0f1b6a831c399e269772662\"", data))
        // Not an MD5 (some stores): nothing proves the stored bytes, so the part is sent again.
        #expect(!S3Target.etagMatches("\"opaque-etag\"", data))
    }

    @Test("the store's Date header is read, for signing with its clock when ours is off")
    func httpDate() {
        #expect(S3Client.httpDate("Fri, 27 Nov 2026 12:34:56 GMT") == Date(timeIntervalSince1970: 1_795_782_896))
        #expect(S3Client.httpDate("yesterday") == nil)
    }

    @Test("S3 errors map to what the queue does with them")
    func errorMapping() {
        func kind(_ status: Int?, _ code: String) -> OffloadError.Kind {
            S3Target.map(S3Error(status: status, code: code, message: "", operation: "op")).kind
        }
        #expect(kind(nil, "Cancelled") == .cancelled)
        #expect(kind(nil, "NoAnswer") == .unavailable)
        #expect(kind(503, "SlowDown") == .unavailable)
        #expect(kind(500, "InternalError") == .unavailable)
        #expect(kind(403, "SignatureDoesNotMatch") == .refused)
        #expect(kind(404, "NoSuchBucket") == .refused)
        #expect(kind(400, "BadDigest") == .mismatch)
        #expect(kind(200, "ChecksumMismatch") == .mismatch)
    }
}

@Suite("directory target")
struct DirectoryTargetTests {
    func scratch() throws -> String {
        let d = NSTemporaryDirectory() + "bodycam-dirtarget-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("copies under the key, verifies by reading back, never overwrites a different file")
    func copyVerifyConflict() throws {
        let d = try scratch()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let share = d + "/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        FileManager.default.createPlainFile(atPath: share + "/" + DirectoryTarget.markerName, contents: Data())
        let src = d + "/clip.mp4.age"
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
        FileManager.default.createPlainFile(atPath: src, contents: Data(bytes))
        let t = DirectoryTarget(root: share)
        try t.probe()
        let obj = LocalObject(path: src, key: "ev/cam-1/2026/11/27/clip.mp4.age", contentType: "application/octet-stream")
        var progressed: Int64 = 0
        let r = try t.send(obj, progress: { progressed += $0 }, isCancelled: { false })
        #expect(r.size == Int64(bytes.count) && progressed == r.size && !r.alreadyPresent)
        #expect(r.sha256 == Hex.string(SHA256.hash(data: Data(bytes))))
        #expect(FileManager.default.contents(atPath: share + "/" + obj.key) == Data(bytes))
        // No temporary file left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: share + "/ev/cam-1/2026/11/27") == ["clip.mp4.age"])
        // The share unmounted under us: the bare mount point (no marker) takes nothing.
        unlink(share + "/" + DirectoryTarget.markerName)
        let other = LocalObject(path: src, key: "ev/cam-1/2026/11/27/other.mp4.age", contentType: "application/octet-stream")
        #expect(throws: OffloadError.self) { try t.send(other, progress: { _ in }, isCancelled: { false }) }
        #expect(!FileManager.default.fileExists(atPath: share + "/" + other.key))
        FileManager.default.createPlainFile(atPath: share + "/" + DirectoryTarget.markerName, contents: Data())
        // Again: already there and identical → verified, nothing sent.
        let again = try t.send(obj, progress: { _ in }, isCancelled: { false })
        #expect(again.alreadyPresent && again.sentBytes == 0)
        // A different file under the same key is a conflict, and the share's copy is untouched.
        bytes[5] ^= 1
        FileManager.default.createPlainFile(atPath: src, contents: Data(bytes))
        #expect(throws: OffloadError.self) { try t.send(obj, progress: { _ in }, isCancelled: { false }) }
        #expect(FileManager.default.contents(atPath: share + "/" + obj.key) != Data(bytes))
        // A folder, or a link, where the copy should go: a conflict too, and left as it is.
        let folder = LocalObject(path: src, key: "ev/cam-1/2026/11/27/folder.mp4.age", contentType: "application/octet-stream")
        try FileManager.default.createDirectory(atPath: share + "/" + folder.key, withIntermediateDirectories: false)
        let link = LocalObject(path: src, key: "ev/cam-1/2026/11/27/link.mp4.age", contentType: "application/octet-stream")
        #expect(symlink(src, share + "/" + link.key) == 0)
        for o in [folder, link] {
            do {
                _ = try t.send(o, progress: { _ in }, isCancelled: { false })
                Issue.record("\(o.key) was sent over what is there")
            } catch {
                #expect(error.kind == .conflict && error.description.contains("not a regular file"), "\(error)")
            }
        }
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: share + "/" + folder.key, isDirectory: &isDir) && isDir.boolValue)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: share + "/" + link.key)) == src)
    }

    @Test("the read-back is not served from the pages the copy was written from")
    func readBackPastPageCache() throws {
        // Built on the package's folder, not /tmp, which may be a tmpfs (where RAM is the storage
        // and there is no cache to drop).
        let d = FileManager.default.currentDirectoryPath + "/.build/bodycam-dropcache-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: d) }
        // The file system holding it, from the longest mount point that contains it.
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        var fsType: String?
        var longest = -1
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            guard f.count > 2 else { continue }
            let point = f[1] == "/" ? "/" : f[1] + "/"
            if (d + "/").hasPrefix(point) && point.count > longest { (fsType, longest) = (f[2], point.count) }
        }
        guard let fsType, fsType != "tmpfs", fsType != "ramfs" else { return }
        let path = d + "/f"
        let size = 4 << 20
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        let bytes = [UInt8](repeating: 0x5a, count: size)
        #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, size) } == size)
        #expect(fsync(fd) == 0)
        close(fd)
        func residentPages() -> Int {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            defer { close(fd) }
            guard let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else { return -1 }
            defer { munmap(m, size) }
            var vec = [UInt8](repeating: 0, count: size / Int(getpagesize()))
            guard mincore(m, size, &vec) == 0 else { return -1 }
            return vec.reduce(0) { $0 + Int($1 & 1) }
        }
        let before = residentPages()
        let reader = try FileReader(path: path, errorKind: .unavailable)
        reader.dropCachedPages()
        let after = residentPages()
        #expect(before > 0 && after < before / 4, "resident pages before \(before), after \(after)")
        // Reading still gives the file.
        #expect(try reader.sha256() == Array(SHA256.hash(data: Data(bytes))))
    }

    @Test("a missing share is unavailable; cancelling leaves no partial file")
    func missingAndCancelled() throws {
        let d = try scratch()
        defer { try? FileManager.default.removeItem(atPath: d) }
        #expect(throws: OffloadError.self) { try DirectoryTarget(root: d + "/not-mounted").probe() }
        // An existing, writable folder without the base station's marker: an empty mount point.
        let mountPoint = d + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        do {
            try DirectoryTarget(root: mountPoint).probe()
            Issue.record("a folder without the marker was taken for the base station")
        } catch {
            #expect(error.kind == .unavailable && error.description.contains(DirectoryTarget.markerName), "\(error)")
        }
        FileManager.default.createPlainFile(atPath: d + "/" + DirectoryTarget.markerName, contents: Data())
        let src = d + "/c.mp4"
        FileManager.default.createPlainFile(atPath: src, contents: Data(count: 4 << 20))
        let t = DirectoryTarget(root: d)
        var calls = 0
        do {
            _ = try t.send(LocalObject(path: src, key: "k/c.mp4", contentType: "video/mp4"), progress: { _ in calls += 1 },
                           isCancelled: { calls >= 1 })
            Issue.record("not cancelled")
        } catch {
            #expect(error.kind == .cancelled)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: d + "/k").isEmpty)
    }
}
