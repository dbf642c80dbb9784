"""Who is writing this `sink.dir`: the run lock, and per-shard claims for shared runs.

Two `generate` runs on one folder would both do every shard (the result stays correct: a
shard's content is fixed by its indices and renamed into place; only the cost doubles). So:

- Every run registers `<sink.dir>/.duplexsynth/runs/<token>.json` (host, pid, start time) and
  refreshes its `heartbeat` every `lock_stale_s / 4` seconds from a daemon thread.
- A normal run takes the lock `.duplexsynth/lock.<gen>` by exclusive create. A live holder
  stops the second run before any work with one line (its host, pid and start time, and what
  to do). A dead holder is taken over by creating generation `gen + 1` exclusively, so of
  two runs taking over at once exactly one wins. Dead means: on this host, its pid is gone
  (or is another process: the pid's start time is compared); on another host, its heartbeat
  is older than `lock_stale_s` (the clocks of the hosts must agree to within that).
- With `sink.shared=true` no lock is taken; each run claims shards a few at a time
  (`claim_shards` per round) with an exclusive create of `.duplexsynth/claims/<shard>.<gen>`
  and generates only what it claimed, so runs on several hosts split the remaining shards and
  none is done twice. A claim whose owner is dead is taken over by the next generation,
  like the lock. Claims of finished shards stay (a record of which run wrote which shard);
  a run releases the claims of shards it did not finish when it ends.
- A normal run and a shared run exclude each other: the normal run checks for live shared
  runs after taking the lock, a shared run checks for a live lock after registering (each
  writes before it reads the other's record, so at least one of two racing runs sees the
  other).

The files go through a `ClaimStore`: `LocalClaims` uses `os.link` of a finished temporary
file, which fails when the name exists (atomic on local filesystems and NFS). On S3 and GCS,
`pipeline.claim_store.ObjectClaims` does `create` as a create-only upload (S3
`If-None-Match: *`, GCS `ifGenerationMatch=0`; the object is whole when visible), `write` as
a plain upload, `read` as GET, `names` as a prefix LIST, `delete` as DELETE; the run's own
host is recognised by pid as locally, other hosts by heartbeat age. Any other backend, or a
server that lets a second create through (found by a probe at start), has no store: `run_lock`
says so in one line, and refuses `sink.shared=true` there.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.claim_store import PRECONDITION, ClaimStore, LocalClaims, conditional_store
from pipeline.sink import shard_name
from pipeline.storage import Location, locate

log = logging.getLogger("duplexsynth")

STATE_DIR = ".duplexsynth"
"""Folder inside sink.dir for the lock, the run records and the claims (not part of the data)."""
HOST = socket.gethostname()


class RunLocked(RuntimeError):
    """Another live run holds the sink.dir; the message is the one line to print."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot; Linux), to tell a reused pid
    from the run that wrote a record. None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunRecord:
    """One run, as the lock, its record and its claims name it."""

    token: str
    host: str
    pid: int
    started: str
    """UTC, ISO 8601, seconds."""
    shared: bool
    heartbeat: float
    """Unix time of the last refresh (seconds)."""
    proc_start: str | None = None

    @classmethod
    def this_process(cls, shared: bool) -> RunRecord:
        now = datetime.now(UTC)
        return cls(uuid.uuid4().hex, HOST, os.getpid(), now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   shared, time.time(), _process_start(os.getpid()))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> RunRecord | None:
        try:
            return cls(**json.loads(text or ""))
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}"


