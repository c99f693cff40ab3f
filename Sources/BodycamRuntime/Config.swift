import BodycamCore
import BodycamEvidence
package import BodycamTOML
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The operator-facing policy: how to record (`--config`, TOML). Every key is optional; defaults
/// are what a body camera should do out of the box. An unknown key, a wrong type or a value out of
/// range is a configuration error (exit 78) naming the key and its line.
package struct BodycamConfig: Sendable, Equatable {
    /// Device id used in clip ids and object keys; default derived from /etc/machine-id.
    var deviceID: String?
    var preEventSeconds = 30.0
    var preEventAudio = false
    var rolloverMinutes = 30.0
    var reminderSeconds = 120.0
    /// Size of the pre-event ring; nil = sized from the bitrate cap and pre-event time.
    var bufferMiB: Int?
    var video = VideoEncoderSettings.deviceDefault
    var audioEnabled = true
    var audioBitrateKbps = 32
    var audioVoice = false
    /// libopus complexity, 0 (cheapest) to 10.
    var audioComplexity = 9
    var buttons = ButtonTiming()
    /// Seal clips (age) to this recipient; nil: the sim board seals to a demo key, others refuse.
    var sealingRecipient: String?
    var sealingEnabled = true
    var watermark = WatermarkSettings()
    /// Where clips go when docked; nil: no offload configured (clips stay on the device).
    var offload: OffloadSettings?
    var detector = DetectorConfig()
    /// Free space kept on the data volume (`[storage] reserve_mib`); nil: sized from the video
    /// bitrate (a minute of video plus room for manifests, journals and the audit log).
    var storageReserveMiB: Int?

    /// Reads `text` (from `file`) strictly.
    package static func parse(_ text: String, file: String) throws(ConfigError) -> BodycamConfig {
        var c = BodycamConfig()
        let root = try ConfigTable(parsing: text, file: file)
        if let t = try root.table("device") {
            if let id = try t.string("id") {
                guard ClipID.isValidDeviceID(id) else {
                    throw t.fail("id", "must be 1–48 letters, digits, '-' or '_' (it names files), found \"\(id)\"")
                }
                c.deviceID = id
            }
            try t.finish()
        }
        if let t = try root.table("recording") {
            c.preEventSeconds = try t.double("pre_event_seconds", range: 0...120) ?? c.preEventSeconds
            c.preEventAudio = try t.bool("pre_event_audio") ?? c.preEventAudio
            c.rolloverMinutes = try t.double("rollover_minutes", range: 0.1...240) ?? c.rolloverMinutes
            c.reminderSeconds = try t.double("reminder_seconds", range: 0...3600) ?? c.reminderSeconds
            c.bufferMiB = try t.int("buffer_mib", range: 4...1024).map(Int.init) ?? c.bufferMiB
            try t.finish()
        }
        if let t = try root.table("video") {
            var v = c.video
            v.preset = try t.string("preset", oneOf: Self.presets) ?? v.preset
            if let tune = try t.string("tune", oneOf: Self.tunes + ["none"]) { v.tune = tune == "none" ? nil : tune }
            v.profile = try t.string("profile", oneOf: ["baseline", "main", "high"]) ?? v.profile
            v.threads = try t.int("threads", range: 0...16).map(Int.init) ?? v.threads
            let crf = try t.double("crf", range: 0...51)
            let bitrate = try t.int("bitrate_kbps", range: 100...100_000).map(Int.init)
            let maxRate = try t.int("max_bitrate_kbps", range: 100...100_000).map(Int.init)
            let buffer = try t.int("vbv_buffer_kbits", range: 100...200_000).map(Int.init)
            if crf != nil && bitrate != nil {
                throw t.fail("bitrate_kbps", "cannot be combined with crf: choose constant quality or a bitrate")
            }
            if let bitrate {
                if let maxRate, maxRate < bitrate {
                    throw t.fail("max_bitrate_kbps", "\(maxRate) is below bitrate_kbps \(bitrate)")
                }
                v.rateControl = .bitrate(kbps: bitrate, maxKbps: maxRate, bufferKbits: buffer)
            } else {
                var (q, m, b): (Double, Int?, Int?)
                if case .crf(let dq, let dm, let db) = v.rateControl { (q, m, b) = (dq, dm, db) } else { (q, m, b) = (23, nil, nil) }
                v.rateControl = .crf(crf ?? q, maxKbps: maxRate ?? m, bufferKbits: buffer ?? b)
            }
            try t.finish()
            c.video = v
        }
        if let t = try root.table("audio") {
            c.audioEnabled = try t.bool("enabled") ?? c.audioEnabled
            c.audioBitrateKbps = try t.int("bitrate_kbps", range: 6...510).map(Int.init) ?? c.audioBitrateKbps
            c.audioVoice = (try t.string("application", oneOf: ["audio", "voip"]) ?? "audio") == "voip"
            c.audioComplexity = try t.int("complexity", range: 0...10).map(Int.init) ?? c.audioComplexity
            try t.finish()
        }
        if let t = try root.table("buttons") {
            let hold = try t.double("hold_seconds", range: 0.5...10) ?? 3
            let window = try t.int("double_press_ms", range: 100...2000) ?? 500
            let debounce = try t.int("debounce_ms", range: 0...200) ?? 30
            c.buttons = ButtonTiming(
                debounce: Nanos.milliseconds(Int(debounce)), doublePressWindow: Nanos.milliseconds(Int(window)),
                hold: Nanos.seconds(hold))
            try t.finish()
        }
        if let t = try root.table("sealing") {
            c.sealingEnabled = try t.bool("enabled") ?? true
            if let r = try t.string("recipient") {
                guard (try? AgeRecipient(parsing: r)) != nil else {
                    throw t.fail("recipient", "is not an age X25519 recipient (age1…, as age-keygen -y prints)")
                }
                c.sealingRecipient = r
            }
            try t.finish()
        }
        if let t = try root.table("watermark") {
            c.watermark.enabled = try t.bool("enabled") ?? c.watermark.enabled
            if let corner = try t.string("corner", oneOf: WatermarkSettings.Corner.allCases.map(\.rawValue)) {
                c.watermark.corner = WatermarkSettings.Corner(rawValue: corner) ?? .bottomLeft
            }
            c.watermark.scale = try t.int("scale", range: 0...8).map(Int.init) ?? c.watermark.scale
            try t.finish()
        }
        if let t = try root.table("offload") {
            c.offload = try OffloadSettings.parse(t)
            try t.finish()
        }
        if let t = try root.table("detector") {
            let d = c.detector
            c.detector.action = DetectorAction(
                rawValue: try t.string("action", oneOf: DetectorAction.allCases.map(\.rawValue)) ?? d.action.rawValue) ?? .off
            c.detector.video = try t.bool("video") ?? d.video
            c.detector.audio = try t.bool("audio") ?? d.audio
            // Evaluated at 10 Hz; its motion limits hold from 5 to 15.
            c.detector.sampleHz = try t.double("sample_hz", range: 5...15) ?? d.sampleHz
            c.detector.recordAfterSeconds = try t.double("record_after_seconds", range: 0...60) ?? d.recordAfterSeconds
            c.detector.stopAfterQuietSeconds = try t.double("stop_after_quiet_seconds", range: 0...3600) ?? d.stopAfterQuietSeconds
            try t.finish()
        }
        if let t = try root.table("storage") {
            c.storageReserveMiB = try t.int("reserve_mib", range: 0...1_048_576).map(Int.init)
            try t.finish()
        }
        try root.finish()
        return c
    }

    static let presets = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                          "veryslow", "placebo"]
    static let tunes = ["film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode", "zerolatency"]
}

