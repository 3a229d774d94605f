"""The one way ``otc`` talks HTTP: an injected ``requests.Session``, a total deadline, a size cap.

Every failure becomes an :mod:`otc.errors` exception whose message names the host at most, never the
full URL (query strings can carry keys) and never the body of a failed request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from otc.errors import (
    AuthRejected,
    MalformedResponse,
    RateLimited,
    ResponseTooLarge,
    SourceError,
    SourceTimeout,
    SourceUnreachable,
    UpstreamError,
)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # no source we use answers more than a few hundred kB per indicator
USER_AGENT = "otc/0.1 (+open threat correlation; analyst tool)"


def rebase_url(default_url: str, override: str | None) -> str:
    """Apply an ``OTC_<SOURCE>_URL`` override: its scheme and host replace the service's, its path is a
    prefix, and the service's own path is kept (``http://127.0.0.1:8080/idb`` + ``https://x/1.2.3.4`` ->
    ``http://127.0.0.1:8080/idb/1.2.3.4``)."""
    if not override:
        return default_url
    base = urlsplit(default_url)
    new = urlsplit(override)
    path = new.path.rstrip("/") + base.path
    return urlunsplit((new.scheme, new.netloc, path, base.query, base.fragment))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parsed JSON; invalid UTF-8 or JSON raises :class:`MalformedResponse`."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except UnicodeDecodeError:
            raise MalformedResponse("answer is not valid UTF-8") from None
        except ValueError:
            snippet = "an HTML page" if self.body.lstrip()[:1] == b"<" else "not JSON"
            raise MalformedResponse(f"answer is {snippet} (HTTP {self.status})") from None

    def json_object(self) -> dict:
        """Parsed JSON that must be an object (not a list, string or null)."""
        data = self.json()
        if not isinstance(data, dict):
            raise MalformedResponse(f"expected a JSON object, got {type(data).__name__}")
        return data

    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After") or self.headers.get("retry-after")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


class _Deadline:
    """Shuts the sockets of one request down when its total time is up.

    requests' read timeout bounds each ``recv``, not the answer: a server sending one byte a second
    (status line, headers or body) would hold a lookup for as long as it likes. This timer bounds it.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._finished = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_ACTIVE = threading.local()  # the deadline of the request this thread is making


class _WatchedConnection:
    def getresponse(self, *args, **kwargs):  # the first blocking read of a request: watch its socket
        deadline = getattr(_ACTIVE, "deadline", None)
        if deadline is not None and getattr(self, "sock", None) is not None:
            deadline.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections can be cut by :class:`_Deadline`."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _host_of(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or "the service"


class HttpClient:
    """Makes requests through an injected session with a total deadline and a body size cap."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        pool_maxsize: int = 10,
    ) -> None:
        self.session = session or requests.Session()
        self.session.max_redirects = max_redirects
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, DeadlineAdapter(pool_maxsize=pool_maxsize))
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.max_bytes = max_bytes

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        json_body: Any = None,
        allow_redirects: bool = True,
    ) -> HttpResponse:
        """One request, finished (headers and capped body) within ``timeout`` seconds or ``SourceTimeout``."""
        host = _host_of(url)
        guard = _Deadline(timeout)
        _ACTIVE.deadline = guard
        try:
            return self._request(method, url, host, timeout, headers, params, data, json_body, allow_redirects)
        except SourceError:
            if guard.expired:
                raise SourceTimeout(f"{host} did not finish answering within {timeout:g} s") from None
            raise
        finally:
            _ACTIVE.deadline = None
            guard.finish()

    def _request(self, method, url, host, timeout, headers, params, data, json_body, allow_redirects) -> HttpResponse:
        started = time.monotonic()
        deadline = started + timeout
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                params=params,
                data=data,
                json=json_body,
                timeout=(min(timeout, 5.0), timeout),
                stream=True,
                allow_redirects=allow_redirects,
            )
        except requests.exceptions.TooManyRedirects:
            raise UpstreamError(f"{host} redirected too many times (redirect loop)") from None
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
            raise SourceTimeout(f"{host} did not answer within {timeout:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise SourceUnreachable(f"could not connect to {host} ({_reason(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise UpstreamError(f"request to {host} failed ({type(exc).__name__})") from None
        try:
            body = self._read_capped(response, deadline, host, timeout)
        finally:
            response.close()
        return HttpResponse(
            status=response.status_code,
            headers=dict(response.headers),
            body=body,
            elapsed_ms=(time.monotonic() - started) * 1000.0,
        )

    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("POST", url, **kwargs)

    def _read_capped(self, response: requests.Response, deadline: float, host: str, timeout: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(f"{host} answered {int(declared):,} bytes, more than the {self.max_bytes:,} cap")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=16384):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ResponseTooLarge(f"{host} answered more than the {self.max_bytes:,}-byte cap")
                chunks.append(chunk)
                if time.monotonic() > deadline:  # a trickling answer must not hold the lookup forever
                    raise SourceTimeout(f"{host} did not finish answering within {timeout:g} s")
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            if isinstance(exc.__context__, TimeoutError) or "timed out" in str(exc).lower():
                raise SourceTimeout(f"{host} did not finish answering within {timeout:g} s") from None
            raise UpstreamError(f"{host} broke off its answer ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise UpstreamError(f"{host} broke off its answer ({type(exc).__name__})") from None
        return b"".join(chunks)


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("name or service not known", "host name not found"),
        ("temporary failure in name resolution", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("network is unreachable", "network unreachable"),
        ("timed out", "timed out"),
        ("ssl", "TLS error"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


def json_detail(response: HttpResponse, extract: Callable[[Any], Any]) -> str:
    """The service's own words about a failure, e.g. ``json_detail(r, lambda b: b["error"]["message"])``:
    one line of at most 200 characters, or "" when the body is not JSON or not of that shape."""
    try:
        value = extract(response.json())
    except (MalformedResponse, LookupError, TypeError, AttributeError):
        return ""
    return " ".join(str(value).split())[:200] if value not in (None, "") else ""


def raise_for_common_status(
    response: HttpResponse,
    source_title: str,
    *,
    detail: str = "",
    retry_after: float | None = None,
    key_configured: bool = True,
    key_hint: str = "",
) -> None:
    """Turn the statuses every API shares into errors: 401/403 key rejected, 429 rate limited, 5xx, other 4xx.

    Sources call this *after* handling their own special statuses (e.g. 404 meaning "never seen"), passing
    the service's own words as ``detail`` (see :func:`json_detail`) and, for 429, a ``retry_after`` found
    elsewhere than the ``Retry-After`` header. ``key_configured=False`` words a 401/403 as refused keyless
    access, with ``key_hint`` saying where to get a key.
    """
    status = response.status
    if status < 400:
        return
    said = f": {detail}" if detail else ""
    if status in (401, 403):
        if key_configured:
            raise AuthRejected(f"key rejected by {source_title} (HTTP {status}{said})")
        hint = f" — {key_hint}" if key_hint else ""
        raise AuthRejected(f"{source_title} refused access without a key (HTTP {status}{said}){hint}")
    if status == 429:
        retry = response.retry_after() if retry_after is None else retry_after
        wait = f"; retry after {retry:g} s" if retry is not None else ""
        raise RateLimited(f"{source_title} rate limit reached (HTTP 429{said}{wait})", retry_after=retry)
    problem = "had a server error" if status >= 500 else "refused the request"
    raise UpstreamError(f"{source_title} {problem} (HTTP {status}{said})", http_status=status)
