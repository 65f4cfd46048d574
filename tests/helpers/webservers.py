"""HTTP servers that are not Kubernetes API servers, for the tests that point a kubeconfig
at the wrong address: a web page for every path, Python's own 404 for every path, a JSON
health endpoint, or one that even answers `/version` like an API server does (but nothing
else). Each records the paths it was asked for, on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Intranet \xe2\x80\x94 Welcome</title></head>
<body><h1>Welcome</h1><p>Nothing to see here.</p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so stop() leaves no keep-alive handler still
    # answering on a connection a client kept open.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        mode = self.server.mode
        if mode == "404":
            self.send_error(404)  # Python's own HTML error page
        elif mode == "json":
            self._send(200, b'{"status": "ok"}', "application/json")
        elif mode == "version-only":
            if self.path.split("?")[0].rstrip("/") == "/version":
                body = json.dumps({"gitVersion": "v1.31.0", "platform": "linux/amd64"})
                self._send(200, body.encode(), "application/json")
            else:
                self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        elif mode == "echo-auth":
            # A hostile page that shows the caller's credentials back in its title.
            auth = self.headers.get("Authorization", "")
            body = f"<html><head><title>hello {auth}</title></head></html>".encode()
            self._send(200, body, "text/html")
        elif mode == "huge":
            self._send(200, b"<html>" + b"x" * (4 << 20), "text/html")
        elif mode == "control-chars":
            title = "line one\n\x1b[31mred\x1b[0m\r\tline two " + "long " * 40
            self._send(200, f"<title>{title}</title>".encode(), "text/html")
        else:
            self._send(200, PAGE, "text/html; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-body (the point of the "huge" page) is no error

    def __init__(self, port: int, mode: str):
        self.mode = mode
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", port), _Handler)


class WebServer:
    """`with WebServer("page") as web:` serves until the block ends; `web.url`, `web.paths`."""

    def __init__(self, mode: str = "page", port: int = 0):
        self._httpd = _Server(port, mode)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paths(self) -> list[str]:
        return list(self._httpd.paths)

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_kubeconfig(path: Path, server: str, token: str = "not-a-real-token") -> Path:
    """A kubeconfig whose one context points at `server` with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(config))  # JSON is valid YAML
    path.chmod(0o600)
    return path
