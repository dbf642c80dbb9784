"""What a text slot of the BayLing view holds: tokenizer tokens, or words as a fallback.

BayLing-Duplex writes one LM token per text slot. With `options.bayling.tokenizer=` naming a
local Hugging Face tokenizer (a folder holding `tokenizer.json`, or the file itself) the
reply text is split into that tokenizer's tokens (the `tokenizers` library; nothing is
downloaded). Without one, each slot holds a whole word: an offline fallback, labelled as such
in the view's metadata, that a training pass must re-tokenize before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TextUnits:
    """Splits reply text into slot units and maps units to ids where a tokenizer knows them."""

    kind = "words"

    def split(self, text: str) -> list[str]:
        return text.split()

    def ids(self, units: list[str]) -> list[int | None]:
        return [None] * len(units)

    def decode(self, units: list[str]) -> str:
        return " ".join(units)

    def describe(self) -> dict[str, Any]:
        return {"text_unit": "words",
                "note": "fallback: one whole word per text slot, not tokenizer tokens; set "
                        "options.bayling.tokenizer=<folder with tokenizer.json> for tokens"}


class TokenizerUnits(TextUnits):
    kind = "tokenizer"

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.path = path
        self.tokenizer = Tokenizer.from_file(str(path))

    def split(self, text: str) -> list[str]:
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def ids(self, units: list[str]) -> list[int | None]:
        return [self.tokenizer.token_to_id(u) for u in units]

    def decode(self, units: list[str]) -> str:
        ids = [i for i in self.ids(units) if i is not None]
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def describe(self) -> dict[str, Any]:
        return {"text_unit": "tokenizer", "tokenizer": str(self.path),
                "vocab_size": self.tokenizer.get_vocab_size(with_added_tokens=True)}


def load_text_units(value: str | None, key: str = "options.bayling.tokenizer") -> TextUnits:
    """The slot units for a config value; a bad path fails here, before any work."""
    if value in (None, "", False):
        return TextUnits()
    path = Path(str(value)).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"{key}: {value} has no tokenizer.json; point it at a local Hugging "
                         "Face tokenizer folder or tokenizer.json (or leave it null for words)")
    try:
        return TokenizerUnits(path.resolve())
    except ImportError:
        raise ValueError(f"{key}: needs the `tokenizers` package (pip install "
                         "'duplexsynth[tokenizer]')") from None
    except Exception as error:  # the library raises a bare Exception on a malformed file
        raise ValueError(f"{key}: {path} is not a tokenizers file ({error})") from None
