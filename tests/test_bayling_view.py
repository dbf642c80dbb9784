"""The BayLing view replays under BayLing-Duplex's decoding rules (tests/bayling_replay.py).

A hand-built dialogue has every hard case: an assistant greeting before the user's first
turn, an answer that overlaps the user's turn end, an assistant backchannel, a barge-in with
a reaction shorter than a block, and the answer to the barge-in.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.duplex_clips import DuplexDialogue
from pipeline.exports.bayling import Settings, export, sample
from pipeline.exports.causal import first_frame
from pipeline.labels.duplex import duplex_labels
from pipeline.schema import Timeline
from tests.bayling_replay import check_sample, replay
from tests.test_duplex_axes import seg

RATE = 16000


def tone(length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(np.arange(length) * 0.07) + 0.05 * rng.standard_normal(length)
            ).astype(np.float32)


def dialogue() -> tuple[DuplexDialogue, dict, list[str]]:
    greet = seg(0, "bot", 0.0, 3)
    user = seg(1, "u", greet.end_s + 0.3, 8)
    bc = seg(2, "bot", user.words[2][1], 1, kind="backchannel")
    answer = seg(3, "bot", user.end_s - 0.25, 6)  # overlaps the user's last word
    user2 = seg(4, "u", answer.end_s + 0.2, 5)
    long_reply = seg(5, "bot", user2.end_s + 0.15, 30)
    # barge-in 0.1 s before the cut: far shorter than a block of reaction
    cut_word = 8
    barge_start = round(long_reply.words[cut_word][2] - 0.1, 4)
    cut = long_reply.model_copy(update={
        "words": long_reply.words[: cut_word + 1], "end_s": long_reply.words[cut_word][2],
        "cut_at_s": long_reply.words[cut_word][2]})
    barge = seg(6, "u", barge_start, 6)
    reply = seg(7, "bot", barge.end_s + 0.3, 5)
    segments = [greet, user, bc, answer, user2, cut, barge, reply]
    duration = reply.end_s + 1.0
    timeline = Timeline(duration_s=duration, segments=segments)
    channels = np.zeros((int(duration * RATE), 2), dtype=np.float32)
    for s in segments:
        column = 0 if s.speaker == "u" else 1
        a, b = int(s.start_s * RATE), int(s.end_s * RATE)
        channels[a:b, column] = tone(b - a, s.turn)
    labels = duplex_labels(timeline, "bot", 0.08)
    texts = {s.turn: " ".join(w[0] for w in s.words) for s in segments}
    texts[5] = " ".join(w[0] for w in long_reply.words)  # planned: the whole turn
    script = {"turns": [{"speaker": s.speaker, "text": texts[i]}
                        for i, s in enumerate(sorted(segments, key=lambda p: p.turn))]}
    planned = [texts[s.turn] for s in segments if s.speaker == "bot"]
    return (DuplexDialogue(id="d0", language="en", assistant="bot", speakers=["u", "bot"],
                           timeline=timeline, labels=labels, channels=channels,
                           sample_rate=RATE), script, planned)


def events(d: DuplexDialogue, axis: str):
    return [e for e in d.labels.axis_events if e.axis == axis]


def test_every_sample_replays_whole_and_stops_after_its_barge_in():
    d, script, planned = dialogue()
    settings = Settings.from_options({})  # backchannel_policy=drop, BayLing-compatible
    chosen = events(d, "turn_taking") + events(d, "interruption") + [None]
    assert len(chosen) >= 3
    totals = {"whole": 0, "replies": 0, "stops": 0, "barges": 0}
    for event in chosen:
        record, user, assistant = sample(d, script, event, settings)
        record.update(kind="dialogue" if event is None else event.axis, id="s")
        counts = check_sample(record, user, assistant, planned, " ".join)
        totals["whole"] += counts.whole
        totals["replies"] += counts.replies
        totals["stops"] += counts.stops_after
        totals["barges"] += counts.barge_ins
        flat = [t for b in record["blocks"] for t in b["text"]]
        assert set(flat) <= {"[SILENCE]", "<|assistant|>", "[PAD]", "[EPAD]"} | {
            w for text in planned for w in text.split()}
        assert all(isinstance(f, int) or f == "<pad>" for b in record["blocks"]
                   for f in b["user"] + b["assistant"])
        # user audio first: the user speaks before any assistant speech in the clip
        vad, state = record["labels"]["user_vad"], record["labels"]["state"]
        assert vad.index(1) < next(f for f, s in enumerate(state) if s == "SPEAK")
        assert "BACKCHANNEL" not in state  # dropped
        if event is not None and event.axis == "interruption":
            cut = next(r for r in record["replies"] if r["cut"])
            assert planned[3].startswith(cut["text"]) and cut["text"] != planned[3]
    assert totals["whole"] == totals["replies"] >= 5
    assert totals["stops"] == totals["barges"] >= 2


@pytest.mark.parametrize("policy", ["speech", "token"])
def test_other_backchannel_policies(policy):
    d, script, planned = dialogue()
    record, user, assistant = sample(d, script, None,
                                     Settings.from_options({"backchannel_policy": policy}))
    record.update(kind="dialogue", id="whole")
    flat = [t for b in record["blocks"] for t in b["text"]]
    assert "BACKCHANNEL" in record["labels"]["state"]
    if policy == "token":  # the configured token opens it, one [EPAD] closes it
        assert flat.count("<|backchannel|>") == 1
        assert flat.count("[EPAD]") == flat.count("<|assistant|>") + 1
    else:  # BayLing tokens only; the backchannel sounds outside a reply
        assert "<|backchannel|>" not in flat
        broken = check_sample(record, user, assistant, planned, " ".join, strict=False).broken
        assert broken and all(item.startswith("('whole', ") for item in broken)


def test_overlapped_answer_moves_after_the_turn_end_and_barge_in_delays_the_stop():
    d, script, _ = dialogue()
    settings = Settings.from_options({})
    (interruption,) = events(d, "interruption")
    record, _, _ = sample(d, script, interruption, settings)
    assert record["retimed_s"] > 0
    event = record["event"]
    barge = first_frame(event["start_s"], 0.08)
    stop = next(r for r in record["replies"] if r["cut"])["end_frame"]
    assert stop // 10 >= barge // 10 + 1  # [EPAD] block holds the barge-in in its user slots
    assert stop // 10 <= barge // 10 + 2
    result = replay([b["text"] for b in record["blocks"]], max_epad_count=2)
    assert len(result.replies) == 2 and result.after_stop == []


def test_tokenizer_slots_hold_tokens(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers import decoders as tk_decoders

    d, script, planned = dialogue()
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tk_decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=[
        "[UNK]", "[SILENCE]", "<|assistant|>", "[PAD]", "[EPAD]"])
    tokenizer.train_from_iterator(planned * 5, trainer)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    settings = Settings.from_options({"tokenizer": str(tmp_path)})
    (event,) = events(d, "interruption")
    record, user, assistant = sample(d, script, event, settings)
    assert record["text_unit"] == "tokenizer"
    units = [t for b in record["blocks"] for t in b["text"]]
    words = {w for text in planned for w in text.split()}
    assert any(u not in words and u not in settings.tokens.specials for u in units)
    ids = [i for b in record["blocks"] for i in b["text_ids"]]
    assert None not in ids  # specials were added to the tiny vocabulary

    def decode(pieces):
        return tokenizer.decode([tokenizer.token_to_id(p) for p in pieces])

    counts = check_sample(record, user, assistant, planned, decode)
    assert counts.whole == counts.replies == 2 and counts.stops_after == counts.barge_ins == 1


@pytest.mark.parametrize(("options", "key"), [
    ({"backchannel_policy": "chat"}, "options.bayling.backchannel_policy"),
    ({"tokenizer": "/nowhere/tok"}, "options.bayling.tokenizer"),
    ({"speech_pad": ""}, "options.bayling.speech_pad"),
    ({"offset_blocks": 0}, "options.bayling.offset_blocks"),
    ({"colour": 1}, "options.bayling"),
])
def test_bad_options_fail_in_one_line_before_work(tmp_path, capsys, options, key):
    with pytest.raises(SystemExit):
        export(tmp_path / "no-dataset", tmp_path / "out", options)
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"duplexsynth: {key}") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_assistant_opening_is_dropped_and_first_block_is_silent():
    d, script, planned = dialogue()
    record, user, assistant = sample(d, script, None, Settings.from_options({}))
    record.update(kind="dialogue", id="whole")
    assert planned[0] not in [r["text"] for r in record["replies"]]
    check_sample(record, user, assistant, planned, " ".join)


def test_placed_segments_keep_their_audio():
    d, script, _ = dialogue()
    (event,) = events(d, "turn_taking")[:1]
    record, user, assistant = sample(d, script, event, Settings.from_options({}))
    labels = record["labels"]
    speaking = [f for f, s in enumerate(labels["state"]) if s == "SPEAK"]
    hop = int(RATE * 0.08)
    assert all(np.abs(assistant[f * hop:(f + 1) * hop]).max() > 0.01 for f in speaking[1:-1])
