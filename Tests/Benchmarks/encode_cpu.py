#!/usr/bin/env python3
"""CPU cost of `bodycam encode` against ffmpeg and the x264 CLI on the same input, same settings.

Generates 10 s of 720p30 test video (moving pattern plus sensor-like noise) as YUYV and I420,
then runs, alternating (A B B A per round) and repeated in one run:

  bodycam encode --pixel-format yuyv  vs  ffmpeg -f rawvideo -pix_fmt yuyv422 ... -c:v libx264 ... -f mp4
  bodycam encode --pixel-format i420  vs  x264 --input-res ... -o out.264
  bodycam encode --pixel-format yuyv --detector  vs  bodycam encode --pixel-format yuyv
      (what the activity detector adds: it samples the picture at 10 Hz)

all with preset superfast, tune zerolatency, CRF 23, one thread, a keyframe every 30 frames.
CPU time is user+sys of each child (getrusage); the verdict is the median of the per-round
ratios. Wall time is reported too. The
x264 settings string each tool wrote into its stream is compared, so the work is the same.

Usage: Tests/Benchmarks/encode_cpu.py [--bodycam PATH] [--rounds N] [--seconds S] [--workdir DIR]
                                     [--only ffmpeg|x264|detector]
Exit status: 0 when the ratios meet the targets (≤ 0.98 × ffmpeg, ≤ 1.05 × x264, detector ≤ +3 %),
1 otherwise.
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

W, H, FPS = 1280, 720, 30
X264_OPTS = dict(preset="superfast", tune="zerolatency", crf="23", threads="1")


def run_measured(cmd):
    """Runs cmd; returns (cpu seconds, wall seconds, peak RSS KiB) of that child alone."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest of all children so far; measure it per child
    # through /usr/bin/time would cost another process, so report it only when it grew.
    return cpu, wall, after.ru_maxrss


def settings_string(path):
    data = open(path, "rb").read(2_000_000)
    m = re.search(rb"options: ([ -~]+)", data)
    return m.group(1).decode() if m else ""


