import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Synchronization

/// One HTTP request. `body` is sent as is (S3 parts are read from the clip file one at a time).
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    public var headers: [String: String]
    public var body: Data?

    public init(method: String, url: URL, headers: [String: String] = [:], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    /// The body, unless a sink consumed it.
    public var body: Data

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request got no answer.
public enum TransportError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Cancelled on purpose (undocked, shutting down).
    case cancelled
    /// No byte moved for the stall timeout.
    case stalled(seconds: Double)
    /// The answer's body is larger than the caller allows (a hostile or broken server).
    case bodyTooLarge(limit: Int)
    /// The answer is not HTTP (a broken or hostile server, or something else on the port).
    case malformed(String)
    case connection(String)

    public var description: String {
        switch self {
        case .cancelled: return "cancelled"
        case .stalled(let s): return "no progress for \(Int(s)) s (timed out)"
        case .bodyTooLarge(let l): return "answer body larger than \(l) bytes"
        case .malformed(let m): return "unreadable answer (\(m))"
        case .connection(let m): return m
        }
    }
}

/// Synchronous HTTP for the offload thread, on AsyncHTTPClient (SwiftNIO): each call blocks its
/// caller (a dedicated thread, never the cooperative pool or an event loop). A request that moves
/// no byte for `stallTimeout` seconds fails (NIO's read and write timeouts plus a watchdog over
/// the whole exchange), and `cancelAll()` stops every request in flight at once (undocking).
/// Bodies go out as one buffer each: an 8 MiB part costs a handful of syscalls.
public final class HTTPTransport: @unchecked Sendable {
    public let stallTimeout: Double
    private let client: HTTPClient
    private let inflight = Mutex<[ObjectIdentifier: Exchange]>([:])

    final class Exchange: @unchecked Sendable {
        let lock = NSLock()
        var task: HTTPClient.Task<HTTPResponse>?
        var lastProgress = DispatchTime.now().uptimeNanoseconds
        var reason: TransportError?

        func touch() { lock.withLock { lastProgress = DispatchTime.now().uptimeNanoseconds } }
    }

    /// `caFile`: a PEM bundle to trust instead of the system's CAs (an https base station with its
    /// own CA).
    public init(stallTimeout: Double, caFile: String? = nil) {
        self.stallTimeout = stallTimeout
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        let stall = TimeAmount.milliseconds(Int64(stallTimeout * 1000))
        var timeout = HTTPClient.Configuration.Timeout(connect: .seconds(10), read: stall)
        timeout.write = stall
        var config = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: timeout, proxy: nil,
            ignoreUncleanSSLShutdown: false, decompression: .disabled)
        config.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    deinit { try? client.syncShutdown() }

    /// Set by `cancelAll()` until `resume()`: a request that starts meanwhile fails at once.
    private let closed = Mutex(false)

    /// Cancels every request in flight, and every request started until `resume()`; they throw
    /// `.cancelled`.
    public func cancelAll() {
        closed.withLock { $0 = true }
        let all = inflight.withLock { Array($0.values) }
        for e in all {
            let task = e.lock.withLock { () -> HTTPClient.Task<HTTPResponse>? in
                if e.reason == nil { e.reason = .cancelled }
                return e.task
            }
            task?.cancel()
        }
    }

    /// Requests may start again (docked again).
    public func resume() { closed.withLock { $0 = false } }