class RunLock:
    """The lock (or, shared, the claims) of one `generate` run on one sink.dir."""

    def __init__(self, store: ClaimStore, shared: bool = False, stale_s: float = 60.0,
                 claim_shards: int = 4, where: str = "sink.dir") -> None:
        self.store = store
        self.shared = shared
        self.stale_s = stale_s
        self.claim_shards = claim_shards
        self.where = where
        self.me = RunRecord.this_process(shared)
        self._record = f"runs/{self.me.token}.json"
        self._lock_name: str | None = None
        self._claims: dict[tuple[str, int], str] = {}
        self._done: dict[str, Callable[[int], bool]] = {}
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- liveness -------------------------------------------------------------------------
    def alive(self, record: RunRecord) -> bool:
        """Whether the run of `record` still runs (see the module docstring)."""
        if record.token == self.me.token:
            return True
        if record.host == HOST:
            if not _pid_alive(record.pid):
                return False
            started = _process_start(record.pid)
            return record.proc_start is None or started is None or started == record.proc_start
        current = RunRecord.from_json(self.store.read(f"runs/{record.token}.json"))
        return current is not None and time.time() - current.heartbeat < self.stale_s

    def _runs(self) -> list[RunRecord]:
        records = [RunRecord.from_json(self.store.read(name)) for name in self.store.names("runs/")]
        return [r for r in records if r is not None]

    # -- lock -----------------------------------------------------------------------------
    def acquire(self) -> RunLock:
        """Register this run and take the lock (or check there is none, when shared);
        RunLocked when a live run stands in the way. Call before any work."""
        self.store.write(self._record, self.me.to_json())
        try:
            self._forget_dead_runs()
            holder = self._take_lock() if not self.shared else self._live_holder()
            if holder is not None:
                raise RunLocked(self._message(holder))
            if not self.shared:
                others = [r for r in self._runs() if r.shared and self.alive(r)]
                if others:
                    raise RunLocked(self._message(others[0]))
        except BaseException:
            self.release()
            raise
        self._beat = threading.Thread(target=self._heartbeat, name="duplexsynth-lock",
                                      daemon=True)
        self._beat.start()
        return self

    def _lock_generations(self) -> list[tuple[int, str]]:
        return _generations(self.store.names("lock."))

    def _live_holder(self) -> RunRecord | None:
        gens = self._lock_generations()
        if not gens:
            return None
        holder = RunRecord.from_json(self.store.read(gens[-1][1]))
        return holder if holder is not None and self.alive(holder) else None

    def _take_lock(self) -> RunRecord | None:
        """Take the lock; returns the live holder instead when there is one."""
        for _ in range(8):
            gens = self._lock_generations()
            generation = 0
            if gens:
                holder = RunRecord.from_json(self.store.read(gens[-1][1]))
                if holder is not None and self.alive(holder):
                    return holder
                generation = gens[-1][0] + 1
                log.warning("taking over the lock of a run that ended without releasing it "
                            "(%s)", holder.describe() if holder else "unreadable lock file")
            name = f"lock.{generation:06d}"
            if self.store.create(name, self.me.to_json()):
                self._lock_name = name
                return None
        raise RunLocked(f"{self.where}: could not take the run lock (other runs keep taking "
                        f"it); remove {STATE_DIR}/lock.* once no run is writing there")

    def _message(self, holder: RunRecord) -> str:
        kind = "shared runs (sink.shared=true)" if holder.shared else "a live run"
        fix = ("wait for it to end, stop it (pid {pid} on {host}), or run every writer of this "
               "folder with sink.shared=true to split the shards between them")
        if holder.shared:
            fix = "wait for them to end or start this run with sink.shared=true to join them"
        return (f"{self.where} is in use by {kind}: {holder.describe()}; "
                + fix.format(pid=holder.pid, host=holder.host))

    def _forget_dead_runs(self) -> None:
        """Drop records of runs that ended without cleaning up (same host, dead pid; other
        host, no heartbeat for ten stale periods)."""
        for name in self.store.names("runs/"):
            record = RunRecord.from_json(self.store.read(name))
            if record is None or record.token == self.me.token:
                continue
            gone = (not self.alive(record) if record.host == HOST
                    else time.time() - record.heartbeat > 10 * self.stale_s)
            if gone:
                self.store.delete(name)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.stale_s / 4):
            self.me.heartbeat = time.time()
            try:
                self.store.write(self._record, self.me.to_json())
            except Exception as error:  # noqa: BLE001 - the next beat retries; never a traceback
                log.warning("run lock: heartbeat not written (%s); retrying in %.0f s",
                            str(error).splitlines()[0] if str(error) else type(error).__name__,
                            self.stale_s / 4)

    def release(self) -> None:
        """Give up the lock and the claims of shards this run did not finish (claims of
        finished shards stay as the record of who wrote them); forget this run's record."""
        self._stop.set()
        if self._beat is not None:  # a beat in flight must not re-create the record below
            self._beat.join(timeout=10)
            self._beat = None
        for (split, shard), name in list(self._claims.items()):
            is_done = self._done.get(split)
            if is_done is None or not is_done(shard):
                self.store.delete(name)
        self._claims.clear()
        if self._lock_name is not None:
            mine = int(self._lock_name.rsplit(".", 1)[1])
            for generation, name in self._lock_generations():
                if generation <= mine:
                    self.store.delete(name)
            self._lock_name = None
        self.store.delete(self._record)

    # -- claims ---------------------------------------------------------------------------
    def claim(self, split: str, shard: int) -> bool:
        """Claim one shard for this run (shared mode); False when a live run holds it."""
        prefix = f"claims/{shard_name(split, shard)}."
        gens = _generations(self.store.names(prefix))
        generation = 0
        if gens:
            owner = RunRecord.from_json(self.store.read(gens[-1][1]))
            if owner is not None and self.alive(owner):
                return owner.token == self.me.token
            generation = gens[-1][0] + 1
        name = f"{prefix}{generation:06d}"
        if not self.store.create(name, self.me.to_json()):
            return False
        self._claims[(split, shard)] = name
        return True

    def rounds(self, split: str, todo: list[int], is_done: Callable[[int], bool],
               may_claim: Callable[[int], bool] | None = None) -> Iterator[list[int]]:
        """The shards of `todo` this run should generate, a round at a time: all of them at
        once for a normal run; for a shared run, up to `claim_shards` newly claimed shards per
        round until no unfinished shard can be claimed (`may_claim`, asked just before a
        claim, holds back shards not needed yet: the budget's spares)."""
        if not self.shared:
            if todo:
                yield todo
            return
        self._done[split] = is_done
        handled: set[int] = set()
        while True:
            batch = []
            for shard in todo:
                if shard in handled or is_done(shard):
                    continue
                if may_claim is not None and not may_claim(shard):
                    continue
                if self.claim(split, shard):
                    handled.add(shard)
                    if not is_done(shard):  # another run may have finished it meanwhile
                        batch.append(shard)
                if len(batch) == self.claim_shards:
                    break
            if not batch:
                return
            yield batch

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _generations(names: list[str]) -> list[tuple[int, str]]:
    found = []
    for name in names:
        tail = name.rsplit(".", 1)[-1]
        if tail.isdigit():
            found.append((int(tail), name))
    return sorted(found)


