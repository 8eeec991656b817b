"""Human output: one screen an operator understands at a glance (JSON is the other view)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .result import ProbeResult, TraceEntry

_CONFIDENCE = {
    "C": "",
    "K": " [standard knowledge, not confirmed by a source]",
    "U": " [unconfirmed]",
}


def _kv(label: str, value: str) -> str:
    return f"  {label:<10}{value}"


TRACE_TITLE = "Trace (client ──> server, server <── ):"


def render_trace(
    entries: tuple[TraceEntry, ...] | list[TraceEntry], *, title: str | None = TRACE_TITLE
) -> list[str]:
    """The ladder of ``probe --trace`` and ``decode``: one entry per message, its fields, then
    the first 128 bytes of its hex (all of it is in the JSON). A direction the bytes cannot
    tell (a dump) is drawn ``───``."""
    lines = ["", title] if title else []
    for e in entries:
        arrow = {"client": "──>", "server": "<──"}.get(e.direction, "───")
        lines.append(f"  {arrow} {e.what}   [{e.record}]")
        lines.extend(f"        {d}" for d in e.detail)
        hexs = e.hex.split(" ", 1)[0]
        for i in range(0, min(len(hexs), 256), 64):
            lines.append(
                "        " + " ".join(hexs[j : j + 8] for j in range(i, min(i + 64, len(hexs)), 8))
            )
        if len(hexs) > 256:
            lines.append(f"        ... ({len(hexs) // 2} bytes shown in JSON)")
    return lines


def render_lab(doc: dict[str, Any], *, listening: bool) -> str:
    """The lab catalog (--list) or the ready banner."""
    rows = doc["scenarios"]
    head = "tlsprobe lab: listening" if listening else "tlsprobe lab scenarios"
    lines = [f"{head} on {doc['host']}; trust anchor {doc['ca']}"]
    lines.append(
        f"client identity: {doc['pki_dir']}/client.p12 (password {doc['client_p12_password']}),"
        " client.crt + client.key"
    )
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        port = r["port"] or "-"
        expect = r["expect"]["outcome"] + (
            f" / {r['expect']['cause']}" if r["expect"].get("cause") else ""
        )
        lines.append(f"  {r['name']:<{width}}  {port!s:>5}  {expect:<58} {r['summary']}")
    if listening:
        lines.append("Ctrl-C (or SIGTERM) stops the lab.")
    return "\n".join(lines)


def _now_iso() -> str:
    """Now in UTC, in the first 19 characters of the certificates' isoformat dates."""
    return dt.datetime.now(dt.UTC).isoformat()[:19]


