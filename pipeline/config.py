"""Typed view of the `generate` config, checked before any work starts.

Hydra composes conf/generate.yaml and its groups; `GenerateConfig.check` turns the result
into typed models. Unknown keys and bad values fail here with the dotted key, the value and
what is allowed, so a typo costs a second, not a cluster hour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.splits import DEFAULT_SPLITS, check_splits
from pipeline.storage import Location, check_no_secrets, is_uri, locate
from pipeline.timing import LogNormal, TimingSettings

SUPPORTED_LANGUAGES = ("en", "hu")


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanConfig(Strict):
    speakers: int | list[int] = 2
    domains: list[str] = Field(default_factory=list)
    min_turns: int = Field(8, ge=2)
    max_turns: int = Field(16, ge=2)
    backchannel_rate: float | None = Field(None, ge=0, lt=1, description="null = timing's")
    interruption_rate: float | None = Field(None, ge=0, le=1, description="null = timing's")
    pause_rate: float = Field(0.25, ge=0, le=1)
    overlap_rate: float | None = Field(None, ge=0, le=1, description="null = timing's")
    side_talk_rate: float = Field(0.2, ge=0, le=1)
    next_speaker: dict[str, dict[str, float]] | None = None

    @field_validator("speakers")
    @classmethod
    def _speakers(cls, value: int | list[int]) -> int | list[int]:
        low, high = (value, value) if isinstance(value, int) else tuple(value)
        if not 2 <= low <= high <= 6:
            raise ValueError("must be an int in 2..6 or [min, max] with 2 <= min <= max <= 6")
        return value


class LogNormalConfig(Strict):
    median_s: float = Field(gt=0)
    sigma: float = Field(ge=0)
    max_s: float = Field(gt=0)

    @classmethod
    def of(cls, draw: LogNormal) -> LogNormalConfig:
        return cls(median_s=draw.median_s, sigma=draw.sigma, max_s=draw.max_s)


# The timing defaults are written once, with their sources, in pipeline/timing.py; the
# typed config takes them from there and conf/timing/default.yaml is checked against it
# (tests/test_config_defaults.py).
_TIMING = TimingSettings()


class OffsetConfig(Strict):
    """The signed-offset density of speaker transfers (pipeline/offset_model.py)."""

    overlap_median_s: float = Field(_TIMING.overlap_median_s, gt=0)
    tail_weight: float = Field(_TIMING.tail_weight, gt=0)
    min_s: float = Field(_TIMING.offset_min_s, lt=0)
    max_s: float = Field(_TIMING.offset_max_s, gt=0)


class VarietyConfig(Strict):
    """Gap factors by what came before (pipeline/timing.py `Variety`; 1.0 = off)."""

    question_gap_factor: float = Field(_TIMING.variety.question_gap_factor, gt=0)
    dispreferred_gap_factor: float = Field(_TIMING.variety.dispreferred_gap_factor, gt=0)
    other_gap_factor: float = Field(_TIMING.variety.other_gap_factor, gt=0)


class TimingTargetConfig(Strict):
    """What a run aims for; the plan's quotas follow it (see pipeline/timing.py)."""

    overlap_transfer_ratio: float = Field(_TIMING.targets.overlap_transfer_ratio, ge=0, le=1)
    overlapped_speech_fraction: float = Field(_TIMING.targets.overlapped_speech_fraction,
                                              ge=0, le=1)
    gap_median_s: float | None = Field(
        None, gt=0, description=f"null = {_TIMING.targets.gap_median_s} s")
    backchannel_share: float = Field(_TIMING.targets.backchannel_share, ge=0, lt=1)


