"""Test-wide rules: no network but loopback, no developer keys or settings, no shared state between tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
SHARED_DIR = PROJECT_DIR.parent / "shared"
FIXTURES_DIR = TESTS_DIR / "fixtures"

sys.path.insert(0, str(TESTS_DIR))
import netguard  # noqa: E402
from fakedns import fake_dns  # noqa: E402,F401  (the local DNS server fixture, for every test)

netguard.install()


def pytest_configure(config):
    log = Path(os.environ.setdefault("OTC_NETGUARD_LOG", str(PROJECT_DIR / ".pytest_cache" / "netguard.log")))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")


def pytest_sessionfinish(session, exitstatus):
    log = Path(os.environ["OTC_NETGUARD_LOG"])
    text = log.read_text() if log.exists() else ""
    if text.strip() or netguard.violations:
        print("\nNETWORK GUARD: a test or a process it started tried to leave loopback:\n" + text
              + "\n".join(netguard.violations), file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _no_network_leak():
    before = len(netguard.violations)
    yield
    leaked = netguard.violations[before:]
    assert not leaked, f"non-loopback network access: {leaked}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No OTC_* setting or key from the developer's shell leaks into a test; data goes to a temp dir."""
    for name in list(os.environ):
        if name.startswith("OTC_") and name != "OTC_NETGUARD_LOG":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTC_SECRETS_FILE", str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("OTC_DATA_DIR", str(tmp_path / "otc-data"))
    from otc.engine import _GATES

    _GATES.clear()  # rate gates are process-wide by design; tests must not share quotas
    yield


@pytest.fixture
def subprocess_env(tmp_path) -> dict[str, str]:
    """Environment for a subprocess under test: network guard loaded, no developer settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR / "netguard_site"), str(PROJECT_DIR)])
    env["OTC_NETGUARD_LOG"] = os.environ["OTC_NETGUARD_LOG"]
    env["OTC_SECRETS_FILE"] = str(tmp_path / "no-secrets.toml")
    env["OTC_DATA_DIR"] = str(tmp_path / "otc-data")
    return env


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip: the full corpus is there in CI, not in a fresh clone."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared is absent ({path} not found); CI has it")
    return path
