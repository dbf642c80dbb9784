"""Where the run lock's files live (pipeline/run_lock.py): a `ClaimStore`, in a local folder
(`LocalClaims`) or on an object store (`ObjectClaims`: S3 and GCS).

The lock and the shard claims need one operation that exactly one of several writers can
win. Locally, `create` links a finished temporary file to the name (`os.link` fails when the
name exists: atomic on local filesystems and NFS). On the object stores it is a create-only
upload, sent by fsspec's `pipe_file(..., mode="create")`:
- S3 (since 2024): a PUT with `If-None-Match: *` succeeds only when the key does not exist
  (412 PreconditionFailed otherwise, which s3fs raises as FileExistsError; 409
  ConditionalRequestConflict while another conditional write of the key is in flight:
  retried).
- GCS: an upload with the precondition `ifGenerationMatch=0` ("only if no live generation")
  fails with 412, which gcsfs raises as FileExistsError (gcsfs.core `simple_upload`,
  `initiate_upload`; gcsfs.retry `validate_response`). gcsfs ignores `mode="create"` on zonal
  (Rapid) buckets, where it writes appendable objects over gRPC: the probe below finds that.
An object is whole when it is visible, so a record is never read half-written; the other
calls are a plain upload, GET, a prefix LIST (never from the client's listing cache) and
DELETE.

A client retries a request whose answer it did not get; a create that reached the server
comes back as "exists" then. Every record names its run (a unique token), so a lost create
reads the object back and counts as won when the text is its own.

A server that does not implement the precondition may ignore it (then two runs would both
"win": gcp-storage-emulator does, fake-gcs-server and moto enforce it), so `enforced()` tries
it once on a probe key before a run trusts it. Other backends (az://, ...) have no
conditional write wired here: `conditional_store` returns None for them and the caller says
so in one line (pipeline/run_lock.py `run_lock`).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from pipeline.storage import Location, storage_error

CONDITIONAL_PROTOCOLS = ("s3", "s3a", "gs", "gcs")
"""Object stores whose client sends a create-only upload for `pipe_file(mode="create")`:
s3fs (`If-None-Match: *`) and gcsfs (`ifGenerationMatch=0`)."""
PRECONDITION = {"s3": "S3 conditional writes (If-None-Match: *)",
                "gs": "GCS preconditions (ifGenerationMatch=0)"}
"""What a server that lets a second create through ignores, for the run lock's one line."""
CONFLICT_RETRIES = 5


class ClaimStore(Protocol):
    """Exclusive-create key/value files under one prefix (see the module docstring)."""

    def create(self, name: str, text: str) -> bool:
        """Write `name` only if it does not exist; False when it does (someone else won)."""

    def write(self, name: str, text: str) -> None:
        """Write or replace `name` (a run's own record)."""

    def read(self, name: str) -> str | None:
        """The text of `name`, or None when it does not exist."""

    def names(self, prefix: str) -> list[str]:
        """Names that start with `prefix` (`prefix` ends in a folder or a file stem)."""

    def delete(self, name: str) -> None:
        """Remove `name` if present."""


