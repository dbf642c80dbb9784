"""Prompts for LLM writers, rendered from the Jinja2 templates in prompts/.

A prompt set is one folder with `VERSION` and one sub-folder per language holding
`system.j2`, `scenario.j2`, `repair.j2` and `example.json` (a brief and its script, sent as
the one few-shot turn). `version` names the template text exactly (`VERSION` plus a hash of
every file), so each row's provenance says which prompt wrote it and a template edit changes
the response-cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import jinja2

from pipeline import paths
from pipeline.schema import DialogueScript, ScenarioSpec

PROMPTS_DIR = paths.PROMPTS_DIR
TEMPLATES = ("system.j2", "scenario.j2", "repair.j2", "example.json")
Message = dict[str, str]


def scenario_brief(scenario: ScenarioSpec) -> dict:
    """What the writer needs to know of a scenario: no seed, no voices, no generator."""
    return {
        "scenario_id": scenario.id,
        "language": scenario.language,
        "domain": scenario.domain,
        "situation": scenario.situation,
        "speakers": [{"id": s.id, "name": s.name, "role": s.role, "persona": s.persona}
                     for s in scenario.speakers],
        "assistant": scenario.assistant,
        "target_turns": scenario.target_turns,
        "phenomena": scenario.phenomena.model_dump(),
    }


@lru_cache(maxsize=1)
def _base_schema() -> str:
    """pydantic rebuilds the schema in tens of ms: once per process, as JSON text."""
    return json.dumps(DialogueScript.model_json_schema())


# Bounds on the short strings and lists of a turn: a grammar-constrained small model otherwise
# fills max_tokens with one endless value.
ID_CHARS = 64
MAX_PAUSES = 8


@lru_cache(maxsize=64)
def _bounded_schema_text(turn_chars: int | None, max_turns: int | None) -> str:
    schema = json.loads(_base_schema())
    if turn_chars is not None:
        turn = schema["$defs"]["Turn"]["properties"]
        turn["text"].update(minLength=1, maxLength=turn_chars)
        for key in ("speaker", "addressee"):
            turn[key]["maxLength"] = ID_CHARS
        turn["pauses"]["maxItems"] = MAX_PAUSES
        for key in ("scenario_id", "language"):
            schema["properties"][key]["maxLength"] = ID_CHARS
    if max_turns is not None:
        schema["properties"]["turns"].update(minItems=2, maxItems=max_turns)
    return json.dumps(schema)


def script_schema(turn_chars: int | None = None, max_turns: int | None = None) -> dict:
    """The DialogueScript JSON schema that structured output asks the server to follow.

    `turn_chars` bounds every turn's text (`maxLength`, characters) and the id strings;
    `max_turns` bounds the number of turns (`maxItems`). Servers that compile the schema into
    a grammar (llama.cpp, vLLM's xgrammar) then cannot run away inside one value.
    """
    return json.loads(_bounded_schema_text(turn_chars, max_turns))


@dataclass(frozen=True)
class PromptSet:
    root: Path = PROMPTS_DIR

    @cached_property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(p.name for p in self.root.iterdir()
                            if p.is_dir() and (p / "system.j2").exists()))

    @cached_property
    def version(self) -> str:
        digest = hashlib.sha256()
        for language in self.languages:
            for name in TEMPLATES:
                digest.update(f"{language}/{name}\0".encode())
                digest.update((self.root / language / name).read_bytes())
        label = (self.root / "VERSION").read_text(encoding="utf-8").strip()
        return f"{label}+{digest.hexdigest()[:10]}"

    @cached_property
    def _env(self) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.root)), undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False, autoescape=False,
        )

    def _check(self, language: str) -> None:
        if language not in self.languages:
            raise ValueError(f"prompts: no templates for language {language!r} in {self.root}; "
                             f"have {self.languages}")

    def _render(self, language: str, name: str, **values: object) -> str:
        self._check(language)
        return self._env.get_template(f"{language}/{name}").render(**values).strip()

    def _example(self, language: str) -> dict:
        return json.loads((self.root / language / "example.json").read_text(encoding="utf-8"))

    def _user(self, language: str, brief: dict) -> str:
        brief_json = json.dumps(brief, ensure_ascii=False, indent=1)
        return self._render(language, "scenario.j2", brief=brief, brief_json=brief_json)

    def messages(self, scenario: ScenarioSpec, few_shot: int = 1,
                 turn_chars: int | None = None) -> list[Message]:
        """system, `few_shot` example user/assistant pairs, then the scenario (OpenAI chat
        format). `turn_chars` bounds the turn text in the schema the system prompt shows."""
        self._check(scenario.language)
        return [*self._preamble(scenario.language, few_shot, turn_chars),
                {"role": "user", "content": self._user(scenario.language,
                                                       scenario_brief(scenario))}]

    @lru_cache(maxsize=16)  # noqa: B019 - a handful of languages, PromptSet lives per run
    def _preamble(self, language: str, few_shot: int = 1, turn_chars: int | None = None
                  ) -> tuple[Message, ...]:
        schema = _bounded_schema_text(turn_chars, None)
        system = {"role": "system",
                  "content": self._render(language, "system.j2", schema=schema)}
        if few_shot < 1:
            return (system,)
        example = self._example(language)
        return (
            system,
            {"role": "user", "content": self._user(language, example["brief"])},
            {"role": "assistant",
             "content": json.dumps(example["script"], ensure_ascii=False)},
        )

    def repair(self, language: str, error: str) -> Message:
        return {"role": "user", "content": self._render(language, "repair.j2", error=error)}
