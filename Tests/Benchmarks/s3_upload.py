#!/usr/bin/env python3
"""Upload throughput of bodycam's offload against `aws s3 cp`, same file, same SeaweedFS, one run.

Starts a real SeaweedFS on 127.0.0.1 (Tests/tools/basestation.py), makes a clip of --mib MiB
(random bytes: sealed clips are incompressible) in a bodycam data directory, then alternates
(A B B A per round):

  bodycam offload   (multipart, 8 MiB parts, x-amz-checksum-sha256 per part, If-None-Match,
                     HeadObject checksum verification, the local copy deleted after it)
  aws s3 cp         (the aws CLI's default multipart upload: 8 MiB parts, 10 threads)

Each upload goes to a new key. Wall time is from the command's start to its exit (bodycam's
includes start-up, hashing the file, the verification and the deletion). Prints MB/s for each
round, medians, and the ratio (median of per-round ratios, bodycam / aws).

Usage: Tests/Benchmarks/s3_upload.py [--bodycam PATH] [--rounds N] [--mib N] [--workdir DIR]
Exit status: 0 when bodycam reaches at least aws's throughput (ratio >= 1.0), 1 otherwise.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.environ.get("BODYCAM_TOOLS_DIR", "/opt/bodycam-ci") + "/venv/bin"


def measure(bodycam, rounds=3, mib=200, workdir=None):
    """Runs the comparison; returns the figures (the suite calls this)."""
    args = argparse.Namespace(bodycam=bodycam, rounds=rounds, mib=mib)
    work = workdir or tempfile.mkdtemp(prefix="bodycam-s3bench-")
    os.makedirs(work, exist_ok=True)
    station_dir = os.path.join(work, "station")
    shutil.rmtree(station_dir, ignore_errors=True)
    os.makedirs(station_dir)
    env = dict(os.environ, PATH=TOOLS + ":" + os.environ.get("PATH", ""))
    station = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "Tests/tools/basestation.py"), "--dir", station_dir, "--bucket", "cam1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "station.log"), "w"), env=env)
    try:
        info = json.loads(station.stdout.readline())
        return run(args, work, info, env)
    finally:
        station.stdin.close()
        station.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bodycam", default=os.path.join(REPO, ".build/release/bodycam"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    res = measure(args.bodycam, args.rounds, args.mib, args.workdir)
    sys.exit(0 if res["ratio"] >= 1.0 else 1)


def run(args, work, info, env):
    size = args.mib << 20
    source = os.path.join(work, "clip.bin")
    if not os.path.exists(source) or os.path.getsize(source) != size:
        with open(source, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.join(data, "clips"))
    subprocess.run([args.bodycam, "keygen", "--device", os.path.join(data, "keys")], check=True, capture_output=True)
    creds = os.path.join(work, "s3.toml")
    with open(creds, "w") as f:
        f.write(f'access_key_id = "{info["access_key"]}"\nsecret_access_key = "{info["secret_key"]}"\n')
    os.chmod(creds, 0o600)
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(f'[device]\nid = "bench-1"\n[offload]\ntarget = "s3"\nendpoint = "{info["endpoint"]}"\n'
                f'bucket = "cam1"\nprefix = "bench"\ncredentials_file = "{creds}"\npart_size_mib = 8\n')
    aws_env = dict(env, AWS_ACCESS_KEY_ID=info["access_key"], AWS_SECRET_ACCESS_KEY=info["secret_key"],
                   AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    seq = [0]
    cpus = {"bodycam": [], "aws": []}

    def cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def bodycam():
        seq[0] += 1
        clip = f"bench-1-20261127T120000Z-{seq[0]:04d}"
        os.link(source, os.path.join(data, "clips", clip + ".mp4.age"))
        with open(os.path.join(data, "clips", clip + ".json"), "w") as f:
            json.dump({"clip_id": clip, "file": clip + ".mp4.age", "device_id": "bench-1", "markers": [],
                       "start_unix": 1795780800 + seq[0]}, f)
        t0 = time.monotonic()
        c0 = cpu()
        p = subprocess.run([args.bodycam, "offload", "--config", config, "--data", data],
                           capture_output=True, text=True)
        wall = time.monotonic() - t0
        cpus["bodycam"].append(cpu() - c0)
        if p.returncode != 0:
            sys.exit(f"bodycam offload failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        if os.path.exists(os.path.join(data, "clips", clip + ".mp4.age")):
            sys.exit("bodycam offload left the clip on the device")
        return wall

    def aws():
        seq[0] += 1
        t0 = time.monotonic()
        c0 = cpu()
        p = subprocess.run([os.path.join(TOOLS, "aws"), "--endpoint-url", info["endpoint"], "--region", "us-east-1",
                            "s3", "cp", "--only-show-errors", source, f"s3://cam1/bench/aws-{seq[0]:04d}"],
                           capture_output=True, text=True, env=aws_env)
        wall = time.monotonic() - t0
        cpus["aws"].append(cpu() - c0)
        if p.returncode != 0:
            sys.exit(f"aws s3 cp failed ({p.returncode}): {p.stderr}")
        return wall

    mb = size / 1e6
    rows = []
    print(f"{args.mib} MiB clip, SeaweedFS at {info['endpoint']}, {args.rounds} rounds (A B B A)")
    print(f"{'round':>5} {'bodycam MB/s':>13} {'aws cp MB/s':>12} {'ratio':>7}")
    for r in range(args.rounds):
        a1 = bodycam()
        b1 = aws()
        b2 = aws()
        a2 = bodycam()
        ours = mb / ((a1 + a2) / 2)
        theirs = mb / ((b1 + b2) / 2)
        rows.append((ours, theirs, ours / theirs))
        print(f"{r + 1:>5} {ours:>13.1f} {theirs:>12.1f} {ours / theirs:>7.3f}")
    ours = statistics.median(x[0] for x in rows)
    theirs = statistics.median(x[1] for x in rows)
    ratio = statistics.median(x[2] for x in rows)
    print(f"median: bodycam offload {ours:.1f} MB/s, aws s3 cp {theirs:.1f} MB/s, ratio {ratio:.3f} (target >= 1.0)")
    print(f"client CPU per upload (median): bodycam {statistics.median(cpus['bodycam']):.2f} s, "
          f"aws {statistics.median(cpus['aws']):.2f} s")
    return {"bodycam_mb_s": round(ours, 1), "aws_mb_s": round(theirs, 1), "ratio": round(ratio, 3),
            "per_round": [round(x[2], 3) for x in rows], "bodycam_cpu_s": round(statistics.median(cpus["bodycam"]), 2),
            "aws_cpu_s": round(statistics.median(cpus["aws"]), 2)}


if __name__ == "__main__":
    main()
