"""LLM usage per row, and the run's token / dollar budget.

Usage is a flat Counter so it adds up across rows, shards and runs (ShardStats.llm):
`requests` (answered HTTP requests), `prompt_tokens`, `completion_tokens`, `usd`,
`cache_hits` (answers replayed from the response cache, free), `repairs` (second rounds sent),
`retries` and `retry:<reason>` (attempts that failed transiently and were retried),
`repairs_skipped` (repair rounds not sent or refused because they would overflow the
context), `text_fallbacks` (requests re-sent without response_format because the server
refused json_schema).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

LLM_KEYS = ("requests", "prompt_tokens", "completion_tokens", "usd", "cache_hits", "repairs",
            "repairs_skipped", "retries", "text_fallbacks")


def cost_usd(prompt_tokens: int, completion_tokens: int, prices: dict[str, float]) -> float:
    """Dollars for one answer; `prices` are US dollars per million tokens."""
    return (prompt_tokens * prices.get("prompt", 0.0)
            + completion_tokens * prices.get("completion", 0.0)) / 1e6


def llm_summary(usage: Counter) -> dict:
    """The run.json `llm` block: the fixed keys, plus retries by reason."""
    summary: dict = {key: usage.get(key, 0) for key in LLM_KEYS}
    summary["usd"] = round(float(summary["usd"]), 6)
    summary["retries_by_reason"] = {key.split(":", 1)[1]: value for key, value in
                                    sorted(usage.items()) if key.startswith("retry:")}
    return summary


@dataclass
class Budget:
    """Stops new requests once tokens or dollars reach their caps (None = no cap).

    `spent_*` start at what finished shards of earlier runs already cost, so a budget is for
    the dataset, not for one invocation. Requests already in flight finish, so the overshoot
    is at most `writer.concurrency` answers.
    """

    max_tokens: int | None = None
    max_usd: float | None = None
    spent_tokens: int = 0
    spent_usd: float = 0.0
    _charged: Counter = field(default_factory=Counter)

    def exhausted(self) -> str | None:
        """Why no new request may start, or None while there is budget left."""
        if self.max_tokens is not None and self.spent_tokens >= self.max_tokens:
            return f"budget.max_tokens={self.max_tokens} reached ({self.spent_tokens} spent)"
        if self.max_usd is not None and self.spent_usd >= self.max_usd:
            return f"budget.max_usd={self.max_usd} reached ({self.spent_usd:.4f} spent)"
        return None

    def charge(self, tokens: int, usd: float) -> None:
        self.spent_tokens += tokens
        self.spent_usd += usd
