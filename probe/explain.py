"""``tlsprobe explain CODE``: what a code from a log means and what to do about it.

Theory of operation
-------------------
The query is first broken into the codes it contains (:func:`probe.codelookup.recognize`, which
also reads symbolic names such as ``GSK_ERR_UNKNOWN_CA``, bare MQ reason codes and operators'
words); the most specific one (a return code, reason or alert rather than the message id that
carries it) is explained, the others are listed as context. This module assembles the answer
from what :mod:`probe.codelookup` finds for a code.

Everything comes from the knowledge base (``profiles/diagnosis.toml`` and the code catalogue
``profiles/codes.toml``, through :mod:`probe.causes`) and the lab catalog; nothing here restates
a vendor fact. For a code the answer holds: what each product means by it, opening with the code's
own definition (with its confidence tag: unconfirmed entries are labelled), the cause it belongs
to, which end most likely has the problem (the cause's ``side`` seen from the end that
logs the code), the likely causes and fixes, the codes logged with it or at the other end of
the link (same cause and product, the opposite ``where``: z/OS RC 428 at the server pairs with
RC 438 at the client), what other products log for the same failure, and the lab scenarios
that reproduce it with the commands to try. An unknown code is an answer too: ``found`` is
false and the closest known codes are suggested (the CLI exits 1).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .causes import CONFIDENCE_LABELS, Cause, VendorCode, causes_for_alert, load_causes, load_codes
from .codelookup import (
    CONFIDENCE_RANK,
    Token,
    alert_name,
    all_codes,
    best_entry,
    code_defs,
    def_entry,
    defines,
    entries_with,
    headline,
    norm_words,
    recognize,
    suggest,
)
from .decode import ALERT_MEANINGS

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Meaning:
    product: str
    code: str
    where: str  # which end logs it: server | client | either
    text: str
    confidence: str
    confidence_label: str
    source: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Related:
    product: str
    codes: tuple[str, ...]
    where: str
    relation: str  # "other end" | "logged with it" | "other product" | "in this family"
    text: str
    confidence: str
    confidence_label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CauseInfo:
    id: str
    summary: str
    fix: str
    side: str  # local | remote | both (where the fix belongs, client = local)
    look_at: str  # the same, in words, seen from the end that logs the code
    outcome: str | None
    scenario: str | None
    confidence: str  # the best confidence among the entries that led here


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioInfo:
    name: str
    summary: str
    expect_outcome: str
    cause: str
    commands: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Another code in the query, with its headline meaning."""

    code: str
    kind: str
    meaning: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    query: str
    found: bool
    code: str | None = None
    kind: str | None = None
    title: str | None = None  # "RC 438 (z/OS System SSL)"
    meaning: str | None = None
    look_at: str | None = None
    unconfirmed: bool = False  # no confirmed entry backs the meaning
    products: tuple[str, ...] = ()
    meanings: tuple[Meaning, ...] = ()
    causes: tuple[CauseInfo, ...] = ()
    related: tuple[Related, ...] = ()
    scenarios: tuple[ScenarioInfo, ...] = ()
    context: tuple[Context, ...] = ()
    also: tuple[str, ...] = ()  # other readings of an ambiguous query ("48": alert, CR, RC)
    suggestions: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION


# --- building the answer ----------------------------------------------------------------------


def _meaning(cause: str, v: VendorCode, code: str) -> Meaning:
    return Meaning(
        product=v.product,
        code=code,
        where=v.where,
        text=v.text,
        confidence=v.confidence,
        confidence_label=CONFIDENCE_LABELS[v.confidence],
        source=v.source,
        cause=cause,
    )


_FIX_AT = {"local": "client", "remote": "server", "both": "both"}


