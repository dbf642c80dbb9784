"""Where a dataset lives: a local folder or an object-store URI (`s3://`, `gs://`, `file://`).

Why fsspec: one filesystem interface for the sink (written by Ray workers), the readers in
`pipeline.dataset`, and `datasets.load_dataset(..., storage_options=...)`, which takes the
same fsspec options — so the options a user gives `sink.storage_options` are exactly the ones
the Hub library needs to read the result back. pyarrow reads and writes through it
(`arrow_filesystem` wraps it as a `pyarrow.fs.FileSystem` for code that wants one).

Options come from `sink.storage_options` (non-secret: endpoint_url, region, ...) and from the
environment (fsspec's `FSSPEC_S3_ENDPOINT_URL`-style variables, AWS_* / GOOGLE_* credentials),
never from files we write: run.json records the options given in config, and the config has no
place for secrets (`check_no_secrets`).

Atomicity (a shard is visible only when complete): the whole Parquet file is serialised in
memory first, so no I/O starts before the bytes are final. On a local filesystem they go to a
hidden temporary name beside the target and are renamed (`os.replace`, atomic on POSIX). On an
object store one PUT of the final key: S3 and GCS make an object visible only when its upload
completes (single PUT or multipart completion), so a killed writer leaves no object, and
a copy from a temporary key would only double the traffic. Segments are written before
dialogues, so a dialogues file is the marker of a finished shard (pipeline/sink.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_PROTOCOLS = ("file", "local")
SECRET_KEYS = ("key", "secret", "token", "password", "aws_access_key_id",
               "aws_secret_access_key", "aws_session_token", "client_secret", "credentials")
"""storage_options keys that carry credentials: refused in config (they belong in the
environment, which never reaches run.json, the card or the logs)."""
AUTH_METHODS = ("anon", "google_default", "cloud")
"""`token` values that name gcsfs's way of finding credentials, not a credential: `anon`
(no credentials: public buckets, emulators), `google_default` / `cloud` (the environment's
application-default credentials, the VM's service account). Allowed in config."""
GCS_PROTOCOLS = ("gs", "gcs")

_OPTIONS: dict[str, dict[str, Any]] = {}
"""Options registered per `protocol://bucket`, so a reader handed a shard URL later (a card
reading a path from `shard_paths`) opens it with the options of the dataset it came from."""


class StorageError(OSError):
    """An environment problem with the sink or a dataset location, as one line naming the
    path and what to do (no traceback at the CLI)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def is_uri(target: str | Path) -> bool:
    return "://" in str(target)


def check_no_secrets(options: dict[str, Any], key: str = "sink.storage_options") -> None:
    """Credentials only from the environment: a secret in config would end up in run.json."""
    for name, value in options.items():
        if name.lower() == "token" and value in AUTH_METHODS:
            continue
        if name.lower() in SECRET_KEYS or "secret" in name.lower():
            raise ValueError(f"{key}.{name}: credentials are read from the environment "
                             "(e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never from "
                             "config; remove the key and export the variable instead")


@dataclass
class Location:
    """A dataset root: `url` as the user would write it, `root` the path inside `fs`."""

    url: str
    protocol: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)
    _fs: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._register()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fs": None}  # workers make their own client

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._register()  # a worker opening a shard URL of this dataset gets its options

    def _register(self) -> None:
        if self.options and not self.is_local:
            _OPTIONS[f"{self.protocol}://{self.root.split('/', 1)[0]}"] = dict(self.options)

    @property
    def is_local(self) -> bool:
        return self.protocol in LOCAL_PROTOCOLS

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (made on first use: workers get a Location by pickle)."""
        if self._fs is None:
            options = _fs_options(self.protocol, self.options)
            if self.protocol in GCS_PROTOCOLS:
                self._fs = _gcs_class(options)(**options)
            else:
                import fsspec

                self._fs = fsspec.filesystem(self.protocol, **options)
        return self._fs

    def path(self, *parts: str) -> str:
        """`root/parts...` in the filesystem's own terms (no protocol for object stores)."""
        return "/".join([self.root.rstrip("/"), *parts])

    def show(self, *parts: str) -> str:
        """`url/parts...`, for messages and for callers that open paths themselves."""
        return "/".join([self.url.rstrip("/"), *parts]) if parts else self.url

    def local_path(self, *parts: str) -> Path:
        assert self.is_local, self.url
        return Path(self.path(*parts))

    def glob(self, *parts: str) -> list[str]:
        """Matching paths (filesystem terms), sorted. Hidden temporaries never match the shard
        patterns (they start with a dot)."""
        self._fresh()
        return sorted(str(p) for p in self.fs.glob(self.path(*parts)))

    def exists(self, *parts: str) -> bool:
        self._fresh()
        return bool(self.fs.exists(self.path(*parts)))

    def _fresh(self) -> None:
        """Object-store clients cache listings (and fsspec shares one client per set of
        options in a process): shards written by a worker since must show up."""
        if not self.is_local:
            self.fs.invalidate_cache()

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open(self.path(*parts), "rb") as handle:
            return handle.read()

    def write_atomic(self, relative: str, data: bytes) -> None:
        """Make `relative` hold `data`, visible only when complete (module docstring)."""
        try:
            self._put(relative, data)
        except OSError as error:
            raise storage_error(error, self.show(relative)) from None

    def _put(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        if self.is_local:
            _write_local(Path(target), data)
        else:
            self.fs.pipe_file(target, data)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def check_writable(self) -> None:
        """Before any work: create the root and write and delete a probe, so a missing
        bucket, a read-only folder or a missing permission stops the run in one line."""
        probe = f".write-probe-{uuid.uuid4().hex[:12]}"
        try:
            if self.is_local:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            self._put(probe, b"")
            self.remove(self.path(probe))
        except Exception as error:  # noqa: BLE001 - botocore / gcsfs raise their own types
            raise storage_error(error, self.url) from None


def locate(target: str | Path | Location, storage_options: dict[str, Any] | None = None
           ) -> Location:
    """A Location for a local path (`~` expanded, made absolute) or a URI."""
    if isinstance(target, Location):
        return target
    text = str(target)
    if not is_uri(text):
        root = str(Path(text).expanduser().resolve())
        return Location(root, "file", root, dict(storage_options or {}))
    from fsspec.core import split_protocol

    protocol, rest = split_protocol(text)
    protocol = protocol or "file"
    if protocol in LOCAL_PROTOCOLS:
        root = str(Path(rest).expanduser().resolve())
        return Location(root, "file", root, dict(storage_options or {}))
    rest = rest.rstrip("/")
    prefix = f"{protocol}://{rest.split('/', 1)[0]}"
    options = dict(storage_options or _OPTIONS.get(prefix, {}))
    return Location(f"{protocol}://{rest}", protocol, rest, options)


def open_file(path: str | Path) -> Any:
    """A binary file object for a local path or a shard URL (options of its dataset)."""
    if not is_uri(path):
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    location = locate(str(path))
    return location.fs.open(location.root, "rb")


def arrow_filesystem(location: Location) -> Any:
    """`(pyarrow.fs.FileSystem, root)` for code written against pyarrow filesystems."""
    import pyarrow.fs as pafs

    if location.is_local:
        return pafs.LocalFileSystem(), location.root
    return pafs.PyFileSystem(pafs.FSSpecHandler(location.fs)), location.root


def _fs_options(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """Config keys → fsspec keyword arguments. s3fs wants endpoint_url / region inside
    client_kwargs; accepting them at the top level matches `datasets`' storage_options."""
    options = dict(options)
    if protocol in ("s3", "s3a"):
        client = dict(options.pop("client_kwargs", {}) or {})
        for name in ("endpoint_url", "region_name"):
            if name in options:
                client[name] = options.pop(name)
        if client:
            options["client_kwargs"] = client
    return options


def _gcs_class(options: dict[str, Any]) -> type:
    """gcsfs's filesystem class for `options`. gcsfs (2026.10) hands fsspec its
    `ExtendedGcsFileSystem`, which first asks the gRPC storage-control API for each bucket's
    layout (zonal / hierarchical) and does not cache a failed answer. An emulator or another
    endpoint given by `endpoint_url` (in config, or `FSSPEC_GS_ENDPOINT_URL`) or by gcsfs's own
    `STORAGE_EMULATOR_HOST` serves the JSON API only: there every call waited out a 60 s gRPC
    retry (measured against fake-gcs-server and gcp-storage-emulator). So an endpoint gets the
    JSON-API class `gcsfs.core.GCSFileSystem` (standard buckets; gcsfs's own switch for the
    same is `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`), Google's endpoint keeps the default."""
    try:
        import gcsfs
        import gcsfs.core
    except ImportError:
        raise ImportError("gs:// needs gcsfs: pip install gcsfs") from None
    from fsspec.config import apply_config

    given = apply_config(gcsfs.core.GCSFileSystem, dict(options)).get("endpoint_url")
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")
    return gcsfs.core.GCSFileSystem if given or emulator else gcsfs.GCSFileSystem


def _write_local(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{random.randrange(1 << 30)}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)  # no partial file left behind, even on ENOSPC
        raise


def storage_error(error: BaseException, where: str) -> StorageError:
    """One line naming the path and the fix, for the errors an environment causes."""
    code = getattr(error, "errno", None)
    text = str(error)
    if code == errno.ENOSPC:
        hint = "no space left on the device; free space (or point sink.dir elsewhere) and " \
               "rerun: finished shards are kept"
    elif code == errno.EROFS:
        hint = "the filesystem is read-only; point sink.dir at a writable folder and rerun"
    elif code in (errno.EACCES, errno.EPERM) or isinstance(error, PermissionError) \
            or "AccessDenied" in text or "Forbidden" in text:
        hint = "permission denied; grant write access (or check the credentials in the " \
               "environment) and rerun"
    elif "NoSuchBucket" in text or "bucket does not exist" in text.lower() or (
            isinstance(error, FileNotFoundError) and is_uri(where)):
        hint = "the bucket does not exist; create it (or fix sink.dir) and rerun"
    elif code in (errno.ENOTDIR, errno.EEXIST) or isinstance(error, NotADirectoryError):
        hint = "a file stands where a folder is expected; remove it or point sink.dir " \
               "elsewhere and rerun"
    else:
        hint = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".strip()
    return StorageError(f"sink: cannot write {where}: {hint}")


def file_size(path: str | Path) -> int:
    """Bytes of a local file or an object URL."""
    if not is_uri(path):
        return Path(path).stat().st_size
    location = locate(str(path))
    return int(location.fs.size(location.root))
