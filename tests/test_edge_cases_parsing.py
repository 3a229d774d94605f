"""The parsing cases of ../shared/cases/edge_cases.jsonl, with their inputs embedded (no ../shared needed).

Each test name carries the case id. The expected values are the ones the case file states.
"""

from __future__ import annotations

import pytest

from otc.indicators import extract_indicators, parse_indicator
from otc.model import Indicator, Kind, Rejection, Scope


def indicator(text: str) -> Indicator:
    result = parse_indicator(text)
    assert isinstance(result, Indicator), f"{text!r} -> {result}"
    return result


def rejection(text: str) -> Rejection:
    result = parse_indicator(text)
    assert isinstance(result, Rejection), f"{text!r} -> {result}"
    return result


# --- DEFANG ---------------------------------------------------------------------------------------
def test_DEFANG_01_defanged_ip_is_one_ipv4_not_also_a_url():
    """Edge case DEFANG-01."""
    found = extract_indicators("198.51[.]100[.]248")
    assert len(found) == 1
    ip = found[0]
    assert (ip.kind, ip.value) == (Kind.IPV4, "198.51.100.248")
    assert ip.scope is Scope.DOCUMENTATION
    assert not ip.is_shareable
    assert ip.notes == ("refanged: [.] -> .",)
    assert parse_indicator("198.51[.]100[.]248") == ip


@pytest.mark.parametrize(
    ("text", "url", "note"),
    [
        ("hxxps://example.com", "https://example.com", "refanged: hxxps -> https"),
        ("HXXPS://example.com/login", "https://example.com/login", "refanged: HXXPS -> https"),
        ("http[:]//example1.test", "http://example1.test", "refanged: [:] -> :"),
        ("https[:]//example3.test", "https://example3.test", "refanged: [:] -> :"),
    ],
    ids=["DEFANG-02-hxxps", "DEFANG-02-HXXPS-path", "DEFANG-02-http-colon", "DEFANG-02-https-colon"],
)
def test_DEFANG_02_scheme_defangs_keep_the_scheme(text, url, note):
    """Edge case DEFANG-02."""
    result = indicator(text)
    assert (result.kind, result.value) == (Kind.URL, url)
    assert result.notes == (note,)


def test_DEFANG_02_only_the_url_is_taken_from_the_sentence():
    """Edge case DEFANG-02."""
    found = extract_indicators("All the bots are on hxxp://example.com/bad/url these days.")
    assert [(r.kind, r.value) for r in found] == [(Kind.URL, "http://example.com/bad/url")]
    assert found[0].notes == ("refanged: hxxp -> http",)


def test_DEFANG_04_defanged_email_first_last():
    """Edge case DEFANG-04."""
    first_last = indicator("firstname[.]lastname[@]example[.]org")
    assert (first_last.kind, first_last.value) == (Kind.EMAIL, "firstname.lastname@example.org")
    assert (first_last.host, first_last.host_kind, first_last.registered_domain) == (
        "example.org", Kind.DOMAIN, "example.org")
    assert first_last.notes == ("refanged: [.] -> ., [@] -> @",)
    abuse = indicator("abuse{at}example[dot]com")
    assert (abuse.kind, abuse.value, abuse.host) == (Kind.EMAIL, "abuse@example.com", "example.com")


# --- PARSE ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "registered"),
    [("news.ycombinator.com", "ycombinator.com"), ("chat.example.com", "example.com"),
     ("data.example.com", "example.com")],
    ids=["PARSE-01-news", "PARSE-01-chat", "PARSE-01-data"],
)
def test_PARSE_01_fqdn_is_a_domain_never_an_email(text, registered):
    """Edge case PARSE-01."""
    result = indicator(text)
    assert (result.kind, result.value, result.registered_domain) == (Kind.DOMAIN, text, registered)


@pytest.mark.parametrize(
    ("text", "port"), [("1.1.1.1:449", 449), ("1[.]1[.]1[.]1:443", 443)], ids=["PARSE-02-plain", "PARSE-02-defanged"]
)
def test_PARSE_02_ip_port_stays_an_ip_with_its_port(text, port):
    """Edge case PARSE-02."""
    result = indicator(text)
    assert (result.kind, result.value, result.port) == (Kind.IPV4, "1.1.1.1", port)
    assert f"port {port} kept apart" in result.notes
    found = extract_indicators(text)
    assert [(r.kind, r.value, r.port) for r in found] == [(Kind.IPV4, "1.1.1.1", port)]  # no invented URL