def render_probe(r: ProbeResult) -> str:
    lines = [f"tlsprobe probe {r.target}"]
    mark = "OK " if r.ok else "FAIL"
    lines.append(_kv("outcome", f"{mark} {r.outcome}   (phase: {r.phase})"))
    if r.alert:
        who = "from the peer" if r.alert.origin == "peer" else "sent by us"
        lines.append(_kv("alert", f"{r.alert.level} {r.alert.name} ({r.alert.code}) {who}"))
    if r.negotiated:
        n = r.negotiated
        cipher = "-"
        if n.cipher:
            cipher = f"{n.cipher.code} {n.cipher.iana or '?'}"
            if n.cipher.openssl and n.cipher.openssl != n.cipher.iana:
                cipher += f" ({n.cipher.openssl})"
        # Until the handshake completes, these are only what the server picked.
        picked = "" if r.phase in ("done", "post_handshake") else "   (server's choice; no session)"
        lines.append(
            _kv("version", f"{n.version or '-'}   cipher {cipher}   group {n.group or '-'}{picked}")
        )
    if r.partner_versions is not None:
        found = ", ".join(r.partner_versions)
        # No ServerHello to any raw hello does not mean no version: the refusals may be about
        # suites or names (the diagnosis says which), so versions stay unknown.
        unknown = "versions unknown (every hello refused)"
        lines.append(_kv("partner", f"accepts {found}" if found else unknown))
    if r.server_certificates:
        v = r.verification
        trust = f"trust anchors: {v.trust_anchors}" if v else ""
        lines.append(_kv("chain", f"{len(r.server_certificates)} certificate(s); {trust}"))
        for i, c in enumerate(r.server_certificates):
            days = (
                f"{c.days_left} days left"
                if c.days_left >= 0
                else f"EXPIRED {-c.days_left} days ago"
            )
            lines.append(f"    [{i}] {c.subject}")
            # A certificate not valid yet is named by its start; every other by its end.
            span = (
                f"from {c.not_before[:10]} (not valid yet) until {c.not_after[:10]}"
                if c.not_before[:19] > _now_iso()
                else f"until {c.not_after[:10]} ({days})"
            )
            lines.append(f"        issuer {c.issuer}; {c.key}; {span}")
            if c.san:
                lines.append(
                    f"        names {', '.join(c.san[:8])}{' ...' if len(c.san) > 8 else ''}"
                )
    if r.verification:
        v = r.verification
        if not v.enabled:
            lines.append(_kv("verify", "OFF (--no-verify); findings below are informational"))
        for e in v.errors:
            lines.append(_kv("verify", f"depth {e.depth}: {e.reason} [{e.name}]"))
        if v.hostname_detail:
            lines.append(_kv("hostname", v.hostname_detail))
        elif v.hostname and v.hostname_matched:
            lines.append(_kv("hostname", f"{v.hostname} matches"))
        if v.verified and v.hostname is None:
            # --mq-channel: MQ checks the chain (and SSLPEER), never the host name.
            lines.append(_kv("verify", "chain verified; host name not checked"))
        elif v.verified:
            lines.append(_kv("verify", "chain and name verified"))
        elif v.enabled and not v.errors and not v.hostname_detail:
            lines.append(_kv("verify", "not done: the handshake ended before the chain check"))
    ca = r.client_auth
    if ca.requested:
        names = "; ".join(ca.ca_names[:5]) + (
            f"; ... {len(ca.ca_names) - 5} more" if len(ca.ca_names) > 5 else ""
        )
        lines.append(
            _kv(
                "client",
                f"certificate requested; {len(ca.ca_names)} CA name(s), {ca.ca_names_bytes} bytes",
            )
        )
        if names:
            lines.append(f"            {names}")
        if ca.signature_algorithms:
            lines.append(f"            signature algorithms {', '.join(ca.signature_algorithms)}")
        sent = f"sent {ca.sent_subject}" if ca.sent else "none sent"
        lines.append(f"            {sent}")
    if r.starttls:
        # A stalled dialog ends on the last line that was answered; the error line below
        # names the step it stuck at.
        stalled = (r.outcome, r.phase) == ("timeout", "starttls")
        state = "upgraded" if r.starttls.upgraded else "stalled" if stalled else "not upgraded"
        lines.append(_kv("starttls", f"{r.starttls.protocol}, {state}"))
        tail = r.starttls.transcript[-6:]
        if len(r.starttls.transcript) > len(tail):
            left = len(r.starttls.transcript) - len(tail)
            lines.append(f"            ({left} earlier line(s) in --json)")
        lines.extend(f"            {line}" for line in tail)
    if r.application_data:
        shown = "".join(ch if ch.isprintable() else "." for ch in r.application_data[:80])
        lines.append(_kv("after TLS", repr(shown)))
    if r.error and not r.ok:
        lines.append(_kv("error", r.error))
    t = r.timings_ms
    lines.append(_kv("timings", ", ".join(f"{k} {v:.1f} ms" for k, v in t.items())))
    if r.diagnosis:
        lines.append("")
        lines.append("Diagnosis:")
        for i, d in enumerate(r.diagnosis, 1):
            lines.append(f"  {i}. {d.summary}  [{d.cause}]")
            if d.detail:
                lines.append(f"     seen: {d.detail}")
            lines.append(f"     fix: {d.fix}")
            for vl in d.vendor:
                codes = f"{', '.join(vl.codes)} " if vl.codes else ""
                tag = _CONFIDENCE.get(vl.confidence, "")
                lines.append(f"     {vl.product}: {codes}({vl.where}) {vl.text}{tag}")
            if d.scenario:
                lines.append(f"     reproduce: tlsprobe lab {d.scenario}")
    if r.trace:
        lines.extend(render_trace(r.trace))
    return "\n".join(lines)


