"""P3: import 1,000,000 feed entries (IPv4, IPv6, CIDRs, domains, URLs) with ``update_feeds(--from)``
(goal ≤ 15 s), then match 100,000 mixed indicators against them (goal ≤ 1 s); prints peak memory.

The feed files are generated deterministically in the formats of the real lists (ET plain IPs, the Tor
bulk list, a FireHOL netset, a ThreatFox CSV export, the OpenPhish URL list) in a temporary folder.
About two thirds of the indicators are on a list (exact, inside a range, a subdomain of a listed
domain, another path on a listed URL's host). The in-memory index is built once per snapshot change;
its build time is printed apart. Run: ``python -m bench.p3_match [--entries N] [--indicators N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from otc.config import Mode, Settings
from otc.feeds import update_feeds
from otc.http import HttpClient
from otc.model import Indicator, Kind, Scope
from otc.sources.base import SourceContext
from otc.sources.feeds import SOURCE as FEEDS
from otc.store import open_store

GOAL_IMPORT_S = 15.0
GOAL_MATCH_S = 1.0
# First octets whose whole /8 is ordinary global space (no private, shared, documentation or reserved part).
GLOBAL_OCTETS = [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)]
TLDS = ["com", "net", "org", "ru", "info", "xyz", "top", "de", "io", "co.uk", "online", "site", "shop"]
SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
SHARES = {"ipv4": 0.35, "ipv6": 0.05, "cidr": 0.10, "domain": 0.25, "url": 0.25}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports kB


class Generator:
    def __init__(self, seed: int = 4) -> None:
        self.rng = random.Random(seed)

    def ipv4(self) -> str:
        r = self.rng.getrandbits(24)
        return f"{self.rng.choice(GLOBAL_OCTETS)}.{r >> 16}.{(r >> 8) & 255}.{r & 255}"

    def ipv6(self) -> str:
        r = self.rng.getrandbits(64)
        return f"2a0{self.rng.randint(0, 9)}:{r >> 48 & 0xffff:x}:{r >> 32 & 0xffff:x}::{r & 0xffff:x}"

    def cidr(self) -> str:
        length = self.rng.randint(16, 28)
        r = self.rng.getrandbits(24) >> (32 - length) << (32 - length)
        return f"{self.rng.choice(GLOBAL_OCTETS)}.{r >> 16}.{(r >> 8) & 255}.{r & 255}/{length}"

    def word(self) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(3, 5)))

    def domain(self) -> str:
        name = f"{self.word()}-{self.word()}.{self.rng.choice(TLDS)}"
        return f"{self.word()}.{name}" if self.rng.random() < 0.3 else name

    def url(self, host: str | None = None) -> str:
        scheme = "https" if self.rng.random() < 0.6 else "http"
        ending = self.rng.choice(["php", "html", "exe"])
        return f"{scheme}://{host or self.domain()}/{self.word()}/{self.word()}.{ending}"

    def unique(self, make, count: int) -> list[str]:
        seen: set[str] = set()
        while len(seen) < count:
            seen.add(make())
        return list(seen)


def write_feeds(folder: Path, gen: Generator, total: int) -> dict[str, list[str]]:
    counts = {kind: int(total * share) for kind, share in SHARES.items()}
    values = {
        "ipv4": gen.unique(gen.ipv4, counts["ipv4"]),
        "ipv6": gen.unique(gen.ipv6, counts["ipv6"]),
        "cidr": gen.unique(gen.cidr, counts["cidr"]),
        "domain": gen.unique(gen.domain, counts["domain"]),
        "url": gen.unique(gen.url, counts["url"]),
    }
    (folder / "et_compromised-ips.txt").write_text("\n".join(values["ipv4"]) + "\n")
    (folder / "torbulkexitlist.txt").write_text("\n".join(values["ipv6"]) + "\n")
    (folder / "firehol_level1.netset").write_text(
        "# firehol_level1\n# This File Date  : Wed Dec  3 10:00:00 UTC 2025\n#\n" + "\n".join(values["cidr"]) + "\n")
    header = ('# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias",'
              '"malware_printable","last_seen_utc","confidence_level","is_compromised","reference","tags",'
              '"anonymous","reporter"\n')
    rows = [f'"2025-12-03 01:00:00", "{n}", "{d}", "domain", "botnet_cc", "win.x", "None", "X", "", "75", '
            f'"False", "None", "None", "0", "bench"' for n, d in enumerate(values["domain"])]
    (folder / "threatfox_export.csv").write_text("# ThreatFox IOCs\n#\n" + header + "\n".join(rows)
                                                 + f"\n# Number of entries: {len(rows)}\n")
    (folder / "openphish.txt").write_text("\n".join(values["url"]) + "\n")
    return values


def make_indicators(gen: Generator, listed: dict[str, list[str]], count: int) -> list[Indicator]:
    rng = gen.rng
    out: list[Indicator] = []

    def add(kind: Kind, value: str, **kw) -> None:
        out.append(Indicator(kind, value, value, value, **kw))

    for _ in range(int(count * 0.30)):
        pick = rng.random()
        if pick < 1 / 3:
            add(Kind.IPV4, rng.choice(listed["ipv4"]))
        elif pick < 2 / 3:
            network, _, length = rng.choice(listed["cidr"]).partition("/")
            a, b, c, d = (int(x) for x in network.split("."))
            host = ((a << 24) | (b << 16) | (c << 8) | d) + rng.randrange(1 << (32 - int(length)))
            add(Kind.IPV4, f"{host >> 24}.{host >> 16 & 255}.{host >> 8 & 255}.{host & 255}")
        else:
            add(Kind.IPV4, gen.ipv4())
    for _ in range(int(count * 0.05)):
        add(Kind.IPV6, rng.choice(listed["ipv6"]) if rng.random() < 0.5 else gen.ipv6())
    for _ in range(int(count * 0.05)):
        add(Kind.CIDR, rng.choice(listed["cidr"]) if rng.random() < 0.5 else gen.cidr())
    for _ in range(int(count * 0.25)):
        pick = rng.random()
        name = rng.choice(listed["domain"]) if pick < 2 / 3 else gen.domain()
        add(Kind.DOMAIN, f"{gen.word()}.{name}" if 1 / 3 <= pick < 2 / 3 else name)
    for _ in range(int(count * 0.25)):
        pick = rng.random()
        url = rng.choice(listed["url"])
        host = url.split("/")[2]
        value = url if pick < 1 / 3 else gen.url(host) if pick < 2 / 3 else gen.url()
        add(Kind.URL, value, host=value.split("/")[2], host_kind=Kind.DOMAIN)
    while len(out) < count:
        add(Kind.SHA256, "%064x" % rng.getrandbits(256), scope=Scope.NOT_APPLICABLE)
    rng.shuffle(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--indicators", type=int, default=100_000)
    args = parser.parse_args(argv)
    gen = Generator()
    with tempfile.TemporaryDirectory(prefix="otc-bench-p3-") as tmp:
        folder = Path(tmp) / "feeds"
        folder.mkdir()
        started = time.monotonic()
        listed = write_feeds(folder, gen, args.entries)
        items = make_indicators(gen, listed, args.indicators)
        print(f"P3 generated {sum(len(v) for v in listed.values()):,} feed entries in 5 files and "
              f"{len(items):,} indicators in {time.monotonic() - started:.1f} s (not timed below)")
        del listed

        settings = Settings(mode=Mode.LOCAL, data_dir=Path(tmp) / "data")
        started, cpu = time.monotonic(), time.process_time()
        updates = update_feeds(settings, from_dir=folder)
        import_s, import_cpu = time.monotonic() - started, time.process_time() - cpu
        entries = sum(u.entries for u in updates)
        print(f"import: {entries:,} entries in {import_s:.2f} s (CPU {import_cpu:.2f} s) "
              f"({', '.join(f'{u.name} {u.entries:,}' for u in updates)}) "
              f"goal <= {GOAL_IMPORT_S:g} s {'OK' if import_s <= GOAL_IMPORT_S else 'GOAL MISSED'}")

        store = open_store(settings.data_dir)
        started, cpu = time.monotonic(), time.process_time()
        index = store.index()
        build_s, build_cpu = time.monotonic() - started, time.process_time() - cpu
        print(f"index build (once per snapshot change): {build_s:.2f} s (CPU {build_cpu:.2f} s) "
              f"for {index.size:,} entries; peak memory so far {peak_mb():,.0f} MB")

        started, cpu = time.monotonic(), time.process_time()
        hits = sum(1 for item in items if index.match(item))
        match_s, match_cpu = time.monotonic() - started, time.process_time() - cpu
        print(f"match: {len(items):,} indicators in {match_s:.3f} s (CPU {match_cpu:.3f} s; "
              f"{len(items) / match_s:,.0f}/s), "
              f"{hits:,} on a list; goal <= {GOAL_MATCH_S:g} s {'OK' if match_s <= GOAL_MATCH_S else 'GOAL MISSED'}")

        ctx = SourceContext(settings=settings, http=HttpClient(), base_url="", timeout=10.0)
        started = time.monotonic()
        ok = sum(1 for item in items if FEEDS.lookup(item, ctx).fields.get("lists"))
        lookup_s = time.monotonic() - started
        print(f"through the feeds source (fields, reasons' ages): {lookup_s:.3f} s, {ok:,} with lists")
        print(f"peak memory (ru_maxrss): {peak_mb():,.0f} MB; store file "
              f"{store.path.stat().st_size / 1e6:,.0f} MB; integrity {store.integrity_check()}")
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(other work on the machine slows every figure; CPU times are the steadier measure)")
    print(f"P3 match_s={match_s:.3f} goal={GOAL_MATCH_S} import_s={import_s:.2f} goal={GOAL_IMPORT_S} "
          f"index_build_s={build_s:.2f} peak_mb={peak_mb():.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
