"""The benchmark entry point prints one JSON object; groups can be picked with --only."""

from __future__ import annotations

import json

import pytest

from pipeline import bench


def test_writer_measurement_overlaps_requests(monkeypatch, capsys):
    small = lambda sizes: bench.writer_concurrency_speedup(  # noqa: E731
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


PIPELINE_KEYS = {
    "tts_throughput_ratio", "tts_throughput_ratio_with_ray_start", "espeak_audio_s_per_s",
    "pipeline_audio_s_per_s", "pipeline_generate_s",
    "rss_ratio_4n_over_n", "rss_peak_mb_n", "rss_peak_mb_4n",
}
STAGES = ("plan", "write", "validate", "speak", "arrange", "render", "label", "encode", "sink")


@pytest.mark.slow
def test_pipeline_and_worker_figures_at_tiny_sizes(capsys):
    """Real generate runs (1 and 4 dialogues, 1 per worker run): keys and types, not targets."""
    figures = bench.main(["--only", "pipeline", "--only", "workers",
                          "--dialogues", "1", "--worker-dialogues", "1"])
    assert json.loads(capsys.readouterr().out) == figures
    assert set(figures) >= PIPELINE_KEYS
    for key in PIPELINE_KEYS:
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["pipeline_dialogues"] == 4
    assert isinstance(figures["tts_throughput_ratio_steady"], float)  # 0 within one shard
    for stage in STAGES:
        assert isinstance(figures[f"stage_s_{stage}"], float), stage
        assert figures[f"stage_s_{stage}"] >= 0, stage
    assert figures["stage_s_speak"] > 0 and figures["stage_s_encode"] > 0
    assert figures["tts_throughput_ratio_with_ray_start"] <= figures["tts_throughput_ratio"]
    assert figures["rss_peak_mb_4n"] > 100  # a driver plus Ray's processes, sampled
    assert isinstance(figures["worker_speedup_2_over_1"], float)
    assert figures["worker_speedup_2_over_1"] > 0
