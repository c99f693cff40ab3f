import Crypto
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end recordings on the sim board with the real binary, checked with ffprobe and a full
/// ffmpeg decode. Serialized: each recorder encodes 720p30 in real time and this machine has two
/// cores, so parallel runs would measure the machine, not bodycam.
@Suite(.serialized)
struct RecordingTests {
    /// Every fragment's byte range is contiguous, its SHA-256 matches the file, and the ranges
    /// cover the file exactly.
    func checkFragments(_ m: [String: Any], mediaPath: String) throws {
        let data = try #require(FileManager.default.contents(atPath: mediaPath))
        let initSegment = try #require(m["init_segment"] as? [String: Any])
        var offset = try #require(initSegment["size"] as? Int)
        #expect(hex(SHA256.hash(data: data[0..<offset])) == initSegment["sha256"] as? String)
        let fragments = try #require(m["fragments"] as? [[String: Any]])
        #expect(!fragments.isEmpty)
        for (i, f) in fragments.enumerated() {
            #expect(f["index"] as? Int == i + 1)
            #expect(f["offset"] as? Int == offset, "fragment \(i + 1) is not where the previous one ended")
            let size = try #require(f["size"] as? Int)
            guard offset + size <= data.count else {
                Issue.record("fragment \(i + 1) runs past the end of the file")
                return
            }
            #expect(hex(SHA256.hash(data: data[offset..<(offset + size)])) == f["sha256"] as? String)
            offset += size
        }
        #expect(offset == data.count, "bytes after the last fragment")
        #expect(m["size_bytes"] as? Int == data.count)
    }

    func hex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 { d.map { String(format: "%02x", $0) }.joined() }