class TimingConfig(Strict):
    """The `timing` group: human defaults, or a fitted `profile` (fit-timing) on top."""

    profile: str | None = None
    target: TimingTargetConfig = Field(default_factory=TimingTargetConfig)
    offset: OffsetConfig = Field(default_factory=lambda: OffsetConfig())
    variety: VarietyConfig = Field(default_factory=lambda: VarietyConfig())
    same_speaker_gap: LogNormalConfig = LogNormalConfig.of(_TIMING.same_speaker_gap)
    pause: LogNormalConfig = LogNormalConfig.of(_TIMING.pause)
    interruption_rate: float = Field(_TIMING.interruption_rate, ge=0, le=1)
    speaker_gap_sigma: float = Field(_TIMING.speaker_gap_sigma, ge=0)
    reaction_min_s: float = Field(_TIMING.reaction_min_s, ge=0)
    reaction_max_s: float = Field(_TIMING.reaction_max_s, ge=0)
    backchannel_delay_min_s: float = Field(_TIMING.backchannel_delay_min_s, ge=0)
    backchannel_delay_max_s: float = Field(_TIMING.backchannel_delay_max_s, ge=0)
    min_self_gap_s: float = Field(_TIMING.min_self_gap_s, ge=0)
    tail_s: float = Field(_TIMING.tail_s, ge=0)


class WriterConfig(BaseModel):
    """`name` picks the writer; its other keys are checked by pipeline.writers.settings."""

    model_config = ConfigDict(extra="allow")
    name: Literal["offline", "openai", "vllm"] = "offline"

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def generator(self) -> str:
        """The `generator` recorded on every row (writer label or `name:model`)."""
        from pipeline.writers.settings import writer_settings

        return writer_settings(self.model_dump()).generator


class AsrLanguageConfig(Strict):
    """`checks.asr.languages.<code>`: a language's own model / metric / bound (null = the
    top-level `checks.asr` value)."""

    model: str | None = None
    metric: Literal["wer", "cer"] | None = None
    max_error: float | None = Field(None, ge=0)


class AsrCheckConfig(Strict):
    """The ASR gate after speak (pipeline/asr_check.py); see conf/checks/default.yaml."""

    enabled: bool = False
    model: str = Field("tiny.en", description="packaged model name or CTranslate2 folder")
    metric: Literal["wer", "cer"] = "wer"
    max_error: float = Field(0.15, ge=0, description="per utterance, after normalisation")
    languages: dict[str, AsrLanguageConfig] = Field(default_factory=dict)
    min_words: int = Field(3, ge=0, description="shorter utterances are scored, not judged")
    retries: int = Field(1, ge=0, description="resyntheses with other voices before a reject")
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(2, ge=0, description="CTranslate2 threads per actor; 0 = all")
    beam_size: int = Field(1, ge=1)
    gap_s: float = Field(1.0, gt=0, description="silence between packed utterances, seconds")
    workers: int | None = Field(None, ge=1, description="actors; null = ray.speak_workers")
    num_cpus: float = Field(0.25, gt=0, description="Ray CPUs reserved per actor")
    models_dir: str = Field("~/.cache/duplexsynth/models",
                            description="where split packaged models are assembled")


class ChecksConfig(Strict):
    """The validate stage (pipeline/script_check.py): what makes a script a reject, and the
    ASR gate after speak (`asr`)."""

    turn_tolerance: float = Field(0.5, ge=0, description="kind=turn count within target*(1±t)")
    phenomena: bool = Field(True, description="every requested phenomenon appears at least once")
    language_id: bool = Field(True, description="lingua must detect the scenario's language")
    near_duplicate_threshold: float | None = Field(
        0.8, gt=0, le=1, description="MinHash-LSH Jaccard threshold; null disables")
    asr: AsrCheckConfig = Field(default_factory=AsrCheckConfig)


class TtsConfig(BaseModel):
    """`name` picks the backend; every other key goes to its constructor."""

    model_config = ConfigDict(extra="allow")
    name: Literal["espeak", "coqui", "corpus", "piper"] = "espeak"
    per_language: dict[str, Literal["espeak", "coqui", "piper"]] | None = Field(
        None, description="{language: backend}; `name`'s backend gets this node's options")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def backends(self) -> list[str]:
        return list(dict.fromkeys((self.per_language or {}).values())) or [self.name]


