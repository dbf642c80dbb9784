"""The run lock and shared-run claims on a local folder (pipeline/run_lock.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.run_lock import (
    HOST,
    STATE_DIR,
    LocalClaims,
    RunLock,
    RunLocked,
    RunRecord,
    run_lock,
)


def dead_pid() -> int:
    """The pid of a process that has ended (not reused this quickly on Linux)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def record(host: str = HOST, pid: int | None = None, heartbeat: float | None = None,
           shared: bool = False) -> RunRecord:
    return RunRecord("t" + str(pid or 0) + host, host, pid or dead_pid(), "2026-12-01T00:00:00Z",
                     shared, time.time() if heartbeat is None else heartbeat)


def lock(tmp: Path, shared: bool = False, claim_shards: int = 2) -> RunLock:
    return run_lock(tmp, shared=shared, stale_s=60, claim_shards=claim_shards)


def files(tmp: Path, prefix: str) -> list[str]:
    return LocalClaims(tmp / STATE_DIR).names(prefix)


def test_a_live_holder_stops_the_second_run_with_one_line(tmp_path):
    first = lock(tmp_path).acquire()
    with pytest.raises(RunLocked) as caught:
        lock(tmp_path).acquire()
    message = str(caught.value)
    assert message.startswith(f"sink.dir={tmp_path} is in use by a live run: host {HOST}, "
                              f"pid {first.me.pid}, started {first.me.started}; ")
    assert "sink.shared=true" in message and "\n" not in message
    assert files(tmp_path, "runs/") == [f"runs/{first.me.token}.json"]  # the loser left
    first.release()
    assert files(tmp_path, "lock.") == [] and files(tmp_path, "runs/") == []
    with lock(tmp_path):  # free again
        assert files(tmp_path, "lock.") == ["lock.000000"]


def test_a_dead_holder_on_this_host_is_taken_over(tmp_path):
    store = LocalClaims(tmp_path / STATE_DIR)
    store.create("lock.000000", record().to_json())
    with lock(tmp_path) as taken:
        assert files(tmp_path, "lock.") == ["lock.000000", "lock.000001"]
        assert RunRecord.from_json(store.read("lock.000001")).token == taken.me.token
    assert files(tmp_path, "lock.") == []


def test_a_holder_on_another_host_is_dead_only_after_its_heartbeat_stops(tmp_path):
    store = LocalClaims(tmp_path / STATE_DIR)
    fresh = record(host="node-b", pid=4242)
    store.create("lock.000000", fresh.to_json())
    store.write(f"runs/{fresh.token}.json", fresh.to_json())
    with pytest.raises(RunLocked, match="host node-b, pid 4242"):
        lock(tmp_path).acquire()
    fresh.heartbeat -= 61  # older than lock_stale_s
    store.write(f"runs/{fresh.token}.json", fresh.to_json())
    with lock(tmp_path):
        assert files(tmp_path, "lock.")[-1] == "lock.000001"


def test_the_heartbeat_refreshes_the_record(tmp_path):
    held = RunLock(LocalClaims(tmp_path), stale_s=0.2).acquire()
    before = held.me.heartbeat
    time.sleep(0.3)
    stored = RunRecord.from_json(LocalClaims(tmp_path).read(f"runs/{held.me.token}.json"))
    held.release()
    assert stored.heartbeat > before


def test_shared_and_exclusive_runs_exclude_each_other(tmp_path):
    with lock(tmp_path, shared=True), lock(tmp_path, shared=True):  # shared runs coexist
        with pytest.raises(RunLocked, match="in use by shared runs"):
            lock(tmp_path).acquire()
        assert files(tmp_path, "lock.") == []  # the refused run gave the lock back
    with lock(tmp_path), pytest.raises(RunLocked, match="in use by a live run"):
        lock(tmp_path, shared=True).acquire()


def test_shared_runs_split_the_shards_and_none_is_done_twice(tmp_path):
    done: set[int] = set()
    runs = [lock(tmp_path, shared=True, claim_shards=2).acquire() for _ in range(2)]
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
    assert len(files(tmp_path, "claims/")) == 7
    for run in runs:
        run.release()
    assert len(files(tmp_path, "claims/")) == 7  # finished shards keep their claim


def test_a_claim_of_a_dead_run_is_taken_over_and_unfinished_claims_are_released(tmp_path):
    store = LocalClaims(tmp_path / STATE_DIR)
    store.create("claims/train-00001.parquet.000000", record(shared=True).to_json())
    run = lock(tmp_path, shared=True, claim_shards=5).acquire()
    other = lock(tmp_path, shared=True).acquire()
    assert other.claim("train", 3)  # a live run holds shard 3
    batch = next(run.rounds("train", [0, 1, 2, 3], lambda shard: False))
    assert batch == [0, 1, 2]
    assert "claims/train-00001.parquet.000001" in files(tmp_path, "claims/")
    run.release()  # none finished: its claims go, the dead run's stale one stays
    assert files(tmp_path, "claims/") == ["claims/train-00001.parquet.000000",
                                          "claims/train-00003.parquet.000000"]
    other.release()


def test_exclusive_create_has_one_winner_under_contention(tmp_path):
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