extension VideoEncoderSettings {
    /// What the device records with unless configured otherwise: quality-driven (CRF 23) but
    /// capped (see `defaultCapKbps`, applied once the camera's format is known), so storage per
    /// hour and the pre-event buffer's RAM are bounded.
    static var deviceDefault: VideoEncoderSettings {
        var v = VideoEncoderSettings()
        v.preset = "superfast"
        v.tune = "zerolatency"
        v.rateControl = .crf(23, maxKbps: nil, bufferKbits: nil)
        return v
    }

    /// The default bitrate cap: 0.15 bit per pixel at the frame rate, in steps of 100 kbit/s
    /// (4100 kbit/s at 720p30, 9300 at 1080p30, 1400 at 640x480x30), at least 500. Enough for
    /// CRF 23 in daylight at these sizes; noisy night scenes reach it. One second of VBV buffer.
    static func defaultCapKbps(for format: VideoFormat) -> Int {
        let kbps = Double(format.width * format.height) * format.frameRate.framesPerSecond * 0.15 / 1000
        return max(500, Int((kbps / 100).rounded()) * 100)
    }

    /// These settings with the default cap where CRF was left uncapped by the configuration.
    func cappedByDefault(for format: VideoFormat) -> VideoEncoderSettings {
        guard case .crf(let q, nil, nil) = rateControl else { return self }
        var v = self
        let cap = Self.defaultCapKbps(for: format)
        v.rateControl = .crf(q, maxKbps: cap, bufferKbits: cap)
        return v
    }
}

