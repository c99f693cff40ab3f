import BodycamAdapters
import BodycamCore
import BodycamEvidence
import Crypto
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The device's evidence keys and logs for a run: its signing identity (`DATA/keys/device.key`,
/// created on first start), the recipient clips are sealed to, and the audit log.
final class Evidence: @unchecked Sendable {
    let identity: DeviceIdentity
    /// nil: clips are written as plain MP4 (`[sealing] enabled = false`).
    let recipient: String?
    let audit: AuditLog
    let deviceID: String
    private let lock = NSLock()

    private init(identity: DeviceIdentity, recipient: String?, audit: AuditLog, deviceID: String) {
        self.identity = identity
        self.recipient = recipient
        self.audit = audit
        self.deviceID = deviceID
    }

    static func prepare(data: DataDirectory, board: BoardDescription, config: BodycamConfig, options: RunOptions,
                        logger: Logger) throws -> Evidence
    {
        let keys = data.root + "/keys"
        let identity: DeviceIdentity
        if DeviceIdentity.exists(in: keys) {
            do {
                identity = try DeviceIdentity.load(directory: keys)
            } catch {
                throw ConfigurationFailure(description: error.description)
            }
        } else {
            identity = DeviceIdentity.generate()
            try identity.write(to: keys)
            logger.notice("created the device identity in \(keys)/device.key", metadata: ["public_key": "\(identity.publicKey.string)"])
        }
        logger.notice("device signing key \(identity.publicKey.string) (fingerprint \(identity.publicKey.fingerprint))")

        var recipient: String?
        if !config.sealingEnabled {
            logger.warning("sealing is off ([sealing] enabled = false): clips are plain MP4, readable by anyone with the device")
        } else if let r = config.sealingRecipient {
            recipient = r
            logger.notice("sealing clips to \(r)")
        } else if board.name == "sim" {
            // A demo agency key so the simulated board shows the whole chain. The private key
            // sits on the "device": fine for a demo, never for evidence.
            let path = keys + "/demo-agency.key"
            let agency: AgeIdentity
            if let existing = try? AgeIdentity.readFile(atPath: path).first {
                agency = existing
            } else {
                agency = AgeIdentity.generate()
                try agency.writeFile(atPath: path)
                try PublicFile.write(agency.recipient.string + "\n", to: path + ".pub")
            }
            recipient = agency.recipient.string
            logger.warning(
                "sim board without [sealing] recipient: sealing to the DEMO agency key \(path) (\(agency.recipient.string)); not for evidence")
        } else {
            throw ConfigurationFailure(
                description: "no [sealing] recipient: set recipient = \"age1…\" (the agency's key) or enabled = false")
        }

        let deviceID = config.deviceID ?? DataDirectory.defaultDeviceID()
        let unix = SystemClock.realtime()
        let audit: AuditLog
        do {
            audit = try AuditLog(directory: data.root + "/audit", deviceID: deviceID, identity: identity, unixSeconds: unix, reserve: Posix.reserveSpace)
        } catch {
            // Not a configuration problem (exit 78 would stop systemd from retrying): exit 1.
            throw Hardware.StartFailure(description: "audit log: \(error)")
        }
        let e = Evidence(identity: identity, recipient: recipient, audit: audit, deviceID: deviceID)
        e.record("boot", [
            "board": board.name, "pid": "\(getpid())", "data": data.root, "sealed": recipient == nil ? "no" : "yes",
            "recipient": recipient ?? "",
        ])
        var hashes: [String: String] = [:]
        if let path = try? Board.locateForHash(options.board), let d = FileManager.default.contents(atPath: path) {
            hashes["board_sha256"] = Hex.string(SHA256.hash(data: d))
            hashes["board"] = path
        }
        if let path = options.config, let d = FileManager.default.contents(atPath: path) {
            hashes["config_sha256"] = Hex.string(SHA256.hash(data: d))
            hashes["config"] = path
        } else {
            hashes["config"] = "defaults"
        }
        e.record("config", hashes)
        return e
    }

    /// Writes an audit line now (before the writer thread owns the log).
    func record(_ event: String, _ details: [String: String]) {
        lock.lock()
        defer { lock.unlock() }
        do {
            try audit.append(
                event: event, details: details, monotonic: SystemClock.monotonic(), unixSeconds: SystemClock.realtime(),
                clockTrusted: SystemClock.isSynchronized())
        } catch {
            Posix.printError("bodycam: audit log: \(error)\n")
        }
    }
}

enum Board {
    static func locateForHash(_ nameOrPath: String) throws -> String { try BoardDescription.locate(nameOrPath) }
}
