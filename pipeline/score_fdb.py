"""Full-Duplex-Bench metric definitions, and our own extras named apart from them.

Pure functions on transcripts and speech segments in clip seconds. A transcript is a list
of chunks `{"text": str, "timestamp": [start, end]}` — the `output.json` the benchmark's
scripts read (from an ASR; or, without one, pseudo-words laid over VAD segments, see
`vad_chunks`). Definitions follow v1_v1.5/evaluation/*.py of DanielLin94144/Full-Duplex-Bench:
- take-over (TOR): the transcript spans ≥ 1 s from first to last word, or has > 3 words
  (eval_pause_handling / eval_smooth_turn_taking / eval_user_interruption);
- latency: first word − the user's turn end (interruption: − the interruption's end, on a
  transcript of the output after that end only), clipped at 0, averaged over TOR = 1;
- backchannel (eval_backchannel): Silero segments of the output; a segment > 3 s takes the
  turn, else its words (chunks touching it) decide: > 3 words → 1, < 1 s and ≤ 2 words → 0,
  else 1 (the script keeps the last segment's verdict); every ≤ 3 s segment counts as a
  backchannel; frequency = count / clip seconds; JSD = scipy's `jensenshannon` distance
  between the backchannel histogram (0.2 s bins, +1e-10, normalised) and the reference
  distribution linearly resized to its length; 1 when the model made none;
- v1.5 timing (get_timing.py): user segments merged over gaps ≤ 0.6 s, model segments over
  gaps ≤ 0.5 s; stop latency = length of the overlap between the model and the first user
  segment of the event; response latency = the next model onset after the last user segment
  of the event − its end (the script lists every gap; we pick the event's).
Ours (key `duplexsynth`): SR@3s — a model speech onset from silence no earlier than 1.5 s
before the user's end and within 3 s after it, from which it takes the turn; ISR@2s — the
model is speaking when the barge-in starts and stops within 2 s (a model that never spoke,
or was silent at the barge-in, is not a success); keep rate — the model still speaks in the
0.5 s after a user backchannel over its turn.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import interp1d
from scipy.spatial.distance import jensenshannon

Segments = list[tuple[float, float]]
Chunks = list[dict]

TOR_SPAN_S = 1.0
TOR_WORDS = 3
BC_TURN_S = 3.0
BIN_S = 0.2
EPSILON = 1e-10
USER_MERGE_GAP_S = 0.6
MODEL_MERGE_GAP_S = 0.5
VAD_WORD_S = 0.3  # pseudo-word length of the VAD approximation (≈ 3.3 words/s)
SR_WINDOW_S = 3.0
SR_EARLY_S = 1.5
ISR_WINDOW_S = 2.0
KEEP_WINDOW_S = 0.5


def vad_chunks(segments: Segments) -> Chunks:
    """Pseudo-words over speech segments, for the transcript rules when no ASR is given."""
    chunks = []
    for a, b in segments:
        n = max(1, round((b - a) / VAD_WORD_S))
        step = (b - a) / n
        chunks += [{"text": "<speech>", "timestamp": [round(a + i * step, 3),
                                                      round(a + (i + 1) * step, 3)]}
                   for i in range(n)]
    return chunks


def crop_segments(segments: Segments, after_s: float) -> Segments:
    return [(max(a, after_s), b) for a, b in segments if b > after_s]


def take_over(chunks: Chunks) -> int:
    """The benchmark's TOR rule on one transcript."""
    if not chunks:
        return 0
    last = chunks[-1]["timestamp"]
    end = last[1] if last[1] is not None else last[0]
    duration = end - chunks[0]["timestamp"][0]
    return int(duration >= TOR_SPAN_S or len(chunks) > TOR_WORDS)


def tor_and_latency(chunks: Chunks, reference_s: float) -> dict:
    tor = take_over(chunks)
    latency = max(0.0, chunks[0]["timestamp"][0] - reference_s) if tor else None
    return {"tor": tor, "latency_s": None if latency is None else round(latency, 3)}


def words_touching(chunks: Chunks, start: float, end: float) -> list[str]:
    """eval_backchannel's three overlap tests between a chunk and a VAD segment."""
    out = []
    for c in chunks:
        t0, t1 = c["timestamp"]
        if t0 is None or (t1 is None and t0 < end):
            continue
        t1 = t0 if t1 is None else t1
        if (t0 >= start and t1 <= end) or (t0 <= end and t1 > end) or \
                (t0 <= start and t1 > start):
            out.append(c["text"])
    return out


