#!/usr/bin/env python3
"""A fake Hugging Face Hub for the hub client's tests (Python 3 standard library only).

Two HTTP servers on 127.0.0.1:
  main     the Hub: GET /api/datasets/<repo>/revision/<rev> ({"sha": <commit>}),
           GET /api/datasets/<repo>/tree/<rev>[/<path>]?recursive=true (pages of
           --page-size entries linked by `Link: <...>; rel="next"`), and
           GET /datasets/<repo>/resolve/<rev>/<path>: a file kept in git (not *.parquet) is served
           directly, an LFS file (*.parquet) is a 302 to the storage server with a signed query.
           Every request needs `Authorization: Bearer <--token>` (401 otherwise, as a gated dataset).
  storage  GET /lfs/<sha256>?X-Amz-Signature=...: checks the signature, answers 400 to any request
           that carries an Authorization header (as S3 does when a signed URL also has one).
Both serve Range requests (206) and record every request (server, path, headers) as a JSON line in
--log. Faults are injected from --faults, a JSON object mapping "<stage>:<path>" (stage tree,
resolve or storage; "tree" alone for any tree page) to a list consumed one per matching request:
  "429:<s>"  429 with Retry-After: <s>       "403", "500", "503"  that status
  "drop:<n>" the full Content-Length, then n body bytes and the connection closed
  "short"    a clean answer 10 bytes shorter  "long"  a clean answer 10 bytes longer
  "corrupt"  right length, one byte flipped    "ignore-range"  200 with the whole file
  "stall:<s>" headers and 1 byte, then s seconds of silence, then the connection closed
  "reset"    no answer: the connection is reset (TCP RST)
  "pad:<n>"  (tree) the page followed by n spaces of JSON whitespace
  "slow:<s>" (storage) the answer after s seconds; each storage log entry has "inflight", the
             storage requests being served at that moment (the client's parallelism)
Prints "PORTS <main> <storage>" on stdout once both listen; exits when its parent dies.
"""
import argparse
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNING_KEY = b"fake-hub-signing-key"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REVISIONS = ("main", "refs/convert/parquet", COMMIT)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, root: str):
        self.files = {}  # path -> bytes
        for dirpath, _, names in os.walk(root):
            for name in names:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    self.files[rel] = f.read()
        self.by_sha = {hashlib.sha256(d).hexdigest(): p for p, d in self.files.items() if self.is_lfs(p)}

    @staticmethod
    def is_lfs(path: str) -> bool:
        return path.endswith(".parquet")

    def entries(self, prefix: str):
        """The recursive listing under prefix: directories and files, sorted by path, as the Hub does."""
        dirs = set()
        for p in self.files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        under = lambda p: not prefix or p.startswith(prefix + "/")
        out = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in dirs if under(d)]
        for p, data in self.files.items():
            if not under(p):
                continue
            if self.is_lfs(p):
                sha = hashlib.sha256(data).hexdigest()
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
                out.append({"type": "file", "oid": git_blob_sha1(pointer), "size": len(data), "path": p,
                            "lfs": {"oid": sha, "size": len(data), "pointerSize": len(pointer)}})
            else:
                out.append({"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": p})
        return sorted(out, key=lambda e: e["path"])


class State:
    def __init__(self, args):
        self.repo_id = args.repo
        self.repo = Repo(args.root)
        self.token = args.token
        self.page_size = args.page_size
        self.faults = json.loads(args.faults) if args.faults else {}
        self.lock = threading.Lock()
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.storage_port = 0
        self.inflight = 0

    def take_fault(self, key: str):
        with self.lock:
            queue = self.faults.get(key)
            return queue.pop(0) if queue else None

    def record(self, server: str, handler, **extra):
        if not self.log:
            return
        entry = {"server": server, "method": handler.command, "path": handler.path,
                 "headers": {k: v for k, v in handler.headers.items()}, **extra}
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()