    /// Sends `request` and waits for the whole answer. `sink` receives the body in pieces instead
    /// of collecting it (a read-back of a large object); either way at most `bodyLimit` bytes.
    public func send(
        _ request: HTTPRequest, bodyLimit: Int = 4 << 20, sink: (@Sendable (Data) -> Void)? = nil
    ) throws(TransportError) -> HTTPResponse {
        var headers = HTTPHeaders()
        for (k, v) in request.headers { headers.add(name: k, value: v) }
        let req: HTTPClient.Request
        do {
            req = try HTTPClient.Request(
                url: request.url, method: HTTPMethod(rawValue: request.method), headers: headers,
                body: request.body.map { $0.isEmpty ? .bytes($0) : Self.chunked($0) })
        } catch {
            throw .connection("bad request: \(error)")
        }
        let exchange = Exchange()
        let delegate = Collector(exchange: exchange, limit: bodyLimit, sink: sink)
        let id = ObjectIdentifier(exchange)
        inflight.withLock { $0[id] = exchange }
        defer { _ = inflight.withLock { $0.removeValue(forKey: id) } }
        // After registering: a cancelAll() from here on reaches this request.
        if closed.withLock({ $0 }) { throw .cancelled }
        // A ceiling for the whole exchange, however it trickles: the stall timeout four times
        // over plus the body at 32 KB/s.
        let bytes = Double(request.body?.count ?? 0) + Double(sink == nil ? 0 : bodyLimit)
        let deadline = NIODeadline.now() + .milliseconds(Int64((stallTimeout * 4 + bytes / 32_000) * 1000))
        let task = client.execute(request: req, delegate: delegate, deadline: deadline)
        let cancelledAlready = exchange.lock.withLock { () -> Bool in
            exchange.task = task
            return exchange.reason != nil
        }
        if cancelledAlready { task.cancel() }
        // Watchdog: NIO's timeouts cover idle reads and writes; this covers everything else.
        let done = DispatchSemaphore(value: 0)
        task.futureResult.whenComplete { _ in done.signal() }
        let stallNanos = UInt64(stallTimeout * 1e9)
        while done.wait(timeout: .now() + .milliseconds(250)) == .timedOut {
            let stalled = exchange.lock.withLock { () -> Bool in
                guard exchange.reason == nil, DispatchTime.now().uptimeNanoseconds - exchange.lastProgress > stallNanos
                else { return false }
                exchange.reason = .stalled(seconds: stallTimeout)
                return true
            }
            if stalled { task.cancel() }
        }
        do {
            return try task.futureResult.wait()
        } catch {
            if let reason = exchange.lock.withLock({ exchange.reason }) { throw reason }
            if let e = error as? HTTPClientError {
                if e == .readTimeout || e == .writeTimeout || e == .deadlineExceeded { throw .stalled(seconds: stallTimeout) }
                if e == .cancelled { throw .cancelled }
            }
            if error is HTTPParserError { throw .malformed("\(error)") }
            throw .connection("\(error)")
        }
    }

    /// The body in 256 KiB writes, each one progress for the watchdog (one 8 MiB write would show
    /// no progress for its whole duration on a slow link).
    static func chunked(_ data: Data) -> HTTPClient.Body {
        .stream(contentLength: Int64(data.count)) { writer in
            let chunk = 256 << 10
            @Sendable func write(from offset: Int) -> EventLoopFuture<Void> {
                let end = min(offset + chunk, data.count)
                let piece = ByteBuffer(data: data[data.startIndex + offset..<data.startIndex + end])
                let written = writer.write(.byteBuffer(piece))
                return end >= data.count ? written : written.flatMap { write(from: end) }
            }
            return write(from: 0)
        }
    }

    /// Collects the answer (or streams it to a sink), counting progress for the watchdog.
    final class Collector: HTTPClientResponseDelegate, @unchecked Sendable {
        typealias Response = HTTPResponse
        let exchange: Exchange
        let limit: Int
        let sink: (@Sendable (Data) -> Void)?
        var status = 0
        var headers: [String: String] = [:]
        var body = Data()

        init(exchange: Exchange, limit: Int, sink: (@Sendable (Data) -> Void)?) {
            self.exchange = exchange
            self.limit = limit
            self.sink = sink
        }

        func didSendRequestPart(task: HTTPClient.Task<HTTPResponse>, _ part: IOData) { exchange.touch() }

        func didReceiveHead(task: HTTPClient.Task<HTTPResponse>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            exchange.touch()
            status = Int(head.status.code)
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            return task.eventLoop.makeSucceededFuture(())
        }

        var received = 0

        func didReceiveBodyPart(task: HTTPClient.Task<HTTPResponse>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            exchange.touch()
            let data = Data(buffer: buffer)
            received += data.count
            if received > limit {
                exchange.lock.withLock { if exchange.reason == nil { exchange.reason = .bodyTooLarge(limit: limit) } }
                return task.eventLoop.makeFailedFuture(TransportError.bodyTooLarge(limit: limit))
            }
            if let sink {
                sink(data)
            } else if body.count + data.count > limit {
                exchange.lock.withLock { if exchange.reason == nil { exchange.reason = .bodyTooLarge(limit: limit) } }
                return task.eventLoop.makeFailedFuture(TransportError.bodyTooLarge(limit: limit))
            } else {
                body.append(data)
            }
            return task.eventLoop.makeSucceededFuture(())
        }

        func didFinishRequest(task: HTTPClient.Task<HTTPResponse>) throws -> HTTPResponse {
            HTTPResponse(status: status, headers: headers, body: body)
        }
    }
}