    @Test("the acceptance sequence gives one clip: 720p30 H.264 + Opus, ~8 s pre-event, marker at ~14 s")
    func acceptanceSequence() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data)
        try rec.waitForState("buffering")
        sleep(8)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        let recording = try rec.status()
        #expect(recording["state"] as? String == "recording")
        #expect((recording["leds"] as? [String: String])?["recording"] == "on")
        // Timing for the start-up and response budgets: when buffering began, and the latency
        // from the gesture's own timestamp to the recording state.
        let timing = try #require(recording["timing"] as? [String: Any])
        let started = try #require(timing["started_monotonic_ns"] as? Int)
        let buffering = try #require(timing["buffering_monotonic_ns"] as? Int)
        #expect(buffering > started)
        let transition = try #require(timing["last_transition"] as? [String: Any])
        #expect(transition["gesture"] as? String == "record double_press")
        #expect(transition["state"] as? String == "recording")
        let ms = try #require(double(transition["ms"]))
        #expect(ms >= 0 && ms < 1000, "\(ms) ms from the press to recording")
        sleep(6)
        #expect(try rec.ctl("press", "marker").status == 0)
        sleep(4)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        let after = try rec.status()
        #expect(after["state"] as? String == "buffering")
        #expect((after["leds"] as? [String: String])?["recording"] == "off")
        sleep(1)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0, "\(rec.log)")

        let files = ClipFiles(data)
        #expect(files.media.count == 1 && files.manifests.count == 1, "\(files)")
        let sealed = try #require(files.media.first)
        #expect(sealed.hasSuffix(".mp4.age"), "clips are sealed")
        let clip = try Sealed.export(sealed, data: data)
        let probe = try Probe(clip)
        let video = try #require(probe.stream("video"))
        #expect(video["codec_name"] as? String == "h264")
        #expect(video["width"] as? Int == 1280 && video["height"] as? Int == 720)
        #expect(video["r_frame_rate"] as? String == "30/1")
        let audio = try #require(probe.stream("audio"))
        #expect(audio["codec_name"] as? String == "opus")
        #expect(audio["sample_rate"] as? String == "48000")
        #expect(try Media.fullDecodeErrors(clip) == "")

        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        #expect(m["file"] as? String == (sealed as NSString).lastPathComponent)
        #expect(m["interrupted"] as? Bool == false)
        #expect(m["end_reason"] as? String == "button")
        // Sound and picture run to the end together: no gap is recorded.
        #expect((m["audio_gaps"] as? [Any])?.isEmpty == true, "\(m["audio_gaps"] ?? "none")")
        #expect((m["video_gaps"] as? [Any])?.isEmpty == true, "\(m["video_gaps"] ?? "none")")
        // ~8 s of pre-event (the buffer since start-up), then 10–13 s after the press: the clip
        // ends when the 3 s hold is recognised, so it keeps what happened during the hold.
        let triggered = try #require(double(m["triggered_at"]))
        #expect(triggered > 7.5 && triggered < 9.5, "pre-event \(triggered)")
        let afterPress = probe.duration - triggered
        #expect(afterPress >= 13 && afterPress <= 13.8, "\(afterPress) s after the press")
        #expect(probe.duration >= 18 && probe.duration <= 23, "duration \(probe.duration)")
        let markers = try #require(m["markers"] as? [[String: Any]])
        #expect(markers.count == 1)
        let markerTime = try #require(double(markers.first?["media_time"]))
        #expect(abs(markerTime - 14) < 1.0, "marker at \(markerTime)")
        // The marker is where it was pressed: 6 s (and a control round trip) after the record press.
        #expect(markerTime - triggered > 5.9 && markerTime - triggered < 6.6, "marker \(markerTime - triggered) s after the press")
        #expect(markers.first?["kind"] as? String == "button")
        #expect(abs((double(m["duration"]) ?? 0) - probe.duration) < 0.1)
        // Pre-event audio is off by default: the audio track starts at the press, in sync.
        let audioInfo = try #require(m["audio"] as? [String: Any])
        let startsAt = try #require(double(audioInfo["starts_at"]))
        #expect(abs(startsAt - triggered) < 0.05, "audio starts at \(startsAt), press at \(triggered)")
        let firstPacket = try #require(try Media.firstAudioTime(clip))
        #expect(abs(firstPacket - triggered) < 0.05, "first audio packet at \(firstPacket)")
        let dropped = try #require(m["dropped_frames"] as? [String: Any])
        #expect(dropped["total"] as? Int != nil)
        try checkFragments(m, mediaPath: clip)
    }

    @Test("with the buffer full, a clip starts 30 ± 1 s before the press")
    func fullPreEventBuffer() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data)
        try rec.waitForState("buffering")
        sleep(33)
        let before = try rec.status()
        let buffered = try #require(double(before["pre_event_seconds"]))
        #expect(buffered >= 30 && buffered < 31.1, "buffer holds \(buffered) s")
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        sleep(2)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let files = ClipFiles(data)
        #expect(files.media.count == 1)
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        let triggered = try #require(double(m["triggered_at"]))
        #expect(triggered >= 29 && triggered <= 31, "clip starts \(triggered) s before the press")
        let clip = try Sealed.export(try #require(files.media.first), data: data)
        #expect(try Media.fullDecodeErrors(clip) == "")
        #expect(try Probe(clip).duration > 34)
    }

    @Test("kill -9 while recording leaves a clip that plays up to within 1 s of the kill; restart recovers it")
    func killDuringRecording() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data)
        try rec.waitForState("buffering")
        sleep(3)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        usleep(6_300_000)
        let killedAt = Date().timeIntervalSince1970
        rec.kill9()
        let sealed = try #require(ClipFiles(data).media.first)
        #expect(ClipFiles(data).manifests.isEmpty)

        // The next start repairs it: manifest from the journal, marked interrupted.
        let again = try RunningRecorder(data: data, extra: ["--for", "2"])
        #expect(try again.waitForExit() == 0)
        #expect(again.log.contains("recovered interrupted clip"))
        let files = ClipFiles(data)
        #expect(files.media.count == 1 && files.manifests.count == 1)
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        #expect(m["interrupted"] as? Bool == true)
        #expect(m["end_reason"] as? String == "power-loss")
        let startUnix = try #require(double(m["start_unix"]))
        let duration = try #require(double(m["duration"]))
        let lost = (killedAt - startUnix) - duration
        // One fragment is one second; allow the few tens of ms a fragment takes from its last
        // frame to storage.
        #expect(lost <= 1.15, "lost \(lost) s before the kill")
        #expect(lost >= -0.2)
        // The interrupted clip verifies (with a warning) and exports to a file that plays.
        let verify = try Shell.run(BodycamBinary.path, ["verify", sealed])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("interrupted at"))
        let media = try Sealed.export(sealed, data: data)
        #expect(abs(try Probe(media).duration - duration) < 0.1)
        #expect(try Media.fullDecodeErrors(media) == "")
        try checkFragments(m, mediaPath: media)
    }

    @Test("kill -9, then the device key replaced before the restart: recovery cuts nothing and keeps the journal")
    func recoveryWithAnotherKeyKeepsEverything() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data)
        try rec.waitForState("buffering")
        sleep(2)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        usleep(4_300_000)
        rec.kill9()
        let media = try #require(ClipFiles(data).media.first)
        let size = try #require(FileManager.default.attributesOfItem(atPath: media)[.size] as? Int)
        let journals = try FileManager.default.contentsOfDirectory(atPath: data + "/journal").filter { $0.hasSuffix(".jsonl") }
        #expect(journals.count == 1)
        // The device is re-provisioned before it boots again: its journal no longer verifies.
        for f in ["device.key", "device.pub"] { try? FileManager.default.removeItem(atPath: data + "/keys/" + f) }

        let again = try RunningRecorder(data: data, extra: ["--for", "2"])
        #expect(try again.waitForExit() == 0)
        #expect(again.log.contains("journal damaged"))
        let files = ClipFiles(data)
        #expect(files.media == [media] && files.manifests.count == 1)
        // Nothing cut: the footage the journal can no longer vouch for is still there, and so
        // is the journal, renamed so the next start does not take it for a leftover.
        #expect(try FileManager.default.attributesOfItem(atPath: media)[.size] as? Int == size)
        let kept = try FileManager.default.contentsOfDirectory(atPath: data + "/journal")
        #expect(kept.contains(journals[0] + ".damaged"), "\(kept)")
        #expect(!kept.contains(journals[0]))
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        #expect(m["interrupted"] as? Bool == true)
    }

    @Test("rollover: long recordings continue in linked clips with no frame lost")
    func rollover() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let config = dir.file("rollover.toml", """
            [recording]
            pre_event_seconds = 2
            rollover_minutes = 0.15   # 9 s
            """)
        let rec = try RunningRecorder(data: data, config: config)
        try rec.waitForState("buffering")
        sleep(3)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        sleep(20)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let files = ClipFiles(data)
        #expect(files.media.count == 3, "\(files.media)")
        let manifests = try files.manifests.map(ClipFiles.manifest)
        var frames = 0
        var seconds = 0.0
        for (i, m) in manifests.enumerated() {
            let media = try Sealed.export(files.media[i], data: data)
            #expect(try Media.fullDecodeErrors(media) == "")
            let decoded = try Media.decodedFrames(media)
            #expect(decoded == (m["video"] as? [String: Any])?["frames"] as? Int)
            frames += decoded
            seconds += double(m["duration"]) ?? 0
            if i > 0 { #expect(m["previous_clip"] as? String == manifests[i - 1]["clip_id"] as? String) }
            if i < manifests.count - 1 {
                #expect(m["next_clip"] as? String == manifests[i + 1]["clip_id"] as? String)
                #expect(m["end_reason"] as? String == "rollover")
                #expect(abs((double(m["duration"]) ?? 0) - 9) < 1.05)
            }
            try checkFragments(m, mediaPath: media)
        }
        // Frames over the three clips are exactly the frames of the recorded time: none missing,
        // none duplicated at the joins.
        #expect(abs(Double(frames) - seconds * 30) <= 1, "\(frames) frames for \(seconds) s")
    }

    @Test("mute: the muted span is silence and is listed in the manifest")
    func mute() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data)
        try rec.waitForState("buffering")
        sleep(2)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        sleep(2)
        #expect(try rec.ctl("press", "mute").status == 0)
        #expect(try rec.status()["muted"] as? Bool == true)
        sleep(2)
        #expect(try rec.ctl("press", "marker", "--hold", "3").status == 0)  // marker hold toggles too
        #expect(try rec.status()["muted"] as? Bool == false)
        sleep(2)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let files = ClipFiles(data)
        let clip = try Sealed.export(try #require(files.media.first), data: data)
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        let spans = try #require(m["mute_spans"] as? [[String: Any]])
        #expect(spans.count == 1)
        let start = try #require(double(spans.first?["start"]))
        let end = try #require(double(spans.first?["end"]))
        #expect(end - start > 4 && end - start < 6, "muted \(start)–\(end)")
        let pcm = try Media.decodeAudio(clip)
        let pcmStart = try #require(try Media.firstAudioTime(clip))
        /// RMS of the decoded audio between two media times.
        func rms(_ from: Double, _ to: Double) -> Double {
            let a = max(0, Int((from - pcmStart) * 48_000)), b = min(pcm.count, Int((to - pcmStart) * 48_000))
            guard b > a else { return 0 }
            return (pcm[a..<b].reduce(0.0) { $0 + Double($1) * Double($1) } / Double(b - a)).squareRoot()
        }
        let triggered = double(m["triggered_at"]) ?? 0
        #expect(rms(start + 0.2, end - 0.2) < 50, "muted audio is not silent")
        #expect(rms(triggered + 0.3, start - 0.2) > 1000, "audio before the mute is missing")
        #expect(rms(end + 0.2, end + 1.5) > 1000, "audio after the mute is missing")
    }

    @Test("pre_event_seconds = 0: the clip starts at the press, on a keyframe")
    func noPreEvent() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let config = dir.file("c.toml", "[recording]\npre_event_seconds = 0\n")
        let rec = try RunningRecorder(data: data, config: config)
        try rec.waitForState("buffering")
        sleep(3)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        sleep(3)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let files = ClipFiles(data)
        let clip = try Sealed.export(try #require(files.media.first), data: data)
        let m = try ClipFiles.manifest(try #require(files.manifests.first))
        let triggered = try #require(double(m["triggered_at"]))
        #expect(triggered < 0.1, "clip starts \(triggered) s before the press")
        let duration = try Probe(clip).duration
        #expect(duration > 5.5 && duration < 7.5, "duration \(duration)")
        #expect(try Media.fullDecodeErrors(clip) == "")
    }

    @Test("audio and video stay in sync: the sim's flash and beep, made at each whole second, coincide in the clip")
    func audioVideoSync() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let config = dir.file("c.toml", "[recording]\npre_event_seconds = 2\n")
        let rec = try RunningRecorder(data: data, config: config)
        try rec.waitForState("buffering")
        sleep(3)
        #expect(try rec.ctl("press", "record", "--double").status == 0)
        sleep(6)
        #expect(try rec.ctl("press", "record", "--hold", "3").status == 0)
        #expect(try rec.ctl("stop").status == 0)
        #expect(try rec.waitForExit() == 0)
        let clip = try Sealed.export(try #require(ClipFiles(data).media.first), data: data)

        // Flash frames: the bottom-right square (88 px at 1176,616 for 720p) turns white.
        let frames = try Shell.run("ffprobe", [
            "-v", "error", "-f", "lavfi", "-i", "movie=\(clip),crop=88:88:1176:616,signalstats",
            "-show_entries", "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0",
        ])
        #expect(frames.status == 0, "\(frames.stderr)")
        let flashes: [Double] = frames.stdout.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ",").compactMap { Double($0) }
            return f.count == 2 && f[1] > 225 ? f[0] : nil
        }
        // Beeps: the 1 kHz beep is over three times louder than the tone.
        let pcm = try Media.decodeAudio(clip)
        let pcmStart = try #require(try Media.firstAudioTime(clip))
        var beeps: [Double] = []
        var quietSince = 0
        for (i, v) in pcm.enumerated() where abs(Int(v)) > 16000 {
            if i - quietSince > 4800 { beeps.append(pcmStart + Double(i) / 48_000) }
            quietSince = i
        }
        #expect(flashes.count >= 5, "flashes at \(flashes)")
        #expect(beeps.count >= 4, "beeps at \(beeps)")
        var pairs = 0
        for b in beeps {
            guard let v = flashes.min(by: { abs($0 - b) < abs($1 - b) }) else { continue }
            // Within 20 ms: a frame lasts 33 ms, and the frames sit on the second to within nanoseconds.
            #expect(abs(v - b) < 0.020, "beep at \(b) s, flash at \(v) s: off by \(Int((v - b) * 1000)) ms")
            pairs += 1
        }
        #expect(pairs == beeps.count)
    }
}
