#!/usr/bin/env python3
"""faultproxy.py — a fault-injecting HTTP/1.1 proxy between the bodycam uploader and an S3 store.

Usage:
    python3 Tests/tools/faultproxy.py --upstream 127.0.0.1:PORT [--listen-port 0]
                                      [--control-port 0] [--seed N] [--ignore-stdin]

Prints one JSON line {"port":P,"control_port":C} on stdout, then serves until stdin reaches EOF
(watched only if stdin is a pipe, socket or tty; not with --ignore-stdin) or SIGTERM/SIGINT/
SIGHUP. Listens and connects on 127.0.0.1 only (a non-loopback --upstream is refused, exit 2).

Proxying (asyncio, stdlib only):
  * Client side keeps connections alive: several requests may arrive on one client connection.
    A client connection is closed (with `Connection: close` in the response) only when the
    client asked for it, upstream said `Connection: close`, the response is delimited by EOF,
    the request body was not fully read (early final response), or a fault was injected.
  * Upstream side: one fresh upstream connection per client request, closed after the response.
  * Request and response heads and bodies are relayed byte for byte (no header rewriting except
    `Connection: close` where noted, and the corrupt_checksum fault). Content-Length and chunked
    bodies both ways; HEAD/1xx/204/304 responses without body; `Expect: 100-continue` is passed
    upstream and the interim `100 Continue` relayed back (SeaweedFS sends it).
Faults (control server on 127.0.0.1:C, JSON in and out):
  POST /rules   [rule, ...] (or one rule) appended to a queue. rule =
       {"match": {"method": "PUT", "path_contains": "...", "query_contains": "partNumber=",
                  "path": "/exact", "header_contains": {"name": "substring"}},   (all optional)
        "fault": F, "count": N (default 1; -1 = forever), "skip": K (let K matches pass first)}
     The first queued rule that matches a request applies; its count is decremented.
     F = {"kind":"cut_request","after_bytes":B}  forward head + B body bytes (bytes on the wire,
           incl. chunk framing if chunked), then reset both connections. If the body is shorter
           than B, the whole request is forwarded and both sides are reset before any response.
       | {"kind":"cut_response"}   forward the whole request, wait for upstream's final response
           head (so upstream did process it), then reset the client without relaying anything.
       | {"kind":"stall","seconds":S}   after reading the request head, wait S s, then forward.
       | {"kind":"stall_response","seconds":S}   forward the whole request, wait for upstream's
           final response head (upstream has acted on it), wait S s, then relay the response.
       | {"kind":"status","status":503, "code":..., "message":..., "headers":{...}}  answer with
           that status and an S3-style XML error (default codes: 503 SlowDown, 500 InternalError,
           403 AccessDenied, 404 NoSuchKey, 400 BadRequest, 412 PreconditionFailed).
       | {"kind":"garbage"}   answer 200 with a non-XML body and bogus ETag/checksum headers.
       | {"kind":"corrupt_checksum"}   forward, but replace every x-amz-checksum-{sha256,sha1,
           crc32,crc32c,crc64nvme} response header value and every <ChecksumSHA256>…(and the
           other Checksum*) XML element with a different valid-looking base64 of the same
           length (a composite "-N" suffix is kept).
     Injected status/garbage answers read and discard the request body first (unless the client
     sent Expect: 100-continue, then they answer at once) and close the connection.
  POST /random  {"probability": p, "kinds": ["status", {"kind":"stall","seconds":2}, ...],
                 "seed": n}   every request independently gets a random fault with probability p
     (0 disables). Bare kind names get defaults: status 503, stall 2 s, cut_request after a
     random number of body bytes.  Queued rules take precedence.
  POST /reset   clears rules and random mode; with body {"log": true} also clears the log.
  GET  /rules   the queue.   GET /log   every request seen, in order:
     {"id","method","path","query","request_bytes_forwarded","content_length","status"
      (upstream or injected; null if cut),"upstream_status","fault" (kind or null),"t" (unix
      time the head arrived),"duration","error","response_bytes","client_conn",
      "fault_detail" (the fault object, when there is one)}; "error" says what went wrong on
     the way, e.g. "client closed before the response": upstream acted on a request whose client
     hung up (gave up or cancelled) before it could see the answer.
  GET  /stats   totals.
Client or upstream disconnects anywhere are logged to stderr and never crash the proxy.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
import urllib.parse

HEAD_LIMIT = 256 * 1024
BUF = 64 * 1024
FAULT_KINDS = ("cut_request", "cut_response", "stall", "stall_response", "status", "garbage",
               "corrupt_checksum")
ERROR_CODES = {400: ("BadRequest", "Bad Request"),
               403: ("AccessDenied", "Access Denied"),
               404: ("NoSuchKey", "The specified key does not exist."),
               409: ("OperationAborted", "A conflicting operation is in progress."),
               412: ("PreconditionFailed", "At least one of the preconditions you specified "
                                           "did not hold"),
               500: ("InternalError", "We encountered an internal error. Please try again."),
               501: ("NotImplemented", "Not implemented"),
               502: ("BadGateway", "Bad Gateway"),
               503: ("SlowDown", "Please reduce your request rate."),
               504: ("GatewayTimeout", "Gateway Timeout")}
REASONS = {100: "Continue", 200: "OK", 204: "No Content", 206: "Partial Content",
           400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           412: "Precondition Failed", 500: "Internal Server Error", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
CHECKSUM_HEADER = re.compile(r"^x-amz-checksum-(sha256|sha1|crc32|crc32c|crc64nvme)$", re.I)
CHECKSUM_XML = re.compile(rb"<(Checksum(?:SHA256|SHA1|CRC32|CRC32C|CRC64NVME))>([^<]*)</\1>")


def eprint(*a):
    print("faultproxy:", *a, file=sys.stderr, flush=True)


class ClientGone(Exception):
    pass


class UpstreamGone(Exception):
    pass


class CutNow(Exception):
    pass


class BadRequest(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# HTTP helpers
# ------------------------------------------------------------------------------------------------

def parse_head(raw: bytes):
    text = raw.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    start = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # obsolete folding
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        k, sep, v = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line!r}")
        headers.append((k.strip(), v.strip()))
    return start, headers


def hget(headers, name, default=None):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


def has_token(headers, name, token):
    token = token.lower()
    for k, v in headers:
        if k.lower() == name.lower() and token in [t.strip().lower() for t in v.split(",")]:
            return True
    return False


def build_head(start: str, headers) -> bytes:
    return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode(
        "latin-1")


def body_framing(headers):
    if has_token(headers, "transfer-encoding", "chunked"):
        return ("chunked", None)
    cl = hget(headers, "content-length")
    if cl is not None:
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(f"bad Content-Length {cl!r}")
        return ("length", n)
    return None


def abort(writer):
    """Close a connection abruptly (RST)."""
    if writer is None:
        return
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        writer.transport.abort()
    except Exception:
        pass


def close(writer):
    if writer is None:
        return
    try:
        writer.close()
    except Exception:
        pass


async def read_head(reader, who):
    """Returns raw head bytes, or None on clean EOF before any byte."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise (ClientGone if who == "client" else UpstreamGone)(f"EOF inside {who} head")
    except asyncio.LimitOverrunError:
        raise BadRequest(f"{who} head too large")
    except (ConnectionError, OSError) as e:
        raise (ClientGone if who == "client" else UpstreamGone)(repr(e))


