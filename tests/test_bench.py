"""The benchmark entry point prints one JSON object; groups can be picked with --only."""

from __future__ import annotations

import json

import pytest

from pipeline import bench


def test_writer_measurement_overlaps_requests(monkeypatch, capsys):
    small = lambda: bench.writer_concurrency_speedup(  # noqa: E731
        latency_s=0.05, dialogues_serial=2, dialogues_parallel=8, concurrency=8)
    monkeypatch.setitem(bench.MEASUREMENTS, "writer", small)
    figures = bench.main(["--only", "writer"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == figures
    assert figures["writer_concurrency_speedup"] > 1.5
    assert figures["writer_dialogues_per_s_c8"] > figures["writer_dialogues_per_s_c1"]


def test_unknown_group_is_refused():
    with pytest.raises(SystemExit):
        bench.main(["--only", "nonexistent"])