def frames_in(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout.strip()
    return int(out or 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bodycam", default=os.path.join(os.path.dirname(__file__), "../../.build/release/bodycam"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workdir")
    ap.add_argument("--only", choices=["ffmpeg", "x264", "detector"])
    args = ap.parse_args()
    for tool in ("ffmpeg", "ffprobe", "x264"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install ffmpeg x264)")
    bodycam = os.path.abspath(args.bodycam)
    work = args.workdir or tempfile.mkdtemp(prefix="bodycam-bench-")
    os.makedirs(work, exist_ok=True)
    yuyv, i420 = os.path.join(work, "in.yuyv"), os.path.join(work, "in.yuv")
    n = args.seconds * FPS
    if not os.path.exists(yuyv) or os.path.getsize(yuyv) != n * W * H * 2:
        src = f"testsrc2=size={W}x{H}:rate={FPS},noise=alls=8:allf=t"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", str(n),
                        "-pix_fmt", "yuyv422", "-f", "rawvideo", yuyv], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuyv422", "-s", f"{W}x{H}",
                        "-i", yuyv, "-pix_fmt", "yuv420p", "-f", "rawvideo", i420], check=True)
    o = X264_OPTS
    common = ["--size", f"{W}x{H}", "--fps", str(FPS), "--preset", o["preset"], "--tune", o["tune"],
              "--crf", o["crf"], "--threads", o["threads"]]
    jobs = {
        "bodycam yuyv": [bodycam, "encode", "--input", yuyv, "--pixel-format", "yuyv", *common,
                         "--output", os.path.join(work, "bodycam-yuyv.mp4")],
        "ffmpeg yuyv": ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuyv422", "-s", f"{W}x{H}",
                        "-r", str(FPS), "-i", yuyv, "-c:v", "libx264", "-preset", o["preset"], "-tune", o["tune"],
                        "-g", str(FPS), "-crf", o["crf"], "-threads", o["threads"], "-pix_fmt", "yuv420p",
                        "-f", "mp4", os.path.join(work, "ffmpeg.mp4")],
        "bodycam yuyv+det": [bodycam, "encode", "--input", yuyv, "--pixel-format", "yuyv", *common, "--detector",
                             "--output", os.path.join(work, "bodycam-yuyv-det.mp4")],
        "bodycam i420": [bodycam, "encode", "--input", i420, "--pixel-format", "i420", *common,
                         "--output", os.path.join(work, "bodycam-i420.mp4")],
        "x264 i420": ["x264", "--quiet", "--preset", o["preset"], "--tune", o["tune"], "--keyint", str(FPS),
                      "--crf", o["crf"], "--threads", o["threads"], "--input-res", f"{W}x{H}", "--fps", str(FPS),
                      "-o", os.path.join(work, "x264.264"), i420],
    }
    pairs = [("bodycam yuyv", "ffmpeg yuyv"), ("bodycam i420", "x264 i420"), ("bodycam yuyv+det", "bodycam yuyv")]
    targets = {pairs[0]: 0.98, pairs[1]: 1.05, pairs[2]: 1.03}
    if args.only:
        pairs = [pairs[["ffmpeg", "x264", "detector"].index(args.only)]]
    jobs = {k: v for k, v in jobs.items() if any(k in p for p in pairs)}
    results = {k: [] for k in jobs}
    # Warm the page cache and the binaries once, unmeasured.
    for cmd in jobs.values():
        run_measured(cmd)
    # Each comparison runs as A B B A in every round, and the round's ratio is taken from those
    # four runs: load from elsewhere on a shared machine drifts over seconds, and pairing cancels
    # it far better than comparing medians of runs minutes apart.
    ratios = {p: [] for p in pairs}
    for r in range(args.rounds):
        for a, b in pairs:
            ca1, wa1, _ = run_measured(jobs[a])
            cb1, wb1, _ = run_measured(jobs[b])
            cb2, wb2, _ = run_measured(jobs[b])
            ca2, wa2, _ = run_measured(jobs[a])
            results[a] += [(ca1, wa1), (ca2, wa2)]
            results[b] += [(cb1, wb1), (cb2, wb2)]
            ratios[(a, b)].append((ca1 + ca2) / (cb1 + cb2))
    outputs = {"bodycam yuyv": "bodycam-yuyv.mp4", "ffmpeg yuyv": "ffmpeg.mp4", "bodycam i420": "bodycam-i420.mp4",
               "x264 i420": "x264.264", "bodycam yuyv+det": "bodycam-yuyv-det.mp4"}
    outputs = {k: v for k, v in outputs.items() if k in jobs}
    strings = {k: settings_string(os.path.join(work, v)) for k, v in outputs.items()}
    same = len(set(strings.values())) == 1
    print(f"input: {n} frames {W}x{H} @ {FPS} fps; {args.rounds} rounds of A B B A; user+sys CPU of each process")
    print(f"{'job':16} {'median s':>8} {'min s':>7} {'wall s':>7} {'frames':>6}   runs (cpu s)")
    for name, rs in results.items():
        cpus = [c for c, _ in rs]
        wall = statistics.median(w for _, w in rs)
        frames = frames_in(os.path.join(work, outputs[name]))
        print(f"{name:16} {statistics.median(cpus):8.3f} {min(cpus):7.3f} {wall:7.3f} {frames:6d}   "
              + " ".join(f"{c:.2f}" for c in cpus))
    ok = True
    for a, b in pairs:
        r = statistics.median(ratios[(a, b)])
        t = targets[(a, b)]
        label = f"{a} / {b}"
        print(f"per-round ratios, {label:34}: " + " ".join(f"{x:.3f}" for x in ratios[(a, b)]))
        print(f"{label:34}: median {r:.3f}  target <= {t:.2f}  {'ok' if r <= t else 'MISSED'}")
        ok = ok and r <= t
    print(f"x264 settings identical in all outputs: {same}")
    if not same:
        for k, v in strings.items():
            print(f"  {k}: {v}")
    return 0 if (ok and same) else 1


if __name__ == "__main__":
    sys.exit(main())
