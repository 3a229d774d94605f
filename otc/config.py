"""Settings from one place: ``.streamlit/secrets.toml`` first, then environment variables, else "not configured".

Names (all optional):

- ``OTC_<SOURCE>_URL`` – replaces the scheme and host of a source's service and keeps the service path
  (``OTC_INTERNETDB_URL=http://127.0.0.1:8080/internetdb`` -> ``http://127.0.0.1:8080/internetdb/1.2.3.4``).
- ``OTC_<SOURCE>_KEY`` – API keys (``OTC_ABUSECH_KEY`` serves the three abuse.ch services).
- ``OTC_DNS_SERVER=host:port`` – the resolver for DNS and DNS blocklists (default: the system's).
- ``OTC_MODE=local|keyless|all`` and ``OTC_OFFLINE=1`` (= local) – the privacy mode.
- ``OTC_<SOURCE>_RATE`` – requests per minute for a mirror or proxy (0 = no pacing); default: the free tier's.
- ``OTC_TIMEOUT`` – seconds one source may take for one indicator (default 10).
- ``OTC_DATA_DIR`` – where the SQLite store, cache and audit log live (default ``./data``).
- ``OTC_SECRETS_FILE`` – another secrets file than ``.streamlit/secrets.toml``.

Keys are held as :class:`Secret`, whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable, Mapping

from otc.errors import ConfigError

DEFAULT_SECRETS_PATH = Path(".streamlit") / "secrets.toml"


class Mode(StrEnum):
    """Privacy mode: which sources may see an indicator."""

    LOCAL = "local"  # nothing leaves the machine: offline data and feed snapshots only
    KEYLESS = "keyless"  # plus public keyless services (RDAP, DNS, InternetDB, crt.sh, DNSBL)
    ALL = "all"  # plus every keyed source that has a key configured


MODE_DESCRIPTIONS = {
    Mode.LOCAL: "Local only — nothing leaves this machine (offline data and feed snapshots)",
    Mode.KEYLESS: "Keyless public sources — RDAP, DNS, InternetDB and other services that need no key",
    Mode.ALL: "All configured sources — keyless services plus every source you gave a key",
}


class Secret:
    """A value that must never be printed. ``reveal()`` is the only way to get it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # pickling would write the key to disk
        raise TypeError("Secret values are not picklable")


@dataclass(frozen=True)
class Settings:
    mode: Mode = Mode.ALL
    urls: Mapping[str, str] = field(default_factory=dict)  # "OTC_RDAP_URL" -> override
    keys: Mapping[str, Secret] = field(default_factory=dict)  # "OTC_VIRUSTOTAL_KEY" -> Secret
    dns_server: tuple[str, int] | None = None
    timeout: float = 10.0
    data_dir: Path = Path("data")
    rates: Mapping[str, float] = field(default_factory=dict)  # "OTC_RDAP_RATE" -> requests per minute

    def rate_limits(self) -> dict[str, Any]:
        """Pacing overrides by source name (``OTC_<NAME>_RATE`` requests/minute; 0 = no pacing), for a
        mirror or proxy whose limits are not the public service's."""
        from otc.sources.base import RateLimit  # late: sources import this module

        return {name[4:-5].lower(): RateLimit(per_minute=rate or None) for name, rate in self.rates.items()}

    def url_override(self, env_name: str) -> str | None:
        return self.urls.get(env_name)

    def key(self, names: Iterable[str]) -> Secret | None:
        """The first configured key among ``names`` (e.g. a source's own key, then a shared one)."""
        for name in names:
            secret = self.keys.get(name)
            if secret is not None and secret.reveal().strip():
                return secret
        return None

    def secret_values(self) -> list[str]:
        """Every configured key value, for redaction of anything that leaves the library."""
        return [s.reveal() for s in self.keys.values() if s.reveal()]

    def with_mode(self, mode: Mode | str) -> "Settings":
        return replace(self, mode=Mode(mode))


def parse_dns_server(text: str) -> tuple[str, int]:
    """``host:port``, ``host`` (port 53) or ``[v6]:port``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.lstrip(":") or "53"
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, "53"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"OTC_DNS_SERVER must be host:port, got {text!r}") from None
    if not host or not 0 < port < 65536:
        raise ConfigError(f"OTC_DNS_SERVER must be host:port, got {text!r}")
    return host, port


def read_secrets_file(path: Path) -> dict[str, Any]:
    """The analyst's ``secrets.toml`` as a flat dict; a missing file is an empty one."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        # The error text can quote the line, which may hold a key: say where, not what.
        raise ConfigError(f"{path} is not valid TOML (line {getattr(exc, 'lineno', '?')})") from None
    flat: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict):  # allow an [otc] table as well as top-level names
            flat.update({k: v for k, v in value.items() if not isinstance(v, dict)})
        else:
            flat[name] = value
    return flat


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_settings(
    environ: Mapping[str, str] | None = None,
    secrets: Mapping[str, Any] | None = None,
    secrets_path: Path | None = DEFAULT_SECRETS_PATH,
) -> Settings:
    """Build settings: ``secrets`` (or the secrets file) first, then ``environ``.

    The pages pass ``st.secrets``; the CLI lets this read ``.streamlit/secrets.toml`` itself.
    """
    environ = os.environ if environ is None else environ
    if secrets is None:
        # OTC_SECRETS_FILE points elsewhere (tests point it at nothing, so a developer's keys stay out).
        path = Path(environ["OTC_SECRETS_FILE"]) if environ.get("OTC_SECRETS_FILE") else secrets_path
        secrets = read_secrets_file(path) if path is not None else {}

    def lookup(name: str) -> str | None:
        value = secrets.get(name)
        if value is None or str(value).strip() == "":
            value = environ.get(name)
        return None if value is None else str(value)

    names = {n for n in list(secrets) + list(environ) if n.startswith("OTC_")}
    urls = {n: lookup(n).strip() for n in names if n.endswith("_URL") and (lookup(n) or "").strip()}
    keys = {n: Secret(lookup(n).strip()) for n in names if n.endswith("_KEY") and (lookup(n) or "").strip()}

    if _truthy(lookup("OTC_OFFLINE")):
        mode = Mode.LOCAL
    else:
        mode_text = (lookup("OTC_MODE") or Mode.ALL.value).strip().lower()
        try:
            mode = Mode(mode_text)
        except ValueError:
            raise ConfigError(f"OTC_MODE must be one of local, keyless, all; got {mode_text!r}") from None

    rates: dict[str, float] = {}
    for name in names:
        if name.endswith("_RATE") and (lookup(name) or "").strip():
            try:
                rates[name] = max(0.0, float(lookup(name)))
            except ValueError:
                raise ConfigError(f"{name} must be requests per minute (0 = no pacing)") from None
    dns_text = lookup("OTC_DNS_SERVER")
    timeout_text = lookup("OTC_TIMEOUT")
    try:
        timeout = float(timeout_text) if timeout_text else 10.0
    except ValueError:
        raise ConfigError(f"OTC_TIMEOUT must be a number of seconds, got {timeout_text!r}") from None
    return Settings(
        mode=mode,
        urls=urls,
        keys=keys,
        dns_server=parse_dns_server(dns_text) if dns_text and dns_text.strip() else None,
        timeout=timeout,
        data_dir=Path(lookup("OTC_DATA_DIR") or "data"),
        rates=rates,
    )