class LocalClaims:
    """A `ClaimStore` in a local (or NFS) folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _temporary(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")

    def create(self, name: str, text: str) -> bool:
        target = self.root / name
        temporary = self._temporary(target)
        temporary.write_text(text, encoding="utf-8")
        try:
            os.link(temporary, target)
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def write(self, name: str, text: str) -> None:
        target = self.root / name
        temporary = self._temporary(target)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)

    def read(self, name: str) -> str | None:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def names(self, prefix: str) -> list[str]:
        folder, _, stem = prefix.rpartition("/")
        directory = self.root / folder
        if not directory.is_dir():
            return []
        return sorted(f"{folder}/{p.name}" if folder else p.name for p in directory.iterdir()
                      if p.name.startswith(stem) and not p.name.startswith("."))

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


def _s3_code(error: BaseException | None) -> str | None:
    """The S3 error code somewhere in the chain of `error` (botocore's ClientError is the
    cause of s3fs's OSError, which is the cause of our StorageError)."""
    while error is not None:
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            return (response.get("Error") or {}).get("Code")
        error = error.__cause__ or error.__context__
    return None


class ObjectClaims:
    """A `ClaimStore` under one prefix of an S3 or GCS bucket (module docstring)."""

    def __init__(self, location: Location, folder: str) -> None:
        self.location = location
        self.prefix = location.path(folder)

    @property
    def fs(self) -> Any:
        return self.location.fs

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @contextlib.contextmanager
    def _one_line(self, name: str, absent_ok: bool = False) -> Iterator[None]:
        """A failure of the store (permission, a vanished bucket, no connection) as the
        sink's one line (StorageError), not botocore's traceback. FileExistsError (a lost
        create) passes, and FileNotFoundError where `absent_ok` (reading a missing name)."""
        try:
            yield
        except FileExistsError:
            raise
        except FileNotFoundError:
            if absent_ok:
                raise
            raise storage_error(FileNotFoundError(f"no such bucket: {self.location.url}"),
                                f"{self.location.protocol}://{self._key(name)}") from None
        except Exception as error:  # noqa: BLE001 - botocore raises its own types
            raise storage_error(error, f"{self.location.protocol}://{self._key(name)}") \
                from error  # the chain keeps the S3 error code (`_s3_code`)

    def create(self, name: str, text: str) -> bool:
        data = text.encode("utf-8")
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self._one_line(name):
                    self.fs.pipe_file(self._key(name), data, mode="create")
            except FileExistsError:
                return self.read(name) == text  # a retried create of ours (module docstring)
            except OSError as error:
                code = _s3_code(error)
                if code == "PreconditionFailed":
                    return self.read(name) == text
                if code == "ConditionalRequestConflict" and attempt + 1 < CONFLICT_RETRIES:
                    time.sleep(0.05 * 2 ** attempt)  # S3's advice: retry; one of us wins
                    continue
                raise
            return True
        return False

    def write(self, name: str, text: str) -> None:
        with self._one_line(name):
            self.fs.pipe_file(self._key(name), text.encode("utf-8"))

    def read(self, name: str) -> str | None:
        try:
            with self._one_line(name, absent_ok=True):
                return self.fs.cat_file(self._key(name)).decode("utf-8")
        except FileNotFoundError:
            return None

    def names(self, prefix: str) -> list[str]:
        folder, _, stem = prefix.rpartition("/")
        directory = f"{self.prefix}/{folder}" if folder else self.prefix
        self.fs.invalidate_cache()  # another host's claim since the last listing must show
        try:  # the stem as the server-side prefix: one shard's claims, not every claim
            with self._one_line(prefix, absent_ok=True):
                found = (self.fs.find(directory, maxdepth=1, prefix=stem) if stem
                         else self.fs.ls(directory, detail=False))
        except FileNotFoundError:
            return []
        names = []
        for path in found:
            base = str(path).rstrip("/").rsplit("/", 1)[-1]
            if base.startswith(stem) and not base.startswith("."):
                names.append(f"{folder}/{base}" if folder else base)
        return sorted(names)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._one_line(name, absent_ok=True):
            self.fs.rm_file(self._key(name))

    def enforced(self) -> bool:
        """Whether the server refuses a second create-only upload of one key (a probe key,
        removed after): False for a server that ignores the precondition or rejects it."""
        probe = f".probe-{uuid.uuid4().hex[:12]}"
        try:
            if not self.create(probe, "1"):
                return False
            return not self.create(probe, "2")
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                self.delete(probe)


def conditional_store(location: Location, folder: str) -> ObjectClaims | None:
    """The claim store of an object-store sink, or None where this backend has no
    conditional write here (module docstring)."""
    if location.protocol in CONDITIONAL_PROTOCOLS:
        return ObjectClaims(location, folder)
    return None
