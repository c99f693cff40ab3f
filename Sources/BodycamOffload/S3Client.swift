import Crypto
public import Foundation
import Synchronization

/// An S3 answer that is not what was asked for, named for the log and `ctl status`.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    /// HTTP status, nil when no answer came.
    public var status: Int?
    /// S3's error code (`SignatureDoesNotMatch`, `NoSuchBucket`, …) or our own name for the problem.
    public var code: String
    public var message: String
    public var operation: String

    public init(status: Int?, code: String, message: String, operation: String) {
        self.status = status
        self.code = code
        self.message = message
        self.operation = operation
    }

    public var description: String {
        var s = "\(operation): "
        if let status { s += "HTTP \(status) " }
        s += code
        if !message.isEmpty { s += " (\(message))" }
        return s
    }

    /// Cancelled by an undock or shutdown: not a failure of the store.
    public var isCancellation: Bool { code == "Cancelled" }
}

/// The object as the store describes it.
public struct S3ObjectInfo: Sendable, Equatable {
    public var size: Int64
    /// `x-amz-checksum-sha256` as the store gives it: base64, with `-N` for a multipart composite.
    public var checksumSHA256: String?
    public var etag: String?
}

public struct S3Part: Sendable, Equatable {
    public var number: Int
    public var etag: String
    public var size: Int64
}

public struct S3Upload: Sendable, Equatable {
    public var key: String
    public var uploadID: String
    public var initiated: String
}

/// A path-style S3 client for the calls offload needs, signed with SigV4, every body checked with
/// `x-amz-checksum-sha256`. Synchronous: it runs on the offload thread.
public final class S3Client: @unchecked Sendable {
    public let endpoint: String
    public let bucket: String
    public let signer: SigV4Signer
    public let transport: HTTPTransport
    private let host: String

    /// `endpoint`: `http(s)://host[:port]` (no path).
    public init(endpoint: String, bucket: String, signer: SigV4Signer, transport: HTTPTransport) throws(S3Error) {
        var e = endpoint
        while e.hasSuffix("/") { e.removeLast() }
        guard let url = URL(string: e), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let h = url.host, url.path.isEmpty || url.path == "/"
        else {
            throw S3Error(status: nil, code: "BadEndpoint", message: "\(endpoint) is not http(s)://host[:port]", operation: "config")
        }
        self.endpoint = e
        self.bucket = bucket
        self.signer = signer
        self.transport = transport
        host = url.port.map { "\(h):\($0)" } ?? h
    }

    public static func base64(_ digest: some Sequence<UInt8>) -> String { Data(digest).base64EncodedString() }

    // MARK: - Calls

    /// Is the bucket there and are we allowed in? (HeadBucket answers without a body, so a 403 or
    /// 404 is named by its status alone.)
    public func headBucket() throws(S3Error) {
        let r = try call("HeadBucket", "HEAD", key: nil)
        guard r.status == 200 else {
            // HEAD answers carry no body: ask again with a GET to learn S3's error code
            // (SignatureDoesNotMatch, InvalidAccessKeyId, NoSuchBucket, …).
            if let g = try? call("HeadBucket", "GET", key: nil, query: [("list-type", "2"), ("max-keys", "0")]),
                g.status == r.status, let e = S3XML(g.bodyText).first("Error"), let code = e.string("Code")
            {
                throw S3Error(status: r.status, code: code, message: e.string("Message") ?? "bucket \(bucket)", operation: "HeadBucket")
            }
            let code = r.status == 404 ? "NoSuchBucket" : r.status == 403 ? "AccessDenied" : "Unexpected"
            throw S3Error(status: r.status, code: code, message: "bucket \(bucket)", operation: "HeadBucket")
        }
    }

