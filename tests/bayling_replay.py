"""BayLing-Duplex's decoding rules, re-created in our own code, to replay exported samples.

Rules (BayLing-Models/BayLing-Duplex, `bayling_duplex/duplex.py` and README):
- the decoder reads each block as user speech, then text, then assistant speech tokens;
- a reply starts at `<|assistant|>` and ends at the first `[EPAD]` after it; a second
  `<|assistant|>` before that `[EPAD]` throws the first reply away; an `[EPAD]` with no reply
  open still counts towards the stop;
- decoding stops after the block in which the `max_epad_count`-th `[EPAD]` is written: 1 for
  a plain turn, 2 for an interruption (the README's interruption test);
- a reply's audio is the assistant speech of its blocks, from the `<|assistant|>` block to the
  `[EPAD]` block; its text is the non-special text tokens between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SPECIAL = ("[SILENCE]", "<|assistant|>", "[PAD]", "[EPAD]", "<|user|>", "<|endoftext|>")


@dataclass
class Reply:
    start_slot: int
    end_slot: int | None
    units: list[str]

    def start_block(self, per_block: int) -> int:
        return self.start_slot // per_block

    def end_block(self, per_block: int) -> int | None:
        return None if self.end_slot is None else self.end_slot // per_block


@dataclass
class Replay:
    replies: list[Reply]
    lost: int  # replies thrown away by a second <|assistant|> before their [EPAD]
    stray_epads: int  # [EPAD]s with no reply open
    stop_block: int | None  # block after which decoding stops
    after_stop: list[str]  # text tokens past the stop that are not [SILENCE]


def replay(text_blocks: list[list[str]], max_epad_count: int) -> Replay:
    replies: list[Reply] = []
    lost = stray = epads = 0
    current: Reply | None = None
    stop_block = None
    flat = [(b, t) for b, block in enumerate(text_blocks) for t in block]
    for slot, (block, token) in enumerate(flat):
        if stop_block is not None and block > stop_block:
            break
        if token == "<|assistant|>":
            if current is not None:
                lost += 1
            current = Reply(slot, None, [])
        elif token == "[EPAD]":
            epads += 1
            if current is None:
                stray += 1
            else:
                current.end_slot = slot
                replies.append(current)
                current = None
            if epads >= max_epad_count and stop_block is None:
                stop_block = block
        elif current is not None and token not in SPECIAL:
            current.units.append(token)
    if current is not None:
        replies.append(current)
    after = [] if stop_block is None else [
        t for b, t in flat if b > stop_block and t != "[SILENCE]"]
    return Replay(replies, lost, stray, stop_block, after)


def frame_peak(audio, frame: int, rate: int, frame_s: float) -> float:
    hop = int(round(rate * frame_s))
    piece = audio[frame * hop: (frame + 1) * hop]
    return float(abs(piece).max()) if len(piece) else 0.0


@dataclass
class Counts:
    replies: int = 0
    whole: int = 0
    barge_ins: int = 0
    stops_after: int = 0
    turn_starts: int = 0
    starts_after_cause: int = 0
    broken: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def check_sample(record: dict, user, assistant, planned: list[str], decode,
                 strict: bool = True) -> Counts:
    """Replay one exported sample with BayLing's rules and check every label against its
    cause and the audio. `planned`: the dialogue's assistant turn texts; `decode`: text units
    -> text. Returns the counts; with `strict` a broken rule raises AssertionError, else it
    is listed in `counts.broken`."""
    broken: list[str] = []

    def need(ok, what) -> bool:
        if not ok:
            if strict:
                raise AssertionError(what)
            broken.append(str(what))
        return bool(ok)

    x, y, _ = (int(v) for v in record["ratio"].split(":"))
    offset, frame_s, rate = record["offset_blocks"], record["frame_s"], record["sample_rate"]
    blocks = record["blocks"]
    text_blocks = [b["text"] for b in blocks]
    flat = [t for block in text_blocks for t in block]
    opened = flat.count("<|assistant|>")
    to_stop = {"turn_taking": 1, "interruption": 2}.get(record["kind"], opened)
    result = replay(text_blocks, max(1, min(to_stop, opened)))
    need(result.lost == 0 and result.stray_epads == 0, record["id"])
    need(result.after_stop == [], (record["id"], result.after_stop))
    need(flat.count("[EPAD]") == opened == len(result.replies), record["id"])
    counts = Counts(replies=len(result.replies))

    def silent(f) -> bool:
        return not isinstance(f, int) or frame_peak(assistant, f, rate, frame_s) < 1e-4

    labels = record["labels"]
    barges = []
    for event in labels["axis_events"]:
        if event["axis"] == "interruption":
            first = max(0, math.ceil(event["start_s"] / frame_s - 0.5))  # its first frame
            need(frame_peak(user, first, rate, frame_s) > 1e-3, "no barge-in audio there")
            barges.append(first // x + offset)
    counts.barge_ins = len(barges)
    causes = [e for e in labels["axis_events"] if e["axis"] == "turn_taking"]
    previous_end = -1
    for n, reply in enumerate(result.replies):
        start_b, end_b = reply.start_block(y), reply.end_block(y)
        if not need(end_b is not None, (record["id"], "reply never ends")):
            continue
        text = decode(reply.units)
        next_b = (result.replies[n + 1].start_block(y) if n + 1 < len(result.replies)
                  else len(blocks))
        barge_block = next((b for b in barges if start_b <= b < next_b), None)
        cut = barge_block is not None
        whole = text in planned or (cut and text and any(
            p.startswith(text) and p != text for p in planned))
        counts.whole += bool(whole)
        need(whole, (record["id"], text, planned))
        between = flat[reply.end_slot + 1: (result.replies[n + 1].start_slot
                                            if n + 1 < len(result.replies) else len(flat))]
        need(set(between) <= {"[SILENCE]"}, (record["id"], between))
        quiet_until = (result.replies[n + 1].start_block(y) if n + 1 < len(result.replies)
                       else len(blocks))
        for b in list(range(end_b + 1, quiet_until)) + list(range(previous_end + 1, start_b)):
            need(all(silent(f) for f in blocks[b]["assistant"]), (record["id"], b))
        need(not all(silent(f) for b in blocks[start_b: end_b + 1] for f in b["assistant"]),
             (record["id"], "reply without speech"))
        previous_end = end_b
        if cut:
            counts.stops_after += int(end_b >= barge_block)
            need(barge_block <= end_b <= barge_block + 2, (record["id"], barge_block, end_b))
        cause = next((e for e in causes if e.get("response_s") is not None and abs(
            e["response_s"] / frame_s - reply.start_slot * (x // y)) < x), None)
        if cause is not None:
            heard = math.ceil(cause["start_s"] / frame_s - 0.5) - 1  # last user frame
            counts.turn_starts += 1
            counts.starts_after_cause += int(heard // x + offset <= start_b)
            need(heard // x + offset <= start_b, (record["id"], heard, start_b))
    need(all(silent(f) for f in blocks[0]["assistant"]), "clip must start clean")
    counts.broken = broken
    return counts
