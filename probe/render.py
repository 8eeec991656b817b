"""Human output: one screen an operator understands at a glance (JSON is the other view)."""

from __future__ import annotations

from typing import Any

from .result import ProbeResult, TraceEntry

_CONFIDENCE = {
    "C": "",
    "K": " [standard knowledge, not confirmed by a source]",
    "U": " [unconfirmed]",
}


def _kv(label: str, value: str) -> str:
    return f"  {label:<10}{value}"


def render_trace(entries: tuple[TraceEntry, ...]) -> list[str]:
    lines = ["", "Trace (client ──> server, server <── ):"]
    for e in entries:
        arrow = "──>" if e.direction == "client" else "<──"
        lines.append(f"  {arrow} {e.what}   [{e.record}]")
        lines.extend(f"        {d}" for d in e.detail)
        hexs = e.hex
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
        lines.append(
            _kv("version", f"{n.version or '-'}   cipher {cipher}   group {n.group or '-'}")
        )
    if r.partner_versions is not None:
        lines.append(
            _kv("partner", "accepts " + (", ".join(r.partner_versions) or "no version tried"))
        )
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
            lines.append(f"        issuer {c.issuer}; {c.key}; until {c.not_after[:10]} ({days})")
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
        if v.verified:
            lines.append(_kv("verify", "chain and name verified"))
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
        sent = f"sent {ca.sent_subject}" if ca.sent else "none sent"
        lines.append(f"            {sent}")
    if r.starttls:
        lines.append(_kv("starttls", r.starttls.protocol))
        lines.extend(f"            {line}" for line in r.starttls.transcript[-6:])
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
