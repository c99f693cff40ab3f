import BodycamAdapters
import BodycamCore
import BodycamEvidence
import Foundation

/// `bodycam keygen`, `verify` and `export`.
public enum EvidenceCommands {
    /// `keygen --device DIR`: the device's signing identity (device.key 0600, device.pub).
    public static func keygenDevice(directory: String) -> Int32 {
        if DeviceIdentity.exists(in: directory) {
            Posix.printError("bodycam: \(directory)/device.key exists; a device identity is never replaced\n")
            return ExitCode.failure
        }
        let identity = DeviceIdentity.generate()
        do {
            try identity.write(to: directory)
        } catch {
            Posix.printError("bodycam: cannot write the device identity in \(directory): \(error.localizedDescription)\n")
            return ExitCode.failure
        }
        Posix.printOut("\(identity.publicKey.string)\n")
        Posix.printError("device key in \(directory)/device.key (mode 0600), public key in \(directory)/device.pub\n")
        return ExitCode.success
    }

    /// `keygen --agency PATH`: an age X25519 identity at PATH (0600) and its recipient at PATH.pub.
    public static func keygenAgency(path: String) -> Int32 {
        if FileManager.default.fileExists(atPath: path) {
            Posix.printError("bodycam: \(path) exists; not overwriting an identity\n")
            return ExitCode.failure
        }
        let identity = AgeIdentity.generate()
        do {
            try identity.writeFile(atPath: path)
            try PublicFile.write(identity.recipient.string + "\n", to: path + ".pub")
        } catch {
            Posix.printError("bodycam: cannot write \(path): \(error)\n")
            return ExitCode.failure
        }
        Posix.printOut("\(identity.recipient.string)\n")
        Posix.printError("agency identity in \(path) (mode 0600; keep it off the devices), recipient in \(path).pub\n")
        return ExitCode.success
    }

    /// `verify [--json] [--device-key KEY] PATH...`: 0 when every path verifies, 1 otherwise.
    public static func verify(paths: [String], json: Bool, deviceKey: String?) -> Int32 {
        var pinned: DevicePublicKey?
        if let deviceKey {
            let text = FileManager.default.contents(atPath: deviceKey).map { String(decoding: $0, as: UTF8.self) } ?? deviceKey
            guard let k = DevicePublicKey(string: text) else {
                Posix.printError("bodycam: --device-key: not a device key (ed25519:…) or a file holding one\n")
                return ExitCode.usage
            }
            pinned = k
        }
        let reports = paths.map { Verifier.verify(path: $0, pinned: pinned) }
        if json {
            let e = JSONEncoder()
            e.keyEncodingStrategy = .convertToSnakeCase
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            if let d = try? e.encode(reports) { Posix.printOut(String(decoding: d, as: UTF8.self) + "\n") }
        } else {
            for r in reports { Posix.printOut(describe(r)) }
        }
        return reports.allSatisfy(\.verified) ? ExitCode.success : ExitCode.failure
    }

    static func describe(_ r: VerifyReport) -> String {
        var s = r.verified ? "VERIFIED  " : "FAILED    "
        s += "\(r.path) (\(r.kind)"
        if let id = r.clipId { s += " \(id)" }
        if let n = r.fragments { s += ", \(n) fragments" }
        if let d = r.duration { s += String(format: ", %.2f s", d) }
        if let l = r.lines { s += ", \(l) lines" }
        if let k = r.deviceKey { s += ", device key \(k)" }
        s += ")\n"
        for p in r.problems.prefix(1) {
            s += "    problem: \(p)"
            if let t = r.mediaTime { s += String(format: " [media time %.3f s]", t) }
            s += "\n"
        }
        for w in r.warnings { s += "    warning: \(w)\n" }
        return s
    }
}

extension EvidenceCommands {
    /// `export --identity KEY CLIP --output OUT.mp4`: checks the sealed clip against its signed
    /// manifest, decrypts it (and the sealed tail of an interrupted clip), checks every
    /// fragment's plaintext against the journal, then writes OUT.mp4 and the manifest as OUT.json.
    public static func export(identity: String, clip: String, output: String) -> Int32 {
        func fail(_ message: String) -> Int32 {
            Posix.printError("bodycam: export \(clip): \(message)\n")
            return ExitCode.failure
        }
        let identities: [AgeIdentity]
        do {
            identities = try AgeIdentity.readFile(atPath: identity)
        } catch {
            Posix.printError("bodycam: \(identity): \(error)\n")
            return ExitCode.usage
        }
        let sealedReport = Verifier.verify(path: clip)
        guard sealedReport.kind == "sealed clip" else { return fail("not a sealed clip (.mp4.age)") }
        guard sealedReport.verified else {
            return fail("does not verify: \(sealedReport.problems.first ?? "unknown problem")")
        }
        let manifestPath = Verifier.manifestPath(for: clip)
        guard let manifestData = FileManager.default.contents(atPath: manifestPath),
            let manifest = try? Canonical.decoder().decode(ClipManifest.self, from: manifestData),
            let sealed = manifest.sealed
        else { return fail("manifest \(manifestPath) unreadable") }
        let tmp = output + ".partial"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return fail("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(tmp) }
        }
        do {
            let reader = try AgeStreamReader(path: clip, identities: identities)
            _ = try reader.decrypt(allowTruncated: !sealed.finalChunk, toFileDescriptor: fd)
            if let tail = sealed.tail {
                let tailPath = ((clip as NSString).deletingLastPathComponent as NSString).appendingPathComponent(tail.file)
                let t = try AgeStreamReader(path: tailPath, identities: identities)
                _ = try t.decrypt(allowTruncated: false, toFileDescriptor: fd)
            }
        } catch {
            return fail("cannot decrypt: \(error)")
        }
        fsync(fd)
        // Every plaintext byte against the signed journal, via the same check verify uses.
        let manifestTmp = Verifier.manifestPath(for: tmp)
        let plainEnd = manifest.fragments.last.map { $0.offset + $0.size } ?? manifest.initSegment.size
        if let size = FileSystem.size(tmp), size > plainEnd { _ = ftruncate(fd, off_t(plainEnd)) }
        do {
            try FileSystem.writeAtomically(manifestData, to: manifestTmp)
        } catch {
            return fail("cannot write \(manifestTmp): \(error)")
        }
        let check = Verifier.verify(path: tmp)
        unlink(manifestTmp)
        guard check.verified else { return fail("decrypted media does not match the journal: \(check.problems.first ?? "")") }
        do {
            try FileSystem.writeAtomically(manifestData, to: Verifier.manifestPath(for: output))
        } catch {
            return fail("cannot write the manifest beside \(output): \(error)")
        }
        guard rename(tmp, output) == 0 else { return fail("cannot rename to \(output): \(String(cString: strerror(errno)))") }
        ok = true
        FileSystem.syncDirectory(containing: output)
        var summary = "exported \(manifest.clipId) to \(output) (\(manifest.fragments.count) fragments, "
        summary += String(format: "%.2f s", manifest.duration) + "), manifest \(Verifier.manifestPath(for: output))"
        if manifest.interrupted { summary += "; interrupted (\(manifest.endReason))" }
        Posix.printError(summary + "\n")
        return ExitCode.success
    }
}