class LockUnavailable(RunLocked):
    """`sink.shared=true` on a backend that cannot take claims; the message is one line."""


def run_lock(sink_dir: Path | str | Location, shared: bool, stale_s: float,
             claim_shards: int) -> RunLock | None:
    """The lock of a sink.dir (not yet acquired): a local folder, or an object store with
    conditional writes (pipeline/claim_store.py). Elsewhere (az://, ..., or a server that
    ignores the precondition) a normal run goes on unlocked after one warning line (None), and
    a shared run stops with LockUnavailable: without claims it would redo other runs' shards."""
    location = locate(sink_dir)
    where = f"sink.dir={sink_dir if isinstance(sink_dir, Path) else location.url}"
    if location.is_local:
        store: ClaimStore | None = LocalClaims(Path(location.root) / STATE_DIR)
        why = ""
    else:
        store = conditional_store(location, STATE_DIR)
        kind = "gs" if location.protocol in ("gs", "gcs") else "s3"
        why = (f"{location.protocol}:// has no conditional (create-only) write here"
               if store is None else f"the server ignores {PRECONDITION[kind]}")
        if store is not None and not store.enforced():
            store = None
    if store is None:
        if shared:
            raise LockUnavailable(f"{where}: sink.shared=true needs shard claims, and {why}; "
                                  "run one writer on this prefix with sink.shared=false (or "
                                  "use a server that enforces conditional writes, s3:// or "
                                  "gs://, or a shared folder)")
        log.warning("%s: no run lock (%s); make sure no other run writes this prefix", where,
                    why)
        return None
    return RunLock(store, shared=shared, stale_s=stale_s, claim_shards=claim_shards,
                   where=where)
