"""Indicator parsing: pasted text or a CSV cell -> a normalized :class:`Indicator` or a :class:`Rejection`.

:func:`parse_indicator` reads one indicator (a cell, a paste); :func:`extract_indicators` finds every
indicator in pasted text — a sentence, or a list split by whitespace, commas or newlines. Both refang
(``hxxps`` -> ``https``, ``[.]`` -> ``.``, ...), strip the quotes and brackets pasting leaves around an
indicator, classify it, normalize it (A-label domains, lower-case hashes, RFC 5952 IPv6, CIDR network
address, ``AS15169``) and label its address scope. Every change is written into ``notes``; input with
more than one reading (``010.1.1.1``) becomes a :class:`Rejection` listing the readings as
``candidates`` — never a silent guess. Neither function raises, whatever the input.

Bulk CSVs run this for every row, so the common paths avoid exceptions and ``ipaddress`` objects: IPv4
is read with one regular expression and compared as integers, IPv6 goes through ``inet_pton``, and the
Public Suffix List and IDNA answers are cached.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from functools import lru_cache

import idna
from publicsuffixlist import PublicSuffixList

from otc.model import Indicator, Kind, Rejection, Scope

__all__ = ["extract_indicators", "ip_scope", "parse_indicator", "registered_domain"]

log = logging.getLogger(__name__)

_GLOBAL = Scope.GLOBAL
_NA = Scope.NOT_APPLICABLE


# --------------------------------------------------------------------------------------------------
# Building results
# --------------------------------------------------------------------------------------------------
def _fast_indicator_constructor():
    """A constructor for :class:`Indicator` that sets the slots directly.

    The dataclass ``__init__`` of a frozen, slotted class costs ~3.5 µs (one ``object.__setattr__`` per
    field); writing through the slot descriptors costs ~2 µs, which is 30 % of the whole per-line budget
    of a 200,000 lines/s bulk parse. The objects are identical (same class, same fields, equal and
    hashable alike). If ``Indicator`` ever gains validation or changes its fields, fall back to it.
    """
    expected = ("kind", "value", "display", "original", "scope", "notes", "host", "host_kind", "port",
                "registered_domain", "wildcard")
    try:
        names = tuple(f.name for f in dataclasses.fields(Indicator))
        setters = [Indicator.__dict__[name].__set__ for name in expected]
    except (TypeError, KeyError, AttributeError):
        return Indicator
    if names != expected or hasattr(Indicator, "__post_init__"):
        return Indicator
    s_kind, s_value, s_display, s_original, s_scope, s_notes, s_host, s_host_kind, s_port, s_reg, s_wild = setters
    new = object.__new__

    def build(kind, value, display, original, scope=_GLOBAL, notes=(), host=None, host_kind=None,
              port=None, registered_domain=None, wildcard=False):
        obj = new(Indicator)
        s_kind(obj, kind)
        s_value(obj, value)
        s_display(obj, display)
        s_original(obj, original)
        s_scope(obj, scope)
        s_notes(obj, notes)
        s_host(obj, host)
        s_host_kind(obj, host_kind)
        s_port(obj, port)
        s_reg(obj, registered_domain)
        s_wild(obj, wildcard)
        return obj

    return build


_indicator = _fast_indicator_constructor()


def _reject(original: str, reason: str, status: str = "invalid", candidates: tuple[str, ...] = ()) -> Rejection:
    return Rejection(original, reason, status, candidates)


# Reasons shared by several paths (extract_indicators drops these from prose: they are ordinary words).
_NOT_RECOGNISED = "not a recognised indicator"
_CLOCK_TIME = "looks like a clock time, not an indicator"
_LEADING_ZEROS = "ambiguous IPv4 (leading zeros)"
_NON_STANDARD = "non-standard IPv4 notation"
_UNKNOWN_TLD = "invalid domain: unknown top-level domain"


# --------------------------------------------------------------------------------------------------
# Address scope
# --------------------------------------------------------------------------------------------------
def _table(entries: Iterable[tuple[str, Scope]]) -> tuple[tuple[int, int, Scope, str], ...]:
    """(first, last, scope, cidr) rows, most specific first, so the first containing row wins."""
    rows = []
    for cidr, scope in entries:
        net = ipaddress.ip_network(cidr)
        rows.append((int(net.network_address), int(net.broadcast_address), scope, cidr))
    rows.sort(key=lambda row: row[1] - row[0])
    return tuple(rows)


# IANA IPv4 Special-Purpose Address Registry; ranges it marks globally reachable are left global.
_IPV4_SPECIAL = _table([
    ("0.0.0.0/8", Scope.RESERVED),
    ("10.0.0.0/8", Scope.PRIVATE),
    ("100.64.0.0/10", Scope.SHARED),
    ("127.0.0.0/8", Scope.LOOPBACK),
    ("169.254.0.0/16", Scope.LINK_LOCAL),
    ("172.16.0.0/12", Scope.PRIVATE),
    ("192.0.0.0/24", Scope.RESERVED),  # IETF protocol assignments
    ("192.0.0.9/32", _GLOBAL),  # PCP anycast
    ("192.0.0.10/32", _GLOBAL),  # TURN anycast
    ("192.0.2.0/24", Scope.DOCUMENTATION),
    ("192.88.99.0/24", Scope.RESERVED),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", Scope.PRIVATE),
    ("198.18.0.0/15", Scope.RESERVED),  # benchmarking
    ("198.51.100.0/24", Scope.DOCUMENTATION),
    ("203.0.113.0/24", Scope.DOCUMENTATION),
    ("224.0.0.0/4", Scope.MULTICAST),
    ("240.0.0.0/4", Scope.RESERVED),
    ("255.255.255.255/32", Scope.RESERVED),
])
_IPV4_SPECIAL_FIRST_OCTETS = frozenset(
    octet for first, last, _, _ in _IPV4_SPECIAL for octet in range(first >> 24, (last >> 24) + 1)
)
_IPV4_SPECIAL_FIRST_TEXT = frozenset(str(octet) for octet in _IPV4_SPECIAL_FIRST_OCTETS)

# IANA IPv6 Special-Purpose Address Registry, plus the rule that only 2000::/3 is allocated for global
# unicast: an address outside every row (e.g. 4000::1) is unassigned, hence reserved.
_IPV6_SPECIAL = _table([
    ("::1/128", Scope.LOOPBACK),
    ("::/128", Scope.RESERVED),
    ("64:ff9b::/96", _GLOBAL),  # NAT64 well-known prefix
    ("64:ff9b:1::/48", Scope.PRIVATE),  # local-use NAT64
    ("100::/64", Scope.RESERVED),  # discard-only
    ("2001::/23", Scope.RESERVED),  # IETF protocol assignments ...
    ("2001:1::1/128", _GLOBAL),  # ... except these globally reachable ones
    ("2001:1::2/128", _GLOBAL),
    ("2001:3::/32", _GLOBAL),
    ("2001:4:112::/48", _GLOBAL),
    ("2001:30::/28", _GLOBAL),
    ("2001:db8::/32", Scope.DOCUMENTATION),
    ("2002::/16", _GLOBAL),  # 6to4
    ("3fff::/20", Scope.DOCUMENTATION),  # RFC 9637
    ("fc00::/7", Scope.PRIVATE),  # unique local
    ("fe80::/10", Scope.LINK_LOCAL),
    ("fec0::/10", Scope.PRIVATE),  # deprecated site-local
    ("ff00::/8", Scope.MULTICAST),
    ("2000::/3", _GLOBAL),
])
_MAPPED_PREFIX = 0xFFFF  # ::ffff:0:0/96, IPv4-mapped


def _ipv4_scope(n: int) -> Scope:
    if (n >> 24) not in _IPV4_SPECIAL_FIRST_OCTETS:
        return _GLOBAL
    for first, last, scope, _ in _IPV4_SPECIAL:
        if first <= n <= last:
            return scope
    return _GLOBAL


def _ipv6_scope(n: int) -> Scope:
    top = n >> 112
    if 0x2000 <= top <= 0x3FFF and top != 0x2001 and top != 0x3FFF:
        return _GLOBAL
    if n >> 32 == _MAPPED_PREFIX:
        return _ipv4_scope(n & 0xFFFFFFFF)
    for first, last, scope, _ in _IPV6_SPECIAL:
        if first <= n <= last:
            return scope
    return Scope.RESERVED


def _network_scope(first: int, last: int, version: int) -> tuple[Scope, str | None]:
    """Scope of a whole network, and a note when it straddles special-purpose ranges.

    A network inside one special range has that range's scope; a network that merely contains some (e.g.
    ``8.0.0.0/5`` contains ``10.0.0.0/8``) is a public notation and stays global, with a note.
    """
    if version == 4:
        if first >> 24 == last >> 24 and first >> 24 not in _IPV4_SPECIAL_FIRST_OCTETS:
            return _GLOBAL, None
    elif first >> 112 == last >> 112 and 0x2000 <= first >> 112 <= 0x3FFF and first >> 112 not in (0x2001, 0x3FFF):
        return _GLOBAL, None
    table = _IPV4_SPECIAL if version == 4 else _IPV6_SPECIAL
    for start, end, scope, _ in table:
        if start <= first and last <= end:
            return scope, None
    covered = [f"{cidr} ({scope.value})" for start, end, scope, cidr in table
               if scope is not _GLOBAL and start <= last and first <= end]
    if covered:
        shown = ", ".join(covered[:3]) + (f" and {len(covered) - 3} more" if len(covered) > 3 else "")
        return _GLOBAL, f"also covers special-purpose ranges: {shown}"
    return (_GLOBAL if version == 4 else Scope.RESERVED), None


def ip_scope(address: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> Scope:
    """Where an address lives. Only ``Scope.GLOBAL`` may be sent to a third party.

    An IPv4-mapped IPv6 address has the scope of its IPv4 address. A string that is not an address raises
    ``ValueError`` (use :func:`parse_indicator` for untrusted text).
    """
    if isinstance(address, str):
        address = ipaddress.ip_address(address.split("%", 1)[0])
    n = int(address)
    return _ipv4_scope(n) if address.version == 4 else _ipv6_scope(n)


# --------------------------------------------------------------------------------------------------
# Domains: IDNA, Public Suffix List, reserved and internal names
# --------------------------------------------------------------------------------------------------
# RFC 2606/6761/9476 and special-use names; the IDN test TLDs were IANA's (now withdrawn) IDN test
# domains, such as テスト (xn--zckzah). .onion is special-use (RFC 7686): no DNS query may leave for it.
_RESERVED_TLDS = frozenset({
    "test", "example", "invalid", "localhost", "alt", "onion",
    "xn--kgbechtv", "xn--hgbk6aj7f53bba", "xn--0zwm56d", "xn--g6w251d", "xn--80akhbyknj4f",
    "xn--11b5bs3a9aj6g", "xn--jxalpdlp", "xn--9t4b11yi5a", "xn--deba0ad", "xn--zckzah", "xn--hlcj6aya9esc7a",
})
# Names that only exist inside an organisation (mDNS, RFC 8375 home.arpa, ICANN's name-collision list).
_PRIVATE_TLDS = frozenset({"local", "internal", "lan", "corp", "home", "localdomain", "intranet", "private"})

# ICANN section only: the registrable domain is the one a registrar sells and RDAP/WHOIS knows
# (``foo.blogspot.com`` -> ``blogspot.com``); the private section would stop at ``foo.blogspot.com``.
_PSL = PublicSuffixList(only_icann=True)


def _rule_sets() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]] | None:
    """The PSL rules as sets: (parents, exact rules, wildcard roots, exceptions).

    ``parents`` holds every proper suffix of every rule (``jp`` and ``kawasaki.jp`` for
    ``*.kawasaki.jp``). Walking a name from its TLD leftwards, the first suffix that is not a parent ends
    the walk — no rule reaches further left — so the public suffix follows from that tail: one set test
    decides whether the tail itself is a rule, and the shorter tails are few and cached. Asking the
    library about each distinct name costs ~5 µs, too much for a bulk parse. ``None`` (always ask the
    library) if it ever stores its rules differently; a test checks both agree.
    """
    rules = getattr(_PSL, "_publicsuffix", None)
    if not isinstance(rules, (set, frozenset)) or not rules or not all(isinstance(rule, str) for rule in rules):
        return None
    parents, exact, wildcard_roots, exceptions = set(), set(), set(), set()
    for rule in rules:
        if rule.startswith("!"):
            exceptions.add(rule[1:])
        elif rule.startswith("*."):
            wildcard_roots.add(rule[2:])
        else:
            exact.add(rule)
        labels = rule.lstrip("!").split(".")
        for depth in range(1, len(labels)):
            parents.add(".".join(labels[-depth:]))
    return frozenset(parents), frozenset(exact), frozenset(wildcard_roots), frozenset(exceptions)


_RULES = _rule_sets()


@lru_cache(maxsize=4096)
def _public_suffix_labels(name: str) -> int:
    """How many trailing labels of ``name`` form its public suffix (the library's answer); 0: unknown TLD."""
    suffix = _PSL.publicsuffix(name, accept_unknown=False)
    return suffix.count(".") + 1 if suffix else 0


def _suffix_labels(labels: list[str], name: str) -> int:
    """How many trailing labels of an A-label name form its public suffix; 0 when the TLD is unknown."""
    if _RULES is None:
        return _public_suffix_labels(name)
    parents, exact, wildcard_roots, exceptions = _RULES
    count = len(labels)
    tail = labels[-1]
    used = 1
    while used < count and tail in parents:
        used += 1
        tail = labels[-used] + "." + tail
    if used == 1 or tail in parents:
        return _public_suffix_labels(tail)  # a TLD, or a name that is itself a rule's parent: few, cached
    # no rule is longer than tail, so only tail itself or its (cached, rule-parent) suffix can match
    parent = tail[len(labels[-used]) + 1:]
    if tail in exceptions:
        return used - 1
    if tail in exact or parent in wildcard_roots:
        return used
    return _public_suffix_labels(parent)


def registered_domain(name: str) -> str | None:
    """The registrable domain of an A-label host name (``www.example.co.uk`` -> ``example.co.uk``).

    ``None`` for a public suffix itself, an unknown TLD, or a reserved/internal name.
    """
    name = name.lower().rstrip(".")
    labels = name.split(".")
    if "" in labels or labels[-1] in _RESERVED_TLDS or labels[-1] in _PRIVATE_TLDS:
        return None
    depth = _suffix_labels(labels, name)
    if depth == 0 or depth >= len(labels):
        return None
    return ".".join(labels[-depth - 1:])


_LABEL = r"[a-z0-9_][a-z0-9_-]{0,62}"
_TLD = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LDH_NAME_RE = re.compile(rf"(?:{_LABEL}\.)*{_TLD}", re.ASCII)
_NAME_CHAR_RE = re.compile(r"[^a-z0-9_.-]", re.ASCII)
_IDNA_ERRORS = (idna.IDNAError, UnicodeError, ValueError)

# _normalize_name answers: (value, display, scope, registered_domain, notes) or (None, reason, None, None, ())
_NameAnswer = tuple


def _name_problem(name: str) -> str:
    """Why an ASCII host name failed the syntax check, in the analyst's words."""
    labels = name.split(".")
    if "" in labels:
        return "invalid domain: empty label"
    if any(len(label) > 63 for label in labels):
        return "invalid domain: label longer than 63 octets"
    if len(name) > 253:
        return "invalid domain: name longer than 253 octets"
    if "." not in name:
        return _NOT_RECOGNISED
    bad = _NAME_CHAR_RE.search(name)
    if bad:
        return f"invalid domain: character {bad.group()!r} not allowed"
    if not labels[-1][:1].isalpha() or labels[-1].endswith("-"):
        return _NOT_RECOGNISED  # a numeric "TLD": a number or a malformed address, not a name
    for label in labels:
        if label.startswith("-"):
            return f"invalid domain: label {label!r} starts with a hyphen"
    return _NOT_RECOGNISED


@lru_cache(maxsize=16384)
def _unicode_form(value: str) -> str | None:
    """Display form of an A-label name; ``None`` if one of its ``xn--`` labels is not valid punycode."""
    labels = value.split(".")
    try:
        return ".".join(idna.ulabel(label) if label.startswith("xn--") else label for label in labels)
    except _IDNA_ERRORS:
        return None


@lru_cache(maxsize=16384)
def _to_ascii(name: str) -> tuple[str | None, str]:
    """A Unicode host name -> (its A-label form, "") or (None, why not). UTS 46 with IDNA2008 rules:
    case folding, full-width dots and letters mapped, no transitional ß -> ss."""
    try:
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
    except _IDNA_ERRORS as exc:
        return None, f"invalid domain: {exc}"
    labels = mapped.split(".")
    if "" in labels:
        return None, "invalid domain: empty label"
    alabels = []
    for label in labels:
        if label.isascii():
            alabels.append(label)
            continue
        try:
            alabels.append(idna.alabel(label).decode("ascii"))
        except _IDNA_ERRORS as exc:
            return None, f"invalid domain: {exc}"
    return ".".join(alabels), ""


def _normalize_name(name: str) -> _NameAnswer:
    """A host name (any case, Unicode or A-label, no wildcard, no trailing dot) -> its normalized facts.

    Not cached as a whole: for ASCII names this costs ~2 µs, about what a cache miss and eviction cost on
    a bulk list of distinct names; the expensive parts (IDNA, the PSL) are cached underneath.
    """
    if name.isascii():
        value = name.lower()
    else:
        value, problem = _to_ascii(name)
        if value is None:
            return (None, problem, None, None, ())
    if len(value) > 253 or _LDH_NAME_RE.fullmatch(value) is None:
        return (None, _name_problem(value), None, None, ())
    display = value
    notes: tuple[str, ...] = ()
    if "xn--" in value:
        display = _unicode_form(value)
        if display is None:
            return (None, "invalid domain: a label is not valid punycode (xn--)", None, None, ())
        # said every time: a look-alike (аррӏе.com, Cyrillic) must not pass for the ASCII name it imitates
        notes = (f"internationalized name: shown as {display}, looked up as {value}",)
    labels = value.split(".")
    tld = labels[-1]
    if tld in _RESERVED_TLDS:
        return (value, display, Scope.RESERVED, None, notes)
    if tld in _PRIVATE_TLDS or value == "home.arpa" or value.endswith(".home.arpa"):
        return (value, display, Scope.PRIVATE, None, notes)
    if len(labels) == 1:
        return (None, _NOT_RECOGNISED, None, None, ())
    depth = _suffix_labels(labels, value)
    if depth == 0:
        return (None, f"{_UNKNOWN_TLD} '.{tld}'", None, None, ())
    if depth >= len(labels):
        return (value, display, _GLOBAL, None, notes + ("a public suffix itself: it has no registrable domain",))
    registered = value if depth + 1 == len(labels) else ".".join(labels[-depth - 1:])
    return (value, display, _GLOBAL, registered, notes)


# --------------------------------------------------------------------------------------------------
# Refanging and the junk pasting leaves around an indicator
# --------------------------------------------------------------------------------------------------
# Exact defang spellings, replaced in this order (str.replace is ~10x faster than a regex with a callback).
_FIXED_DEFANGS = (
    ("[.]", "."), ("(.)", "."), ("{.}", "."), ("\\.", "."),
    ("[://]", "://"), ("[:]", ":"), ("[/]", "/"),
    ("[@]", "@"), ("(@)", "@"), ("{@}", "@"),
)
# Spellings in any case: [DOT], {at}, hXXps://, fxp:// (a scheme only where a ":" follows).
_WORDY_DEFANG_RE = re.compile(
    r"(?P<scheme>\b(?:hxxp|fxp)(?P<s>s?)(?=\[?:))|(?P<dot>[\[({]dot[\])}])|(?P<at>[\[({]at[\])}])",
    re.IGNORECASE,
)
# Cheap pre-test: text made only of these characters needs neither refanging nor junk stripping, except
# for a defanged scheme (hxxp://), which _classify looks for in the texts with "://".
_CARE_RE = re.compile(r"[^A-Za-z0-9._~:/?#@!$&*+=%-]")
_DEFANGED_SCHEMES = {"hxxp": "http", "hxxps": "https", "fxp": "ftp", "fxps": "ftps"}


def _refang(text: str) -> tuple[str, tuple[str, ...]]:
    """Undo defanging; the note lists each spelling changed ("refanged: [.] -> ., hxxps -> https")."""
    changes: list[str] = []
    for defanged, fixed in _FIXED_DEFANGS:
        if defanged in text:
            text = text.replace(defanged, fixed)
            changes.append(f"{defanged} -> {fixed}")
    colon = text.find(":")
    if 2 < colon < 6:
        fixed = _DEFANGED_SCHEMES.get(text[:colon].lower())
        if fixed is not None:
            changes.append(f"{text[:colon]} -> {fixed}")
            text = fixed + text[colon:]
    # the rest is rare ([dot], {at}, a defanged scheme after other text): a regex, behind cheap tests
    if "[" in text or "(" in text or "{" in text or "xp" in text.lower():
        match = _WORDY_DEFANG_RE.search(text)
        if match is not None:
            # spliced by hand: Pattern.sub with a callback costs ~6 µs even for one match
            pieces, done = [], 0
            while match is not None:
                found = match.group()
                if match.lastgroup == "scheme":
                    fixed = ("ftp" if found[0] in "fF" else "http") + ("s" if match.group("s") else "")
                else:
                    fixed = "." if match.lastgroup == "dot" else "@"
                change = f"{found} -> {fixed}"
                if change not in changes:
                    changes.append(change)
                pieces += (text[done:match.start()], fixed)
                done = match.end()
                match = _WORDY_DEFANG_RE.search(text, done)
            pieces.append(text[done:])
            text = "".join(pieces)
    return text, (("refanged: " + ", ".join(changes),) if changes else ())


_QUOTES = "\"'`“”„‟‘’‚‛«»‹›＂＇"
_OPENERS = "([{<（［｛＜「『【〈《〔"
_CLOSERS = ")]}>）］｝＞」』】〉》〕"
_PAIR = dict(zip(_CLOSERS, _OPENERS))
_LEADING_JUNK = frozenset(_QUOTES + _OPENERS + "\u200b\u200c\u200d\u2060\ufeff")
_TRAILING_PUNCTUATION = ".,;!?。、，．：！？…"
_TRAILING_JUNK = frozenset(_QUOTES + _CLOSERS + _TRAILING_PUNCTUATION + "\u200b\u200c\u200d\u2060\ufeff")
# Inside a token these end the indicator: what follows is text around it (『http://example.com』あああ).
_STOP_RE = re.compile(r"[\"`“”„‟‘’‚‛«»‹›＂<>（）［］｛｝＜＞「」『』【】〈〉《》〔〕\s]")
_BRACKETED_IPV6_RE = re.compile(r"\[([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)(%[^\]\s]+)?\](?::([0-9]+))?", re.ASCII)


def _strip_junk(text: str) -> tuple[str, tuple[str, ...]]:
    """Remove quotes, brackets and punctuation around an indicator; cut off text glued after it."""
    start = 0
    while start < len(text) and text[start] in _LEADING_JUNK:
        start += 1
    lead, text = text[:start], text[start:]
    ignored = ""
    cut = _STOP_RE.search(text, 1) if text else None
    if cut is not None:
        text, ignored = text[:cut.start()], text[cut.start():]
    end = len(text)
    while end > 0:
        char = text[end - 1]
        if char not in _TRAILING_JUNK:
            break
        if char in _PAIR and text.count(_PAIR[char], 0, end) >= text.count(char, 0, end):
            break  # balanced, so part of the indicator: http://example.com/wiki/Foo_(bar)
        end -= 1
    text, trail = text[:end], text[end:]
    if len(ignored) == 1:  # just the closing quote or bracket: junk like the rest, not "text after it"
        trail, ignored = trail + ignored, ""
    notes: tuple[str, ...] = ()
    if lead or trail:
        if not lead and trail.strip(".") == "":
            notes += ("trailing dot removed",)
        else:
            shown = " and ".join(repr(part) for part in (lead, trail) if part)
            notes += (f"removed around the indicator: {shown}",)
    if ignored:
        notes += (f"ignored text after the indicator: {ignored!r}",)
    return text, notes


# --------------------------------------------------------------------------------------------------
# IPv4 and IPv6
# --------------------------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}", re.ASCII)  # canonical: no zeros, <= 255
_PLAIN_IPV4_CIDR_RE = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET})/(3[0-2]|[12][0-9]|[0-9])", re.ASCII)
_IPV4_RE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)(?::([0-9]*)|/([0-9]+))?", re.ASCII)
_ATON_PART = r"(?:0[xX][0-9a-fA-F]+|[0-9]+)"
_ATON_RE = re.compile(rf"{_ATON_PART}(?:\.{_ATON_PART}){{0,3}}", re.ASCII)
_IPV6_TEXT_RE = re.compile(r"[0-9A-Fa-f:.]+", re.ASCII)
_CIDR_RE = re.compile(r"([0-9A-Fa-f:.]+)/([0-9]+)", re.ASCII)
_CLOCK_RE = re.compile(r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:[.,][0-9]+)?", re.ASCII)
_HOST_PORT_RE = re.compile(r"(.+):([0-9]+)", re.DOTALL)
_AF_INET6 = socket.AF_INET6
_inet_pton = socket.inet_pton
_inet_ntop = socket.inet_ntop