def tenths(segments: Segments) -> Segments:
    """Segment times as eval_backchannel gets them: get_speech_timestamps(return_seconds=True)
    rounds to 0.1 s (and a bin is then int(t / 0.2), float quirks included)."""
    return [(round(a, 1), round(b, 1)) for a, b in segments]


def backchannel(segments: Segments, chunks: Chunks, duration_s: float,
                reference: list[float] | None) -> dict:
    tor, predicted = 0, []
    for a, b in tenths(segments):
        if b - a > BC_TURN_S:
            tor = 1
            break
        words = words_touching(chunks, a, b)
        tor = 1 if len(words) > 3 else (0 if (b - a < 1 and len(words) <= 2) else 1)
        predicted.append((a, b))
    frequency = len(predicted) / duration_s if duration_s > 0 else 0.0
    jsd = 1.0
    if predicted and reference:
        bins = np.zeros(int(duration_s / BIN_S) + 1)
        for a, b in predicted:
            lo, hi = int(a / BIN_S), int(b / BIN_S)
            bins[lo: min(hi + 1, len(bins))] += 1
        bins = bins + EPSILON
        bins = bins / bins.sum()
        resized = interp1d(np.linspace(0, 1, len(reference)), reference, kind="linear",
                           fill_value="extrapolate")(np.linspace(0, 1, len(bins)))
        jsd = float(jensenshannon(bins, resized))
        if np.isnan(jsd):  # scipy takes sqrt of a divergence rounded just below 0: identical
            jsd = 0.0
    return {"tor": tor, "frequency_hz": round(frequency, 4), "jsd": round(jsd, 4),
            "backchannels": len(predicted)}


def merge(segments: Segments, gap_s: float) -> Segments:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(segments):
        if merged and a - merged[-1][1] <= gap_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def overlaps(user: Segments, model: Segments) -> Segments:
    """get_timing.overlaps: pairwise overlaps, shortest kept per end time (ms)."""
    raw, i, j = [], 0, 0
    while i < len(user) and j < len(model):
        s, e = max(user[i][0], model[j][0]), min(user[i][1], model[j][1])
        if e > s:
            raw.append((s, e))
        if user[i][1] < model[j][1]:
            i += 1
        else:
            j += 1
    best: dict[int, tuple[float, float]] = {}
    for s, e in raw:
        key = int(round(e * 1000))
        if key not in best or e - s < best[key][1] - best[key][0]:
            best[key] = (s, e)
    return sorted(best.values(), key=lambda x: x[1])


def v15_timing(user_segments: Segments, model_segments: Segments,
               event: tuple[float, float]) -> dict:
    """Stop and response latency of the event window, with get_timing's gap merging."""
    user = merge(user_segments, USER_MERGE_GAP_S)
    model = merge(model_segments, MODEL_MERGE_GAP_S)
    start, end = event
    inside = [u for u in user if u[0] <= end and u[1] >= start]
    stop = next(iter(overlaps(inside[:1], model)), None) if inside else None
    response = None
    if inside:
        last_end = inside[-1][1]
        nxt = next((a for a, _ in model if a > last_end), None)
        response = None if nxt is None else round(nxt - last_end, 3)
    return {"stop_latency_s": None if stop is None else round(stop[1] - stop[0], 3),
            "response_latency_s": response}


def sr_at_3s(model_segments: Segments, chunks: Chunks, user_end_s: float) -> bool:
    model = merge(model_segments, MODEL_MERGE_GAP_S)
    for a, _ in model:
        if user_end_s - SR_EARLY_S <= a <= user_end_s + SR_WINDOW_S:
            after = [c for c in chunks if c["timestamp"][0] >= a - 1e-3]
            if take_over(after):
                return True
    return False


def isr_at_2s(model_segments: Segments, barge_in_s: float) -> dict:
    model = merge(model_segments, MODEL_MERGE_GAP_S)
    running = next(((a, b) for a, b in model if a <= barge_in_s < b), None)
    if running is None:
        return {"speaking_at_barge_in": False, "isr_at_2s": False, "stopped_after_s": None}
    stopped = round(running[1] - barge_in_s, 3)
    return {"speaking_at_barge_in": True, "isr_at_2s": stopped <= ISR_WINDOW_S,
            "stopped_after_s": stopped}


def kept_speaking(model_segments: Segments, end_s: float) -> bool:
    return any(min(b, end_s + KEEP_WINDOW_S) - max(a, end_s) > 0 for a, b in model_segments)