class LabelsConfig(Strict):
    frame_s: float = Field(0.08, gt=0)


class BudgetConfig(Strict):
    dialogues: int | None = Field(40, ge=1)
    hours: float | None = Field(None, gt=0)
    tolerance: float = Field(0.05, gt=0, lt=1, description="hours mode: allowed deviation")
    max_tokens: int | None = Field(None, ge=1, description="LLM tokens over all runs")
    max_usd: float | None = Field(None, gt=0, description="LLM cost over all runs, US dollars")


class SinkConfig(Strict):
    dir: str = Field("outputs/dataset", description="a folder, or a URI: s3://, gs://, file://")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec filesystem options for a URI "
        "(endpoint_url, region_name, ...); credentials only from the environment")
    shard_dialogues: int = Field(8, ge=1, description="scenario indices per shard")
    sample_rate: int = 16000
    flac_subtype: Literal["PCM_16", "PCM_24"] = "PCM_16"
    verify_on_resume: bool = Field(True, description="check finished shards before a rerun "
                                   "trusts them; bad ones are quarantined (shard_verify.py)")
    shared: bool = Field(False, description="runs on one dir split the shards (run_lock.py)")
    claim_shards: int = Field(4, ge=1, description="sink.shared: shards claimed per round")
    lock_stale_s: float = Field(60.0, gt=0, description="seconds without a heartbeat before "
                                "a run on another host counts as dead")

    @field_validator("storage_options")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_no_secrets(value)
        return value

    @field_validator("sample_rate")
    @classmethod
    def _rate(cls, value: int) -> int:
        if value not in (8000, 16000, 22050, 24000, 44100, 48000):
            raise ValueError("must be one of 8000, 16000, 22050, 24000, 44100, 48000")
        return value


class RayConfig(Strict):
    address: str | None = None
    num_cpus: int | None = None
    speak_workers: int = Field(1, ge=1)
    batch_size: int = Field(4, ge=1)


class ViewSettings(Strict):
    """`generate viewer.enabled=true`: the static viewer of the first dialogues beside the card."""

    enabled: bool = False
    dialogues: int = Field(5, ge=1, description="pages for the first N dialogues")
    dir: str = Field("viewer", description="folder inside sink.dir")
    audio: Literal["flac", "ogg"] = Field("flac", description="ogg: Vorbis, ~1/4 the size")


class ViewOutput(Strict):
    dir: str | None = None


class ViewJobConfig(Strict):
    """`duplexsynth view`: conf/view.yaml."""

    dataset: str | None = None
    out: ViewOutput = Field(default_factory=ViewOutput)
    split: str | None = Field(None, description="passed to the reader once it reads splits")
    limit: int | None = Field(50, ge=1, description="first N dialogues (null = all)")
    ids: list[str] = Field(default_factory=list, description="these dialogues (wins over limit)")
    px_per_s: Literal[20, 40, 80, 160, 320] = 80
    audio: Literal["flac", "ogg"] = Field("flac", description="ogg: Vorbis, ~1/4 the size")


class VerifyJobConfig(Strict):
    """`duplexsynth verify`: conf/verify.yaml (pipeline/verify_job.py)."""

    dataset: str | None = None
    split: str | None = Field(None, description="one split; null = every split")
    out: str | None = Field(None, description="path of the JSON report file (optional)")
    audio: bool = Field(True, description="decode every audio cell, compare durations")
    labels: bool = Field(True, description="duplex label invariants (labels/invariants.py)")
    tolerance_s: float = Field(0.002, ge=0, description="duration mismatch allowed (s)")
    max_problems: int = Field(5, ge=1, description="problems listed per shard (all counted)")

    @classmethod
    def check(cls, raw: dict[str, Any]) -> VerifyJobConfig:
        try:
            config = cls.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(explain(error)) from None
        if not config.dataset:
            raise ConfigError("dataset: missing; set dataset=<folder written by generate>")
        return config