    /// The object's size and checksum, or nil when there is none.
    public func head(_ key: String) throws(S3Error) -> S3ObjectInfo? {
        let r = try call("HeadObject", "HEAD", key: key, headers: ["x-amz-checksum-mode": "ENABLED"])
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw error("HeadObject", r) }
        guard let length = r.header("content-length").flatMap({ Int64($0) }) else {
            throw S3Error(status: r.status, code: "BadAnswer", message: "no Content-Length", operation: "HeadObject")
        }
        return S3ObjectInfo(size: length, checksumSHA256: r.header("x-amz-checksum-sha256"), etag: r.header("etag"))
    }

    public enum PutResult: Sendable, Equatable { case created, alreadyExists }

    /// PutObject that never overwrites (`If-None-Match: *`): `.alreadyExists` when the key is taken.
    public func put(_ key: String, data: Data, contentType: String) throws(S3Error) -> PutResult {
        let digest = Array(SHA256.hash(data: data))
        let r = try call(
            "PutObject", "PUT", key: key,
            headers: [
                "x-amz-checksum-sha256": Self.base64(digest), "if-none-match": "*", "content-type": contentType,
                "content-length": "\(data.count)",
            ], body: data, payloadHash: SigV4Signer.hex(digest))
        if r.status == 412 { return .alreadyExists }
        guard r.status == 200 else { throw error("PutObject", r) }
        if let sent = r.header("x-amz-checksum-sha256"), sent != Self.base64(digest) {
            throw S3Error(status: r.status, code: "ChecksumMismatch", message: "store answered \(sent)", operation: "PutObject")
        }
        return .created
    }

    public func createMultipartUpload(_ key: String, contentType: String) throws(S3Error) -> String {
        let r = try call(
            "CreateMultipartUpload", "POST", key: key, query: [("uploads", "")],
            headers: ["x-amz-checksum-algorithm": "SHA256", "content-type": contentType])
        guard r.status == 200 else { throw error("CreateMultipartUpload", r) }
        guard let id = S3XML(r.bodyText).string("UploadId"), !id.isEmpty else {
            throw garbage("CreateMultipartUpload", r)
        }
        return id
    }

    /// Multipart uploads in progress for exactly `key`, oldest first.
    public func listMultipartUploads(key: String) throws(S3Error) -> [S3Upload] {
        let r = try call("ListMultipartUploads", "GET", key: nil, query: [("uploads", ""), ("prefix", key)])
        guard r.status == 200 else { throw error("ListMultipartUploads", r) }
        let xml = S3XML(r.bodyText)
        guard xml.first("ListMultipartUploadsResult") != nil else { throw garbage("ListMultipartUploads", r) }
        return xml.all("Upload").compactMap { u in
            guard let k = u.string("Key"), k == key, let id = u.string("UploadId") else { return nil }
            return S3Upload(key: k, uploadID: id, initiated: u.string("Initiated") ?? "")
        }.sorted { $0.initiated < $1.initiated }
    }

    /// The parts stored for an upload; nil when the store knows no such upload (completed or aborted).
    public func listParts(key: String, uploadID: String) throws(S3Error) -> [S3Part]? {
        var parts: [S3Part] = []
        var marker = 0
        for _ in 0..<10_000 {
            var q = [("uploadId", uploadID), ("max-parts", "1000")]
            if marker > 0 { q.append(("part-number-marker", "\(marker)")) }
            let r = try call("ListParts", "GET", key: key, query: q)
            if r.status == 404 { return nil }
            guard r.status == 200 else { throw error("ListParts", r) }
            let xml = S3XML(r.bodyText)
            guard xml.first("ListPartsResult") != nil else { throw garbage("ListParts", r) }
            for p in xml.all("Part") {
                guard let n = p.string("PartNumber").flatMap({ Int($0) }), let size = p.string("Size").flatMap({ Int64($0) })
                else { throw garbage("ListParts", r) }
                parts.append(S3Part(number: n, etag: p.string("ETag") ?? "", size: size))
            }
            guard xml.string("IsTruncated") == "true" else { break }
            guard let next = xml.string("NextPartNumberMarker").flatMap({ Int($0) }), next > marker else {
                throw garbage("ListParts", r)
            }
            marker = next
        }
        return parts
    }

    /// Uploads one part, its SHA-256 checked by the store; returns its ETag.
    public func uploadPart(key: String, uploadID: String, number: Int, data: Data, sha256: [UInt8]) throws(S3Error) -> String {
        let r = try call(
            "UploadPart", "PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
            headers: ["x-amz-checksum-sha256": Self.base64(sha256), "content-length": "\(data.count)"], body: data,
            payloadHash: SigV4Signer.hex(sha256))
        guard r.status == 200 else { throw error("UploadPart", r) }
        if let sent = r.header("x-amz-checksum-sha256"), sent != Self.base64(sha256) {
            throw S3Error(status: 200, code: "ChecksumMismatch", message: "part \(number): store answered \(sent)", operation: "UploadPart")
        }
        guard let etag = r.header("etag"), !etag.isEmpty else { throw garbage("UploadPart", r) }
        return etag
    }

    public enum CompleteResult: Sendable, Equatable { case completed, alreadyExists, noSuchUpload }

    /// Completes an upload without ever overwriting (`If-None-Match: *`).
    public func completeMultipartUpload(
        key: String, uploadID: String, parts: [(number: Int, etag: String, sha256: [UInt8])]
    ) throws(S3Error) -> CompleteResult {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for p in parts {
            xml += "<Part><PartNumber>\(p.number)</PartNumber><ETag>\(S3XML.escape(p.etag))</ETag>"
            xml += "<ChecksumSHA256>\(Self.base64(p.sha256))</ChecksumSHA256></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let body = Data(xml.utf8)
        let digest = Array(SHA256.hash(data: body))
        let r = try call(
            "CompleteMultipartUpload", "POST", key: key, query: [("uploadId", uploadID)],
            // (No x-amz-checksum-sha256 header here: on Complete it would claim the whole
            // object's checksum, not the XML's. The payload hash signs the XML.)
            headers: ["if-none-match": "*", "content-type": "application/xml", "content-length": "\(body.count)"],
            body: body, payloadHash: SigV4Signer.hex(digest))
        if r.status == 412 { return .alreadyExists }
        if r.status == 404 && S3XML(r.bodyText).string("Code") == "NoSuchUpload" { return .noSuchUpload }
        guard r.status == 200 else { throw error("CompleteMultipartUpload", r) }
        // S3 may answer 200 and put an error in the body.
        let answer = S3XML(r.bodyText)
        if let code = answer.first("Error")?.string("Code") {
            throw S3Error(status: 200, code: code, message: answer.string("Message") ?? "", operation: "CompleteMultipartUpload")
        }
        guard answer.first("CompleteMultipartUploadResult") != nil else { throw garbage("CompleteMultipartUpload", r) }
        return .completed
    }

    public func abortMultipartUpload(key: String, uploadID: String) throws(S3Error) {
        let r = try call("AbortMultipartUpload", "DELETE", key: key, query: [("uploadId", uploadID)])
        guard r.status == 204 || r.status == 200 || r.status == 404 else { throw error("AbortMultipartUpload", r) }
    }

    /// Reads the object back and hashes it: for stores that give no checksum. More than
    /// `expectedSize` bytes is an error (a store that never stops talking).
    public func readBack(_ key: String, expectedSize: Int64) throws(S3Error) -> (size: Int64, sha256: [UInt8]) {
        final class Hasher: @unchecked Sendable {
            var sha = SHA256()
            var size: Int64 = 0
        }
        let h = Hasher()
        let r = try call("GetObject", "GET", key: key, bodyLimit: Int(expectedSize) + 1, sink: { d in
            h.sha.update(data: d)
            h.size += Int64(d.count)
        })
        guard r.status == 200 else {
            throw S3Error(status: r.status, code: r.status == 404 ? "NoSuchKey" : "Unexpected", message: key, operation: "GetObject")
        }
        return (h.size, Array(h.sha.finalize()))
    }

    // MARK: - Plumbing

    private func call(
        _ operation: String, _ method: String, key: String?, query: [(String, String)] = [],
        headers: [String: String] = [:], body: Data? = nil, payloadHash: String = SigV4Signer.emptyPayloadHash,
        bodyLimit: Int = 4 << 20, sink: (@Sendable (Data) -> Void)? = nil
    ) throws(S3Error) -> HTTPResponse {
        var path = "/" + bucket
        if let key { path += "/" + key }
        let encodedPath = SigV4Signer.uriEncode(path, keepSlash: true)
        let queryString = SigV4Signer.canonicalQuery(query)
        let urlString = endpoint + encodedPath + (queryString.isEmpty ? "" : "?" + queryString)
        guard let url = URL(string: urlString) else {
            throw S3Error(status: nil, code: "BadKey", message: urlString, operation: operation)
        }
        var h = headers
        h["host"] = host
        // The signer wants every header it signs; Content-Length is set by the transport, unsigned.
        h.removeValue(forKey: "content-length")
        for attempt in 0..<2 {
            var request = HTTPRequest(method: method, url: url, headers: h, body: body)
            let now = Date().addingTimeInterval(clockOffset.withLock { $0 })
            for (k, v) in signer.sign(method: method, path: path, query: query, headers: h, payloadHash: payloadHash, date: now) {
                request.headers[k] = v
            }
            // The Host header stays as signed (with its port): HTTP clients drop a default port.
            let response = try send(request, operation: operation, bodyLimit: bodyLimit, sink: sink)
            // A camera's clock may be far off when it docks (no time source in the field); SigV4
            // allows 15 minutes. Sign with the store's clock instead and try once more.
            if attempt == 0, response.status == 403, S3XML(response.bodyText).string("Code") == "RequestTimeTooSkewed",
                let date = response.header("date").flatMap(Self.httpDate)
            {
                clockOffset.withLock { $0 = date.timeIntervalSince(Date()) }
                continue
            }
            return response
        }
        throw S3Error(status: 403, code: "RequestTimeTooSkewed", message: "even with the store's clock", operation: operation)
    }

    /// Seconds to add to the device clock when signing (learnt from RequestTimeTooSkewed).
    private let clockOffset = Mutex<Double>(0)

    static func httpDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s)
    }

    private func send(
        _ request: HTTPRequest, operation: String, bodyLimit: Int, sink: (@Sendable (Data) -> Void)?
    ) throws(S3Error) -> HTTPResponse {
        do {
            return try transport.send(request, bodyLimit: bodyLimit, sink: sink)
        } catch {
            switch error {
            case .cancelled: throw S3Error(status: nil, code: "Cancelled", message: "", operation: operation)
            case .malformed(let m):
                throw S3Error(status: nil, code: "GarbageAnswer", message: "unreadable answer: \(m)", operation: operation)
            case .bodyTooLarge(let limit):
                throw S3Error(status: nil, code: "GarbageAnswer", message: "unreadable answer: more than \(limit) bytes", operation: operation)
            default: throw S3Error(status: nil, code: "NoAnswer", message: error.description, operation: operation)
            }
        }
    }

    private func error(_ operation: String, _ r: HTTPResponse) -> S3Error {
        let xml = S3XML(r.bodyText)
        if let e = xml.first("Error"), let code = e.string("Code") {
            return S3Error(status: r.status, code: code, message: e.string("Message") ?? "", operation: operation)
        }
        let snippet = r.bodyText.prefix(80).filter { !$0.isNewline }
        return S3Error(status: r.status, code: "Unexpected", message: snippet.isEmpty ? "" : "answer: \(snippet)", operation: operation)
    }

    private func garbage(_ operation: String, _ r: HTTPResponse) -> S3Error {
        let snippet = r.bodyText.prefix(60).filter { !$0.isNewline }
        return S3Error(status: r.status, code: "GarbageAnswer", message: "unreadable answer: \(snippet)", operation: operation)
    }
}
