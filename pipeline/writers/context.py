"""Does a request fit the server's context? Sizes, limits and the message when it does not.

A chat request must hold the prompt and the whole answer inside the context the server gives
one request: llama.cpp's `-c` divided by `--parallel` slots, vLLM's `--max-model-len`, a hosted
model's window. This module estimates the prompt from its UTF-8 size, derives the answer
budget from the scenario's turn budget, asks the server for its limit where it publishes one,
and recognises the context-overflow answers of llama.cpp, vLLM, SGLang and OpenAI. The
estimates are deliberately simple (no tokenizer: the writer does not know the server's);
the server's own overflow answer is the backstop.
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

from pipeline.schema import ScenarioSpec
from pipeline.script_check import turn_bounds

log = logging.getLogger("duplexsynth")

BYTES_PER_TOKEN = 3.0
"""UTF-8 bytes per token of our prompts (JSON schema, brief, script). The English prompt is
6.1 kB, which SmolLM2's 49k-token vocabulary makes about 1,900 tokens (3.2 bytes per token);
larger vocabularies (Llama 3, Qwen 2.5) need fewer tokens, Hungarian text needs more."""
MESSAGE_TOKENS = 6
"""Chat-template tokens around each message (role markers, separators)."""
ANSWER_HEADER_TOKENS = 40
"""`{"scenario_id": ..., "language": ..., "turns": [` and the closing brackets."""
TURN_OVERHEAD_TOKENS = 40
"""The keys and default values of one turn object (~120 bytes of JSON besides the text)."""
TYPICAL_TURN_CHARS = 80
"""Text of an average turn (the few-shot examples average 66-69 characters): with it, the
answer of the asked length sets the room below which a run stops."""
DEFAULT_TOLERANCE = 1.0
"""Turn-count tolerance assumed for bounds when checks.turn_tolerance is off."""

_OVERFLOW = re.compile(
    r"context[ _-]?(length|size|window)|exceed_context_size|maximum model length|"
    r"max_model_len|too many tokens|prompt is too long|input is too long", re.IGNORECASE)


@dataclass(frozen=True)
class ContextLimit:
    """Tokens one request may hold, and where that number came from (for the messages)."""

    tokens: int
    source: str


def estimate_tokens(messages: list[dict]) -> int:
    """Prompt tokens of a chat request, estimated from its UTF-8 size (rounded up)."""
    size = sum(len(str(m.get("content", "")).encode("utf-8")) for m in messages)
    return math.ceil(size / BYTES_PER_TOKEN) + MESSAGE_TOKENS * (len(messages) + 1)


def max_turns(scenario: ScenarioSpec, turn_tolerance: float | None) -> int:
    """Most turn objects an acceptable script holds: the turn-count bound plus backchannels."""
    _, high = turn_bounds(scenario.target_turns, turn_tolerance or DEFAULT_TOLERANCE)
    return high + scenario.phenomena.backchannels


def turn_tokens(turn_chars: int) -> int:
    return TURN_OVERHEAD_TOKENS + math.ceil(turn_chars / BYTES_PER_TOKEN)


def answer_tokens(scenario: ScenarioSpec, turn_chars: int, turn_tolerance: float | None) -> int:
    """Completion tokens of the longest answer the schema allows: the derived `max_tokens`."""
    return ANSWER_HEADER_TOKENS + max_turns(scenario, turn_tolerance) * turn_tokens(turn_chars)


def typical_answer_tokens(scenario: ScenarioSpec, turn_chars: int) -> int:
    """An answer of the asked length with average turns: the least room worth a request."""
    items = scenario.target_turns + scenario.phenomena.backchannels
    return ANSWER_HEADER_TOKENS + items * turn_tokens(min(turn_chars, TYPICAL_TURN_CHARS))


def is_context_overflow(text: str) -> bool:
    """True for a server's "the request does not fit the context" answer.

    llama.cpp: "request (2096 tokens) exceeds the available context size (2048 tokens)" /
    type exceed_context_size_error; vLLM: "This model's maximum context length is 2048
    tokens" / "longer than the maximum model length"; OpenAI: code context_length_exceeded;
    SGLang: "is longer than the model's context length".
    """
    return bool(_OVERFLOW.search(text))


def server_root(base_url: str) -> str:
    """`http://host:port` of an OpenAI-style base URL (`.../v1`)."""
    return re.sub(r"/v1/?$", "", base_url.rstrip("/"))


def discover_limit(base_url: str, model: str, api_key: str, timeout_s: float = 30.0
                   ) -> ContextLimit | None:
    """The per-request context the server publishes, or None when it publishes none.

    llama.cpp `GET /props` → `default_generation_settings.n_ctx` (already divided by
    `--parallel`); vLLM `GET /v1/models` → `max_model_len` of the served model. Anything
    else (hosted APIs, errors, timeouts) gives None: then only `writer.context_tokens` and
    the server's own overflow answer protect the run. The timeout is generous: a llama.cpp
    server busy with earlier requests answers /props only between its decoding steps.
    """
    headers = {"Authorization": f"Bearer {api_key}"}
    props = get_json(server_root(base_url) + "/props", headers, timeout_s)
    settings = (props or {}).get("default_generation_settings") or {}
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    if isinstance(n_ctx, int) and n_ctx > 0:
        return ContextLimit(n_ctx, "llama.cpp /props n_ctx per slot")
    models = get_json(base_url.rstrip("/") + "/models", headers, timeout_s)
    for entry in (models or {}).get("data") or []:
        if isinstance(entry, dict) and entry.get("id") == model and \
                isinstance(entry.get("max_model_len"), int):
            return ContextLimit(entry["max_model_len"], "/v1/models max_model_len")
    return None


def get_json(url: str, headers: dict[str, str], timeout_s: float) -> dict | None:
    """GET a JSON object; None on any HTTP, network or decoding failure."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout_s) as response:
            data = json.loads(response.read())
    except (TimeoutError, urllib.error.URLError) as error:
        if not isinstance(getattr(error, "reason", error), TimeoutError):
            return None
        log.warning("writer: %s did not answer within %.0f s; its context limit is unknown "
                    "(set writer.context_tokens to check prompts before work)", url, timeout_s)
        return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


