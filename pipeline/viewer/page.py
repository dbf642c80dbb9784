"""What one dialogue page shows, as plain JSON-ready data (pure: a dataset row in, a dict out).

The page's script draws everything from this dict, so the numbers a person sees are exactly
the stored columns: word boxes are the timeline's words (absolute seconds in the mix), the
label track is the duplex column's per-frame `state` (one cell per frame of `frame_s` seconds),
event ticks are its non-`none` `event` frames, the windows are its `axis_events`. Derived
marks (mid-turn pauses, overlapped speech, the words a cut turn never said) come from the
same functions the labeller uses, so the picture cannot disagree with the labels.
"""

from __future__ import annotations

from typing import Any

from pipeline.card_stats import realized_phenomena
from pipeline.labels.duplex import pauses_of, speech_spans
from pipeline.schema import Placed

STATE_CODES = {"LISTEN": "L", "SPEAK": "S", "BACKCHANNEL": "B", "IGNORE": "I"}
"""One character per frame in the page data: a 3-minute dialogue's 2,250 frames stay 2 KB."""


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def overlap_spans(segments: list[Placed]) -> list[tuple[float, float]]:
    """Stretches (seconds) where two or more speakers sound at once (a sweep over speech spans;
    a speaker's own spans are merged first so one person never 'overlaps' themself)."""
    per_speaker: dict[str, list[tuple[float, float]]] = {}
    for seg in segments:
        per_speaker.setdefault(seg.speaker, []).extend(speech_spans(seg))
    edges: list[tuple[float, int]] = []
    for spans in per_speaker.values():
        merged: list[list[float]] = []
        for begin, end in sorted(spans):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            elif end > begin:
                merged.append([begin, end])
        for begin, end in merged:
            edges += [(begin, 1), (end, -1)]
    result: list[tuple[float, float]] = []
    active, opened = 0, 0.0
    for time_s, step in sorted(edges, key=lambda e: (e[0], e[1])):
        if step > 0:
            active += 1
            if active == 2:
                opened = time_s
        else:
            if active == 2 and time_s > opened:
                result.append((round(opened, 3), round(time_s, 3)))
            active -= 1
    return result


def _stack(windows: list[dict]) -> int:
    """Give each window a `row` so overlapping windows sit on separate lines; returns rows."""
    ends: list[float] = []
    for window in sorted(windows, key=lambda w: w["start_s"]):
        row = next((i for i, end in enumerate(ends) if end <= window["start_s"]), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = window["end_s"]
        window["row"] = row
    return max(1, len(ends))


def page_data(row: dict[str, Any]) -> dict[str, Any]:
    """Everything a dialogue page draws, from one `dialogues` row (parsed columns, no audio)."""
    timeline = row["timeline"]
    script = row.get("script") or {"turns": []}
    scenario = row.get("scenario") or {}
    duplex = row.get("duplex") or None
    turns = script.get("turns") or []
    speakers = row.get("speakers") or scenario.get("speakers") or []
    assistant = (duplex or {}).get("assistant") or scenario.get("assistant")
    names = {s["id"]: s.get("name") or s["id"] for s in speakers}
    order = [s["id"] for s in speakers]
    placed = [Placed.model_validate(s) for s in timeline["segments"]]
    for seg in placed:  # a timeline may name a speaker the speakers column lacks
        if seg.speaker not in names:
            names[seg.speaker] = seg.speaker
            order.append(seg.speaker)

    lanes = {speaker: [] for speaker in order}
    script_rows = []
    for seg in sorted(placed, key=lambda p: (p.start_s, p.turn)):
        turn = turns[seg.turn] if 0 <= seg.turn < len(turns) else {}
        planned = str(turn.get("text", "")).split()
        unsaid = planned[len(seg.words):] if seg.cut_at_s is not None else []
        side_talk = bool(assistant) and seg.kind == "turn" and seg.speaker != assistant \
            and seg.addressee not in ("all", assistant)
        entry = {
            "turn": seg.turn, "kind": seg.kind, "start_s": _round(seg.start_s),
            "end_s": _round(seg.end_s), "cut_at_s": _round(seg.cut_at_s),
            "addressee": seg.addressee, "side_talk": side_talk,
            "interrupts": bool(turn.get("interrupts")), "overlap": bool(turn.get("overlap")),
            "words": [[w, _round(s), _round(e)] for w, s, e in seg.words],
            "pauses": [[_round(a), _round(b)] for a, b in pauses_of(seg)],
            "unsaid": unsaid,
        }
        lanes[seg.speaker].append(entry)
        script_rows.append({
            "turn": seg.turn, "speaker": seg.speaker, "name": names[seg.speaker],
            "kind": seg.kind, "start_s": entry["start_s"], "addressee": seg.addressee,
            "addressee_name": names.get(seg.addressee, seg.addressee),
            "spoken": " ".join(w for w, _, _ in seg.words), "unsaid": " ".join(unsaid),
            "interrupts": entry["interrupts"], "overlap": entry["overlap"],
            "side_talk": side_talk, "cut": seg.cut_at_s is not None,
        })

    labels = None
    if duplex:
        events = [[f, name] for f, name in enumerate(duplex.get("event") or []) if name != "none"]
        windows = [{k: (_round(v) if k.endswith("_s") else v) for k, v in e.items()}
                   for e in duplex.get("axis_events") or []]
        labels = {
            "assistant": duplex["assistant"], "frame_s": float(duplex["frame_s"]),
            "frames": len(duplex["state"]),
            "state": "".join(STATE_CODES[s] for s in duplex["state"]),
            "events": events, "axis_events": windows, "axis_rows": _stack(windows),
        }
    return {
        "id": row["id"], "language": row.get("language") or script.get("language"),
        "domain": row.get("domain") or scenario.get("domain"),
        "situation": scenario.get("situation", ""),
        "duration_s": _round(timeline["duration_s"]),
        "speakers": [{"id": s, "name": names[s], "assistant": s == assistant,
                      "role": next((x.get("role", "") for x in speakers if x["id"] == s), "")}
                     for s in order],
        "lanes": [{"speaker": s, "segments": lanes[s]} for s in order],
        "overlaps": overlap_spans(placed),
        "labels": labels,
        "script": script_rows,
        "phenomena": dict(realized_phenomena(timeline, script, assistant)),
    }


def summary_row(data: dict[str, Any]) -> dict[str, Any]:
    """The index line of a dialogue: what the filters and the table need, nothing more."""
    return {"id": data["id"], "language": data["language"], "domain": data["domain"],
            "speakers": [s["name"] for s in data["speakers"]],
            "num_speakers": len(data["speakers"]), "duration_s": data["duration_s"],
            "words": sum(len(seg["words"]) for lane in data["lanes"] for seg in lane["segments"]),
            "phenomena": data["phenomena"],
            "assistant": next((s["name"] for s in data["speakers"] if s["assistant"]), None)}
