"""`writer=openai`: dialogues from any OpenAI-compatible chat-completions endpoint.

One worker sends up to `concurrency` requests at once (asyncio + a semaphore). Retries are
ours (tenacity), not the openai client's (built with `max_retries=0`): the client would honour
Retry-After too, but it cannot tell us how many attempts failed and why, and run.json counts
retries by reason. Transient failures (429, 5xx, 408/409, timeouts, dropped connections) are
retried with exponential backoff, 25 % jitter and Retry-After as a floor; when they still fail
the row is Deferred, so its shard is left for the next run. A bad answer (no JSON, wrong
schema, failed consistency check, cut off) gets one repair round that sends the error back,
then is rejected with the reason. Auth and unknown-model errors stop the run: every row would
fail the same way, and so does a request too long for the server's context (pipeline/writers/
context.py): `max_tokens` and the schema's bounds come from the scenario's turn budget, a
prompt that leaves no room for a typical answer stops the run before the request, and a repair
round that would not fit is skipped (the row keeps its first reason).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import openai
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pipeline.prompts import PromptSet, script_schema
from pipeline.rows import BUDGET_EXHAUSTED
from pipeline.schema import DialogueScript, ScenarioSpec
from pipeline.script_check import ScriptDeferred, ScriptRejected, WriterStopped, check_script
from pipeline.writers.cache import ResponseCache, cache_key
from pipeline.writers.context import (
    ContextLimit,
    ContextTooSmall,
    discover_limit,
    estimate_tokens,
    is_context_overflow,
    max_turns,
    overflow_message,
    plan_max_tokens,
    typical_answer_tokens,
)
from pipeline.writers.parsing import parse_script
from pipeline.writers.settings import OpenAISettings
from pipeline.writers.usage import Budget, cost_usd

log = logging.getLogger("duplexsynth.writer")

Validator = Callable[[DialogueScript, ScenarioSpec], DialogueScript]
_TRANSIENT_STATUS = {408, 409, 429}


WriterFatal = WriterStopped


class ContextOverflow(WriterFatal):
    """The server answered that the request does not fit its context."""


@dataclass
class Answer:
    content: str
    finish_reason: str | None


@dataclass(frozen=True)
class Request:
    """What one scenario's requests send besides the messages."""

    max_tokens: int
    schema: dict


def _retry_reason(error: BaseException) -> str | None:
    """The counted name of a transient failure, None for anything not worth retrying."""
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    if isinstance(error, openai.APIStatusError) and (
            error.status_code in _TRANSIENT_STATUS or error.status_code >= 500):
        return f"http_{error.status_code}"
    return None