class GenerateConfig(Strict):
    seed: int = 1234
    languages: list[str] = Field(default_factory=lambda: list(SUPPORTED_LANGUAGES))
    plan: PlanConfig = Field(default_factory=PlanConfig)
    writer: WriterConfig = Field(default_factory=WriterConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
    timing: TimingConfig = Field(default_factory=TimingConfig)
    augment: dict[str, Any] = Field(default_factory=dict, description="see pipeline/augment.py")
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    sink: SinkConfig = Field(default_factory=SinkConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    splits: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SPLITS),
        description="split name -> share of the budget (sum 1); see pipeline/splits.py")
    viewer: ViewSettings = Field(default_factory=ViewSettings)
    progress: bool = True

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        unknown = [lang for lang in value if lang not in SUPPORTED_LANGUAGES]
        if unknown or not value:
            raise ValueError(
                f"unsupported {unknown or 'empty list'}; allowed: {list(SUPPORTED_LANGUAGES)}"
            )
        return value

    @classmethod
    def check(cls, raw: dict[str, Any]) -> GenerateConfig:
        try:
            config = cls.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(explain(error)) from None
        if config.plan.min_turns > config.plan.max_turns:
            raise ConfigError(
                f"plan.min_turns ({config.plan.min_turns}) is above plan.max_turns "
                f"({config.plan.max_turns}); lower min_turns or raise max_turns"
            )
        if config.budget.dialogues is None and config.budget.hours is None:
            raise ConfigError("budget: set budget.dialogues=N or budget.hours=H")
        try:
            config.splits = check_splits(config.splits)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if config.tts.name == "corpus" and config.tts.options.get("language") is None:
            if len(config.languages) != 1:
                raise ConfigError(f"tts.language: unset and languages={config.languages} has "
                                  "more than one; a corpus has one language: set "
                                  "languages=[<its language>]")
            config.tts.language = config.languages[0]
        _check_backend_options(config.tts, config.languages, config.plan)
        _check_split_voices(config)
        _check_augment(config.augment)
        _check_timing(config.timing)
        _check_writer_options(config)
        _check_asr(config)
        return config

    @property
    def output_dir(self) -> Path | str:
        """`sink.dir`: an absolute local Path, or the URI as given (pipeline/storage.py)."""
        return self.sink_location.url if is_uri(self.sink.dir) and \
            not self.sink_location.is_local else Path(self.sink_location.root)

    @property
    def sink_location(self) -> Location:
        return locate(self.sink.dir, self.sink.storage_options)


