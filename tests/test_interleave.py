"""The BayLing interleave rebuilds the frame labels; the token table is checked."""

from __future__ import annotations

import pytest

from pipeline.exports.interleave import (
    SPEECH_PAD,
    Ratio,
    check_backchannel_policy,
    interleave,
    rebuild,
)
from pipeline.exports.moshi import text_frames
from pipeline.labels.tokens import DuplexTokens
from pipeline.schema import FrameEvent
from tests.test_duplex_axes import labels_of, seg

TOKENS = DuplexTokens()


def dialogue_labels():
    user = seg(0, "u", 0.0, 8, pause_after=3, pause_s=0.9)
    bc = seg(1, "bot", user.words[3][2] + 0.2, 1, kind="backchannel", word_s=0.3)
    bot = seg(2, "bot", user.end_s + 0.25, 12, cut_after=7)
    barge = seg(3, "u", bot.words[6][1], 5)
    reply = seg(4, "bot", barge.end_s + 0.2, 6)
    side = seg(5, "ann", reply.end_s + 0.3, 4, addressee="u")
    return labels_of([user, bc, bot, barge, reply, side])


@pytest.mark.parametrize("ratio", ["10:5:10", "10:10:10", "8:4:8"])
@pytest.mark.parametrize("offset", [1, 2])
def test_interleave_rebuilds_states_and_events(ratio, offset):
    labels = dialogue_labels()
    r = Ratio.parse(ratio)
    blocks = interleave(labels, r, TOKENS, offset, backchannel_policy="token")
    assert all(len(b["user"]) == r.user and len(b["text"]) == r.text
               and len(b["assistant"]) == r.assistant for b in blocks)
    slots = [f for b in blocks for f in b["user"] + b["assistant"]]
    assert all(isinstance(f, int) or f == SPEECH_PAD for f in slots)  # never -1
    user_frames = [f for b in blocks for f in b["user"] if isinstance(f, int)]
    assistant_frames = [f for b in blocks for f in b["assistant"] if isinstance(f, int)]
    assert user_frames == list(range(labels.num_frames))
    assert assistant_frames == list(range(labels.num_frames))
    # causal: the assistant frames of a block come `offset` blocks after its user frames
    for b in blocks:
        if isinstance(b["user"][0], int) and isinstance(b["assistant"][0], int):
            assert b["assistant"][0] - b["user"][0] == offset * r.user
    state, events = rebuild(blocks, r, TOKENS, labels.num_frames)
    assert state == [str(s) for s in labels.state]
    k = r.frames_per_text
    expected = [(f // k, str(e)) for f, e in enumerate(labels.event)
                if e in (FrameEvent.TURN_START, FrameEvent.TURN_END, FrameEvent.BC_START)]
    assert [e for e in events if e[1] in ("TURN_START", "BC_START")] == [
        e for e in expected if e[1] in ("TURN_START", "BC_START")]
    ends = [t for t, kind in events if kind == "TURN_END"]
    assert ends == [t for t, kind in expected if kind == "TURN_END"]
    spoken = " ".join(t for b in blocks for t in b["text"] if t not in TOKENS.specials)
    assert spoken.split() == [w[0] for w in labels.words]


def test_text_channel_vocabulary():
    labels = dialogue_labels()
    text = [t for b in interleave(labels, Ratio(), TOKENS, 1) for t in b["text"]]
    assert text[0] == TOKENS.silence
    assert "[IGNORE]" not in text and TOKENS.backchannel not in text  # BayLing's vocabulary
    assert text.count(TOKENS.turn_start) == 2
    assert text.count(TOKENS.epad) == 2  # one per reply: the cut turn's stop, the reply's end
    first = text.index(TOKENS.turn_start)
    assert text[first + 1] == labels.words[1][0]  # text runs ahead: first word right after
    stop = text.index(TOKENS.epad)
    assert set(text[stop + 1: text.index(TOKENS.turn_start, stop)]) == {TOKENS.silence}


def test_unknown_backchannel_policy_names_the_key():
    with pytest.raises(ValueError, match="options.bayling.backchannel_policy"):
        check_backchannel_policy("chat", "options.bayling.backchannel_policy")


def test_moshi_text_frames_mark_word_starts():
    labels = dialogue_labels()
    frames = text_frames(labels, TOKENS)
    assert len(frames) == labels.num_frames
    words = [t for t in frames if t not in (TOKENS.pad, TOKENS.epad)]
    assert " ".join(words).split() == [w[0] for w in labels.words]
    for f, token in enumerate(frames):
        if token == TOKENS.epad:
            assert frames[f + 1] not in (TOKENS.pad, TOKENS.epad)


@pytest.mark.parametrize("bad", ["10:3:10", "10:5:8", "0:5:0", "ten"])
def test_ratio_errors_name_the_fix(bad):
    with pytest.raises(ValueError, match="ratio"):
        Ratio.parse(bad)


def test_token_table_is_configurable_and_checked():
    custom = DuplexTokens.from_config({"silence": "<sil>", "ignore": "<sil>"})
    assert custom.silence == "<sil>" and custom.turn_start == "<|assistant|>"
    with pytest.raises(ValueError, match="unknown"):
        DuplexTokens.from_config({"silense": "x"})
    with pytest.raises(ValueError, match="differ"):
        DuplexTokens.from_config({"pad": "[EPAD]"})