def _dotted(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _inet_aton(parts: list[str]) -> int | None:
    """The BSD ``inet_aton`` reading of 1-4 dot-separated parts (hex ``0x``, octal ``0``, decimal), or None."""
    values = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            if "8" in part or "9" in part:
                return None
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(value > 255 for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    n = last
    for index, value in enumerate(head):
        n |= value << (24 - 8 * index)
    return n


def _leading_zero_readings(parts: tuple[str, ...]) -> tuple[str, ...]:
    """Both readings of a dotted quad with leading zeros: octal (inet_aton, browsers) and decimal."""
    readings = []
    octal = _inet_aton(list(parts))
    if octal is not None:
        readings.append(_dotted(octal))
    decimal = [int(part) for part in parts]
    if max(decimal) <= 255:
        dotted = ".".join(map(str, decimal))
        if dotted not in readings:
            readings.append(dotted)
    return tuple(readings)


def _ipv4_reading(parts: tuple[str, ...]) -> int | tuple[str, str, tuple[str, ...]] | str:
    """A dotted quad -> its integer, or ``"zeros"`` (same value either way), or (status, reason, candidates)."""
    a, b, c, d = parts
    if (len(a) > 1 and a[0] == "0") or (len(b) > 1 and b[0] == "0") or (len(c) > 1 and c[0] == "0") or (
        len(d) > 1 and d[0] == "0"
    ):
        readings = _leading_zero_readings(parts)
        if not readings:
            return ("invalid", "invalid IPv4 address: octet above 255", ())
        if len(readings) == 1 and _inet_aton(list(parts)) is not None and max(map(int, parts)) <= 255:
            return "zeros"
        return ("ambiguous", _LEADING_ZEROS, readings)
    ia, ib, ic, id_ = int(a), int(b), int(c), int(d)
    if ia > 255 or ib > 255 or ic > 255 or id_ > 255:
        return ("invalid", f"invalid IPv4 address: octet {max(ia, ib, ic, id_)} is above 255", ())
    return (ia << 24) | (ib << 16) | (ic << 8) | id_


def _ipv4_int(text: str) -> int:
    """A dotted quad already known to be valid -> its integer."""
    a, b, c, d = text.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def _non_standard_ipv4(text: str) -> tuple[str, str, tuple[str, ...]] | None:
    """inet_aton notations other than a plain dotted quad: ``1.1.1``, ``0x1.0x1.0x1.0x1``, ``3221225985``."""
    if _ATON_RE.fullmatch(text) is None:
        return None
    parts = text.split(".")
    if len(parts) == 1 and "x" not in text.lower():
        value = int(text)
        if len(text) > 10 or value < 1 << 24:
            return None  # a plain number, not an address anybody writes that way
    n = _inet_aton(parts)
    if n is None:
        return ("invalid", "invalid IPv4 address", ())
    return ("ambiguous", _NON_STANDARD, (_dotted(n),))


def _read_ipv6(text: str) -> bytes | None:
    """IPv6 text -> its 16 bytes, or None. (``inet_pton`` is a local conversion, ~20x faster than ipaddress.)"""
    if _IPV6_TEXT_RE.fullmatch(text) is None or text.count(":") < 2:
        return None
    try:
        return _inet_pton(_AF_INET6, text)
    except (OSError, ValueError):
        return None


def _packed_ipv6_text(packed: bytes) -> str:
    text = _inet_ntop(_AF_INET6, packed)
    # glibc writes ::a.b.c.d for the deprecated IPv4-compatible form; keep Python's (and RFC 5952's) hex.
    return text if "." not in text else str(ipaddress.IPv6Address(packed))


def _ipv6_text(n: int) -> str:
    return _packed_ipv6_text(n.to_bytes(16, "big"))


def _packed_ipv6_scope(packed: bytes) -> Scope:
    top = (packed[0] << 8) | packed[1]
    if 0x2000 <= top <= 0x3FFF and top != 0x2001 and top != 0x3FFF:
        return _GLOBAL
    return _ipv6_scope(int.from_bytes(packed, "big"))


# --------------------------------------------------------------------------------------------------
# Classifiers: each takes the cleaned text, the original input and the notes so far
# --------------------------------------------------------------------------------------------------
_HASH_KINDS = {32: Kind.MD5, 40: Kind.SHA1, 64: Kind.SHA256}
_HEX_RE = re.compile(r"[0-9a-fA-F]+", re.ASCII)
_ASN_RE = re.compile(r"(?:AS|ASN)[ \t]?([0-9]{1,10})", re.IGNORECASE | re.ASCII)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_COMMON_SCHEMES = frozenset({"http", "https", "ftp", "HTTP", "HTTPS", "FTP"})
_AUTHORITY_END_RE = re.compile(r"[/?#]")
_EMAIL_LOCAL_RE = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")


def _port_number(text: str) -> int | None:
    if not text or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


def _ipv4_indicator(match: re.Match, text: str, original: str, notes: tuple[str, ...]) -> Indicator | Rejection:
    a, b, c, d, port_text, prefix_text = match.groups()
    reading = _ipv4_reading((a, b, c, d))
    if type(reading) is tuple:
        status, reason, candidates = reading
        suffix = f"/{prefix_text}" if prefix_text is not None else f":{port_text}" if port_text else ""
        return _reject(original, reason, status, tuple(candidate + suffix for candidate in candidates))
    written_canonically = reading != "zeros"
    if not written_canonically:
        reading = _inet_aton([a, b, c, d])
        notes += ("leading zeros removed (octal and decimal readings agree)",)
        value = _dotted(reading)
    elif port_text is None and prefix_text is None:
        value = text
    else:
        value = f"{a}.{b}.{c}.{d}"
    if prefix_text is not None:
        return _cidr_indicator(reading, 4, prefix_text, value, original, notes,
                               text if written_canonically else None)
    port = None
    if port_text is not None:
        if port_text == "":
            notes += ("trailing ':' removed",)
        else:
            port = _port_number(port_text)
            if port is None:
                return _reject(original, f"invalid port: {port_text}")
            notes += (f"port {port} kept apart",)
    return _indicator(Kind.IPV4, value, value, original, _ipv4_scope(reading), notes, None, None, port)


_MAPPED_HEAD = bytes(10) + b"\xff\xff"


def _ipv6_indicator(packed: bytes, original: str, notes: tuple[str, ...], port: int | None = None) -> Indicator:
    if packed[:12] == _MAPPED_HEAD:
        v4 = int.from_bytes(packed[12:], "big")
        value = _dotted(v4)
        notes += (f"IPv4-mapped IPv6 ::ffff:{value} read as {value}",)
        return _indicator(Kind.IPV4, value, value, original, _ipv4_scope(v4), notes, None, None, port)
    value = _packed_ipv6_text(packed)
    return _indicator(Kind.IPV6, value, value, original, _packed_ipv6_scope(packed), notes, None, None, port)


def _cidr_indicator(n: int, version: int, prefix_text: str, address_text: str, original: str,
                    notes: tuple[str, ...], written: str | None = None) -> Indicator | Rejection:
    """``written``: the network as the input wrote it, reused as the value when it is already canonical."""
    bits = 32 if version == 4 else 128
    prefix = int(prefix_text) if len(prefix_text) <= 3 else bits + 1
    if prefix > bits:
        return _reject(original, f"invalid CIDR: prefix length /{prefix_text} is above /{bits}")
    host_mask = (1 << (bits - prefix)) - 1
    network = n & ~host_mask
    text_of = _dotted if version == 4 else _ipv6_text
    if network != n:
        notes += (f"host bits cleared: {address_text}/{prefix} -> {text_of(network)}/{prefix}",)
    if prefix == bits:
        notes += (f"/{prefix} is a single address",)
        value = text_of(network)
        kind = Kind.IPV4 if version == 4 else Kind.IPV6
        scope = _ipv4_scope(network) if version == 4 else _ipv6_scope(network)
        return _indicator(kind, value, value, original, scope, notes)
    if written is not None and network == n and prefix_text == str(prefix):
        value = written
    else:
        value = f"{text_of(network)}/{prefix}"
    scope, note = _network_scope(network, network | host_mask, version)
    if note:
        notes += (note,)
    return _indicator(Kind.CIDR, value, value, original, scope, notes)


def _colon_indicator(text: str, original: str, notes: tuple[str, ...]) -> Indicator | Rejection:
    """Text with a colon and no scheme: IPv6 (maybe with a zone), IPv4:port, host:port, or a clock time."""
    address, _, zone = text.partition("%")
    packed = _read_ipv6(address)
    if packed is not None:
        if zone:
            notes += (f"zone id %{zone} dropped",)
        return _ipv6_indicator(packed, original, notes)
    if zone:
        return _reject(original, "invalid IPv6 address")
    if _CLOCK_RE.fullmatch(text):
        return _reject(original, _CLOCK_TIME)
    match = _HOST_PORT_RE.fullmatch(text)
    if match is not None and ":" not in match.group(1):
        host, port_text = match.groups()
        port = _port_number(port_text)
        if port is None:
            return _reject(original, f"invalid port: {port_text}")
        return _domain_indicator(host, original, notes + (f"port {port} kept apart",), port)
    if _IPV6_TEXT_RE.fullmatch(text):
        return _reject(original, "invalid IPv6 address")
    return _reject(original, _NOT_RECOGNISED)


def _bracketed_ipv6(match: re.Match, original: str, notes: tuple[str, ...]) -> Indicator | Rejection:
    address, zone, port_text = match.groups()
    packed = _read_ipv6(address)
    if packed is None:
        return _reject(original, "invalid IPv6 address")
    port = None
    if port_text is not None:
        port = _port_number(port_text)
        if port is None:
            return _reject(original, f"invalid port: {port_text}")
        notes += (f"port {port} kept apart",)
    if zone:
        notes += (f"zone id {zone} dropped",)
    return _ipv6_indicator(packed, original, notes, port)


def _domain_indicator(text: str, original: str, notes: tuple[str, ...], port: int | None = None
                      ) -> Indicator | Rejection:
    wildcard = False
    if "*" in text:
        if not text.startswith("*.") or "*" in text[2:]:
            return _reject(original, "invalid domain: a wildcard '*' is only allowed as the whole first label")
        text = text[2:]
        wildcard = True
    elif text[0] == ".":
        text = text[1:]
        notes += ("leading dot removed",)
        if not text:
            return _reject(original, _NOT_RECOGNISED)
    if text[-1] == ".":
        text = text[:-1]
        notes += ("trailing dot removed",)
        if not text:
            return _reject(original, _NOT_RECOGNISED)
    value, display, scope, registered, name_notes = _normalize_name(text)
    if value is None:
        return _reject(original, display)
    if name_notes:
        notes += name_notes
    if wildcard:
        notes += (f"wildcard '*.' removed: lookups use {value}",)
        display = "*." + display
    return _indicator(Kind.DOMAIN, value, display, original, scope, notes, None, None, port, registered, wildcard)


def _host_facts(host: str) -> tuple:
    """URL or e-mail host -> (kind, value, display, scope, registered_domain, notes) or (status, reason, candidates)."""
    if host.startswith("[") and host.endswith("]"):
        literal = host[1:-1]
        if literal[:5].lower() == "ipv6:":
            literal = literal[5:]
        address, _, zone = literal.partition("%")
        packed = _read_ipv6(address)
        if packed is None:
            match = _IPV4_RE.fullmatch(literal)
            if match is None or match.group(5) is not None or match.group(6) is not None:
                return ("invalid", "invalid IPv6 address", ())
            host = literal
        else:
            notes = (f"zone id %{zone} dropped",) if zone else ()
            value = _packed_ipv6_text(packed)
            return (Kind.IPV6, value, value, _packed_ipv6_scope(packed), None, notes)
    if host[:1].isdigit() or host[:2] in ("0x", "0X"):
        match = _IPV4_RE.fullmatch(host)
        if match is not None and match.group(5) is None and match.group(6) is None:
            reading = _ipv4_reading(match.groups()[:4])
            if type(reading) is tuple:
                return reading
            notes: tuple[str, ...] = ()
            if reading == "zeros":
                reading = _inet_aton(list(match.groups()[:4]))
                notes = ("leading zeros removed (octal and decimal readings agree)",)
            value = _dotted(reading)
            return (Kind.IPV4, value, value, _ipv4_scope(reading), None, notes)
        odd = _non_standard_ipv4(host)
        if odd is not None:
            return odd
    notes = ()
    if host.endswith("."):
        host = host[:-1]
        notes = ("trailing dot removed from the host",)
    if not host:
        return ("invalid", "no host", ())
    value, display, scope, registered, name_notes = _normalize_name(host)
    if value is None:
        return ("invalid", display, ())
    return (Kind.DOMAIN, value, display, scope, registered, notes + name_notes)


def _url_indicator(text: str, original: str, notes: tuple[str, ...]) -> Indicator | Rejection:
    raw_scheme, _, after_scheme = text.partition("://")
    if raw_scheme not in _COMMON_SCHEMES and _SCHEME_RE.fullmatch(raw_scheme) is None:
        return _reject(original, "invalid URL")
    end = _AUTHORITY_END_RE.search(after_scheme)
    authority, rest = (after_scheme[:end.start()], after_scheme[end.start():]) if end else (after_scheme, "")
    scheme = raw_scheme.lower()
    userinfo, at, hostport = authority.rpartition("@")
    userinfo += at
    port = None
    port_text = ""
    if hostport.startswith("["):
        close = hostport.find("]")
        host, after = (hostport[:close + 1], hostport[close + 1:]) if close >= 0 else (hostport, "")
        if close < 0 or (after and after[0] != ":"):
            return _reject(original, "invalid URL: malformed [IPv6] host")
        port_text = after[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if port_text:
        port = _port_number(port_text) if port_text.isascii() and port_text.isdigit() else None
        if port is None:
            return _reject(original, f"invalid URL: bad port {port_text!r}")
    if not host:
        return _reject(original, "invalid URL: no host")
    facts = _host_facts(host)
    if len(facts) == 3:
        status, reason, readings = facts
        candidates = tuple(f"{scheme}://{userinfo}{reading}{':' + port_text if port_text else ''}{rest}"
                           for reading in readings)
        return _reject(original, f"{reason} in URL host" if status == "ambiguous" else f"invalid URL: {reason}",
                       status, candidates)
    host_kind, host_value, host_display, scope, registered, host_notes = facts
    port_part = f":{port}" if port is not None else ""
    if scheme == raw_scheme and hostport == host_value + port_part:
        value = text  # already normalized: the common case, and no string to build
        display = value if host_display == host_value else f"{scheme}://{userinfo}{host_display}{port_part}{rest}"
    elif host_kind is Kind.IPV6:
        value = f"{scheme}://{userinfo}[{host_value}]{port_part}{rest}"
        display = value
    else:
        value = f"{scheme}://{userinfo}{host_value}{port_part}{rest}"
        display = value if host_display == host_value else f"{scheme}://{userinfo}{host_display}{port_part}{rest}"
    # positional: keyword arguments cost ~0.3 µs more per row
    return _indicator(Kind.URL, value, display, original, scope, notes + host_notes if host_notes else notes,
                      host_value, host_kind, port, registered)


def _email_indicator(text: str, original: str, notes: tuple[str, ...]) -> Indicator | Rejection:
    if text[:7].lower() == "mailto:":
        text = text[7:].split("?", 1)[0]
        notes += ("'mailto:' removed",)
    local, _, host = text.rpartition("@")
    if not local or not host or "@" in local:
        return _reject(original, "invalid e-mail address")
    if _EMAIL_LOCAL_RE.fullmatch(local) is None:
        return _reject(original, "invalid e-mail address: malformed part before '@'")
    facts = _host_facts(host)
    if len(facts) == 3:
        return _reject(original, f"invalid e-mail address: {facts[1]}", "invalid")
    host_kind, host_value, host_display, scope, registered, host_notes = facts
    local = local.lower()
    if host_kind is Kind.IPV6:
        value = display = f"{local}@[IPv6:{host_value}]"
    elif host_kind is Kind.IPV4:
        value = display = f"{local}@[{host_value}]"
    else:
        value, display = f"{local}@{host_value}", f"{local}@{host_display}"
    return _indicator(Kind.EMAIL, value, display, original, scope, notes + host_notes, host_value, host_kind, None,
                      registered)


def _asn_indicator(match: re.Match, original: str, notes: tuple[str, ...]) -> Indicator | Rejection:
    number = int(match.group(1))
    if number > 4294967295:
        return _reject(original, "invalid ASN: above 4294967295")
    value = f"AS{number}"
    return _indicator(Kind.ASN, value, value, original, _asn_scope(number), notes)


def _asn_scope(number: int) -> Scope:
    """RFC 5398 documentation, RFC 6996 private use, RFC 7607/7300/6793 reserved ASNs; the rest global."""
    if 64496 <= number <= 64511 or 65536 <= number <= 65551:
        return Scope.DOCUMENTATION
    if 64512 <= number <= 65534 or 4200000000 <= number <= 4294967294:
        return Scope.PRIVATE
    if number in (0, 23456, 65535, 4294967295) or 65552 <= number <= 131071:
        return Scope.RESERVED
    return _GLOBAL


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------
def _classify(text: str, original: str, notes: tuple[str, ...], refanged: bool = False) -> Indicator | Rejection:
    """Clean, single-token text -> result. Cheapest and most common tests first."""
    first = text[0]
    if first in "0123456789" and _PLAIN_IPV4_RE.fullmatch(text) is not None:
        scope = _ipv4_scope(_ipv4_int(text)) if text[:text.index(".")] in _IPV4_SPECIAL_FIRST_TEXT else _GLOBAL
        return _indicator(Kind.IPV4, text, text, original, scope, notes)
    if "://" in text:
        if not refanged and text[1:2] in ("x", "X"):
            scheme = text[:text.index("://")]
            fixed = _DEFANGED_SCHEMES.get(scheme.lower())
            if fixed is not None:  # the only defang here: the fast path let no [.] or (dot) through
                return _url_indicator(fixed + text[len(scheme):], original, notes + (f"refanged: {scheme} -> {fixed}",))
        return _url_indicator(text, original, notes)
    if "@" in text:
        return _email_indicator(text, original, notes)
    if "/" in text:
        if first in "0123456789":
            plain = _PLAIN_IPV4_CIDR_RE.fullmatch(text)
            if plain is not None:
                prefix = int(plain.group(2))
                n = _ipv4_int(plain.group(1))
                host_mask = (1 << (32 - prefix)) - 1
                if n & host_mask == 0 and prefix < 32:  # the network address, written canonically
                    scope, note = _network_scope(n, n | host_mask, 4)
                    return _indicator(Kind.CIDR, text, text, original, scope, notes + (note,) if note else notes)
            match = _IPV4_RE.fullmatch(text)
            if match is not None:
                return _ipv4_indicator(match, text, original, notes)
        match = _CIDR_RE.fullmatch(text)
        if match is not None:
            address, prefix = match.groups()
            packed = _read_ipv6(address)
            if packed is not None:
                return _cidr_indicator(int.from_bytes(packed, "big"), 6, prefix, _packed_ipv6_text(packed),
                                       original, notes)
            return _reject(original, "invalid CIDR: not an IP network")
        if first == "/" or first == "*":
            return _reject(original, _NOT_RECOGNISED)
        # host/path without a scheme: a URL; say which scheme was assumed
        return _url_indicator("http://" + text, original, notes + ("no scheme given: http:// assumed",))
    if first in "0123456789":
        match = _IPV4_RE.fullmatch(text)
        if match is not None:
            return _ipv4_indicator(match, text, original, notes)
    if ":" in text:
        return _colon_indicator(text, original, notes)
    length = len(text)
    if length in _HASH_KINDS and _HEX_RE.fullmatch(text):
        value = text.lower()
        return _indicator(_HASH_KINDS[length], value, value, original, _NA, notes)
    if first in "0123456789":
        odd = _non_standard_ipv4(text)
        if odd is not None:
            return _reject(original, odd[1], odd[0], odd[2])
        if text.isdigit():
            return _reject(original, _NOT_RECOGNISED)
    elif first in "aA":
        match = _ASN_RE.fullmatch(text)
        if match is not None:
            return _asn_indicator(match, original, notes)
    if length in (128, 96, 56) and _HEX_RE.fullmatch(text):
        return _reject(original, f"unsupported hash length: {length} hex characters (MD5, SHA-1 or SHA-256 only)")
    return _domain_indicator(text, original, notes)


_NEEDS_SPLIT_RE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]")
_LIST_SEPARATORS_RE = re.compile(r"[,;|]")


def _parse(text: str, allow_split: bool = True) -> Indicator | Rejection:
    if type(text) is not str:
        if text is None:
            return _reject("", "empty cell", "empty")
        text = str(text)
    stripped = text.strip()
    if not stripped:
        return _reject(text, "empty cell", "empty")
    if _CARE_RE.search(stripped) is None and stripped[-1] != ".":
        return _classify(stripped, text, ())
    return _parse_with_care(stripped, text, allow_split)


def _parse_with_care(stripped: str, original: str, allow_split: bool) -> Indicator | Rejection:
    """The slow path: refang, junk around the indicator, several indicators in one cell."""
    if stripped[0] in "aA":
        asn = _ASN_RE.fullmatch(stripped)
        if asn is not None:
            return _asn_indicator(asn, original, ())
    cleaned, notes = _refang(stripped)
    if _CARE_RE.search(cleaned) is None and cleaned[-1] != ".":
        return _classify(cleaned, original, notes, refanged=True)  # just defanged: the common case
    if allow_split and (
        _NEEDS_SPLIT_RE.search(cleaned) or (_LIST_SEPARATORS_RE.search(cleaned) and len(_tokens(stripped)) > 1)
    ):
        return _single_from_text(stripped, original)
    bracketed = _BRACKETED_IPV6_RE.fullmatch(cleaned)
    if bracketed is not None:
        return _bracketed_ipv6(bracketed, original, notes)
    cleaned, junk_notes = _strip_junk(cleaned)
    if not cleaned:
        return _reject(original, _NOT_RECOGNISED)
    if junk_notes:
        # quotes and brackets may have hidden a defang pattern's edge (“example[.]com”) or an ASN
        asn = _ASN_RE.fullmatch(cleaned)
        if asn is not None:
            return _asn_indicator(asn, original, notes + junk_notes)
        bracketed = _BRACKETED_IPV6_RE.fullmatch(cleaned)
        if bracketed is not None:
            return _bracketed_ipv6(bracketed, original, notes + junk_notes)
    return _classify(cleaned, original, notes + junk_notes, refanged=True)


def _single_from_text(text: str, original: str) -> Indicator | Rejection:
    """A cell holding more than one token: one indicator found in it is the answer; more is ambiguous."""
    found = _extract(text)
    if not found:
        return _reject(original, _NOT_RECOGNISED)
    if len(found) == 1:
        result = found[0]
        if isinstance(result, Rejection):
            return dataclasses.replace(result, original=original)
        return dataclasses.replace(result, original=original, notes=result.notes + ("found in the text around it",))
    if all(isinstance(r, Indicator) for r in found) and len({r.key for r in found}) == 1:
        return dataclasses.replace(found[0], original=original, notes=found[0].notes + ("repeated in the cell",))
    readings = tuple(r.value if isinstance(r, Indicator) else r.original for r in found)
    return _reject(original, f"{len(found)} indicators in one cell", "ambiguous", readings)


def parse_indicator(text: str) -> Indicator | Rejection:
    """Read one indicator from a cell or a paste.

    Returns a normalized :class:`Indicator` (with notes on what was changed) or a :class:`Rejection`
    whose ``status`` is ``empty``, ``invalid`` or ``ambiguous`` (then ``candidates`` holds the readings).
    Text holding several indicators is ``ambiguous`` with each as a candidate; use
    :func:`extract_indicators` for that. Never raises.
    """
    try:
        # _parse inlined: this is the per-row entry point of every bulk run
        if type(text) is str:
            stripped = text.strip()
            if stripped and _CARE_RE.search(stripped) is None and stripped[-1] != ".":
                return _classify(stripped, text, ())
        return _parse(text)
    except Exception as exc:  # the last line of defence: one odd cell must never stop a bulk run
        log.warning("indicator parser failed on %r", text, exc_info=True)
        return _reject(text if isinstance(text, str) else repr(text), f"could not be read ({type(exc).__name__})")


# --------------------------------------------------------------------------------------------------
# Extraction from pasted text
# --------------------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"[^\s\u200b\u200c\u200d\u2060\ufeff]+")
_URL_START = r"[A-Za-z][A-Za-z0-9+.\-]*(?:://|\[:\]//|\[://\])"
_URL_TOKEN_RE = re.compile(_URL_START)
# "|" never belongs to a URL as pasted; "," and ";" may, so a URL is split there only before another URL
_SPLIT_BEFORE_URL_RE = re.compile(rf"\|+|[,;]+(?={_URL_START})")
_WORD_RE = re.compile(r"[\"'“”‘’«»(\[]*[^\W\d_]+(?:['’-][^\W\d_]+)*[\"'“”‘’«»)\].,:;!?]*")
# Rejections worth showing even inside prose: the text clearly meant to be an indicator.
_SHAPED_REASONS = (
    _LEADING_ZEROS, "invalid IPv4", "invalid IPv6", "invalid CIDR", "invalid URL", "invalid e-mail",
    "invalid port", "invalid ASN", "unsupported hash", "invalid domain: empty label",
    "invalid domain: label longer", "invalid domain: name longer", "invalid domain: a label is not valid",
    "invalid domain: a wildcard",
)


def _tokens(text: str) -> list[str]:
    tokens = []
    for token in _TOKEN_RE.findall(text):
        if _URL_TOKEN_RE.search(token):
            tokens.extend(part for part in _SPLIT_BEFORE_URL_RE.split(token) if part)
        else:
            tokens.extend(part for part in _LIST_SEPARATORS_RE.split(token) if part)
    return tokens


def _worth_showing_in_prose(rejection: Rejection, token: str) -> bool:
    reason = rejection.reason
    if reason == _NON_STANDARD:
        # 0x7f.0.0.1 or 1.2.3.010 are addresses; "1.1.1" or "2024" in a sentence are version numbers and years
        return token.count(".") == 3 or "0x" in token.lower()
    return reason.startswith(_SHAPED_REASONS)


def _extract(text: str) -> list[Indicator | Rejection]:
    tokens = _tokens(text)
    prose = any(_WORD_RE.fullmatch(token) for token in tokens)
    found: list[Indicator | Rejection] = []
    for token in tokens:
        try:
            result = _parse(token, allow_split=False)
        except Exception as exc:  # one odd token must not hide the indicators around it
            log.warning("indicator parser failed on %r", token, exc_info=True)
            result = _reject(token, f"could not be read ({type(exc).__name__})")
        if isinstance(result, Indicator) or (
            result.status != "empty" and (not prose or _worth_showing_in_prose(result, token))
        ):
            found.append(result)
    return found


def extract_indicators(text: str) -> list[Indicator | Rejection]:
    """Every indicator in pasted text, in order (duplicates kept; the engine de-duplicates by key).

    Text is split on whitespace, newlines, commas, semicolons and ``|`` (commas inside a URL stay). In a
    list every token is reported, so a typo shows up as a :class:`Rejection`; in prose (any plain word
    among the tokens) ordinary words are skipped and only indicator-shaped failures (``010.1.1.1``,
    ``example..com``) are reported. Never raises.
    """
    try:
        if not isinstance(text, str) or not text.strip():
            return []
        return _extract(text)
    except Exception as exc:  # as in parse_indicator: pasted text must never break the page
        log.warning("indicator extraction failed", exc_info=True)
        return [_reject(text if isinstance(text, str) else repr(text), f"could not be read ({type(exc).__name__})")]