class Pipe:
    """Reads from one side, writes to the other, mapping errors to ClientGone/UpstreamGone."""

    def __init__(self, reader, src_exc, writer, dst_exc, on_bytes=None, limit=None):
        self.reader, self.src_exc = reader, src_exc
        self.writer, self.dst_exc = writer, dst_exc
        self.on_bytes = on_bytes
        self.limit = limit  # cut after this many bytes written
        self.written = 0

    async def read(self, n):
        try:
            data = await self.reader.read(n)
        except (ConnectionError, OSError) as e:
            raise self.src_exc(repr(e))
        if not data:
            raise self.src_exc("EOF")
        return data

    async def readexactly(self, n):
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise self.src_exc("EOF")
        except (ConnectionError, OSError) as e:
            raise self.src_exc(repr(e))

    async def readline(self):
        try:
            return await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError:
            raise self.src_exc("EOF")
        except asyncio.LimitOverrunError:
            raise self.src_exc("line too long")
        except (ConnectionError, OSError) as e:
            raise self.src_exc(repr(e))

    async def write(self, data):
        cut = False
        if self.limit is not None and self.written + len(data) >= self.limit:
            data = data[:self.limit - self.written]
            cut = True
        if data:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, OSError, RuntimeError) as e:
                raise self.dst_exc(repr(e))
            self.written += len(data)
            if self.on_bytes:
                self.on_bytes(len(data))
        if cut:
            raise CutNow()

    async def copy_exact(self, n):
        while n > 0:
            data = await self.read(min(BUF, n))
            n -= len(data)
            await self.write(data)

    async def copy_chunked(self):
        while True:
            line = await self.readline()
            await self.write(line)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise self.src_exc(f"bad chunk size line {line[:40]!r}")
            if size == 0:
                while True:
                    t = await self.readline()
                    await self.write(t)
                    if t == b"\r\n":
                        return
            await self.copy_exact(size + 2)

    async def copy_to_eof(self):
        while True:
            try:
                data = await self.reader.read(BUF)
            except (ConnectionError, OSError) as e:
                raise self.src_exc(repr(e))
            if not data:
                return
            await self.write(data)

    async def copy(self, framing):
        kind, n = framing
        if kind == "length":
            await self.copy_exact(n)
        elif kind == "chunked":
            await self.copy_chunked()
        elif kind == "close":
            await self.copy_to_eof()

    async def discard(self, framing):
        """Read and drop a whole body."""
        if framing[0] == "length":
            n = framing[1]
            while n > 0:
                n -= len(await self.read(min(BUF, n)))
        else:
            await self.slurp(framing)

    async def slurp(self, framing) -> bytes:
        """Read a whole body (decoded) without writing it."""
        kind, n = framing
        if kind == "length":
            return await self.readexactly(n)
        if kind == "close":
            out = bytearray()
            while True:
                try:
                    data = await self.reader.read(BUF)
                except (ConnectionError, OSError) as e:
                    raise self.src_exc(repr(e))
                if not data:
                    return bytes(out)
                out += data
        out = bytearray()
        while True:
            line = await self.readline()
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise self.src_exc(f"bad chunk size line {line[:40]!r}")
            if size == 0:
                while (await self.readline()) != b"\r\n":
                    pass
                return bytes(out)
            out += (await self.readexactly(size + 2))[:-2]


