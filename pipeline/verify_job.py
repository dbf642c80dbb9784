"""`duplexsynth verify dataset=D`: check every shard of a dataset and say which are bad.

Why: a dataset is copied, synced and resumed many times before anyone trains on it; a shard
cut short or rewritten by hand breaks a trainer hours into an epoch. This job reads every
shard once (one at a time, through pipeline.dataset) and checks what the rest of the product
relies on:
- the shard itself (pipeline/shard_verify.py): both footers read, the dialogue rows match
  the shard's own metadata, both files carry the same metadata, ids are distinct, every
  segment names one of the shard's dialogues;
- ids unique across shards (dialogues and segments);
- audio (`audio: true`): the mix, each speaker channel and each segment decode; the mix and
  the channels last `duration_s` (within `tolerance_s`), one channel per speaker; a segment's
  audio lasts its `duration_s`, which matches `end_s - start_s` and lies inside its dialogue;
- labels (`labels: true`): the duplex labels hold the invariants of
  pipeline/labels/invariants.py (frame counts for the duration, events on the right states,
  every axis event's expected behaviour) - the same check the label tests run.
It prints one line per shard and a total, writes the report as JSON when `out=` is set, and
exits 0 when every shard is clean, 1 otherwise (2: bad arguments).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from pipeline.config import ConfigError, VerifyJobConfig
from pipeline.dataset import (
    DatasetNotFound,
    UnknownSplit,
    check_shards,
    decode_audio,
    iter_shard_rows,
)
from pipeline.jobs_common import fail
from pipeline.labels.invariants import label_violations
from pipeline.schema import DuplexLabels

DIALOGUE_COLUMNS = ("id", "audio", "channels", "duration_s", "num_speakers", "speakers",
                    "duplex")
SEGMENT_COLUMNS = ("id", "dialogue_id", "audio", "start_s", "end_s", "duration_s")


@dataclass
class ShardReport:
    """What `verify` found in one shard."""

    shard: str
    split: str
    files: dict[str, str | None]
    dialogues: int = 0
    segments: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, text: str, keep: int) -> None:
        self.problem_count += 1
        self.kinds[kind] += 1
        if len(self.problems) < keep:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def to_dict(self) -> dict:
        return {"shard": self.shard, "split": self.split, "files": self.files, "ok": self.ok,
                "dialogues": self.dialogues, "segments": self.segments,
                "problem_count": self.problem_count, "kinds": dict(self.kinds),
                "problems": self.problems}

    def line(self) -> str:
        head = f"{self.shard:<22} {'ok ' if self.ok else 'BAD'} {self.dialogues:>5} dialogues "\
               f"{self.segments:>6} segments"
        if self.ok:
            return head
        more = self.problem_count - len(self.problems)
        return head + f"  {self.problem_count} problems: " + " | ".join(self.problems) \
            + (f" | ... {more} more" if more > 0 else "")


def _seconds(cell: dict) -> tuple[float, int]:
    samples, rate = decode_audio(cell)
    return len(samples) / rate, rate


class Verifier:
    """Checks shards one after another; holds only the ids seen so far across shards."""

    def __init__(self, settings: VerifyJobConfig) -> None:
        self.settings = settings
        self.dialogue_ids: dict[str, str] = {}
        self.segment_ids: dict[str, str] = {}

    def shard(self, check) -> ShardReport:
        files = check.files
        report = ShardReport(files.name, files.split,
                             {"dialogues": files.dialogues, "segments": files.segments})
        keep = self.settings.max_problems
        for problem in check.problems:
            report.add("shard", problem, keep)
        if not check.ok:
            report.dialogues, report.segments = check.dialogue_rows or 0, check.segment_rows or 0
            return report
        durations: dict[str, float] = {}
        for row in iter_shard_rows(files.dialogues, DIALOGUE_COLUMNS):
            report.dialogues += 1
            durations[row["id"]] = row["duration_s"]
            for kind, text in self.dialogue(row, files.name):
                report.add(kind, f"dialogue {row['id']}: {text}", keep)
        for row in iter_shard_rows(files.segments, SEGMENT_COLUMNS):
            report.segments += 1
            for kind, text in self.segment(row, files.name, durations):
                report.add(kind, f"segment {row['id']}: {text}", keep)
        return report

    def dialogue(self, row: dict, shard: str) -> list[tuple[str, str]]:
        problems = []
        earlier = self.dialogue_ids.setdefault(row["id"], shard)
        if earlier != shard:
            problems.append(("ids", f"id also in shard {earlier}"))
        duration = row["duration_s"]
        if self.settings.audio:
            problems += self._dialogue_audio(row, duration)
        if self.settings.labels and row.get("duplex"):
            try:
                labels = DuplexLabels.model_validate(row["duplex"])
            except ValidationError as error:
                problems.append(("labels", f"duplex labels do not parse "
                                           f"({error.errors()[0]['msg']})"))
            else:
                problems += [("labels", p) for p in label_violations(labels, duration)[:3]]
        return problems

    def _dialogue_audio(self, row: dict, duration: float) -> list[tuple[str, str]]:
        tolerance = self.settings.tolerance_s
        problems = []
        try:
            mix_s, rate = _seconds(row["audio"])
        except Exception as error:  # noqa: BLE001 - any decoder failure is the finding
            return [("audio", f"mix does not decode ({type(error).__name__}: {error})")]
        if abs(mix_s - duration) > tolerance:
            problems.append(("duration", f"mix lasts {mix_s:.4f} s, duration_s={duration}"))
        channels = row.get("channels") or []
        speakers = len(row.get("speakers") or [])
        if len(channels) != speakers or row.get("num_speakers") not in (None, speakers):
            problems.append(("audio", f"{len(channels)} channels for {speakers} speakers "
                                      f"(num_speakers={row.get('num_speakers')})"))
        for number, cell in enumerate(channels):
            try:
                channel_s, channel_rate = _seconds(cell)
            except Exception as error:  # noqa: BLE001
                problems.append(("audio", f"channel {number} does not decode "
                                          f"({type(error).__name__}: {error})"))
                continue
            if channel_rate != rate or abs(channel_s - mix_s) > tolerance:
                problems.append(("duration", f"channel {number} lasts {channel_s:.4f} s at "
                                             f"{channel_rate} Hz, the mix {mix_s:.4f} s at "
                                             f"{rate} Hz"))
        return problems

    def segment(self, row: dict, shard: str,
                durations: dict[str, float]) -> list[tuple[str, str]]:
        problems = []
        tolerance = self.settings.tolerance_s
        earlier = self.segment_ids.setdefault(row["id"], shard)
        if earlier != shard:
            problems.append(("ids", f"id also in shard {earlier}"))
        dialogue = durations.get(row["dialogue_id"])
        start, end, duration = row["start_s"], row["end_s"], row["duration_s"]
        if dialogue is None:
            problems.append(("ids", f"dialogue {row['dialogue_id']} is not in the shard"))
        elif not (-tolerance <= start <= end <= dialogue + tolerance):
            problems.append(("duration", f"[{start}, {end}] s is outside its dialogue "
                                         f"(0-{dialogue} s)"))
        if abs((end - start) - duration) > tolerance:
            problems.append(("duration", f"end_s - start_s = {end - start:.4f} s, "
                                         f"duration_s={duration}"))
        if self.settings.audio:
            try:
                seconds, _ = _seconds(row["audio"])
            except Exception as error:  # noqa: BLE001
                return [*problems, ("audio", f"audio does not decode "
                                             f"({type(error).__name__}: {error})")]
            if abs(seconds - duration) > tolerance:
                problems.append(("duration", f"audio lasts {seconds:.4f} s, "
                                             f"duration_s={duration}"))
        return problems


def verify_dataset(dataset: Path, settings: VerifyJobConfig) -> dict:
    """Check every shard (of `settings.split`, or all); the report as a plain dict."""
    verifier = Verifier(settings)
    reports = []
    for check in check_shards(dataset, settings.split):
        report = verifier.shard(check)
        reports.append(report)
        print(report.line(), file=sys.stderr)
    bad = [r for r in reports if not r.ok]
    kinds: Counter[str] = Counter()
    for report in reports:
        kinds.update(report.kinds)
    return {"dataset": str(dataset), "ok": not bad, "shards": len(reports),
            "bad_shards": [r.shard for r in bad],
            "problems": sum(r.problem_count for r in reports), "kinds": dict(kinds),
            "dialogues": sum(r.dialogues for r in reports),
            "segments": sum(r.segments for r in reports),
            "checks": {"audio": settings.audio, "labels": settings.labels,
                       "tolerance_s": settings.tolerance_s},
            "report": [r.to_dict() for r in reports]}


def verify_job(raw: dict) -> dict:
    """`duplexsynth verify dataset=D [out=report.json] [split=S] [audio=false] ...`."""
    try:
        settings = VerifyJobConfig.check(raw)
    except ConfigError as error:
        fail(error)
        raise
    dataset = Path(settings.dataset).expanduser()
    try:
        result = verify_dataset(dataset, settings)
    except (DatasetNotFound, UnknownSplit) as error:
        fail(error)
        raise
    where = ""
    if settings.out:
        out = Path(settings.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        where = f" -> {out}"
    bad = result["bad_shards"]
    verdict = "clean" if not bad else f"{len(bad)} bad shards ({', '.join(bad)})"
    print(f"verify: {result['shards']} shards, {result['dialogues']} dialogues, "
          f"{result['segments']} segments: {verdict}; {result['problems']} problems "
          f"{json.dumps(result['kinds'])}{where}", file=sys.stderr)
    if bad:
        raise SystemExit(1)
    return result
