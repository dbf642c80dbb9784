"""The validate stage: consistency checks every writer's script must pass.

Small defects are repaired (a pause index past the end of a turn is dropped); anything that
would make the audio or the labels wrong rejects the script with a short reason that
run.json counts. `check_script` is pure (one script, one scenario). `ScriptChecker` adds the
checks that need a model or memory of the run: language identification with lingua (offline
n-gram models shipped in the wheel) and near-duplicate detection with datasketch MinHash LSH
over every script accepted so far, including those in finished shards of earlier runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.rows import Deferred, Outcome
from pipeline.schema import DialogueScript, ScenarioSpec, Turn

# Languages lingua may answer with: ours plus the ones an LLM most often drifts into.
LANGUAGE_ID_CANDIDATES = ("en", "hu", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "sk",
                          "ro", "hr", "sl", "ru", "uk", "tr", "fi", "sv", "da", "et", "bg")


class ScriptRejected(ValueError):
    """The script cannot be used; `reason` is the counted category (pipeline/rows.py)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def outcome(self) -> Outcome:
        """The row's outcome (Rejected or Deferred): its `to_dict()` is the columns to set."""
        return Outcome.parse(self.reason, self.detail)


class ScriptDeferred(ScriptRejected):
    """Not a bad script but no script yet (budget spent, endpoint down): retry on rerun.

    `reason` is the stored form (`deferred:<reason>`); the driver never writes a shard holding
    such a row, so the next run of the same config picks the whole shard up again.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(Deferred(reason).stored(), detail)


class WriterStopped(RuntimeError):
    """The endpoint refuses every request (bad key, unknown model, context too small): the
    run stops with this one-line message instead of rejecting row after row. The rows in
    flight are deferred (rows.WRITER_STOPPED), so their shards are redone by a rerun."""


def turn_bounds(target_turns: int, tolerance: float) -> tuple[int, int]:
    """Accepted number of kind="turn" turns for a scenario asking for `target_turns`."""
    low = max(2, math.floor(target_turns * (1 - tolerance)))
    return low, max(low, math.ceil(target_turns * (1 + tolerance)))


def phenomena_counts(script: DialogueScript, assistant: str | None) -> dict[str, int]:
    """How many of each phenomenon the script holds (same meanings as the quotas)."""
    side_talk = sum(1 for t in script.turns if assistant and t.speaker != assistant
                    and t.addressee not in ("all", assistant))
    return {
        "backchannels": sum(1 for t in script.turns if t.kind == "backchannel"),
        "interruptions": sum(1 for t in script.turns if t.interrupts),
        "overlaps": sum(1 for t in script.turns if t.overlap),
        "pauses": sum(len(t.pauses) for t in script.turns),
        "side_talk": side_talk,
    }


def check_script(
    script: DialogueScript,
    scenario: ScenarioSpec,
    turn_tolerance: float | None = None,
    phenomena: bool = False,
) -> DialogueScript:
    """Repair small defects or raise ScriptRejected; returns the repaired script.

    `turn_tolerance` bounds the kind="turn" count to target_turns * (1 ± tolerance);
    `phenomena` requires each phenomenon with a quota above zero to appear at least once.
    """
    speakers = {s.id for s in scenario.speakers}
    if script.language != scenario.language:
        raise ScriptRejected("wrong_language",
                             f"script is {script.language!r}, scenario {scenario.language!r}")
    if script.scenario_id != scenario.id:
        raise ScriptRejected("wrong_scenario",
                             f"script is for {script.scenario_id!r}, expected {scenario.id!r}")
    if not script.turns:
        raise ScriptRejected("empty_script", "no turns")
    repaired: list[Turn] = []
    for index, turn in enumerate(script.turns):
        if turn.speaker not in speakers:
            raise ScriptRejected("unknown_speaker",
                                 f"turn {index} speaker {turn.speaker!r} not in {sorted(speakers)}")
        if not turn.text.strip():
            raise ScriptRejected("empty_turn", f"turn {index} has no text")
        if turn.addressee != "all" and turn.addressee not in speakers:
            turn = turn.model_copy(update={"addressee": "all"})
        words = len(turn.words)
        pauses = sorted({p for p in turn.pauses if 0 <= p < words - 1})
        if index == 0 and (turn.interrupts or turn.overlap or turn.kind == "backchannel"):
            turn = turn.model_copy(update={"interrupts": False, "overlap": False, "kind": "turn"})
        repaired.append(turn.model_copy(update={"text": turn.text.strip(), "pauses": pauses}))
    turns = sum(1 for t in repaired if t.kind == "turn")
    if turns < 2:
        raise ScriptRejected("too_few_turns", "fewer than two turns")
    result = script.model_copy(update={"turns": repaired})
    if turn_tolerance is not None:
        low, high = turn_bounds(scenario.target_turns, turn_tolerance)
        if not low <= turns <= high:
            raise ScriptRejected("turn_count", f"{turns} turns of kind 'turn', scenario asks "
                                 f"for {scenario.target_turns} (accepted {low}..{high})")
    if phenomena:
        have = phenomena_counts(result, scenario.assistant)
        asked = scenario.phenomena.model_dump()
        missing = [name for name, quota in asked.items() if quota > 0 and have[name] == 0]
        if missing:
            raise ScriptRejected("missing_phenomena",
                                 "none of " + ", ".join(f"{m} (asked {asked[m]})" for m in missing))
    return result


def script_text(script: DialogueScript) -> str:
    return " ".join(turn.text for turn in script.turns)


def shingles(text: str, size: int = 3) -> set[str]:
    """Word n-grams of the lower-cased text without punctuation: what MinHash compares."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < size:
        return {" ".join(words)}
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


