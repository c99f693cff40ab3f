#!/usr/bin/env python3
"""soak.py — an hour (by default) of the real recorder on the sim board, watched from outside.

Runs `bodycam run` with the microphone's clock off by --ppm (default +100) and a cycle every
five minutes: a recording of 2.5 minutes (rolling over every minute) with markers and a mute
span, then a dock with a directory base station, an undock in the middle of the uploads (a cut
transfer), and a dock again until the queue is empty. Every 5 s it samples the process's RSS,
threads and open descriptors from /proc.

At the end: every offloaded clip verifies (`bodycam verify`); in the first and the last long
clip, every 1 kHz beep (the sim makes one each whole second) is matched with the white flash
painted in the same second, and the offsets are reported (audio/video drift); memory and
descriptors are compared between the first and last quarter of the run.

Usage: Tests/tools/soak.py [--bodycam PATH] [--minutes 60] [--ppm 100] [--size 640x360]
                           [--out DIR]
Exit 0 when: RSS grows < 4 MiB between the quarters, the descriptor floor does not rise,
every clip verifies, and every beep is within 20 ms of its flash. Python 3.11 stdlib only.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def sh(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


class Recorder:
    def __init__(self, bodycam, board, config, data, log):
        self.bodycam, self.data = bodycam, data
        self.log = open(log, "w")
        self.proc = subprocess.Popen([bodycam, "run", "--board", board, "--config", config, "--data", data],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def ctl(self, *args):
        r = sh(self.bodycam, "ctl", "--data", self.data, *args)
        if r.returncode != 0:
            print(f"ctl {' '.join(args)} failed: {r.stderr.strip()}", file=sys.stderr)
        return r

    def status(self):
        r = self.ctl("status", "--json")
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def wait_state(self, state, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"bodycam exited with {self.proc.returncode}")
            if self.status().get("state") == state:
                return
            time.sleep(0.2)
        sys.exit(f"state {state} not reached")


def sample(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    out["t"] = time.time()
    return out


def flashes_and_beeps(clip, width, height):
    """Flash times (the white square) and beep onsets (1 kHz, loud) in a plain MP4."""
    side = max(8, (height // 8) & ~7)
    x0, y0 = (width - side - 16) & ~1, (height - side - 16) & ~1
    r = sh("ffprobe", "-v", "error", "-f", "lavfi", "-i",
           f"movie={clip},crop={side}:{side}:{x0}:{y0},signalstats",
           "-show_entries", "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0")
    flashes = []
    for line in r.stdout.splitlines():
        f = line.split(",")
        if len(f) == 2 and float(f[1]) > 225:
            flashes.append(float(f[0]))
    first = sh("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time",
               "-read_intervals", "%+#1", "-of", "csv=p=0", clip).stdout.split()
    start = float(first[0]) if first else 0.0
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", clip, "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
                         capture_output=True).stdout
    import array
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    beeps, quiet_since = [], -10**9
    for i, v in enumerate(samples):
        if v > 16000 or v < -16000:
            if i - quiet_since > 4800:
                beeps.append(start + i / 48000)
            quiet_since = i
    return flashes, beeps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodycam", default=os.path.join(REPO, ".build/release/bodycam"))
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--ppm", type=float, default=100)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    width, height = map(int, a.size.split("x"))
    out = a.out or f"/tmp/bodycam-soak-{int(time.time())}"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out + "/station")
    open(out + "/station/.bodycam-base-station", "w").close()
    data = out + "/data"
    board = open(os.path.join(REPO, "board/sim.toml")).read()
    board = board.replace("width = 1280", f"width = {width}").replace("height = 720", f"height = {height}")
    board = board.replace("clock_error_ppm = 0 ", f"clock_error_ppm = {a.ppm} ")
    open(out + "/board.toml", "w").write(board)
    open(out + "/config.toml", "w").write(f"""
