"""``tlsprobe decode``: TLS bytes from a dump, field by field, with what is missing said aloud.

Theory of operation
-------------------
A dump is not a capture. It may start with a bare handshake message (z/OS prints the message
without its record header), end in the middle of a certificate (vendor traces print the first
lines only), hold both directions of a connection without saying which is which, carry OCR
damage, or begin with link and IP headers (Wireshark frames). So the decoder never assumes; it
reads what the bytes say and reports three kinds of facts per item:

* the fields, each read as far as the bytes go (a ClientHello cut inside its cipher suites still
  shows its version, random, session id and the suites that are there);
* what is missing: "record declares 1453 bytes, 43 present", "certificate 1: 477 bytes
  declared, 33 present (444 missing)", with the subject and issuer when they are among the
  bytes present (a bounded DER walk of the TBSCertificate prefix);
* problems: values that contradict each other, or what the strict codec refuses in a complete
  message (``probe.wire`` parsers are run on every complete message as a second opinion);
* damage: where a hex group lost a digit (:class:`~probe.hexdump.Damage`) the bytes are not
  known, so what it falls in is read up to there and says "the dump is damaged here", the
  unknown bytes are an item of their own (``??``), and the bytes after them are shown unparsed:
  no field is ever read from guessed bytes.

What a chunk is comes from its first bytes: a record header (type 20-24, major version 3), an
SSLv2 record with a CLIENT-HELLO, a bare handshake message whose header is plausible for its
type, or a DER certificate; failing all of these at the start, the first plausible record
header further in is taken and the bytes before it are reported as skipped. Message types give
the direction (ClientHello, ClientKeyExchange: client; ServerHello ... ServerHelloDone:
server); a dump that says "sent"/"received" relative to the logging end (Transfer CFT,
``openssl -msg``) gets its other chunks' directions from the first hello it carries.

A handshake message may span records: a record that ends inside a message, while complete
itself, is continued by the next handshake record. After a ChangeCipherSpec the sender's next
handshake record is its encrypted Finished, and content that cannot be a handshake message is
reported as encrypted instead of being forced into a message.

Layout: :mod:`.model` holds the results (frozen dataclasses, the JSON) and the names of
numbers; :mod:`.certs` reads certificates, whole or cut; :mod:`.messages` describes handshake
messages field by field; :mod:`.walk` tells what each chunk holds, :mod:`.records` reads
records and the messages across them, and :mod:`.state` keeps the per-connection state and the
items found; this module ties them together. The dump formats themselves are read by
:mod:`probe.hexdump`, a probe's ``--trace --json`` output by :mod:`.trace_json` and PEM
certificates by :mod:`.pem`.

The same message describers give the detail lines of ``tlsprobe probe --trace``
(:func:`describe_handshake`), so both commands show a message the same way. Nothing here does
I/O; :class:`~probe.wire.errors.DecodeError` is the only error, for input without any hex (or
any certificate).
"""

from __future__ import annotations

import dataclasses

from .. import hexdump
from ..hexdump import Chunk, Dump
from ..wire.errors import DecodeError
from ..wire.handshake import HandshakeType
from .messages import describe_alert, describe_handshake
from .model import (
    ALERT_MEANINGS,
    KINDS,
    SCHEMA_VERSION,
    AlertRef,
    CertRef,
    ChunkInfo,
    DecodeResult,
    ExtensionRef,
    Item,
    RecordRef,
    SuiteRef,
    suite_text,
)
from .pem import pem_dump, skipped_note, split_pem
from .state import MAX_ITEMS, Conn, State, flush_pending
from .trace_json import read_trace_json
from .walk import chunk_items

__all__ = [
    "ALERT_MEANINGS",
    "KINDS",
    "SCHEMA_VERSION",
    "AlertRef",
    "CertRef",
    "ChunkInfo",
    "DecodeResult",
    "ExtensionRef",
    "Item",
    "RecordRef",
    "SuiteRef",
    "decode_bytes",
    "decode_dump",
    "decode_text",
    "describe_alert",
    "describe_handshake",
]


