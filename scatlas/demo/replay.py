"""A local HTTP server replaying recorded repository responses, with optional injected faults.

It stands in for GEO, SRA/ENA and BioStudies in the demo and the tests: the production clients
run unchanged against it, only their base URLs point at 127.0.0.1. Routes come from a
``routes.tsv`` (``path``, ``query``, ``file``): a request matches the route with its path whose
query parameters are all present in the request (extra ones, such as ``tool`` or ``email``, are
ignored); the most specific route wins. In served bodies ``@REPLAY@`` becomes ``host:port``, so
recorded responses can name files on the server itself. Range requests are honoured.

Faults are queued per path prefix and consumed one per matching request: ``status:429:2`` (a
status code, optionally a Retry-After), ``reset`` (connection closed without a response),
``timeout:SECONDS`` (no answer for that long), ``truncate`` (half the promised body, then close),
``corrupt`` (the body garbled, same length).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

TOKEN = b"@REPLAY@"


class ReplayServer:
    """Serve ``root/routes.tsv`` on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, root: str | Path, port: int = 0):
        self.root = Path(root).resolve()
        self.routes = _read_routes(self.root / "routes.tsv")
        self.faults: dict[str, collections.deque[str]] = {}
        self.requests: list[str] = []
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of range requests
        self.user_agents: set[str] = set()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    def inject(self, prefix: str, *faults: str) -> None:
        """Queue ``faults`` for requests whose path starts with ``prefix``."""
        with self._lock:
            self.faults.setdefault(prefix, collections.deque()).extend(faults)

    def next_fault(self, path: str) -> str | None:
        with self._lock:
            for prefix, queue in self.faults.items():
                if path.startswith(prefix) and queue:
                    return queue.popleft()
        return None

    def pending_faults(self) -> int:
        with self._lock:
            return sum(len(queue) for queue in self.faults.values())

    def lookup(self, path: str, query: list[tuple[str, str]]) -> Path | None:
        params = set(query)
        best = None
        for route_path, route_query, file in self.routes:
            if route_path == path and route_query <= params and (best is None or len(route_query) > len(best[0])):
                best = (route_query, file)
        return self.root / best[1] if best else None

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _read_routes(path: Path) -> list[tuple[str, frozenset, str]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        (row["path"], frozenset(parse_qsl(row["query"] or "", keep_blank_values=True)), row["file"]) for row in rows
    ]


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: the tests read server.requests instead
            pass

        def do_GET(self):
            parts = urlsplit(self.path)
            server.requests.append(self.path)
            server.user_agents.add(self.headers.get("User-Agent", ""))
            if self.headers.get("Range"):
                server.ranges.append((parts.path, self.headers["Range"]))
            fault = server.next_fault(parts.path)
            if fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if fault and fault.startswith("timeout"):
                time.sleep(float(fault.split(":")[1]))
                self.close_connection = True
                return
            if fault and fault.startswith("status"):
                _, code, *retry_after = fault.split(":")
                body = f"injected HTTP {code}".encode()
                self.send_response(int(code))
                if retry_after:
                    self.send_header("Retry-After", retry_after[0])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            file = server.lookup(parts.path, parse_qsl(parts.query, keep_blank_values=True))
            if file is None or not file.is_file():
                body = b"not found"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            body = file.read_bytes().replace(TOKEN, server.address.encode())
            if fault == "corrupt":
                body = bytes(b ^ 0x5A for b in body[: len(body) // 2]) + body[len(body) // 2 :]
            start = _range_start(self.headers.get("Range"))
            if start is not None and start >= len(body):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if start is not None:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                body = body[start:]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes="):
        return None
    start = header[len("bytes=") :].split("-")[0]
    return int(start) if start.isdigit() else None


def main(argv: list[str] | None = None) -> int:
    """Run a replay server until killed; print its base URL (used by ``make demo``)."""
    parser = argparse.ArgumentParser(prog="python -m scatlas.demo.replay", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder with routes.tsv and the files it names")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ReplayServer(args.root, args.port)
    print(server.base_url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
