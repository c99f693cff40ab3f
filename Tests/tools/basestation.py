#!/usr/bin/env python3
"""basestation.py — a real S3 base station (SeaweedFS `weed mini`) for bodycam tests.

Usage:
    python3 Tests/tools/basestation.py --dir DIR [--bucket NAME ...] [--object-lock]
                                       [--access-key AK --secret-key SK] [--ignore-stdin]

Starts `weed mini` with every port it opens (S3, master, volume, filer, admin and their gRPC
ports) on a free 127.0.0.1 port, data and log (DIR/weed.log) under DIR, WebDAV / admin UI /
Iceberg / Lance / telemetry off. Writes DIR/identities.json with three identities:
  * the device key (AK/SK, random unless given): Read/Write/List/Tagging on the buckets only
    (plus Admin on them with --object-lock, for retention/legal-hold calls);
  * a "stranger" key: valid signature, no rights on the buckets (for AccessDenied tests);
  * an internal admin key, used only by this script to create and check the buckets.
Waits until a signed request is answered, creates the buckets (with
`x-amz-bucket-object-lock-enabled: true` under --object-lock, then checks
GetObjectLockConfiguration; a warning on stderr if that fails), then prints ONE JSON line:
  {"endpoint":"http://127.0.0.1:PORT","region":"us-east-1","access_key":..,"secret_key":..,
   "buckets":[..],"pid":WEED_PID, "stranger_access_key":..,"stranger_secret_key":..,
   "dir":DIR,"log":DIR/weed.log,"ports":{..}}
and keeps running until stdin reaches EOF (stdin is watched only if it is a pipe, socket or tty,
not /dev/null or a file; --ignore-stdin turns that off) or SIGTERM/SIGINT/SIGHUP; then it
stops weed's process group (SIGTERM, SIGKILL after 10 s) and exits 0. DIR is never removed.
If weed dies on its own, exits 1 with weed's last log lines on stderr. Exit 2: weed not found.

Reusing a DIR restarts on the same data (e.g. a "server restart" test): existing buckets are
kept (BucketAlreadyOwnedByYou is fine); new random ports are picked each time.

Also importable: `sign(...)` and `s3_request(...)` are a small stdlib SigV4 client (test_tools.py).
Python 3.11 stdlib only.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import glob
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse

REGION = "us-east-1"
FALLBACK_WEED = "/opt/bodycam-ci/venv/bin/weed"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# --------------------------------------------------------------------------------------------
# SigV4 (AWS Signature Version 4, S3 flavour: path not double-encoded)
# --------------------------------------------------------------------------------------------


def _uri_encode(s: str, keep_slash: bool) -> str:
    return urllib.parse.quote(s, safe="/~" if keep_slash else "~")


def canonical_query(query: str | dict | list | None) -> str:
    """Canonical query string from 'a=1&b' text, a dict or a list of pairs."""
    if not query:
        return ""
    if isinstance(query, str):
        pairs = []
        for part in query.split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            pairs.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
    elif isinstance(query, dict):
        pairs = [(str(k), "" if v is None else str(v)) for k, v in query.items()]
    else:
        pairs = [(str(k), "" if v is None else str(v)) for k, v in query]
    enc = sorted((_uri_encode(k, False), _uri_encode(v, False)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def sign(method: str, host: str, path: str, query, headers: dict, payload_sha256: str,
         access_key: str, secret_key: str, region: str = REGION, service: str = "s3",
         now: datetime.datetime | None = None) -> dict:
    """Return a new header dict = headers + host, x-amz-date, x-amz-content-sha256, Authorization.

    `path` is the raw (unencoded) path, e.g. "/bucket/key with space"; encode it the same way
    on the wire (use `encode_path`). `payload_sha256` is the hex SHA-256 of the body or
    "UNSIGNED-PAYLOAD".
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    out = {k: v for k, v in headers.items()}
    lower = {k.lower(): k for k in out}
    if "host" not in lower:
        out["Host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha256
    canon = {}
    for k, v in out.items():
        lk = k.lower()
        if lk in ("host", "content-type", "content-md5") or lk.startswith("x-amz-"):
            canon[lk] = " ".join(str(v).strip().split())
    signed = ";".join(sorted(canon))
    creq = "\n".join([
        method.upper(),
        encode_path(path),
        canonical_query(query),
        "".join(f"{k}:{canon[k]}\n" for k in sorted(canon)),
        signed,
        payload_sha256,
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = hmac.new(("AWS4" + secret_key).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={signed}, Signature={sig}")
    return out


def encode_path(path: str) -> str:
    return _uri_encode(path or "/", True)


class Response:
    def __init__(self, status: int, reason: str, headers: list, body: bytes):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name: str, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def __repr__(self):
        return f"<Response {self.status} {self.reason} {len(self.body)}B>"


def s3_request(endpoint: str, method: str, path: str, query=None, body: bytes = b"",
               headers: dict | None = None, access_key: str = "", secret_key: str = "",
               region: str = REGION, timeout: float = 30.0, unsigned_payload: bool = False,
               expect_continue: bool = False) -> Response:
    """One signed request over a fresh http.client connection; returns Response.

    Raises OSError / http.client exceptions on connection failures.
    """
    u = urllib.parse.urlsplit(endpoint)
    host = u.netloc
    headers = dict(headers or {})
    if body or method.upper() in ("PUT", "POST"):
        headers.setdefault("Content-Length", str(len(body)))
    if expect_continue:
        headers["Expect"] = "100-continue"
    payload = "UNSIGNED-PAYLOAD" if unsigned_payload else hashlib.sha256(body).hexdigest()
    hdrs = sign(method, host, path, query, headers, payload, access_key, secret_key, region)
    q = canonical_query(query)
    target = encode_path(path) + (f"?{q}" if q else "")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# weed mini
# --------------------------------------------------------------------------------------------

PORT_FLAGS = [
    "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
    "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
]


def find_weed() -> str | None:
    env = os.environ.get("BODYCAM_WEED")
    if env:
        return env if os.access(env, os.X_OK) else None
    w = shutil.which("weed")
    if w:
        return w
    return FALLBACK_WEED if os.access(FALLBACK_WEED, os.X_OK) else None


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together while picking, so they differ)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
            socks.append(s)
            if p not in ports:
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


def _pdeathsig():
    # weed gets SIGTERM if this script dies without cleaning up (e.g. SIGKILL).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stdin_is_watchable() -> bool:
    """True if stdin is a pipe, socket or terminal, whose EOF means "the caller is done".
    A regular file or /dev/null would hit EOF at once, so then only signals stop us."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def log(msg: str):
    print(f"basestation: {msg}", file=sys.stderr, flush=True)


def tail(path: str, n: int = 40, start: int = 0) -> str:
    """Last n lines of path, not looking before byte offset `start`."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(start, size - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


def write_identities(path: str, buckets, ak, sk, admin_ak, admin_sk, stranger_ak, stranger_sk,
                     object_lock: bool):
    rights = ["Read", "Write", "List", "Tagging"] + (["Admin"] if object_lock else [])
    doc = {"identities": [
        {"name": "bodycam-admin",
         "credentials": [{"accessKey": admin_ak, "secretKey": admin_sk}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "bodycam-device",
         "credentials": [{"accessKey": ak, "secretKey": sk}],
         "actions": [f"{r}:{b}" for b in buckets for r in rights]},
        {"name": "bodycam-stranger",
         "credentials": [{"accessKey": stranger_ak, "secretKey": stranger_sk}],
         "actions": ["Read:bodycam-stranger-own-bucket"]},
    ]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def start_weed(weed: str, data_dir: str, ids_path: str, log_path: str):
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    cmd = [weed, "-logtostderr", "mini",
           f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-s3.config={ids_path}", "-admin.ui=false", "-webdav=false",
           "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
           "-volume.preStopSeconds=0", "-s3.autoCreateBucket=false"]
    cmd += [f"-{k}={v}" for k, v in ports.items()]
    logf = open(log_path, "ab")
    logf.write(f"\n==== basestation: {' '.join(cmd)}\n".encode())
    logf.flush()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_pdeathsig, cwd=data_dir)
    logf.close()
    return proc, ports


def stop_weed(proc: subprocess.Popen, grace: float = 10.0):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"weed did not stop in {grace:.0f} s after SIGTERM; SIGKILL")
    # Whatever else is left in the group (weed is one process, but be thorough).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def cleanup_sockets(ports: dict):
    # weed leaves unix sockets /tmp/seaweedfs-<component>-<port>.sock behind after it stops;
    # those ports were ours (weed is dead now), so the sockets are too.
    for port in ports.values():
        for p in glob.glob(f"/tmp/seaweedfs-*-{int(port)}.sock"):
            try:
                if stat.S_ISSOCK(os.lstat(p).st_mode):
                    os.unlink(p)
            except OSError:
                pass


def wait_ready(endpoint, admin_ak, admin_sk, proc, deadline, stop) -> str | None:
    """Wait until a signed ListBuckets is answered 200. Returns None or an error message."""
    last = "no answer"
    while time.monotonic() < deadline:
        if stop.is_set():
            return "stopped by signal during startup"
        if proc.poll() is not None:
            return f"weed exited with status {proc.returncode} during startup"
        try:
            r = s3_request(endpoint, "GET", "/", access_key=admin_ak, secret_key=admin_sk,
                           timeout=2)
            if r.status == 200:
                return None
            last = f"HTTP {r.status} {r.body[:200]!r}"
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        time.sleep(0.1)
    return f"not ready in time (last: {last})"


def create_buckets(endpoint, admin_ak, admin_sk, buckets, object_lock, deadline):
    for b in buckets:
        hdrs = {"x-amz-bucket-object-lock-enabled": "true"} if object_lock else {}
        while True:
            r = s3_request(endpoint, "PUT", f"/{b}", headers=hdrs,
                           access_key=admin_ak, secret_key=admin_sk)
            if r.status == 200 or b"BucketAlreadyOwnedByYou" in r.body:
                break
            if r.status < 500 or time.monotonic() > deadline:
                raise RuntimeError(f"CreateBucket {b}: HTTP {r.status} {r.body[:300]!r}")
            time.sleep(0.2)
        if object_lock:
            r = s3_request(endpoint, "GET", f"/{b}", query="object-lock",
                           access_key=admin_ak, secret_key=admin_sk)
            if r.status != 200 or b"<ObjectLockEnabled>Enabled</ObjectLockEnabled>" not in r.body:
                log(f"warning: Object Lock not confirmed on bucket {b}: "
                    f"GetObjectLockConfiguration -> HTTP {r.status} {r.body[:300]!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="data dir (created; never removed)")
    ap.add_argument("--bucket", action="append", default=[],
                    help="bucket to create (repeatable; default: bodycam)")
    ap.add_argument("--object-lock", action="store_true",
                    help="create buckets with Object Lock enabled")
    ap.add_argument("--access-key", default=None)
    ap.add_argument("--secret-key", default=None)
    ap.add_argument("--startup-timeout", type=float, default=30.0)
    ap.add_argument("--ignore-stdin", action="store_true",
                    help="do not stop at stdin EOF (only on SIGTERM/SIGINT)")
    args = ap.parse_args(argv)

    weed = find_weed()
    if not weed:
        print("basestation: SeaweedFS `weed` not found ($BODYCAM_WEED, PATH, "
              f"{FALLBACK_WEED}); run .ci/setup to install it", file=sys.stderr)
        return 2

    buckets = args.bucket or ["bodycam"]
    ak = args.access_key or ("BCAM" + secrets.token_hex(8).upper())
    sk = args.secret_key or secrets.token_urlsafe(30)
    admin_ak, admin_sk = "BCADM" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    str_ak, str_sk = "BCSTR" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)

    data_dir = os.path.abspath(args.dir)
    os.makedirs(os.path.join(data_dir, "data"), exist_ok=True)
    ids_path = os.path.join(data_dir, "identities.json")
    log_path = os.path.join(data_dir, "weed.log")
    write_identities(ids_path, buckets, ak, sk, admin_ak, admin_sk, str_ak, str_sk,
                     args.object_lock)

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    proc = ports = None
    for attempt in range(3):
        log_start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        proc, ports = start_weed(weed, os.path.join(data_dir, "data"), ids_path, log_path)
        endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        deadline = time.monotonic() + args.startup_timeout
        err = wait_ready(endpoint, admin_ak, admin_sk, proc, deadline, stop)
        if err is None:
            try:
                create_buckets(endpoint, admin_ak, admin_sk, buckets, args.object_lock, deadline)
            except (RuntimeError, OSError, http.client.HTTPException) as e:
                err = str(e)
        if err is None:
            break
        stop_weed(proc)
        cleanup_sockets(ports)
        t = tail(log_path, start=log_start)
        if stop.is_set():
            log("stopped during startup")
            return 1
        if attempt < 2 and any(m in t for m in ("address already in use",
                                                "Port allocation failed", "is not available")):
            log("port collision; retrying with new ports")
            continue
        log(f"weed failed to start: {err}\n--- last lines of {log_path} ---\n{t}")
        return 1

    info = {"endpoint": endpoint, "region": REGION, "access_key": ak, "secret_key": sk,
            "buckets": buckets, "pid": proc.pid,
            "stranger_access_key": str_ak, "stranger_secret_key": str_sk,
            "object_lock": args.object_lock, "dir": data_dir, "log": log_path, "ports": ports}
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()

    if not args.ignore_stdin and stdin_is_watchable():
        def watch_stdin():
            # Raw fd reads: a daemon thread blocked inside sys.stdin's buffered reader makes the
            # interpreter abort at exit.
            try:
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    status = 0
    while not stop.wait(0.2):
        if proc.poll() is not None:
            log(f"weed (pid {proc.pid}) died unexpectedly with status {proc.returncode}\n"
                f"--- last lines of {log_path} ---\n{tail(log_path, start=log_start)}")
            status = 1
            break
    stop_weed(proc)
    cleanup_sockets(ports)
    return status


if __name__ == "__main__":
    sys.exit(main())
