"""Waveform per speaker (word spans shaded) and the mix's spectrogram of one Piper dialogue.

Usage: python docs/piper_dialogue.py <folder written by generate tts=piper> docs/piper_dialogue.png
Reads the dataset through pipeline.dataset; draws the first `SECONDS` of the first Piper row.
"""

from __future__ import annotations

import io
import json
import sys

import matplotlib
import numpy as np
import soundfile as sf
from scipy.signal import spectrogram

from pipeline.dataset import iter_dialogues

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

SECONDS = 14.0
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def as_json(value):
    return json.loads(value) if isinstance(value, str) else value


def main(root: str, out: str) -> None:
    row = next(r for r in iter_dialogues(root) if r["tts"] == "piper")
    channels, rate = sf.read(io.BytesIO(row["channels"]["bytes"]))
    mix, _ = sf.read(io.BytesIO(row["audio"]["bytes"]))
    timeline, speakers = as_json(row["timeline"]), as_json(row["speakers"])
    end = min(len(mix) / rate, SECONDS)
    n = int(end * rate)
    shown = speakers[:2]
    fig, axes = plt.subplots(len(shown) + 1, 1, figsize=(11, 6.2), sharex=True, dpi=80,
                             gridspec_kw={"height_ratios": [1] * len(shown) + [1.6]})
    for k, speaker in enumerate(shown):
        colour = COLOURS[k % len(COLOURS)]
        axes[k].plot(np.arange(n) / rate, channels[:n, k], lw=0.4, color=colour)
        axes[k].set_title(f"{speaker['id']}: {speaker['voice']['id']}", fontsize=9, loc="left")
        axes[k].set_ylim(-1, 1)
        words = [w for s in timeline["segments"] if s["speaker"] == speaker["id"]
                 for w in s["words"] if w[1] < end]
        for i, (word, start, stop) in enumerate(words):
            axes[k].axvspan(start, min(stop, end), color=colour, alpha=0.12, lw=0)
            axes[k].text(start, 0.88 if i % 2 == 0 else 0.72, word, fontsize=6, clip_on=True,
                         transform=axes[k].get_xaxis_transform())
    freqs, times, power = spectrogram(mix[:n], rate, nperseg=512, noverlap=384)
    axes[-1].pcolormesh(times, freqs / 1000, 10 * np.log10(power + 1e-10), shading="auto",
                        cmap="magma", vmin=-100, vmax=-30, rasterized=True)
    axes[-1].set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    axes[-1].set_ylim(0, 8)
    axes[-1].set_title("mix: spectrogram", fontsize=9, loc="left")
    fig.suptitle(f"duplexsynth tts=piper: dialogue {row['id']} ({row['language']}), first "
                 f"{end:.0f} s; shaded: word spans from Piper's alignments", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