def corrupt_b64(value: str) -> str:
    """A different, valid-looking base64 value of the same length; keeps a '-N' suffix."""
    v = value.strip()
    suffix = ""
    m = re.match(r"^(.*?)(-\d+)$", v)
    if m:
        v, suffix = m.group(1), m.group(2)
    try:
        raw = base64.b64decode(v, validate=True)
    except Exception:
        raw = v.encode()
    n = len(raw) or 32
    new = hashlib.sha256(b"faultproxy-corrupt:" + raw).digest()
    while len(new) < n:
        new += hashlib.sha256(new).digest()
    new = new[:n]
    if new == raw:
        new = bytes(b ^ 0xFF for b in raw)
    return base64.b64encode(new).decode() + suffix


def s3_error_body(status, path, code=None, message=None) -> bytes:
    dcode, dmsg = ERROR_CODES.get(status, ("InternalError", "Injected error"))
    code, message = code or dcode, message or dmsg
    rid = os.urandom(8).hex().upper()
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f'<Message>{message}</Message><Resource>{path}</Resource>'
            f'<RequestId>{rid}</RequestId></Error>').encode()


# ------------------------------------------------------------------------------------------------
# Proxy
# ------------------------------------------------------------------------------------------------

class Proxy:
    def __init__(self, up_host, up_port, seed):
        self.up_host, self.up_port = up_host, up_port
        self.rng = random.Random(seed)
        self.rules = []
        self.random_mode = None
        self.log = []
        self.next_id = 1
        self.next_conn = 1
        self.active_clients = 0
        self.errors = 0

    # -- fault selection --------------------------------------------------------------------

    @staticmethod
    def matches(match, method, path, query, headers):
        if not match:
            return True
        if "method" in match and match["method"] and \
                match["method"].upper() != method.upper():
            return False
        upath = urllib.parse.unquote(path)
        if match.get("path") is not None and match["path"] not in (path, upath):
            return False
        pc = match.get("path_contains")
        if pc and pc not in path and pc not in upath:
            return False
        qc = match.get("query_contains")
        if qc and qc not in query and qc not in urllib.parse.unquote(query):
            return False
        for name, sub in (match.get("header_contains") or {}).items():
            v = hget(headers, name)
            if v is None or str(sub) not in v:
                return False
        return True

    def choose_fault(self, method, path, query, headers, content_length):
        for rule in self.rules:
            if not self.matches(rule.get("match"), method, path, query, headers):
                continue
            if rule.get("skip", 0) > 0:
                rule["skip"] -= 1
                continue
            if rule["count"] > 0:
                rule["count"] -= 1
            if rule["count"] == 0:
                self.rules.remove(rule)
            return dict(rule["fault"])
        rm = self.random_mode
        if rm and rm["probability"] > 0 and rm["rng"].random() < rm["probability"]:
            k = rm["rng"].choice(rm["kinds"])
            f = dict(k) if isinstance(k, dict) else {"kind": k}
            if f["kind"] == "status":
                f.setdefault("status", 503)
            elif f["kind"] in ("stall", "stall_response"):
                f.setdefault("seconds", 2.0)
            elif f["kind"] == "cut_request":
                f.setdefault("after_bytes", rm["rng"].randint(0, max(0, content_length or 0)))
            return f
        return None

    # -- client connection ------------------------------------------------------------------

    async def handle_client(self, reader, writer):
        conn_id = self.next_conn
        self.next_conn += 1
        self.active_clients += 1
        try:
            while True:
                keep = await self.handle_one(reader, writer, conn_id)
                if not keep:
                    break
        except asyncio.CancelledError:  # proxy shutting down
            abort(writer)
        except Exception as e:  # never let one connection take the proxy down
            self.errors += 1
            eprint(f"conn {conn_id}: unexpected {e!r}\n{traceback.format_exc()}")
            abort(writer)
        finally:
            self.active_clients -= 1
            close(writer)

    async def handle_one(self, reader, writer, conn_id) -> bool:
        try:
            raw = await read_head(reader, "client")
        except (ClientGone, BadRequest) as e:
            eprint(f"conn {conn_id}: {e}")
            return False
        if raw is None:
            return False
        t0 = time.time()
        try:
            start, headers = parse_head(raw)
            method, target, version = start.split(" ", 2)
            req_framing = body_framing(headers) or ("length", 0)
        except (BadRequest, ValueError) as e:
            eprint(f"conn {conn_id}: bad request head: {e}")
            await self.send_simple(writer, 400, "/", "GET")
            return False
        path, _, query = target.partition("?")
        content_length = req_framing[1] if req_framing[0] == "length" else None
        entry = {"id": self.next_id, "method": method, "path": path, "query": query,
                 "request_bytes_forwarded": 0, "content_length": content_length,
                 "status": None, "upstream_status": None, "fault": None, "t": t0,
                 "duration": None, "error": None, "response_bytes": 0,
                 "client_conn": conn_id}
        self.next_id += 1
        self.log.append(entry)
        fault = self.choose_fault(method, path, query, headers, content_length)
        if fault:
            entry["fault"] = fault.get("kind")
            entry["fault_detail"] = fault
        client_close = (has_token(headers, "connection", "close")
                        or (version.upper() == "HTTP/1.0"
                            and not has_token(headers, "connection", "keep-alive")))
        expect = has_token(headers, "expect", "100-continue")
        try:
            kind = fault.get("kind") if fault else None
            if kind in ("status", "garbage"):
                await self.inject(reader, writer, entry, fault, method, path, req_framing,
                                  expect)
                return False
            if kind == "stall":
                await asyncio.sleep(float(fault.get("seconds", 2.0)))
            keep = await self.forward(reader, writer, raw, method, headers, req_framing,
                                      entry, fault)
            return keep and not client_close
        finally:
            entry["duration"] = round(time.time() - t0, 4)

    async def send_simple(self, writer, status, path, method, body=None, headers=None):
        body = s3_error_body(status, path) if body is None else body
        hs = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
              ("Server", "faultproxy"), ("Connection", "close")]
        hs += list(headers or [])
        head = build_head(f"HTTP/1.1 {status} {REASONS.get(status, 'Injected')}", hs)
        try:
            writer.write(head + (b"" if method.upper() == "HEAD" else body))
            await writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            pass

    async def inject(self, reader, writer, entry, fault, method, path, req_framing, expect):
        if not expect:
            # Take the body so the client sees our answer rather than a failed send.
            sink = Pipe(reader, ClientGone, None, ClientGone)
            try:
                await asyncio.wait_for(sink.discard(req_framing), 120)
            except (ClientGone, asyncio.TimeoutError) as e:
                entry["error"] = f"client: {e!r}"
                eprint(f"#{entry['id']} {method} {path}: client gone before injected answer")
                return
        if fault["kind"] == "status":
            status = int(fault.get("status", 503))
            body = s3_error_body(status, path, fault.get("code"), fault.get("message"))
            extra = list((fault.get("headers") or {}).items())
            extra.append(("x-amz-request-id", os.urandom(8).hex().upper()))
            await self.send_simple(writer, status, path, method, body, extra)
        else:
            status = 200
            body = b"\x00\x01garbage<<not xml>> %s \xff\xfe\r\n" % os.urandom(24).hex().encode()
            extra = [("ETag", "not-an-etag"), ("x-amz-checksum-sha256", "!!garbage!!"),
                     ("Last-Modified", "yesterday-ish"), ("x-amz-version-id", "\x7f?")]
            hs = [("Content-Type", "text/x-garbage"), ("Content-Length", str(len(body))),
                  ("Connection", "close")] + extra
            try:
                writer.write(build_head("HTTP/1.1 200 OK", hs)
                             + (b"" if method.upper() == "HEAD" else body))
                await writer.drain()
            except (ConnectionError, OSError, RuntimeError):
                pass
        entry["status"] = status
        entry["response_bytes"] = 0 if method.upper() == "HEAD" else len(body)

    async def forward(self, reader, writer, raw, method, headers, req_framing, entry, fault):
        """Returns True if the client connection may be reused."""
        kind = fault.get("kind") if fault else None
        try:
            up_r, up_w = await asyncio.open_connection(self.up_host, self.up_port,
                                                       limit=HEAD_LIMIT)
        except OSError as e:
            entry["error"] = f"upstream connect: {e!r}"
            eprint(f"#{entry['id']}: cannot connect upstream: {e!r}")
            await self.send_simple(writer, 502, entry["path"], method)
            entry["status"] = 502
            return False
        try:
            return await self._forward(reader, writer, up_r, up_w, raw, method, req_framing,
                                       entry, kind)
        finally:
            close(up_w)

    async def _forward(self, reader, writer, up_r, up_w, raw, method, req_framing, entry, kind):
        def count_req(n):
            entry["request_bytes_forwarded"] += n

        def count_resp(n):
            entry["response_bytes"] += n

        limit = None
        if kind == "cut_request":
            limit = max(0, int((entry.get("fault_detail") or {}).get("after_bytes", 0)))
        try:
            up_w.write(raw)
            await up_w.drain()
        except (ConnectionError, OSError) as e:
            entry["error"] = f"upstream: {e!r}"
            await self.send_simple(writer, 502, entry["path"], method)
            entry["status"] = 502
            return False
        if limit == 0:
            self.cut(entry, writer, up_w, "after request head")
            return False

        req_pipe = Pipe(reader, ClientGone, up_w, UpstreamGone, count_req, limit)
        body_task = asyncio.ensure_future(req_pipe.copy(req_framing))
        resp_task = asyncio.ensure_future(
            self.relay_response(up_r, writer, method, entry, kind, body_task, count_resp))
        try:
            done, _ = await asyncio.wait({body_task, resp_task},
                                         return_when=asyncio.FIRST_COMPLETED)
            if body_task in done:
                exc = body_task.exception()
                if isinstance(exc, CutNow) or (exc is None and kind == "cut_request"):
                    self.cut(entry, writer, up_w, f"after {entry['request_bytes_forwarded']} "
                                                  "body bytes")
                    return False
                if isinstance(exc, ClientGone):
                    entry["error"] = f"client gone while sending body: {exc}"
                    eprint(f"#{entry['id']} {entry['method']} {entry['path']}: "
                           f"{entry['error']}")
                    abort(up_w)
                    return False
                if isinstance(exc, UpstreamGone):
                    # Upstream may have answered early and closed; let the response finish.
                    entry["error"] = f"upstream stopped reading body: {exc}"
                elif exc is not None:
                    raise exc
            try:
                keep = await resp_task
            except ClientGone as e:
                entry["error"] = f"client gone while receiving response: {e}"
                eprint(f"#{entry['id']} {entry['method']} {entry['path']}: {entry['error']}")
                abort(up_w)
                return False
            except UpstreamGone as e:
                entry["error"] = f"upstream: {e}"
                eprint(f"#{entry['id']} {entry['method']} {entry['path']}: {entry['error']}")
                abort(writer)
                return False
            except BadRequest as e:
                entry["error"] = f"upstream: {e}"
                abort(writer)
                return False
            if keep == "cut":
                self.cut(entry, writer, up_w, "before response")
                return False
            if reader.at_eof() and not entry["error"]:
                # The client hung up while upstream worked on its request (a client that gives
                # up or cancels): upstream acted on it, but the client never saw the answer.
                entry["error"] = "client closed before the response"
                eprint(f"#{entry['id']} {entry['method']} {entry['path']}: {entry['error']}")
                return False
            if not body_task.done():
                return False  # body not consumed: we announced Connection: close
            return keep and body_task.exception() is None
        finally:
            for t in (body_task, resp_task):
                if not t.done():
                    t.cancel()
            for t in (body_task, resp_task):
                try:
                    await t
                except BaseException:
                    pass

    def cut(self, entry, writer, up_w, where):
        entry["status"] = None
        entry["error"] = entry["error"] or f"cut {where}"
        abort(writer)
        abort(up_w)

    async def relay_response(self, up_r, writer, method, entry, kind, body_task, count_resp):
        """Relays interim and final response. Returns keep-alive bool, or "cut"."""
        out = Pipe(up_r, UpstreamGone, writer, ClientGone)  # counts body bytes only
        while True:
            raw = await read_head(up_r, "upstream")
            if raw is None:
                raise UpstreamGone("EOF before response")
            start, headers = parse_head(raw)
            try:
                status = int(start.split(" ", 2)[1])
            except (IndexError, ValueError):
                raise BadRequest(f"bad upstream status line {start!r}")
            if 100 <= status < 200 and status != 101:
                await out.write(raw)  # e.g. 100 Continue: the client needs it to send its body
                continue
            break
        entry["upstream_status"] = status
        if kind in ("cut_request", "cut_response"):
            return "cut"
        if kind == "stall_response":
            await asyncio.sleep(float((entry.get("fault_detail") or {}).get("seconds", 2.0)))
        entry["status"] = status
        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            framing = ("none", 0)
        else:
            framing = body_framing(headers) or ("close", None)
        must_close = (framing[0] == "close" or has_token(headers, "connection", "close")
                      or not body_task.done())
        if kind == "corrupt_checksum":
            headers = [(k, corrupt_b64(v) if CHECKSUM_HEADER.match(k) else v)
                       for k, v in headers]
            ctype = (hget(headers, "content-type") or "").lower()
            if framing[0] != "none" and ("xml" in ctype or not ctype):
                body = await out.slurp(framing)
                body = CHECKSUM_XML.sub(
                    lambda m: b"<%s>%s</%s>" % (m.group(1),
                                                corrupt_b64(m.group(2).decode()).encode(),
                                                m.group(1)), body)
                headers = [(k, v) for k, v in headers
                           if k.lower() not in ("content-length", "transfer-encoding")]
                headers.append(("Content-Length", str(len(body))))
                if must_close and not has_token(headers, "connection", "close"):
                    headers = [(k, v) for k, v in headers if k.lower() != "connection"]
                    headers.append(("Connection", "close"))
                await out.write(build_head(start, headers))
                out.on_bytes = count_resp
                if body:
                    await out.write(body)
                return not must_close
        if must_close and not has_token(headers, "connection", "close"):
            headers = [(k, v) for k, v in headers if k.lower() != "connection"]
            headers.append(("Connection", "close"))
            raw = build_head(start, headers)
        elif kind == "corrupt_checksum":
            raw = build_head(start, headers)
        await out.write(raw)
        out.on_bytes = count_resp
        if framing[0] != "none":
            await out.copy(framing)
        return not must_close

    # -- control server ---------------------------------------------------------------------

    def stats(self):
        faults, statuses = {}, {}
        up = down = cut = errs = 0
        for e in self.log:
            if e["fault"]:
                faults[e["fault"]] = faults.get(e["fault"], 0) + 1
            s = str(e["status"]) if e["status"] is not None else "null"
            statuses[s] = statuses.get(s, 0) + 1
            up += e["request_bytes_forwarded"]
            down += e["response_bytes"]
            errs += 1 if e["error"] else 0
        return {"requests": len(self.log), "faults": faults, "statuses": statuses,
                "request_bytes_forwarded": up, "response_bytes": down,
                "requests_with_error": errs, "active_client_connections": self.active_clients,
                "queued_rules": len(self.rules),
                "random": ({k: v for k, v in self.random_mode.items() if k != "rng"}
                           if self.random_mode else None),
                "internal_errors": self.errors}

    def add_rules(self, doc):
        if isinstance(doc, dict) and "rules" in doc:
            doc = doc["rules"]
        if isinstance(doc, dict):
            doc = [doc]
        if not isinstance(doc, list):
            raise ValueError("expected a rule or a list of rules")
        new = []
        for r in doc:
            f = r.get("fault")
            if isinstance(f, str):
                f = {"kind": f}
            if not isinstance(f, dict) or f.get("kind") not in FAULT_KINDS:
                raise ValueError(f"bad fault {f!r}; kinds: {FAULT_KINDS}")
            count = int(r.get("count", 1))
            if count == 0:
                continue
            new.append({"match": r.get("match") or {}, "fault": f, "count": count,
                        "skip": int(r.get("skip", 0))})
        self.rules.extend(new)
        return {"queued": len(new), "rules": self.rules}

    def set_random(self, doc):
        p = float(doc.get("probability", 0))
        if p <= 0:
            self.random_mode = None
            return {"random": None}
        kinds = doc.get("kinds") or ["status"]
        for k in kinds:
            kk = k.get("kind") if isinstance(k, dict) else k
            if kk not in FAULT_KINDS:
                raise ValueError(f"bad kind {k!r}")
        seed = doc.get("seed")
        rng = random.Random(seed) if seed is not None else self.rng
        self.random_mode = {"probability": p, "kinds": kinds, "seed": seed, "rng": rng}
        return {"random": {"probability": p, "kinds": kinds, "seed": seed}}

    async def handle_control(self, reader, writer):
        try:
            raw = await read_head(reader, "client")
            if raw is None:
                return
            start, headers = parse_head(raw)
            method, target, _ = start.split(" ", 2)
            framing = body_framing(headers) or ("length", 0)
            body = await Pipe(reader, ClientGone, None, ClientGone).slurp(framing)
            path = target.split("?")[0]
            doc = json.loads(body) if body.strip() else {}
            status, out = 200, None
            if method == "POST" and path == "/rules":
                out = self.add_rules(doc)
            elif method == "GET" and path == "/rules":
                out = self.rules
            elif method == "POST" and path == "/random":
                out = self.set_random(doc)
            elif method == "POST" and path == "/reset":
                self.rules.clear()
                self.random_mode = None
                if isinstance(doc, dict) and doc.get("log"):
                    self.log.clear()
                out = {"ok": True}
            elif method == "GET" and path == "/log":
                out = self.log
            elif method == "GET" and path == "/stats":
                out = self.stats()
            else:
                status, out = 404, {"error": f"no such endpoint {method} {path}"}
        except (ValueError, TypeError, KeyError, AttributeError, BadRequest) as e:
            status, out = 400, {"error": str(e)}
        except ClientGone:
            close(writer)
            return
        data = json.dumps(out).encode()
        try:
            writer.write(build_head(f"HTTP/1.1 {status} {REASONS.get(status, '')}",
                                    [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(data))),
                                     ("Connection", "close")]) + data)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            close(writer)