/// A configuration file problem, with the exit code sysexits(3) gives it.
struct ConfigurationFailure: Error, CustomStringConvertible {
    var description: String
    static let exitCode: Int32 = 78
}

enum ConfigLoader {
    /// Reads a file as UTF-8; a missing or unreadable file is a configuration error naming it.
    static func read(_ path: String, what: String) throws(ConfigurationFailure) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationFailure(description: "\(path): cannot read \(what) file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationFailure(description: "\(path): \(what) file is not UTF-8 text")
        }
        return text
    }

    static func loadConfig(_ path: String?) throws(ConfigurationFailure) -> BodycamConfig {
        guard let path else { return BodycamConfig() }
        let text = try read(path, what: "config")
        do {
            return try BodycamConfig.parse(text, file: path)
        } catch {
            throw ConfigurationFailure(description: error.description)
        }
    }
}

/// `[offload]`: the base station and how clips leave the device.
struct OffloadSettings: Sendable, Equatable {
    enum Target: String, Sendable { case s3, directory }
    enum Order: String, Sendable { case priority, oldest }
    enum Retention: String, Sendable {
        /// Delete the local copy as soon as the offloaded copy is verified.
        case delete
        /// Keep verified clips `keepDays` days.
        case keepDays = "keep_days"
        /// Keep verified clips until free space falls below `keepFreeMiB`, oldest deleted first.
        case untilSpaceNeeded = "until_space_needed"
    }

    var target: Target = .s3
    var endpoint = ""
    var region = "us-east-1"
    var bucket = ""
    var prefix = ""
    var credentialsFile: String?
    var caFile: String?
    var partSizeMiB = 8
    var path = ""
    var order: Order = .priority
    var retention: Retention = .delete
    var keepDays = 30.0
    var keepFreeMiB = 1024
    /// 0 = no cap.
    var maxKbps = 0
    /// A request that moves no byte this long is abandoned and retried.
    var requestTimeoutSeconds = 30.0
    var retryBaseSeconds = 2.0
    var retryMaxSeconds = 300.0

