"""Text normalisation and speaker-change windows: pure functions on built inputs."""

import pytest

from pipeline.exports.windows import cut_windows, speaker_runs, window_text
from pipeline.textnorm import TextNormalizer


def test_english_numbers_punctuation_case():
    norm = TextNormalizer()
    assert norm("At 3.5% on the 21st, I don't \"know\"!", "en") == (
        "at three point five percent on the twenty first i don't know")


def test_hungarian_numbers_ordinals_and_decimal_comma():
    norm = TextNormalizer()
    assert norm("A 3. kerületben 2,5 százalék, 12 óra.", "hu") == (
        "a harmadik kerületben kettő egész öt tized százalék tizenkettő óra")
    assert norm("Ő 1956-ban született.", "hu").startswith("ő ezerkilencszázötvenhat")


def test_normalisation_is_configurable_and_checks_keys():
    keep_case = TextNormalizer(lowercase=False, numbers=False)
    assert keep_case("Hello, World 7!", "en") == "Hello World 7"
    with pytest.raises(ValueError, match="lowercas"):
        TextNormalizer.from_options({"lowercas": True})


def word_list(words, speaker, start, word_s=0.4, gap_s=0.1):
    out, t = [], start
    for word in words.split():
        out.append([word, round(t, 3), round(t + word_s, 3)])
        t += word_s + gap_s
    return {"speaker": speaker, "start_s": start, "end_s": out[-1][2], "words": out,
            "turn": 0, "kind": "turn", "cut_at_s": None, "addressee": "all"}


def test_windows_cut_in_silence_and_count_speaker_changes():
    segments, t = [], 0.0
    for turn in range(20):
        seg = word_list("one two three four five six", "AB"[turn % 2], t)
        seg["turn"] = turn
        segments.append(seg)
        t = seg["end_s"] + 0.3
    timeline = {"duration_s": t, "segments": segments}
    windows = cut_windows(timeline, window_s=10.0)
    covered = [w for window in windows for w in window.words]
    assert len(covered) == 120  # every word in exactly one window
    for window in windows:
        assert window.duration_s <= 10.0 + 1e-9
        for segment in segments:
            for _, start, end in segment["words"]:
                assert not (start < window.end_s < end), "a cut splits a word"
        runs = speaker_runs(window.words)
        text = window_text(runs)
        changes = sum(1 for a, b in zip(runs, runs[1:], strict=False) if a[0] != b[0])
        assert text.count("<sc>") == changes == len({w.utterance for w in window.words}) - 1


def test_overlap_orders_sot_versus_words():
    a = word_list("alpha beta gamma delta", "A", 0.0)
    b = word_list("yes", "B", 0.6)
    b["turn"] = 1
    timeline = {"duration_s": 3.0, "segments": [a, b]}
    (window,) = cut_windows(timeline, 30.0)
    assert window_text(speaker_runs(window.words, "sot")) == "alpha beta gamma delta <sc> yes"
    assert window_text(speaker_runs(window.words, "words")) == (
        "alpha beta <sc> yes <sc> gamma delta")


def test_speech_without_silence_longer_than_window_is_skipped_not_split():
    long = {"speaker": "A", "start_s": 0.0, "end_s": 40.0, "turn": 0, "kind": "turn",
            "words": [[f"w{i}", i * 1.0, i * 1.0 + 1.0] for i in range(40)]}
    short = word_list("after the long bit", "B", 41.0)
    windows = cut_windows({"duration_s": 45.0, "segments": [long, short]}, 30.0)
    assert [w.text for window in windows for w in window.words] == ["after", "the", "long", "bit"]
