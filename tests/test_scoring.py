"""Score = clamped sum of contributions; verdict bands as documented in scoring_weights.toml."""

from __future__ import annotations

import pytest

from otc.model import Contribution, Indicator, Kind, SourceResult, Status, Verdict
from otc.scoring import combine, load_rules

INDICATOR = Indicator(Kind.IPV4, "8.8.8.8", "8.8.8.8", "8.8.8.8")


def answered(source: str, *points: float, status: Status = Status.OK) -> SourceResult:
    lines = tuple(Contribution(source, f"r{n}", p, abs(p), f"{p:+g} {source}") for n, p in enumerate(points))
    return SourceResult(source=source, status=status, contributions=lines)


def test_score_is_the_sum_of_displayed_contributions():
    enrichment = combine(INDICATOR, [answered("a", 20, 15), answered("b", 10)])
    assert enrichment.score == 45 == sum(c.points for c in enrichment.contributions)
    assert enrichment.verdict is Verdict.SUSPICIOUS


def test_score_is_clamped():
    assert combine(INDICATOR, [answered("a", 80, 60)]).score == 100
    assert combine(INDICATOR, [answered("a", -25)]).score == 0


@pytest.mark.parametrize(("points", "verdict"), [
    ((70,), Verdict.MALICIOUS), ((69,), Verdict.SUSPICIOUS), ((30,), Verdict.SUSPICIOUS),
    ((29,), Verdict.UNKNOWN), ((-25,), Verdict.LIKELY_BENIGN), ((-25, 5), Verdict.LIKELY_BENIGN),
    ((-25, 20), Verdict.UNKNOWN),
])
def test_bands(points, verdict):
    rules = load_rules()
    assert (rules.malicious, rules.suspicious, rules.likely_benign_below) == (70, 30, 10)
    assert combine(INDICATOR, [answered("a", *points)]).verdict is verdict


def test_no_answer_is_unknown_never_benign():
    failures = [SourceResult(source=s.value, status=s) for s in Status if not s.answered]
    enrichment = combine(INDICATOR, failures)
    assert enrichment.verdict is Verdict.UNKNOWN
    assert enrichment.score == 0
    assert "no source could answer" in enrichment.verdict_reason


def test_contributions_of_failed_results_do_not_count():
    stale = answered("a", 50, status=Status.ERROR)
    assert combine(INDICATOR, [stale]).score == 0


def test_every_rule_named_in_the_weights_file_is_a_number():
    rules = load_rules()
    for section, values in rules.sources.items():
        for rule, weight in values.items():
            assert isinstance(weight, (int, float)), (section, rule)