def test_PARSE_04_md5_in_either_case_is_one_lowercase_indicator():
    """Edge case PARSE-04."""
    lower = indicator("098f6bcd4621d373cade4e832627b4f6")
    upper = indicator("098F6BCD4621D373CADE4E832627B4F6")
    assert lower.kind is upper.kind is Kind.MD5
    assert lower.value == upper.value == "098f6bcd4621d373cade4e832627b4f6"
    assert lower.key == upper.key == ("md5", "098f6bcd4621d373cade4e832627b4f6")
    assert lower.scope is Scope.NOT_APPLICABLE and lower.is_shareable


def test_PARSE_05_quotes_around_a_defanged_name_in_text():
    """Edge case PARSE-05."""
    for result in (parse_indicator("such as “cloudsafety[.]example”"),
                   *extract_indicators("such as “cloudsafety[.]example”")):
        assert (result.kind, result.value) == (Kind.DOMAIN, "cloudsafety.example")
        assert result.scope is Scope.RESERVED  # .example is an IANA-reserved TLD
    assert len(extract_indicators("such as “cloudsafety[.]example”")) == 1


def test_PARSE_05_bracket_and_kana_after_a_url():
    """Edge case PARSE-05."""
    result = indicator("『http://example.com』あああああ")
    assert (result.kind, result.value, result.host) == (Kind.URL, "http://example.com", "example.com")
    assert "ignored text after the indicator: '』あああああ'" in result.notes


def test_PARSE_05_trailing_space_after_an_idn_test_domain():
    """Edge case PARSE-05."""
    result = indicator("xn--eckwd4c7c.xn--zckzah ")
    assert (result.kind, result.value, result.display) == (Kind.DOMAIN, "xn--eckwd4c7c.xn--zckzah", "ドメイン.テスト")
    assert result.scope is Scope.RESERVED
    assert not result.is_shareable
    assert result.registered_domain is None


# --- DOM ------------------------------------------------------------------------------------------
def test_DOM_01_uppercase_url_host():
    """Edge case DOM-01."""
    result = indicator("HTTP://NYTIMES.COM/")
    assert (result.kind, result.value, result.host, result.registered_domain) == (
        Kind.URL, "http://nytimes.com/", "nytimes.com", "nytimes.com")


def test_DOM_01_mixed_case_domain():
    """Edge case DOM-01."""
    result = indicator("foo.CoM")
    assert (result.value, result.registered_domain) == ("foo.com", "foo.com")


def test_DOM_01_trailing_dot_is_the_same_indicator():
    """Edge case DOM-01."""
    dotted, plain = indicator("www.google.com."), indicator("www.google.com")
    assert dotted.value == plain.value == "www.google.com"
    assert dotted.key == plain.key
    assert dotted.registered_domain == plain.registered_domain == "google.com"
    assert dotted.notes == ("trailing dot removed",) and plain.notes == ()


@pytest.mark.parametrize(
    ("text", "target"), [("*.example.com", "example.com"), ("*.mail.example.com", "mail.example.com")],
    ids=["DOM-03-example", "DOM-03-mail"],
)
def test_DOM_03_wildcard_is_flagged_and_never_looked_up(text, target):
    """Edge case DOM-03."""
    result = indicator(text)
    assert (result.kind, result.value, result.wildcard) == (Kind.DOMAIN, target, True)
    assert "*" not in result.value
    assert result.display == text
    assert result.registered_domain == "example.com"


def test_DOM_04_unicode_and_punycode_are_one_indicator():
    """Edge case DOM-04."""
    unicode_form, ascii_form = indicator("münchen.de"), indicator("xn--mnchen-3ya.de")
    assert unicode_form.key == ascii_form.key == ("domain", "xn--mnchen-3ya.de")
    assert unicode_form.display == ascii_form.display == "münchen.de"
    assert unicode_form.registered_domain == "xn--mnchen-3ya.de"


def test_DOM_04_cyrillic_domain_is_queried_as_a_labels():
    """Edge case DOM-04."""
    result = indicator("россия.рф")
    assert (result.value, result.display) == ("xn--h1alffa9f.xn--p1ai", "россия.рф")
    assert result.registered_domain == "xn--h1alffa9f.xn--p1ai"


def test_DOM_05_overlong_label_is_invalid():
    """Edge case DOM-05."""
    result = rejection("a" * 64 + ".example.com")
    assert (result.status, result.reason) == ("invalid", "invalid domain: label longer than 63 octets")


