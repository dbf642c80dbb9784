"""`duplexsynth mix`: real + synthetic ASR training manifests by hours, balanced by speaker.

The reference study trains on 67 h of real dialogue plus 0–636 h of synthetic speech and
compares the points of that sweep; this job writes one point:
  out.dir/train_manifest.json   NeMo JSONL, absolute audio paths, `source` real|synthetic
  out.dir/mix.json              the mix card: hours per source, speakers, languages, seed
Real data comes as NeMo manifests; a synthetic dataset (a folder written by `generate`) is
exported once with the NeMo exporter into `mix.cache_dir` and reused by every sweep point.
The planner (`plan_hours`) is a pure function: the least-served speaker takes its next
entry, in an order fixed by the seed, while the total stays under the request; so hours
spread evenly over speakers and the total lands within one entry (≤ 30 s) of the request.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.exports.common import read_jsonl, write_jsonl


class MixSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    real_manifests: list[str] = Field(default_factory=list)
    synthetic_datasets: list[str] = Field(default_factory=list)
    real_hours: float | None = Field(None, ge=0)
    synthetic_hours: float | None = Field(None, ge=0)
    synthetic_ratio: float | None = Field(None, ge=0)
    synthetic_unit: Literal["windows", "segments"] = "windows"
    export: dict[str, Any] = Field(default_factory=dict)
    cache_dir: str = "outputs/mix/cache"
    tolerance: float = Field(0.02, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_synthetic_amount(self) -> MixSettings:
        if self.synthetic_hours is not None and self.synthetic_ratio is not None:
            raise ValueError("set mix.synthetic_hours or mix.synthetic_ratio, not both")
        wants_synthetic = bool(self.synthetic_hours or self.synthetic_ratio)
        if wants_synthetic and not self.synthetic_datasets:
            raise ValueError("synthetic hours requested but mix.synthetic_datasets is empty")
        if self.real_hours and not self.real_manifests:
            raise ValueError("mix.real_hours is set but mix.real_manifests is empty")
        return self


class MixError(ValueError):
    """A mix that cannot be built; the message names the key and the fix."""


def plan_hours(entries: list[dict], hours: float, seed: int | str, tolerance: float = 0.02,
               what: str = "mix") -> list[dict]:
    """Pick entries totalling `hours` (±tolerance), even across `speaker`, fixed by `seed`.

    Water-filling: the speaker with the fewest selected seconds takes its next entry (each
    speaker's entries in a seeded shuffle); an entry that would push the total past the
    request is passed over. Raises MixError if the entries cannot reach the request."""
    target = hours * 3600
    if target <= 0:
        return []
    available = sum(entry["duration"] for entry in entries)
    if available < target * (1 - tolerance):
        raise MixError(f"{what}={hours}: only {available / 3600:.3f} h available; lower it or "
                       "add manifests / generate more")
    rng = random.Random(f"{seed}:{what}")
    groups: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        groups[str(entry.get("speaker", "unknown"))].append(entry)
    names = sorted(groups)
    rng.shuffle(names)
    heap = []
    for order, name in enumerate(names):
        rng.shuffle(groups[name])
        groups[name].reverse()  # pop() from the end takes them in shuffled order
        heap.append((0.0, order, name))
    heapq.heapify(heap)
    chosen, total = [], 0.0
    while heap:
        seconds, order, name = heapq.heappop(heap)
        queue = groups[name]
        entry = queue.pop()
        if total + entry["duration"] <= target:
            chosen.append(entry)
            total += entry["duration"]
            seconds += entry["duration"]
        if queue:
            heapq.heappush(heap, (seconds, order, name))
    if abs(total - target) > target * tolerance:
        raise MixError(f"{what}={hours}: reached {total / 3600:.4f} h, outside ±{tolerance:.0%}; "
                       "entries are too long for so small a request")
    return chosen


def load_manifest(path: Path, source: str) -> list[dict]:
    """NeMo JSONL entries with absolute audio paths (relative ones resolve against the
    manifest's folder, as NeMo does) and `source` / `origin` added."""
    if not path.is_file():
        raise MixError(f"{source}: {path} is not a file; give NeMo JSONL manifests")
    entries = []
    for number, entry in enumerate(read_jsonl(path), 1):
        if "audio_filepath" not in entry or "duration" not in entry:
            raise MixError(f"{path}:{number}: needs audio_filepath and duration (NeMo manifest)")
        audio = Path(entry["audio_filepath"])
        entry["audio_filepath"] = str(audio if audio.is_absolute() else path.parent / audio)
        entry["duration"] = float(entry["duration"])
        entry["origin"] = str(path)
        entries.append(entry)
    return entries


def synthetic_manifest(dataset: Path, settings: MixSettings, split: str | None = None) -> Path:
    """The NeMo manifest of a synthetic dataset: the path itself if it is a manifest, else
    an export of `split` (None = all splits) into the cache (keyed by dataset, run.json,
    split and export options)."""
    if dataset.is_file():
        return dataset
    from pipeline.dataset import only_split
    from pipeline.exports import nemo

    options = {**settings.export, "segments": settings.synthetic_unit == "segments",
               "windows": settings.synthetic_unit == "windows"}
    run_json = dataset / "run.json"
    stamp = run_json.read_text(encoding="utf-8") if run_json.exists() else ""
    key = hashlib.sha1(json.dumps([str(dataset), stamp, options] + ([split] if split else []),
                                  sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = Path(settings.cache_dir).expanduser().resolve() / f"{dataset.name}-{key}"
    manifest = folder / f"{settings.synthetic_unit}_manifest.json"
    if not (folder / "summary.json").exists():
        with only_split(dataset, split, "split"):
            nemo.export(dataset, folder, options)
    return manifest


def mix_job(raw: dict) -> dict:
    from pipeline.jobs_common import checked, fail

    settings = checked(MixSettings, raw.get("mix"), "mix.")
    out = (raw.get("out") or {}).get("dir")
    if not out:
        fail(MixError("out.dir: missing; set out.dir=<folder for the mix>"))
    from pipeline.dataset import check_split

    try:
        for dataset in settings.synthetic_datasets:  # before anything is written
            if Path(dataset).expanduser().is_dir():
                check_split(Path(dataset).expanduser(), raw.get("split"))
        card = build_mix(settings, int(raw.get("seed", 0)), Path(out).expanduser().resolve(),
                         raw.get("split"))
    except (MixError, FileNotFoundError, ValueError) as error:
        fail(error)
        raise
    print(f"mix: {json.dumps(card['hours'])} -> {out}", file=sys.stderr)
    return card


def build_mix(settings: MixSettings, seed: int, out_dir: Path, split: str | None = None) -> dict:
    real = [e for path in settings.real_manifests
            for e in load_manifest(Path(path).expanduser().resolve(), "mix.real_manifests")]
    for entry in real:
        entry["source"] = "real"
    if settings.real_hours is None:
        real_chosen = real
    else:
        real_chosen = plan_hours(real, settings.real_hours, seed, settings.tolerance,
                                 "mix.real_hours")
    real_hours = sum(e["duration"] for e in real_chosen) / 3600
    wanted = (settings.synthetic_ratio * real_hours if settings.synthetic_ratio is not None
              else settings.synthetic_hours)
    synthetic: list[dict] = []
    if wanted is None or wanted > 0:
        for dataset in settings.synthetic_datasets:
            manifest = synthetic_manifest(Path(dataset).expanduser().resolve(), settings, split)
            synthetic.extend(load_manifest(manifest, "mix.synthetic_datasets"))
    for entry in synthetic:
        entry["source"] = "synthetic"
    if wanted is None:
        synthetic_chosen = synthetic
    else:
        synthetic_chosen = plan_hours(synthetic, wanted, seed, settings.tolerance,
                                      "mix.synthetic_hours")
    chosen = real_chosen + synthetic_chosen
    random.Random(f"{seed}:order").shuffle(chosen)
    if not chosen:
        raise MixError("the mix is empty; set mix.real_manifests and/or mix.synthetic_datasets")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "train_manifest.json", chosen)
    card = mix_card(chosen, settings, seed, wanted)
    (out_dir / "mix.json").write_text(json.dumps(card, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
    return card


def mix_card(chosen: list[dict], settings: MixSettings, seed: int, wanted: float | None) -> dict:
    hours: Counter[str] = Counter()
    per_origin: dict[str, dict] = {}
    speakers: dict[str, set[str]] = defaultdict(set)
    languages: Counter[str] = Counter()
    for entry in chosen:
        hours[entry["source"]] += entry["duration"] / 3600
        languages[entry.get("lang", "unknown")] += entry["duration"] / 3600
        names = entry.get("speakers") or [entry.get("speaker", "unknown")]
        speakers[entry["source"]].update(str(name) for name in names)
        origin = per_origin.setdefault(entry["origin"], {"source": entry["source"],
                                                         "entries": 0, "hours": 0.0})
        origin["entries"] += 1
        origin["hours"] += entry["duration"] / 3600
    for origin in per_origin.values():
        origin["hours"] = round(origin["hours"], 4)
    return {
        "seed": seed,
        "requested": {"real_hours": settings.real_hours, "synthetic_hours": wanted,
                      "synthetic_ratio": settings.synthetic_ratio,
                      "synthetic_unit": settings.synthetic_unit},
        "hours": {"real": round(hours["real"], 4), "synthetic": round(hours["synthetic"], 4),
                  "total": round(sum(hours.values()), 4)},
        "entries": len(chosen),
        "speakers": {source: len(names) for source, names in sorted(speakers.items())},
        "languages": {lang: round(h, 4) for lang, h in sorted(languages.items())},
        "sources": per_origin,
        "manifest": "train_manifest.json",
    }
