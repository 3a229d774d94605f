"""Property-based tests of indicator parsing (hypothesis): no input breaks it, and what it returns holds up."""

from __future__ import annotations

import ipaddress
import string

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from otc.indicators import extract_indicators, parse_indicator, registered_domain
from otc.model import Indicator, Kind, Rejection, Scope

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text built from the characters indicators and defangs are made of, so the deep paths get exercised.
PIECES = list("0123456789abcdefxX.:/[]()@%*-_ hxtpsASN{}“”『』«»'\",;|\\\u200bü") + [
    "[.]", "hxxp://", "https://", "::", "xn--", ".com", ".de", "[dot]", "{at}", "192.", "0x", "ffff:", "%eth0"]
INDICATORISH = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)

_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_HOSTNAME = st.builds(
    lambda labels, unicode_label, suffix, upper: (
        (unicode_label + "." if unicode_label else "") + ".".join(labels) + "." + suffix
    ).upper() if upper else (unicode_label + "." if unicode_label else "") + ".".join(labels) + "." + suffix,
    st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["", "", "münchen", "россия", "例え", "bücher"]),
    st.sampled_from(["com", "co.uk", "de", "test", "local", "xn--p1ai", "рф", "example"]), st.booleans(),
)
_IPV4_TEXT = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_IPV6_TEXT = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
_HOST = st.one_of(_HOSTNAME, _IPV4_TEXT, _IPV6_TEXT.map(lambda text: f"[{text}]"))
_PORT = st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}"))
_PATH = st.sampled_from(["", "/", "/a/b.php?id=1", "/x(1)", "/%20y#frag"])
_URL = st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
                 st.sampled_from(["http", "https", "HXXPS", "ftp"]), _HOST, _PORT, _PATH)
_EMAIL = st.builds(lambda local, host: f"{local}@{host}", _LABEL, _HOSTNAME)
_CIDR = st.builds(lambda address, prefix: f"{address}/{prefix}", _IPV4_TEXT, st.integers(0, 32))
_HASH = st.sampled_from([16, 20, 32]).flatmap(lambda size: st.binary(min_size=size, max_size=size)).map(
    lambda data: data.hex())
_PLAIN_INDICATOR = st.one_of(_HOSTNAME, _HOSTNAME.map(lambda name: "*." + name), _HOSTNAME.map(lambda n: n + "."),
                             _IPV4_TEXT, _IPV6_TEXT, _URL, _EMAIL, _CIDR, _HASH,
                             st.integers(0, 2**32 - 1).map(lambda n: f"AS{n}"),
                             st.builds(lambda ip, port: ip + port, _IPV4_TEXT, _PORT))
# the same, as pasted: defanged, in quotes or brackets, with punctuation after it
INDICATOR_TEXT = st.builds(
    lambda text, defang, wrap: wrap[0] + (text.replace(".", defang) if defang else text) + wrap[1],
    _PLAIN_INDICATOR, st.sampled_from(["", "", "[.]", "(.)", "[dot]"]),
    st.sampled_from([("", ""), ("“", "”"), ("(", ")"), ("<", ">"), ("'", "',"), ("『", "』あ"), (" ", ". ")]),
)
ANY_TEXT = st.one_of(st.text(max_size=200), INDICATORISH, INDICATOR_TEXT)
STATUSES = {"empty", "invalid", "ambiguous"}


def check_result(result: Indicator | Rejection, text: str) -> None:
    """What must hold of any answer the parser gives."""
    if isinstance(result, Rejection):
        assert result.reason.strip()
        assert result.status in STATUSES
        assert all(isinstance(candidate, str) and candidate for candidate in result.candidates)
        return
    assert isinstance(result, Indicator)
    assert result.value and result.value == result.value.strip() and not any(c.isspace() for c in result.value)
    assert result.display
    if result.kind in (Kind.MD5, Kind.SHA1, Kind.SHA256):
        assert result.scope is Scope.NOT_APPLICABLE
        assert set(result.value) <= set(string.hexdigits.lower())
    elif result.kind is Kind.IPV4:
        assert str(ipaddress.IPv4Address(result.value)) == result.value
    elif result.kind is Kind.IPV6:
        assert str(ipaddress.IPv6Address(result.value)) == result.value
    elif result.kind is Kind.CIDR:
        assert str(ipaddress.ip_network(result.value, strict=True)) == result.value
    elif result.kind is Kind.DOMAIN:
        assert result.value.isascii() and result.value == result.value.lower() and "*" not in result.value
        assert result.registered_domain is None or result.value.endswith(result.registered_domain)
    elif result.kind is Kind.URL:
        assert "://" in result.value and result.host
    elif result.kind is Kind.EMAIL:
        assert "@" in result.value and result.host
    elif result.kind is Kind.ASN:
        assert result.value.startswith("AS") and result.value[2:].isdigit()
    if result.port is not None:
        assert 0 < result.port <= 65535


@SETTINGS
@given(ANY_TEXT)
def test_any_text_gives_an_indicator_or_a_rejection_with_a_reason(text):
    result = parse_indicator(text)
    check_result(result, text)
    assert result.original == text


@SETTINGS
@given(ANY_TEXT)
def test_extraction_never_fails(text):
    found = extract_indicators(text)
    assert isinstance(found, list)
    for result in found:
        check_result(result, text)


