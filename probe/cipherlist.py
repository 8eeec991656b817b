"""``--ciphers`` lists: any mix of IANA names, OpenSSL names and hex codes, checked up front."""

from __future__ import annotations

import difflib
import re

from .errors import InputError
from .wire import registry
from .wire.registry import Suite

_SPLIT = re.compile(r"[\s,]+")
_VENDOR = re.compile(r"^(mq|gsk|cft|profile):", re.I)


def _all_names() -> list[str]:
    names: list[str] = []
    for s in registry.all_suites():
        names.append(s.iana)
        if s.openssl:
            names.append(s.openssl)
    return names


def parse_cipher_list(text: str) -> tuple[Suite, ...]:
    """Suites in the order given; duplicates dropped; unknown names are an InputError."""
    # Commas and blanks separate; colons too (OpenSSL style), except after a vendor prefix.
    items = [
        part
        for token in _SPLIT.split(text.strip())
        if token
        for part in ([token] if _VENDOR.match(token) else token.split(":"))
        if part
    ]
    if not items:
        raise InputError("--ciphers: empty list; give names such as ECDHE-RSA-AES128-GCM-SHA256")
    out: list[Suite] = []
    for item in items:
        if _VENDOR.match(item):
            raise InputError(
                f"--ciphers {item}: vendor cipher names (mq:, gsk:, cft:) are not supported yet;"
                " give IANA or OpenSSL names or hex codes"
            )
        suite = registry.find_suite(item)
        if suite is None:
            close = difflib.get_close_matches(item.upper(), [n.upper() for n in _all_names()], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see `openssl ciphers -V`"
            raise InputError(f"--ciphers: unknown cipher suite {item!r}{hint}")
        if suite not in out:
            out.append(suite)
    return tuple(out)
