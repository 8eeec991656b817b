"""``--trace``: the handshake as a ladder of messages with their hex, like the vendor traces.

Built from the transcript's wire events only, so a trace shows what crossed the wire, not what
OpenSSL believed. ``decode`` will share this renderer.
"""

from __future__ import annotations

from .result import TraceEntry
from .wire import registry
from .wire.errors import DecodeError
from .wire.handshake import HandshakeType
from .wire.transcript import Transcript, WireEvent

HEX_LIMIT = 512  # bytes of hex per entry; certificates are summarised, not dumped whole


def _version(code: int) -> str:
    return registry.version_name(code) or f"0x{code:04X}"


def _suite(code: int) -> str:
    s = registry.suite(code)
    return f"0x{code:04X} {s.iana}" if s else f"0x{code:04X}"


def _details(ev: WireEvent, tls13: bool) -> tuple[str, tuple[str, ...]]:
    from .wire import hello, messages

    if ev.kind == "alert" and ev.alert is not None:
        level = {1: "warning", 2: "fatal"}.get(ev.alert.level, str(ev.alert.level))
        name = registry.alert_name(ev.alert.description) or "unknown"
        return f"Alert {level} {name}({ev.alert.description})", ()
    if ev.kind == "ccs":
        return "ChangeCipherSpec", ()
    if ev.kind in ("encrypted", "application", "heartbeat"):
        return f"{ev.kind} record ({ev.record_len} bytes)", ()
    msg = ev.handshake
    if msg is None:
        return ev.kind, ()
    lines: list[str] = []
    try:
        if msg.msg_type == HandshakeType.CLIENT_HELLO:
            ch = hello.parse_client_hello(msg.body)
            versions = ch.supported_versions or (ch.legacy_version,)
            lines.append(
                "versions " + ", ".join(registry.version_name(v) or hex(v) for v in versions)
            )
            lines.append(
                f"{len(ch.suites)} suites: " + ", ".join(f"{c:04X}" for c in ch.suites[:40])
            )
            if ch.server_name:
                lines.append(f"server_name {ch.server_name}")
        elif msg.msg_type == HandshakeType.SERVER_HELLO:
            sh = messages.parse_server_hello(msg.body)
            kind = "HelloRetryRequest" if sh.is_hello_retry_request else "ServerHello"
            lines.append(
                f"version {registry.version_name(sh.selected_version) or hex(sh.selected_version)}"
            )
            lines.append(f"cipher {_suite(sh.cipher_suite)}")
            if sh.key_share_group is not None:
                lines.append(
                    f"key_share {registry.group_name(sh.key_share_group) or sh.key_share_group}"
                )
            return kind, tuple(lines)
        elif msg.msg_type == HandshakeType.CERTIFICATE:
            cm = messages.parse_certificate(msg.body, tls13=tls13)
            lines.append(f"{len(cm.certificates)} certificate(s)")
        elif msg.msg_type == HandshakeType.CERTIFICATE_REQUEST:
            cr = messages.parse_certificate_request(msg.body, tls13=tls13)
            lines.append(f"{len(cr.ca_names)} CA name(s), {cr.ca_names_bytes} bytes")
            lines.extend(messages.decode_dn(dn) for dn in cr.ca_names[:10])
    except DecodeError as exc:
        lines.append(f"undecodable: {exc}")
    words = msg.name.replace("_", " ").title().replace(" ", "")
    return words, tuple(lines)


def trace_entries(t: Transcript) -> tuple[TraceEntry, ...]:
    out: list[TraceEntry] = []
    for ev in t.events:
        what, detail = _details(ev, t.tls13)
        raw = ev.raw[:HEX_LIMIT]
        suffix = f" ... ({len(ev.raw)} bytes)" if len(ev.raw) > HEX_LIMIT else ""
        out.append(
            TraceEntry(
                direction=ev.direction,
                what=what,
                record=f"{_version(ev.record_version)} len {ev.record_len}",
                hex=raw.hex() + suffix,
                detail=detail,
            )
        )
    return tuple(out)