def render_scan(r: Any) -> str:
    """One table per supported version, weak suites marked, then groups and chains."""
    lines = [f"tlsprobe scan {r.target}"]
    if r.outcome != "scanned":
        lines.append(f"  outcome   FAIL {r.outcome}: {r.error}")
        return "\n".join(lines)
    if r.error:  # scanned, but nothing was accepted: say how every hello was refused
        lines.append(f"  note     {r.error}")
    for p in r.protocols:
        if not p.supported:
            lines.append(f"  {p.version:<8} not offered")
            continue
        order = {True: "server order", False: "client order (the server follows ours)",
                 None: "order: one suite"}[p.server_order]  # fmt: skip
        lines.append(f"  {p.version:<8} {len(p.ciphers)} suite(s), {order}")
        if p.intolerance:
            lines.append(f"           intolerant: {p.intolerance}")
        for c in p.ciphers:
            weak = list(c.weak)
            if p.version == "TLSv1.0" and c.iana and "_CBC_" in c.iana:
                weak.append("CBC in TLS 1.0")
            mark = f"  WEAK: {', '.join(weak)}" if weak else ""
            lines.append(f"           {c.code}  {(c.openssl or '-'):<32} {c.iana or '?'}{mark}")
    for version, groups in r.groups.items():
        lines.append(f"  groups   {version}: {', '.join(groups) or 'none found'}")
    for key, chain in r.certificates.items():
        lines.append(f"  chain    {key}: " + " <- ".join(c.subject for c in chain))
        leaf = chain[0]
        lines.append(
            f"           leaf until {leaf.not_after[:10]} ({leaf.days_left} days), {leaf.key}"
        )
    yes_no = {True: "yes", False: "no", None: "n/a"}
    lines.append(
        f"  secure renegotiation {yes_no[r.secure_renegotiation]}; extended master secret"
        f" {yes_no[r.extended_master_secret]}; {r.connections} connections in"
        f" {r.timings_ms.get('total', 0):.0f} ms"
    )
    return "\n".join(lines)


# --- decode -----------------------------------------------------------------------------------

_DUMP_STYLES = {
    "cft": "Transfer CFT trace",
    "offset": "offset dump (z/OS, xxd, hexdump, Wireshark)",
    "msg": "openssl -msg / tlsprobe ladder",
    "plain": "plain hex",
    "json": "tlsprobe --trace JSON",
    "binary": "raw bytes (binary input)",
    "pem": "PEM certificate",
}


def _item_entry(it: Any) -> TraceEntry:
    """A decoded item as a ladder entry (the same shape ``probe --trace`` shows)."""
    recs = it.records
    if not recs:
        record = "no record header"
    elif len(recs) == 1:
        r = recs[0]
        record = f"{r.content_type_name} {r.version} len {r.length}"
        if r.present < r.length:
            record += f", {r.present} present"
    else:
        record = f"{len(recs)} records, {recs[0].version}"
    what = it.name + (f"  ({it.missing} bytes missing)" if it.missing else "")
    return TraceEntry(
        direction=it.direction or "unknown",
        what=what,
        record=record,
        hex=it.hex,
        detail=(*it.details, *(f"! {p}" for p in it.problems)),
    )


