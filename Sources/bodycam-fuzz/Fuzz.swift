// The fuzz targets: each takes one input (bytes from libFuzzer, or a file in regression mode)
// through the code that reads the corresponding file or request on a device, a dock or an
// agency machine. A target must only ever see clean errors: a trap, a hang or an allocation
// far beyond the input's size is a bug in the parser (Tests/Fuzz/README.md).
//
// Inputs that carry two files (recovery, manifest) hold them separated by the first NUL byte:
// `<journal or manifest>\0<media bytes>`. JSON and TOML never contain a raw NUL.

import BodycamCore
import BodycamEvidence
import BodycamMedia
import BodycamTOML
import Crypto
import Foundation
import Logging

import BodycamRuntime

#if canImport(Glibc)
import Glibc
#endif

enum FuzzTarget: String, CaseIterable, Sendable {
    case mp4, recovery, config, board, manifest, journal, audit, control

    /// `BODYCAM_FUZZ_TARGET`; nil when unset or unknown.
    static var selected: FuzzTarget? {
        ProcessInfo.processInfo.environment["BODYCAM_FUZZ_TARGET"].flatMap(FuzzTarget.init(rawValue:))
    }

    func run(_ bytes: [UInt8]) {
        switch self {
        case .mp4: FuzzTargets.mp4(bytes)
        case .recovery: FuzzTargets.recovery(bytes)
        case .config: FuzzTargets.config(bytes)
        case .board: FuzzTargets.board(bytes)
        case .manifest: FuzzTargets.manifest(bytes)
        case .journal: FuzzTargets.journal(bytes)
        case .audit: FuzzTargets.audit(bytes)
        case .control: FuzzTargets.control(bytes)
        }
    }
}

/// The target chosen once per process (libFuzzer calls the entry point millions of times).
nonisolated(unsafe) var currentTarget: FuzzTarget? = FuzzTarget.selected