    static func parse(_ t: ConfigTable) throws(ConfigError) -> OffloadSettings {
        var o = OffloadSettings()
        o.target = Target(rawValue: try t.string("target", oneOf: ["s3", "directory"]) ?? "s3") ?? .s3
        o.endpoint = try t.string("endpoint") ?? ""
        o.region = try t.string("region") ?? o.region
        o.bucket = try t.string("bucket") ?? ""
        o.prefix = try t.string("prefix") ?? ""
        o.credentialsFile = try t.string("credentials_file")
        o.caFile = try t.string("ca_file")
        o.partSizeMiB = try t.int("part_size_mib", range: 5...64).map(Int.init) ?? o.partSizeMiB
        o.path = try t.string("path") ?? ""
        o.order = Order(rawValue: try t.string("order", oneOf: ["priority", "oldest"]) ?? "priority") ?? .priority
        o.retention = Retention(
            rawValue: try t.string("retention", oneOf: ["delete", "keep_days", "until_space_needed"]) ?? "delete") ?? .delete
        o.keepDays = try t.double("keep_days", range: 0...3650) ?? o.keepDays
        o.keepFreeMiB = try t.int("keep_free_mib", range: 1...10_000_000).map(Int.init) ?? o.keepFreeMiB
        o.maxKbps = try t.int("max_kbps", range: 0...10_000_000).map(Int.init) ?? o.maxKbps
        o.requestTimeoutSeconds = try t.double("request_timeout_seconds", range: 1...3600) ?? o.requestTimeoutSeconds
        o.retryBaseSeconds = try t.double("retry_base_seconds", range: 0.05...3600) ?? o.retryBaseSeconds
        o.retryMaxSeconds = try t.double("retry_max_seconds", range: 0.05...86400) ?? o.retryMaxSeconds
        switch o.target {
        case .s3:
            if o.endpoint.isEmpty { throw t.fail("endpoint", "is required for target = \"s3\" (e.g. \"http://127.0.0.1:8333\")") }
            if !(o.endpoint.hasPrefix("http://") || o.endpoint.hasPrefix("https://")) || URL(string: o.endpoint)?.host == nil {
                throw t.fail("endpoint", "must be http://host[:port] or https://host[:port], found \"\(o.endpoint)\"")
            }
            if o.bucket.isEmpty { throw t.fail("bucket", "is required for target = \"s3\"") }
            if !Self.isBucketName(o.bucket) { throw t.fail("bucket", "\"\(o.bucket)\" is not an S3 bucket name") }
            if o.credentialsFile == nil { throw t.fail("credentials_file", "is required for target = \"s3\"") }
        case .directory:
            if o.path.isEmpty { throw t.fail("path", "is required for target = \"directory\"") }
            if !o.path.hasPrefix("/") { throw t.fail("path", "must be an absolute path, found \"\(o.path)\"") }
        }
        if o.prefix.hasPrefix("/") || o.prefix.contains("..") || o.prefix.contains("//") {
            throw t.fail("prefix", "must be a relative key prefix without '..' or '//', found \"\(o.prefix)\"")
        }
        while o.prefix.hasSuffix("/") { o.prefix.removeLast() }
        if o.retryMaxSeconds < o.retryBaseSeconds {
            throw t.fail("retry_max_seconds", "\(o.retryMaxSeconds) is below retry_base_seconds \(o.retryBaseSeconds)")
        }
        return o
    }

    static func isBucketName(_ s: String) -> Bool {
        guard (3...63).contains(s.count), let f = s.first, let l = s.last, f.isLetter || f.isNumber, l.isLetter || l.isNumber
        else { return false }
        return s.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "." }
    }
}

/// The S3 key pair, from its own file (`credentials_file`), which must not be readable by others.
struct S3Credentials: Sendable {
    var accessKeyID: String
    var secretAccessKey: String

    static func load(_ path: String) throws(ConfigurationFailure) -> S3Credentials {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ConfigurationFailure(description: "\(path): cannot read the S3 credentials file ([offload] credentials_file): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw ConfigurationFailure(
                description: "\(path): S3 credentials file has mode \(String(st.st_mode & 0o777, radix: 8)); refused: make it 0600 (chmod 600)")
        }
        let text = try ConfigLoader.read(path, what: "S3 credentials")
        do throws(ConfigError) {
            let t = try ConfigTable(parsing: text, file: path)
            guard let id = try t.string("access_key_id"), !id.isEmpty else { throw t.fail("access_key_id", "is required") }
            guard let secret = try t.string("secret_access_key"), !secret.isEmpty else {
                throw t.fail("secret_access_key", "is required")
            }
            try t.finish()
            return S3Credentials(accessKeyID: id, secretAccessKey: secret)
        } catch {
            throw ConfigurationFailure(description: error.description)
        }
    }
}

/// `[detector]`: the activity detector (scene motion relative to the camera's own, and sound
/// level events). It measures activity only: nothing is recognised or identified.
struct DetectorConfig: Sendable, Equatable {
    /// "off" (default: nothing runs), "mark" (markers and audit entries), "record" (also starts clips).
    var action: DetectorAction = .off
    var video = true
    var audio = true
    /// Pictures per second the video detector looks at.
    var sampleHz = 10.0
    /// `record`: activity must last this long before a clip starts.
    var recordAfterSeconds = 2.0
    /// `record`: a clip the detector started stops after this long without activity; 0 = never
    /// (the operator stops it).
    var stopAfterQuietSeconds = 0.0

    var policy: DetectorPolicy {
        DetectorPolicy(
            action: action, recordAfter: Int64(recordAfterSeconds * 1e9),
            stopAfterQuiet: stopAfterQuietSeconds > 0 ? Int64(stopAfterQuietSeconds * 1e9) : nil)
    }
}
