"""`duplexsynth timing-report dataset=D reference=R.rttm out.dir=O`: timing as a distribution.

Four summary numbers can be on target while the shape is not human, so the report compares
the whole distribution of transfer offsets of a dataset with a real reference, both turned
into speech segments the same way (`pipeline.segments`: per speaker, words merged across
silences <= 50 ms; a transfer = consecutive segments of different speakers):
- the two-sample Kolmogorov-Smirnov distance and the 1-D Wasserstein (earth mover's)
  distance in seconds (scipy.stats), over all offsets, and the Wasserstein distance with
  offsets clipped to ±5 s (meeting offsets reach ±30 s; the tails dominate the first);
- per side: transfers, share of offsets within ±100 ms, median gap, overlap ratio,
  overlapped-speech fraction (the run.json definitions), median segment length, share of
  consecutive segments by one speaker, and the density ratio of [-100, 0) ms over
  [0, 100) ms (a hole at zero shows as a ratio near 0);
- `<out.dir>/timing_report.json` and `<out.dir>/timing_report.png` (both histograms, as
  densities, over [-5, 5] s).
Without `reference=` only the dataset's side is reported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.segments import consecutive, read_rttm, speech_segments, timeline_segments
from pipeline.timing_stats import Interval, TimingAccumulator

Recordings = dict[str, list[Interval]]
PLOT_RANGE_S = (-5.0, 5.0)
BIN_S = 0.1


class ReportOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: str | None = None


class TimingReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str | None = None
    reference: str | None = None
    out: ReportOutput = Field(default_factory=ReportOutput)
    title: str | None = None


def dataset_segments(dataset: str | Path) -> Recordings:
    """Speech segments of every dialogue of a dataset written by `generate`."""
    from pipeline.dataset import iter_dialogues, resolve

    return {str(row["id"]): timeline_segments(row["timeline"])
            for row in iter_dialogues(resolve(dataset), columns=["id", "timeline"])}


def reference_segments(path: str | Path) -> Recordings:
    """Speech segments of every recording of a reference RTTM (checked, see read_rttm)."""
    recordings = {name: speech_segments(pieces)
                  for name, pieces in read_rttm(path, key="reference").items()}
    if not any(not t.same for segments in recordings.values()
               for t in consecutive(segments)):
        raise ValueError(f"reference: {path} has no speaker transfers (no two consecutive "
                         "segments by different speakers); use a conversation RTTM")
    return recordings


def describe(recordings: Recordings) -> dict:
    """One side of the report (see the module docstring); `offsets` are kept for tests."""
    stats = TimingAccumulator(definition="segments")
    lengths: list[float] = []
    pairs = same = 0
    for segments in recordings.values():
        stats.add_dialogue(segments)
        lengths += [s.end_s - s.start_s for s in segments]
        transfers = consecutive(segments)
        pairs += len(transfers)
        same += sum(t.same for t in transfers)
    offsets = np.asarray(stats.offsets, dtype=float)
    result = stats.result()
    below = int(((offsets >= -0.1) & (offsets < 0)).sum())
    above = int(((offsets >= 0) & (offsets < 0.1)).sum())
    return {
        "recordings": len(recordings),
        "transfers": int(offsets.size),
        "share_within_100ms": round(float((np.abs(offsets) <= 0.1).mean()), 4)
        if offsets.size else 0.0,
        "gap_median_s": result["gap_median_s"],
        "overlap_transfer_ratio": result["overlap_transfer_ratio"],
        "overlapped_speech_fraction": result["overlapped_speech_fraction"],
        "segment_median_s": round(float(np.median(lengths)), 4) if lengths else 0.0,
        "same_speaker_share": round(same / pairs, 4) if pairs else 0.0,
        "density_ratio_below_over_above_zero": round(below / above, 4) if above else None,
        "offsets": offsets,
    }


def compare(dataset: dict, reference: dict) -> dict:
    """KS and Wasserstein distances and relative differences of the summary statistics."""
    from scipy.stats import ks_2samp, wasserstein_distance

    a, b = dataset["offsets"], reference["offsets"]
    ks = ks_2samp(a, b)
    relative = {key: round((dataset[key] - reference[key]) / reference[key], 4)
                for key in ("gap_median_s", "overlap_transfer_ratio",
                            "overlapped_speech_fraction", "share_within_100ms")
                if reference[key]}
    low, high = PLOT_RANGE_S
    clipped = wasserstein_distance(np.clip(a, low, high), np.clip(b, low, high))
    return {"ks_distance": round(float(ks.statistic), 4), "ks_pvalue": float(ks.pvalue),
            "wasserstein_s": round(float(wasserstein_distance(a, b)), 4),
            "wasserstein_clipped_5s_s": round(float(clipped), 4),
            "relative_difference": relative}


def timing_report(dataset: Recordings, reference: Recordings | None, out_dir: str | Path,
                  labels: tuple[str, str] = ("dataset", "reference"),
                  title: str | None = None) -> dict:
    """Write timing_report.json and .png under out_dir; returns the JSON dict."""
    if not dataset:
        raise ValueError("dataset: no dialogues to report on")
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    sides = {labels[0]: describe(dataset)}
    if sides[labels[0]]["transfers"] == 0:
        raise ValueError("dataset: its dialogues have no speaker transfers to compare")
    if reference is not None:
        sides[labels[1]] = describe(reference)
    report: dict = {"definition": "speech segments: words merged across silences <= 50 ms "
                                  "per speaker; transfer = consecutive segments of different "
                                  "speakers; offset = next start - previous end (s)"}
    for name, side in sides.items():
        report[name] = {k: v for k, v in side.items() if k != "offsets"}
    if reference is not None:
        report["comparison"] = compare(sides[labels[0]], sides[labels[1]])
    plot_offsets({name: side["offsets"] for name, side in sides.items()},
                 report.get("comparison"), out / "timing_report.png", title)
    report["plot"] = "timing_report.png"
    (out / "timing_report.json").write_text(json.dumps(report, indent=2) + "\n",
                                            encoding="utf-8")
    return report


def plot_offsets(offsets: dict[str, np.ndarray], comparison: dict | None, path: Path,
                 title: str | None = None) -> Path:
    """Density histograms of transfer offsets, one step line per side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = PLOT_RANGE_S
    bins = np.arange(low, high + BIN_S / 2, BIN_S)
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    colours = ("#3b6ea5", "#e07b39")
    for (name, values), colour in zip(offsets.items(), colours, strict=False):
        inside = values[(values >= low) & (values <= high)]
        weights = np.full(inside.size, 1.0 / (max(values.size, 1) * BIN_S))
        ax.hist(inside, bins=bins, weights=weights, histtype="step", linewidth=1.6,
                color=colour, label=f"{name} (n = {values.size})")
    ax.axvline(0.0, color="#8c8c8c", linewidth=0.8)
    text = title or "Transfer offsets (speech segments)"
    if comparison:
        text += (f"\nKS {comparison['ks_distance']:.3f}   "
                 f"Wasserstein {comparison['wasserstein_s']:.3f} s")
    ax.set_title(text, fontsize=10)
    ax.set_xlabel("offset: next start - previous end (s); < 0 = overlap")
    ax.set_ylabel("density (1/s)")
    ax.legend(frameon=False, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path


def profile_report(dataset: Path, run: dict, folder: Path) -> dict | None:
    """For the data card: when the run used a fitted profile, the report of the dataset
    against the RTTM files the profile was fitted on (None without profile or RTTM)."""
    from pipeline.timing import load_profile

    profile = (run.get("timing") or {}).get("profile")
    if not profile or not Path(profile).is_file():
        return None
    inputs = [Path(p) for p in load_profile(profile).get("source", {}).get("inputs", [])]
    rttms = [p for p in inputs if p.suffix.lower() == ".rttm" and p.is_file()]
    if not rttms:
        return None
    reference: Recordings = {}
    for path in rttms:
        reference.update({f"{path.name}:{k}": v for k, v in reference_segments(path).items()})
    return timing_report(dataset_segments(dataset), reference, folder,
                         labels=("dataset", "profile corpus"),
                         title="Transfer offsets against the corpus the profile was fitted on")


def timing_report_job(raw: dict) -> dict:
    from pipeline.dataset import DatasetNotFound

    try:
        config = TimingReportConfig.model_validate(raw)
        if not config.dataset:
            raise ValueError("dataset: missing; set dataset=<folder written by generate>")
        if not config.out.dir:
            raise ValueError("out.dir: missing; set out.dir=<folder for the report>")
        reference = reference_segments(config.reference) if config.reference else None
        report = timing_report(dataset_segments(config.dataset), reference, config.out.dir,
                               title=config.title)
    except ValidationError as error:
        print(f"duplexsynth timing-report: invalid config: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (ValueError, DatasetNotFound) as error:
        print(f"duplexsynth timing-report: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    summary = report.get("comparison") or report["dataset"]
    print(f"wrote {Path(config.out.dir) / 'timing_report.json'}: {json.dumps(summary)}",
          file=sys.stderr)
    return report
