"""Reading an ``explain`` query: the codes it names, and what the catalogue holds for each.

Theory of operation
-------------------
Operators paste what they see: ``AMQ9631``, ``CSQX631E``, ``RC 428``, ``RC: 401``, ``GSK 406``,
``CR = 71``, ``alert 116``, ``handshake_failure``, ``CPDBC81``, ``TCP2550``, ``0335304B``,
``-93``, or a whole line such as ``EZD1287I TTLS Error RC: 438 Initial Handshake``.
:func:`recognize` turns that into tokens in the knowledge base's spelling, most specific first (a
return code, reason or alert before the message id that carries it): regular expressions for the
code shapes, then symbolic names a source ties to a code (``GSK_ERR_UNKNOWN_CA``,
``MQRC_SSL_INITIALIZATION_ERROR``) or an alert name, then a bare number or CMS status, then the
operators' words a cause lists (``terms``) and family prefixes (``AMQ96``).

The lookups below answer one question each about one code, from the catalogue
(``profiles/codes.toml``) and the causes that mention it (``profiles/diagnosis.toml``), through
:mod:`probe.causes`; :mod:`probe.explain` assembles them into the answer. For a query that names
nothing known, :func:`suggest` offers the closest known codes, alerts and words.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .causes import Cause, CodeBook, CodeDef, VendorCode, load_causes, load_codes
from .decode import ALERT_MEANINGS
from .wire import registry

# Confidence tags, best first: confirmed by a source, standard knowledge, unconfirmed.
CONFIDENCE_RANK = {"C": 0, "K": 1, "U": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """A code recognised in the query, in the knowledge base's spelling."""

    code: str  # "RC 438", "CR=48", "alert 40", "AMQ9631", "CPDBC" (a family)
    kind: str  # "vendor" | "alert" | "family" | "message" | "number" | "term"
    text: str  # as found in the query


# --- recognising codes ------------------------------------------------------------------------


def alert_name(code: int, book: CodeBook) -> str | None:
    """The registry's name for an alert, or the reference's where the registry lacks it (52)."""
    name = registry.alert_name(code)
    if name is None and code in book.alerts:
        name = book.alerts[code].name
    return name


@functools.cache  # the registry and the catalogue do not change within a process
def _alerts_by_name() -> dict[str, int]:
    book = load_codes()
    return {name.upper(): code for code in range(256) if (name := alert_name(code, book))}


# (kind, pattern, spelling). Order matters only for overlapping matches: the first wins.
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (kind, re.compile(pattern), spelling)
    for kind, pattern, spelling in (
        ("vendor", r"\bAMQ\s?(\d{4})[EIW]?\b", "AMQ{0}"),
        ("vendor", r"\bCSQX(\d{3})[EIW]?\b", "CSQX{0}E"),
        ("vendor", r"\b(?:MQRC|REASON(?:\s+CODE)?)\s*[:=]?\s*(\d{4})\b", "MQRC {0}"),
        ("gsk_internal", r"\b134CC([0-9A-F]{3})\b", "RC {0}"),
        ("vendor", r"\b(?:RC|GSK|RETURN\s+CODE)\s*[:=]?\s*(-?\d{1,4})\b", "RC {0}"),
        ("vendor", r"\bCR\s*=\s*(-?\d{1,3})\b", "CR={0}"),
        ("alert", r"\bALERT\s*[:#=]?\s*(\d{1,3})\b", "alert {0}"),
        ("vendor", r"\b(CP[CD]BC[0-9A-F]{2})\b", "{0}"),
        ("family", r"\bCPDBC(?:\s*NN|\s*XX)?\b", "CPDBC"),
        ("vendor", r"\b(CPE\d{4}|TCP\d{4})\b", "{0}"),
        ("vendor", r"\b(?:CMS\s*)?(0335[0-9A-F]{4}|014CE[0-9A-F]{3})\b", "CMS {0}"),
        ("vendor", r"\b260\s+(PKI\s+\d{3}|TLSDOWN|TLSPARSE)\b", "260 {0}"),
        ("vendor", r"\b(TLS_ERR_[A-Z_]+)\b", "{0}"),
        ("vendor", r"\bFTP\s+(\d{3})\b", "FTP {0}"),
        ("message", r"\b(EZ[A-Z]\d{4}I|EDC\d{4}I|ICH\d{3}I|CFT[A-Z]\d{2}[A-Z])\b", "{0}"),
    )
)
_PRIORITY = {"vendor": 0, "alert": 0, "family": 1, "message": 2, "term": 3, "number": 4}


