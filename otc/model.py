"""Value types shared by the whole library: indicators, source results, contributions, verdicts.

Everything here is frozen. A result always carries an explicit :class:`Status`; ``None`` never stands in
for "no data" or "failed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Mapping


class Kind(StrEnum):
    """What an indicator is."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    ASN = "asn"


IP_KINDS = frozenset({Kind.IPV4, Kind.IPV6})
HASH_KINDS = frozenset({Kind.MD5, Kind.SHA1, Kind.SHA256})


class Scope(StrEnum):
    """Where an address or name lives. Only ``GLOBAL`` may ever be sent to a third party."""

    GLOBAL = "global"
    PRIVATE = "private"  # RFC 1918, RFC 4193 ULA, internal names (.local, .internal, .home.arpa)
    SHARED = "shared"  # RFC 6598 shared address space / CGNAT
    DOCUMENTATION = "documentation"  # TEST-NET-1/2/3, 2001:db8::/32
    LOOPBACK = "loopback"
    LINK_LOCAL = "link_local"
    MULTICAST = "multicast"
    RESERVED = "reserved"  # 240/4, 0/8, IANA special-purpose, reserved TLDs (.test, .example, .invalid, .localhost)
    NOT_APPLICABLE = "not_applicable"  # hashes: no network location


@dataclass(frozen=True, slots=True)
class Indicator:
    """A normalized indicator, ready for lookups.

    ``value`` is the form sent to sources (A-label domains, lower-case hashes, compressed IPv6);
    ``display`` is the form shown to the analyst (Unicode domains); ``original`` is the input text.
    ``notes`` say what normalization changed ("refanged [.] -> .", "port 443 kept apart", ...).
    For URLs and e-mail addresses ``host`` is the host part and ``host_kind`` its kind, so host-based
    sources can look at it.
    """

    kind: Kind
    value: str
    display: str
    original: str
    scope: Scope = Scope.GLOBAL
    notes: tuple[str, ...] = ()
    host: str | None = None
    host_kind: Kind | None = None
    port: int | None = None
    registered_domain: str | None = None
    wildcard: bool = False

    @property
    def is_shareable(self) -> bool:
        """May this indicator be sent to a third-party service at all?"""
        return self.scope in (Scope.GLOBAL, Scope.NOT_APPLICABLE)

    @property
    def key(self) -> tuple[str, str]:
        """Identity for de-duplication within a batch."""
        return (self.kind.value, self.value)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input that is not (or not unambiguously) an indicator. It keeps its row; it is never looked up.

    ``status`` is ``empty``, ``invalid`` or ``ambiguous``; ``candidates`` lists the possible readings of an
    ambiguous input (``010.1.1.1`` -> ``8.1.1.1`` or ``10.1.1.1``) for the analyst to confirm.
    """

    original: str
    reason: str
    status: str = "invalid"
    candidates: tuple[str, ...] = ()


class Status(StrEnum):
    """How one source fared with one indicator. Only ``OK`` carries findings; nothing else is "clean"."""

    OK = "ok"
    NOT_FOUND = "not_found"  # the source answered: it has no record / not listed
    NOT_APPLICABLE = "not_applicable"  # the source does not handle this kind of indicator
    SKIPPED_NO_KEY = "skipped_no_key"
    SKIPPED_PRIVACY = "skipped_privacy"  # non-global address, reserved name, or the privacy mode forbids it
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    AUTH_ERROR = "auth_error"
    ERROR = "error"

    @property
    def answered(self) -> bool:
        """The source gave an answer about the indicator (which may be "nothing known")."""
        return self in (Status.OK, Status.NOT_FOUND)

    @property
    def failed(self) -> bool:
        return self in (Status.RATE_LIMITED, Status.TIMEOUT, Status.AUTH_ERROR, Status.ERROR)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One line of the score's explanation: ``points`` (already scaled) from ``source`` for ``reason``.

    ``weight`` is the configured weight of ``rule`` in ``scoring_weights.toml``; ``points`` may be a
    fraction of it (e.g. scaled by a confidence). Negative points are benign evidence.
    """

    source: str
    rule: str
    points: float
    weight: float
    reason: str


@dataclass(frozen=True, slots=True)
class Location:
    """Where an indicator is on the map. ``approximate`` is true for a country-level centroid."""

    latitude: float
    longitude: float
    label: str
    approximate: bool


@dataclass(frozen=True)
class SourceResult:
    """What one source said about one indicator.

    ``fields`` holds the analyst-facing values (they become columns of the bulk table, prefixed with the
    source name); ``raw`` is the upstream response as received (parsed JSON or text) for the raw panel;
    ``message`` explains a non-OK status in one plain sentence. ``contributions`` are the score lines
    this result adds. ``location`` is set by sources that know coordinates.
    """

    source: str
    status: Status
    fields: Mapping[str, Any] = field(default_factory=dict)
    raw: Any = None
    message: str = ""
    latency_ms: float | None = None
    contributions: tuple[Contribution, ...] = ()
    location: Location | None = None
    fetched_at: float | None = None  # epoch seconds when the answer was obtained
    cached: bool = False
    data_date: str | None = None  # date of an offline data set or feed snapshot used


class Verdict(StrEnum):
    MALICIOUS = "malicious"
    SUSPICIOUS = "suspicious"
    UNKNOWN = "unknown"
    LIKELY_BENIGN = "likely benign"


@dataclass(frozen=True)
class Enrichment:
    """Everything known about one indicator: each source's result, the score and the verdict.

    ``score`` equals the sum of ``contributions``' points, clamped to 0..100.
    """

    indicator: Indicator
    results: tuple[SourceResult, ...]
    contributions: tuple[Contribution, ...]
    score: int
    verdict: Verdict
    verdict_reason: str

    def result(self, source: str) -> SourceResult | None:
        for result in self.results:
            if result.source == source:
                return result
        return None

    @property
    def location(self) -> Location | None:
        """The most precise location any source gave (a precise one beats a country centroid)."""
        located = [r.location for r in self.results if r.location is not None]
        precise = [loc for loc in located if not loc.approximate]
        return (precise or located or [None])[0]
