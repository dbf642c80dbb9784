"""Lhotse manifests built with lhotse's own classes (optional extra `lhotse`, needs torch).

Written under out_dir: recordings/<dialogue>.flac (the 16 kHz mix, mono: channel 0),
recordings.jsonl.gz (sources relative to out_dir, `recordings/<dialogue>.flac`: load with
`RecordingSet.from_file(...).with_path_prefix(out_dir)` or from inside out_dir),
supervisions.jsonl.gz, cuts.jsonl.gz (one MonoCut per dialogue) and, with `windows=true`,
cuts_windows.jsonl.gz (one cut per ≤ 30 s window of windows.py, its supervisions the parts
of utterances inside it). A supervision is one placed utterance: start/duration in seconds
of the mix, `text` normalised (textnorm.py), `custom.text_original` as written, `speaker` the
voice id (the dataset's one speaker identity) and `custom.dialogue_speaker` the dialogue's own
id; word alignments from the timeline under `alignment["word"]`, normalised like the text
(words that normalise to nothing dropped), and as written under `alignment["word_original"]`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.dataset import iter_dialogues
from pipeline.exports.common import (
    cell_audio,
    check_options,
    language_filter,
    normalizer,
    write_audio,
)
from pipeline.exports.windows import cut_windows
from pipeline.schema import voice_id
from pipeline.textnorm import TextNormalizer

DEFAULTS = {"windows": True, "window_s": 30.0, "audio_format": "flac", "sample_rate": 16000,
            "normalize": {}, "languages": None}


def _import_lhotse():
    try:
        import lhotse
    except ImportError as error:
        raise ImportError(
            "format=lhotse needs lhotse (and torch): pip install -e '.[lhotse]'; on a CPU-only "
            f"machine install a CPU torch wheel first ({error})"
        ) from None
    return lhotse


def check(options: dict) -> None:
    """Options and the extra, before any export writes (exports/job.py)."""
    opts = check_options("lhotse", options, DEFAULTS)
    normalizer("lhotse.normalize", opts["normalize"])
    _import_lhotse()


def _alignment(words: list, language: str, norm: TextNormalizer | None,
               origin: float) -> dict[str, list]:
    from lhotse.supervision import AlignmentItem

    def item(symbol: str, start: float, end: float) -> AlignmentItem:
        return AlignmentItem(symbol=symbol, start=round(start - origin, 4),
                             duration=round(end - start, 4))

    normal = [(norm(w, language) if norm else w, s, e) for w, s, e in words]
    return {"word": [item(w, s, e) for w, s, e in normal if w],
            "word_original": [item(w, s, e) for w, s, e in words]}


def supervisions_for(row: dict, names: dict[str, str], norm: TextNormalizer | None,
                     words_of=None, origin: float = 0.0) -> list:
    """One SupervisionSegment per placed utterance with words (or per utterance's words
    inside a window, when `words_of(index)` picks them), times relative to `origin`."""
    from lhotse import SupervisionSegment

    supervisions = []
    for index, placed in enumerate(row["timeline"]["segments"]):
        words = placed["words"] if words_of is None else words_of(index)
        if not words:
            continue
        original = " ".join(word for word, _, _ in words)
        text = norm(original, row["language"]) if norm else original
        if words_of is None:
            start, end = placed["start_s"], placed["end_s"]
            sup_id = f"{row['id']}-{placed['turn']:03d}"
        else:
            start, end = words[0][1], max(e for _, _, e in words)
            sup_id = f"{row['id']}-{placed['turn']:03d}-{start - origin:.2f}"
        supervisions.append(SupervisionSegment(
            id=sup_id, recording_id=row["id"], start=round(start - origin, 4),
            duration=round(end - start, 4), channel=0, text=text, language=row["language"],
            speaker=names.get(placed["speaker"], placed["speaker"]),
            custom={"text_original": original, "dialogue_speaker": placed["speaker"]},
            alignment=_alignment(words, row["language"], norm, origin),
        ))
    return sorted(supervisions, key=lambda s: (s.start, s.id))


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    opts = check_options("lhotse", options, DEFAULTS)
    norm = normalizer("lhotse.normalize", opts["normalize"])
    lhotse = _import_lhotse()
    from lhotse import MonoCut, Recording

    wanted = language_filter(opts)
    rate, ext = int(opts["sample_rate"]), opts["audio_format"]
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"recordings": 0, "supervisions": 0, "window_cuts": 0}
    seconds = window_seconds = 0.0
    writers = {
        "recordings": lhotse.RecordingSet.open_writer(out_dir / "recordings.jsonl.gz"),
        "supervisions": lhotse.SupervisionSet.open_writer(out_dir / "supervisions.jsonl.gz"),
        "cuts": lhotse.CutSet.open_writer(out_dir / "cuts.jsonl.gz"),
    }
    if opts["windows"]:
        writers["windows"] = lhotse.CutSet.open_writer(out_dir / "cuts_windows.jsonl.gz")
    try:
        columns = ["id", "language", "timeline", "speakers", "audio"]
        for row in iter_dialogues(dataset, columns=columns):
            if wanted is not None and row["language"] not in wanted:
                continue
            path = out_dir / "recordings" / f"{row['id']}.{ext}"
            write_audio(path, cell_audio(row["audio"], rate), rate, ext)
            # relative_path_depth=2: the source is `recordings/<id>.<ext>`, not an absolute path
            recording = Recording.from_file(path, recording_id=row["id"], relative_path_depth=2)
            names = {s["id"]: voice_id(s.get("voice") or {}) or s["id"]
                     for s in row["speakers"]}
            supervisions = supervisions_for(row, names, norm)
            writers["recordings"].write(recording)
            for supervision in supervisions:
                writers["supervisions"].write(supervision)
            writers["cuts"].write(MonoCut(id=row["id"], start=0.0, duration=recording.duration,
                                          channel=0, recording=recording,
                                          supervisions=supervisions))
            counts["recordings"] += 1
            counts["supervisions"] += len(supervisions)
            seconds += recording.duration
            if opts["windows"]:
                for number, window in enumerate(cut_windows(row["timeline"],
                                                            float(opts["window_s"]))):
                    inside = {(w.utterance, w.start_s) for w in window.words}
                    segments = row["timeline"]["segments"]

                    def words_of(index: int, inside=inside, segments=segments) -> list:
                        return [w for w in segments[index]["words"]
                                if (index, float(w[1])) in inside]

                    cut = MonoCut(
                        id=f"{row['id']}-w{number:03d}", start=window.start_s,
                        duration=round(window.duration_s, 4), channel=0, recording=recording,
                        supervisions=supervisions_for(row, names, norm, words_of,
                                                      window.start_s))
                    writers["windows"].write(cut)
                    counts["window_cuts"] += 1
                    window_seconds += cut.duration
    finally:
        for writer in writers.values():
            writer.close()
    return {**counts, "hours": round(seconds / 3600, 4),
            "window_hours": round(window_seconds / 3600, 4)}