def look_at(side: str, where: str) -> str:
    """Where to look, in words, for a cause whose fix belongs at ``side`` (probe terms:
    local = the client) when the code is logged by ``where``."""
    fix_at = _FIX_AT[side]
    if fix_at == "both":
        return "both ends: each has a part to check"
    if where == "either":
        return f"the {fix_at} side"
    if where == fix_at:
        return f"this end (the {where} that logs it)"
    return f"the other end (the {fix_at}), not the {where} that logs it"


def _cause_info(
    cause: Cause, entries: list[VendorCode], defs: list[VendorCode] | None = None
) -> CauseInfo:
    """``entries`` (the cause's own mentions of the code) say which end logs it; a definition
    only speaks for it when the cause has none, as most definitions say "either"."""
    defs = defs or []
    best = min(
        (v.confidence for v in entries + defs), key=lambda c: CONFIDENCE_RANK[c], default="C"
    )
    wheres = {v.where for v in entries or defs}
    where = wheres.pop() if len(wheres) == 1 else "either"
    return CauseInfo(
        id=cause.id,
        summary=cause.summary,
        fix=cause.fix,
        side=cause.side,
        look_at=look_at(cause.side, where),
        outcome=cause.outcome or None,
        scenario=cause.scenario,
        confidence=best,
    )


def _alert_of(code: str) -> int | None:
    """The TLS alert a code stands for: Transfer CFT's CR is the alert number."""
    m = re.fullmatch(r"(?:CR=|alert )(\d+)", code)
    return int(m.group(1)) if m else None


def _rank_causes(
    code: str, pairs: list[tuple[Cause, VendorCode]]
) -> list[tuple[Cause, list[VendorCode]]]:
    by_id: dict[str, tuple[Cause, list[VendorCode]]] = {}
    for cause, v in pairs:
        by_id.setdefault(cause.id, (cause, []))[1].append(v)
    ordered = list(by_id.values())
    alert = _alert_of(code)
    # Confirmed entries first; then causes that the same alert number points at; the file's
    # order (most common cause first) within that.
    ordered.sort(
        key=lambda cv: (
            min(CONFIDENCE_RANK[v.confidence] for v in cv[1]),
            0 if alert is not None and alert in cv[0].alerts else 1,
        )
    )
    return ordered


def _related(
    code: str, ranked: list[tuple[Cause, list[VendorCode]]], limit: int = 12
) -> list[Related]:
    """Codes logged with it, at the other end of the link, and by other products."""
    out: list[Related] = []
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    own_products = {v.product for _, vs in ranked for v in vs}

    def add(v: VendorCode, relation: str, codes: tuple[str, ...]) -> None:
        key = (v.product, codes, v.where)
        if not codes or key in seen:
            return
        seen.add(key)
        out.append(
            Related(
                product=v.product,
                codes=codes,
                where=v.where,
                relation=relation,
                text=v.text,
                confidence=v.confidence,
                confidence_label=CONFIDENCE_LABELS[v.confidence],
            )
        )

    # The other end of the link: same cause and product, the opposite side logs it.
    for cause, vs in ranked:
        for v in vs:
            if v.where not in ("server", "client"):
                continue
            for other in cause.vendor:
                if other.product == v.product and other.where not in (v.where, "either"):
                    add(other, "other end", tuple(c for c in other.codes if c != code))
    # Logged together with it (the same entry names them side by side).
    for _, vs in ranked:
        for v in vs:
            add(v, "logged with it", tuple(c for c in v.codes if c != code))
    # What the other products log for the same failure (top causes only).
    for cause, _ in ranked[:2]:
        for other in cause.vendor:
            if other.product not in own_products and other.confidence != "U":
                add(other, "other product", other.codes)
    return out[:limit]


def _default_pki_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tlsprobe" / "lab-pki"


_PROBE_OPTIONS = {"tls_max": "--tls-max", "tls_min": "--tls-min", "starttls": "--starttls",
                  "mq_channel": "--mq-channel", "timeout": "--timeout"}  # fmt: skip


