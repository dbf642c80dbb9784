"""`duplexsynth fit-timing`: fit a timing profile from real conversations.

Reads speaker segments from RTTM files, NeMo manifests (JSONL with `audio_filepath`,
`offset`, `duration`, `speaker`; one recording per `audio_filepath`) and Lhotse supervision
manifests (JSONL, JSONL.gz or a JSON list with `recording_id`, `start`, `duration`,
`speaker`; parsed as plain JSON, lhotse is not needed), turns them into speech segments the
way references are built (`pipeline.segments`: per speaker, pieces merged across silences of
at most 50 ms) and writes `timing_profile.yaml`:

- `statistics`: the corpus's four run.json statistics over those segments, every segment
  counted (a corpus has no backchannel labels); they become the targets of a run that loads
  the profile;
- `backchannel`: segments of at most `backchannel_max_s` lying inside another speaker's
  segment are taken for backchannels (their share is `statistics.backchannel_share`);
- `segments`: the `pipeline.segment_model.SegmentModel` the arranger draws from: transfers
  as (previous length, next length, offset), resume pauses, within-speaker pauses and the
  lengths of segments that are not backchannels, each a seeded subsample of at most
  `max_samples` values; `bandwidth_s` (Silverman's rule, robust form) smooths the signed
  offsets where a single density is needed;
- `speaker_gap_scales`: each speaker's median gap before taking the floor over the corpus
  median (per-speaker tempo);
- `interruption_rate`: barge-ins per transfer for the plan (a config value: RTTM has no
  barge-in labels, and a barge-in's overlap follows the reaction-time model rather than the
  corpus, so a profile keeps it low and draws the other overlaps from the corpus).
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.segments import (
    MERGE_SILENCE_S,
    check_recordings,
    consecutive,
    read_rttm,
    speech_segments,
)
from pipeline.timing import PROFILE_FORMAT
from pipeline.timing_stats import Interval, TimingAccumulator

Recordings = dict[str, list[Interval]]
MIN_SPEAKER_GAPS = 5


class FitOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: str = "outputs/timing"


class FitTimingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(default_factory=list)
    out: FitOutput = Field(default_factory=FitOutput)
    backchannel_max_s: float = Field(1.0, gt=0)
    max_samples: int = Field(6000, ge=10)
    interruption_rate: float = Field(0.02, ge=0, le=1)
    seed: int = 0


def read_segments(path: str | Path) -> Recordings:
    """Speaker segments of one file, grouped by recording; the format follows the name."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"inputs: {str(file)!r} does not exist")
    name = file.name.lower()
    if name.endswith(".rttm"):
        return read_rttm(file)
    if name.endswith((".json", ".jsonl", ".jsonl.gz", ".json.gz")):
        recordings = _read_json_manifest(file)
        check_recordings(recordings, f"inputs: {file}")
        return recordings
    raise ValueError(f"inputs: {str(file)!r} is not .rttm, .json, .jsonl or .jsonl.gz "
                     "(RTTM, NeMo manifest or Lhotse supervisions)")


