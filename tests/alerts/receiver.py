"""A real webhook receiver on 127.0.0.1 for sink and delivery tests: records every accepted POST with its headers.
Each POST gets the next scripted reply -- an HTTP status, or ("sleep", seconds) then 200 -- and 200 once the
script is used up; ``fail_first=n`` is a script of n 503s (a receiver that is down)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, fail_first: int = 0, script: list | None = None):
        self.script: list = [503] * fail_first + list(script or [])
        self.accepted: list[tuple[dict[str, str], Any]] = []
        self.attempts = 0
        self.refused = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.attempts += 1
                    step = outer.script.pop(0) if outer.script else 200
                if isinstance(step, tuple):
                    time.sleep(step[1])
                    step = 200
                with outer._lock:
                    if step == 200:
                        outer.accepted.append((dict(self.headers.items()), body))
                    else:
                        outer.refused += 1
                self.send_response(step)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def bodies(self) -> list[Any]:
        with self._lock:
            return [body for _, body in self.accepted]

    def keys(self) -> list[str]:
        """The Idempotency-Key of every accepted POST, in arrival order."""
        with self._lock:
            return [h.get("Idempotency-Key", "") for h, _ in self.accepted]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