def _logged_for_it(v: VendorCode) -> Related:
    """A vendor line of a cause, as a code the other products log for it."""
    return Related(
        product=v.product,
        codes=v.codes,
        where=v.where,
        relation="logged for it",
        text=v.text,
        confidence=v.confidence,
        confidence_label=CONFIDENCE_LABELS[v.confidence],
    )


def _scenarios(causes: list[CauseInfo]) -> list[ScenarioInfo]:
    from .lab import DEFAULT_PORT_BASE, scenario_port
    from .lab.catalog import load_catalog

    order = [s.name for s in load_catalog()]
    catalog = {s.name: s for s in load_catalog()}
    out: list[ScenarioInfo] = []
    seen: set[str] = set()
    ca = _default_pki_dir() / "ca.crt"
    for c in causes:
        s = catalog.get(c.scenario or "")
        if s is None or s.name in seen:
            continue
        seen.add(s.name)
        opts = "".join(
            f" {_PROBE_OPTIONS[k]} {v}" for k, v in s.expect.probe.items() if k in _PROBE_OPTIONS
        )
        out.append(
            ScenarioInfo(
                name=s.name,
                summary=s.summary,
                expect_outcome=s.expect.outcome,
                cause=c.id,
                commands=(
                    f"tlsprobe lab {s.name} --port-base {DEFAULT_PORT_BASE}",
                    # The scenario's own port: base + its catalog index, served alone or not.
                    f"tlsprobe probe 127.0.0.1:"
                    f"{scenario_port(DEFAULT_PORT_BASE, order.index(s.name))} --ca {ca}{opts}",
                ),
            )
        )
    return out


def _overall_look_at(infos: list[CauseInfo]) -> str | None:
    if not infos:
        return None
    by_place: dict[str, list[str]] = {}
    for i in infos:
        by_place.setdefault(i.look_at, []).append(i.id)
    if len(by_place) == 1:
        return infos[0].look_at
    return "depends on the cause: " + "; ".join(
        f"{place} ({', '.join(ids)})" for place, ids in by_place.items()
    )


def _vendor_answer(
    query: str, tok: Token, causes: Mapping[str, Cause], context: list[Context]
) -> Explanation | None:
    defs = code_defs(tok, load_codes())
    pairs = entries_with(tok.code, causes)
    if not defs and not pairs:
        return None
    # The cause a definition names comes first, then the causes that mention the code.
    mentioned = _rank_causes(tok.code, pairs)
    groups: dict[str, tuple[Cause, list[VendorCode], list[VendorCode]]] = {}
    for d in defs:
        if d.cause is not None and d.cause in causes:
            groups.setdefault(d.cause, (causes[d.cause], [], []))[2].append(def_entry(d, tok.code))
    for cause, vs in mentioned:
        groups.setdefault(cause.id, (cause, [], []))[1].extend(vs)
    ranked = [(c, vs + ds) for c, vs, ds in groups.values()]
    infos = [_cause_info(c, vs, ds) for c, vs, ds in groups.values() if c.outcome or c.summary]
    # The code asked about is explained first: definitions and entries that open with it, best
    # confidence first, a definition before an entry of the same standing; mentions after, and
    # a range's description ("a CMS status code") counts as a mention of each code in it.
    candidates = [
        (d.last is None, _meaning(d.cause or "", def_entry(d, tok.code), tok.code)) for d in defs
    ] + [
        (defines(v.text, tok.code), _meaning(c.id, v, tok.code)) for c, vs in mentioned for v in vs
    ]
    order = sorted(
        range(len(candidates)),
        key=lambda i: (not candidates[i][0], CONFIDENCE_RANK[candidates[i][1].confidence], i),
    )
    meanings = [candidates[i][1] for i in order]
    products = tuple(dict.fromkeys(m.product for m in meanings))
    best = meanings[0]
    return Explanation(
        query=query,
        found=True,
        code=tok.code,
        kind="vendor",
        title=f"{tok.code} ({', '.join(products)})",
        meaning=best.text,
        look_at=_overall_look_at(infos),
        unconfirmed=best.confidence != "C",
        products=products,
        meanings=tuple(meanings),
        causes=tuple(infos),
        related=tuple(_related(tok.code, ranked)),
        scenarios=tuple(_scenarios(infos)),
        context=tuple(context),
    )


