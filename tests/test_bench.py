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


def test_peer_corpus_is_a_manifest_the_corpus_backend_reads(tmp_path):
    """The corpus both sides of `--only peer` read: eSpeak recordings, 16 kHz FLAC, a NeMo
    manifest whose durations are the files' own, loaded by tts=corpus's own reader."""
    import soundfile as sf

    from pipeline.bench_peer import CORPUS_RATE, build_corpus
    from pipeline.corpus import CorpusBackend

    manifest = build_corpus(tmp_path, voices=2, utterances=3)
    backend = CorpusBackend(str(manifest), language="en")
    assert backend.speakers == ["spk0", "spk1"]
    assert len(backend.utterances) == 6 and len({u.text for u in backend.utterances}) == 6
    for utterance in backend.utterances:
        info = sf.info(utterance.audio_path)
        assert info.samplerate == CORPUS_RATE
        assert info.frames / CORPUS_RATE == pytest.approx(utterance.duration_s, abs=1e-3)
        assert info.frames / CORPUS_RATE > 1.0  # a spoken sentence, not silence


def test_peer_group_without_lhotse_is_one_line_and_exits_non_zero(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "lhotse" else find_spec(name, *args))
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--only", "pipeline", "--only", "peer"])  # refused before any run
    message = str(stopped.value.code)
    assert message.startswith("bench peer: lhotse is not installed") and "\n" not in message


def test_peer_lhotse_half_renders_and_writes_flac(tmp_path):
    """Lhotse's simulate + render + FLAC write on a tiny corpus (the `lhotse` extra brings
    torch, too large for the dev extra: skipped where it is not installed)."""
    pytest.importorskip("lhotse", reason="the lhotse extra (and a CPU torch) is not installed")
    import soundfile as sf

    from pipeline.bench_peer import build_corpus, lhotse_run

    manifest = build_corpus(tmp_path / "corpus", voices=2, utterances=4)
    run = lhotse_run(manifest, tmp_path / "out", meetings=2)
    files = sorted((tmp_path / "out").glob("*.flac"))
    assert run["meetings"] == 2 and len(files) == 2
    assert sum(sf.info(f).frames / sf.info(f).samplerate for f in files) == \
        pytest.approx(run["audio_s"], abs=0.01)
    assert run["audio_s"] > 2.0 and run["wall_s"] > 0
