"""Score and verdict: the sum of every source's contributions, and the documented bands.

Weights and bands live in ``scoring_weights.toml`` beside this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from otc.model import Contribution, Enrichment, Indicator, SourceResult, Status, Verdict

WEIGHTS_PATH = Path(__file__).with_name("scoring_weights.toml")


@dataclass(frozen=True)
class SourceWeights:
    """One source's section of the weights file."""

    source: str
    values: Mapping[str, float] = field(default_factory=dict)

    def weight(self, rule: str) -> float:
        try:
            return float(self.values[rule])
        except KeyError:
            raise KeyError(f"no weight '{rule}' in [{self.source}] of {WEIGHTS_PATH.name}") from None


@dataclass(frozen=True)
class ScoringRules:
    sources: Mapping[str, Mapping[str, float]]
    malicious: float
    suspicious: float
    likely_benign_below: float

    def for_source(self, name: str) -> SourceWeights:
        return SourceWeights(name, self.sources.get(name, {}))


@lru_cache(maxsize=None)
def load_rules(path: Path = WEIGHTS_PATH) -> ScoringRules:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    bands = data.pop("verdict")
    return ScoringRules(
        sources={name: dict(section) for name, section in data.items()},
        malicious=float(bands["malicious"]),
        suspicious=float(bands["suspicious"]),
        likely_benign_below=float(bands["likely_benign_below"]),
    )


def verdict_for(score: int, contributions: Iterable[Contribution], results: Iterable[SourceResult],
                rules: ScoringRules) -> tuple[Verdict, str]:
    """The verdict and a one-line reason for it."""
    contributions = list(contributions)
    results = list(results)
    answered = [r for r in results if r.status.answered]
    if score >= rules.malicious:
        return Verdict.MALICIOUS, f"score {score} ≥ {rules.malicious:g}"
    if score >= rules.suspicious:
        return Verdict.SUSPICIOUS, f"score {score} ≥ {rules.suspicious:g}"
    benign = [c for c in contributions if c.points < 0]
    strong_bad = [c for c in contributions if c.points >= rules.likely_benign_below]
    if benign and not strong_bad and score < rules.likely_benign_below:
        return Verdict.LIKELY_BENIGN, f"benign evidence ({benign[0].reason}) and score {score}"
    if not answered:
        return Verdict.UNKNOWN, "no source could answer — not evidence of anything"
    if not contributions:
        return Verdict.UNKNOWN, f"{len(answered)} source(s) answered with no evidence either way"
    return Verdict.UNKNOWN, f"score {score} below {rules.suspicious:g} without benign evidence"


def combine(indicator: Indicator, results: Iterable[SourceResult], rules: ScoringRules | None = None) -> Enrichment:
    """Turn one indicator's source results into an :class:`Enrichment` with score and verdict."""
    rules = rules or load_rules()
    results = tuple(results)
    contributions = tuple(c for r in results if r.status is Status.OK for c in r.contributions)
    total = sum(c.points for c in contributions)
    score = int(round(min(100.0, max(0.0, total))))
    verdict, reason = verdict_for(score, contributions, results, rules)
    return Enrichment(
        indicator=indicator, results=results, contributions=contributions,
        score=score, verdict=verdict, verdict_reason=reason,
    )
