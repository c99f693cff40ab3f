#!/usr/bin/env python3
"""test_tools.py — self-check for basestation.py and faultproxy.py (and the SeaweedFS facts the
Swift uploader relies on).

Run:  python3 Tests/tools/test_tools.py [-v] [unittest args]

Starts one basestation (SeaweedFS `weed mini` on 127.0.0.1, bucket "cam1") and one faultproxy in
front of it, and talks to both with the small stdlib SigV4 client from basestation.py. Everything
it starts is stopped and its temporary directory removed at the end. Python 3.11 stdlib only.
"""
from __future__ import annotations

import base64
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import basestation as bs  # noqa: E402

BASESTATION = os.path.join(HERE, "basestation.py")
FAULTPROXY = os.path.join(HERE, "faultproxy.py")
BUCKET = "cam1"

ENV = {}  # filled by setUpModule


def b64(d: bytes) -> str:
    return base64.b64encode(d).decode()


def sha256_b64(d: bytes) -> str:
    return b64(hashlib.sha256(d).digest())


def start_basestation(tmp, *extra):
    p = subprocess.Popen([sys.executable, BASESTATION, "--dir", tmp, *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        p.wait(30)
        raise RuntimeError(f"basestation exited {p.returncode} without its JSON line")
    return p, json.loads(line)


def stop(p, timeout=30):
    if p.stdout:
        p.stdout.close()
    if p.poll() is None:
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait(10)
    return p.returncode


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="bodycam-tools-")
    ENV["tmp"] = tmp
    try:
        ENV["bs_proc"], ENV["bs"] = start_basestation(os.path.join(tmp, "bs"), "--bucket", BUCKET)
        up = ENV["bs"]["endpoint"].removeprefix("http://")
        px = subprocess.Popen([sys.executable, FAULTPROXY, "--upstream", up, "--seed", "1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ENV["px_proc"] = px
        ENV["px"] = json.loads(px.stdout.readline())
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for k in ("px_proc", "bs_proc"):
        if k in ENV:
            stop(ENV[k])
    if "tmp" in ENV:
        shutil.rmtree(ENV["tmp"], ignore_errors=True)


def direct():
    return ENV["bs"]["endpoint"]


def proxied():
    return f"http://127.0.0.1:{ENV['px']['port']}"


def req(method, path, endpoint=None, **kw):
    kw.setdefault("access_key", ENV["bs"]["access_key"])
    kw.setdefault("secret_key", ENV["bs"]["secret_key"])
    return bs.s3_request(endpoint or proxied(), method, path, **kw)


def ctl(method, path, doc=None):
    r = urllib.request.Request(f"http://127.0.0.1:{ENV['px']['control_port']}{path}",
                               method=method,
                               data=None if doc is None else json.dumps(doc).encode())
    with urllib.request.urlopen(r, timeout=10) as resp:
        return json.loads(resp.read())


def xml_code(body: bytes):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def upload_id(body: bytes) -> str:
    return re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()


def multipart(endpoint, key, parts, complete_headers=None, part_checksums=True):
    """Create (SHA256), upload parts with x-amz-checksum-sha256, complete. Returns (uid, resp)."""
    r = req("POST", f"/{BUCKET}/{key}", endpoint, query="uploads",
            headers={"x-amz-checksum-algorithm": "SHA256"})
    assert r.status == 200, r.body
    uid = upload_id(r.body)
    etags = []
    for n, p in enumerate(parts, 1):
        r = req("PUT", f"/{BUCKET}/{key}", endpoint, query={"partNumber": n, "uploadId": uid},
                body=p, headers={"x-amz-checksum-sha256": sha256_b64(p)})
        assert r.status == 200, r.body
        etags.append(r.header("ETag"))
    return uid, complete(endpoint, key, uid, parts, etags, complete_headers, part_checksums)


def complete(endpoint, key, uid, parts, etags, headers=None, part_checksums=True):
    x = "<CompleteMultipartUpload>"
    for n, (p, e) in enumerate(zip(parts, etags), 1):
        cs = f"<ChecksumSHA256>{sha256_b64(p)}</ChecksumSHA256>" if part_checksums else ""
        x += f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag>{cs}</Part>"
    x += "</CompleteMultipartUpload>"
    return req("POST", f"/{BUCKET}/{key}", endpoint, query={"uploadId": uid}, body=x.encode(),
               headers=headers or {})


def raw_exchange(port, data: bytes, timeout=10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


def weed_listening(pid):
    """[(ip, port)] of the TCP sockets process `pid` listens on (from /proc)."""
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    hexip, hexport = cols[1].split(":")
                    ip = ("127.0.0.1" if hexip == "0100007F" else hexip)
                    out.append((ip, int(hexport, 16)))
    return out


class ProxyTestCase(unittest.TestCase):
    def setUp(self):
        ctl("POST", "/reset")

    def tearDown(self):
        ctl("POST", "/reset")

    def last_log(self, n=1):
        return ctl("GET", "/log")[-n:]


class TestBaseStation(unittest.TestCase):
    def test_info_line(self):
        info = ENV["bs"]
        self.assertTrue(info["endpoint"].startswith("http://127.0.0.1:"))
        self.assertEqual(info["region"], "us-east-1")
        self.assertEqual(info["buckets"], [BUCKET])
        self.assertGreater(info["pid"], 0)

    def test_every_port_is_loopback(self):
        # All listening sockets of weed are on 127.0.0.1 and are the ports we chose. (The admin
        # server may come up a moment after S3 is ready, hence the short wait.)
        deadline = time.monotonic() + 10
        while True:
            listening = weed_listening(ENV["bs"]["pid"])
            ports = sorted(p for _, p in listening)
            if ports == sorted(ENV["bs"]["ports"].values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(listening)
        for addr, port in listening:
            self.assertEqual(addr, "127.0.0.1", f"weed listens on {addr}:{port}")
        self.assertEqual(ports, sorted(ENV["bs"]["ports"].values()))

    def test_wrong_and_foreign_credentials(self):
        r = req("GET", f"/{BUCKET}", direct(), query={"list-type": "2"}, secret_key="wrong")
        self.assertEqual((r.status, xml_code(r.body)), (403, "SignatureDoesNotMatch"))
        r = req("GET", f"/{BUCKET}", direct(), query={"list-type": "2"},
                access_key=ENV["bs"]["stranger_access_key"],
                secret_key=ENV["bs"]["stranger_secret_key"])
        self.assertEqual((r.status, xml_code(r.body)), (403, "AccessDenied"))
        r = req("GET", f"/{BUCKET}", direct(), query={"list-type": "2"}, access_key="NOPE")
        self.assertEqual((r.status, xml_code(r.body)), (403, "InvalidAccessKeyId"))
        # A bucket the key has no rights on (whether or not it exists) -> AccessDenied.
        r = req("PUT", "/nosuchbucket/x", direct(), body=b"x")
        self.assertEqual((r.status, xml_code(r.body)), (403, "AccessDenied"))

    def test_second_instance_and_clean_stop(self):
        d = os.path.join(ENV["tmp"], "bs2")
        t0 = time.monotonic()
        p, info = start_basestation(d, "--bucket", "other", "--object-lock")
        try:
            self.assertLess(time.monotonic() - t0, 15)
            self.assertNotEqual(info["endpoint"], ENV["bs"]["endpoint"])
            self.assertFalse(set(info["ports"].values()) & set(ENV["bs"]["ports"].values()))
            r = bs.s3_request(info["endpoint"], "GET", "/other", query="object-lock",
                              access_key=info["access_key"], secret_key=info["secret_key"])
            self.assertEqual(r.status, 200, r.body)
            self.assertIn(b"<ObjectLockEnabled>Enabled</ObjectLockEnabled>", r.body)
        finally:
            self.assertEqual(stop(p), 0)
        with self.assertRaises(ProcessLookupError):
            os.kill(info["pid"], 0)
        self.assertTrue(os.path.exists(os.path.join(d, "weed.log")))
        for port in info["ports"].values():
            self.assertEqual(glob.glob(f"/tmp/seaweedfs-*-{port}.sock"), [])

    def test_missing_weed(self):
        env = dict(os.environ, BODYCAM_WEED="/nonexistent/weed")
        r = subprocess.run([sys.executable, BASESTATION, "--dir",
                            os.path.join(ENV["tmp"], "none")], env=env, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b".ci/setup", r.stderr)


class TestProxy(ProxyTestCase):
    def test_put_get_through_proxy(self):
        data = os.urandom(300_000)
        r = req("PUT", f"/{BUCKET}/p/put-get.bin", body=data,
                headers={"x-amz-checksum-sha256": sha256_b64(data)})
        self.assertEqual(r.status, 200, r.body)
        r = req("GET", f"/{BUCKET}/p/put-get.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        r = req("HEAD", f"/{BUCKET}/p/put-get.bin")
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", "300000"))
        log = self.last_log(3)
        self.assertEqual([e["method"] for e in log], ["PUT", "GET", "HEAD"])
        self.assertEqual(log[0]["request_bytes_forwarded"], 300_000)
        self.assertEqual(log[0]["content_length"], 300_000)
        self.assertEqual(log[1]["response_bytes"], 300_000)
        self.assertTrue(all(e["fault"] is None and e["status"] == 200 for e in log))

    def test_status_rule(self):
        ctl("POST", "/rules", [{"match": {"method": "PUT", "path_contains": "status.bin"},
                                "fault": {"kind": "status", "status": 503}, "count": 2}])
        for _ in range(2):
            r = req("PUT", f"/{BUCKET}/status.bin", body=b"x" * 5000)
            self.assertEqual((r.status, xml_code(r.body)), (503, "SlowDown"))
        r = req("PUT", f"/{BUCKET}/status.bin", body=b"x" * 5000)
        self.assertEqual(r.status, 200)
        log = self.last_log(3)
        self.assertEqual([(e["status"], e["fault"]) for e in log],
                         [(503, "status"), (503, "status"), (200, None)])
        self.assertEqual(log[0]["request_bytes_forwarded"], 0)

    def test_status_rule_with_expect_continue(self):
        ctl("POST", "/rules", {"match": {"method": "PUT"},
                               "fault": {"kind": "status", "status": 500}})
        body = b"y" * 10000
        h = bs.sign("PUT", "x", "/cam1/e.bin", None, {"Content-Length": str(len(body)),
                                                       "Expect": "100-continue"},
                    hashlib.sha256(body).hexdigest(), "AK", "SK")
        head = "PUT /cam1/e.bin HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        out = raw_exchange(ENV["px"]["port"], (head + "\r\n").encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 500 "), out[:100])
        self.assertIn(b"<Code>InternalError</Code>", out)

    def test_cut_request(self):
        data = os.urandom(2_000_000)
        ctl("POST", "/rules", {"match": {"method": "PUT", "path_contains": "cut.bin"},
                               "fault": {"kind": "cut_request", "after_bytes": 65536}})
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            req("PUT", f"/{BUCKET}/cut.bin", body=data,
                headers={"x-amz-checksum-sha256": sha256_b64(data)})
        e = self.last_log()[0]
        self.assertEqual((e["fault"], e["status"], e["request_bytes_forwarded"]),
                         ("cut_request", None, 65536))
        self.assertEqual(e["content_length"], 2_000_000)
        r = req("HEAD", f"/{BUCKET}/cut.bin", direct())
        self.assertEqual(r.status, 404)  # the store kept nothing of the cut upload

    def test_cut_response(self):
        ctl("POST", "/rules", {"match": {"method": "PUT"}, "fault": {"kind": "cut_response"}})
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            req("PUT", f"/{BUCKET}/cutresp.bin", body=b"z" * 1000)
        e = self.last_log()[0]
        self.assertEqual((e["fault"], e["status"], e["upstream_status"]),
                         ("cut_response", None, 200))
        r = req("HEAD", f"/{BUCKET}/cutresp.bin", direct())
        self.assertEqual(r.status, 200)  # the store did take it

    def test_corrupt_checksum_head(self):
        data = os.urandom(50_000)
        cs = sha256_b64(data)
        r = req("PUT", f"/{BUCKET}/cc.bin", body=data, headers={"x-amz-checksum-sha256": cs})
        self.assertEqual(r.status, 200)
        hdr = {"x-amz-checksum-mode": "ENABLED"}
        r = req("HEAD", f"/{BUCKET}/cc.bin", headers=hdr)
        self.assertEqual(r.header("x-amz-checksum-sha256"), cs)
        ctl("POST", "/rules", {"match": {"method": "HEAD"},
                               "fault": {"kind": "corrupt_checksum"}})
        r = req("HEAD", f"/{BUCKET}/cc.bin", headers=hdr)
        self.assertEqual(r.status, 200)
        bad = r.header("x-amz-checksum-sha256")
        self.assertNotEqual(bad, cs)
        self.assertEqual(len(base64.b64decode(bad, validate=True)), 32)
        self.assertEqual(self.last_log()[0]["fault"], "corrupt_checksum")

    def test_corrupt_checksum_xml(self):
        parts = [os.urandom(5 * 1024 * 1024), b"tail"]
        ctl("POST", "/rules", {"match": {"method": "POST", "query_contains": "uploadId="},
                               "fault": {"kind": "corrupt_checksum"}})
        _, r = multipart(proxied(), "ccx.bin", parts)
        self.assertEqual(r.status, 200, r.body)
        got = re.search(rb"<ChecksumSHA256>([^<]+)</ChecksumSHA256>", r.body).group(1).decode()
        digests = b"".join(hashlib.sha256(p).digest() for p in parts)
        good = sha256_b64(digests) + "-2"
        self.assertTrue(got.endswith("-2"))
        self.assertNotEqual(got, good)
        r = req("HEAD", f"/{BUCKET}/ccx.bin", headers={"x-amz-checksum-mode": "ENABLED"})
        self.assertEqual(r.header("x-amz-checksum-sha256"), good)

    def test_stall(self):
        ctl("POST", "/rules", {"match": {"method": "GET"},
                               "fault": {"kind": "stall", "seconds": 1.5}})
        t = time.monotonic()
        r = req("GET", f"/{BUCKET}", query={"list-type": "2"})
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 1.5)
        ctl("POST", "/rules", {"match": {"method": "GET"},
                               "fault": {"kind": "stall", "seconds": 3}})
        t = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            req("GET", f"/{BUCKET}", query={"list-type": "2"}, timeout=0.5)
        self.assertLess(time.monotonic() - t, 2.5)

    def test_client_that_hangs_up_is_logged(self):
        # The store acts on a request whose client is gone: the log must say so, because that is
        # the one way the same part can reach the store twice without any injected fault.
        ctl("POST", "/rules", {"match": {"method": "PUT"},
                               "fault": {"kind": "stall_response", "seconds": 1.0}})
        body = os.urandom(5000)
        port = ENV["px"]["port"]
        h = bs.sign("PUT", f"127.0.0.1:{port}", "/cam1/hangup.bin", None,
                    {"Content-Length": str(len(body))}, hashlib.sha256(body).hexdigest(),
                    ENV["bs"]["access_key"], ENV["bs"]["secret_key"])
        head = ("PUT /cam1/hangup.bin HTTP/1.1\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head + body)
            time.sleep(0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            e = self.last_log()[0]
            if e["duration"] is not None:
                break
            time.sleep(0.1)
        self.assertEqual(e["fault"], "stall_response")
        self.assertEqual(e["upstream_status"], 200)
        self.assertEqual(e["error"], "client closed before the response")
        self.assertEqual(req("GET", "/cam1/hangup.bin", direct()).body, body)
        # A patient client gets the answer late, and no error.
        ctl("POST", "/rules", {"match": {"method": "PUT"},
                               "fault": {"kind": "stall_response", "seconds": 0.5}})
        self.assertEqual(req("PUT", "/cam1/patient.bin", body=body).status, 200)
        self.assertIsNone(self.last_log()[0]["error"])

    def test_garbage(self):
        ctl("POST", "/rules", {"match": {"method": "GET"}, "fault": {"kind": "garbage"}})
        r = req("GET", f"/{BUCKET}", query={"list-type": "2"})
        self.assertEqual(r.status, 200)
        self.assertNotIn(b"<?xml", r.body)
        self.assertEqual(r.header("ETag"), "not-an-etag")

    def test_expect_continue_relayed(self):
        body = os.urandom(20000)
        port = ENV["px"]["port"]
        h = bs.sign("PUT", f"127.0.0.1:{port}", "/cam1/expect.bin", None,
                    {"Content-Length": str(len(body)), "Expect": "100-continue"},
                    hashlib.sha256(body).hexdigest(), ENV["bs"]["access_key"],
                    ENV["bs"]["secret_key"])
        head = ("PUT /cam1/expect.bin HTTP/1.1\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head)
            interim = s.recv(100)
            self.assertEqual(interim, b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(body)
            final = s.recv(4096)
        self.assertTrue(final.startswith(b"HTTP/1.1 200 OK"), final)
        self.assertEqual(req("GET", "/cam1/expect.bin", direct()).body, body)

    def test_keep_alive_and_chunked_request(self):
        conn = http.client.HTTPConnection("127.0.0.1", ENV["px"]["port"], timeout=10)
        host = f"127.0.0.1:{ENV['px']['port']}"
        try:
            for i in range(3):
                h = bs.sign("GET", host, f"/{BUCKET}", "list-type=2", {}, bs.EMPTY_SHA256,
                            ENV["bs"]["access_key"], ENV["bs"]["secret_key"])
                conn.request("GET", f"/{BUCKET}?list-type=2", headers=h)
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
            pieces = [os.urandom(1000), os.urandom(70000), b"end"]
            h = bs.sign("PUT", host, f"/{BUCKET}/chunked.bin", None,
                        {"Transfer-Encoding": "chunked"}, "UNSIGNED-PAYLOAD",
                        ENV["bs"]["access_key"], ENV["bs"]["secret_key"])
            conn.request("PUT", f"/{BUCKET}/chunked.bin", body=iter(pieces), headers=h,
                         encode_chunked=True)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        finally:
            conn.close()
        log = self.last_log(4)
        self.assertEqual(len({e["client_conn"] for e in log}), 1)
        self.assertEqual(req("GET", f"/{BUCKET}/chunked.bin", direct()).body, b"".join(pieces))

    def test_random_mode(self):
        ctl("POST", "/random", {"probability": 1.0, "kinds": ["status"], "seed": 7})
        for _ in range(3):
            self.assertEqual(req("GET", f"/{BUCKET}", query={"list-type": "2"}).status, 503)
        ctl("POST", "/random", {"probability": 0})
        self.assertEqual(req("GET", f"/{BUCKET}", query={"list-type": "2"}).status, 200)
        st = ctl("GET", "/stats")
        self.assertIsNone(st["random"])
        self.assertGreaterEqual(st["faults"].get("status", 0), 3)

    def test_disconnects_do_not_hurt(self):
        port = ENV["px"]["port"]
        data = os.urandom(3_000_000)
        self.assertEqual(req("PUT", f"/{BUCKET}/big.bin", direct(), body=data).status, 200)
        # 1) half a head; 2) head + half a body; 3) reading a big GET then dropping it.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"PUT /cam1/x HTTP/1.1\r\nHost: x\r\n")
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"PUT /cam1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                      + b"a" * 5000)
        h = bs.sign("GET", f"127.0.0.1:{port}", "/cam1/big.bin", None, {}, bs.EMPTY_SHA256,
                    ENV["bs"]["access_key"], ENV["bs"]["secret_key"])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(("GET /cam1/big.bin HTTP/1.1\r\n"
                       + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
            s.recv(1000)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        # garbage request line
        out = raw_exchange(port, b"\x16\x03\x01 nonsense\r\n\r\n")
        self.assertTrue(out == b"" or out.startswith(b"HTTP/1.1 400"), out[:80])
        time.sleep(0.3)
        self.assertEqual(req("GET", f"/{BUCKET}/big.bin").body, data)
        self.assertEqual(ctl("GET", "/stats")["internal_errors"], 0)
        self.assertIsNone(ENV["px_proc"].poll())


class TestSeaweedFacts(unittest.TestCase):
    """What SeaweedFS 4.48 does that the Swift uploader depends on (direct, no proxy)."""

    def test_single_put_checksum_head(self):
        data = os.urandom(10_000)
        cs = sha256_b64(data)
        r = req("PUT", f"/{BUCKET}/f/single.bin", direct(), body=data,
                headers={"x-amz-checksum-sha256": cs})
        self.assertEqual(r.header("x-amz-checksum-sha256"), cs)
        self.assertEqual(r.header("ETag"), '"%s"' % hashlib.md5(data).hexdigest())
        r = req("HEAD", f"/{BUCKET}/f/single.bin", direct(),
                headers={"x-amz-checksum-mode": "ENABLED"})
        self.assertEqual(r.header("x-amz-checksum-sha256"), cs)
        self.assertIsNone(r.header("x-amz-checksum-type"))
        r = req("HEAD", f"/{BUCKET}/f/single.bin", direct())
        self.assertIsNone(r.header("x-amz-checksum-sha256"))  # only with checksum mode
        r = req("PUT", f"/{BUCKET}/f/bad.bin", direct(), body=data,
                headers={"x-amz-checksum-sha256": sha256_b64(b"other")})
        self.assertEqual((r.status, xml_code(r.body)), (400, "BadDigest"))
        r = req("PUT", f"/{BUCKET}/f/single.bin", direct(), body=b"again",
                headers={"If-None-Match": "*"})
        self.assertEqual((r.status, xml_code(r.body)), (412, "PreconditionFailed"))

    def test_multipart_checksums_and_listings(self):
        key = "f/mp.bin"
        parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), b"last"]
        r = req("POST", f"/{BUCKET}/{key}", direct(), query="uploads",
                headers={"x-amz-checksum-algorithm": "SHA256"})
        self.assertEqual(r.header("x-amz-checksum-algorithm"), "SHA256")
        self.assertEqual(r.header("x-amz-checksum-type"), "COMPOSITE")
        uid = upload_id(r.body)
        etags = []
        for n, p in enumerate(parts, 1):
            r = req("PUT", f"/{BUCKET}/{key}", direct(), query={"partNumber": n, "uploadId": uid},
                    body=p, headers={"x-amz-checksum-sha256": sha256_b64(p)})
            self.assertEqual(r.header("ETag"), '"%s"' % hashlib.md5(p).hexdigest())
            self.assertEqual(r.header("x-amz-checksum-sha256"), sha256_b64(p))
            etags.append(r.header("ETag"))
        r = req("GET", f"/{BUCKET}", direct(), query={"uploads": "", "prefix": key})
        self.assertIn(f"<Upload><Initiated>".encode(), r.body)
        self.assertIn(f"<Key>{key}</Key><UploadId>{uid}</UploadId></Upload>".encode(), r.body)
        r = req("GET", f"/{BUCKET}/{key}", direct(), query={"uploadId": uid})
        self.assertIn(b"<ETag>&#34;%s&#34;</ETag>" % hashlib.md5(parts[0]).hexdigest().encode(),
                      r.body)
        self.assertNotIn(b"Checksum", r.body)  # ListParts gives no part checksums
        r = complete(direct(), key, uid, parts, etags, part_checksums=False)
        self.assertEqual((r.status, xml_code(r.body)), (400, "InvalidRequest"))
        bad = [parts[0], b"not part 2", parts[2]]
        r = complete(direct(), key, uid, bad, etags)
        self.assertEqual((r.status, xml_code(r.body)), (400, "BadDigest"))
        r = complete(direct(), key, uid, parts, etags)
        self.assertEqual(r.status, 200, r.body)
        composite = sha256_b64(b"".join(hashlib.sha256(p).digest() for p in parts)) + "-3"
        self.assertIn(f"<ChecksumSHA256>{composite}</ChecksumSHA256>"
                      "<ChecksumType>COMPOSITE</ChecksumType>".encode(), r.body)
        r2 = complete(direct(), key, uid, parts, etags)  # a retried Complete is answered again
        self.assertEqual(r2.status, 200)
        r = req("HEAD", f"/{BUCKET}/{key}", direct(), headers={"x-amz-checksum-mode": "ENABLED"})
        self.assertEqual(r.header("x-amz-checksum-sha256"), composite)
        self.assertEqual(r.header("x-amz-checksum-type"), "COMPOSITE")
        # Complete with If-None-Match: * onto the existing key -> 412, upload stays listed
        uid2, r = multipart(direct(), key, [b"small"], {"If-None-Match": "*"})
        self.assertEqual((r.status, xml_code(r.body)), (412, "PreconditionFailed"))
        r = req("GET", f"/{BUCKET}", direct(), query={"uploads": "", "prefix": key})
        self.assertIn(uid2.encode(), r.body)
        self.assertEqual(req("DELETE", f"/{BUCKET}/{key}", direct(),
                             query={"uploadId": uid2}).status, 204)

    def test_missing_upload(self):
        r = req("GET", f"/{BUCKET}/f/none.bin", direct(), query={"uploadId": "deadbeef"})
        self.assertEqual((r.status, xml_code(r.body)), (404, "NoSuchUpload"))


if __name__ == "__main__":
    unittest.main()
