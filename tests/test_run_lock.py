"""The run lock and shared-run claims (pipeline/run_lock.py), on a local folder and on a
real S3 server (moto on 127.0.0.1: conditional PUTs, pipeline/claim_store.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.claim_store import ClaimStore, ObjectClaims
from pipeline.run_lock import (
    HOST,
    STATE_DIR,
    LocalClaims,
    LockUnavailable,
    RunLock,
    RunLocked,
    RunRecord,
    run_lock,
)
from pipeline.storage import Location, locate


def dead_pid() -> int:
    """The pid of a process that has ended (not reused this quickly on Linux)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def record(host: str = HOST, pid: int | None = None, heartbeat: float | None = None,
           shared: bool = False) -> RunRecord:
    return RunRecord("t" + str(pid or 0) + host, host, pid or dead_pid(), "2026-12-01T00:00:00Z",
                     shared, time.time() if heartbeat is None else heartbeat)


@dataclass
class Site:
    """One sink.dir under test: `target` as run_lock is given it, `shown` as messages name it."""

    target: Path | Location
    shown: str
    store: ClaimStore
    """The lock's own store (`.duplexsynth/` inside the sink.dir)."""


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("moto.server", reason="the dev extra installs moto[server]")
    from tests.s3_server import moto_s3

    with moto_s3() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def site(request, tmp_path) -> Iterator[Site]:
    if request.param == "local":
        yield Site(tmp_path, str(tmp_path), LocalClaims(tmp_path / STATE_DIR))
        return
    server = request.getfixturevalue("s3_server")
    location = locate(server.fresh_prefix(), server.options)
    yield Site(location, location.url, ObjectClaims(location, STATE_DIR))


def lock(where: Site | Path, shared: bool = False, claim_shards: int = 2) -> RunLock:
    target = where.target if isinstance(where, Site) else where
    taken = run_lock(target, shared=shared, stale_s=60, claim_shards=claim_shards)
    assert taken is not None
    return taken


def files(where: Site, prefix: str) -> list[str]:
    return where.store.names(prefix)


def test_a_live_holder_stops_the_second_run_with_one_line(site):
    first = lock(site).acquire()
    with pytest.raises(RunLocked) as caught:
        lock(site).acquire()
    message = str(caught.value)
    assert message.startswith(f"sink.dir={site.shown} is in use by a live run: host {HOST}, "
                              f"pid {first.me.pid}, started {first.me.started}; ")
    assert "sink.shared=true" in message and "\n" not in message
    assert files(site, "runs/") == [f"runs/{first.me.token}.json"]  # the loser left
    first.release()
    assert files(site, "lock.") == [] and files(site, "runs/") == []
    with lock(site):  # free again
        assert files(site, "lock.") == ["lock.000000"]


def test_a_dead_holder_on_this_host_is_taken_over(site):
    store = site.store
    store.create("lock.000000", record().to_json())
    with lock(site) as taken:
        assert files(site, "lock.") == ["lock.000000", "lock.000001"]
        assert RunRecord.from_json(store.read("lock.000001")).token == taken.me.token
    assert files(site, "lock.") == []


def test_a_holder_on_another_host_is_dead_only_after_its_heartbeat_stops(site):
    store = site.store
    fresh = record(host="node-b", pid=4242)
    store.create("lock.000000", fresh.to_json())
    store.write(f"runs/{fresh.token}.json", fresh.to_json())
    with pytest.raises(RunLocked, match="host node-b, pid 4242"):
        lock(site).acquire()
    fresh.heartbeat -= 61  # older than lock_stale_s
    store.write(f"runs/{fresh.token}.json", fresh.to_json())
    with lock(site):
        assert files(site, "lock.")[-1] == "lock.000001"


def test_the_heartbeat_refreshes_the_record(site):
    held = RunLock(site.store, stale_s=0.2).acquire()
    before = held.me.heartbeat
    deadline = time.monotonic() + 20  # a beat every 0.05 s; a loaded machine is slower
    stored = None
    while time.monotonic() < deadline and (stored is None or stored.heartbeat <= before):
        time.sleep(0.1)
        stored = RunRecord.from_json(site.store.read(f"runs/{held.me.token}.json"))
    held.release()
    assert stored is not None and stored.heartbeat > before
    assert files(site, "runs/") == []


def test_shared_and_exclusive_runs_exclude_each_other(site):
    with lock(site, shared=True), lock(site, shared=True):  # shared runs coexist
        with pytest.raises(RunLocked, match="in use by shared runs"):
            lock(site).acquire()
        assert files(site, "lock.") == []  # the refused run gave the lock back
    with lock(site), pytest.raises(RunLocked, match="in use by a live run"):
        lock(site, shared=True).acquire()


