"""The timing model: how long people leave between, and overlap across, turns.

Two sources, one interface. The human defaults (DESIGN section 5) draw gaps and overlaps
from log-normals: gaps between speakers centre near 200 ms, overlapped transfers last a
few hundred ms, pauses inside a turn are longer than gaps between turns. A fitted profile
(`duplexsynth fit-timing`, see `pipeline.fit_timing`) replaces them with a Gaussian kernel
density over the offsets of a real corpus, as the SASC study does: a draw picks one observed
offset and adds Gaussian noise of the kernel bandwidth. The script decides *whether* a
transfer overlaps (its quota comes from the same settings), so the model draws the offset
conditioned on its sign. Each speaker of a dialogue gets a base-gap factor, so some people
answer faster than others. All values are seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

PROFILE_FORMAT = "duplexsynth-timing-profile/1"


@dataclass(frozen=True)
class LogNormal:
    """A log-normal draw given by its median (seconds) and sigma (of the log)."""

    median_s: float
    sigma: float
    max_s: float = 10.0

    def draw(self, rng: random.Random) -> float:
        return min(self.max_s, self.median_s * math.exp(rng.gauss(0.0, self.sigma)))


@dataclass(frozen=True)
class OffsetKde:
    """Kernel density over observed offsets (seconds; negative = overlap).

    `draw` samples the Gaussian KDE itself (an observed offset plus N(0, bandwidth_s)).
    `draw_sign` samples one side: a Gaussian KDE over log |offset| of that side's offsets,
    with Silverman's bandwidth of those logs. Gaps and overlap lengths are positive and
    skewed; in log space the kernel neither crosses zero nor shifts the side's median.
    """

    samples: tuple[float, ...]
    bandwidth_s: float

    @cached_property
    def _sides(self) -> dict[bool, tuple[tuple[float, ...], float]]:
        sides = {}
        for overlap in (True, False):
            values = [abs(s) for s in self.samples if (s < 0) == overlap]
            logs = [math.log(max(v, MIN_OFFSET_S)) for v in values]
            sides[overlap] = (tuple(values), _silverman(logs))
        return sides

    def draw(self, rng: random.Random) -> float:
        return rng.choice(self.samples) + rng.gauss(0.0, self.bandwidth_s)

    def draw_sign(self, rng: random.Random, overlap: bool) -> float:
        """An overlap length (overlap=True) or a gap, both >= 0 seconds."""
        values, log_bandwidth = self._sides[overlap]
        if not values:
            raise ValueError(f"timing profile has no {'negative' if overlap else 'positive'} "
                             "offsets to draw from; refit it on a corpus that has both")
        return max(rng.choice(values), MIN_OFFSET_S) * math.exp(rng.gauss(0.0, log_bandwidth))


MIN_OFFSET_S = 0.01  # RTTM time resolution; |offset| below it is taken as this


def _silverman(values: list[float]) -> float:
    """Silverman's rule of thumb, robust form: 0.9 min(sd, IQR / 1.34) n^(-1/5)."""
    n = len(values)
    if n < 2:
        return 0.05
    ordered = sorted(values)
    mean = sum(ordered) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in ordered) / n)
    iqr = ordered[(3 * n) // 4] - ordered[n // 4]
    spread = min(sd, iqr / 1.34) or sd
    return max(1e-3, 0.9 * spread * n ** -0.2)


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
class TimingSettings:
    """Everything the arranger and the planner need to know about timing.

    `interruption_rate` is the plan's barge-ins per speaker transfer (part of the overlapped
    ones). `turn_overlap_ratio` and `backchannel_share` drive the plan's quotas: the share of
    speaker transfers between turns that overlap (overlaps + barge-ins) and the share of
    contributions that are backchannels (`plan.*_rate`, when set, override them).
    `speaker_gap_scales` are per-speaker base-gap factors (1.0 = the population's); a
    dialogue's speakers draw theirs from this pool.
    """

    gap: LogNormal = LogNormal(0.22, 0.7, 3.0)
    overlap: LogNormal = LogNormal(0.50, 0.5, 1.5)
    same_speaker_gap: LogNormal = LogNormal(0.45, 0.5, 3.0)
    pause: LogNormal = LogNormal(0.75, 0.35, 3.0)
    offsets: OffsetKde | None = None
    same_speaker_offsets: OffsetKde | None = None
    speaker_gap_scales: tuple[float, ...] = ()
    speaker_gap_sigma: float = 0.10
    interruption_rate: float = 0.08
    turn_overlap_ratio: float = 0.30
    backchannel_share: float = 0.18
    targets: TimingTargets = field(default_factory=TimingTargets)
    reaction_min_s: float = 0.2
    reaction_max_s: float = 0.6
    backchannel_delay_min_s: float = 0.05
    backchannel_delay_max_s: float = 0.3
    min_self_gap_s: float = 0.05
    tail_s: float = 0.3
    profile: str | None = None

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
        gap = lognormal("gap", d.gap)
        target = cfg.get("target") or {}
        overlap_ratio = float(target.get("overlap_transfer_ratio",
                                         d.targets.overlap_transfer_ratio))
        backchannels = float(target.get("backchannel_share", d.targets.backchannel_share))
        settings = cls(
            gap=gap,
            overlap=lognormal("overlap", d.overlap),
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
                gap_median_s=float(target.get("gap_median_s") or gap.median_s),
                backchannel_share=backchannels,
                definition="turns",
            ),
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
        return settings

    def with_profile(self, profile: dict, source: str = "") -> TimingSettings:
        """These settings with the offsets, quotas and targets of a fitted profile."""
        from dataclasses import replace

        def kde(key: str) -> OffsetKde:
            spec = profile[key]
            return OffsetKde(tuple(float(x) for x in spec["samples"]),
                             float(spec["bandwidth_s"]))

        stats, turns = profile["statistics"], profile["turn_statistics"]
        pause = profile.get("pause") or {}
        return replace(
            self,
            offsets=kde("offsets"),
            same_speaker_offsets=kde("same_speaker_offsets"),
            speaker_gap_scales=tuple(float(x) for x in profile.get("speaker_gap_scales", ())),
            pause=LogNormal(float(pause.get("median_s", self.pause.median_s)),
                            float(pause.get("sigma", self.pause.sigma)),
                            float(pause.get("max_s", self.pause.max_s))),
            turn_overlap_ratio=float(turns["overlap_ratio"]),
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
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"timing.profile: {str(file)!r} does not exist; write one with "
                         "`duplexsynth fit-timing inputs=[...] out.dir=D`")
    profile = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if profile.get("format") != PROFILE_FORMAT:
        raise ValueError(f"timing.profile: {str(file)!r} is not a {PROFILE_FORMAT} file "
                         f"(format={profile.get('format')!r}); refit it with fit-timing")
    for key in ("statistics", "turn_statistics", "offsets", "same_speaker_offsets"):
        if key not in profile:
            raise ValueError(f"timing.profile: {str(file)!r} lacks {key!r}; refit it")
    return profile


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

    def gap(self, speaker: str | None = None) -> float:
        """Silence before `speaker` takes the floor from someone else."""
        kde = self.settings.offsets
        base = kde.draw_sign(self.rng, False) if kde else self.settings.gap.draw(self.rng)
        return base * self._scale(speaker)

    def overlap(self) -> float:
        """How long (s) an overlapping next turn starts before the previous one ends."""
        kde = self.settings.offsets
        return kde.draw_sign(self.rng, True) if kde else self.settings.overlap.draw(self.rng)

    def same_speaker_gap(self, speaker: str | None = None) -> float:
        kde = self.settings.same_speaker_offsets
        if kde:
            base = kde.draw_sign(self.rng, False)
        else:
            base = self.settings.same_speaker_gap.draw(self.rng)
        return base * self._scale(speaker)

    def pause(self) -> float:
        return self.settings.pause.draw(self.rng)

    def reaction(self) -> float:
        return self.rng.uniform(self.settings.reaction_min_s, self.settings.reaction_max_s)

    def backchannel_delay(self) -> float:
        return self.rng.uniform(
            self.settings.backchannel_delay_min_s, self.settings.backchannel_delay_max_s
        )