[recording]
pre_event_seconds = 10
rollover_minutes = 1
[offload]
target = "directory"
path = "{out}/station"
retry_base_seconds = 1
retry_max_seconds = 5
""")
    rec = Recorder(a.bodycam, out + "/board.toml", out + "/config.toml", data, out + "/bodycam.log")
    rec.wait_state("buffering")
    samples, stop = [], threading.Event()

    def sampler():
        while not stop.is_set():
            s = sample(rec.proc.pid)
            if s:
                samples.append(s)
            stop.wait(5)

    threading.Thread(target=sampler, daemon=True).start()
    t0 = time.time()
    end = t0 + a.minutes * 60
    cycles = cuts = 0
    print(f"soak: {a.minutes} min, {width}x{height}, microphone clock {a.ppm:+} ppm, output in {out}", flush=True)
    while time.time() < end - 60:
        cycles += 1
        rec.ctl("press", "record", "--double")
        began = time.time()
        for k in range(5):  # 150 s: a marker every 30 s, muted from 60 to 90 s
            time.sleep(max(0, began + 30 * (k + 1) - time.time()))
            rec.ctl("press", "marker")
            if k in (1, 2):
                rec.ctl("press", "mute")
        rec.ctl("press", "record", "--hold", "3")
        rec.ctl("dock")
        time.sleep(3)
        rec.ctl("undock")  # in the middle of the uploads
        cuts += 1
        time.sleep(2)
        rec.ctl("dock")
        deadline = min(end, time.time() + 120)
        while time.time() < deadline:
            o = rec.status().get("offload", {})
            if o.get("pending") == 0 and o.get("current") is None:
                break
            time.sleep(1)
        rec.ctl("undock")
        elapsed = (time.time() - t0) / 60
        s = samples[-1] if samples else {}
        print(f"  cycle {cycles} done at {elapsed:.1f} min: RSS {s.get('VmRSS', 0) / 1024:.1f} MiB, "
              f"{s.get('fds')} fds, {s.get('Threads')} threads", flush=True)
        time.sleep(max(0, min(end, t0 + cycles * 300) - time.time()))
    stop.set()
    rec.ctl("stop")
    code = rec.proc.wait(timeout=60)
    # Whatever was still queued goes to the station now, the way a docked device would send it.
    sh(a.bodycam, "offload", "--config", out + "/config.toml", "--data", data)

    failures = []
    if code != 0:
        failures.append(f"bodycam exited {code}")
    warm = [s for s in samples if s["t"] - t0 > 120]
    q = max(1, len(warm) // 4)
    rss_first = statistics.median(s["VmRSS"] for s in warm[:q]) / 1024
    rss_last = statistics.median(s["VmRSS"] for s in warm[-q:]) / 1024
    peak = max(s["VmHWM"] for s in samples) / 1024
    fds_first, fds_last = warm[0]["fds"], warm[-1]["fds"]
    fd_range = (min(s["fds"] for s in warm), max(s["fds"] for s in warm))
    # Uploads hold a few descriptors for a while; a leak shows as a rising floor.
    fd_floor_first = min(s["fds"] for s in warm[:q])
    fd_floor_last = min(s["fds"] for s in warm[-q:])
    threads = (min(s["Threads"] for s in warm), max(s["Threads"] for s in warm))
    if rss_last - rss_first >= 4:
        failures.append(f"RSS grew {rss_last - rss_first:.1f} MiB")
    if fd_floor_last > fd_floor_first:
        failures.append(f"descriptor floor rose from {fd_floor_first} to {fd_floor_last}")

    clips = sorted(os.path.join(d, f) for d, _, fs in os.walk(out + "/station") for f in fs if f.endswith(".mp4.age"))
    bad = [c for c in clips if sh(a.bodycam, "verify", c).returncode != 0]
    if bad:
        failures.append(f"{len(bad)} clips do not verify: {bad[:3]}")
    long_clips = []
    for c in clips:
        m = json.load(open(c[: -len(".mp4.age")] + ".json"))
        if m.get("duration", 0) >= 50 and not m.get("mute_spans"):
            long_clips.append((m["start_unix"], c))
    long_clips.sort()
    drift = {}
    key = os.path.join(data, "keys/demo-agency.key")
    for label, (_, c) in (("first", long_clips[0]), ("last", long_clips[-1])) if long_clips else ():
        plain = os.path.join(out, label + ".mp4")
        r = sh(a.bodycam, "export", "--identity", key, c, "--output", plain)
        if r.returncode != 0:
            failures.append(f"export {c}: {r.stderr.strip()}")
            continue
        flashes, beeps = flashes_and_beeps(plain, width, height)
        offsets = [min(flashes, key=lambda f: abs(f - b)) - b for b in beeps] if flashes else []
        drift[label] = (os.path.basename(c), len(beeps), offsets)
        if len(offsets) < 20:
            failures.append(f"{label} clip: only {len(offsets)} beep/flash pairs")
        elif max(abs(o) for o in offsets) > 0.020:
            failures.append(f"{label} clip: a beep {max(abs(o) for o in offsets) * 1000:.1f} ms from its flash")
    if not long_clips:
        failures.append("no clip of 50 s or more without mute")

    minutes = (time.time() - t0) / 60
    print(f"\nsoak summary ({minutes:.1f} min, microphone clock {a.ppm:+} ppm, {width}x{height}):")
    print(f"  cycles {cycles} (recording 150 s with rollovers, markers, a mute span; dock, undock mid-upload, dock)")
    print(f"  clips offloaded and verified: {len(clips) - len(bad)} of {len(clips)}")
    print(f"  RSS median first quarter {rss_first:.1f} MiB, last quarter {rss_last:.1f} MiB, peak {peak:.1f} MiB")
    print(f"  descriptors {fds_first} -> {fds_last} (range {fd_range[0]}–{fd_range[1]}, floor {fd_floor_first} -> {fd_floor_last}); "
          f"threads {threads[0]}–{threads[1]}")
    for label, (name, n, offsets) in drift.items():
        if offsets:
            print(f"  A/V in the {label} long clip ({name}): {n} beeps, offset mean {statistics.mean(offsets) * 1000:+.1f} ms, "
                  f"worst {max(offsets, key=abs) * 1000:+.1f} ms")
    print("RESULT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