def test_DOM_05_leading_dot_is_removed_with_a_note():
    """Edge case DOM-05."""
    # the one behaviour we chose: normalize to the name, and say so
    result = indicator(".example.com")
    assert (result.kind, result.value, result.notes) == (Kind.DOMAIN, "example.com", ("leading dot removed",))


def test_DOM_05_empty_label_is_invalid():
    """Edge case DOM-05."""
    result = rejection("example..com")
    assert (result.status, result.reason) == ("invalid", "invalid domain: empty label")


# --- IP -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "reason", "candidates"),
    [
        ("010.1.1.1", "ambiguous IPv4 (leading zeros)", ("8.1.1.1", "10.1.1.1")),
        ("192.0.2.010", "ambiguous IPv4 (leading zeros)", ("192.0.2.8", "192.0.2.10")),
        ("1.1.1", "non-standard IPv4 notation", ("1.1.0.1",)),
        ("0x1.0x1.0x1.0x1", "non-standard IPv4 notation", ("1.1.1.1",)),
        ("3221225985", "non-standard IPv4 notation", ("192.0.2.1",)),
    ],
    ids=["IP-01-010.1.1.1", "IP-01-192.0.2.010", "IP-01-1.1.1", "IP-01-hex", "IP-01-integer"],
)
def test_IP_01_noncanonical_ipv4_is_never_silently_resolved(text, reason, candidates):
    """Edge case IP-01."""
    result = rejection(text)
    assert (result.status, result.reason, result.candidates) == ("ambiguous", reason, candidates)


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("249.176.139.93", Scope.RESERVED),
        ("100.64.0.1", Scope.SHARED),
        ("192.0.2.1", Scope.DOCUMENTATION),
        ("224.0.0.251", Scope.MULTICAST),
        ("127.0.0.1", Scope.LOOPBACK),
    ],
    ids=["IP-02-240/4", "IP-02-cgnat", "IP-02-test-net-1", "IP-02-multicast", "IP-02-loopback"],
)
def test_IP_02_special_purpose_ranges_have_their_own_label(text, scope):
    """Edge case IP-02."""
    result = indicator(text)
    assert (result.kind, result.value, result.scope) == (Kind.IPV4, text, scope)
    assert result.scope is not Scope.PRIVATE  # in particular neither 240/4 nor CGNAT is "RFC 1918 private"
    assert not result.is_shareable


@pytest.mark.parametrize(("text", "zone"), [("fe80::1%eth0", "eth0"), ("fe80::1%15", "15")],
                         ids=["IP-04-named-zone", "IP-04-numeric-zone"])
def test_IP_04_zone_id_is_dropped_with_a_note(text, zone):
    """Edge case IP-04."""
    result = indicator(text)
    assert (result.kind, result.value, result.scope) == (Kind.IPV6, "fe80::1", Scope.LINK_LOCAL)
    assert result.notes == (f"zone id %{zone} dropped",)


@pytest.mark.parametrize(
    ("text", "host", "port", "scope"),
    [
        ("https://[2001:db8::1]:8443/path", "2001:db8::1", 8443, Scope.DOCUMENTATION),
        ("https://[::1]:1234/foobar", "::1", 1234, Scope.LOOPBACK),
    ],
    ids=["IP-05-documentation", "IP-05-loopback"],
)
def test_IP_05_ipv6_literal_in_url(text, host, port, scope):
    """Edge case IP-05."""
    result = indicator(text)
    assert (result.kind, result.value) == (Kind.URL, text)
    assert (result.host, result.host_kind, result.port, result.scope) == (host, Kind.IPV6, port, scope)
    assert result.registered_domain is None


def test_IP_08_both_ipv6_spellings_are_one_indicator():
    """Edge case IP-08."""
    short, full = indicator("2001:4860:4860::8888"), indicator("2001:4860:4860:0000:0000:0000:0000:8888")
    assert short.value == full.value == "2001:4860:4860::8888"
    assert short.key == full.key == ("ipv6", "2001:4860:4860::8888")
    assert short.scope is Scope.GLOBAL


def test_IP_08_ipv4_is_an_ip_never_a_domain():
    """Edge case IP-08."""
    result = indicator("75.2.80.129")
    assert (result.kind, result.scope, result.registered_domain) == (Kind.IPV4, Scope.GLOBAL, None)
