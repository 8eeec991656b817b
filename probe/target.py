"""``TARGET`` parsing: ``HOST[:PORT]`` or ``[IPV6]:PORT`` (SPEC "Targets and STARTTLS")."""

from __future__ import annotations

import functools
import ipaddress
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


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> Target:
    raw = text.strip()
    if not raw:
        raise InputError("empty target: give HOST[:PORT] or [IPV6]:PORT")
    host, port_text = raw, None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise InputError(f"target {raw!r}: missing ']' after the IPv6 address")
        host, tail = raw[1:end], raw[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise InputError(f"target {raw!r}: expected ':PORT' after ']'")
            port_text = tail[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    elif raw.count(":") > 1:
        # A bare IPv6 address without a port; brackets are needed to add one.
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            raise InputError(f"target {raw!r}: write IPv6 addresses as [ADDR]:PORT") from None
    if not host:
        raise InputError(f"target {raw!r}: missing host name")
    port = default_port
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"target {raw!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    return Target(host=host, port=port)
