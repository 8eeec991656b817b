"""The `ciphers` and `overlap` commands: the cipher-suite reference and partner overlap."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .cli import app, check_seconds
from .wire import registry

# The cipher reference and overlap (scan, the raw hello engine) load only when their command
# runs: the other commands' start-up time should not pay for them.
if TYPE_CHECKING:
    from . import ciphernames, ciphers
    from .overlap import OverlapResult, SuiteEntry

# "inferred" is probe.ciphers.INFERRED (tests/test_ciphers.py checks the two agree).
_MARK = {"C": "", "K": " [K]", "U": " [U]", "inferred": "*"}
_PROFILE_TAG = {"K": " [K]", "U": " [U: unconfirmed]"}
CONFIDENCE_WORD = {"K": "standard knowledge", "U": "unconfirmed"}


def _short_version(name: str) -> str:
    return name.replace("TLSv", "TLS ").replace("SSLv3", "SSL 3.0")


# -- ciphers ----------------------------------------------------------------------------------


def ciphers_doc(found: ciphernames.SearchResult) -> dict[str, Any]:
    from . import ciphers
    from .result import SCHEMA_VERSION

    ref = ciphers.reference()
    return {
        "schema_version": SCHEMA_VERSION,
        "query": found.query,
        "match": found.how,
        "suites": [ciphers.row_json(r) for r in found.rows],
        "aliases": [ciphers.alias_json(a) for a in found.aliases],
        "rules": {
            "gskit": {"short": ref.gsk_rule[0], "long": ref.gsk_rule[1], "source": ref.gsk_rule[2]},
            "cft": {"text": ref.cft_rule[0], "source": ref.cft_rule[1]},
            "mq_queue_manager": {
                "versions": [registry.version_name(v) for v in ref.queue_manager.versions],
                "order": [m.name for m in ref.queue_manager.order],
                "note": ref.queue_manager.note,
                "source": ref.queue_manager.source,
            },
        },
    }


def _vendor(code: ciphers.VendorCode | None) -> str:
    return "-" if code is None else code.value + _MARK.get(code.confidence, "")


def render_ciphers(found: ciphernames.SearchResult) -> str:
    from . import ciphers

    lines: list[str] = []
    if found.aliases:
        lines.append("IBM MQ alias CipherSpecs:")
        qm = ciphers.reference().queue_manager
        for a in found.aliases:
            vs = ", ".join(
                _short_version(registry.version_name(v) or "") for v in a.versions(qm.versions)
            )
            lines.append(f"  {a.name:<20} {a.kind} ({vs}){_MARK[a.confidence]}  {a.meaning}")
            lines.append(f"  {'':<20} since {a.since}")
        lines.append("")
    header = (
        f"{'code':<7} {'IANA name':<44} {'OpenSSL':<30} {'GSKit':<9} {'CFT':<7} IBM MQ CipherSpec"
    )
    lines.append(header)
    for r in found.rows:
        gsk = " ".join(_vendor(c) for c in (r.gsk_short, r.gsk_long) if c is not None) or "-"
        mq = "; ".join(
            f"{m.name} ({_short_version(m.protocol_name)}){_MARK[m.confidence]}"
            + (" deprecated" if m.deprecated else "")
            for m in r.mq
        )
        name = r.suite.iana + ("" if r.iana_assigned else " (not IANA)")
        lines.append(
            f"{r.suite.hex:<7} {name:<44} {(r.suite.openssl or r.openssl_legacy or '-'):<30}"
            f" {gsk:<9} {_vendor(r.cft):<7} {mq or '-'}"
        )
    lines.append("")
    lines.append(
        "* inferred from the vendor's numbering rule (GSKit: 2 chars = low byte of 0x00XX, 4 chars"
        " = IANA code; CFT: decimal IANA code), not listed by a source; [K] standard knowledge;"
        " [U] unconfirmed."
    )
    if found.how == "profile":
        lines.insert(0, f"{len(found.rows)} suites of the client list of {found.query}, its order:")
    if found.how == "substring":
        lines.insert(0, f"{len(found.rows)} suites whose names contain {found.query!r}:")
    return "\n".join(lines)


@app.command(name="ciphers")
def ciphers_cmd(
    query: Annotated[
        str | None,
        typer.Argument(
            help="A name or number: IANA or OpenSSL name, 0xC02F, an MQ CipherSpec or alias "
            "(mq:ANY_TLS12_OR_HIGHER), gsk:0A, gsk:C02F, cft:47, or part of a name (AES_128_GCM)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """The cipher-suite reference: IANA code and name, OpenSSL name, protocol versions, IBM MQ
    CipherSpec names (bound to their protocol), GSKit 2- and 4-character codes and Transfer CFT
    CIPHLIST numbers. Every name shown here is accepted by --ciphers.

    Exit 0 when something matched, 2 when nothing did (with the nearest names).

    Example: tlsprobe ciphers gsk:0A
    """
    from . import ciphernames

    found = ciphernames.search(query)
    if as_json:
        typer.echo(json.dumps(ciphers_doc(found), indent=2))
    else:
        typer.echo(render_ciphers(found))
    raise typer.Exit(0)


# -- overlap ----------------------------------------------------------------------------------


def _entry_mq(e: SuiteEntry) -> str:
    return "; ".join(f"{m.name} ({_short_version(m.protocol)}){_MARK[m.confidence]}" for m in e.mq)


def _entry_code(info: Any) -> str:
    return "-" if info is None else f"{info.value}{_MARK.get(info.confidence, '')}"


def render_overlap(r: OverlapResult) -> str:
    lines = [f"tlsprobe overlap  ({r.mode.replace('_', ' vs ')})"]
    name_a = r.a.name + _PROFILE_TAG.get(r.a.confidence or "C", "")
    name_b = r.b.name + _PROFILE_TAG.get(r.b.confidence or "C", "")
    wa = max(len(name_a), 24)
    lines.append(f"  {'':<12}{'A: ' + name_a:<{wa + 3}}   B: {name_b}")
    lines.append(f"  {'role':<12}{r.a.role:<{wa + 3}}   {r.b.role}")
    lines.append(
        f"  {'versions':<12}{', '.join(r.a.versions) or '-':<{wa + 3}}   "
        f"{', '.join(r.b.versions) or '-'}"
    )
    if r.a.sslciph or r.b.sslciph:
        lines.append(f"  {'SSLCIPH':<12}{r.a.sslciph or '-':<{wa + 3}}   {r.b.sslciph or '-'}")
    lines.append(f"  {'common':<12}{', '.join(r.common_versions) or 'none'}")
    if r.observed is not None:
        o = r.observed
        what = (
            f"ServerHello {o.version} {o.cipher.code} {o.cipher.name}"
            if o.cipher
            else f"{o.answer} {o.alert or ''} {o.alert_name or ''}".strip()
        )
        if o.cipher and o.cipher.mq:
            what += f"  [MQ {_entry_mq(o.cipher)}]"
        lines.append(f"  {'observed':<12}{what}")
    if r.predicted is not None and r.predicted.basis != "observed":
        c = r.predicted.cipher
        mq = f"  [MQ {_entry_mq(c)}]" if c.mq else ""
        lines.append(f"  {r.predicted.basis:<12}{r.predicted.version} {c.code} {c.name}{mq}")
    verdict = {"connects": "CONNECTS", "fails": "FAILS", "likely_fails": "LIKELY FAILS"}[r.verdict]
    lines.append(f"  {'verdict':<12}{verdict}: {r.reason}")
    lines.append("")
    lines.append(f"  {'A':<2}{'B':<3}{'code':<8}{'IANA name':<44}{'GSKit':<8}{'CFT':<8}IBM MQ")
    rows = (
        [("x", "x", e) for e in r.both]
        + [("x", "-", e) for e in r.only_a]
        + [("-", "x", e) for e in r.only_b]
    )
    for a, b, e in rows:
        lines.append(
            f"  {a:<2}{b:<3}{e.code:<8}{e.name:<44}{_entry_code(e.gskit):<8}"
            f"{_entry_code(e.cft):<8}{_entry_mq(e) or '-'}"
        )
    if not rows:
        lines.append("  (no suites)")
    lines.append(f"  {len(r.both)} in both, {len(r.only_a)} only in A, {len(r.only_b)} only in B")
    if r.steps:
        lines.append("")
        lines.append("How:")
        lines += [f"  - {s}" for s in r.steps]
    for p in (r.a, r.b):
        if p.derived:
            lines.append(f"  - {p.name}: {p.derived}")
        if p.confidence in ("K", "U"):
            lines += [f"  - {p.name} ({CONFIDENCE_WORD[p.confidence]}): {n}" for n in p.notes]
    lines.append(
        "  * vendor code inferred from the numbering rule, not listed by a source;"
        " [K] standard knowledge; [U] unconfirmed"
    )
    if r.messages:
        lines.append("")
        lines.append("What the partners would log:")
        for m in r.messages:
            codes = " ".join(m.codes) or "(no code)"
            tag = {"C": "", "K": " [standard knowledge]", "U": " [unconfirmed]"}[m.confidence]
            lines.append(f"  {m.product} ({m.where}) {codes}{tag}: {m.text}")
    return "\n".join(lines)


@app.command()
def overlap(
    a: Annotated[
        str,
        typer.Argument(
            help="The initiator (client): HOST:PORT, profile:NAME, a profile TOML file, or an "
            "MQ SSLCIPH value (mq:ANY_TLS12_OR_HIGHER, mq:ECDHE_RSA_AES_128_GCM_SHA256)."
        ),
    ],
    b: Annotated[str, typer.Argument(help="The responder (server), in the same forms.")],
    timeout: Annotated[float, typer.Option(help="Seconds allowed per connection.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """What two partners have in common: versions, suites in both / only A / only B (with MQ,
    GSKit and CFT names), the suite they would negotiate and a verdict with the vendor messages
    a failing pair would log.

    Profile vs profile predicts from both preference orders (with IBM MQ's SSLCIPH rules);
    endpoint vs profile sends the profile's own ClientHello and reports the real answer, plus a
    scan; endpoint vs endpoint scans both. Exit 0 connects, 1 fails or likely fails, 2 bad input.

    Example: tlsprobe overlap mq:ANY_TLS12 profile:mq-ecdhe-rsa-aes-128-gcm-sha256
    """
    check_seconds("--timeout", timeout)
    import trio

    from .overlap import run_overlap
    from .result import to_jsonable

    result = trio.run(partial(run_overlap, a, b, timeout=timeout))
    if as_json:
        typer.echo(json.dumps(to_jsonable(result), indent=2))
    else:
        typer.echo(render_overlap(result))
    raise typer.Exit(0 if result.ok else 1)