def sign(sha: str) -> str:
    return hmac.new(SIGNING_KEY, sha.encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None
    server_name_ = ""

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    def send_simple(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status, message, headers=None):
        self.send_simple(status, json.dumps({"error": message}).encode(),
                         {"Content-Type": "application/json", **(headers or {})})

    def serve_bytes(self, data: bytes, fault, extra_headers):
        """200 or 206 (Range: bytes=N-) with data, after applying a fault."""
        start = 0
        rng = self.headers.get("Range")
        if rng and fault != "ignore-range":
            if not rng.startswith("bytes=") or not rng[6:].rstrip("-").isdigit() or not rng.endswith("-"):
                return self.send_error_json(400, "only Range: bytes=N- is supported")
            start = int(rng[6:-1])
            if start >= len(data):
                return self.send_simple(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        if fault == "short":
            body = body[:-10]
        elif fault == "long":
            body = body + b"0123456789"
        elif fault == "corrupt":
            body = bytearray(body)
            body[len(body) // 2] ^= 0xFF
            body = bytes(body)
        status = 206 if start > 0 else 200
        self.send_response(status)
        for k, v in extra_headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault and fault.startswith("drop:"):
            self.wfile.write(body[: int(fault[5:])])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if fault and fault.startswith("stall:"):
            self.wfile.write(body[:1])
            self.wfile.flush()
            time.sleep(float(fault[6:]))
            self.close_connection = True
            return
        self.wfile.write(body)

    def generic_fault(self, fault) -> bool:
        """Faults that replace the answer entirely; True when one was sent."""
        if not fault:
            return False
        if fault.startswith("429:"):
            self.send_error_json(429, "rate limited", {"Retry-After": fault[4:]})
            return True
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return True
        if fault in ("403", "500", "502", "503"):
            self.send_error_json(int(fault), "internal error")
            return True
        return False


class MainHandler(Handler):
    def do_GET(self):
        st = self.state
        st.record("main", self)
        if self.headers.get("Authorization") != f"Bearer {st.token}":
            return self.send_error_json(401, f"Access to dataset {st.repo_id} is restricted. You must have "
                                        "access to it and be authenticated to access it. Please log in.",
                                        {"X-Error-Code": "GatedRepo"})
        raw_path, _, query = self.path.partition("?")
        api = f"/api/datasets/{st.repo_id}/tree/"
        resolve = f"/datasets/{st.repo_id}/resolve/"
        revision = f"/api/datasets/{st.repo_id}/revision/"
        if raw_path.startswith(revision):
            rev = urllib.parse.unquote(raw_path[len(revision):])
            if rev not in REVISIONS:
                return self.send_error_json(404, f"Invalid rev id: {rev}", {"X-Error-Code": "RevisionNotFound"})
            return self.send_simple(200, json.dumps({"id": st.repo_id, "sha": COMMIT, "private": False,
                                                     "gated": "auto"}).encode(), {"Content-Type": "application/json"})
        if raw_path.startswith(api):
            return self.tree(raw_path[len(api):], urllib.parse.parse_qs(query))
        if raw_path.startswith(resolve):
            return self.resolve(raw_path[len(resolve):])
        self.send_error_json(404, "Repository not found", {"X-Error-Code": "RepoNotFound"})

    def split_rev(self, rest):
        rev_raw, _, path_raw = rest.partition("/")
        return urllib.parse.unquote(rev_raw), urllib.parse.unquote(path_raw)

    def tree(self, rest, params):
        st = self.state
        rev, prefix = self.split_rev(rest)
        fault = st.take_fault("tree")
        if self.generic_fault(fault):
            return
        if rev not in REVISIONS:
            return self.send_error_json(404, f"Invalid rev id: {rev}", {"X-Error-Code": "RevisionNotFound"})
        if params.get("recursive") != ["true"]:
            return self.send_error_json(400, "this fake only lists recursively")
        entries = st.repo.entries(prefix.rstrip("/"))
        cursor = int(params.get("cursor", ["0"])[0])
        page = entries[cursor: cursor + st.page_size]
        headers = {"Content-Type": "application/json"}
        if cursor + st.page_size < len(entries):
            host = self.headers.get("Host")
            nxt = f"http://{host}{self.path.partition('?')[0]}?recursive=true&expand=false&cursor={cursor + st.page_size}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        body = json.dumps(page).encode()
        if fault and fault.startswith("pad:"):
            body += b" " * int(fault[4:])
        self.send_simple(200, body, headers)

    def resolve(self, rest):
        st = self.state
        rev, path = self.split_rev(rest)
        fault = st.take_fault(f"resolve:{path}")
        if self.generic_fault(fault):
            return
        if rev not in REVISIONS:
            return self.send_error_json(404, f"Invalid rev id: {rev}", {"X-Error-Code": "RevisionNotFound"})
        data = st.repo.files.get(path)
        if data is None:
            return self.send_error_json(404, "Entry not found", {"X-Error-Code": "EntryNotFound"})
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{git_blob_sha1(data)}"'}
        if not st.repo.is_lfs(path):
            return self.serve_bytes(data, fault, headers)
        sha = hashlib.sha256(data).hexdigest()
        location = (f"http://127.0.0.1:{st.storage_port}/lfs/{sha}?X-Amz-Expires=3600"
                    f"&X-Amz-Signature={sign(sha)}")
        headers.update({"Location": location, "X-Linked-Size": str(len(data)), "X-Linked-Etag": f'"{sha}"'})
        self.send_simple(302, b"", headers)


class StorageHandler(Handler):
    def do_GET(self):
        st = self.state
        with st.lock:
            st.inflight += 1
            inflight = st.inflight
        try:
            st.record("storage", self, inflight=inflight)
            self.serve()
        finally:
            with st.lock:
                st.inflight -= 1

    def serve(self):
        st = self.state
        if "Authorization" in self.headers:
            return self.send_error_json(400, "Only one auth mechanism allowed")
        raw_path, _, query = self.path.partition("?")
        sha = raw_path.rpartition("/")[2]
        params = urllib.parse.parse_qs(query)
        if not raw_path.startswith("/lfs/") or params.get("X-Amz-Signature") != [sign(sha)]:
            return self.send_error_json(403, "SignatureDoesNotMatch")
        path = st.repo.by_sha.get(sha)
        if path is None:
            return self.send_error_json(404, "NoSuchKey")
        fault = st.take_fault(f"storage:{path}")
        if self.generic_fault(fault):
            return
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault[5:]))
            fault = None
        self.serve_bytes(st.repo.files[path], fault, {"ETag": f'"{sha}"'})


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up on purpose (it refuses a body longer than the tree API's size)
        # is part of the tests, not a server failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--page-size", type=int, default=2)
    ap.add_argument("--faults", default="")
    ap.add_argument("--log", default="")
    args = ap.parse_args()
    state = State(args)
    MainHandler.state = state
    StorageHandler.state = state
    main_srv = QuietServer(("127.0.0.1", 0), MainHandler)
    storage_srv = QuietServer(("127.0.0.1", 0), StorageHandler)
    for srv in (main_srv, storage_srv):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    state.storage_port = storage_srv.server_address[1]
    print(f"PORTS {main_srv.server_address[1]} {storage_srv.server_address[1]}", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:  # a test that crashed must not leave us running
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
