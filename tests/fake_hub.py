"""A local stand-in for the Hugging Face Hub's HTTP API, serving repos from folders on disk.

Only what `snapshot_download` / `hf_hub_download` (huggingface_hub 2.x) call: the revision info, the
recursive tree listing, and HEAD/GET (with Range, so resume is exercised) of `resolve/` URLs, all as
plain HTTP (no xet). The real huggingface_hub code runs against it; nothing leaves 127.0.0.1.
Why hand-written: there is no maintained fake hub server package.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "a" * 40


class FakeHub:
    def __init__(self, repos: dict[str, Path]):
        self.repos = {k: Path(v) for k, v in repos.items()}
        self.gets: list[tuple[str, str, str | None]] = []  # (repo, file, Range header) of every GET
        self.fail_after: dict[str, list[int]] = {}  # file -> bytes to send before dropping the connection, one per GET
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _json(self, obj, code=200):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _not_found(self):
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _route(self):
                path = unquote(urlparse(self.path).path)
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"]:
                    repo = "/".join(parts[2:4])
                    root = hub.repos.get(repo)
                    if root is None:
                        return self._json({"error": "Repository not found"}, 404)
                    if parts[4] == "revision":
                        files = [
                            {"rfilename": f.relative_to(root).as_posix()}
                            for f in sorted(root.rglob("*"))
                            if f.is_file()
                        ]
                        return self._json(
                            {"id": repo, "modelId": repo, "sha": COMMIT, "siblings": files, "private": False}
                        )
                    if parts[4] == "tree":
                        return self._json(
                            [
                                {
                                    "type": "file",
                                    "path": f.relative_to(root).as_posix(),
                                    "size": f.stat().st_size,
                                    "oid": hashlib.sha1(f.read_bytes()).hexdigest(),
                                }
                                for f in sorted(root.rglob("*"))
                                if f.is_file()
                            ]
                        )
                # /{org}/{name}/resolve/{rev}/{file...}
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                    root = hub.repos.get(repo)
                    f = root / name if root else None
                    if f is None or not f.is_file():
                        return self._not_found()
                    data = f.read_bytes()
                    etag = hashlib.sha256(data).hexdigest()
                    rng = self.headers.get("Range")
                    start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                    if self.command == "GET":
                        hub.gets.append((repo, name, rng))
                    self.send_response(206 if rng else 200)
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("ETag", f'"{etag}"')
                    self.send_header("Content-Length", str(len(data) - start))
                    if rng:
                        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    self.end_headers()
                    if self.command == "GET":
                        cuts = hub.fail_after.get(name)
                        if cuts:
                            cut = cuts.pop(0)
                            self.wfile.write(data[start : start + cut])
                            self.wfile.flush()
                            self.close_connection = True
                            return
                        self.wfile.write(data[start:])
                    return
                return self._json({"error": f"unknown route {path}"}, 404)

            do_GET = _route
            do_HEAD = _route

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
