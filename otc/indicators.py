"""Indicator parsing: pasted text or a CSV cell -> a normalized :class:`Indicator` or a :class:`Rejection`.

(First cut: plain forms only. The full refang/IDN/scope rules are being written against the shared edge cases.)
"""

from __future__ import annotations

import ipaddress
import re

from otc.model import Indicator, Kind, Rejection, Scope

_HASHES = {32: Kind.MD5, 40: Kind.SHA1, 64: Kind.SHA256}


def ip_scope(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Scope:
    if address.is_loopback:
        return Scope.LOOPBACK
    if address.is_link_local:
        return Scope.LINK_LOCAL
    if address.is_multicast:
        return Scope.MULTICAST
    if address.version == 4 and address in ipaddress.ip_network("100.64.0.0/10"):
        return Scope.SHARED
    if address.is_private:
        return Scope.PRIVATE
    if address.is_global:
        return Scope.GLOBAL
    return Scope.RESERVED


def parse_indicator(text: str) -> Indicator | Rejection:
    raw = text
    text = text.strip()
    if not text:
        return Rejection(raw, "empty cell", status="empty")
    try:
        address = ipaddress.ip_address(text)
        kind = Kind.IPV4 if address.version == 4 else Kind.IPV6
        return Indicator(kind, str(address), str(address), raw, scope=ip_scope(address))
    except ValueError:
        pass
    lowered = text.lower()
    if re.fullmatch(r"[0-9a-f]+", lowered) and len(lowered) in _HASHES:
        return Indicator(_HASHES[len(lowered)], lowered, lowered, raw, scope=Scope.NOT_APPLICABLE)
    if re.fullmatch(r"(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}\.?", lowered):
        host = lowered.rstrip(".")
        return Indicator(Kind.DOMAIN, host, host, raw)
    return Rejection(raw, "not a recognised indicator")
