"""A real webhook receiver on 127.0.0.1 for delivery tests: records every accepted POST with its headers; the
first ``fail_first`` POSTs are answered 503 (a receiver that is down)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.accepted: list[tuple[dict[str, str], Any]] = []
        self.refused = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    refuse = outer.refused < outer.fail_first
                    if refuse:
                        outer.refused += 1
                    else:
                        outer.accepted.append((dict(self.headers.items()), body))
                self.send_response(503 if refuse else 200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def keys(self) -> list[str]:
        """The Idempotency-Key of every accepted POST, in arrival order."""
        with self._lock:
            return [h.get("Idempotency-Key", "") for h, _ in self.accepted]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
