import BodycamAdapters
import BodycamCore
import BodycamEvidence
import BodycamOffload
import Foundation
import Logging

/// `bodycam offload`: send everything pending now, as if docked, without recording (a dock
/// script, a technician's laptop, the upload benchmark). Uses the same queue, target, state and
/// audit log as `run`, and the data directory's lock, so it never runs beside a recorder.
public enum OffloadCommand {
    public static func run(config path: String?, data root: String, attempts: Int) -> Int32 {
        let logger = Logger(label: "bodycam")
        let config: BodycamConfig
        do {
            config = try ConfigLoader.loadConfig(path)
        } catch {
            Posix.printError("bodycam: \(error.description)\n")
            return ExitCode.config
        }
        guard let settings = config.offload else {
            Posix.printError("bodycam: no [offload] in the configuration: nowhere to send clips\n")
            return ExitCode.config
        }
        let data = DataDirectory(root)
        let lockFD: Int32
        do {
            try data.prepare()
            lockFD = try data.lock()
        } catch {
            Posix.printError("bodycam: data directory \(data.root): \(error)\n")
            return ExitCode.failure
        }
        defer { Syscall.close(lockFD) }
        let target: any OffloadTarget
        do {
            target = try Offloader.makeTarget(settings, data: data)
        } catch {
            Posix.printError("bodycam: \(error.description)\n")
            return ExitCode.config
        }
        let keys = data.root + "/keys"
        guard DeviceIdentity.exists(in: keys), let identity = try? DeviceIdentity.load(directory: keys) else {
            Posix.printError("bodycam: no device identity in \(keys): nothing was recorded with this data directory\n")
            return ExitCode.failure
        }
        let deviceID = config.deviceID ?? DataDirectory.defaultDeviceID()
        let audit: AuditLog
        do {
            audit = try AuditLog(directory: data.root + "/audit", deviceID: deviceID, identity: identity, unixSeconds: SystemClock.realtime(), reserve: Posix.reserveSpace)
        } catch {
            Posix.printError("bodycam: audit log: \(error)\n")
            return ExitCode.failure
        }
        let box = AuditBox(audit)
        let sink: AuditSink = { event, details, _ in
            box.lock.withLock {
                let audit = box.audit
                do {
                    try audit.append(
                        event: event, details: details, monotonic: SystemClock.monotonic(), unixSeconds: SystemClock.realtime(),
                        clockTrusted: SystemClock.isSynchronized())
                    return true
                } catch {
                    logger.error("audit log not written: \(error)")
                    return false
                }
            }
        }
        _ = sink("offload_command", ["target": target.name], true)
        // A clip cut short by a power cut has a journal and no manifest yet, and the queue only
        // takes finished clips: finish it first, exactly as the next `run` would.
        let recovered = Recovery.recoverInterrupted(data, identity: identity, logger: logger)
        let repaired = recovered.filter { !$0.leftoverOnly }.count
        if repaired > 0 { logger.warning("recovered \(repaired) interrupted clip(s)") }
        for r in recovered { _ = sink(r.auditEvent, r.auditDetails, true) }
        let offloader = Offloader(
            settings: settings, target: target, data: data, deviceID: deviceID, logger: logger, audit: sink,
            indicate: { _ in })
        let left = offloader.drain(attempts: attempts)
        let status = offloader.statusObject()
        Posix.printOut(
            "offloaded \(status["uploaded"] ?? 0) clip(s) and \(status["uploaded_audit_segments"] ?? 0) audit segment(s), \(status["bytes"] ?? 0) bytes sent to \(target.name)\n")
        if !left.isEmpty {
            Posix.printError("bodycam: \(left.count) item(s) not offloaded: \(left.joined(separator: ", "))\n")
            if let e = status["last_error"] as? String { Posix.printError("bodycam: last error: \(e)\n") }
        }
        // Clips the queue cannot take are not "nothing left": a dock script must hear of them.
        let blocked = offloader.blockedClips()
        if !blocked.isEmpty {
            Posix.printError("bodycam: \(blocked.count) clip(s) cannot be offloaded and stay on the device:\n")
            for id in blocked.keys.sorted() { Posix.printError("  \(id): \(blocked[id]!)\n") }
        }
        return left.isEmpty && blocked.isEmpty ? ExitCode.success : ExitCode.failure
    }
}

/// The audit log with the lock that serialises its writers (it has one owner at a time).
private final class AuditBox: @unchecked Sendable {
    let audit: AuditLog
    let lock = NSLock()
    init(_ audit: AuditLog) { self.audit = audit }
}
