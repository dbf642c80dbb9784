"""A real S3 server on 127.0.0.1 for tests: moto's ThreadedMotoServer (the dev extra pins
moto[server] and s3fs), started and stopped by the caller, with one bucket made."""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "bucket"


@dataclass(frozen=True)
class S3Server:
    url: str
    """The endpoint, `http://127.0.0.1:<port>`."""
    fs: Any
    """An s3fs filesystem on it (credentials given directly, not from the environment)."""
    env: dict[str, str]
    """os.environ plus the credentials and FSSPEC_S3_ENDPOINT_URL, for child processes."""

    @property
    def options(self) -> dict[str, Any]:
        """`storage_options` for pipeline.storage.locate in this process (credentials given
        here: a test must not leave them in os.environ for later tests)."""
        return {"endpoint_url": self.url, "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}

    def fresh_prefix(self) -> str:
        """A new, empty `s3://bucket/<name>` for one test."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto keeps its buckets in process-wide state: a server started after another in
        # the same process would see the earlier one's bucket and objects, so start empty
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", data=b"",
                                                      method="POST"), timeout=30).close()
        fs = s3fs.S3FileSystem(key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                               secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                               client_kwargs={"endpoint_url": url}, skip_instance_cache=True)
        fs.mkdir(BUCKET)
        # later jobs take the endpoint from fsspec's environment variables (README)
        yield S3Server(url, fs, {**os.environ, **CREDENTIALS, "FSSPEC_S3_ENDPOINT_URL": url})
    finally:
        server.stop()