@SETTINGS
@given(st.one_of(INDICATOR_TEXT, INDICATORISH))
def test_parsing_a_normalized_value_or_its_display_gives_the_same_indicator(text):
    result = parse_indicator(text)
    assume(isinstance(result, Indicator))
    for form in (result.value, result.display):
        again = parse_indicator(form)
        assert isinstance(again, Indicator), (form, again)
        assert again.key == result.key
        assert again.scope is result.scope


# --- addresses ------------------------------------------------------------------------------------
@SETTINGS
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_address_parses_to_itself_with_a_consistent_scope(n):
    address = ipaddress.IPv4Address(n)
    result = parse_indicator(str(address))
    assert isinstance(result, Indicator)
    assert (result.kind, result.value) == (Kind.IPV4, str(address))
    assert (result.scope is Scope.LOOPBACK) == address.is_loopback
    assert (result.scope is Scope.MULTICAST) == address.is_multicast
    assert (result.scope is Scope.LINK_LOCAL) == address.is_link_local
    if result.scope is Scope.GLOBAL:
        assert address.is_global  # ours is the stricter of the two
    if result.scope is Scope.PRIVATE:
        assert any(address in ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@SETTINGS
@given(st.integers(min_value=0, max_value=2**128 - 1), st.booleans())
def test_every_ipv6_address_parses_to_its_rfc5952_form(n, exploded):
    address = ipaddress.IPv6Address(n)
    result = parse_indicator(address.exploded if exploded else address.compressed)
    assert isinstance(result, Indicator)
    if address.ipv4_mapped is not None:
        assert (result.kind, result.value) == (Kind.IPV4, str(address.ipv4_mapped))
        return
    assert (result.kind, result.value) == (Kind.IPV6, address.compressed)
    assert (result.scope is Scope.LOOPBACK) == address.is_loopback
    assert (result.scope is Scope.MULTICAST) == address.is_multicast
    if result.scope is Scope.GLOBAL and not address in ipaddress.ip_network("2001::/23"):
        assert address.is_global


@SETTINGS
@given(st.tuples(*[st.integers(0, 255)] * 4), st.tuples(*[st.integers(0, 3)] * 4))
def test_leading_zeros_are_never_resolved_silently(octets, padding):
    text = ".".join("0" * pad + str(octet) for octet, pad in zip(octets, padding))
    result = parse_indicator(text)
    decimal = ".".join(map(str, octets))
    if not any(padding):
        assert isinstance(result, Indicator) and result.value == decimal
        return
    octal_parts = []
    for octet, pad in zip(octets, padding):
        digits = str(octet)
        octal_parts.append(int(digits, 8) if pad and set(digits) <= set("01234567") else None)
    readings = {decimal}
    if None not in octal_parts and max(octal_parts) <= 255:
        readings.add(".".join(map(str, octal_parts)))
    if isinstance(result, Indicator):
        assert readings == {result.value}  # accepted only when octal and decimal agree
        assert result.notes == ("leading zeros removed (octal and decimal readings agree)",)
    else:
        assert result.status == "ambiguous"
        assert decimal in result.candidates


# --- names, refanging -----------------------------------------------------------------------------
LIBRARY = PublicSuffixList(only_icann=True)  # a separate instance: the library's own answer, asked per name
LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
SUFFIXES = st.sampled_from(["com", "net", "org", "co.uk", "com.br", "de", "jp", "kawasaki.jp", "city.kawasaki.jp",
                            "ck", "www.ck", "blogspot.com", "xn--p1ai", "github.io", "k12.ma.us"])


@SETTINGS
@given(st.lists(LABEL, min_size=1, max_size=4), SUFFIXES)
def test_registered_domain_agrees_with_the_public_suffix_list_library(labels, suffix):
    name = ".".join(labels) + "." + suffix
    assume(len(name) <= 253)
    expected = LIBRARY.privatesuffix(name)
    assert registered_domain(name) == expected
    result = parse_indicator(name)
    assert isinstance(result, Indicator) and result.registered_domain == expected


DEFANGS = st.sampled_from([("[.]", "."), ("(.)", "."), ("[dot]", "."), ("{.}", ".")])


@SETTINGS
@given(st.lists(LABEL, min_size=1, max_size=3), st.sampled_from(["com", "co.uk", "org"]), DEFANGS,
       st.sampled_from(["", "http://", "https://", "hxxp://", "hxxps://", "http[:]//", "hxxps[://]"]),
       st.sampled_from(["", "/", "/a/b.php?x=1"]))
def test_defanged_forms_parse_to_the_plain_indicator(labels, suffix, defang, scheme, path):
    host = ".".join(labels) + "." + suffix
    defanged_host = host.replace(".", defang[0])
    plain_scheme = {"hxxp://": "http://", "hxxps://": "https://", "http[:]//": "http://", "hxxps[://]": "https://"}.get(
        scheme, scheme)
    if not scheme:
        path = ""  # a bare host/path would be a URL with an assumed scheme; covered elsewhere
    plain, defanged = parse_indicator(plain_scheme + host + path), parse_indicator(scheme + defanged_host + path)
    assert isinstance(plain, Indicator) and isinstance(defanged, Indicator), (plain, defanged)
    assert defanged.key == plain.key
    assert defanged.notes and defanged.notes[0].startswith("refanged: ")
