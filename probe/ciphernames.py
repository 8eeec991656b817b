"""Every spelling of a cipher suite: one token of a ``--ciphers`` list turned into suites, the
nearest known names when it matches none, and the looser lookup behind ``tlsprobe ciphers``.

Theory of operation
-------------------
The names live in the reference (:mod:`probe.ciphers`); this module only reads them. A token
is tried from the most specific spelling to the least, so a name never means two things:

* a vendor prefix (``mq:``, ``gsk:``, ``cft:``) decides the vendor outright; ``profile:`` is
  the cipher-list parser's business (:mod:`probe.cipherlist`);
* four hex digits (``0xC02F`` or ``C02F``) are an IANA codepoint;
* then the IANA and OpenSSL names, then the names of the non-IANA rows;
* last, MQ SSLCIPH values without their prefix: those are what MQ administrators copy around.
  A CipherSpec pins its protocol version; an alias pins a version range and expands to the
  queue manager's suites in that range.

:func:`resolve` is strict: nothing found raises :class:`UnknownCipher`, an
:class:`InputError` that carries the nearest known spellings. :func:`search` is the looser
lookup of ``tlsprobe ciphers``: a bare number is read both as hex and as decimal (Transfer CFT),
and a query no spelling matches falls back to a substring of any name.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .ciphers import (
    INFERRED,
    CipherRow,
    MQAlias,
    MQCipherSpec,
    mq_alias,
    mq_alias_suites,
    mq_spec,
    reference,
    row,
    suite_for,
)
from .errors import InputError
from .wire import registry
from .wire.registry import Suite

PREFIXES = ("mq", "gsk", "cft", "profile")


# ---------------------------------------------------------------------------------------------
# Resolving one token
# ---------------------------------------------------------------------------------------------


class UnknownCipher(InputError):
    """A cipher name or vendor code nobody knows; carries the nearest known spellings."""

    def __init__(self, token: str, problem: str, suggestions: Iterable[str] = ()) -> None:
        self.token = token
        self.problem = problem
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"{token!r}: {problem}{hint} (`tlsprobe ciphers` lists every name)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """What one token of a cipher list means."""

    token: str
    kind: str  # iana | openssl | hex | mq | mq_alias | gsk | cft | nonstandard | profile
    suites: tuple[Suite, ...]
    versions: tuple[int, ...] | None = None  # MQ names pin versions; None: no constraint
    mq_spec: MQCipherSpec | None = None
    mq_alias: MQAlias | None = None
    confidence: str = "C"  # of the vendor spelling (inferred for rule-derived codes)


_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_HEX4 = re.compile(r"(?:0x)?([0-9A-Fa-f]{4})")


def split_prefix(token: str) -> tuple[str | None, str]:
    head, sep, tail = token.partition(":")
    if sep and head.lower() in PREFIXES:
        return head.lower(), tail.strip()
    return None, token


def resolve(token: str) -> Resolved:
    """One token in any accepted spelling (see the module docstring); ``profile:`` is the
    caller's business (:mod:`probe.cipherlist`)."""
    text = token.strip()
    prefix, body = split_prefix(text)
    if prefix == "mq":
        return _resolve_mq(text, body)
    if prefix == "gsk":
        return _resolve_gsk(text, body)
    if prefix == "cft":
        return _resolve_cft(text, body)
    if prefix == "profile":
        raise UnknownCipher(text, "profile: lists are resolved by the cipher-list parser")
    m = _HEX4.fullmatch(text)
    if m:
        code = int(m.group(1), 16)
        r = row(code)
        if r is None:
            raise UnknownCipher(text, f"0x{code:04X} is no known cipher suite")
        return Resolved(token=text, kind="hex", suites=(r.suite,))
    found = registry.find_suite(text)
    if found is not None:
        kind = "iana" if found.iana.upper() == text.upper() else "openssl"
        return Resolved(token=text, kind=kind, suites=(found,))
    folded = text.upper()
    for r in reference().rows:
        if not r.iana_assigned and folded in (
            r.suite.iana.upper(),
            (r.openssl_legacy or "").upper(),
        ):
            return Resolved(token=text, kind="nonstandard", suites=(r.suite,))
    # MQ spellings without the prefix: SSLCIPH values are what MQ administrators copy around.
    if mq_spec(text) is not None or mq_alias(text) is not None:
        return _resolve_mq(text, text)
    raise UnknownCipher(text, "unknown cipher suite", suggest(text))


def _resolve_mq(token: str, body: str) -> Resolved:
    spec = mq_spec(body)
    if spec is not None:
        s = suite_for(spec.code)
        assert s is not None  # checked when the reference was built
        return Resolved(
            token=token,
            kind="mq",
            suites=(s,),
            versions=(spec.protocol,),
            mq_spec=spec,
            confidence=spec.confidence,
        )
    alias = mq_alias(body)
    if alias is not None:
        qm = reference().queue_manager
        return Resolved(
            token=token,
            kind="mq_alias",
            suites=mq_alias_suites(alias),
            versions=alias.versions(qm.versions),
            mq_alias=alias,
            confidence=alias.confidence,
        )
    # z/OS and IBM i accept hex codes in SSLCIPH (vendor-codes.md §1): the GSKit forms.
    if _HEX2.fullmatch(body) or re.fullmatch(r"[0-9A-Fa-f]{4}", body):
        got = _resolve_gsk(token, body)
        return Resolved(token=token, kind="gsk", suites=got.suites, confidence=got.confidence)
    names = [*reference().mq_aliases, *reference().mq_specs]
    close = difflib.get_close_matches(body.upper(), names, n=3, cutoff=0.5)
    raise UnknownCipher(
        token,
        "not an IBM MQ CipherSpec or alias",
        [f"mq:{reference().mq_specs[n].name if n in reference().mq_specs else n}" for n in close]
        or ["mq:ANY_TLS12_OR_HIGHER", "mq:ECDHE_RSA_AES_128_GCM_SHA256"],
    )


