"""From an LLM's text answer to a DialogueScript, or a counted reason why not.

Servers with structured output return bare JSON; others wrap it in prose or a ```json fence,
so the object is looked for in that order: the whole text, the last fenced block, the span
from the first `{` to the last `}`.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from pipeline.schema import DialogueScript
from pipeline.script_check import ScriptRejected

_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def extract_json(text: str) -> object:
    """The JSON value in `text`; raises ValueError when there is none."""
    text = text.strip()
    candidates = [text]
    fenced = _FENCE.findall(text)
    if fenced:
        candidates.append(fenced[-1])
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{"): text.rindex("}") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("no JSON object found")


def parse_script(content: str | None, finish_reason: str | None = "stop") -> DialogueScript:
    """Parse and validate; `finish_reason == "length"` marks a cut-off answer as truncated."""
    truncated = finish_reason == "length"
    try:
        data = extract_json(content or "")
    except ValueError:
        if truncated:
            raise ScriptRejected("truncated", "the answer hit max_tokens before the JSON "
                                 "ended; write a shorter dialogue") from None
        raise ScriptRejected("invalid_json", "the answer holds no parseable JSON object; "
                             "reply with the JSON object only") from None
    try:
        return DialogueScript.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'root'}: {item['msg']}"
            for item in error.errors()[:5])
        reason = "truncated" if truncated else "schema_invalid"
        raise ScriptRejected(reason, f"does not match the DialogueScript schema: "
                             f"{problems}") from None
