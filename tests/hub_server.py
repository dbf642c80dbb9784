"""A local stand-in for the Hub's HTTP API, just enough for `create_repo` + `upload_folder`,
and for reading files of a model repository (`get_paths_info`, `hf_hub_url` downloads).

It implements the routes huggingface_hub 2.4 calls on its non-Xet path (HF_HUB_DISABLE_XET=1):
repo creation, README YAML validation, preupload (regular vs LFS), the Git LFS batch API with
basic PUT uploads and verify, and the NDJSON commit. It checks what a server would check
(bearer token, sha256 of every LFS object, LFS objects present before the commit) and records
every request and every committed file so a test can compare them with the upload plan.
Model files (`HubState.model_files`, served read-only at any revision) answer `paths-info`
with size, git blob id and LFS sha256, and `resolve` GETs with HTTP Range; `cut_after`
drops the connection once after that many bytes, as a network failure would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

LFS_THRESHOLD = 4096  # bytes; the real Hub sends binaries and large files to LFS


@dataclass
class HubState:
    token: str
    requests: list[dict] = field(default_factory=list)
    repos: dict[str, dict] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    committed: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    model_files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo -> path -> data
    cut_after: int | None = None


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState
    base_url: str

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, payload: dict | None = None) -> None:
        data = json.dumps(payload or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.state.token}"

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        """GET/HEAD /{repo}/resolve/{revision}/{path}, with Range, for model repos."""
        self._record("GET" if body else "HEAD", b"")
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
        files = self.state.model_files.get(match.group(1), {}) if match else {}
        if not match or match.group(3) not in files:
            return self._reply(404, {"error": "Entry not found"})
        data = files[match.group(3)]
        start = 0
        if body and (wanted := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))):
            start = int(wanted.group(1))
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("X-Repo-Commit", "b" * 40)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not body:
            return
        payload = data[start:]
        if self.state.cut_after is not None and len(payload) > self.state.cut_after:
            cut, self.state.cut_after = self.state.cut_after, None
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(payload)

    def _paths_info(self, repo_id: str, body: bytes) -> None:
        from urllib.parse import parse_qs

        files = self.state.model_files.get(repo_id)
        if files is None:
            return self._reply(404, {"error": f"repository {repo_id} not found"})
        infos = []
        for path in parse_qs(body.decode()).get("paths", []):
            if path not in files:
                continue
            data = files[path]
            info = {"type": "file", "path": path, "size": len(data),
                    "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
            if b"\0" in data[:1024] or len(data) > LFS_THRESHOLD:
                info["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                               "pointerSize": 134}
            infos.append(info)
        data = json.dumps(infos).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        body = self._body()
        self._record("PUT", body)
        match = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", self.path)
        if not match:
            return self._reply(404, {"error": "unknown route"})
        oid = match.group(1)
        if hashlib.sha256(body).hexdigest() != oid:
            self.state.errors.append(f"LFS upload {oid}: content does not match its sha256")
            return self._reply(400, {"error": "sha256 mismatch"})
        self.state.lfs_objects[oid] = body
        self._reply(200)

    def do_POST(self) -> None:
        body = self._body()
        self._record("POST", body)
        path = self.path.split("?")[0]
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/paths-info/([^/]+)", path):
            return self._paths_info(match.group(1), body)  # public model repos: no token
        if path.startswith("/api/") and not self._authorized():
            return self._reply(401, {"error": "Invalid credentials in Authorization header"})
        if path == "/api/repos/create":
            return self._create(json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body))
        if match := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/([^/]+)", path):
            return self._preupload(match.group(1), json.loads(body))
        if match := re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
            return self._lfs_batch(json.loads(body))
        if path == "/lfs-verify":
            payload = json.loads(body)
            status = 200 if payload["oid"] in self.state.lfs_objects else 404
            return self._reply(status)
        if match := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/([^/]+)", path):
            return self._commit(match.group(1), body)
        self.state.errors.append(f"unexpected POST {self.path}")
        self._reply(404, {"error": f"unknown route {self.path}"})

    def _record(self, method: str, body: bytes) -> None:
        self.state.requests.append({
            "method": method, "path": self.path, "size": len(body),
            "authorization": self.headers.get("Authorization"),
        })

    def _create(self, payload: dict) -> None:
        repo_id = f"{payload.get('organization') or 'tester'}/{payload['name']}"
        if payload.get("type") != "dataset":
            self.state.errors.append(f"create_repo: type {payload.get('type')!r}, not dataset")
        self.state.repos[repo_id] = payload
        self._reply(200, {"url": f"{self.base_url}/datasets/{repo_id}", "name": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else None
        except yaml.YAMLError as error:
            return self._reply(400, {"errors": [{"message": str(error)}]})
        if not isinstance(metadata, dict):
            return self._reply(400, {"errors": [{"message": "no YAML metadata block"}]})
        self._reply(200, {"errors": [], "warnings": []})

    def _preupload(self, repo_id: str, payload: dict) -> None:
        if repo_id not in self.state.repos:
            return self._reply(404, {"error": f"repository {repo_id} not found"})
        files = []
        for entry in payload["files"]:
            binary = b"\0" in base64.b64decode(entry["sample"])
            mode = "lfs" if binary or entry["size"] > LFS_THRESHOLD else "regular"
            files.append({"path": entry["path"], "uploadMode": mode, "shouldIgnore": False})
        self._reply(200, {"files": files})

    def _lfs_batch(self, payload: dict) -> None:
        objects = [{
            "oid": item["oid"], "size": item["size"],
            "actions": {"upload": {"href": f"{self.base_url}/lfs-upload/{item['oid']}"},
                        "verify": {"href": f"{self.base_url}/lfs-verify"}},
        } for item in payload["objects"]]
        self._reply(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo_id: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header, operations = lines[0], lines[1:]
        if header["key"] != "header":
            return self._reply(400, {"error": "first NDJSON line must be the header"})
        for operation in operations:
            value = operation["value"]
            if operation["key"] == "file":
                self.state.committed[value["path"]] = base64.b64decode(value["content"])
            elif operation["key"] == "lfsFile":
                if value["oid"] not in self.state.lfs_objects:
                    return self._reply(400, {"error": f"LFS object of {value['path']} missing"})
                self.state.committed[value["path"]] = self.state.lfs_objects[value["oid"]]
            else:
                self.state.errors.append(f"unexpected commit operation {operation['key']}")
        self.state.commits.append({"repo_id": repo_id, "summary": header["value"]["summary"],
                                   "files": [op["value"]["path"] for op in operations]})
        self._reply(200, {"commitUrl": f"{self.base_url}/datasets/{repo_id}/commit/{'a' * 40}",
                          "commitOid": "a" * 40})


class LocalHub:
    """`with LocalHub(token) as hub:` serves on 127.0.0.1 at `hub.url`."""

    def __init__(self, token: str) -> None:
        self.state = HubState(token=token)
        handler = type("Handler", (HubHandler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        handler.base_url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
