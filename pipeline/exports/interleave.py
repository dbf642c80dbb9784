"""BayLing-Duplex interleave of duplex frame labels (pure; DESIGN section 4).

A sequence is a run of blocks; block b holds `user` speech slots, `text` slots and `assistant`
speech slots (default 10 : 5 : 10 at 12.5 Hz, so a block is 0.8 s), in that order, which is
the order BayLing-Duplex's decoder reads them (`stream_audio_tokens`: user block, then text
tokens, then assistant speech tokens). The user stream runs `offset_blocks` behind the
assistant stream, BayLing's causal delay: the assistant frames of block b play while the user
frames of block b + offset are heard (BayLing's `time_offset = x / 12.5`), so block 0's user
slots are padding (digital silence). Text slot t covers assistant frames [t*k, (t+1)*k),
k = user / text, which is BayLing's `start_time = t * k / 12.5 + time_offset` on our clock.

Speech slots hold frame indices into the written user / assistant wavs (12.5 Hz frames) or
the explicit `speech_pad` marker (no audio there: silence), so a tokenizing pass fills them
without guessing. The text channel:
  `[SILENCE]`       while listening (`tokens.ignore` over side talk; `[SILENCE]` by default),
  `<|assistant|>`   in the slot where a reply's speech starts,
  the reply's text  right after it, one text unit (tokenizer token or word) per slot,
  `[PAD]`           while the speech catches up with the text,
  `[EPAD]`          once per reply, in the slot of the reply's last sounding frame (for a
                    barge-in: where the assistant stops), or later when the text is longer
                    than the speech; then `[SILENCE]` until the next `<|assistant|>`.
A cut reply carries the text planned for it up to its `[EPAD]` (text runs ahead of speech, and
the model cannot know at its start that it will be cut). Assistant backchannels follow a
policy (BACKCHANNEL_POLICIES). `state` carries the frame state of each assistant slot (the
dialogue-state channel), so the labels can be rebuilt. Where the placement breaks a rule
(text that does not fit before the next reply), `problems` collects the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.labels.duplex import EVENT_PRIORITY
from pipeline.labels.tokens import DuplexTokens
from pipeline.schema import DuplexLabels, FrameEvent, FrameState

SPEECH_PAD = "<pad>"
BACKCHANNEL_POLICIES = {
    "drop": "assistant backchannels are removed from the sample (audio silenced, text "
            "[SILENCE]); BayLing-Duplex defines no backchannel token (the default)",
    "speech": "backchannel audio stays in the assistant speech slots, the text channel stays "
              "[SILENCE] (only BayLing tokens; speech outside a reply)",
    "token": "tokens.backchannel opens a backchannel, one [EPAD] closes it (a vocabulary that "
             "defines the token; BayLing's decoder counts that [EPAD] towards max_epad_count)",
}


def check_backchannel_policy(policy: str, key: str) -> str:
    if policy not in BACKCHANNEL_POLICIES:
        raise ValueError(f"{key}: {policy!r} is unknown; allowed: {sorted(BACKCHANNEL_POLICIES)}"
                         " (drop = BayLing-compatible)")
    return policy


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
    start: int  # first frame where the assistant's audio of this span sounds
    end: int  # last frame where it sounds
    yield_at: int | None = None  # frame of the barge-in that cut it
    text: list[str] = field(default_factory=list)  # text units to lay out
    placed: list[str] = field(default_factory=list)  # the units that fit before its [EPAD]


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


def spoken_text(labels: DuplexLabels, span: Span) -> list[str]:
    """The words the labels say were spoken inside a span (the fallback text of a reply)."""
    return [w[0] for w in sorted(labels.words, key=lambda w: w[1])
            if span.start <= int(w[1] / labels.frame_s + 1e-9) <= span.end]


def text_channel(labels: DuplexLabels, ratio: Ratio, tokens: DuplexTokens, slots: int,
                 spans: list[Span] | None = None, backchannel_policy: str = "drop",
                 problems: list[str] | None = None) -> list[str]:
    """One token per text slot; slot t covers assistant frames [t*k, (t+1)*k).

    At least `slots` long; longer when the last reply's text runs past the clip's end.
    """
    k = ratio.frames_per_text
    frames = labels.num_frames
    problems = problems if problems is not None else []
    text: list[str] = []
    for t in range(slots):
        states = labels.state[t * k: min(frames, (t + 1) * k)]
        text.append(tokens.ignore if FrameState.IGNORE in states else tokens.silence)
    if spans is None:
        spans = assistant_spans(labels)
        for span in spans:
            span.text = spoken_text(labels, span)
    opened = [s for s in spans if s.kind == "turn" or backchannel_policy == "token"]
    free_from = 0  # first slot the next span may use
    for n, span in enumerate(opened):
        first, last = span.start // k, max(span.end // k, span.start // k + 1)
        if first < free_from:
            problems.append("reply_overlaps_previous")
            continue
        units = list(span.text)
        cut = span.yield_at is not None
        if not cut and last - first - 1 < len(units):
            last = first + 1 + len(units)  # text longer than speech: [EPAD] after the text
        if n + 1 < len(opened):
            following = opened[n + 1].start // k
            if last >= following:
                problems.append("text_overflow")
                continue
        elif last >= len(text):  # the last reply's text runs past the clip: add silent slots
            text.extend([tokens.silence] * (last + 1 - len(text)))
        units = units[: last - first - 1]
        span.placed = units
        text[first] = tokens.turn_start if span.kind == "turn" else tokens.backchannel
        for t in range(first + 1, last):
            text[t] = units[t - first - 1] if t - first - 1 < len(units) else tokens.pad
        text[last] = tokens.epad
        free_from = last + 1
    return text


def interleave(labels: DuplexLabels, ratio: Ratio, tokens: DuplexTokens,
               offset_blocks: int = 1, spans: list[Span] | None = None,
               backchannel_policy: str = "drop", speech_pad: str = SPEECH_PAD,
               problems: list[str] | None = None) -> list[dict]:
    """Blocks of user / text / assistant slots (see the module docstring).

    `spans` (from `assistant_spans`, with `text` filled) carries the text units of each reply;
    without it a reply's text is the words the labels say were spoken, one per slot.
    """
    frames = labels.num_frames
    x = ratio.user
    blocks_count = -(-frames // x) + offset_blocks
    text = text_channel(labels, ratio, tokens, blocks_count * ratio.text, spans,
                        backchannel_policy, problems)
    blocks_count = max(blocks_count, -(-len(text) // ratio.text))
    text += [tokens.silence] * (blocks_count * ratio.text - len(text))
    blocks = []
    for b in range(blocks_count):
        user = [f if 0 <= f < frames else speech_pad
                for f in range((b - offset_blocks) * x, (b - offset_blocks + 1) * x)]
        assistant = [f if f < frames else speech_pad for f in range(b * x, (b + 1) * x)]
        blocks.append({
            "user": user,
            "text": text[b * ratio.text: (b + 1) * ratio.text],
            "assistant": assistant,
            "state": [str(labels.state[f]) if isinstance(f, int) else str(FrameState.LISTEN)
                      for f in assistant],
        })
    return blocks


def rebuild(blocks: list[dict], ratio: Ratio, tokens: DuplexTokens,
            frames: int) -> tuple[list[str], list[tuple[int, str]]]:
    """Frame states and (text slot, event) pairs read back from an interleaved sequence.

    Events: `<|assistant|>` → TURN_START, the backchannel token → BC_START, a reply's [EPAD] →
    TURN_END (the stop of a cut reply and the end of a whole one read the same in BayLing's
    vocabulary; the state channel and the user slots tell them apart).
    """
    state = [str(FrameState.LISTEN)] * frames
    for block in blocks:
        for f, value in zip(block["assistant"], block["state"], strict=True):
            if isinstance(f, int) and 0 <= f < frames:
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
            events.append((t, str(FrameEvent.TURN_END)))
            open_kind = None
        elif token == tokens.epad:
            open_kind = None
    return state, events


def slot_events(labels: DuplexLabels, ratio: Ratio) -> list[tuple[int, str]]:
    """The strongest frame event inside each text slot (labels side, for comparisons)."""
    k = ratio.frames_per_text
    found = []
    for t in range(-(-labels.num_frames // k)):
        kinds = [e for e in labels.event[t * k: (t + 1) * k] if e != FrameEvent.NONE]
        if kinds:
            found.append((t, str(max(kinds, key=EVENT_PRIORITY.__getitem__))))
    return found
