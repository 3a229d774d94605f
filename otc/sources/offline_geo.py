"""Offline country and AS name for IP addresses, from data shipped in two packages — nothing leaves the machine.

- ``iptocc``: the country a Regional Internet Registry delegated the block to (``rir_country_code``). The
  data is compiled into the wheel; the package publishes no data date, so its version stands in for one.
- ``geoip2fast``: MaxMind GeoLite2 country and AS name (``geoip2fast-asn-ipv6.dat.gz``, shipped in the
  wheel, date in the file). It is loaded once per process behind a lock (~0.7 s) and never updated: its
  update functions download from GitHub and ``GeoIPDetail.get_hostname`` does a reverse DNS lookup, so
  neither is ever called. The library keeps its tables in module globals: a second ``GeoIP2Fast`` with
  another file would replace ours, so nothing else in ``otc`` instantiates it.
- a country-level map location: the country's centroid from ``countryinfo`` (``approximate=True``).

This source runs in local-only mode (``third_party=False``), so it is also offered non-global addresses;
it answers those ``not_applicable`` ("N/A (private address)") without looking anything up.
"""

from __future__ import annotations

import gzip
import ipaddress
import math
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from otc.model import IP_KINDS, Indicator, Kind, Location, Scope, SourceResult, Status
from otc.sources.base import Source, SourceContext

GEOIP2FAST_FILE = "geoip2fast-asn-ipv6.dat.gz"  # country + ASN, IPv4 + IPv6

# What the analyst reads for an address that is not on the public Internet.
SCOPE_LABELS = {
    Scope.PRIVATE: "private",
    Scope.SHARED: "shared CGNAT",
    Scope.DOCUMENTATION: "documentation",
    Scope.LOOPBACK: "loopback",
    Scope.LINK_LOCAL: "link-local",
    Scope.MULTICAST: "multicast",
    Scope.RESERVED: "reserved",
}

_ISO2 = re.compile(r"^[A-Z]{2}$")


# -- geoip2fast, loaded once ------------------------------------------------------------------------
_geoip_lock = threading.Lock()
_geoip: Any = None


def _geoip2fast_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("geoip2fast")
    if spec is None or spec.origin is None:
        raise RuntimeError("geoip2fast is not installed")
    # A full path: given a bare file name, geoip2fast would first look in the current directory.
    return Path(spec.origin).parent / GEOIP2FAST_FILE


