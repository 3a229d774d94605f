"""Fails the test run if anything tries to reach an address other than loopback.

Installed in the pytest process by ``conftest.py`` and in every subprocess the tests start (CLI, the
Streamlit server) through ``tests/netguard_site/sitecustomize.py`` on ``PYTHONPATH``. A blocked attempt
raises ``NetworkGuardViolation`` *and* is written to the file named by ``OTC_NETGUARD_LOG``, because a
source would turn the exception into an ``error`` status and the test might otherwise pass.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
_lock = threading.Lock()
violations: list[str] = []
_installed = False


class NetworkGuardViolation(OSError):
    pass


def is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _violation(what: str) -> None:
    message = f"blocked non-loopback network access: {what}"
    with _lock:
        violations.append(message)
        path = os.environ.get("OTC_NETGUARD_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"pid {os.getpid()}: {message}\n")
    raise NetworkGuardViolation(message)


def _check_address(family: int, address: object, what: str) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    if isinstance(address, tuple) and address:
        if not is_loopback(address[0]):
            _violation(f"{what} {address[0]}:{address[1] if len(address) > 1 else ''}")


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        _check_address(self.family, address, "connect to")
        return real_connect(self, address)

    def connect_ex(self, address):
        _check_address(self.family, address, "connect to")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        address = args[-1]
        _check_address(self.family, address, "UDP send to")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not is_loopback(host):
            _violation(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
