"""A local stand-in for the Hugging Face Hub HTTP API: enough endpoints for `create_repo` + `upload_folder`.

Files arrive as "regular" (base64 in the commit payload) and are written under `root/<repo_id>/`.
"""

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeHub:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.requests.append(f"POST {self.path}")
                status, payload = hub.handle(self.path.split("?")[0], body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, path: str, body: bytes) -> tuple[int, dict]:
        if path == "/api/repos/create":
            request = json.loads(body)
            repo_id = f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
            (self.root / repo_id).mkdir(parents=True, exist_ok=True)
            return 200, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id}
        if path == "/api/validate-yaml":
            return 200, {}
        if match := re.fullmatch(r"/api/models/(.+)/preupload/[^/]+", path):
            files = json.loads(body)["files"]
            return 200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files
            ]}
        if match := re.fullmatch(r"/api/models/(.+)/commit/[^/]+", path):
            repo = self.root / match.group(1)
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    target = repo / item["value"]["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(base64.b64decode(item["value"]["content"]))
            return 200, {"commitUrl": f"{self.endpoint}/{match.group(1)}/commit/0", "commitOid": "0" * 40}
        return 404, {"error": f"fake hub has no endpoint {path}"}

    def close(self) -> None:
        self.server.shutdown()