def stdin_is_watchable() -> bool:
    # A pipe, socket or terminal: its EOF means the caller is done. /dev/null or a file would
    # hit EOF at once, so then only signals stop the proxy.
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


async def amain(args):
    host, _, port = args.upstream.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        eprint(f"upstream must be on 127.0.0.1 (got {host})")
        return 2
    proxy = Proxy("127.0.0.1", int(port), args.seed)
    server = await asyncio.start_server(proxy.handle_client, "127.0.0.1", args.listen_port,
                                        limit=HEAD_LIMIT)
    control = await asyncio.start_server(proxy.handle_control, "127.0.0.1", args.control_port,
                                         limit=HEAD_LIMIT)
    p = server.sockets[0].getsockname()[1]
    c = control.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"port": p, "control_port": c}) + "\n")
    sys.stdout.flush()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if not args.ignore_stdin and stdin_is_watchable():
        def watch_stdin():
            try:
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    server.close()
    control.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # open client connections just drop; don't wait for the stdin thread


def main(argv=None):
    ap = argparse.ArgumentParser(description="fault-injecting HTTP/1.1 proxy for S3 tests")
    ap.add_argument("--upstream", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ignore-stdin", action="store_true")
    args = ap.parse_args(argv)
    try:
        rc = asyncio.run(amain(args))
    except KeyboardInterrupt:
        rc = 0
    sys.stdout.flush()
    os._exit(rc)  # don't wait for the stdin thread or lingering connections


if __name__ == "__main__":
    main()
