"""Indicator parsing: kinds, refanging, normalization, scope, junk around pasted text, extraction."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from otc import indicators
from otc.indicators import (
    extract_indicators,
    ip_scope,
    parse_indicator,
    registered_domain,
)
from otc.model import Indicator, Kind, Rejection, Scope


def indicator(text: str) -> Indicator:
    result = parse_indicator(text)
    assert isinstance(result, Indicator), f"{text!r} -> {result}"
    return result


def rejection(text: str) -> Rejection:
    result = parse_indicator(text)
    assert isinstance(result, Rejection), f"{text!r} -> {result}"
    return result


# --- kinds ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("8.8.8.8", Kind.IPV4, "8.8.8.8"),
        ("2606:4700:4700::1111", Kind.IPV6, "2606:4700:4700::1111"),
        ("2606:4700:4700:0:0:0:0:1111", Kind.IPV6, "2606:4700:4700::1111"),
        ("2606:4700:4700::1111".upper(), Kind.IPV6, "2606:4700:4700::1111"),
        ("203.0.113.0/24", Kind.CIDR, "203.0.113.0/24"),
        ("2001:db8:1234::/48", Kind.CIDR, "2001:db8:1234::/48"),
        ("evil.example.net", Kind.DOMAIN, "evil.example.net"),
        ("https://evil.example.net/a?b=c#d", Kind.URL, "https://evil.example.net/a?b=c#d"),
        ("Admin@Example.COM", Kind.EMAIL, "admin@example.com"),
        ("D41D8CD98F00B204E9800998ECF8427E", Kind.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
        ("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", Kind.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", Kind.SHA256,
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("AS15169", Kind.ASN, "AS15169"),
        ("as15169", Kind.ASN, "AS15169"),
        ("ASN15169", Kind.ASN, "AS15169"),
        ("AS 15169", Kind.ASN, "AS15169"),
    ],
)
def test_each_kind_is_recognised_and_normalized(text, kind, value):
    result = indicator(text)
    assert (result.kind, result.value, result.original) == (kind, value, text)


def test_hashes_are_not_applicable_to_scope_and_shareable():
    result = indicator("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert result.scope is Scope.NOT_APPLICABLE and result.is_shareable


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ab" * 64, "unsupported hash length: 128 hex characters (MD5, SHA-1 or SHA-256 only)"),  # SHA-512
        ("AS4294967296", "invalid ASN: above 4294967295"),
        ("256.1.1.1", "invalid IPv4 address: octet 256 is above 255"),
        ("1.2.3.999", "invalid IPv4 address: octet 999 is above 255"),
        ("report.txt", "invalid domain: unknown top-level domain '.txt'"),
        ("foo.*.example.com", "invalid domain: a wildcard '*' is only allowed as the whole first label"),
        ("exam%ple.com", "invalid domain: character '%' not allowed"),
        ("-bad.example.com", "invalid domain: label '-bad' starts with a hyphen"),
        (".".join(["a" * 60] * 5) + ".com", "invalid domain: name longer than 253 octets"),
        ("xn--zz.com", "invalid domain: a label is not valid punycode (xn--)"),
        ("i❤.ws", "invalid domain: Codepoint U+2764 at position 2 of 'i❤' not allowed"),
        ("hello", "not a recognised indicator"),
        ("12345", "not a recognised indicator"),
        ("1.2.3.4.5", "not a recognised indicator"),
    ],
)
def test_invalid_input_is_rejected_with_the_reason(text, reason):
    result = rejection(text)
    assert (result.status, result.reason) == ("invalid", reason)


@pytest.mark.parametrize("text", ["", "   ", "\t\n", None])
def test_empty_cells_are_empty_rejections(text):
    result = parse_indicator(text)
    assert isinstance(result, Rejection)
    assert (result.status, result.reason) == ("empty", "empty cell")


def test_non_string_cells_are_read_as_text():
    assert parse_indicator(15169).reason == "not a recognised indicator"
    result = parse_indicator(3221225985)
    assert (result.status, result.candidates) == ("ambiguous", ("192.0.2.1",))


# --- refanging ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value", "note"),
    [
        ("example[.]com", "example.com", "refanged: [.] -> ."),
        ("example(.)com", "example.com", "refanged: (.) -> ."),
        ("example{.}com", "example.com", "refanged: {.} -> ."),
        ("example[dot]com", "example.com", "refanged: [dot] -> ."),
        ("example(DOT)com", "example.com", "refanged: (DOT) -> ."),
        ("example\\.com", "example.com", "refanged: \\. -> ."),
        ("http[://]example.com/x", "http://example.com/x", "refanged: [://] -> ://"),
        ("hxxp://example.com/x", "http://example.com/x", "refanged: hxxp -> http"),
        ("hXXps[:]//example.com/x", "https://example.com/x", "refanged: [:] -> :, hXXps -> https"),
        ("fxp://files.example.com/x", "ftp://files.example.com/x", "refanged: fxp -> ftp"),
        ("hxxps://example[.]com/login", "https://example.com/login", "refanged: [.] -> ., hxxps -> https"),
        ("user[@]example.com", "user@example.com", "refanged: [@] -> @"),
        ("user(@)example.com", "user@example.com", "refanged: (@) -> @"),
        ("user[at]example.com", "user@example.com", "refanged: [at] -> @"),
        ("user{AT}example.com", "user@example.com", "refanged: {AT} -> @"),
        ("8[.]8[.]8[.]8", "8.8.8.8", "refanged: [.] -> ."),
        ("10[.]0[.]0[.]0/8", "10.0.0.0/8", "refanged: [.] -> ."),
    ],
)
def test_refanging_is_undone_and_noted(text, value, note):
    result = indicator(text)
    assert result.value == value
    assert result.notes[0] == note


def test_hxxps_never_becomes_http():
    for text in ("hxxps://example.com", "HXXPS://example.com", "hxxps[:]//example.com", "hxxps[://]example.com"):
        assert indicator(text).value == "https://example.com"


def test_refang_inside_the_path_too():
    assert indicator("hxxp://example[.]com/dl/a[.]exe").value == "http://example.com/dl/a.exe"


# --- domains --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "registered"),
    [
        ("www.example.co.uk", "example.co.uk"),
        ("a.b.c.example.com.br", "example.com.br"),
        ("foo.blogspot.com", "blogspot.com"),  # ICANN section: the domain a registrar sold
        ("x.city.kawasaki.jp", "city.kawasaki.jp"),  # PSL exception rule
        ("a.b.kawasaki.jp", "a.b.kawasaki.jp"),  # PSL wildcard rule
        ("co.uk", None),  # a public suffix itself
    ],
)
def test_registered_domain_follows_the_public_suffix_list(text, registered):
    result = indicator(text)
    assert result.registered_domain == registered
    assert registered_domain(text) == registered


def test_public_suffix_itself_is_noted():
    assert "a public suffix itself: it has no registrable domain" in indicator("co.uk").notes


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("printer.local", Scope.PRIVATE),
        ("db.internal", Scope.PRIVATE),
        ("nas.lan", Scope.PRIVATE),
        ("router.home.arpa", Scope.PRIVATE),
        ("dc01.corp", Scope.PRIVATE),
        ("site.test", Scope.RESERVED),
        ("site.example", Scope.RESERVED),
        ("site.invalid", Scope.RESERVED),
        ("app.localhost", Scope.RESERVED),
        ("localhost", Scope.RESERVED),
        ("example.com", Scope.GLOBAL),  # registered and reserved by IANA, but a real public name
    ],
)
def test_domain_scope(text, scope):
    result = indicator(text)
    assert result.scope is scope
    assert result.is_shareable is (scope is Scope.GLOBAL)
    if scope is not Scope.GLOBAL:
        assert result.registered_domain is None


def test_idn_url_keeps_unicode_for_display_and_a_labels_for_lookups():
    result = indicator("https://Bücher.example.de/straße?q=1")
    assert result.value == "https://xn--bcher-kva.example.de/straße?q=1"
    assert result.display == "https://bücher.example.de/straße?q=1"
    assert (result.host, result.host_kind, result.registered_domain) == (
        "xn--bcher-kva.example.de", Kind.DOMAIN, "example.de")


def test_full_width_dots_and_letters_are_mapped():
    result = indicator("ｅｘａｍｐｌｅ。ｃｏｍ")
    assert result.value == "example.com"


def test_domain_with_port():
    result = indicator("example.com:8080")
    assert (result.kind, result.value, result.port) == (Kind.DOMAIN, "example.com", 8080)


# --- IP addresses and networks --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("8.8.8.8", Scope.GLOBAL),
        ("10.1.2.3", Scope.PRIVATE),
        ("172.16.0.1", Scope.PRIVATE),
        ("172.32.0.1", Scope.GLOBAL),
        ("192.168.1.1", Scope.PRIVATE),
        ("100.127.255.255", Scope.SHARED),
        ("100.128.0.1", Scope.GLOBAL),
        ("169.254.1.1", Scope.LINK_LOCAL),
        ("0.1.2.3", Scope.RESERVED),
        ("255.255.255.255", Scope.RESERVED),
        ("198.18.0.1", Scope.RESERVED),
        ("198.51.100.7", Scope.DOCUMENTATION),
        ("203.0.113.7", Scope.DOCUMENTATION),
        ("192.0.0.9", Scope.GLOBAL),
        ("192.0.0.1", Scope.RESERVED),
        ("239.255.255.250", Scope.MULTICAST),
        ("::1", Scope.LOOPBACK),
        ("::", Scope.RESERVED),
        ("fc00::1", Scope.PRIVATE),
        ("fd12:3456::1", Scope.PRIVATE),
        ("fe80::abcd", Scope.LINK_LOCAL),
        ("ff02::fb", Scope.MULTICAST),
        ("2001:db8::1", Scope.DOCUMENTATION),
        ("3fff::1", Scope.DOCUMENTATION),
        ("2001::1", Scope.RESERVED),
        ("4000::1", Scope.RESERVED),
        ("2606:4700::1111", Scope.GLOBAL),
        ("64:ff9b::808:808", Scope.GLOBAL),
    ],
)
def test_address_scope(text, scope):
    assert indicator(text).scope is scope
    assert ip_scope(text) is scope
    assert ip_scope(ipaddress.ip_address(text)) is scope


def test_ipv4_mapped_ipv6_becomes_ipv4_with_a_note():
    result = indicator("::ffff:10.0.0.1")
    assert (result.kind, result.value, result.scope) == (Kind.IPV4, "10.0.0.1", Scope.PRIVATE)
    assert result.notes == ("IPv4-mapped IPv6 ::ffff:10.0.0.1 read as 10.0.0.1",)
    assert indicator("::ffff:0102:0304").value == "1.2.3.4"


@pytest.mark.parametrize(
    ("text", "value", "notes"),
    [
        ("10.0.0.5/8", "10.0.0.0/8", ("host bits cleared: 10.0.0.5/8 -> 10.0.0.0/8",)),
        ("2001:db8::1/32", "2001:db8::/32", ("host bits cleared: 2001:db8::1/32 -> 2001:db8::/32",)),
        ("192.168.0.0/16", "192.168.0.0/16", ()),
    ],
)
def test_cidr_host_bits_are_cleared_with_a_note(text, value, notes):
    result = indicator(text)
    assert (result.kind, result.value, result.notes) == (Kind.CIDR, value, notes)


def test_cidr_scope():
    assert indicator("10.20.0.0/16").scope is Scope.PRIVATE
    assert indicator("8.8.8.0/24").scope is Scope.GLOBAL
    wide = indicator("8.0.0.0/5")  # 8.0.0.0-15.255.255.255 also holds 10/8: a public notation, with a note
    assert wide.scope is Scope.GLOBAL
    assert wide.notes == ("also covers special-purpose ranges: 10.0.0.0/8 (private)",)


def test_single_address_cidr_is_the_address():
    result = indicator("1.2.3.4/32")
    assert (result.kind, result.value, result.notes) == (Kind.IPV4, "1.2.3.4", ("/32 is a single address",))


@pytest.mark.parametrize("text", ["10.0.0.0/33", "2001:db8::/129"])
def test_cidr_prefix_too_long(text):
    assert rejection(text).reason.startswith("invalid CIDR: prefix length")


def test_leading_zeros_that_mean_the_same_either_way_are_accepted_with_a_note():
    result = indicator("01.02.03.04")
    assert result.value == "1.2.3.4"
    assert result.notes == ("leading zeros removed (octal and decimal readings agree)",)


def test_leading_zeros_with_digits_octal_cannot_hold_have_one_reading_but_still_ask():
    result = rejection("09.1.1.1")
    assert (result.status, result.candidates) == ("ambiguous", ("9.1.1.1",))


def test_ambiguous_ipv4_in_a_url_host_offers_both_urls():
    result = rejection("http://010.1.1.1:8080/x")
    assert result.status == "ambiguous"
    assert result.candidates == ("http://8.1.1.1:8080/x", "http://10.1.1.1:8080/x")


@pytest.mark.parametrize(
    ("text", "kind", "value", "port"),
    [
        ("1.1.1.1:449", Kind.IPV4, "1.1.1.1", 449),
        ("[2001:db8::1]:443", Kind.IPV6, "2001:db8::1", 443),
        ("[::1]", Kind.IPV6, "::1", None),
    ],
)
def test_ports_are_kept_apart(text, kind, value, port):
    result = indicator(text)
    assert (result.kind, result.value, result.port) == (kind, value, port)


@pytest.mark.parametrize("text", ["1.1.1.1:0", "1.1.1.1:70000", "example.com:99999", "[::1]:0"])
def test_impossible_ports_are_rejected(text):
    assert rejection(text).reason.startswith("invalid port")


@pytest.mark.parametrize("text", ["12:30:45", "10:15", "23:59:59.123", "9:05"])
def test_clock_times_are_not_ipv6(text):
    result = rejection(text)
    assert result.reason == "looks like a clock time, not an indicator"


def test_eight_groups_are_ipv6_even_when_small():
    assert indicator("1:2:3:4:5:6:7:8").value == "1:2:3:4:5:6:7:8"


# --- URLs and e-mail ------------------------------------------------------------------------------
def test_url_userinfo_does_not_become_the_host():
    result = indicator("http://paypal.com@evil.example.net/login")
    assert (result.host, result.registered_domain) == ("evil.example.net", "example.net")


def test_url_scheme_and_host_are_lowercased_path_kept():
    result = indicator("HTTPS://WWW.Example.COM:0443/Path/File.PHP?Q=A")
    assert result.value == "https://www.example.com:443/Path/File.PHP?Q=A"
    assert result.port == 443


def test_url_with_ipv4_host():
    result = indicator("http://192.168.1.10:8080/admin")
    assert (result.host, result.host_kind, result.port, result.scope) == (
        "192.168.1.10", Kind.IPV4, 8080, Scope.PRIVATE)


def test_url_without_scheme_says_which_was_assumed():
    result = indicator("example.com/dl/payload.exe")
    assert (result.kind, result.value) == (Kind.URL, "http://example.com/dl/payload.exe")
    assert result.notes == ("no scheme given: http:// assumed",)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http://", "invalid URL: no host"),
        ("http://example.com:80x/", "invalid URL: bad port '80x'"),
        ("http://[2001:db8::1/", "invalid URL: malformed [IPv6] host"),
        ("http://exa mple.com", None),  # two tokens: see test_several_indicators_in_one_cell
    ],
)
def test_broken_urls(text, reason):
    result = parse_indicator(text)
    assert isinstance(result, Rejection)
    if reason:
        assert result.reason == reason


def test_email_variants():
    assert indicator("mailto:Abuse@Example.com?subject=hi").value == "abuse@example.com"
    literal = indicator("user@[192.0.2.5]")
    assert (literal.host, literal.host_kind, literal.scope) == ("192.0.2.5", Kind.IPV4, Scope.DOCUMENTATION)
    v6 = indicator("user@[IPv6:2001:db8::5]")
    assert (v6.value, v6.host_kind) == ("user@[IPv6:2001:db8::5]", Kind.IPV6)
    internal = indicator("admin@dc01.corp")
    assert internal.scope is Scope.PRIVATE
    assert rejection("a@b@example.com").reason == "invalid e-mail address"
    assert rejection("user@example..com").reason == "invalid e-mail address: invalid domain: empty label"


# --- junk around pasted indicators ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'example.com'", "example.com"),
        ('"example.com"', "example.com"),
        ("«example.com»", "example.com"),
        ("「example.com」", "example.com"),
        ("<http://example.com/a>", "http://example.com/a"),
        ("(1.2.3.4)", "1.2.3.4"),
        ("[1.2.3.4]", "1.2.3.4"),
        ("example.com,", "example.com"),
        ("example.com;", "example.com"),
        ("\u200bexample.com\u200b", "example.com"),
        ("\ufeffexample.com", "example.com"),
        ("\u00a0example.com\u3000", "example.com"),
        ("(see http://example.com/wiki/Foo_(bar))", None),
        ("http://example.com/wiki/Foo_(bar)", "http://example.com/wiki/Foo_(bar)"),
    ],
)
def test_junk_around_an_indicator_is_removed(text, value):
    result = parse_indicator(text)
    if value is None:
        assert isinstance(result, Indicator) and result.value == "http://example.com/wiki/Foo_(bar)"
    else:
        assert isinstance(result, Indicator), result
        assert result.value == value


def test_removed_junk_is_noted():
    result = indicator("“example.com”")
    assert result.notes == ("removed around the indicator: '“' and '”'",)


# --- text with several tokens ---------------------------------------------------------------------
def test_several_indicators_in_one_cell_are_ambiguous():
    result = rejection("1.1.1.1, example.com")
    assert (result.status, result.reason, result.candidates) == (
        "ambiguous", "2 indicators in one cell", ("1.1.1.1", "example.com"))


def test_one_indicator_in_a_sentence_cell_is_taken_with_a_note():
    result = indicator("C2 at 203.0.113.9 today")
    assert result.value == "203.0.113.9"
    assert result.original == "C2 at 203.0.113.9 today"
    assert result.notes[-1] == "found in the text around it"


def test_extract_from_a_list_reports_every_token():
    sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    found = extract_indicators(f"8.8.8.8\n010.1.1.1, example[.]com;hxxp://a.example.org/x|{sha256}\nnot-an-ioc.txt")
    assert [(type(r).__name__, getattr(r, "value", None) or r.reason) for r in found] == [
        ("Indicator", "8.8.8.8"),
        ("Rejection", "ambiguous IPv4 (leading zeros)"),
        ("Indicator", "example.com"),
        ("Indicator", "http://a.example.org/x"),
        ("Indicator", sha256),
        ("Rejection", "invalid domain: unknown top-level domain '.txt'"),
    ]


def test_extract_from_prose_skips_words_and_version_numbers_but_not_broken_indicators():
    text = ("At 12:30 version 1.2.3 of the loader (e.g. report.pdf) beaconed to 010.1.1.1 and "
            "«update[.]example[.]net», then to hxxps://cdn.example.org/a,b.js.")
    found = extract_indicators(text)
    assert [(type(r).__name__, getattr(r, "value", None) or r.reason) for r in found] == [
        ("Rejection", "ambiguous IPv4 (leading zeros)"),
        ("Indicator", "update.example.net"),
        ("Indicator", "https://cdn.example.org/a,b.js"),
    ]


def test_extract_splits_urls_glued_by_commas():
    found = extract_indicators("http://a.example.com/x,http://b.example.com/y")
    assert [r.value for r in found] == ["http://a.example.com/x", "http://b.example.com/y"]


def test_extract_keeps_duplicates_in_order():
    found = extract_indicators("example.com EXAMPLE.com example[.]com")
    assert [r.key for r in found] == [("domain", "example.com")] * 3


@pytest.mark.parametrize("text", ["", "   \n ", None])
def test_extract_from_nothing_is_empty(text):
    assert extract_indicators(text) == []


# --- the fast constructor -------------------------------------------------------------------------
def test_fast_constructor_builds_the_same_frozen_indicator():
    fields = {
        "kind": Kind.URL, "value": "http://x.example/", "display": "http://x.example/", "original": "x",
        "scope": Scope.GLOBAL, "notes": ("n",), "host": "x.example", "host_kind": Kind.DOMAIN, "port": 80,
        "registered_domain": "x.example", "wildcard": False,
    }
    fast, regular = indicators._indicator(**fields), Indicator(**fields)
    assert type(fast) is Indicator
    assert fast == regular and hash(fast) == hash(regular)
    assert dataclasses.asdict(fast) == dataclasses.asdict(regular)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.value = "y"  # type: ignore[misc]


def test_every_field_is_set_on_parsed_indicators():
    for text in ("8.8.8.8", "example.com", "https://[::1]:8/x", "AS1", "user@example.com", "10.0.0.0/8"):
        result = indicator(text)
        assert dataclasses.asdict(result)  # raises AttributeError if a slot were left unset


def test_ambiguous_cidr_and_ip_port_candidates_keep_their_suffix():
    assert rejection("010.0.0.0/8").candidates == ("8.0.0.0/8", "10.0.0.0/8")
    assert rejection("010.1.1.1:8080").candidates == ("8.1.1.1:8080", "10.1.1.1:8080")


def test_the_same_indicator_repeated_in_a_cell_is_that_indicator():
    result = indicator("example.com EXAMPLE.com")
    assert (result.value, result.original, result.notes) == (
        "example.com", "example.com EXAMPLE.com", ("repeated in the cell",))


def test_benchmark_lines_are_deterministic_and_each_parses_as_its_kind():
    from bench.p4_parse import generate_lines

    lines, kinds = generate_lines(3000, seed=11)
    assert (lines, kinds) == generate_lines(3000, seed=11)
    defanged = sum(1 for line in lines if "[" in line or "(." in line or "{." in line or "hxxp" in line)
    assert 0.15 < defanged / len(lines) < 0.25
    for line, kind in zip(lines, kinds):
        result = parse_indicator(line)
        assert isinstance(result, Indicator) and result.kind.value == kind, (line, result)


def test_an_internationalized_name_is_always_called_out():
    # аррӏе.com is Cyrillic: shown in Unicode it would pass for apple.com, so a note names both forms
    lookalike = indicator("xn--80ak6aa92e.com")
    assert lookalike.display == "аррӏе.com"
    assert lookalike.notes == ("internationalized name: shown as аррӏе.com, looked up as xn--80ak6aa92e.com",)
    url = indicator("https://münchen.de/")
    assert url.notes == ("internationalized name: shown as münchen.de, looked up as xn--mnchen-3ya.de",)
    assert indicator("example.com").notes == ()
