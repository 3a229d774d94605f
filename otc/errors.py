"""The library's exception hierarchy, in one place.

Sources raise these (mostly through :mod:`otc.http`); :func:`otc.sources.base.run_source` turns each into
a :class:`otc.model.Status` at the source boundary, so no exception ever escapes a lookup.
Messages never contain a key or a full request URL (query strings may carry keys).
"""

from __future__ import annotations

from otc.model import Status


class OtcError(Exception):
    """Base of every error raised inside ``otc``."""


class ConfigError(OtcError):
    """A setting is malformed (e.g. ``OTC_DNS_SERVER`` is not ``host:port``)."""


class InputError(OtcError):
    """An uploaded file cannot be read as a table of indicators; the message is for the analyst."""


class SourceError(OtcError):
    """A lookup failed. ``status`` is the status the source's row will show."""

    status: Status = Status.ERROR


class SourceTimeout(SourceError):
    status = Status.TIMEOUT


class SourceUnreachable(SourceError):
    """Connection refused, reset, DNS failure of the service's own host: counts toward the circuit breaker."""

    status = Status.ERROR


class RateLimited(SourceError):
    status = Status.RATE_LIMITED

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthRejected(SourceError):
    status = Status.AUTH_ERROR


class UpstreamError(SourceError):
    """The service answered, but not with something usable (5xx, HTML error page, unexpected status)."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class MalformedResponse(SourceError):
    """The body is not what the source documents (bad JSON, wrong shape, invalid UTF-8)."""


class ResponseTooLarge(SourceError):
    """The body exceeded the size cap; reading stopped there."""