def _json_records(file: Path) -> Iterable[dict]:
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    with opener(file, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        yield from json.loads(text)
        return
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def _read_json_manifest(file: Path) -> Recordings:
    recordings: Recordings = defaultdict(list)
    for number, record in enumerate(_json_records(file), 1):
        if "recording_id" in record:  # Lhotse SupervisionSegment
            recording, start = record["recording_id"], float(record["start"])
        elif "audio_filepath" in record:  # NeMo manifest line
            recording, start = record["audio_filepath"], float(record.get("offset", 0.0))
        else:
            raise ValueError(f"inputs: {file} record {number} has neither 'recording_id' "
                             "(Lhotse) nor 'audio_filepath' (NeMo)")
        if not record.get("speaker"):
            raise ValueError(f"inputs: {file} record {number} has no 'speaker'; timing needs "
                             "speaker labels")
        duration = float(record["duration"])
        recordings[str(recording)].append(Interval(str(record["speaker"]), start,
                                                   start + duration))
    return dict(recordings)


def label_backchannels(intervals: list[Interval], max_s: float) -> list[Interval]:
    """Mark segments of <= max_s that lie inside another speaker's segment as backchannels."""
    ordered = sorted(intervals, key=lambda i: (i.start_s, i.end_s))
    labelled = []
    longest_end: dict[str, float] = {}  # speaker -> latest end so far (segments start earlier)
    for interval in ordered:
        inside = any(end >= interval.end_s for speaker, end in longest_end.items()
                     if speaker != interval.speaker)
        short = interval.end_s - interval.start_s <= max_s
        kind = "backchannel" if short and inside else "turn"
        labelled.append(Interval(interval.speaker, interval.start_s, interval.end_s, kind))
        longest_end[interval.speaker] = max(longest_end.get(interval.speaker, 0.0),
                                            interval.end_s)
    return labelled


def bandwidth(samples: np.ndarray) -> float:
    """Silverman's rule of thumb, robust form: 0.9 min(sd, IQR / 1.34) n^(-1/5)."""
    if samples.size < 2:
        return 0.05
    q75, q25 = np.percentile(samples, [75, 25])
    spread = min(float(np.std(samples)), float(q75 - q25) / 1.34) or float(np.std(samples))
    return max(1e-3, 0.9 * spread * samples.size ** -0.2)


def fit_profile(recordings: Recordings, config: FitTimingConfig) -> dict:
    """The profile dict written to timing_profile.yaml (see the module docstring)."""
    if not recordings:
        raise ValueError("inputs: no speaker segments found")
    corpus = TimingAccumulator(definition="segments")
    transfers: list[tuple[float, float, float]] = []
    resume, same, lengths = [], [], []
    per_speaker: dict[tuple[str, str], list[float]] = defaultdict(list)
    for recording, pieces in recordings.items():
        segments = label_backchannels(speech_segments(pieces), config.backchannel_max_s)
        corpus.add_dialogue(segments)
        lengths += [s.end_s - s.start_s for s in segments if s.kind == "turn"]
        own_end: dict[str, float] = {}
        for pair in consecutive(segments):
            previous, following = pair.previous, pair.following
            own_end[previous.speaker] = max(own_end.get(previous.speaker, 0.0),
                                            previous.end_s)
            if pair.same:
                same.append(pair.offset_s)
            elif own_end.get(following.speaker, -1.0) > previous.end_s:
                resume.append(following.start_s - own_end[following.speaker])
            else:
                transfers.append((previous.end_s - previous.start_s,
                                  following.end_s - following.start_s, pair.offset_s))
                if pair.offset_s >= 0:
                    per_speaker[(recording, following.speaker)].append(pair.offset_s)
    offsets = np.asarray([o for _, _, o in transfers])
    backchannels = round(corpus.backchannels)
    if offsets.size < 10 or not (offsets < 0).any() or not (offsets >= 0).any():
        raise ValueError(f"inputs: {offsets.size} speaker transfers with too few gaps or "
                         "overlaps to fit a timing profile; give more conversations")
    rng = np.random.default_rng(config.seed)
    median_gap = float(np.median(offsets[offsets >= 0]))
    scales = sorted(round(float(np.median(g)) / median_gap, 3)
                    for g in per_speaker.values() if len(g) >= MIN_SPEAKER_GAPS)
    stats = corpus.result()
    return {
        "format": PROFILE_FORMAT,
        "definition": "segments",
        "source": {"inputs": [str(Path(p).expanduser().resolve()) for p in config.inputs],
                   "recordings": len(recordings),
                   "segments": int(corpus.contributions),
                   "merge_silence_s": MERGE_SILENCE_S},
        "statistics": {k: float(v) if k != "transfers" else int(v) for k, v in stats.items()},
        "interruption_rate": config.interruption_rate,
        "backchannel": {"max_s": config.backchannel_max_s,
                        "share": stats["backchannel_share"]},
        "segments": {
            "bandwidth_s": round(bandwidth(offsets), 5),
            # silences shorter than the corpus's 5th-percentile within-speaker pause
            # do not split its segments; generated voices' ones are closed up
            # how often a backchannel is followed by its host's own next segment
            "resume_share": round(min(1.0, len(resume) / max(1, backchannels)), 4),
            "join_silence_s": round(float(np.percentile(same, 5)), 3) if same else 0.4,
            "transfers": [[round(p, 3), round(n, 3), round(o, 3)]
                          for p, n, o in _subsample(transfers, config.max_samples, rng)],
            "resume_pauses": _rounded(_subsample(resume or [0.5], config.max_samples, rng)),
            "same_pauses": _rounded(_subsample(same or [0.5], config.max_samples, rng)),
            "segment_lengths": _rounded(_subsample(lengths, config.max_samples, rng)),
            "counts": {"transfers": len(transfers), "resume": len(resume), "same": len(same),
                       "segments": len(lengths)},
        },
        "speaker_gap_scales": scales,
        "segment_duration_s": {"median": round(float(np.median(lengths)), 4),
                               "mean": round(float(np.mean(lengths)), 4)},
    }


def _subsample(values: list, limit: int, rng: np.random.Generator) -> list:
    if len(values) <= limit:
        return list(values)
    return [values[k] for k in sorted(rng.choice(len(values), limit, replace=False))]


def _rounded(values: list[float]) -> list[float]:
    return sorted(round(float(v), 3) for v in values)


def fit_timing(config: FitTimingConfig) -> Path:
    """Read every input, fit, write `<out.dir>/timing_profile.yaml`; returns its path."""
    import yaml

    if not config.inputs:
        raise ValueError("inputs: empty; pass inputs=[a.rttm,b.jsonl,...]")
    recordings: Recordings = {}
    for path in config.inputs:
        for recording, intervals in read_segments(path).items():
            recordings.setdefault(recording, []).extend(intervals)
    profile = fit_profile(recordings, config)
    out = Path(config.out.dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    target = out / "timing_profile.yaml"
    temporary = target.with_name(f".{target.name}.tmp-{random.randrange(1 << 30)}")
    temporary.write_text(yaml.safe_dump(profile, sort_keys=False, width=100,
                                          default_flow_style=None), encoding="utf-8")
    temporary.replace(target)
    return target


def fit_timing_job(raw: dict) -> Path:
    from pipeline.jobs_common import checked

    config = checked(FitTimingConfig, raw)
    try:
        path = fit_timing(config)
    except ValueError as error:
        print(f"duplexsynth fit-timing: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    stats = yaml_stats(path)
    print(f"wrote {path}: {json.dumps(stats)}", file=sys.stderr)
    return path


def yaml_stats(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))["statistics"]
