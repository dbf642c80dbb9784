"""ASR text normalisation per language: lowercase, punctuation off, numbers spelled out.

ASR trainers want the words as they are spoken: "At 3.5% and 21st" is read "at three point
five percent and twenty-first". Exports keep both forms (`text` normalised, `text_original`
as written) so a recipe can pick either. Numbers go through `num2words`, which covers the
languages we generate (en, hu). Special tokens such as `<sc>` are never passed through here:
exports normalise each speaker's run of words and join runs afterwards.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields

from num2words import num2words

PERCENT = {"en": "percent", "hu": "százalék"}
DECIMAL_MARK = {"en": ".", "hu": ","}
EN_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
HU_ORDINAL = re.compile(r"\b(\d+)\.(?=\s+[a-záéíóöőúüű])")


@dataclass(frozen=True)
class TextNormalizer:
    """Configurable normaliser; `keep` lists punctuation that survives inside words."""

    lowercase: bool = True
    punctuation: bool = True
    numbers: bool = True
    keep: str = "'"

    @classmethod
    def from_options(cls, options: dict | None) -> TextNormalizer:
        """Build from an exporter's `normalize` options; unknown keys fail with their name."""
        options = dict(options or {})
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"normalize: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**options)

    def __call__(self, text: str, language: str) -> str:
        if self.numbers:
            text = spell_numbers(text, language)
        if self.lowercase:
            text = text.lower()
        if self.punctuation:
            text = strip_punctuation(text, self.keep)
        return " ".join(text.split())


def _lang(language: str) -> str:
    base = language.split("-")[0].lower()
    return base if base in DECIMAL_MARK else "en"


def spell_numbers(text: str, language: str) -> str:
    """Digits -> words: ordinals (en `21st`, hu `3.` before a lowercase word), decimals with
    the language's decimal mark, percent signs, then plain integers."""
    lang = _lang(language)
    if lang == "en":
        text = EN_ORDINAL.sub(lambda m: num2words(int(m.group(1)), lang=lang, to="ordinal"), text)
    else:
        text = HU_ORDINAL.sub(lambda m: num2words(int(m.group(1)), lang=lang, to="ordinal"), text)
    mark = re.escape(DECIMAL_MARK[lang])
    number = re.compile(rf"(\d+(?:{mark}\d+)?)(\s?%)?")

    def spoken(match: re.Match[str]) -> str:
        digits = match.group(1).replace(DECIMAL_MARK[lang], ".")
        value = float(digits) if "." in digits else int(digits)
        words = num2words(value, lang=lang)
        if match.group(2):
            words += " " + PERCENT[lang]
        return f" {words} "

    return number.sub(spoken, text)


def strip_punctuation(text: str, keep: str = "'") -> str:
    """Unicode punctuation and symbols become spaces; characters in `keep` survive only
    between two letters (don't, Kovács'), so quotes around words still go."""
    out = []
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category[0] in "PS":
            inside = (0 < index < len(text) - 1 and text[index - 1].isalnum()
                      and text[index + 1].isalnum())
            out.append(char if char in keep and inside else " ")
        else:
            out.append(char)
    return "".join(out)