def _resolve_gsk(token: str, body: str) -> Resolved:
    text = body.upper()
    if _HEX2.fullmatch(text) or re.fullmatch(r"[0-9A-F]{4}", text):
        code = int(text, 16)
    else:
        raise UnknownCipher(
            token,
            "a GSKit cipher code is 2 hex digits (the low byte of a 0x00XX suite) or 4 (the IANA"
            " codepoint)",
            _documented_gsk(text),
        )
    r = row(code)
    if r is None or r.gsk_long is None:
        raise UnknownCipher(token, f"0x{code:04X} is no known cipher suite", _documented_gsk(text))
    code_info = r.gsk_short if len(text) == 2 else r.gsk_long
    return Resolved(
        token=token,
        kind="gsk",
        suites=(r.suite,),
        confidence=code_info.confidence if code_info else INFERRED,
    )


def _documented_gsk(text: str) -> list[str]:
    listed = [
        c.value
        for r in reference().rows
        for c in (r.gsk_short, r.gsk_long)
        if c is not None and not c.inferred
    ]
    listed = list(dict.fromkeys(v for v in listed if len(v) == 2 or not v.startswith("00")))
    close = difflib.get_close_matches(text, listed, n=3, cutoff=0.3)
    return [f"gsk:{v}" for v in (close or listed[:3])]


def _resolve_cft(token: str, body: str) -> Resolved:
    if not body.isdigit():
        raise UnknownCipher(
            token,
            "a Transfer CFT CIPHLIST value is a decimal IANA codepoint",
            [f"cft:{n}" for n in reference().cft_order[:3]],
        )
    n = int(body)
    r = row(n) if n <= 0xFFFF else None
    if r is None or r.cft is None:
        listed = [str(n) for n in reference().cft_order]
        close = difflib.get_close_matches(body, listed, n=3, cutoff=0.3) or listed[:3]
        raise UnknownCipher(
            token, f"{n} (0x{n:X}) is no known cipher suite", [f"cft:{c}" for c in close]
        )
    return Resolved(token=token, kind="cft", suites=(r.suite,), confidence=r.cft.confidence)


@functools.cache
def _all_spellings() -> tuple[str, ...]:
    names: list[str] = []
    for r in reference().rows:
        names.extend(r.names())
    names += [f"mq:{a.name}" for a in reference().mq_aliases.values()]
    return tuple(dict.fromkeys(names))


def suggest(text: str, n: int = 3) -> list[str]:
    """The nearest known spellings of a cipher name (any vendor)."""
    folded = text.strip().upper().replace("-", "_")
    by_fold: dict[str, str] = {}
    for name in _all_spellings():
        by_fold.setdefault(name.upper().replace("-", "_"), name)
        _, bare = split_prefix(name)
        by_fold.setdefault(bare.upper().replace("-", "_"), name)
    close = difflib.get_close_matches(folded, list(by_fold), n=n, cutoff=0.6)
    return list(dict.fromkeys(by_fold[c] for c in close))


# ---------------------------------------------------------------------------------------------
# Searching (`tlsprobe ciphers QUERY`)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    query: str | None
    rows: tuple[CipherRow, ...]
    aliases: tuple[MQAlias, ...]
    how: str  # "all" | "exact" | "number" | "substring" | "profile"


def search(query: str | None) -> SearchResult:
    """Rows matching a name or number; no query: the whole table. Nothing found: UnknownCipher."""
    ref = reference()
    if query is None or not query.strip():
        return SearchResult(
            query=None, rows=ref.rows, aliases=tuple(ref.mq_aliases.values()), how="all"
        )
    text = query.strip()
    prefix, body = split_prefix(text)
    # A bare number is ambiguous between hex (registries) and decimal (Transfer CFT): show both.
    if prefix is None and text.isdigit() and len(text) != 4:
        codes = {int(text, 16) if len(text) <= 4 else -1, int(text)}
        rows = tuple(ref.by_code[c] for c in sorted(codes) if c in ref.by_code)
        if rows:
            return SearchResult(query=text, rows=rows, aliases=(), how="number")
    if prefix == "profile":
        # A partner profile's client list, in its order (load_profile says which names exist).
        from .profiles import load_profile

        suites = load_profile(body).client.suites
        rows = tuple(ref.by_code[s.code] for s in suites if s.code in ref.by_code)
        return SearchResult(query=text, rows=rows, aliases=(), how="profile")
    try:
        got = resolve(text)
    except UnknownCipher as exc:
        if prefix is not None:
            raise
        rows = _substring(body)
        if not rows:
            raise UnknownCipher(
                text, "matches no cipher suite name or code", exc.suggestions
            ) from None
        return SearchResult(query=text, rows=rows, aliases=(), how="substring")
    rows = tuple(ref.by_code[s.code] for s in got.suites if s.code in ref.by_code)
    aliases = (got.mq_alias,) if got.mq_alias else ()
    return SearchResult(query=text, rows=rows, aliases=aliases, how="exact")


def _substring(text: str) -> tuple[CipherRow, ...]:
    needle = text.upper().replace("-", "_")
    if len(needle) < 2:
        return ()
    return tuple(
        r for r in reference().rows if any(needle in n.upper().replace("-", "_") for n in r.names())
    )
