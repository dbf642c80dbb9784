"""Data card and Hub publishing, on a real generated dataset and a local Hub endpoint.

The session's shared `generate` run (tests/conftest.py) is copied for the module (the card job
rewrites its card); it ran with fake secrets in the environment, which must show up nowhere in
what the tools write or log.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.card import PLOTS, REDACTED, CardSettings, redact, scrub_secrets
from pipeline.card_metadata import CardError, size_category, validate_card
from pipeline.card_plots import target_offset_density
from pipeline.card_stats import dataset_stats
from pipeline.dataset import iter_dialogues
from pipeline.publish import upload_plan
from pipeline.timing import TimingSettings
from tests.conftest import SHARED_DIALOGUES, SHARED_SECRETS
from tests.hub_server import LocalHub

ROOT = Path(__file__).resolve().parent.parent
SECRETS = SHARED_SECRETS
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, **SECRETS, "NO_PROXY": "127.0.0.1",
                                 **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_dataset):
    base = tmp_path_factory.mktemp("card")
    dataset = Path(shutil.copytree(shared_dataset.path, base / "ds"))
    return {"dataset": dataset, "base": base, "logs": shared_dataset.logs,
            "generate_base": shared_dataset.base}


def front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


@pytest.mark.slow
def test_generate_writes_a_card_that_validates_and_loads(run):
    from datasets import Audio, load_dataset
    from huggingface_hub import DatasetCard

    dataset = run["dataset"]
    text = (dataset / "README.md").read_text()
    validate_card(text, dataset)
    card = DatasetCard(text)
    meta = card.data.to_dict()
    assert sorted(meta["language"]) == ["en", "hu"]
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"]
    assert "automatic-speech-recognition" in meta["task_categories"]
    assert "synthetic" in meta["tags"]
    assert [c["config_name"] for c in meta["configs"]] == ["dialogues", "segments"]
    info = {i["config_name"]: i for i in meta["dataset_info"]}
    audio = next(f for f in info["segments"]["features"] if f["name"] == "audio")
    assert audio["dtype"] == {"audio": {"sampling_rate": 16000}}
    # `datasets` reads the configs of the card itself: a folder path and a config name.
    splits = {s["name"]: s["num_examples"] for s in info["segments"]["splits"]}
    assert set(splits) == {"train", "validation", "test"}
    for entry in meta["configs"]:
        assert {f["split"] for f in entry["data_files"]} == set(splits)
    for split, rows in splits.items():
        segments = load_dataset(str(dataset), "segments", split=split)
        assert isinstance(segments.features["audio"], Audio)
        assert segments.num_rows == rows
    assert 'split="validation")' in card.text
    assert "All speech in this dataset is synthetic" in card.text


@pytest.mark.slow
def test_every_plot_exists_is_a_real_png_and_is_embedded(run):
    import matplotlib.image

    dataset = run["dataset"]
    text = (dataset / "README.md").read_text()
    for name in PLOTS.values():
        path = dataset / "plots" / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(path)
        assert image.shape[0] >= 200 and image.shape[1] >= 400
        assert image[..., :3].std() > 0.05, f"{name} is blank"
        assert f"](plots/{name})" in text


@pytest.mark.slow
def test_statistics_equal_counts_recomputed_from_the_shards(run):
    dataset = run["dataset"]
    stats = dataset_stats(dataset)
    dialogues = pq.read_table(dataset / "data" / "dialogues",
                              columns=["language", "duration_s", "speakers", "timeline"])
    segments = pq.read_table(dataset / "data" / "segments", columns=["language", "duration_s"])
    assert stats.dialogues == dialogues.num_rows == SHARED_DIALOGUES
    assert stats.segments == segments.num_rows
    assert stats.hours == pytest.approx(sum(dialogues.column("duration_s").to_pylist()) / 3600)
    rows = list(iter_dialogues(dataset, ["speakers", "timeline"]))
    voices = {s["voice"]["id"] for row in rows for s in row["speakers"]}
    assert stats.speakers == len(voices)
    languages = Counter(dialogues.column("language").to_pylist())
    segment_languages = Counter(segments.column("language").to_pylist())
    for code, row in stats.summary()["languages"].items():
        assert row["dialogues"] == languages[code]
        assert row["segments"] == segment_languages[code]
    timelines = [row["timeline"] for row in rows]
    for name, row in stats.summary()["splits"].items():
        assert row["dialogues"] == len(list(iter_dialogues(dataset, ["id"], split=name)))
    backchannels = sum(s["kind"] == "backchannel" for t in timelines for s in t["segments"])
    cut = sum(s["cut_at_s"] is not None for t in timelines for s in t["segments"])
    assert stats.realized["backchannels"] == backchannels
    assert stats.realized["interruptions"] == cut
    speech = sum(s["end_s"] - s["start_s"] for t in timelines for s in t["segments"])
    assert sum(stats.voice_speech_s.values()) == pytest.approx(speech)
    run_json = json.loads((dataset / "run.json").read_text())
    assert stats.shard_written == run_json["counts"]["written"]
    assert dict(stats.shard_rejected) == run_json["counts"]["rejected"]
    assert stats.timing.result() == run_json["timing"]["achieved"]
    text = (dataset / "README.md").read_text()
    assert f"| Dialogues | {dialogues.num_rows} |" in text
    assert f"| Speakers (distinct synthetic voices) | {len(voices)} |" in text
    assert f"| backchannels | {stats.requested['backchannels']} | {backchannels} |" in text


@pytest.mark.slow
def test_card_job_rewrites_the_card_from_the_shards(run):
    dataset = run["dataset"]
    (dataset / "README.md").unlink()
    for name in PLOTS.values():
        (dataset / "plots" / name).unlink()
    result = cli("card", f"dataset={dataset}", "card.license=cc-by-sa-4.0",
                 f"hydra.run.dir={run['base'] / 'hydra-card'}")
    run["logs"] += result.stdout + result.stderr
    meta = front_matter((dataset / "README.md").read_text())
    assert meta["license"] == "cc-by-sa-4.0"
    assert all((dataset / "plots" / name).exists() for name in PLOTS.values())
    failed = cli("card", f"sink.dir={run['base'] / 'missing'}",
                 f"hydra.run.dir={run['base'] / 'hydra-card'}", check=False)
    assert failed.returncode == 2 and "no dialogues shards" in failed.stderr


@pytest.mark.slow
def test_publish_dry_run_prints_the_plan_and_sends_nothing(run):
    dataset = run["dataset"]
    with LocalHub(SECRETS["HF_TOKEN"]) as hub:
        result = cli("publish", f"sink.dir={dataset}", "repo_id=someone/synthetic-talk",
                     f"publish.endpoint={hub.url}", f"hydra.run.dir={run['base'] / 'hydra-p'}")
    run["logs"] += result.stdout + result.stderr
    assert hub.state.requests == []
    for planned in upload_plan(dataset):
        assert planned.path in result.stdout
    assert "dry run: nothing was sent" in result.stdout
    assert "token: HF_TOKEN" in result.stdout


@pytest.mark.slow
def test_publish_uploads_every_file_of_the_plan_to_a_local_hub(run):
    dataset = run["dataset"]
    token = SECRETS["HF_TOKEN"]
    with LocalHub(token) as hub:
        result = cli("publish", f"dataset={dataset}", "repo_id=someone/synthetic-talk",
                     "publish.confirm=true", f"publish.endpoint={hub.url}",
                     f"hydra.run.dir={run['base'] / 'hydra-p'}",
                     env={"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    run["logs"] += result.stdout + result.stderr
    state = hub.state
    assert state.errors == []
    assert state.repos["someone/synthetic-talk"]["visibility"] == "private"
    plan = upload_plan(dataset)
    assert {"README.md", "run.json", "data/dialogues/validation-00000.parquet",
            "plots/transfer_offsets.png"} <= {f.path for f in plan}
    assert sorted(state.committed) == [f.path for f in plan]
    for planned in plan:
        local = (dataset / planned.path).read_bytes()
        assert hashlib.sha256(state.committed[planned.path]).digest() == \
            hashlib.sha256(local).digest(), planned.path
    api_calls = [r for r in state.requests if r["path"].startswith("/api/")]
    assert api_calls and all(r["authorization"] == f"Bearer {token}" for r in api_calls)
    assert any("/info/lfs/objects/batch" in r["path"] for r in state.requests)
    readme = state.committed["README.md"].decode()
    assert 'load_dataset("someone/synthetic-talk", "segments"' in readme


@pytest.mark.slow
def test_no_secret_appears_in_the_card_run_json_or_logs(run):
    dataset, base = run["dataset"], run["base"]
    # Hydra writes no run folder (conf: output_subdir null, stdout logging): the logs are
    # the captured output, and any .log / .yaml that did appear is checked too
    written = [dataset / "README.md", dataset / "run.json",
               *[p for folder in (base, run["generate_base"]) for p in folder.rglob("*")
                 if p.is_file() and p.suffix in (".log", ".yaml")]]
    assert run["logs"].strip() and all(p.exists() for p in written)
    texts = {str(p): p.read_text(errors="replace") for p in written}
    texts["captured stdout/stderr"] = run["logs"]
    for name, secret in SECRETS.items():
        for where, text in texts.items():
            assert secret not in text, f"{name} leaked into {where}"


def test_publish_refuses_a_bad_repo_id_before_any_work(tmp_path):
    result = cli("publish", f"sink.dir={tmp_path}", "repo_id=not/a/repo",
                 f"hydra.run.dir={tmp_path / 'hydra'}", check=False)
    assert result.returncode == 2
    assert "repo_id" in result.stderr


def test_a_card_failure_keeps_the_data_and_exits_3(tmp_path):
    from pipeline.jobs import write_card_after_run

    shard = tmp_path / "data" / "dialogues" / "keep.txt"
    shard.parent.mkdir(parents=True)
    shard.write_text("data stays")
    with pytest.raises(SystemExit) as exit_info:
        write_card_after_run(tmp_path)
    assert exit_info.value.code == 3
    assert shard.read_text() == "data stays"
    assert not (tmp_path / "README.md").exists()


def test_card_settings_defaults_equal_conf_card_default():
    conf = yaml.safe_load((ROOT / "conf" / "card" / "default.yaml").read_text())
    assert CardSettings().model_dump() == conf


def test_redact_hides_secret_values_but_keeps_env_var_names():
    config = {"writer": {"api_key": "sk-live-123", "api_key_env": "OPENAI_API_KEY",
                         "base_url": "http://127.0.0.1:8000/v1"},
              "publish": [{"token": "hf_abc"}], "seed": 3}
    assert redact(config) == {"writer": {"api_key": REDACTED, "api_key_env": "OPENAI_API_KEY",
                                         "base_url": "http://127.0.0.1:8000/v1"},
                              "publish": [{"token": REDACTED}], "seed": 3}


def test_scrub_secrets_removes_environment_secrets(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-0123456789abcdef")
    assert scrub_secrets("url?t=tok-0123456789abcdef&x=1") == f"url?t={REDACTED}&x=1"


def test_size_categories_follow_the_hub_buckets():
    assert [size_category(n) for n in (0, 999, 1000, 54_321, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


def test_target_offset_density_is_a_density_with_the_overlap_share_below_zero():
    x = np.linspace(-20.0, 60.0, 400_001)
    density = target_offset_density(x, TimingSettings().offset, 0.3)
    step = x[1] - x[0]
    below = density[x < 0].sum() * step
    total = density.sum() * step
    assert below == pytest.approx(0.3, abs=0.005)
    assert 0.97 < total <= 1.001
    near = density[(x > -0.05) & (x < 0.05)]
    assert near.min() > 0.3 * near.max()  # continuous through zero: no hole


def test_validate_card_rejects_a_card_without_configs(tmp_path):
    with pytest.raises(CardError, match="configs"):
        validate_card("---\nlicense: mit\nlanguage: [en]\ntask_categories: [x]\n"
                      "size_categories: [n<1K]\ntags: [a]\npretty_name: p\n---\n# real\n",
                      tmp_path)


@pytest.mark.slow
def test_validate_card_rejects_wrong_features_and_a_card_silent_on_synthetic_speech(run):
    dataset = run["dataset"]
    text = (dataset / "README.md").read_text()
    head, body = text.split("\n---\n", 1)
    with pytest.raises(CardError, match="features differ"):
        validate_card(head.replace("sampling_rate: 16000", "sampling_rate: 8000", 1)
                      + "\n---\n" + body, dataset)
    with pytest.raises(CardError, match="synthetic"):
        validate_card(head + "\n---\n" + body.replace("synthetic", "recorded")
                      .replace("Synthetic", "Recorded"), dataset)