def _fill_directions(items: list[Item], chunks: list[Chunk]) -> list[Item]:
    """Map "sent"/"received" of each logging party to client/server from its hellos."""
    roles: dict[str, dict[str, str]] = {}
    for it in items:
        ch = chunks[it.chunk]
        if ch.party is None or ch.direction not in ("sent", "received") or it.msg_type is None:
            continue
        inferred = it.direction
        if inferred not in ("client", "server"):
            continue
        other = "server" if inferred == "client" else "client"
        flip = "received" if ch.direction == "sent" else "sent"
        roles.setdefault(ch.party, {ch.direction: inferred, flip: other})
    out: list[Item] = []
    for it in items:
        ch = chunks[it.chunk]
        if it.direction is None and ch.party in roles and ch.direction in ("sent", "received"):
            it = dataclasses.replace(it, direction=roles[ch.party][ch.direction])
        out.append(it)
    return out


def _summary(items: list[Item]) -> list[str]:
    out: list[str] = []
    for it in items:
        where = f"line {it.line}"
        if it.kind == "handshake" and it.msg_type == HandshakeType.CLIENT_HELLO:
            offered = ", ".join(s.code for s in it.cipher_suites[:8]) or "(not in the dump)"
            more = f" (+{len(it.cipher_suites) - 8})" if len(it.cipher_suites) > 8 else ""
            versions = ", ".join(it.supported_versions) or it.version or "?"
            out.append(f"ClientHello ({where}): {versions}; suites {offered}{more}")
        elif it.kind == "handshake" and it.msg_type == HandshakeType.SERVER_HELLO:
            suite = suite_text(it.cipher_suite) if it.cipher_suite else "suite not in the dump"
            out.append(f"{it.name} ({where}): {it.selected_version or it.version or '?'}, {suite}")
        elif it.kind == "alert" and it.alert is not None:
            out.append(f"{it.name} ({where}): {it.alert.meaning}")
        elif it.kind == "handshake" and it.msg_type == HandshakeType.CERTIFICATE_REQUEST:
            out.append(f"CertificateRequest ({where}): {len(it.ca_names)} CA name(s)")
    cut = sum(1 for it in items if it.missing)
    if cut:
        out.append(f"{cut} item(s) incomplete in the dump (see 'missing')")
    return out


def decode_dump(dump: Dump) -> DecodeResult:
    chunks = list(dump.chunks)
    st = State()
    for ci, chunk in enumerate(chunks):
        st.cur = st.conns.setdefault(chunk.party, Conn())
        chunk_items(st, ci, chunk, chunks)
    for conn in st.conns.values():
        st.cur = conn
        flush_pending(st, chunks, "the dump ends inside this message")
    items = _fill_directions(st.items, chunks)
    notes = list(dump.notes)
    if st.dropped:
        notes.append(f"{st.dropped} more items not listed (limit {MAX_ITEMS})")
    infos = tuple(
        ChunkInfo(
            index=i,
            line=c.line,
            style=c.style,
            label=c.label,
            direction=c.direction,
            bytes=len(c.data),
            announced=c.announced,
            start_offset=c.start_offset,
            notes=c.notes,
        )
        for i, c in enumerate(chunks)
    )
    return DecodeResult(
        styles=dump.styles,
        bytes=sum(len(c.data) for c in chunks),
        chunks=infos,
        items=tuple(items),
        summary=tuple(_summary(items)),
        notes=tuple(notes),
    )


def decode_text(text: str) -> DecodeResult:
    """Read a dump (or a probe's trace JSON, or PEM certificates) and decode it. Raises
    DecodeError only when the text holds nothing of these."""
    if text.lstrip()[:1] in ("{", "["):
        from_json = read_trace_json(text.lstrip())
        if from_json is not None:
            return decode_dump(from_json)
    blocks, rest = split_pem(text)
    if not blocks:
        return decode_dump(hexdump.read_dump(text))
    try:
        dump = hexdump.read_dump(rest)
    except DecodeError:
        return decode_dump(pem_dump(blocks, len(text.splitlines())))
    return decode_dump(dataclasses.replace(dump, notes=(*dump.notes, skipped_note(blocks))))


def decode_bytes(data: bytes) -> DecodeResult:
    """Decode raw bytes (a binary capture, not a dump) as one chunk (never raises)."""
    chunk = Chunk(data=data, line=1, style="binary", label="raw bytes (binary input, not hex)")
    return decode_dump(Dump(chunks=(chunk,), styles=("binary",), notes=(), lines=1))
