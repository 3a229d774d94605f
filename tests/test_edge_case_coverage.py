"""Every shared edge case is a test of ours: its id must appear in a test file.

The ids are listed here too, so a fresh clone without ../shared still checks them; with ../shared
present, any case added there and not yet covered fails this test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED_DIR, TESTS_DIR

KNOWN_CASE_IDS = {
    "DEFANG-01", "DEFANG-02", "DEFANG-04", "PARSE-01", "PARSE-02", "PARSE-04", "PARSE-05",
    "DOM-01", "DOM-03", "DOM-04", "DOM-05", "IP-01", "IP-02", "IP-04", "IP-05", "IP-07", "IP-08",
    "DNS-01", "DNS-03", "RDAP-01", "API-01", "API-02", "CSV-01", "CSV-02", "CSV-03", "CSV-05", "MAP-01",
}


def short_id(case_id: str) -> str:
    """``DEFANG-01-defanged-ip-extracted-twice`` -> ``DEFANG-01``."""
    prefix, number = case_id.split("-")[:2]
    return f"{prefix}-{number}"


def all_test_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in TESTS_DIR.glob("test_*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize("case_id", sorted(KNOWN_CASE_IDS))
def test_known_case_has_a_test(case_id):
    assert case_id in all_test_sources(), f"edge case {case_id} has no test naming it"


def test_every_shared_case_is_known():
    path = SHARED_DIR / "cases" / "edge_cases.jsonl"
    if not path.exists():
        pytest.skip("../shared is absent: the shared edge-case list is checked in CI")
    ids = {short_id(json.loads(line)["id"]) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert ids - KNOWN_CASE_IDS == set(), "new shared edge cases: add them to KNOWN_CASE_IDS and write their tests"
