"""The render stage: per-speaker channels and their mono mix from a timeline.

Pure numpy apart from soxr for resampling. Each utterance is resampled once, then its chunks
are copied to their places; a barged-in turn gets a short fade at the cut so it stops the way
a speaker does, without a click. The mix is scaled down, never clipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr

from pipeline.schema import Timeline, Utterance

CUT_FADE_S = 0.015
PEAK_LIMIT = 0.98


@dataclass
class Rendered:
    sample_rate: int
    channels: np.ndarray  # (speakers, samples) float32, in the scenario's speaker order
    mix: np.ndarray  # (samples,) float32

    @property
    def duration_s(self) -> float:
        return self.mix.shape[0] / self.sample_rate


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(np.float32)


def render(
    timeline: Timeline,
    utterances: Sequence[Utterance],
    speaker_order: Sequence[str],
    sample_rate: int,
    gains: dict[str, float] | None = None,
) -> Rendered:
    total = int(round(timeline.duration_s * sample_rate)) + 1
    channels = np.zeros((len(speaker_order), total), dtype=np.float32)
    row_of = {speaker: row for row, speaker in enumerate(speaker_order)}
    by_turn = {u.turn: u for u in utterances}
    for segment in timeline.segments:
        utterance = by_turn[segment.turn]
        audio = resample(utterance.samples, utterance.sample_rate, sample_rate)
        row = channels[row_of[segment.speaker]]
        gain = (gains or {}).get(segment.speaker, 1.0)
        for chunk in segment.chunks:
            src = audio[int(round(chunk.src_start_s * sample_rate)):
                        int(round(chunk.src_end_s * sample_rate))]
            begin = int(round(chunk.dst_start_s * sample_rate))
            src = src[: max(0, total - begin)]
            row[begin: begin + len(src)] += gain * src
        if segment.cut_at_s is not None:
            _fade_out_at(row, segment.cut_at_s, sample_rate)
    mix = channels.sum(axis=0)
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    channel_peak = float(np.max(np.abs(channels))) if channels.size else 0.0
    scale = min(1.0, PEAK_LIMIT / max(peak, channel_peak, 1e-9))
    if scale < 1.0:
        mix *= scale
        channels *= scale
    return Rendered(sample_rate=sample_rate, channels=channels, mix=mix)


def _fade_out_at(row: np.ndarray, cut_at_s: float, sample_rate: int) -> None:
    end = min(len(row), int(round(cut_at_s * sample_rate)))
    length = min(end, int(CUT_FADE_S * sample_rate))
    if length > 0:
        row[end - length: end] *= np.linspace(1.0, 0.0, length, dtype=np.float32)
