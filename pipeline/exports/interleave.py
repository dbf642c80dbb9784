"""BayLing-Duplex interleave of duplex frame labels (pure; DESIGN section 4).

A sequence is a run of blocks; block b holds `user` speech slots, `text` slots and `assistant`
speech slots (default 10 : 5 : 10 at 12.5 Hz, so a block is 0.8 s). Speech slots hold frame
indices (-1 = padding silence), so any 12.5 Hz speech tokenizer can fill them later. The user
stream runs `offset_blocks` behind the assistant stream, BayLing's causal delay: the assistant
frames of block b are produced after hearing the user frames of block b - offset (BayLing's
`time_offset = x / 12.5`). The text channel, one slot per `user / text` frames:
`[SILENCE]` while listening (`[IGNORE]` over side talk), `<|assistant|>` where a turn starts,
the spoken words as soon as possible after it (text runs ahead of speech), `[PAD]` while the
speech catches up, `[EPAD]` at a yield and where the audio stops. `state` carries the frame
state of each assistant slot (the dialogue-state channel), so the labels can be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.labels.duplex import EVENT_PRIORITY
from pipeline.labels.tokens import DuplexTokens
from pipeline.schema import DuplexLabels, FrameEvent, FrameState


@dataclass(frozen=True)
class Ratio:
    user: int = 10
    text: int = 5
    assistant: int = 10

    @classmethod
    def parse(cls, text: str) -> Ratio:
        try:
            user, txt, assistant = (int(part) for part in str(text).split(":"))
        except ValueError:
            raise ValueError(f"ratio: {text!r} is not 'user:text:assistant', e.g. '10:5:10'") \
                from None
        if min(user, txt, assistant) <= 0 or user != assistant or user % txt:
            raise ValueError(
                f"ratio: {text!r} needs user == assistant > 0 and text dividing user "
                "(e.g. 10:5:10 or 10:10:10)"
            )
        return cls(user, txt, assistant)

    @property
    def frames_per_text(self) -> int:
        return self.user // self.text

    def __str__(self) -> str:
        return f"{self.user}:{self.text}:{self.assistant}"


@dataclass
class Span:
    kind: str  # "turn" | "backchannel"
    start: int  # frames
    end: int  # last frame where the assistant's audio of this span sounds
    yield_at: int | None = None


def assistant_spans(labels: DuplexLabels) -> list[Span]:
    """Assistant turns and backchannels, in frames, recovered from states and events."""
    event, state = labels.event, labels.state
    frames = len(event)
    spans: list[Span] = []
    for f, kind in enumerate(event):
        if kind == FrameEvent.TURN_START:
            end = next((g for g in range(f + 1, frames)
                        if event[g] in (FrameEvent.TURN_END, FrameEvent.TURN_START)), frames - 1)
            if event[end] == FrameEvent.TURN_START:
                end -= 1
            yielded = next((g for g in range(f + 1, end + 1) if event[g] == FrameEvent.YIELD),
                           None)
            spans.append(Span("turn", f, max(f, end), yielded))
        elif kind == FrameEvent.BC_START:
            g = f if state[f] == FrameState.BACKCHANNEL else f + 1
            while g + 1 < frames and state[g + 1] == FrameState.BACKCHANNEL:
                g += 1
            spans.append(Span("backchannel", f, max(f, g)))
    return spans


def text_channel(labels: DuplexLabels, ratio: Ratio, tokens: DuplexTokens,
                 slots: int) -> list[str]:
    """One token per text slot; slot t covers assistant frames [t*k, (t+1)*k)."""
    k = ratio.frames_per_text
    frames = labels.num_frames
    text: list[str] = []
    for t in range(slots):
        states = labels.state[t * k: min(frames, (t + 1) * k)]
        text.append(tokens.ignore if FrameState.IGNORE in states else tokens.silence)
    words = sorted(labels.words, key=lambda w: w[1])
    for span in assistant_spans(labels):
        first, last = span.start // k, span.end // k
        if last <= first:
            last = first + 1
        if last >= slots:
            continue
        text[first] = tokens.turn_start if span.kind == "turn" else tokens.backchannel
        for t in range(first + 1, last):
            text[t] = tokens.pad
        reserved = {first, last}
        if span.yield_at is not None and first < span.yield_at // k < last:
            text[span.yield_at // k] = tokens.epad
            reserved.add(span.yield_at // k)
        text[last] = tokens.epad
        own = [w[0] for w in words
               if span.start <= int(w[1] / labels.frame_s + 1e-9) <= span.end]
        free = [t for t in range(first + 1, last) if t not in reserved]
        quiet = (tokens.silence, tokens.ignore)
        if (own and not free and span.kind == "backchannel" and last + 1 < slots
                and text[last + 1] in quiet):
            text[last + 1] = tokens.epad
            free = [last]
        if free and own:
            for t, word in zip(free, own, strict=False):
                text[t] = word
            if len(own) > len(free):
                text[free[-1]] = " ".join(own[len(free) - 1:])
    return text


def interleave(labels: DuplexLabels, ratio: Ratio, tokens: DuplexTokens,
               offset_blocks: int = 1) -> list[dict]:
    frames = labels.num_frames
    x = ratio.user
    blocks_count = -(-frames // x) + offset_blocks
    text = text_channel(labels, ratio, tokens, blocks_count * ratio.text)
    blocks = []
    for b in range(blocks_count):
        user = [f if 0 <= f < frames else -1
                for f in range((b - offset_blocks) * x, (b - offset_blocks + 1) * x)]
        assistant = [f if f < frames else -1 for f in range(b * x, (b + 1) * x)]
        blocks.append({
            "user": user,
            "text": text[b * ratio.text: (b + 1) * ratio.text],
            "assistant": assistant,
            "state": [str(labels.state[f]) if f >= 0 else str(FrameState.LISTEN)
                      for f in assistant],
        })
    return blocks


def rebuild(blocks: list[dict], ratio: Ratio, tokens: DuplexTokens,
            frames: int) -> tuple[list[str], list[tuple[int, str]]]:
    """Frame states and (text slot, event) pairs read back from an interleaved sequence."""
    state = [str(FrameState.LISTEN)] * frames
    for block in blocks:
        for f, value in zip(block["assistant"], block["state"], strict=True):
            if 0 <= f < frames:
                state[f] = value
    text = [t for block in blocks for t in block["text"]]
    events: list[tuple[int, str]] = []
    open_kind: str | None = None
    for t, token in enumerate(text):
        if token == tokens.turn_start:
            events.append((t, str(FrameEvent.TURN_START)))
            open_kind = "turn"
        elif token == tokens.backchannel:
            events.append((t, str(FrameEvent.BC_START)))
            open_kind = "backchannel"
        elif token == tokens.epad and open_kind == "turn":
            ahead = next((u for u in text[t + 1:]
                          if u in (tokens.epad, tokens.turn_start, tokens.backchannel)), None)
            if ahead == tokens.epad:
                events.append((t, str(FrameEvent.YIELD)))
            else:
                events.append((t, str(FrameEvent.TURN_END)))
                open_kind = None
        elif token == tokens.epad:
            open_kind = None
    return state, events


def slot_events(labels: DuplexLabels, ratio: Ratio) -> list[tuple[int, str]]:
    """The strongest frame event inside each text slot: what `rebuild` must give back."""
    k = ratio.frames_per_text
    found = []
    for t in range(-(-labels.num_frames // k)):
        kinds = [e for e in labels.event[t * k: (t + 1) * k] if e != FrameEvent.NONE]
        if kinds:
            found.append((t, str(max(kinds, key=EVENT_PRIORITY.__getitem__))))
    return found
