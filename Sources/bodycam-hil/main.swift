// bodycam-hil: what the VM rig needs to drive real kernel interfaces from inside the guest.
//
//   bodycam-hil tone DEVICE SECONDS BEEP_AT...   play silence into an ALSA playback device for
//       SECONDS, with a 200 ms 1 kHz beep starting at each BEEP_AT (seconds after the start, e.g.
//       4.0 9.5). For each beep it prints `BEEP mono=<ns> real=<s.fraction>`: the CLOCK_MONOTONIC
//       and CLOCK_REALTIME instants its first sample is played (from snd_pcm_delay), so the host
//       can check where the sound landed in a clip.
//
//   bodycam-hil now    prints CLOCK_REALTIME as seconds with nanoseconds (busybox date has no %N).
//
//   bodycam-hil watch FILE SECONDS    samples a 0/1 file (a gpio-sim line's `value`) every 2 ms
//       for SECONDS and prints `WATCH samples=N high=H rises=R` and each high stretch's length in
//       ms (`HIGH <ms>`): a shell loop under TCG is too slow to see a 100 ms flash.
//
//   bodycam-hil clock-sync    tells the kernel its clock is synchronised, as an NTP daemon does
//       (adjtimex: clears STA_UNSYNC, maximum error 0), so the recorder's clock-trust check flips.
//
// Test tooling only: it is not installed and the recorder never runs it.
internal import CALSA
internal import CBodycamHIL

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let text = "bodycam-hil: \(message)\n"
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(1)
}

/// Unbuffered, so the harness sees each line as it happens.
func printLine(_ s: String) {
    let text = s + "\n"
    _ = text.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
}

func monotonicNs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func realtimeS() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func check(_ r: Int32, _ what: String) {
    if r < 0 { fail("\(what): \(String(cString: snd_strerror(r)))") }
}

func tone(device: String, seconds: Double, beeps: [Double]) {
    let rate = 48_000
    let period = 480
    var pcm: OpaquePointer?
    check(snd_pcm_open(&pcm, device, SND_PCM_STREAM_PLAYBACK, 0), "snd_pcm_open \(device)")
    guard let pcm else { fail("snd_pcm_open returned no handle") }
    check(snd_pcm_set_params(pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, 1, UInt32(rate), 0, 50_000),
          "snd_pcm_set_params")
    var buf = [Int16](repeating: 0, count: period)
    let total = Int(seconds * Double(rate))
    let beepLength = rate / 5
    let start = monotonicNs()
    var written = 0
    // Where each beep goes, in samples from the first one written, once its time is known.
    var beepStarts: [Int] = []
    var pending = beeps.sorted()
    while written < total {
        var delay: snd_pcm_sframes_t = 0
        if snd_pcm_delay(pcm, &delay) < 0 { delay = 0 }
        let now = monotonicNs()
        let real = realtimeS()
        // The next sample written plays `delay` frames from now.
        let nextPlays = now + Int64(delay) * 1_000_000_000 / Int64(rate)
        while let b = pending.first {
            let due = start + Int64(b * 1e9)
            let offset = Int((due - nextPlays) * Int64(rate) / 1_000_000_000)
            guard offset < period else { break }
            let at = written + max(0, offset)
            beepStarts.append(at)
            let playMono = nextPlays + Int64(max(0, offset)) * 1_000_000_000 / Int64(rate)
            printLine("BEEP mono=\(playMono) real=\(real + Double(playMono - now) / 1e9)")
            pending.removeFirst()
        }
        for i in 0..<period {
            let n = written + i
            var v = 0.0
            for s in beepStarts where n >= s && n < s + beepLength {
                let t = Double(n - s) / Double(rate)
                v = 0.7 * 32767 * sin(2 * Double.pi * 1000 * t)
            }
            buf[i] = Int16(v)
        }
        var done = 0
        while done < period {
            let r = buf.withUnsafeBufferPointer { snd_pcm_writei(pcm, $0.baseAddress! + done, snd_pcm_uframes_t(period - done)) }
            if r < 0 {
                // EIO: ALSA gave up waiting for room (the loopback's timer stalled in a starved
                // VM). Restart the stream; the beep times above come from snd_pcm_delay, so they
                // stay right.
                if Int32(r) == -EIO {
                    let note = "bodycam-hil: snd_pcm_writei: EIO, restarting the stream\n"
                    _ = note.withCString { write(2, $0, strlen($0)) }
                    check(snd_pcm_prepare(pcm), "snd_pcm_prepare")
                    continue
                }
                check(snd_pcm_recover(pcm, Int32(r), 0), "snd_pcm_writei")
                continue
            }
            done += Int(r)
        }
        written += period
    }
    snd_pcm_drain(pcm)
    snd_pcm_close(pcm)
}

func watch(path: String, seconds: Double) {
    let end = monotonicNs() + Int64(seconds * 1e9)
    var samples = 0
    var high = 0
    var rises = 0
    var risenAt: Int64?
    var stretches: [Int64] = []
    var byte: UInt8 = 0
    while true {
        let now = monotonicNs()
        if now >= end { break }
        // Opened for every sample: a sysfs attribute is generated when it is read.
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { fail("\(path): \(String(cString: strerror(errno)))") }
        let n = read(fd, &byte, 1)
        close(fd)
        if n != 1 { fail("\(path): nothing to read") }
        samples += 1
        if byte == UInt8(ascii: "1") {
            high += 1
            if risenAt == nil {
                risenAt = now
                rises += 1
            }
        } else if let r = risenAt {
            stretches.append((now - r) / 1_000_000)
            risenAt = nil
        }
        var ts = timespec(tv_sec: 0, tv_nsec: 2_000_000)
        nanosleep(&ts, nil)
    }
    if let r = risenAt { stretches.append((monotonicNs() - r) / 1_000_000) }
    printLine("WATCH samples=\(samples) high=\(high) rises=\(rises)")
    for ms in stretches { printLine("HIGH \(ms)") }
}

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: bodycam-hil tone DEVICE SECONDS BEEP_AT...") }
switch args[1] {
case "now":
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let ns = String(ts.tv_nsec)
    printLine("\(ts.tv_sec)." + String(repeating: "0", count: 9 - ns.count) + ns)
case "tone":
    guard args.count >= 4, let seconds = Double(args[3]) else { fail("usage: bodycam-hil tone DEVICE SECONDS BEEP_AT...") }
    tone(device: args[2], seconds: seconds, beeps: args.dropFirst(4).compactMap(Double.init))
case "watch":
    guard args.count == 4, let seconds = Double(args[3]) else { fail("usage: bodycam-hil watch FILE SECONDS") }
    watch(path: args[2], seconds: seconds)
case "clock-sync":
    let state = bodycam_hil_mark_clock_synchronized()
    if state < 0 { fail("adjtimex: \(String(cString: strerror(errno)))") }
    printLine("adjtimex state \(state)")
    // TIME_ERROR (5): the kernel still counts the clock as unsynchronised.
    if state == 5 { fail("the kernel still reports the clock unsynchronised") }
default:
    fail("unknown command \(args[1])")
}
