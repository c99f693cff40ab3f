import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Test tools installed by `.ci/setup` (SeaweedFS, the aws CLI) live in this virtualenv.
enum TestTools {
    static var venvBin: String {
        (ProcessInfo.processInfo.environment["BODYCAM_TOOLS_DIR"] ?? "/opt/bodycam-ci") + "/venv/bin"
    }

    static var repository: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }

    static func script(_ name: String) -> String { repository + "/Tests/tools/" + name }
}

/// A helper process that prints one JSON line when ready and stops when its stdin closes.
final class ToolProcess {
    let process = Process()
    let stdin = Pipe()
    let info: [String: Any]
    let logPath: String

    init(_ args: [String], log: String, timeout: Double = 60) throws {
        logPath = log
        _ = FileManager.default.createPlainFile(atPath: log, contents: nil)
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: try Shell.which("python3"))
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = TestTools.venvBin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        process.environment = env
        process.standardInput = stdin
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        // The first line, with a deadline (a hung start must fail the test, not hang it).
        let reader = out.fileHandleForReading
        nonisolated(unsafe) var line = Data()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            while true {
                let d = reader.readData(ofLength: 1)
                if d.isEmpty || d == Data("\n".utf8) { break }
                line.append(d)
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success,
            let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any]
        else {
            kill(process.processIdentifier, SIGKILL)
            let log = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestFailure("\(args.joined(separator: " ")) did not start:\n\(log.suffix(3000))")
        }
        info = obj
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { stop() }
}

/// A real SeaweedFS on 127.0.0.1 (Tests/tools/basestation.py), bucket with Object Lock.
final class BaseStation {
    let tool: ToolProcess
    let dir: TemporaryDirectory
    var endpoint: String { tool.info["endpoint"] as! String }
    var accessKey: String { tool.info["access_key"] as! String }
    var secretKey: String { tool.info["secret_key"] as! String }
    var port: Int { Int(endpoint.split(separator: ":").last!)! }

    init(buckets: [String] = ["cam1"]) throws {
        dir = TemporaryDirectory("bodycam-s3")
        var args = [TestTools.script("basestation.py"), "--dir", dir.path, "--object-lock"]
        for b in buckets { args += ["--bucket", b] }
        tool = try ToolProcess(args, log: dir.path + "/basestation.log")
    }

    /// `aws` (a real third-party S3 client) against this store.
    func aws(_ args: [String]) throws -> CommandResult {
        try Shell.run(
            TestTools.venvBin + "/aws", ["--endpoint-url", endpoint, "--region", "us-east-1"] + args,
            environment: [
                "AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            ])
    }

    /// Every version of every object under `prefix`: key → number of versions.
    func versions(bucket: String = "cam1", prefix: String = "") throws -> [String: Int] {
        let r = try aws(["s3api", "list-object-versions", "--bucket", bucket, "--prefix", prefix, "--output", "json"])
        guard r.status == 0 else { throw TestFailure("list-object-versions: \(r.stderr)") }
        guard !r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
            let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        else { return [:] }
        var out: [String: Int] = [:]
        for v in (obj["Versions"] as? [[String: Any]] ?? []) {
            if let k = v["Key"] as? String { out[k, default: 0] += 1 }
        }
        return out
    }

    /// Downloads one object with the aws CLI.
    func download(_ key: String, to path: String, bucket: String = "cam1") throws -> Data {
        let r = try aws(["s3", "cp", "--only-show-errors", "s3://\(bucket)/\(key)", path])
        guard r.status == 0, let d = FileManager.default.contents(atPath: path) else {
            throw TestFailure("aws s3 cp s3://\(bucket)/\(key): \(r.stderr)")
        }
        return d
    }

    func credentialsFile(in dir: String, secret: String? = nil, mode: mode_t = 0o600) -> String {
        let path = dir + "/s3.toml"
        _ = FileManager.default.createFile(
            atPath: path, contents: Data("access_key_id = \"\(accessKey)\"\nsecret_access_key = \"\(secret ?? secretKey)\"\n".utf8))
        chmod(path, mode)
        return path
    }
}

/// Our fault-injecting proxy (Tests/tools/faultproxy.py) between the device and the store.
final class FaultProxy {
    let tool: ToolProcess
    var port: Int { tool.info["port"] as! Int }
    var controlPort: Int { tool.info["control_port"] as! Int }
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(upstreamPort: Int, log: String, seed: Int = 1) throws {
        tool = try ToolProcess(
            [TestTools.script("faultproxy.py"), "--upstream", "127.0.0.1:\(upstreamPort)", "--seed", "\(seed)"], log: log)
    }

    @discardableResult
    func control(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any? {
        var args = ["-s", "-f", "-X", method, "http://127.0.0.1:\(controlPort)\(path)"]
        if let body {
            args += ["-H", "content-type: application/json", "--data-binary",
                     String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)]
        }
        let r = try Shell.run("curl", args)
        guard r.status == 0 else { throw TestFailure("proxy control \(method) \(path): \(r.status) \(r.stderr)") }
        return try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func rules(_ rules: [[String: Any]]) throws { try control("POST", "/rules", rules) }
    func random(probability: Double, kinds: [[String: Any]], seed: Int) throws {
        try control("POST", "/random", ["probability": probability, "kinds": kinds, "seed": seed] as [String: Any])
    }
    func reset() throws { try control("POST", "/reset") }
    func log() throws -> [[String: Any]] { (try control("GET", "/log") as? [[String: Any]]) ?? [] }
}

/// Audit-log lines of a data directory, in order (all segments).
func auditLines(_ data: String) throws -> [[String: Any]] {
    let dir = data + "/audit"
    var out: [[String: Any]] = []
    for name in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".jsonl") }).sorted() {
        let text = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
        for line in text.split(separator: "\n") {
            if let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { out.append(obj) }
        }
    }
    return out.sorted { ($0["seq"] as? Int ?? 0) < ($1["seq"] as? Int ?? 0) }
}

func sha256Hex(_ path: String) throws -> String {
    let r = try Shell.run("sha256sum", [path])
    guard r.status == 0 else { throw TestFailure("sha256sum \(path): \(r.stderr)") }
    return String(r.stdout.prefix(64))
}
