"""The text-channel token table of the duplex training views (conf/tokens/default.yaml).

Defaults are BayLing-Duplex's names. Every view and the DPO pairs read this one table, so a
model with another vocabulary changes names in one place (`tokens.silence=...`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class DuplexTokens:
    silence: str = "[SILENCE]"
    turn_start: str = "<|assistant|>"
    pad: str = "[PAD]"
    epad: str = "[EPAD]"
    backchannel: str = "<|backchannel|>"
    ignore: str = "[SILENCE]"  # BayLing has no side-talk token; "[IGNORE]" where a vocabulary does

    @classmethod
    def from_config(cls, raw: dict | None) -> DuplexTokens:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"tokens: unknown key(s) {unknown}; allowed: {sorted(known)}")
        bad = [k for k, v in raw.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ValueError(f"tokens.{bad[0]}: must be a non-empty string")
        tokens = cls(**raw)
        markers = [tokens.turn_start, tokens.pad, tokens.epad, tokens.backchannel]
        if len(set(markers)) != len(markers) or tokens.silence in markers:
            raise ValueError("tokens: turn_start, pad, epad, backchannel and silence must differ")
        return tokens

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def specials(self) -> set[str]:
        return set(self.as_dict().values())
