"""Write the static viewer site of a dataset: an index page and one page per dialogue.

The site opens straight from disk (file://) and works from `python -m http.server` too: no
server, no CDN, no fetch() (Chromium blocks it on file://), so each page carries its data in
an inline JSON script and the shared CSS/JS sit in `assets/`. Audio is written beside the
pages, by default as FLAC (16-bit, the dataset's own rate): Chromium, Firefox and Safari play
FLAC in <audio>, the mix's stored FLAC bytes are copied without re-encoding, and each speaker's
channel is one mono FLAC file (mostly silence, so it compresses well). `audio="ogg"` writes Ogg
Vorbis instead (lossy, about a quarter of the size; Chromium and Firefox play it, Safari
before 17 does not): for a site to share rather than to check audio defects on.

Layout: `index.html`, `assets/`, `dialogues/<id>.html`, `audio/<id>/mix.flac`,
`audio/<id>/<n>-<speaker>.flac`.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pipeline import dataset as reader
from pipeline.viewer.page import page_data, summary_row

TEMPLATES = Path(__file__).resolve().parent / "templates"
ASSETS = ("viewer.css", "dialogue.js", "index.js")
AUDIO_FORMATS = {"flac": ("flac", "FLAC", "PCM_16"), "ogg": ("ogg", "OGG", "VORBIS")}


class ViewError(ValueError):
    """Bad input for the viewer (missing dataset, unknown id); the message names the fix."""


@dataclass
class SiteResult:
    index: Path
    pages: list[Path] = field(default_factory=list)
    bytes: int = 0


def _reader_kwargs(split: str | None, function=reader.iter_dialogues) -> dict[str, Any]:
    """`split=` goes to the reader once it takes one; until then there is one split to read."""
    if split and "split" in inspect.signature(function).parameters:
        return {"split": split}
    return {}


def _shards_or_fail(dataset: Path, split: str | None) -> None:
    try:
        reader.shard_paths(dataset, "dialogues", **_reader_kwargs(split, reader.shard_paths))
    except reader.DatasetNotFound as error:
        raise ViewError(str(error)) from None


def available_ids(dataset: Path, split: str | None = None) -> list[str]:
    return [row["id"] for row in reader.iter_dialogues(dataset, columns=["id"],
                                                       **_reader_kwargs(split))]


def select_rows(dataset: Path, split: str | None = None, limit: int | None = None,
                ids: Sequence[str] = ()) -> Iterator[dict]:
    """Rows to show, in dataset order: the listed `ids` (all must exist), else the first
    `limit` (None: all). Ids are checked before any page is written."""
    _shards_or_fail(dataset, split)
    wanted = list(dict.fromkeys(ids))
    if wanted:
        known = set(available_ids(dataset, split))
        missing = [i for i in wanted if i not in known]
        if missing:
            example = next(iter(sorted(known)), "none")
            raise ViewError(f"ids: {missing} not in dataset={dataset} ({len(known)} dialogues, "
                            f"e.g. {example}); drop them or fix the spelling")
    count = 0
    for row in reader.iter_dialogues(dataset, **_reader_kwargs(split)):
        if wanted and row["id"] not in wanted:
            continue
        if not wanted and limit is not None and count >= limit:
            return
        count += 1
        yield row
        if wanted and count == len(wanted):
            return


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"


def write_audio(row: dict, folder: Path, order: Sequence[str],
                audio: str = "flac") -> dict[str, Any]:
    """The mix and one mono file per speaker channel (`audio`: flac or ogg); paths are relative
    to the site root. A dialogue without audio columns gets no players."""
    suffix, container, subtype = AUDIO_FORMATS[audio]
    folder.mkdir(parents=True, exist_ok=True)
    site_root = folder.parent.parent
    result: dict[str, Any] = {"mix": None, "channels": [], "format": audio}
    mix = row.get("audio")
    if mix and mix.get("bytes"):
        target = folder / f"mix.{suffix}"
        if audio == "flac":  # the stored bytes are FLAC already
            target.write_bytes(mix["bytes"])
        else:
            samples, rate = reader.decode_audio(mix)
            sf.write(target, samples, rate, format=container, subtype=subtype)
        result["mix"] = target.relative_to(site_root).as_posix()
    cells = row.get("channels")
    tracks: list[tuple[np.ndarray, int]] = []
    if isinstance(cells, list):  # one audio cell per speaker
        tracks = [reader.decode_audio(c) for c in cells if c and c.get("bytes")]
    elif cells and cells.get("bytes"):
        samples, rate = reader.decode_audio(cells)
        samples = samples[:, None] if samples.ndim == 1 else samples
        tracks = [(samples[:, i], rate) for i in range(samples.shape[1])]
    for number, ((samples, rate), speaker) in enumerate(zip(tracks, order, strict=False)):
        path = folder / f"{number}-{_safe(speaker)}.{suffix}"
        sf.write(path, np.asarray(samples, dtype=np.float32), rate, format=container,
                 subtype=subtype)
        result["channels"].append({"speaker": speaker,
                                   "src": path.relative_to(site_root).as_posix()})
    return result


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["inline_json"] = lambda value: json.dumps(
        value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    env.filters["list_index"] = lambda items, item: items.index(item) if item in items else 0
    return env


def rejects_summary(run: dict) -> dict[str, Any]:
    counts = run.get("counts") or {}
    rejected = counts.get("rejected") or {}
    return {"planned": counts.get("planned"), "written": counts.get("written"),
            "rejected": sorted(rejected.items(), key=lambda kv: -kv[1]),
            "rejected_total": sum(rejected.values()), "has_run_json": bool(run)}


def write_site(dataset: Path, out_dir: Path, split: str | None = None,
               limit: int | None = None, ids: Sequence[str] = (),
               px_per_s: float = 80.0, audio: str = "flac") -> SiteResult:
    """Write the site for the selected dialogues into `out_dir` (replacing an earlier site's
    pages and audio there); returns what was written."""
    dataset, out_dir = Path(dataset).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if audio not in AUDIO_FORMATS:
        raise ViewError(f"audio: {audio!r} unknown; use one of {sorted(AUDIO_FORMATS)}")
    if out_dir == dataset or (out_dir / "data" / "dialogues").is_dir():
        raise ViewError(f"out.dir={out_dir} is a dataset folder; pick a folder of its own, "
                        f"e.g. out.dir={dataset / 'viewer'}")
    rows = select_rows(dataset, split, limit, ids)
    first = next(rows, None)  # errors surface here, before anything is written
    if first is None:
        raise ViewError(f"dataset={dataset}: the shards hold no dialogue to show")
    if (out_dir / "assets" / "dialogue.js").exists():  # an earlier site: replace its pages
        for stale in ("dialogues", "audio"):
            shutil.rmtree(out_dir / stale, ignore_errors=True)
    (out_dir / "dialogues").mkdir(parents=True, exist_ok=True)
    (out_dir / "assets").mkdir(parents=True, exist_ok=True)
    for asset in ASSETS:
        shutil.copyfile(TEMPLATES / asset, out_dir / "assets" / asset)
    env = _environment()
    page_template = env.get_template("dialogue.html.j2")
    result = SiteResult(index=out_dir / "index.html")
    summaries = []
    for row in _chain(first, rows):
        data = page_data(row)
        data["audio"] = write_audio(row, out_dir / "audio" / _safe(row["id"]),
                                    [s["id"] for s in data["speakers"]], audio)
        data["px_per_s"] = px_per_s
        page = out_dir / "dialogues" / f"{_safe(row['id'])}.html"
        page.write_text(page_template.render(data=data), encoding="utf-8")
        result.pages.append(page)
        summary = summary_row(data)
        summary["href"] = page.relative_to(out_dir).as_posix()
        summaries.append(summary)
    index = env.get_template("index.html.j2").render(
        dataset=str(dataset), dialogues=summaries, run=rejects_summary(reader.run_info(dataset)),
        languages=sorted({s["language"] for s in summaries if s["language"]}),
        speaker_counts=sorted({s["num_speakers"] for s in summaries}),
        phenomena=sorted({k for s in summaries for k in s["phenomena"]}))
    result.index.write_text(index, encoding="utf-8")
    result.bytes = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return result


def _chain(first: dict, rest: Iterator[dict]) -> Iterator[dict]:
    yield first
    yield from rest
