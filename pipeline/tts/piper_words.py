"""Which phonemes belong to which script word, for Piper's per-phoneme durations.

eSpeak's word spaces do not always follow the script's (`on the` can become one word); these
pure functions map a sentence's eSpeak words onto the script's tokens (pipeline.tts.piper).
"""

from __future__ import annotations

from difflib import SequenceMatcher

WORD_SPACE = " "
# Phonemes that are pauses or prosody marks, not speech: never part of a word's span.
PAUSES = frozenset(",.!?;:\"'()[]{}-\u2013\u2014\u2026\u00a1\u00bf\u00ab\u00bb ")
# Tokens eSpeak spells letter by letter ("mhm" -> "em aitch em"), as IPA for Piper.
RESPELL = {
    **dict.fromkeys(("mhm", "mhmm", "m-hm", "mm-hm", "mm-hmm", "mmhm", "mmhmm"), "mhˈm"),
    **dict.fromkeys(("hm", "hmm", "hmmm"), "hˈmː"),
    **dict.fromkeys(("mm", "mmm"), "mˈmː"),
}
SPACE_JOIN = WORD_SPACE  # between sentences of one turn
_STRESS = str.maketrans("", "", "ˈˌ" + "".join(PAUSES))


def likeness(in_context: str, alone: str) -> float:
    """How alike two phoneme strings are, stress and punctuation aside (0..1)."""
    a, b = in_context.translate(_STRESS), alone.translate(_STRESS)
    return 1.0 if a == b else SequenceMatcher(None, a, b).ratio()


def map_words(words: list[str], alone: list[str]) -> list[str] | None:
    """Phonemes per script token from a sentence's eSpeak words (`words`), guided by each
    token phonemized alone (`alone`); None where no mapping is found.

    Left to right, each step takes the best of: one word for one token; one word for two
    tokens (eSpeak merged "on the": the two tokens take their phonemes alone); two words for
    one token (a split: joined with a word space). A lone poor match (a function word reads
    differently in context) is taken when one of the next two words matches its token."""
    out: list[str] = []
    i = j = 0
    while j < len(alone):
        if i >= len(words):
            return None
        options = [(likeness(words[i], alone[j]), "one")]
        if j + 1 < len(alone):
            options.append((likeness(words[i], alone[j] + alone[j + 1]), "merged"))
        if i + 1 < len(words):
            options.append((likeness(words[i] + words[i + 1], alone[j]), "split"))
        score, kind = max(options)
        if score < 0.5:
            ahead = [likeness(words[i + k], alone[j + k]) for k in (1, 2)
                     if i + k < len(words) and j + k < len(alone)]
            resync = (i + 1 == len(words) and j + 1 == len(alone)) or max(ahead, default=0) >= 0.5
            if not resync:
                return None
            kind = "one"
        if kind == "one":
            out.append(words[i])
            i, j = i + 1, j + 1
        elif kind == "merged":
            out += [alone[j], alone[j + 1]]
            i, j = i + 1, j + 2
        else:
            out.append(words[i] + WORD_SPACE + words[i + 1])
            i, j = i + 2, j + 1
    return out if i == len(words) else None