def test_shared_runs_split_the_shards_and_none_is_done_twice(site):
    done: set[int] = set()
    runs = [lock(site, shared=True, claim_shards=2).acquire() for _ in range(2)]
    rounds = [run.rounds("train", list(range(7)), done.__contains__) for run in runs]
    did: list[list[int]] = [[], []]
    active = [0, 1]
    while active:  # the two runs take turns, as two hosts would
        for number in list(active):
            batch = next(rounds[number], None)
            if batch is None:
                active.remove(number)
                continue
            assert not set(batch) & done
            did[number] += batch
            done.update(batch)
    assert sorted(did[0] + did[1]) == list(range(7))
    assert did[0] and did[1]
    assert len(files(site, "claims/")) == 7
    for run in runs:
        run.release()
    assert len(files(site, "claims/")) == 7  # finished shards keep their claim


def test_a_claim_of_a_dead_run_is_taken_over_and_unfinished_claims_are_released(site):
    store = site.store
    store.create("claims/train-00001.parquet.000000", record(shared=True).to_json())
    run = lock(site, shared=True, claim_shards=5).acquire()
    other = lock(site, shared=True).acquire()
    assert other.claim("train", 3)  # a live run holds shard 3
    batch = next(run.rounds("train", [0, 1, 2, 3], lambda shard: False))
    assert batch == [0, 1, 2]
    assert "claims/train-00001.parquet.000001" in files(site, "claims/")
    run.release()  # none finished: its claims go, the dead run's stale one stays
    assert files(site, "claims/") == ["claims/train-00001.parquet.000000",
                                      "claims/train-00003.parquet.000000"]
    other.release()


def test_exclusive_create_has_one_winner_under_contention(tmp_path):
    """Local only: moto checks If-None-Match and then stores, two steps a racing request can
    slip between (S3 itself decides atomically), so the race is not a test of ours there."""
    store = LocalClaims(tmp_path)
    wins: list[int] = []
    start = threading.Barrier(8)

    def race(number: int) -> None:
        start.wait()
        if store.create("claims/x.000000", str(number)):
            wins.append(number)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1 and store.read("claims/x.000000") == str(wins[0])


def test_the_s3_server_enforces_create_only_puts(s3_server):
    store = ObjectClaims(locate(s3_server.fresh_prefix(), s3_server.options), STATE_DIR)
    assert store.enforced()
    assert store.create("lock.000000", "first") and not store.create("lock.000000", "second")
    assert store.read("lock.000000") == "first"
    assert store.names("") == ["lock.000000"]  # the probe left nothing


def test_a_backend_without_conditional_writes_has_no_lock_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="duplexsynth"):
        assert run_lock("az://bucket/ds", shared=False, stale_s=60, claim_shards=4) is None
    assert [r.getMessage() for r in caplog.records] == [
        "sink.dir=az://bucket/ds: no run lock (az:// has no conditional (create-only) write "
        "here); make sure no other run writes this prefix"]
    with pytest.raises(LockUnavailable) as caught:
        run_lock("az://bucket/ds", shared=True, stale_s=60, claim_shards=4)
    assert str(caught.value) == (
        "sink.dir=az://bucket/ds: sink.shared=true needs shard claims, and az:// has no "
        "conditional (create-only) write here; run one writer on this prefix with "
        "sink.shared=false (or use a server that enforces conditional writes, s3:// or "
        "gs://, or a shared folder)")


def test_gcs_claims_on_an_enforcing_server_and_the_probe_on_one_that_ignores_it(caplog):
    pytest.importorskip("gcsfs", reason="the dev extra installs gcsfs")
    from tests.gcs_server import fake_gcs, python_gcs

    with fake_gcs() as server:
        store = ObjectClaims(locate(server.fresh_prefix(), server.options), STATE_DIR)
        assert store.enforced()
        assert store.create("lock.000000", "first") and not store.create("lock.000000", "2")
        assert store.read("lock.000000") == "first" and store.names("") == ["lock.000000"]
    with python_gcs() as server, caplog.at_level(logging.WARNING, logger="duplexsynth"):
        target = locate(server.fresh_prefix(), server.options)
        assert run_lock(target, shared=False, stale_s=60, claim_shards=4) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"sink.dir={target.url}: no run lock (the server ignores GCS preconditions "
        "(ifGenerationMatch=0)); make sure no other run writes this prefix"]


def test_a_failing_store_is_the_sinks_one_line(s3_server):
    from pipeline.storage import StorageError

    store = ObjectClaims(locate("s3://no-such-bucket/ds", s3_server.options), STATE_DIR)
    with pytest.raises(StorageError) as caught:
        store.write("runs/x.json", "{}")
    assert str(caught.value) == (
        "sink: cannot write s3://no-such-bucket/ds/.duplexsynth/runs/x.json: the bucket does "
        "not exist; create it (or fix sink.dir) and rerun")
    assert not store.enforced()  # nothing to probe: no lock rather than a traceback