FIXES = ("give each request a larger context (llama-server: -c <parallel × per-slot "
         "tokens>; vllm serve: --max-model-len; or set writer.context_tokens to the real "
         "size), drop the example dialogue with writer.few_shot=0, or shorten the prompt "
         "(shorter personas and system text via writer.prompts_dir, fewer turns via "
         "plan.max_turns, shorter turns via writer.turn_chars)")


def too_small_message(scenario_id: str, prompt: int, answer: int, limit: ContextLimit) -> str:
    """The one line a run stops with when a prompt cannot fit with room for its answer."""
    return (f"writer: the prompt of {scenario_id} needs about {prompt} tokens and its answer "
            f"about {answer} more, but the server's context is {limit.tokens} tokens per "
            f"request ({limit.source}); {FIXES}")


def overflow_message(base_url: str, server_says: str) -> str:
    return (f"writer: {base_url} refused a request as too long for its context: "
            f"{server_says.strip()[:300]}; {FIXES}")


def plan_max_tokens(scenario: ScenarioSpec, messages: list[dict], turn_chars: int,
                    turn_tolerance: float | None, cap: int | None,
                    limit: ContextLimit | None) -> int:
    """`max_tokens` for one request: the schema's longest answer, capped by `writer.max_tokens`
    and by the room the context leaves after the prompt. Raises ContextTooSmall when that
    room is below a typical answer."""
    wanted = answer_tokens(scenario, turn_chars, turn_tolerance)
    if cap is not None:
        wanted = min(wanted, cap)
    if limit is None:
        return wanted
    prompt = estimate_tokens(messages)
    room = limit.tokens - prompt
    needed = min(wanted, typical_answer_tokens(scenario, turn_chars))
    if room < needed:
        raise ContextTooSmall(too_small_message(scenario.id, prompt, needed, limit))
    return min(wanted, room)


class ContextTooSmall(ValueError):
    """A prompt cannot fit the server's context with room for its answer: a config error."""
