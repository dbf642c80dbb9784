"""PNG plots for the data card, drawn with matplotlib's Agg backend (no display needed).

Each function takes plain numbers (from `card_stats`) and a target path, and writes one
figure; the card embeds them by relative path so they render on the Hub and in a local viewer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 110
BLUE, ORANGE, GREY = "#3b6ea5", "#e07b39", "#8c8c8c"


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def dialogue_durations(durations_s: Sequence[float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    values = np.asarray(durations_s, dtype=float)
    bins = min(40, max(5, int(math.sqrt(max(1, values.size))) * 2))
    ax.hist(values, bins=bins, color=BLUE, edgecolor="white")
    if values.size:
        median = float(np.median(values))
        ax.axvline(median, color=ORANGE, linestyle="--", label=f"median {median:.1f} s")
        ax.legend(frameon=False)
    ax.set_xlabel("dialogue duration (s)")
    ax.set_ylabel("dialogues")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Dialogue durations (n = {values.size})")
    return _save(fig, path)


def target_offset_density(x: np.ndarray, density, overlap_share: float) -> np.ndarray:
    """Density of the transfer offset the timing model aims at (seconds; < 0 is overlap).

    `density` is the model's signed-offset density (a `JohnsonSU`, or a fitted `SignedKde`);
    a share `overlap_share` of transfers is drawn from its negative side, the rest from the
    other, as the arranger does (the two meet at zero when the shares agree).
    """
    pdf = np.asarray(density.pdf(x), dtype=float)
    zero = float(density.cdf(0.0))
    below = overlap_share / max(zero, 1e-9)
    above = (1.0 - overlap_share) / max(1.0 - zero, 1e-9)
    return np.where(x < 0, below * pdf, above * pdf)


def transfer_offsets(offsets_s: Sequence[float], density, overlap_share: float,
                     gap_median_s: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    values = np.asarray(offsets_s, dtype=float)
    low, high = -1.5, 1.5
    if values.size:
        clipped = np.clip(values, low, high)
        ax.hist(clipped, bins=np.linspace(low, high, 31), density=True, color=BLUE,
                edgecolor="white", label=f"achieved (n = {values.size} transfers)")
    grid = np.linspace(low, high, 600)
    ax.plot(grid, target_offset_density(grid, density, overlap_share), color=ORANGE,
            linewidth=2, label=f"target: {overlap_share:.0%} overlapped, gap median "
                               f"{gap_median_s * 1000:.0f} ms")
    ax.axvline(0, color=GREY, linewidth=0.8)
    ax.set_xlabel(f"offset to the next speaker (s, clipped to {low:g}..{high:g})"
                  "  —  < 0: overlap")
    ax.set_ylabel("density")
    ax.set_title("Turn transfer offsets")
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def phenomena_counts(requested: Mapping[str, int], realized: Mapping[str, int],
                     path: Path) -> Path:
    names = list(requested)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    y = np.arange(len(names))
    ax.barh(y - 0.2, [requested[n] for n in names], height=0.4, color=GREY,
            label="requested by the scenarios")
    ax.barh(y + 0.2, [realized.get(n, 0) for n in names], height=0.4, color=BLUE,
            label="realized in the audio")
    for offset, source in ((-0.2, requested), (0.2, realized)):
        for i, name in enumerate(names):
            ax.text(source.get(name, 0), i + offset, f" {source.get(name, 0)}", va="center",
                    fontsize=8)
    ax.set_yticks(y, [n.replace("_", " ") for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("count")
    ax.set_title("Conversational phenomena")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.margins(x=0.12)
    return _save(fig, path)


def speaker_hours(speech_s: Mapping[str, float], genders: Mapping[str, str], path: Path,
                  top: int = 25) -> Path:
    ranked = sorted(speech_s.items(), key=lambda item: -item[1])
    shown, rest = ranked[:top], ranked[top:]
    labels = [name for name, _ in shown]
    hours = [seconds / 3600 for _, seconds in shown]
    colors = [ORANGE if genders.get(name) == "female" else BLUE for name in labels]
    if rest:
        labels.append(f"{len(rest)} other voices")
        hours.append(sum(seconds for _, seconds in rest) / 3600)
        colors.append(GREY)
    in_hours = bool(hours) and max(hours) >= 1.0
    fig, ax = plt.subplots(figsize=(6.4, max(2.4, 0.28 * len(labels) + 1.2)))
    y = np.arange(len(labels))
    ax.barh(y, [h if in_hours else h * 60 for h in hours], color=colors)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speech (hours)" if in_hours else "speech (minutes)")
    ax.set_title(f"Speech per voice ({len(ranked)} voices)")
    ax.legend(handles=[Patch(color=BLUE, label="male"), Patch(color=ORANGE, label="female")],
              frameon=False, fontsize=8, loc="lower right")
    return _save(fig, path)


def asr_errors(errors: Mapping[str, Sequence[float]], path: Path) -> Path:
    """Per-utterance error (WER or CER, as the gate scored it) of the ASR round trip, one
    histogram per language."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bins = np.linspace(0.0, 1.0, 21)
    for (language, values), color in zip(sorted(errors.items()), (BLUE, ORANGE, GREY),
                                         strict=False):
        clipped = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
        ax.hist(clipped, bins=bins, alpha=0.6, color=color, edgecolor="white",
                label=f"{language} (n = {clipped.size}, median {np.median(clipped):.2f})")
    ax.set_xlabel("error of the Whisper transcript per utterance (1 = all wrong; clipped)")
    ax.set_ylabel("utterances")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("ASR round trip")
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)