def explain(error: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line: `<prefix><key>: <what is wrong> (got <value>)` per bad
    key, joined with "; ", so the user sees every bad key at once and where it lives.
    `prefix` is the group a job validated on its own (`card.`, `mix.`)."""
    lines = []
    for item in error.errors():
        key = prefix + ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key; remove it or check its spelling")
        elif item["type"] == "missing":
            lines.append(f"{key}: missing; set {key}=<value>")
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def _check_timing(timing: TimingConfig) -> None:
    """Resolve and load the profile now (workers run elsewhere) so a bad path fails early."""
    from pipeline.timing import load_profile

    for low, high in (("reaction_min_s", "reaction_max_s"),
                      ("backchannel_delay_min_s", "backchannel_delay_max_s")):
        if getattr(timing, low) > getattr(timing, high):
            raise ConfigError(f"timing.{low} ({getattr(timing, low)}) is above timing.{high} "
                              f"({getattr(timing, high)}); swap or fix them")
    if timing.profile:
        timing.profile = str(Path(timing.profile).expanduser().resolve())
        try:
            load_profile(timing.profile)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    else:
        try:  # the offset density must be solvable from the targets
            TimingSettings.from_config(timing.model_dump())
        except ValueError as error:
            raise ConfigError(str(error)) from None


def _check_backend_options(tts: TtsConfig, languages: list[str], plan: PlanConfig) -> None:
    """Build the backend (no model is loaded), ask it for each language's voices and for
    as many distinct voices as the largest dialogue has speakers, so a bad option, a
    language the backend cannot speak or too few voices fail before any work."""
    import random

    from pipeline.tts import backend_from_config

    most = plan.speakers if isinstance(plan.speakers, int) else max(plan.speakers)
    try:
        if tts.model_extra and tts.model_extra.get("voices_dir"):  # workers run elsewhere
            tts.model_extra["voices_dir"] = str(Path(tts.model_extra["voices_dir"])
                                                .expanduser().resolve())
        backend = backend_from_config(tts.model_dump())
        check = getattr(backend, "check_languages", None)
        if check is not None:
            check(languages)
        for language in languages:
            backend.voices(language)
            backend.pick_voices(language, most, random.Random(0))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"tts ({tts.name}): {error}; see conf/tts/{tts.name}.yaml") from None


def _check_split_voices(config: GenerateConfig) -> None:
    """Every split needs voices of its own (pipeline/splits.py): fail now, not in a worker."""
    from pipeline.schema import voice_id
    from pipeline.splits import voice_pools, voices_needed
    from pipeline.tts import backend_from_config

    tts = config.tts.model_dump()
    try:
        voice_pools(backend_from_config(tts).voices, config.languages, config.splits,
                    config.seed, voices_needed(tts, config.plan.speakers), voice_id)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None


def _check_augment(augment: dict[str, Any]) -> None:
    from pipeline.augment import AugmentSettings, check_settings

    try:
        check_settings(AugmentSettings.from_config(augment))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{error}; see conf/augment/default.yaml") from None


def _check_writer_options(config: GenerateConfig) -> None:
    """Validate the writer's keys; make its paths absolute (Ray workers run elsewhere)."""
    from pipeline.writers.settings import writer_settings

    try:
        settings = writer_settings(config.writer.model_dump())
    except ValueError as error:
        raise ConfigError(f"{error}; see conf/writer/{config.writer.name}.yaml") from None
    for key in ("cache_dir", "prompts_dir"):
        value = getattr(settings, key, None)
        if value is not None:
            setattr(config.writer, key, str(Path(value).expanduser().resolve()))


def _check_asr(config: GenerateConfig) -> None:
    """Resolve each language's model now (a packaged split model is assembled once), load it
    to see that it is CTranslate2 Whisper and speaks the language: one line, before work."""
    asr = config.checks.asr
    if not asr.enabled:
        return
    from pipeline.asr_gate import AsrSettings
    from pipeline.whisper_models import ModelError, is_multilingual, packaged, resolve_model

    asr.models_dir = str(Path(asr.models_dir).expanduser().resolve())
    unknown = sorted(set(asr.languages) - set(SUPPORTED_LANGUAGES))
    if unknown:
        raise ConfigError(f"checks.asr.languages: unknown {unknown}; allowed: "
                          f"{list(SUPPORTED_LANGUAGES)}")
    if not packaged(asr.model):  # workers run elsewhere: absolute folders
        asr.model = str(Path(asr.model).expanduser().resolve())
    for entry in asr.languages.values():
        if entry.model and not packaged(entry.model):
            entry.model = str(Path(entry.model).expanduser().resolve())
    settings = AsrSettings.from_config(asr.model_dump())
    multilingual: dict[str, bool] = {}
    for language in config.languages:
        gate = settings.for_language(language)
        key = f"checks.asr.languages.{language}.model" if (
            asr.languages.get(language) and asr.languages[language].model) else "checks.asr.model"
        try:
            path = resolve_model(gate.model, asr.models_dir)
            if str(path) not in multilingual:
                multilingual[str(path)] = is_multilingual(path)
        except ModelError as error:
            raise ConfigError(f"{key}={gate.model}: {error}") from None
        if language != "en" and not multilingual[str(path)]:
            raise ConfigError(f"{key}={gate.model}: an English-only Whisper model cannot check "
                              f"language {language!r}; set checks.asr.languages.{language}.model="
                              "base (or a multilingual folder)")
