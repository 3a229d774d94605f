"""The source protocol: what every source declares, and the one boundary where errors become statuses.

A source is one module with one subclass of :class:`Source` and a module-level ``SOURCE`` instance. It
declares *what* it is (name, kinds, key, whether it sends the indicator to a third party, rate limit)
as class attributes and implements two things:

- ``lookup(indicator, ctx) -> SourceResult`` – ask the service (through ``ctx.http`` / ``ctx.resolver``)
  and turn its answer into a result; it may raise :class:`otc.errors.SourceError` subclasses;
- ``score(fields, weights) -> list[Contribution]`` – the score lines an OK answer adds.

:func:`run_source` applies the privacy, key and kind checks *before* anything is sent, and turns every
exception into a status, so one broken source never breaks a batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import dns.resolver

from otc.config import Mode, Secret, Settings
from otc.errors import SourceError
from otc.http import HttpClient, rebase_url
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """A service's free-tier allowance. ``None`` means no published limit."""

    per_minute: float | None = None
    per_day: int | None = None
    per_second: float | None = None
    burst: int = 1  # requests that may go at once before the steady pace applies

    @property
    def interval(self) -> float:
        """Seconds between two requests for a steady pace."""
        rates = [r for r in (self.per_second, (self.per_minute or 0) / 60.0) if r]
        return 1.0 / max(rates) if rates else 0.0


@dataclass(frozen=True)
class SourceContext:
    """Everything a lookup may touch, injected. ``base_url`` already has any ``OTC_*_URL`` override applied."""

    settings: Settings
    http: HttpClient
    base_url: str
    timeout: float
    key: Secret | None = None
    resolver: dns.resolver.Resolver | None = None
    clock: Callable[[], float] = time.time
    extra: Mapping[str, Any] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        return self.base_url.rstrip("/") + path if path else self.base_url


