"""The timing model: how long people leave between, and overlap across, turns.

Two sources, one interface. The human defaults (DESIGN section 5) draw the signed offset of
every speaker transfer from one density that is continuous through zero
(`pipeline.offset_model.JohnsonSU`, mode near +200 ms, overlaps as its left tail), solved
from the run's targets; the script's overlap requests condition the draw on its sign
without cutting a hole. A fitted profile (`duplexsynth fit-timing`, see
`pipeline.fit_timing`) carries a `SegmentModel` learnt from the corpus's speech segments;
the arranger then places segments the way the corpus does (`pipeline.timeline_segments`).
Each speaker of a dialogue gets a base-gap factor, so some people answer faster than
others, and the gap follows what came before (`Variety`). All values are seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from pipeline.offset_model import JohnsonSU, SignedKde
from pipeline.segment_model import SegmentModel

PROFILE_FORMAT = "duplexsynth-timing-profile/2"


@dataclass(frozen=True)
class LogNormal:
    """A log-normal draw given by its median (seconds) and sigma (of the log)."""

    median_s: float
    sigma: float
    max_s: float = 10.0

    def draw(self, rng: random.Random) -> float:
        return min(self.max_s, self.median_s * math.exp(rng.gauss(0.0, self.sigma)))


@dataclass(frozen=True)
class TimingTargets:
    """What a run aims for (run.json `timing.target`); see `pipeline.timing_stats`.

    `definition` says how transfers are counted: "turns" (backchannels are not transfers,
    the human-study convention) or "segments" (every segment counts, as for a corpus
    without backchannel labels, e.g. a fitted RTTM).
    """

    overlap_transfer_ratio: float = 0.30
    overlapped_speech_fraction: float = 0.05
    gap_median_s: float = 0.22
    backchannel_share: float = 0.18
    definition: str = "turns"

    def as_dict(self) -> dict[str, float]:
        return {
            "overlap_transfer_ratio": self.overlap_transfer_ratio,
            "overlapped_speech_fraction": self.overlapped_speech_fraction,
            "gap_median_s": self.gap_median_s,
            "backchannel_share": self.backchannel_share,
        }


@dataclass(frozen=True)
class Variety:
    """Conversation-level effects on the gap before a turn (factors on the drawn gap).

    Each applies only where the script carries the information; 1.0 switches one off.
    """

    # a question gets a faster answer: responses to questions cluster at 0-200 ms
    # (Stivers et al. 2009, PNAS 106:10587; Roberts, Torreira & Levinson 2015, Front.
    # Psychol. 6:509); the script marks a question by its final "?"
    question_gap_factor: float = 0.8
    # dispreferred answers (refusals, "no", "unfortunately") come later than preferred
    # ones (Kendrick & Torreira 2015, Discourse Processes 52:255); the script marks them
    # by their first words (`DISPREFERRED_OPENINGS`)
    dispreferred_gap_factor: float = 2.0
    # other transfers: set so that the run's median gap stays on its target
    other_gap_factor: float = 1.1


DISPREFERRED_OPENINGS = {
    "en": ("no", "no,", "unfortunately", "sorry", "i'm afraid", "actually", "well,"),
    "hu": ("nem", "nem,", "sajnos", "sajnálom", "attól tartok", "hát,"),
}


def is_dispreferred(text: str) -> bool:
    head = text.lower().lstrip(" .,-")
    return any(head.startswith(opening) for openings in DISPREFERRED_OPENINGS.values()
               for opening in openings)


@dataclass(frozen=True)
class TimingSettings:
    """Everything the arranger and the planner need to know about timing.

    `offset` is the signed-offset density of speaker transfers (human defaults), solved
    from `turn_overlap_ratio` (less the barge-ins, which follow the reaction-time model),
    the gap-median target, `overlap_median_s` and `tail_weight`. `interruption_rate` is
    the plan's barge-ins per speaker transfer (part of the overlapped ones).
    `turn_overlap_ratio` and `backchannel_share` drive the plan's quotas (`plan.*_rate`,
    when set, override them). `speaker_gap_scales` are per-speaker base-gap factors (1.0 =
    the population's); a dialogue's speakers draw theirs from this pool. With a profile,
    `segment_model` is set and `offsets` is the corpus's signed-offset density.
    """

    overlap_median_s: float = 0.30
    tail_weight: float = 0.55
    offset_min_s: float = -3.0
    offset_max_s: float = 3.0
    same_speaker_gap: LogNormal = LogNormal(0.45, 0.5, 3.0)
    pause: LogNormal = LogNormal(0.75, 0.35, 3.0)
    offsets: SignedKde | None = None
    segment_model: SegmentModel | None = None
    speaker_gap_scales: tuple[float, ...] = ()
    speaker_gap_sigma: float = 0.10
    interruption_rate: float = 0.08
    # the plan's quotas follow the targets unless a profile sets them (with_profile)
    turn_overlap_ratio: float = TimingTargets.overlap_transfer_ratio
    backchannel_share: float = TimingTargets.backchannel_share
    targets: TimingTargets = field(default_factory=TimingTargets)
    variety: Variety = field(default_factory=Variety)
    reaction_min_s: float = 0.2
    reaction_max_s: float = 0.6
    backchannel_delay_min_s: float = 0.05
    backchannel_delay_max_s: float = 0.3
    min_self_gap_s: float = 0.05
    tail_s: float = 0.3
    profile: str | None = None

    @cached_property
    def offset(self) -> JohnsonSU:
        """The human-default density; see the class docstring."""
        barge_ins = min(self.interruption_rate, 0.9 * self.turn_overlap_ratio)
        share = (self.turn_overlap_ratio - barge_ins) / (1.0 - barge_ins)
        return JohnsonSU.from_targets(min(max(share, 0.01), 0.99), self.targets.gap_median_s,
                                      self.overlap_median_s, self.tail_weight,
                                      self.offset_min_s, self.offset_max_s)

    @classmethod
    def from_config(cls, cfg: dict) -> TimingSettings:
        """From the `timing` config group (a dict); `profile`, when set, is loaded on top."""

        def lognormal(key: str, default: LogNormal) -> LogNormal:
            spec = cfg.get(key) or {}
            return LogNormal(
                float(spec.get("median_s", default.median_s)),
                float(spec.get("sigma", default.sigma)),
                float(spec.get("max_s", default.max_s)),
            )

        d = cls()
        offset = cfg.get("offset") or {}
        target = cfg.get("target") or {}
        overlap_ratio = float(target.get("overlap_transfer_ratio",
                                         d.targets.overlap_transfer_ratio))
        backchannels = float(target.get("backchannel_share", d.targets.backchannel_share))
        variety = cfg.get("variety") or {}
        settings = cls(
            overlap_median_s=float(offset.get("overlap_median_s", d.overlap_median_s)),
            tail_weight=float(offset.get("tail_weight", d.tail_weight)),
            offset_min_s=float(offset.get("min_s", d.offset_min_s)),
            offset_max_s=float(offset.get("max_s", d.offset_max_s)),
            same_speaker_gap=lognormal("same_speaker_gap", d.same_speaker_gap),
            pause=lognormal("pause", d.pause),
            speaker_gap_sigma=float(cfg.get("speaker_gap_sigma", d.speaker_gap_sigma)),
            interruption_rate=float(cfg.get("interruption_rate", d.interruption_rate)),
            turn_overlap_ratio=overlap_ratio,
            backchannel_share=backchannels,
            targets=TimingTargets(
                overlap_transfer_ratio=overlap_ratio,
                overlapped_speech_fraction=float(target.get(
                    "overlapped_speech_fraction", d.targets.overlapped_speech_fraction)),
                gap_median_s=float(target.get("gap_median_s") or d.targets.gap_median_s),
                backchannel_share=backchannels,
                definition="turns",
            ),
            variety=Variety(**{k: float(v) for k, v in variety.items()}),
            reaction_min_s=float(cfg.get("reaction_min_s", d.reaction_min_s)),
            reaction_max_s=float(cfg.get("reaction_max_s", d.reaction_max_s)),
            backchannel_delay_min_s=float(
                cfg.get("backchannel_delay_min_s", d.backchannel_delay_min_s)
            ),
            backchannel_delay_max_s=float(
                cfg.get("backchannel_delay_max_s", d.backchannel_delay_max_s)
            ),
            min_self_gap_s=float(cfg.get("min_self_gap_s", d.min_self_gap_s)),
            tail_s=float(cfg.get("tail_s", d.tail_s)),
        )
        if cfg.get("profile"):
            settings = settings.with_profile(load_profile(cfg["profile"]), str(cfg["profile"]))
        else:
            settings.offset  # noqa: B018 - an unreachable offset target fails before work
        return settings

    def with_profile(self, profile: dict, source: str = "") -> TimingSettings:
        """These settings with the segment model, quotas and targets of a fitted profile."""
        from dataclasses import replace

        stats = profile["statistics"]
        model = SegmentModel.from_profile(profile["segments"])
        offsets = [o for _, _, o in model.transfers]
        return replace(
            self,
            offsets=SignedKde(tuple(offsets), float(profile["segments"]["bandwidth_s"])),
            segment_model=model,
            speaker_gap_scales=tuple(float(x) for x in profile.get("speaker_gap_scales", ())),
            turn_overlap_ratio=float(stats["overlap_transfer_ratio"]),
            interruption_rate=float(profile.get("interruption_rate", self.interruption_rate)),
            backchannel_share=float(stats["backchannel_share"]),
            targets=TimingTargets(
                overlap_transfer_ratio=float(stats["overlap_transfer_ratio"]),
                overlapped_speech_fraction=float(stats["overlapped_speech_fraction"]),
                gap_median_s=float(stats["gap_median_s"]),
                backchannel_share=float(stats["backchannel_share"]),
                definition=str(profile.get("definition", "segments")),
            ),
            profile=source or None,
        )


def load_profile(path: str | Path) -> dict:
    """Read and check a `timing_profile.yaml` written by `duplexsynth fit-timing`."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"timing.profile: {str(file)!r} does not exist; write one with "
                         "`duplexsynth fit-timing inputs=[...] out.dir=D`")
    stat = file.stat()
    profile = _read_yaml(str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    if profile.get("format") != PROFILE_FORMAT:
        raise ValueError(f"timing.profile: {str(file)!r} is not a {PROFILE_FORMAT} file "
                         f"(format={profile.get('format')!r}); refit it with fit-timing")
    for key in ("statistics", "segments"):
        if key not in profile:
            raise ValueError(f"timing.profile: {str(file)!r} lacks {key!r}; refit it")
    return profile


@lru_cache(maxsize=8)
def _read_yaml(path: str, mtime_ns: int, size: int) -> dict:
    """A profile holds thousands of samples: parse it once per process (libyaml's C loader
    when PyYAML has it), keyed by path and modification time."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader) or {}  # noqa: S506 - a safe loader


class TimingModel:
    """Draws every timing decision of the arranger from one seeded generator.

    `speakers` (ids) get a base-gap factor each: drawn from the profile's per-speaker
    factors when there are some, else log-normal around 1 with `speaker_gap_sigma`.
    """

    def __init__(
        self, settings: TimingSettings, rng: random.Random, speakers: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.scales: dict[str, float] = {}
        for speaker in speakers:
            if settings.speaker_gap_scales:
                self.scales[speaker] = rng.choice(settings.speaker_gap_scales)
            else:
                self.scales[speaker] = math.exp(rng.gauss(0.0, settings.speaker_gap_sigma))

    def _scale(self, speaker: str | None) -> float:
        return self.scales.get(speaker, 1.0) if speaker is not None else 1.0

    def _density(self) -> JohnsonSU | SignedKde:
        return self.settings.offsets or self.settings.offset

    def gap(self, speaker: str | None = None, previous_text: str = "", text: str = "") -> float:
        """Silence (s) before `speaker` takes the floor from someone else, after a previous
        turn `previous_text`, answering with `text` (see `Variety`)."""
        base = self._density().draw(self.rng, overlap=False)
        variety = self.settings.variety
        if previous_text.rstrip().endswith("?"):
            factor = variety.question_gap_factor
            if text and is_dispreferred(text):
                factor = variety.dispreferred_gap_factor
        else:
            factor = variety.other_gap_factor if previous_text else 1.0
        return base * self._scale(speaker) * factor

    def overlap(self) -> float:
        """How long (s) an overlapping next turn starts before the previous one ends."""
        return -self._density().draw(self.rng, overlap=True)

    def same_speaker_gap(self, speaker: str | None = None) -> float:
        return self.settings.same_speaker_gap.draw(self.rng) * self._scale(speaker)

    def pause(self) -> float:
        return self.settings.pause.draw(self.rng)

    def reaction(self) -> float:
        return self.rng.uniform(self.settings.reaction_min_s, self.settings.reaction_max_s)

    def backchannel_delay(self) -> float:
        return self.rng.uniform(
            self.settings.backchannel_delay_min_s, self.settings.backchannel_delay_max_s
        )
