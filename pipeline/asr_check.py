"""The ASR gate as a stage between speak and assemble (`checks.asr`, off by default).

Every utterance is checked as synthesized, before mixing (crosstalk does not count), the
assistant's and the users' alike. A dialogue with a failing utterance is resynthesised up to
`retries` times: each speaker with a failing utterance gets another voice of the backend's
registry (same gender and age band where the registry has one; the speaker keeps one voice
in the whole dialogue, so `voice_id` stays true) and all of that speaker's turns are
synthesized again. Still failing: rejected as `asr_mismatch`, counted in run.json. The stage
only uses the TTS interface (`voices`, `synthesize`), so it works with any backend; the
backend is built on this worker only when a retry needs it.

Adds to the row: `asr` (JSON: per-turn outcome, retries, model provenance), which the
assemble stage turns into columns (`pipeline.asr_gate.asr_columns` / `asr_summary`).
"""

from __future__ import annotations

import json
import pickle
import random
from typing import Any

from pipeline.asr_gate import (
    ASR_MISMATCH,
    AsrSettings,
    UtteranceCheck,
    WhisperTranscriber,
    judge,
)
from pipeline.rows import Rejected
from pipeline.schema import DialogueScript, ScenarioSpec, Utterance
from pipeline.stages import Row, RowStage
from pipeline.tts.base import SynthesisError


class AsrStage(RowStage):
    """Holds one Whisper model per model folder on this worker (Ray: an actor pool of
    `checks.asr.workers`, default `ray.speak_workers`, each `checks.asr.num_cpus`)."""

    stage = "asr"

    def setup(self) -> None:
        from pipeline.whisper_models import model_sha256, resolve_model

        self.settings = AsrSettings.from_config(self.config["checks"]["asr"])
        self.models: dict[str, WhisperTranscriber] = {}
        self.provenance: dict[str, dict] = {}
        self.backend: Any = None
        for language in self.config["languages"]:
            gate = self.settings.for_language(language)
            path = resolve_model(gate.model, self.settings.models_dir)
            if str(path) not in self.models:
                self.models[str(path)] = WhisperTranscriber(path, self.settings)
            self.provenance[language] = {"model": gate.model, "path": str(path),
                                         "sha256": model_sha256(path), "metric": gate.metric,
                                         "max_error": gate.max_error}

    def check(self, utterances: list[Utterance], script: DialogueScript,
              language: str) -> list[UtteranceCheck]:
        gate = self.settings.for_language(language)
        transcriber = self.models[self.provenance[language]["path"]]
        heard = transcriber.transcribe_packed(utterances, language)
        texts = [script.turns[u.turn].text for u in utterances]
        return judge(texts, heard, utterances, language, gate, self.settings.min_words)

    def process(self, row: Row) -> Row:
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        script = DialogueScript.model_validate_json(row["script"])
        utterances: list[Utterance] = pickle.loads(row["utterances"])
        checks = self.check(utterances, script, scenario.language)
        retries = 0
        while retries < self.settings.retries and not all(c.passed for c in checks):
            retries += 1
            failing = sorted({c.speaker for c in checks if not c.passed})
            try:
                scenario, utterances = self.revoice(scenario, script, utterances, failing,
                                                    retries)
            except SynthesisError:
                break
            checks = self.check(utterances, script, scenario.language)
        outcome = {"turns": [c.to_dict() for c in checks], "retries": retries,
                   "gate": self.provenance[scenario.language]}
        out = {**row, "asr": json.dumps(outcome, ensure_ascii=False)}
        if retries:  # the voices actually used
            out.update(scenario=scenario.model_dump_json(),
                       utterances=pickle.dumps(utterances, protocol=5))
        if not all(c.passed for c in checks):
            return {**out, "utterances": None, **Rejected(ASR_MISMATCH).to_dict()}
        return out

    def revoice(self, scenario: ScenarioSpec, script: DialogueScript,
                utterances: list[Utterance], speakers: list[str],
                attempt: int) -> tuple[ScenarioSpec, list[Utterance]]:
        """New voices for `speakers` and their turns synthesized again with them."""
        if self.backend is None:
            from pipeline.tts import backend_from_config

            self.backend = backend_from_config(self.config["tts"])
            self.backend.setup()
        rng = random.Random(f"{scenario.seed}:asr-retry:{attempt}")
        taken = {str(s.voice.get("id", "")) for s in scenario.speakers}
        registry = self.backend.voices(scenario.language)
        speakers_out = []
        for spec in scenario.speakers:
            if spec.id in speakers:
                voice = other_voice(spec.voice, registry, taken, rng)
                taken.add(str(voice.get("id", "")))
                spec = spec.model_copy(update={"voice": voice})
            speakers_out.append(spec)
        scenario = scenario.model_copy(update={"speakers": speakers_out})
        redone = list(utterances)
        for index, utterance in enumerate(utterances):
            if utterance.speaker in speakers:
                turn = script.turns[utterance.turn]
                redone[index] = self.backend.synthesize(
                    turn.text, scenario.speaker(turn.speaker).voice, utterance.turn,
                    turn.speaker)
        return scenario, redone


def other_voice(current: dict, registry: list[dict], taken: set[str],
                rng: random.Random) -> dict:
    """A registry voice not in `taken`, preferring the current one's gender and age band."""
    free = [v for v in registry if str(v.get("id", "")) not in taken]
    if not free:
        raise SynthesisError("no other voice left in the registry for an ASR retry")
    alike = [v for v in free if all(v.get(k) == current.get(k) for k in ("gender", "age_band"))]
    same_gender = [v for v in free if v.get("gender") == current.get("gender")]
    return dict(rng.choice(alike or same_gender or free))
