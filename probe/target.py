"""``TARGET`` parsing: ``HOST[:PORT]`` or ``[IPV6]:PORT`` (SPEC "Targets and STARTTLS")."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from .errors import InputError

DEFAULT_PORT = 443


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    host: str
    port: int

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@functools.lru_cache(maxsize=1024)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# A DNS name (RFC 1123 labels; underscores too, which internal names use) or an address.
# Anything else (spaces, a URL, user@host) is a typo that would otherwise become a DNS query.
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)+\Z")


def _ascii_name(host: str) -> str:
    """The name as DNS carries it (IDNA for non-ASCII labels); "" when it cannot be one."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> Target:
    raw = text.strip()
    if not raw:
        raise InputError("empty target: give HOST[:PORT] or [IPV6]:PORT")
    shown = raw if len(raw) <= 80 else raw[:77] + "..."  # errors quote the target, briefly
    if "://" in raw:
        raise InputError(f"target {shown!r}: give HOST[:PORT], not a URL")
    host, port_text = raw, None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise InputError(f"target {shown!r}: missing ']' after the IPv6 address")
        host, tail = raw[1:end], raw[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise InputError(f"target {shown!r}: expected ':PORT' after ']'")
            port_text = tail[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    elif raw.count(":") > 1:
        # Without brackets "::1:9600" is both [::1]:9600 and the address ::1:9600 on port
        # 443: refuse to guess.
        raise InputError(
            f"target {shown!r}: write IPv6 addresses in brackets, [ADDR]:PORT (or [ADDR] for"
            f" port {default_port})"
        )
    if not host:
        raise InputError(f"target {shown!r}: missing host name")
    if not _is_ip(host) and not _HOST_NAME.match(_ascii_name(host)):
        raise InputError(f"target {shown!r}: {host[:60]!r} is not a host name or an address")
    port = default_port
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"target {shown!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    return Target(host=host, port=port)