def norm_words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9.]+", " ", text.lower()).split())


def recognize(query: str, causes: Mapping[str, Cause] | None = None) -> list[Token]:
    """The codes in ``query``, most specific first (return codes before message ids)."""
    text = " ".join(query.upper().split())
    found: list[tuple[int, int, Token]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern, spelling in _PATTERNS:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            value = " ".join(m.group(1).split()) if m.groups() else m.group(0)
            if kind == "gsk_internal":  # gsk_strerror: 134CCxxx, xxx = the code in hex
                kind, value = "vendor", str(int(value, 16))
            elif value.lstrip("-").isdigit() and not spelling.startswith("CMS"):
                value = str(int(value))  # "RC: 0401" is RC 401; a CMS status is hex, kept whole
            taken.append((m.start(), m.end()))
            code = spelling.format(value)
            if spelling == "RC {0}" and re.fullmatch(r"2\d{3}", value):
                # System SSL and GSKit return codes have no 2xxx values; "RC=2397" is an MQ
                # reason code as MQ Java clients print it ("CC=2;RC=2397;AMQ9771").
                code = f"MQRC {value}"
            found.append((_PRIORITY[kind], m.start(), Token(code=code, kind=kind, text=m.group(0))))
    # Symbolic names: vendor constants (GSK_ERR_UNKNOWN_CA, MQRC_..., SSL_ERROR_...) stand for
    # their code; alert names (HANDSHAKE_FAILURE, as CFT brackets them) for the alert.
    book = load_codes()
    alerts = _alerts_by_name()
    for m in re.finditer(r"\b[A-Z][A-Z0-9_]{3,}\b", text):
        word = m.group(0)
        if any(a <= m.start() < b for a, b in taken):
            continue
        if word in book.names:
            found.append((0, m.start(), Token(code=book.names[word], kind="vendor", text=word)))
        elif word in alerts:
            tok = Token(code=f"alert {alerts[word]}", kind="alert", text=word)
            found.append((1, m.start(), tok))
    bare = text.strip()
    if not found and re.fullmatch(r"-?\d{1,4}", bare):
        found.append((_PRIORITY["number"], 0, Token(code=str(int(bare)), kind="number", text=bare)))
    elif not found and re.fullmatch(r"[0-9A-F]{8}", bare):
        found.append((0, 0, Token(code=f"CMS {bare}", kind="vendor", text=bare)))
    if not found:
        data = causes if causes is not None else load_causes()
        wanted = norm_words(query)
        if wanted and any(wanted == norm_words(t) for c in data.values() for t in c.terms):
            found.append((3, 0, Token(code=query.strip(), kind="term", text=query.strip())))
        elif wanted:
            # A family prefix ("AMQ96", "CSQX6"): several codes start with it.
            squeezed = bare.replace(" ", "")
            if len(squeezed) >= 4 and any(
                code.replace(" ", "").startswith(squeezed) for code in all_codes(data, book)
            ):
                found.append((1, 0, Token(code=squeezed, kind="family", text=bare)))
    found.sort(key=lambda f: (f[0], f[1]))
    seen: set[str] = set()
    out: list[Token] = []
    for _, _, tok in found:
        if tok.code not in seen:
            seen.add(tok.code)
            out.append(tok)
    return out


def all_codes(causes: Mapping[str, Cause], book: CodeBook) -> list[str]:
    """Every known code: the catalogue's definitions, then the codes only causes mention."""
    from_causes = (code for c in causes.values() for v in c.vendor for code in v.codes)
    return list(dict.fromkeys([*(d.code for d in book.defs), *from_causes]))


# --- looking a code up ------------------------------------------------------------------------


def entries_with(code: str, causes: Mapping[str, Cause]) -> list[tuple[Cause, VendorCode]]:
    return [(c, v) for c in causes.values() for v in c.vendor if code in v.codes]


def code_defs(tok: Token, book: CodeBook) -> list[CodeDef]:
    """The catalogue's definitions of the token's code; the row a queried name belongs to first
    (GSK_ERROR_NO_CIPHERS is IBM i's RC 402, though z/OS has an RC 402 too)."""
    return sorted(book.lookup(tok.code), key=lambda d: tok.text.upper() not in d.names)


def def_entry(d: CodeDef, code: str) -> VendorCode:
    """A definition's vendor entry, for ``code`` (a range row stands for each code in it)."""
    return dataclasses.replace(d.entry, codes=(code,))


def defines(text: str, code: str) -> bool:
    """Does the entry's text open with the code (a definition rather than a mention)? Whole codes
    only: "RC 6" is not defined by a text about "RC 6000"."""
    return re.search(rf"(?<![\w-]){re.escape(code)}(?!\w)", text[: len(code) + 16]) is not None


def best_entry(code: str, causes: Mapping[str, Cause], book: CodeBook) -> VendorCode:
    """The entry that best says what a known code is: its definition, else its best mention."""
    defs = book.lookup(code)
    if defs:
        return def_entry(defs[0], code)
    pairs = sorted(entries_with(code, causes), key=lambda cv: CONFIDENCE_RANK[cv[1].confidence])
    return pairs[0][1]


def headline(tok: Token, causes: Mapping[str, Cause]) -> str | None:
    """A token's meaning in one line, for listing it as the context of another code."""
    if tok.kind == "alert":
        n = int(tok.code.split()[1])
        return ALERT_MEANINGS.get(n)
    defs = code_defs(tok, load_codes())
    if defs:
        return defs[0].entry.text
    pairs = entries_with(tok.code, causes)
    if not pairs:
        return None
    pairs.sort(
        key=lambda cv: (CONFIDENCE_RANK[cv[1].confidence], not defines(cv[1].text, tok.code))
    )
    return pairs[0][1].text


def suggest(query: str, causes: Mapping[str, Cause], limit: int = 6) -> tuple[str, ...]:
    """The known codes closest to an unknown query."""
    book = load_codes()
    codes = all_codes(causes, book)
    alerts = [f"alert {c}" for c in sorted({*ALERT_MEANINGS, *book.alerts})]
    terms = list(dict.fromkeys(t for c in causes.values() for t in c.terms))
    toks = recognize(query, causes)
    wanted = toks[0].code if toks else " ".join(query.upper().split())
    out: list[str] = []
    m = re.fullmatch(r"(RC |CR=|MQRC |alert |AMQ|CSQX|CPDBC|TCP)(-?[0-9A-F]+)E?", wanted)
    if m and m.group(2).lstrip("-").isdigit():
        prefix, n = m.group(1), int(m.group(2))
        same = []
        for c in codes + alerts:
            mm = re.fullmatch(re.escape(prefix) + r"(-?\d+)E?", c)
            if mm:
                same.append((abs(int(mm.group(1)) - n), c))
        out.extend(c for _, c in sorted(same)[:3])
    pool = codes + alerts + terms
    out.extend(difflib.get_close_matches(wanted, pool, n=limit, cutoff=0.5))
    upper = {p.upper(): p for p in pool}
    out.extend(upper[c] for c in difflib.get_close_matches(wanted.upper(), list(upper), n=3))
    return tuple(dict.fromkeys(out))[:limit]
