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
from .wire.record import ContentType
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


def _decrypted_entry(direction: str, ctype: int, data: bytes, t: Transcript) -> TraceEntry:
    """A message OpenSSL decrypted (or encrypted) inside a record: named and described as if
    it had crossed the wire in the clear. Its hex is the plaintext, not the record."""
    if ctype == ContentType.ALERT and len(data) >= 2:
        what, detail = describe_alert(data[0], data[1])
    elif len(data) >= 4:
        sh = t.server_hello
        what, detail = describe_handshake(
            data[0],
            data[4:],
            version=sh.selected_version if sh else None,
            suite=sh.cipher_suite if sh else None,
            tls13=t.tls13,
        )
    else:
        what, detail = f"content type {ctype} ({len(data)} bytes)", ()
    return TraceEntry(
        direction=direction,
        what=f"{what} (decrypted)",
        record="inside the encrypted record above",
        hex=data[:HEX_LIMIT].hex(),
        detail=detail,
    )


def trace_entries(t: Transcript) -> tuple[TraceEntry, ...]:
    # With --trace the engine kept what each encrypted record held (Transcript.decrypted):
    # each message goes right after the record that carried it, matched by record number.
    inside: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
    for direction, record_no, ctype, data in t.decrypted:
        inside.setdefault((direction, record_no), []).append((ctype, data))
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
        if ev.kind == "encrypted":
            for ctype, data in inside.pop((ev.direction, ev.record_no), []):
                out.append(_decrypted_entry(ev.direction, ctype, data, t))
    return tuple(out)