/// libFuzzer's entry point. The fuzz build calls it through `LLVMFuzzerRunDriver` (see Main.swift).
@_cdecl("LLVMFuzzerTestOneInput") public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let target = currentTarget else {
        FileHandle.standardError.write(
            Data("set BODYCAM_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    target.run(bytes)
    return 0
}

enum FuzzTargets {
    /// A fixed device key: the harness signs what it builds with it so the checks behind the
    /// signatures are reached too (a fuzzer cannot forge Ed25519).
    static let identity: DeviceIdentity = {
        let raw = Data((1...32).map { UInt8($0) }).base64EncodedString()
        return try! DeviceIdentity(fileContents: DeviceIdentity.keyPrefix + raw + "\n", path: "fuzz")
    }()

    /// The clip id the recovery target's journal file is named after (and the seeds use).
    static let clipID = "CAM-1-20260101T000000Z-0001"

    static let logger = Logger(label: "bodycam-fuzz") { _ in SwiftLogNoOpLogHandler() }

    /// `<first>\0<second>`; no NUL: all first.
    static func split(_ bytes: [UInt8]) -> (first: [UInt8], second: [UInt8]) {
        guard let nul = bytes.firstIndex(of: 0) else { return (bytes, []) }
        return (Array(bytes[..<nul]), Array(bytes[(nul + 1)...]))
    }

    /// `BODYCAM_FUZZ_DEBUG=1`: say what each input came to (for checking seeds).
    static let debug = ProcessInfo.processInfo.environment["BODYCAM_FUZZ_DEBUG"] != nil

    static func note(_ text: @autoclosure () -> String) {
        if debug { FileHandle.standardError.write(Data((text() + "\n").utf8)) }
    }

    /// Forces an error's description (messages format numbers taken from the input).
    static func touch(_ error: any Error) {
        let text = "\(error)"
        note("error: " + text)
    }

    // MARK: mp4

    /// The fragmented-MP4 reader on a clip (`scanFragmented`), the box walker, and the H.264
    /// parsing of what it finds (SPS, length-prefixed NAL units of every sample).
    static func mp4(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            do { _ = try MP4Reader.walk(raw) } catch { touch(error) }
            do { _ = try MP4Reader.boxes(at: ["moov", "trak", "mdia", "minf", "stbl", "stsd"], in: raw) } catch {
                touch(error)
            }
            let file: FragmentedMP4
            do { file = try MP4Reader.scanFragmented(raw) } catch {
                touch(error)
                return
            }
            note("mp4: \(file.tracks.count) tracks, \(file.fragments.count) fragments, \(file.trailingBytes) trailing bytes")
            for track in file.tracks {
                for sps in track.avc?.sps ?? [] {
                    do { _ = try H264.parseSPS(sps) } catch { touch(error) }
                }
            }
            _ = file.tracks.map { file.sampleCount(trackID: $0.trackID) }
            for fragment in file.fragments {
                precondition(fragment.offset >= 0 && fragment.end <= raw.count, "fragment outside the file")
                for tf in fragment.trackFragments {
                    for s in tf.samples {
                        precondition(s.offset >= 0 && s.size >= 0 && s.size <= raw.count - s.offset, "sample outside the file")
                        _ = H264.lengthPrefixedNALs(UnsafeRawBufferPointer(rebasing: raw[s.offset..<(s.offset + s.size)]))
                    }
                }
            }
            precondition(file.validEnd <= raw.count && file.trailingBytes >= 0, "valid end past the file")
        }
    }

    // MARK: recovery

    /// Start-up repair on `<journal>\0<media>`: the journal as `journal/clip.jsonl`, the media
    /// as `clips/clip.mp4` (and `.mp4.age`), a sealed tail `journal/<id>.tail-1.age`.
    static func recovery(_ bytes: [UInt8]) {
        let (journal, media) = split(bytes)
        let data = Scratch.directory + "/data"
        let jdir = data + "/journal"
        let cdir = data + "/clips"
        Scratch.empty(jdir)
        Scratch.empty(cdir)
        let path = jdir + "/" + clipID + ".jsonl"
        Scratch.write(journal, to: path)
        Scratch.write(media, to: cdir + "/clip.mp4")
        Scratch.write(media, to: cdir + "/clip.mp4.age")
        Scratch.write([1, 2, 3], to: jdir + "/clip.tail-1.age")
        Scratch.write([1, 2, 3], to: jdir + "/" + clipID + ".tail-1.age")
        // Half the inputs (by their last byte) also check the journal against a device key.
        let key = bytes.last.map { $0 & 1 == 1 } == true ? identity : nil
        let recovered = Recovery.recover(
            journal: path, clips: cdir, identity: key, reason: "power-loss", logger: logger)
        note("recovery: \(recovered.map { "\($0)" } ?? "nil"), clips: \(FileSystem.list(cdir).sorted())")
        Scratch.empty(jdir)
        Scratch.empty(cdir)
    }

    // MARK: config, board

    static func config(_ bytes: [UInt8]) {
        do { _ = try BodycamConfig.parse(String(decoding: bytes, as: UTF8.self), file: "config.toml") } catch {
            touch(error)
        }
    }

    static func board(_ bytes: [UInt8]) {
        do { _ = try BoardDescription.parse(String(decoding: bytes, as: UTF8.self), file: "board.toml") } catch {
            touch(error)
        }
    }

    // MARK: manifest, journal

    /// A manifest `<manifest>\0<media>` as `bodycam verify` reads it: as is (parse, canonical
    /// form, signature, journal), then re-signed by the harness's key beside the media as
    /// `c.mp4` and `c.mp4.age`, so the verifier's checks of ranges, chunks and tails run too.
    static func manifest(_ bytes: [UInt8]) {
        let (text, media) = split(bytes)
        let (parsed, _, problems) = ManifestSeal.verify(Data(text))
        _ = problems.map(\.description)
        guard var m = parsed, m.journal.count <= 256 else { return }
        var chain = JournalChain(identity: identity)
        for i in m.journal.indices { _ = try? chain.sign(&m.journal[i]) }
        guard (try? ManifestSeal.sign(&m, identity: identity)) != nil, let signed = try? Canonical.prettyBytes(m) else {
            return
        }
        // What the harness signed must verify (apart from what the journal says about itself).
        let again = ManifestSeal.verify(signed, pinned: identity.publicKey)
        precondition(again.manifest == m, "a signed manifest does not read back as itself")
        precondition(
            !again.problems.contains { $0.message.contains("manifest:") },
            "a manifest the device signed does not verify: \(again.problems.first?.message ?? "")")
        let dir = Scratch.directory + "/manifest"
        Scratch.empty(dir)
        Scratch.write(Array(signed), to: dir + "/c.json")
        Scratch.write(media, to: dir + "/c.mp4")
        Scratch.write(media, to: dir + "/c.mp4.age")
        Scratch.write([1, 2, 3], to: dir + "/clip.tail-1.age")
        for path in ["c.json", "c.mp4", "c.mp4.age"] {
            let report = Verifier.verify(path: dir + "/" + path)
            note("verify \(path): \(report.verified) \(report.problems) \(report.warnings)")
            _ = try? JSONEncoder().encode(report)
        }
        Scratch.empty(dir)
    }

    /// A clip's journal (`.jsonl`) as recovery and the verifier read it: each line decoded,
    /// described and checked; then re-signed by the harness's key, which must then verify.
    static func journal(_ bytes: [UInt8]) {
        var entries: [JournalEntry] = []
        for line in bytes.split(separator: 0x0a, omittingEmptySubsequences: true) {
            guard let e = try? Canonical.decoder().decode(JournalEntry.self, from: Data(line)) else { break }
            entries.append(e)
            _ = JournalCheck.describe(e)
            if entries.count >= 256 { break }
        }
        let clipID = entries.first?.clipId ?? ""
        _ = JournalCheck.verify(entries, key: identity.publicKey, clipID: clipID).map(\.description)
        var chain = JournalChain(identity: identity)
        var lines: [Data] = []
        for i in entries.indices {
            entries[i].clipId = clipID
            guard let line = try? chain.sign(&entries[i]) else { return }
            lines.append(line)
        }
        let read = lines.compactMap { try? Canonical.decoder().decode(JournalEntry.self, from: $0) }
        precondition(read == entries, "a signed journal entry does not read back as itself")
        let problems = JournalCheck.verify(read, key: identity.publicKey, clipID: clipID)
        precondition(problems.isEmpty, "a journal the device signed does not verify: \(problems.first?.message ?? "")")
    }

    // MARK: audit

    /// An audit-log segment as `bodycam verify` reads it (the key its first line announces),
    /// then re-signed and re-chained by the harness, which must then verify.
    static func audit(_ bytes: [UInt8]) {
        let dir = Scratch.directory + "/audit"
        Scratch.empty(dir)
        let path = dir + "/audit-1-20260101T000000Z.jsonl"
        Scratch.write(bytes, to: path)
        let first = Verifier.verify(path: path)
        note("audit: \(first.verified) \(first.lines ?? -1) lines \(first.problems) \(first.warnings)")
        _ = try? JSONEncoder().encode(first)
        _ = try? JSONEncoder().encode(Verifier.verify(path: dir))
        _ = AuditCheck.verify(files: [path], key: identity.publicKey).problems.map(\.description)

        // Re-signed: every line that decodes, in order, numbered from its first seq.
        let torn = !bytes.isEmpty && bytes.last != 0x0a
        var lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false)
        if let last = lines.last, last.isEmpty { lines.removeLast() }
        if torn { lines.removeLast() }
        var out: [UInt8] = []
        var prev = ""
        var seq: Int?
        for raw in lines.prefix(256) {
            guard var e = try? Canonical.decoder().decode(AuditEntry.self, from: Data(raw)) else { return }
            if let s = seq { e.seq = s &+ 1 }
            seq = e.seq
            e.prev = prev
            e.sig = nil
            guard let unsigned = try? Canonical.bytes(e) else { return }
            e.sig = identity.sign(Data(sha256(unsigned)))
            prev = Hex.string(sha256(unsigned))
            guard let line = try? Canonical.bytes(e) else { return }
            out += line + [0x0a]
        }
        Scratch.write(out, to: path)
        let report = AuditCheck.verify(files: [path], key: identity.publicKey)
        precondition(report.problems.isEmpty, "an audit log the device signed does not verify: \(report.problems.first?.message ?? "")")
        Scratch.empty(dir)
    }

    static func sha256(_ data: Data) -> [UInt8] { Array(SHA256.hash(data: data)) }

    // MARK: control

    /// Bytes arriving on the control socket, split into lines as the control loop does: each
    /// line decoded and validated; and the client's reading of a status answer.
    static func control(_ bytes: [UInt8]) {
        var buffer = bytes[...]
        while let nl = buffer.firstIndex(of: 0x0a) {
            let line = Array(buffer[..<nl])
            buffer = buffer[(nl + 1)...]
            controlLine(line)
        }
        if buffer.count <= ControlRequest.maxLineBytes { controlLine(Array(buffer)) }
        _ = ControlCommands.humanStatus(json: String(decoding: bytes, as: UTF8.self))
    }

    static func controlLine(_ line: [UInt8]) {
        guard line.count <= ControlRequest.maxLineBytes,
            let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line))
        else { return }
        switch request.command() {
        case .failure(let e):
            _ = try? JSONSerialization.data(withJSONObject: ["ok": false, "error": e.description])
        case .success(.press(_, _, let hold)):
            // What the loop schedules for a held press.
            if let hold { _ = Nanos.seconds(hold) }
        case .success:
            break
        }
    }
}

/// The per-process scratch directory (in /dev/shm when there is one: no disk syncs), reused for
/// every input and removed at exit.
enum Scratch {
    static let directory: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = base + "/bodycam-fuzz.\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: Scratch.directory) }
        return dir
    }()

    /// Makes `dir` exist and be empty.
    static func empty(_ dir: String) {
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dir) {
            for name in names { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
        } else {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    static func write(_ bytes: [UInt8], to path: String) {
        precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
    }
}