def _alert_answer(
    query: str, code: int, causes: Mapping[str, Cause], context: list[Context]
) -> Explanation | None:
    book = load_codes()
    name = alert_name(code, book)
    if name is None:
        return None
    # The reference's tag for the alert (121 ech_required is [K]); an alert only the registry
    # knows is standard knowledge, not a confirmed row of the reference.
    entry = book.alerts.get(code)
    confidence = entry.confidence if entry is not None else "K"
    hits = causes_for_alert(code, causes)
    infos = [
        CauseInfo(
            id=c.id,
            summary=c.summary,
            fix=c.fix,
            side=c.side,
            look_at=look_at(c.side, "client"),
            outcome=c.outcome or None,
            scenario=c.scenario,
            confidence="C",
        )
        for c in hits
    ]
    related: list[Related] = []
    for c in hits[:3]:
        for v in c.vendor:
            if v.codes:
                related.append(_logged_for_it(v))
    cft = [v for c in causes.values() for v in c.vendor if f"CR={code}" in v.codes]
    confirmed = any(v.confidence == "C" for v in cft)
    related.insert(
        0,
        Related(
            product="Transfer CFT",
            codes=(f"CR={code}",),
            where="either",
            relation="same number",
            text=f"Transfer CFT logs the TLS alert number as CR, so this alert shows as CR={code}"
            + ("" if confirmed else " (by analogy with the documented CR values)"),
            confidence="C" if confirmed else "U",
            confidence_label=CONFIDENCE_LABELS["C" if confirmed else "U"],
        ),
    )
    meaning = ALERT_MEANINGS.get(code)
    text = f"TLS alert {code} {name}" + (f": {meaning}" if meaning else " (known by name only)")
    return Explanation(
        query=query,
        found=True,
        code=f"alert {code}",
        kind="alert",
        title=f"alert {code} {name} (TLS alert)",
        meaning=text,
        look_at=_alert_look_at(infos),
        unconfirmed=confidence != "C",
        products=("TLS",),
        meanings=(
            Meaning(
                product="TLS",
                code=f"alert {code}",
                where="either",
                text=text,
                confidence=confidence,
                confidence_label=CONFIDENCE_LABELS[confidence],
                source=entry.source if entry is not None else "RFC 8446 §6.2",
                cause="",
            ),
        ),
        causes=tuple(infos),
        related=tuple(related[:12]),
        scenarios=tuple(_scenarios(infos)),
        context=tuple(context),
    )


def _alert_look_at(infos: list[CauseInfo]) -> str:
    head = "the end that sent the alert found the problem, the end that received it only reports it"
    sides = {_FIX_AT[i.side] for i in infos}
    if len(sides) == 1:
        side = sides.pop()
        fix = "both ends" if side == "both" else f"the {side} side"
        return f"{head}; the fix is usually on {fix}"
    return f"{head}; where the fix belongs depends on the cause (see each below)"


def _family_answer(
    query: str, prefix: str, causes: Mapping[str, Cause], context: list[Context]
) -> Explanation | None:
    book = load_codes()
    members = [c for c in all_codes(causes, book) if c.replace(" ", "").startswith(prefix)]
    if not members:
        return None
    related: list[Related] = []
    products: list[str] = []
    for code in members:
        v = best_entry(code, causes, book)
        products.append(v.product)
        related.append(
            Related(
                product=v.product,
                codes=(code,),
                where=v.where,
                relation="in this family",
                text=v.text,
                confidence=v.confidence,
                confidence_label=CONFIDENCE_LABELS[v.confidence],
            )
        )
    word = re.compile(rf"\b{re.escape(prefix)}(?:nn|xx)?\b")
    mentions = [
        _meaning(c.id, v, prefix)
        for c in causes.values()
        for v in c.vendor
        if word.search(v.text) and not v.codes
    ]
    prods = tuple(dict.fromkeys(products))
    return Explanation(
        query=query,
        found=True,
        code=prefix,
        kind="family",
        title=f"{prefix}... ({', '.join(prods)}): {len(members)} known code(s)",
        meaning=mentions[0].text if mentions else f"{len(members)} known codes start with {prefix}",
        products=prods,
        meanings=tuple(mentions),
        related=tuple(related),
        context=tuple(context),
    )


