import BodycamCore
import BodycamEvidence
import BodycamTOML
import Foundation

/// The operator-facing policy: how to record (`--config`, TOML). Every key is optional; defaults
/// are what a body camera should do out of the box. An unknown key, a wrong type or a value out of
/// range is a configuration error (exit 78) naming the key and its line.
struct BodycamConfig: Sendable, Equatable {
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

    /// Reads `text` (from `file`) strictly.
    static func parse(_ text: String, file: String) throws(ConfigError) -> BodycamConfig {
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
        try root.finish()
        return c
    }

    static let presets = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                          "veryslow", "placebo"]
    static let tunes = ["film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode", "zerolatency"]
}

extension VideoEncoderSettings {
    /// What the device records with unless configured otherwise: quality-driven (CRF 23) but
    /// capped at 6 Mbit/s, so storage per hour and the pre-event buffer's RAM are bounded.
    static var deviceDefault: VideoEncoderSettings {
        var v = VideoEncoderSettings()
        v.preset = "superfast"
        v.tune = "zerolatency"
        v.rateControl = .crf(23, maxKbps: 6000, bufferKbits: 6000)
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
