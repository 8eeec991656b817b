"""``--ciphers`` lists: any mix of the spellings the cipher reference knows, checked up front.

Accepted items (comma, blank or colon separated, in preference order):

* IANA and OpenSSL names, hex codes: ``TLS_RSA_WITH_3DES_EDE_CBC_SHA``, ``DES-CBC3-SHA``,
  ``0x000A``, ``C02F``;
* IBM MQ SSLCIPH values: ``mq:ECDHE_RSA_AES_128_GCM_SHA256`` (one suite, bound to its protocol
  version) or an alias ``mq:ANY_TLS12_OR_HIGHER`` (every suite a queue manager enables in that
  version range, in its handshake order); the prefix may be left out;
* GSKit codes ``gsk:0A`` (2 characters: suite 0x000A) and ``gsk:C02F`` (4 characters: the IANA
  codepoint), Transfer CFT CIPHLIST numbers ``cft:47`` (decimal codepoints);
* ``profile:NAME`` (or ``profile:PATH.toml``): the client suites of a partner profile.

An unknown item is an :class:`~probe.errors.InputError` that names it and suggests the nearest
known spellings. See :mod:`probe.ciphers` for the reference behind these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import ciphernames
from .errors import InputError
from .wire.registry import Suite

_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class CipherSelection:
    """A parsed list: suites in order, and the versions MQ names pin (None: no constraint)."""

    suites: tuple[Suite, ...]
    versions: tuple[int, ...] | None
    items: tuple[ciphernames.Resolved, ...]


def split_items(text: str) -> list[str]:
    """Items of a list. Colons separate (OpenSSL style) except after a vendor prefix, so
    ``gsk:0A:gsk:2F`` and ``AES128-SHA:mq:ANY`` both split as written."""
    items: list[str] = []
    for token in _SPLIT.split(text.strip()):
        parts = [p for p in token.split(":")]
        i = 0
        while i < len(parts):
            part = parts[i]
            if part.lower() in ciphernames.PREFIXES and i + 1 < len(parts):
                if part.lower() == "profile":
                    # A profile path may hold colons of its own: the rest of the token is it.
                    items.append(f"profile:{':'.join(parts[i + 1 :])}")
                    break
                items.append(f"{part}:{parts[i + 1]}")
                i += 2
                continue
            if part:
                items.append(part)
            i += 1
    return items


def parse_cipher_selection(text: str, *, option: str = "--ciphers") -> CipherSelection:
    """Suites in the order given (duplicates dropped) with the versions MQ names imply."""
    items = split_items(text)
    if not items:
        raise InputError(
            f"{option}: empty list; give names such as ECDHE-RSA-AES128-GCM-SHA256, gsk:0A,"
            " cft:47 or mq:ANY_TLS12_OR_HIGHER"
        )
    out: list[Suite] = []
    resolved: list[ciphernames.Resolved] = []
    pinned: set[int] | None = None
    for item in items:
        prefix, body = ciphernames.split_prefix(item)
        try:
            got = _profile_item(item, body) if prefix == "profile" else ciphernames.resolve(item)
        except InputError as exc:  # unknown names, and unreadable profile: items
            raise InputError(f"{option}: {exc}") from None
        resolved.append(got)
        if got.versions is not None:
            pinned = set(got.versions) if pinned is None else pinned | set(got.versions)
        for suite in got.suites:
            if suite not in out:
                out.append(suite)
    return CipherSelection(
        suites=tuple(out),
        versions=tuple(sorted(pinned)) if pinned is not None else None,
        items=tuple(resolved),
    )


def _profile_item(item: str, body: str) -> ciphernames.Resolved:
    from .profiles import load_profile  # profiles resolve their own lists through this module

    profile = load_profile(body)
    return ciphernames.Resolved(
        token=item,
        kind="profile",
        suites=profile.client.suites,
        versions=profile.client.versions,
    )


def parse_cipher_list(text: str) -> tuple[Suite, ...]:
    """Suites in the order given; duplicates dropped; unknown names are an InputError."""
    return parse_cipher_selection(text).suites


def apply_pinned_versions(
    selection: CipherSelection | None, exact: int | None, lo: int | None, hi: int | None
) -> tuple[int | None, int | None, int | None]:
    """MQ CipherSpecs are bound to a protocol version (vendor-codes.md §1b): when the user chose
    no version, offer the ones the names pin (TLS_RSA_WITH_AES_128_CBC_SHA is a TLS 1.0 spec)."""
    if selection is None or selection.versions is None or (exact, lo, hi) != (None, None, None):
        return exact, lo, hi
    return None, min(selection.versions), max(selection.versions)