class ScriptChecker:
    """All checks of the validate stage; one instance sees the whole run (single actor)."""

    NUM_PERM = 128

    def __init__(self, checks: dict | None = None) -> None:
        checks = checks or {}
        self.turn_tolerance: float | None = checks.get("turn_tolerance", 0.5)
        self.phenomena: bool = checks.get("phenomena", True)
        self.language_id: bool = checks.get("language_id", True)
        self.threshold: float | None = checks.get("near_duplicate_threshold", 0.8)
        self._detector = None
        self._lsh: dict[str | None, object] = {}

    def check(self, script: DialogueScript, scenario: ScenarioSpec,
              scope: str | None = None) -> DialogueScript:
        """Raise ScriptRejected or return the repaired script and remember it for dedup.
        `scope` (a split): near-duplicates are looked up among that scope's scripts only
        (one stream carries every split; the sink checks across splits, WrittenTwins)."""
        script = check_script(script, scenario, self.turn_tolerance, self.phenomena)
        if self.language_id:
            detected = self.detect_language(script_text(script))
            if detected is not None and detected != scenario.language:
                raise ScriptRejected("wrong_language", f"text reads as {detected!r}, "
                                     f"scenario is {scenario.language!r}")
        if self.threshold is not None:
            signature = self._signature(script_text(script))
            index = self.lsh(scope)
            twins = index.query(signature)
            if twins:
                raise ScriptRejected("near_duplicate", f"too close to {sorted(twins)[0]}")
            index.insert(script.scenario_id, signature)
        return script

    def detect_language(self, text: str) -> str | None:
        """ISO 639-1 code of the language lingua finds most likely, None when undecided."""
        found = self.detector.detect_language_of(text)
        return None if found is None else found.iso_code_639_1.name.lower()

    def remember(self, scripts: Iterable[DialogueScript], scope: str | None = None) -> int:
        """Add already accepted scripts (e.g. from finished shards) to the duplicate index."""
        count = 0
        if self.threshold is None:
            return count
        index = self.lsh(scope)
        for script in scripts:
            if script.scenario_id not in index:
                index.insert(script.scenario_id, self._signature(script_text(script)))
                count += 1
        return count

    def remember_shards(self, paths: Iterable[Path | str], scope: str | None = None) -> int:
        """Seed the index from the `script` column of finished dialogue shards (resume)."""
        from pipeline.features import decode_columns
        from pipeline.sink import read_table

        scripts = (DialogueScript.model_validate(decode_columns({"script": value})["script"])
                   for path in paths
                   for value in read_table(path, columns=["script"]).column("script")
                   .to_pylist())
        return self.remember(scripts, scope)

    @property
    def detector(self):
        if self._detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            codes = [IsoCode639_1.from_str(code) for code in LANGUAGE_ID_CANDIDATES]
            self._detector = (LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                              .with_low_accuracy_mode().build())
        return self._detector

    def lsh(self, scope: str | None = None):  # noqa: ANN201 - datasketch.MinHashLSH
        if scope not in self._lsh:
            from datasketch import MinHashLSH

            self._lsh[scope] = MinHashLSH(threshold=self.threshold, num_perm=self.NUM_PERM)
        return self._lsh[scope]

    def _signature(self, text: str):  # noqa: ANN202 - datasketch.MinHash
        return signature(text, self.NUM_PERM)


def signature(text: str, num_perm: int = ScriptChecker.NUM_PERM):  # noqa: ANN201
    """The MinHash of a script's text (word 3-shingles), as the near-duplicate index keeps it."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, seed=1)
    minhash.update_batch([s.encode() for s in shingles(text)])
    return minhash


class WrittenTwins:
    """Near-duplicates across the splits of one stream, among *written* dialogues.

    A run judged split B's scripts against the shards split A had written; with one stream
    for every split, the validate stage sees B's rows before A's shards are decided (spares,
    budget drops, deferred shards). So the validator checks within a split and the sink,
    which sees the rows in stream order, checks a row against earlier splits' written
    dialogues: the same rows are rejected `near_duplicate` as with one stream per split."""

    def __init__(self, threshold: float) -> None:
        from datasketch import MinHashLSH

        self.index = MinHashLSH(threshold=threshold, num_perm=ScriptChecker.NUM_PERM)
        self.split_of: dict[str, str] = {}

    def add(self, split: str, script_json: str) -> None:
        script = DialogueScript.model_validate_json(script_json)
        if script.scenario_id not in self.split_of:
            self.index.insert(script.scenario_id, signature(script_text(script)))
            self.split_of[script.scenario_id] = split

    def twin(self, split: str, script_json: str) -> str | None:
        """The first written dialogue of another split too close to this script, or None."""
        script = DialogueScript.model_validate_json(script_json)
        twins = [key for key in self.index.query(signature(script_text(script)))
                 if self.split_of[key] != split]
        return sorted(twins)[0] if twins else None