class Source:
    """Base class of every source; subclasses set the class attributes and implement ``lookup``."""

    name: str = ""  # short id: column prefix, and stem of OTC_<NAME>_URL / OTC_<NAME>_KEY
    title: str = ""  # what the analyst reads
    description: str = ""  # one line: what this source tells
    kinds: frozenset[Kind] = frozenset()
    base_url: str = ""  # the real service; "" for offline sources
    third_party: bool = True  # does a lookup send the indicator off this machine?
    needs_key: bool = False
    key_optional: bool = False  # works without a key, better with one (OTX, GreyNoise)
    key_names: tuple[str, ...] = ()  # default: (OTC_<NAME>_KEY,)
    key_url: str = ""  # where an analyst gets a key
    rate_limit: RateLimit = RateLimit()
    max_concurrency: int = 4
    licence_note: str = ""

    # -- declared facts -------------------------------------------------------------------------
    @property
    def env_stem(self) -> str:
        return f"OTC_{self.name.upper()}"

    @property
    def url_setting(self) -> str:
        return f"{self.env_stem}_URL"

    @property
    def key_settings(self) -> tuple[str, ...]:
        return self.key_names or (f"{self.env_stem}_KEY",)

    @property
    def uses_key(self) -> bool:
        return self.needs_key or self.key_optional

    def applies_to(self, indicator: Indicator) -> bool:
        return indicator.kind in self.kinds

    def not_applicable_reason(self, indicator: Indicator) -> str | None:
        """Why this particular indicator, of a kind the source handles, cannot be asked (e.g. a CIDR
        larger than the API accepts). Checked before anything is sent or counted against a quota."""
        return None

    def allowed_in(self, mode: Mode) -> bool:
        if not self.third_party:
            return True
        if mode is Mode.LOCAL:
            return False
        if mode is Mode.KEYLESS:
            return not self.needs_key
        return True

    def data_date(self) -> str | None:
        """Date of the offline data set or snapshot this source uses (offline sources override)."""
        return None

    # -- behaviour ------------------------------------------------------------------------------
    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        raise NotImplementedError

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        return []

    # -- helpers for subclasses -----------------------------------------------------------------
    def result(self, status: Status, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> SourceResult:
        return SourceResult(source=self.name, status=status, fields=dict(fields or {}), **kwargs)

    def contribution(self, weights: SourceWeights, rule: str, reason: str, factor: float = 1.0) -> Contribution:
        weight = weights.weight(rule)
        points = round(weight * factor, 1)
        sign = "+" if points >= 0 else "−"
        return Contribution(
            source=self.name, rule=rule, points=points, weight=weight,
            reason=f"{sign}{abs(points):g} {self.title}: {reason}",
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def context_for(
    source: Source,
    settings: Settings,
    http: HttpClient,
    resolver: dns.resolver.Resolver | None = None,
    clock: Callable[[], float] = time.time,
) -> SourceContext:
    return SourceContext(
        settings=settings,
        http=http,
        base_url=rebase_url(source.base_url, settings.url_override(source.url_setting)) if source.base_url else "",
        timeout=settings.timeout,
        key=settings.key(source.key_settings) if source.uses_key else None,
        resolver=resolver,
        clock=clock,
    )


def precheck(source: Source, indicator: Indicator, settings: Settings) -> SourceResult | None:
    """The result to give *without* running the source, or ``None`` when it may run.

    Order matters: kind first (not applicable), then privacy (mode, non-global scope), then key — so a
    private address is reported as withheld for privacy even when no key is configured.
    """
    if not source.applies_to(indicator):
        return source.result(Status.NOT_APPLICABLE, message=f"{source.title} does not handle {indicator.kind} indicators")
    reason = source.not_applicable_reason(indicator)
    if reason is not None:
        return source.result(Status.NOT_APPLICABLE, message=reason)
    if source.third_party and not source.allowed_in(settings.mode):
        why = "local-only mode" if settings.mode is Mode.LOCAL else f"{settings.mode} mode"
        return source.result(Status.SKIPPED_PRIVACY, message=f"not sent: {why} keeps it from {source.title}")
    if source.third_party and not indicator.is_shareable:
        return source.result(
            Status.SKIPPED_PRIVACY,
            message=f"not sent: {indicator.scope.value.replace('_', '-')} {indicator.kind} never leaves this machine",
        )
    if source.needs_key and settings.key(source.key_settings) is None:
        where = f" — get one at {source.key_url}" if source.key_url else ""
        return source.result(
            Status.SKIPPED_NO_KEY, message=f"no key configured (set {source.key_settings[0]}){where}"
        )
    return None


def redact(value: Any, secrets: list[str]) -> Any:
    """Replace every secret value in strings nested anywhere in ``value``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, secrets) for v in value)
    return value


def run_source(source: Source, indicator: Indicator, ctx: SourceContext, weights: SourceWeights) -> SourceResult:
    """Run one source for one indicator. Never raises: every failure is a status on the result."""
    return attempt_source(source, indicator, ctx, weights)[0]


def attempt_source(
    source: Source, indicator: Indicator, ctx: SourceContext, weights: SourceWeights
) -> tuple[SourceResult, SourceError | None]:
    """:func:`run_source`, also telling which error (if any) the status came from — the engine's circuit
    breaker and 429 handling need to know "unreachable" and "Retry-After", which a status cannot carry."""
    skipped = precheck(source, indicator, ctx.settings)
    if skipped is not None:
        return skipped, None
    started = time.monotonic()
    error: SourceError | None = None
    try:
        result = source.lookup(indicator, ctx)
    except SourceError as exc:
        error = exc
        result = source.result(exc.status, message=str(exc))
    except Exception as exc:  # a bug in one source must not break the batch; the analyst sees it as error
        log.warning("%s failed on a %s indicator: %s", source.name, indicator.kind, type(exc).__name__, exc_info=True)
        result = source.result(Status.ERROR, message=f"{source.title} failed unexpectedly ({type(exc).__name__})")
    contributions: tuple[Contribution, ...] = ()
    if result.status is Status.OK:
        try:
            contributions = tuple(source.score(result.fields, weights))
        except Exception as exc:  # a scoring bug must not lose the findings
            log.warning("%s scoring failed: %s", source.name, type(exc).__name__, exc_info=True)
    secrets = ctx.settings.secret_values()
    if error is not None and secrets:  # an upstream may quote the key (or the request line) in its error text
        error.args = tuple(redact(list(error.args), secrets))
    return replace(
        result,
        source=source.name,
        message=redact(result.message, secrets),
        raw=redact(result.raw, secrets),
        fields=redact(dict(result.fields), secrets),
        contributions=contributions or result.contributions,
        latency_ms=round((time.monotonic() - started) * 1000.0, 1) if result.latency_ms is None else result.latency_ms,
        fetched_at=result.fetched_at if result.fetched_at is not None else ctx.clock(),
        data_date=result.data_date or source.data_date(),
    ), error