def retry_after_s(error: BaseException) -> float:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), 0 if it did not."""
    response = getattr(error, "response", None)
    if response is None:
        return 0.0
    headers = response.headers
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else 0.0


class OpenAIWriter:
    """Writes scripts through `openai.AsyncOpenAI(base_url=...)`; see module docstring."""

    name = "openai"

    def __init__(
        self,
        settings: OpenAISettings,
        validate: Validator | None = None,
        budget: Budget | None = None,
        prompts: PromptSet | None = None,
        turn_tolerance: float | None = None,
    ) -> None:
        self.settings = settings
        self.turn_tolerance = turn_tolerance
        self.validate: Validator = validate or check_script
        self.budget = budget or Budget()
        self.prompts = prompts or (PromptSet() if settings.prompts_dir is None
                                   else PromptSet(Path(settings.prompts_dir)))
        self.cache = ResponseCache(settings.cache_path())
        self.response_format = settings.response_format
        self.usage: dict[str, Counter] = {}
        self._limit: ContextLimit | None | bool = False  # False: not looked up yet
        self.text_fallbacks = 0

    def context_limit(self) -> ContextLimit | None:
        """writer.context_tokens, else what the server publishes (looked up once)."""
        if self._limit is False:
            settings = self.settings
            self._limit = (ContextLimit(settings.context_tokens, "writer.context_tokens")
                           if settings.context_tokens else
                           discover_limit(str(settings.base_url), str(settings.model),
                                          settings.api_key()))
        return self._limit  # type: ignore[return-value]

    def plan_request(self, scenario: ScenarioSpec) -> tuple[list[dict], Request]:
        """The first round's messages, `max_tokens` and schema; raises ContextTooSmall."""
        settings = self.settings
        messages = self.prompts.messages(scenario, settings.few_shot, settings.turn_chars)
        max_tokens = plan_max_tokens(scenario, messages, settings.turn_chars,
                                     self.turn_tolerance, settings.max_tokens,
                                     self.context_limit())
        schema = script_schema(settings.turn_chars, max_turns(scenario, self.turn_tolerance))
        return messages, Request(max_tokens, schema)

    def _repair_request(self, scenario: ScenarioSpec, messages: list[dict], first: Request
                        ) -> Request | None:
        """The repair round's request: `max_tokens` shrunk to the room its longer prompt
        leaves, or None when that room is below a typical answer (the round is skipped)."""
        limit = self.context_limit()
        if limit is None:
            return first
        room = limit.tokens - estimate_tokens(messages)
        if room < typical_answer_tokens(scenario, self.settings.turn_chars):
            return None
        return Request(min(first.max_tokens, room), first.schema)

    @property
    def generator(self) -> str:
        return self.settings.generator

    def meta(self) -> dict:
        """What every row's provenance records about its writer."""
        return {"generator": self.generator, "model": self.settings.model,
                "prompt_version": self.prompts.version}

    def pop_usage(self, scenario_id: str) -> Counter:
        return self.usage.pop(scenario_id, Counter())

    def write(self, scenario: ScenarioSpec) -> DialogueScript:
        result = self.write_many([scenario])[0]
        if isinstance(result, ScriptRejected):
            raise result
        return result

    def write_many(
        self, scenarios: Sequence[ScenarioSpec]
    ) -> list[DialogueScript | ScriptRejected]:
        """All scenarios at once with at most `concurrency` requests in flight."""
        return asyncio.run(self._write_all(list(scenarios)))

    async def _write_all(
        self, scenarios: list[ScenarioSpec]
    ) -> list[DialogueScript | ScriptRejected]:
        gate = asyncio.Semaphore(self.settings.concurrency)
        # The client (and its connection pool) lives inside this event loop.
        async with openai.AsyncOpenAI(
            base_url=self.settings.base_url, api_key=self.settings.api_key(),
            timeout=self.settings.timeout_s, max_retries=0,
        ) as client:
            jobs = [self._write_one(client, gate, scenario) for scenario in scenarios]
            return list(await asyncio.gather(*jobs))

    async def _write_one(
        self, client: openai.AsyncOpenAI, gate: asyncio.Semaphore, scenario: ScenarioSpec
    ) -> DialogueScript | ScriptRejected:
        usage = self.usage.setdefault(scenario.id, Counter())
        try:
            messages, request = self.plan_request(scenario)
        except ContextTooSmall as error:
            raise WriterFatal(str(error)) from None
        rounds = 2 if self.settings.repair else 1
        first: ScriptRejected | None = None  # the first round's reason, kept on a skipped repair
        try:
            for round_ in range(rounds):
                try:
                    answer = await self._complete(client, gate, messages, scenario.seed,
                                                  usage, request)
                except ContextOverflow:
                    if first is None:
                        raise
                    usage["repairs_skipped"] += 1
                    raise first from None
                try:
                    return self.validate(parse_script(answer.content, answer.finish_reason),
                                         scenario)
                except ScriptRejected as rejected:
                    first = first or rejected
                    if round_ == rounds - 1:
                        raise
                    repair = [*messages, {"role": "assistant", "content": answer.content},
                              self.prompts.repair(scenario.language, rejected.detail)]
                    repair_request = self._repair_request(scenario, repair, request)
                    if repair_request is None:
                        usage["repairs_skipped"] += 1
                        raise
                    usage["repairs"] += 1
                    messages, request = repair, repair_request
        except ScriptRejected as rejected:
            return rejected
        raise AssertionError("unreachable")

    async def _complete(
        self, client: openai.AsyncOpenAI, gate: asyncio.Semaphore, messages: list[dict],
        seed: int, usage: Counter, request: Request,
    ) -> Answer:
        settings = self.settings
        params = {"temperature": settings.temperature, "max_tokens": request.max_tokens,
                  "response_format": self.response_format, "schema": request.schema}
        key = cache_key(str(settings.model), messages, seed, params)
        cached = self.cache.get(key)
        if cached is not None:
            usage["cache_hits"] += 1
            return Answer(cached["content"], cached.get("finish_reason"))
        async with gate:
            stop = self.budget.exhausted()
            if stop:
                raise ScriptDeferred(BUDGET_EXHAUSTED, stop)
            response = await self._request_with_retries(client, messages, seed, usage, request)
        choice = response.choices[0] if response.choices else None
        if choice is None:
            raise ScriptRejected("invalid_json", "the server returned no choices")
        answer = Answer(choice.message.content or "", choice.finish_reason)
        prompt_tokens = getattr(response.usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(response.usage, "completion_tokens", 0) or 0
        usd = cost_usd(prompt_tokens, completion_tokens, settings.price_per_million.model_dump())
        usage.update({"requests": 1, "prompt_tokens": prompt_tokens,
                      "completion_tokens": completion_tokens, "usd": usd,
                      "text_fallbacks": self.text_fallbacks})
        self.text_fallbacks = 0
        self.budget.charge(prompt_tokens + completion_tokens, usd)
        self.cache.put(key, {"content": answer.content, "finish_reason": answer.finish_reason})
        return answer

    async def _request_with_retries(
        self, client: openai.AsyncOpenAI, messages: list[dict], seed: int, usage: Counter,
        request: Request,
    ):
        settings = self.settings

        def wait(state: RetryCallState) -> float:
            backoff = settings.retry_initial_s * 2 ** (state.attempt_number - 1)
            backoff *= 1 - 0.25 * random.random()
            error = state.outcome.exception() if state.outcome else None
            floor = retry_after_s(error) if error else 0.0
            return min(settings.retry_max_s, max(backoff, floor))

        def count(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            reason = _retry_reason(error) if error else None
            usage.update({"retries": 1, f"retry:{reason}": 1})

        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.max_retries + 1), wait=wait,
            retry=retry_if_exception(lambda e: _retry_reason(e) is not None),
            before_sleep=count, reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._request(client, messages, seed, request)
        except openai.APIError as error:
            reason = _retry_reason(error)
            if reason is not None:
                raise ScriptDeferred("llm_unavailable", f"{reason} after "
                               f"{settings.max_retries} retries") from None
            self._raise_fatal_or_reject(error)
        raise AssertionError("unreachable")

    async def _request(self, client: openai.AsyncOpenAI, messages: list[dict], seed: int,
                       request: Request) -> ChatCompletion:
        """One chat-completions call.

        `client.post` with a plain JSON body instead of `client.chat.completions.create`: the
        same request on the wire, but `create` first walks every message and the schema through
        a type-driven transform that costs about a millisecond of CPU per call, which is what
        capped one worker's throughput. Errors and parsing are the client's as usual.
        """
        settings = self.settings
        body: dict = {"model": str(settings.model), "messages": messages,
                      "temperature": settings.temperature, "max_tokens": request.max_tokens,
                      "seed": seed % (1 << 31)}
        if self.response_format == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "DialogueScript", "schema": request.schema, "strict": False}}
        elif self.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        try:
            return await client.post("/chat/completions", body=body, cast_to=ChatCompletion)
        except openai.BadRequestError as error:
            said = server_message(error)
            if is_context_overflow(said + str(error.body)):
                raise ContextOverflow(overflow_message(str(settings.base_url), said)) from None
            if "response_format" not in body or "response_format" not in said + str(error.body):
                raise
            log.warning("writer: %s does not take response_format=%s; asking for JSON in "
                        "text from now on", settings.base_url, self.response_format)
            self.response_format = "text"
            self.text_fallbacks += 1
            body.pop("response_format")
            return await client.post("/chat/completions", body=body, cast_to=ChatCompletion)

    def _raise_fatal_or_reject(self, error: openai.APIError) -> None:
        status = getattr(error, "status_code", None)
        where = f"writer: {self.settings.base_url} answered HTTP {status}"
        if status in (401, 403):
            raise WriterFatal(f"{where}: the API key was refused; check the variable named "
                              f"by writer.api_key_env={self.settings.api_key_env}") from None
        if status == 404:
            raise WriterFatal(f"{where}: check writer.base_url (it usually ends in /v1) and "
                              f"writer.model={self.settings.model!r}") from None
        raise ScriptRejected("llm_bad_request",
                             f"HTTP {status}: {server_message(error)[:300]}") from None


def server_message(error: openai.APIError) -> str:
    """The server's own words in an error answer (`error.message` of the JSON body)."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(error.message)
