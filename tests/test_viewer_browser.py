"""`duplexsynth view` on a small real dataset (the pipeline's stages in-process), loaded from
disk in headless Chromium.

Chromium and its WebDriver come from Debian (`apt-get install chromium chromium-driver`, done
by .ci/run); selenium drives the installed binaries and downloads nothing. Without them the
browser test skips and says why; the CLI checks still run.
"""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.dataset import iter_dialogues
from tests.asr_fixtures import build_dataset
from tests.cli_support import cli

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("viewer")
    build_dataset(tmp / "dataset", 2, 2, "plan.speakers=2", "languages=[en]")
    cli(tmp, "view", f"dataset={tmp / 'dataset'}", f"out.dir={tmp / 'site'}")
    rows = list(iter_dialogues(tmp / "dataset", columns=["id", "timeline", "duplex"]))
    return {"tmp": tmp, "rows": rows, "site": tmp / "site"}


def test_view_writes_an_index_and_a_page_per_dialogue(site):
    index = (site["site"] / "index.html").read_text(encoding="utf-8")
    for row in site["rows"]:
        assert f"dialogues/{row['id']}.html" in index
        page = site["site"] / "dialogues" / f"{row['id']}.html"
        assert page.exists() and "http" not in page.read_text(encoding="utf-8").replace(
            "http://www.w3.org/2000/svg", "")  # nothing loaded from the network
        assert (site["site"] / "audio" / row["id"] / "mix.flac").stat().st_size > 0
        assert len(list((site["site"] / "audio" / row["id"]).glob("[0-9]-*.flac"))) == 2


def test_ids_limit_and_split_select_the_pages(site, tmp_path):
    from pipeline.viewer.site import ViewError, write_site

    dataset, second = site["tmp"] / "dataset", site["rows"][1]["id"]
    chosen = write_site(dataset, tmp_path / "ids", split="train", ids=[second])
    assert [p.stem for p in chosen.pages] == [second]
    first = write_site(dataset, tmp_path / "limit", limit=1, audio="ogg")
    assert [p.stem for p in first.pages] == [site["rows"][0]["id"]]
    ogg = tmp_path / "limit" / "audio" / site["rows"][0]["id"] / "mix.ogg"
    assert ogg.read_bytes()[:4] == b"OggS"
    with pytest.raises(ViewError, match="is a dataset folder"):
        write_site(dataset, dataset)


def test_bad_input_is_one_line(site, tmp_path):
    empty = cli(site["tmp"], "view", f"dataset={tmp_path}", f"out.dir={tmp_path / 'v'}", ok=False)
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1
    assert "dataset=" in empty.stderr and "shards" in empty.stderr
    unknown = cli(site["tmp"], "view", f"dataset={site['tmp'] / 'dataset'}",
                  f"out.dir={tmp_path / 'v'}", "ids=[dlg-nope]", ok=False)
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "dlg-nope" in unknown.stderr and "ids:" in unknown.stderr
    assert not (tmp_path / "v").exists()


def test_generate_view_enabled_writes_the_viewer_and_the_card_links_it(site):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.card import write_card
    from pipeline.config import GenerateConfig
    from pipeline.viewer.job import view_after_run

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        raw = compose("generate", overrides=["viewer.enabled=true", "viewer.dialogues=1"])
    config = GenerateConfig.check(OmegaConf.to_container(raw, resolve=True))
    assert not GenerateConfig.check(OmegaConf.to_container(
        OmegaConf.merge(raw, {"viewer": {"enabled": False}}), resolve=True)).viewer.enabled
    dataset = site["tmp"] / "dataset"
    index = view_after_run(dataset, config.viewer)
    assert index == dataset / "viewer" / "index.html"
    assert len(list((dataset / "viewer" / "dialogues").glob("*.html"))) == 1
    card = write_card(dataset).path.read_text(encoding="utf-8")
    assert "[the viewer](viewer/index.html) (1 dialogue:" in card


def chromium(tmp: Path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install -y chromium chromium-driver; .ci/run does it as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) missing")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1400,900",
                 f"--user-data-dir={tmp / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_for(driver, script: str, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_dialogue_page_in_chromium(site, tmp_path):
    row = site["rows"][0]
    words = sum(len(seg["words"]) for seg in row["timeline"]["segments"])
    frames = len(row["duplex"]["state"])
    driver = chromium(tmp_path)
    try:
        driver.get((site["site"] / "index.html").as_uri())
        assert wait_for(driver, "return document.querySelectorAll('tr.row').length") == 2
        cut = sum(1 for r in site["rows"]
                  if any(s["cut_at_s"] is not None for s in r["timeline"]["segments"]))
        visible = ("var f = document.getElementById(arguments[0]); f.value = arguments[1];"
                   "f.dispatchEvent(new Event('change'));"
                   "return document.querySelectorAll('tr.row:not(.hidden)').length;")
        assert driver.execute_script(visible, "f-phenomenon", "interruptions") == cut
        assert driver.execute_script(visible, "f-phenomenon", "") == 2
        assert driver.execute_script(visible, "f-speakers", "2") == 2
        assert driver.execute_script(visible, "f-language", "en") == 2
        assert console_errors(driver) == []

        driver.get((site["site"] / "dialogues" / f"{row['id']}.html").as_uri())
        wait_for(driver, "return window.duplexViewer !== undefined")
        assert driver.execute_script("return document.querySelectorAll('#lanes .word').length") \
            == words
        assert driver.execute_script("return document.querySelectorAll('#lanes .cell').length") \
            == frames
        assert driver.execute_script(
            "return document.createElement('audio').canPlayType('audio/flac')") != ""
        duration = wait_for(driver, "var a = document.getElementById('audio-mix');"
                                    "return a.readyState >= 1 && !a.error && a.duration;")
        assert duration == pytest.approx(row["timeline"]["duration_s"], abs=0.05)

        boxes = driver.find_elements("css selector", "#lanes .word")
        target = boxes[len(boxes) // 2]
        start = float(target.get_attribute("data-start"))
        assert start > 0
        driver.execute_script("arguments[0].scrollIntoView({inline: 'center'})", target)
        target.click()
        now = wait_for(driver, "var t = document.getElementById('audio-mix').currentTime;"
                               f"return Math.abs(t - {start}) < 0.01 && String(t);")
        assert float(now) == pytest.approx(start, abs=0.01)
        assert console_errors(driver) == []
        shot = tmp_path / "viewer_dialogue.png"
        driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        print(f"screenshot: {shot}")
        # served by python's http.server (no byte ranges): the page still seeks
        with static_server(site["site"]) as base:
            driver.get(f"{base}/dialogues/{row['id']}.html#t={start}")
            seeked = wait_for(driver, "var a = document.getElementById('audio-mix');"
                                      "return a.readyState >= 1 && a.src.startsWith('blob:')"
                                      f"&& Math.abs(a.currentTime - {start}) < 0.01;")
            assert seeked and console_errors(driver) == []
    finally:
        driver.quit()


@contextmanager
def static_server(folder: Path):
    """`python -m http.server` in a thread on 127.0.0.1, for as long as the block runs."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