def _import_geoip2fast() -> Any:
    """Import geoip2fast without keeping the environment changes its import makes (it sets
    PYTHONWARNINGS=ignore and PYTHONIOENCODING for the whole process and every child)."""
    saved = {name: os.environ.get(name) for name in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    try:
        from geoip2fast import GeoIP2Fast
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return GeoIP2Fast


def geoip_database() -> Any:
    """The process's one loaded ``GeoIP2Fast`` (loaded on first use; ~0.7 s)."""
    global _geoip
    if _geoip is None:
        with _geoip_lock:
            if _geoip is None:
                geoip2fast_class = _import_geoip2fast()
                _geoip = geoip2fast_class(geoip2fast_data_file=str(_geoip2fast_path()), verbose=False)
    return _geoip


@lru_cache(maxsize=1)
def geoip2fast_data_date() -> str | None:
    """The GeoLite2 build date (``2024-06-18``), read from the head of the data file without loading it."""
    try:
        with gzip.open(_geoip2fast_path(), "rb") as handle:
            head = handle.read(4096)
    except (OSError, RuntimeError):
        return None
    match = re.search(rb"GeoLite2[-A-Za-z0-9]*-(\d{4})(\d{2})(\d{2})", head)
    return "-".join(part.decode() for part in match.groups()) if match else None


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


# -- countryinfo: centroids and names ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Country:
    code: str
    name: str
    latitude: float | None
    longitude: float | None


def _coordinate_pair(value: Any) -> tuple[float, float] | None:
    """A usable (lat, lon): two finite numbers in range and not the 0,0 placeholder."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    try:
        lat, lon = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None
    return lat, lon


@lru_cache(maxsize=1)
def country_table() -> dict[str, Country]:
    """ISO alpha-2 -> name and centroid, built once from countryinfo (~0.1 s).

    ``latlng`` is the country's centre; a few territories have none and get their capital instead
    (still country-level). Where two entries share a code (``GB``: United Kingdom and Wales) the first
    one with coordinates wins.
    """
    from countryinfo import CountryInfo

    table: dict[str, Country] = {}
    for info in CountryInfo.all().values():
        code = str((info.get("ISO") or {}).get("alpha2") or "").upper()
        if not _ISO2.match(code):
            continue
        pair = _coordinate_pair(info.get("latlng")) or _coordinate_pair(info.get("capital_latlng"))
        known = table.get(code)
        if known is not None and (known.latitude is not None or pair is None):
            continue
        table[code] = Country(code, str(info.get("name") or code),
                              pair[0] if pair else None, pair[1] if pair else None)
    return table


def country_location(code: str, name: str | None = None) -> Location | None:
    """A country-level :class:`Location` for an ISO alpha-2 code, or ``None`` when no centroid is known."""
    country = country_table().get(code.upper())
    if country is None or country.latitude is None or country.longitude is None:
        return None
    label = f"{name or country.name} ({country.code})"
    return Location(country.latitude, country.longitude, label, approximate=True)


# -- the lookup itself ----------------------------------------------------------------------------
def lookup_address(address: str) -> tuple[Status, dict[str, Any], dict[str, Any], str]:
    """(status, fields, raw, message) for one IP address string. Pure apart from the loaded data."""
    import iptocc

    ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # geoip2fast reads ::ffff:a.b.c.d as 255.255.255.255
    text = str(ip)

    rir_code = iptocc.country_code(text)
    detail = geoip_database().lookup(text)
    geo = {key: value for key, value in detail.to_dict().items() if key not in ("elapsed_time", "hostname", "city")}
    raw = {"address": text, "iptocc": rir_code, "geoip2fast": geo}

    if detail.is_private:
        # geoip2fast knows the range as special-purpose although the scope said global: say what it is.
        return Status.NOT_APPLICABLE, {}, raw, f"N/A (special-purpose address: {detail.country_name})"

    geo_code = str(detail.country_code or "").upper()
    geo_code = geo_code if _ISO2.match(geo_code) or geo_code in ("EU", "ASIA") else ""
    fields: dict[str, Any] = {}
    country_code = geo_code or (rir_code or "")
    if country_code:
        fields["country_code"] = country_code
        if geo_code and detail.country_name and not detail.country_name.startswith("<"):
            fields["country_name"] = detail.country_name
        else:
            known = country_table().get(country_code)
            if known is not None:
                fields["country_name"] = known.name
    if rir_code:
        fields["rir_country_code"] = rir_code
    if detail.asn_name:
        fields["as_name"] = detail.asn_name
    if detail.asn_cidr:
        fields["asn_cidr"] = detail.asn_cidr
    if geo_code and detail.cidr:
        fields["network_cidr"] = detail.cidr
    if not fields:
        return Status.NOT_FOUND, {}, raw, "no offline record"
    return Status.OK, fields, raw, ""


class OfflineGeoSource(Source):
    name = "offline_geo"
    title = "Offline country & AS"
    description = "Country (GeoLite2 and RIR delegation) and AS name from data on this machine"
    kinds = frozenset({Kind.IPV4, Kind.IPV6, Kind.URL})
    third_party = False
    max_concurrency = 2  # CPU-bound lookups of microseconds: more threads would only contend
    licence_note = "GeoLite2 data by MaxMind (CC BY-SA 4.0) via geoip2fast; RIR delegation data via iptocc"

    def applies_to(self, indicator: Indicator) -> bool:
        if indicator.kind in IP_KINDS:
            return True
        return indicator.kind is Kind.URL and indicator.host_kind in IP_KINDS and bool(indicator.host)

    def data_date(self) -> str | None:
        geo_date = geoip2fast_data_date() or "date unknown"
        return (f"geoip2fast {geo_date} (MaxMind GeoLite2), "
                f"iptocc {_package_version('iptocc')} (RIR delegations; the package gives no data date)")

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        if indicator.scope is not Scope.GLOBAL:
            label = SCOPE_LABELS.get(indicator.scope, indicator.scope.value.replace("_", "-"))
            return self.result(Status.NOT_APPLICABLE, message=f"N/A ({label} address)")
        address = indicator.value if indicator.kind in IP_KINDS else str(indicator.host)
        status, fields, raw, message = lookup_address(address)
        location = None
        if status is Status.OK and fields.get("country_code"):
            location = country_location(fields["country_code"], fields.get("country_name"))
        return self.result(status, fields, raw=raw, message=message, location=location)


SOURCE = OfflineGeoSource()
