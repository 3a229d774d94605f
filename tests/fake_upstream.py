"""One local HTTP server that plays every upstream service, for end-to-end tests, demos and benchmarks.

Each source is served under its own first path segment, so ``OTC_<SOURCE>_URL=http://127.0.0.1:PORT/<source>``
points a source at it (see :meth:`FakeUpstream.env`). Answers are small canned bodies shaped like the real
services (see ../shared/docs/upstream-apis.md): one "bad" address (``BAD_IP``) that several sources report,
a "benign" resolver address, and "not found" for everything else. Requests are counted per source.

Run it by hand for a demo (loopback only)::

    .venv/bin/python tests/fake_upstream.py        # prints the OTC_* settings (incl. a local DNS server)
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

BAD_IP = "185.220.101.78"
BENIGN_IP = "1.1.1.1"
BAD_DOMAIN = "evil-login.com"
BAD_MD5 = "44d88612fea8a8f36de82e1278abb02f"
# Attacker-controlled text as upstream services may carry it; a page that runs it sets window.__otc_xss__.
HOSTILE_TEXT = "TOR-EXIT<script>window.__otc_xss__=1</script><img src=x onerror=\"window.__otc_xss__=2\">"

SOURCES_SERVED = (
    "internetdb", "rdap", "abuseipdb", "virustotal", "otx", "greynoise", "shodan",
    "urlhaus", "threatfox", "malwarebazaar", "crtsh", "feeds",
)
KEYED_SOURCES = ("abuseipdb", "virustotal", "shodan", "urlhaus", "threatfox", "malwarebazaar", "otx", "greynoise")


def _rdap_ip(ip: str) -> dict:
    bad = ip == BAD_IP
    return {
        "objectClassName": "ip network", "handle": "NET-185-220-101-0-1" if bad else "NET-TEST",
        "startAddress": ip.rsplit(".", 1)[0] + ".0" if "." in ip else ip, "endAddress": ip,
        "ipVersion": "v6" if ":" in ip else "v4",
        "name": HOSTILE_TEXT if bad else "EXAMPLE-NET",
        "type": "ASSIGNMENT", "country": "DE" if bad else "US",
        "events": [{"eventAction": "registration", "eventDate": "2019-04-01T00:00:00Z"}],
        "entities": [{"objectClassName": "entity", "handle": "ABUSE-1", "roles": ["abuse"],
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Abuse desk"],
                                               ["email", {}, "text", "abuse@example.net"]]]}],
    }


def _rdap_domain(domain: str) -> dict:
    young = domain == BAD_DOMAIN
    registered = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (5 if young else 4000) * 86400))
    return {
        "objectClassName": "domain", "ldhName": domain.upper(), "handle": "D1-TEST",
        "status": ["client transfer prohibited"],
        "events": [{"eventAction": "registration", "eventDate": registered},
                   {"eventAction": "expiration", "eventDate": "2030-01-01T00:00:00Z"}],
        "entities": [{"objectClassName": "entity", "roles": ["registrar"], "publicIds": [{"type": "IANA Registrar ID", "identifier": "9999"}],
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "=1+1 Registrar Inc."]]]}],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS1.EXAMPLE.NET"}],
        "secureDNS": {"delegationSigned": False},
    }


class FakeUpstream:
    """A threaded local HTTP server; ``counts`` holds requests per source."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.latency = latency
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake._serve(self, None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                fake._serve(self, self.rfile.read(length) if length else b"")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeUpstream":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self, with_keys: bool = True) -> dict[str, str]:
        """``OTC_*`` settings that point every source (and feed) here, with dummy keys."""
        env = {f"OTC_{name.upper()}_URL": f"{self.base}/{name}" for name in SOURCES_SERVED}
        if with_keys:
            env.update({f"OTC_{name.upper()}_KEY": f"dummy-{name}-key-0000" for name in KEYED_SOURCES})
        return env

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    # -- routing --------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        url = urlsplit(handler.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        source = parts[0] if parts else ""
        with self.lock:
            self.counts[source] += 1
        if self.latency:
            time.sleep(self.latency)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        form = {}
        if body:
            try:
                form = json.loads(body)
            except ValueError:
                form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        status, payload = self.answer(source, parts[1:], query, form)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-request (crash tests)
            return

    def answer(self, source: str, path: list[str], query: dict, form: dict) -> tuple[int, object]:
        last = path[-1] if path else ""
        if source == "internetdb":
            if last == BAD_IP:
                return 200, {"ip": last, "ports": [22, 80, 443, 9001], "hostnames": ["tor-exit.example.net"],
                             "tags": ["tor", "compromised"], "vulns": ["CVE-2023-38408"], "cpes": []}
            if last == BENIGN_IP:
                return 200, {"ip": last, "ports": [53, 443], "hostnames": ["one.one.one.one"], "tags": ["cdn"],
                             "vulns": [], "cpes": []}
            return 404, {"detail": "No information available"}
        if source == "rdap":
            if "ip" in path:
                return 200, _rdap_ip(last)
            if "domain" in path:
                return 200, _rdap_domain(last.lower())
            if "autnum" in path:
                return 200, {"objectClassName": "autnum", "handle": f"AS{last}", "name": "EXAMPLE-AS", "country": "US"}
            return 404, {"errorCode": 404, "title": "Not Found"}
        if source == "abuseipdb":
            ip = query.get("ipAddress", "")
            bad = ip == BAD_IP
            return 200, {"data": {"ipAddress": ip, "isPublic": True, "ipVersion": 4, "isWhitelisted": not bad and ip == BENIGN_IP,
                                  "abuseConfidenceScore": 100 if bad else 0, "countryCode": "DE" if bad else "US",
                                  "usageType": "Data Center/Web Hosting/Transit", "isp": "Example Hosting", "domain": "example.net",
                                  "hostnames": [], "isTor": bad, "totalReports": 412 if bad else 0,
                                  "numDistinctUsers": 87 if bad else 0,
                                  "lastReportedAt": "2026-12-01T10:00:00+00:00" if bad else None}}
        if source == "virustotal":
            ident = last
            if ident in (BAD_IP, BAD_DOMAIN, BAD_MD5):
                stats = {"malicious": 12, "suspicious": 2, "harmless": 60, "undetected": 20, "timeout": 0}
            elif ident == BENIGN_IP:
                stats = {"malicious": 0, "suspicious": 0, "harmless": 70, "undetected": 24, "timeout": 0}
            else:
                return 404, {"error": {"code": "NotFoundError", "message": f"{ident} not found"}}
            kind = {"ip_addresses": "ip_address", "domains": "domain", "files": "file", "urls": "url"}.get(path[-2], "ip_address")
            return 200, {"data": {"type": kind, "id": ident, "attributes": {
                "last_analysis_stats": stats, "reputation": -30 if stats["malicious"] else 20, "tags": ["tor"] if ident == BAD_IP else [],
                "last_analysis_date": 1764500000, "categories": {}, "popular_threat_classification": {
                    "suggested_threat_label": "trojan.eicar/test"} if ident == BAD_MD5 else {}}}}
        if source == "otx":
            ind = path[-2] if len(path) >= 2 else ""
            bad = ind in (BAD_IP, BAD_DOMAIN, BAD_MD5)
            if last == "passive_dns":
                records = [{"address": BAD_IP, "hostname": f"c2.{BAD_DOMAIN}", "record_type": "A",
                            "first": "2026-11-01T00:00:00", "last": "2026-12-01T00:00:00", "asn": "AS60729"}] if bad else []
                return 200, {"passive_dns": records, "count": len(records)}
            return 200, {"indicator": ind, "type": path[-3] if len(path) >= 3 else "", "reputation": 0, "validation": [],
                         "pulse_info": {"count": 7 if bad else 0,
                                        "pulses": [{"id": "p1", "name": "Tor exit scanning <b>campaign</b>", "tags": ["tor"],
                                                    "malware_families": []}] if bad else [],
                                        "references": [], "related": {"alienvault": {"malware_families": [], "adversary": [], "industries": []},
                                                                      "other": {"malware_families": [], "adversary": [], "industries": []}}},
                         "false_positive": []}
        if source == "greynoise":
            if last == BAD_IP:
                return 200, {"ip": last, "noise": True, "riot": False, "classification": "malicious", "name": "unknown",
                             "link": f"https://viz.greynoise.io/ip/{last}", "last_seen": "2026-12-02", "message": "Success"}
            if last == BENIGN_IP:
                return 200, {"ip": last, "noise": False, "riot": True, "classification": "benign", "name": "Cloudflare",
                             "link": f"https://viz.greynoise.io/riot/{last}", "last_seen": "2026-12-02", "message": "Success"}
            return 404, {"ip": last, "noise": False, "riot": False,
                         "message": "IP not observed scanning the internet or contained in RIOT data set."}
        if source == "shodan":
            if last == BAD_IP:
                return 200, {"ip_str": last, "org": "Example Tor Hosting", "isp": "Example", "asn": "AS60729",
                             "country_code": "DE", "ports": [22, 80, 443, 9001], "vulns": ["CVE-2023-38408"],
                             "last_update": "2026-12-01T00:00:00.000000", "hostnames": [], "tags": ["tor"], "data": []}
            return 404, {"error": "No information available for that IP."}
        if source in ("urlhaus", "threatfox", "malwarebazaar"):
            term = " ".join(str(v) for v in form.values())
            listed = any(x in term for x in (BAD_IP, BAD_DOMAIN, BAD_MD5))
            if source == "urlhaus":
                if not listed:
                    return 200, {"query_status": "no_results"}
                return 200, {"query_status": "ok", "urlhaus_reference": "https://urlhaus.abuse.ch/host/x/", "host": BAD_DOMAIN,
                             "firstseen": "2026-11-30 10:00:00 UTC", "url_count": "3", "blacklists": {"spamhaus_dbl": "not listed", "surbl": "not listed"},
                             "urls": [{"id": "1", "url": f"http://{BAD_DOMAIN}/login", "url_status": "online", "threat": "malware_download",
                                       "date_added": "2026-11-30 10:00:00 UTC", "tags": ["elf"], "reporter": "reporter_x", "larted": "true"}],
                             "url_status": "online", "threat": "malware_download", "tags": ["elf"], "payloads": []}
            if source == "threatfox":
                if not listed:
                    return 200, {"query_status": "no_result", "data": "Your search did not yield any results"}
                return 200, {"query_status": "ok", "data": [{"id": "1", "ioc": f"{BAD_IP}:443", "threat_type": "botnet_cc",
                                                             "ioc_type": "ip:port", "malware": "win.cobalt_strike",
                                                             "malware_printable": "Cobalt Strike", "confidence_level": 75,
                                                             "first_seen": "2026-11-29 08:00:00 UTC", "last_seen": None,
                                                             "tags": ["c2"], "reporter": "reporter_x"}]}
            if not listed:
                return 200, {"query_status": "hash_not_found"}
            return 200, {"query_status": "ok", "data": [{"sha256_hash": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                                                         "md5_hash": BAD_MD5, "file_name": "eicar.com", "file_type": "com",
                                                         "signature": "EICAR-Test", "first_seen": "2026-01-01 00:00:00",
                                                         "tags": ["eicar"]}]}
        if source == "crtsh":
            q = query.get("q", "") + query.get("Identity", "")
            if BAD_DOMAIN in q:
                return 200, [{"issuer_ca_id": 1, "issuer_name": "C=US, O=Let's Encrypt, CN=R3", "common_name": BAD_DOMAIN,
                              "name_value": f"{BAD_DOMAIN}\nlogin.{BAD_DOMAIN}", "id": 1, "entry_timestamp": "2026-11-28T00:00:00",
                              "not_before": "2026-11-28T00:00:00", "not_after": "2027-02-26T00:00:00", "serial_number": "01"}]
            return 200, []
        if source == "feeds":
            return 200, f"# fake feed\n{BAD_IP}\n".encode()
        return 404, {"error": f"fake upstream does not serve {source!r}"}


def main() -> None:
    parser = argparse.ArgumentParser(description="Local fake of every upstream otc uses (loopback only).")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    args = parser.parse_args()
    from fakedns import FakeDnsServer  # beside this file: DNS must stay on the machine too

    fake = FakeUpstream(port=args.port, latency=args.latency).start()
    dns = FakeDnsServer()
    dns.start()
    dns.records[(BAD_DOMAIN, "A")] = [BAD_IP]
    for name, value in fake.env().items():
        print(f"export {name}={value}")
    print(f"export OTC_DNS_SERVER={dns.address}")
    for name in SOURCES_SERVED + ("dns", "dnsbl"):
        print(f"export OTC_{name.upper()}_RATE=0")  # a stand-in, not the real service: no free-tier pacing
    print(f"# serving on {fake.base} (DNS on {dns.address}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
        dns.stop()


if __name__ == "__main__":
    main()