def _term_answer(
    query: str, causes: Mapping[str, Cause], context: list[Context]
) -> Explanation | None:
    wanted = norm_words(query)
    # A phrase several causes share goes first to the cause that lists it earlier among its
    # terms ("expired cert": the server's certificate before the client's).
    rank = {
        c.id: i
        for c in causes.values()
        for i, t in reversed(list(enumerate(c.terms)))
        if norm_words(t) == wanted
    }
    hits = sorted((c for c in causes.values() if c.id in rank), key=lambda c: rank[c.id])
    if not hits:
        return None
    infos = [_cause_info(c, list(c.vendor)) for c in hits]
    related = [
        _logged_for_it(v)
        for c in hits
        for v in c.vendor
        if v.codes
    ]
    return Explanation(
        query=query,
        found=True,
        code=query.strip(),
        kind="term",
        title=f"'{query.strip()}': {len(hits)} matching cause(s)",
        meaning=hits[0].summary,
        look_at=_overall_look_at(infos),
        products=tuple(dict.fromkeys(v.product for c in hits for v in c.vendor)),
        causes=tuple(infos),
        related=tuple(related[:12]),
        scenarios=tuple(_scenarios(infos)),
        context=tuple(context),
    )


def _answer(
    query: str, tok: Token, causes: Mapping[str, Cause], context: list[Context]
) -> Explanation | None:
    if tok.kind in ("vendor", "message"):
        return _vendor_answer(query, tok, causes, context)
    if tok.kind == "alert":
        return _alert_answer(query, int(tok.code.split()[1]), causes, context)
    if tok.kind == "family":
        return _family_answer(query, tok.code, causes, context)
    if tok.kind == "term":
        return _term_answer(query, causes, context)
    return None


def _number_answer(query: str, n: int, causes: Mapping[str, Cause]) -> Explanation | None:
    """A bare number: an MQ reason code (2xxx), a return code (z/OS, IBM i), a CFT CR, or an
    alert."""
    mq = [f"MQRC {n}"] if 2000 <= n <= 2999 else []
    alert = [f"alert {n}"] if alert_name(n, load_codes()) else []
    readings = [*mq, f"RC {n}", f"CR={n}", *alert]
    answers: list[Explanation] = []
    for code in readings:
        kind = "alert" if code.startswith("alert") else "vendor"
        got = _answer(query, Token(code=code, kind=kind, text=query), causes, [])
        if got is not None:
            answers.append(got)
    if not answers:
        return None
    also = tuple(f"{a.code}: {a.meaning}" for a in answers[1:])
    return dataclasses.replace(answers[0], also=also)


def explain(query: str, causes: Mapping[str, Cause] | None = None) -> Explanation:
    """The answer for ``query`` (``found`` false, with suggestions, when nothing matches)."""
    data = causes if causes is not None else load_causes()
    tokens = recognize(query, data)
    for i, tok in enumerate(tokens):
        context = [
            Context(code=t.code, kind=t.kind, meaning=headline(t, data))
            for j, t in enumerate(tokens)
            if j != i
        ]
        if tok.kind == "number":
            got = _number_answer(query, int(tok.code), data)
        else:
            got = _answer(query, tok, data, context)
        if got is not None:
            return got
    return Explanation(query=query, found=False, suggestions=suggest(query, data))