def render_decode(r: Any) -> str:
    """``tlsprobe decode``: chunk by chunk, the items as a ladder with their fields."""
    styles = ", ".join(_DUMP_STYLES.get(s, s) for s in r.styles)
    lines = [f"tlsprobe decode: {len(r.chunks)} chunk(s), {r.bytes} bytes ({styles})"]
    if r.summary:
        lines.append("")
        lines.append("Summary:")
        lines.extend(f"  {s}" for s in r.summary)
    if r.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  {n}" for n in r.notes)
    lines.append("")
    lines.append("Messages (client ──> server, server <── , ─── direction not in the bytes):")
    by_chunk: dict[int, list[Any]] = {}
    for it in r.items:
        by_chunk.setdefault(it.chunk, []).append(it)
    for c in r.chunks:
        where = f"line {c.line}"
        if c.start_offset is not None:
            where += f", offset {c.start_offset:#x}"
        facts = [f"{c.bytes} bytes"]
        if c.direction in ("sent", "received"):
            facts.insert(0, c.direction)
        if c.announced is not None and c.announced != c.bytes:
            facts.append(f"the log announced {c.announced}")
        label = f": {c.label}" if c.label else ""
        lines.append("")
        lines.append(f"  · {where}{label} ({', '.join(facts)})")
        lines.extend(f"    note: {n}" for n in c.notes)
        entries = [_item_entry(it) for it in by_chunk.get(c.index, [])]
        lines.extend(render_trace(entries, title=None))
    return "\n".join(lines)


# --- explain ----------------------------------------------------------------------------------


def _tag(confidence: str) -> str:
    return _CONFIDENCE.get(confidence, "")


def render_explain(e: Any) -> str:
    """``tlsprobe explain``: meaning, where to look, causes and fixes, the other end's codes,
    the lab scenario. Unconfirmed entries carry their label."""
    if not e.found:
        lines = [f"tlsprobe explain: no known code matches {e.query!r}."]
        if e.suggestions:
            lines.append("Closest known: " + ", ".join(e.suggestions))
        lines.append(
            "Known forms: AMQ9631, CSQX631E, 'RC 428', CR=48, 'alert 40', CPDBC81, TCP2550, "
            "0335304B, -93, or a log line that contains one."
        )
        return "\n".join(lines)
    lines = [e.title]
    if e.meaning:
        # The tag of the entry the meaning comes from: [K] standard knowledge is not [U].
        conf = next(
            (m.confidence for m in e.meanings if m.text == e.meaning),
            "U" if e.unconfirmed else "C",
        )
        lines.append(_kv("meaning", e.meaning + _tag(conf)))
    if e.look_at:
        lines.append(_kv("look at", e.look_at))
    for c in e.context:
        lines.append(_kv("also in", f"{c.code}: {c.meaning}" if c.meaning else c.code))
    for a in e.also:
        lines.append(_kv("or", a))
    if len(e.meanings) > 1 or (e.meanings and e.meanings[0].text != e.meaning):
        lines.append("")
        lines.append("What each product means by it:")
        for m in e.meanings:
            lines.append(f"  {m.product} {m.code} ({m.where}): {m.text}{_tag(m.confidence)}")
    if e.causes:
        lines.append("")
        lines.append("Likely causes:")
        for i, c in enumerate(e.causes, 1):
            lines.append(f"  {i}. {c.summary}  [{c.id}]{_tag(c.confidence)}")
            lines.append(f"     look at: {c.look_at}")
            lines.append(f"     fix: {c.fix}")
    groups = (
        ("other end", "At the other end of the link:"),
        ("same number", "Same alert number:"),
        ("logged with it", "Logged with it:"),
        ("logged for it", "What the products log for it:"),
        ("in this family", "Codes in this family:"),
        ("other product", "Other products, same failure:"),
    )
    for relation, heading in groups:
        rows = [r for r in e.related if r.relation == relation]
        if not rows:
            continue
        lines.append("")
        lines.append(heading)
        for r in rows:
            lines.append(
                f"  {r.product} {', '.join(r.codes)} ({r.where}): {r.text}{_tag(r.confidence)}"
            )
    if e.scenarios:
        lines.append("")
        lines.append("Reproduce it in the lab:")
        for s in e.scenarios:
            lines.append(f"  {s.name}: {s.summary} (the probe then says {s.expect_outcome})")
            lines.extend(f"    {cmd}" for cmd in s.commands)
    return "\n".join(lines)
