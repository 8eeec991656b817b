"""``--trace``: the handshake as a ladder of messages with their hex, like the vendor traces.

Built from the transcript's wire events only, so a trace shows what crossed the wire, not what
OpenSSL believed. Messages are described by :mod:`probe.decode`, so ``probe --trace`` and
``decode`` show a message with the same fields, and the hex of each entry (whole up to
``HEX_LIMIT``) can be fed back to ``tlsprobe decode``.
"""

from __future__ import annotations

from .decode import describe_alert, describe_handshake
from .result import TraceEntry
from .wire import registry
from .wire.transcript import Transcript, WireEvent

# Bytes of hex per entry in JSON. Large enough for a certificate chain or a long CA list, so
# that `tlsprobe decode` can read the certificates back from a trace; the human ladder shows
# the first 128 bytes only.
HEX_LIMIT = 64 * 1024


def _version(code: int) -> str:
    return registry.version_name(code) or f"0x{code:04X}"


def _details(ev: WireEvent, t: Transcript) -> tuple[str, tuple[str, ...]]:
    if ev.kind == "alert" and ev.alert is not None:
        return describe_alert(ev.alert.level, ev.alert.description)
    if ev.kind == "ccs":
        return "ChangeCipherSpec", ()
    if ev.kind in ("encrypted", "application", "heartbeat"):
        return f"{ev.kind} record ({ev.record_len} bytes)", ()
    msg = ev.handshake
    if msg is None:
        return ev.kind, ()
    sh = t.server_hello
    return describe_handshake(
        msg.msg_type,
        msg.body,
        version=sh.selected_version if sh else None,
        suite=sh.cipher_suite if sh else None,
        tls13=t.tls13,
    )


def trace_entries(t: Transcript) -> tuple[TraceEntry, ...]:
    out: list[TraceEntry] = []
    for ev in t.events:
        what, detail = _details(ev, t)
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
