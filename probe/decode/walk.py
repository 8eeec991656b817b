"""Walking the chunks of a dump: records, handshake messages across records, bare messages,
SSLv2 hellos, DER certificates, and bytes that are none of these.

State is kept per logged connection (:class:`Conn`: a Transfer CFT context, one openssl run):
the negotiated version and suite (for the layouts that depend on them), whether a
ChangeCipherSpec came (the sender's next handshake record is its encrypted Finished), and a
message still waiting for the rest of its bytes in the next handshake record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..hexdump import Chunk
from ..wire import registry
from ..wire.handshake import HandshakeType
from .certs import certificate_lines, certificate_ref, der_header
from .messages import Ctx, Short, Walk, describe
from .model import (
    AlertRef,
    Item,
    RecordRef,
    SuiteRef,
    alert_ref,
    alert_title,
    suite_ref,
    suite_text,
    version_name,
    version_text,
)

MAX_ITEMS = 2000  # a dump of endless tiny records is summarised, not listed forever
_CONTENT_TYPES = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
}
_CLIENT_TYPES = frozenset({1, 5, 15, 16})  # hello, end_of_early_data, cert_verify, cke
_SERVER_TYPES = frozenset({0, 2, 3, 4, 8, 12, 13, 14, 22})
_HANDSHAKE_TYPES = frozenset(int(t) for t in HandshakeType)


# --- walking chunks ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    """A handshake message that continues in the next handshake record."""

    chunk: int
    offset: int
    head: bytes  # the message bytes so far (header included, maybe partly)
    records: list[RecordRef]


@dataclass(slots=True)
class Conn:
    """What is known about one logged connection (a CFT context, one openssl run, ...)."""

    ctx: Ctx = field(default_factory=Ctx)
    after_ccs: bool = False  # a ChangeCipherSpec came; the next handshake record is encrypted
    pending: _Pending | None = None


@dataclass(slots=True)
class State:
    items: list[Item] = field(default_factory=list)
    conns: dict[str | None, Conn] = field(default_factory=dict)
    cur: Conn = field(default_factory=Conn)
    dropped: int = 0


def _emit(st: State, item: Item) -> None:
    if len(st.items) < MAX_ITEMS:
        st.items.append(item)
    else:
        st.dropped += 1


def _direction_of(msg_type: int, ctx: Ctx) -> str | None:
    if msg_type in _CLIENT_TYPES and not (ctx.tls13 and msg_type == 15):
        return "client"
    if msg_type in _SERVER_TYPES:
        return "server"
    return None


def _handshake_item(
    st: State,
    ci: int,
    chunk: Chunk,
    offset: int,
    raw: bytes,
    records: tuple[RecordRef, ...],
) -> None:
    """``raw``: the message bytes present, header included (at least 4 bytes)."""
    msg_type = raw[0]
    declared = int.from_bytes(raw[1:4], "big")
    body = raw[4 : 4 + declared]
    m = describe(msg_type, body, declared, st.cur.ctx)
    missing = declared - len(body)
    _emit(
        st,
        Item(
            kind="handshake",
            name=m.name,
            direction=chunk.direction
            if chunk.direction in ("client", "server")
            else _direction_of(msg_type, st.cur.ctx),
            chunk=ci,
            line=chunk.line,
            offset=offset,
            records=records,
            msg_type=msg_type,
            length=declared,
            present=len(body),
            missing=missing,
            version=m.version,
            selected_version=m.selected_version,
            supported_versions=m.supported_versions,
            random=m.random,
            session_id=m.session_id,
            cipher_suites=m.cipher_suites,
            cipher_suite=m.cipher_suite,
            compression=m.compression,
            extensions=m.extensions,
            certificates=m.certificates,
            certificate_types=m.certificate_types,
            signature_algorithms=m.signature_algorithms,
            ca_names=m.ca_names,
            ca_names_bytes=m.ca_names_bytes,
            details=tuple(m.details),
            problems=tuple(m.problems),
            hex=raw.hex(),
        ),
    )


def _simple(
    st: State,
    ci: int,
    chunk: Chunk,
    offset: int,
    kind: str,
    name: str,
    data: bytes,
    *,
    records: tuple[RecordRef, ...] = (),
    details: tuple[str, ...] = (),
    problems: tuple[str, ...] = (),
    length: int | None = None,
    alert: AlertRef | None = None,
    direction: str | None = None,
) -> None:
    length = len(data) if length is None else length
    _emit(
        st,
        Item(
            kind=kind,
            name=name,
            direction=direction
            or (chunk.direction if chunk.direction in ("client", "server") else None),
            chunk=ci,
            line=chunk.line,
            offset=offset,
            records=records,
            length=length,
            present=len(data),
            missing=max(0, length - len(data)),
            alert=alert,
            details=details,
            problems=problems,
            hex=data.hex(),
        ),
    )


def flush_pending(st: State, chunk_of: list[Chunk], why: str) -> None:
    p = st.cur.pending
    if p is None:
        return
    st.cur.pending = None
    chunk = chunk_of[p.chunk]
    if len(p.head) < 4:
        _simple(
            st,
            p.chunk,
            chunk,
            p.offset,
            "unknown",
            "partial handshake header",
            p.head,
            records=tuple(p.records),
            problems=(why,),
        )
        return
    _handshake_item(st, p.chunk, chunk, p.offset, p.head, tuple(p.records))
    last = st.items[-1]
    st.items[-1] = dataclasses.replace(last, problems=(*last.problems, why))


def _plausible_header(data: bytes, pos: int, room: int | None = None) -> bool:
    """Could a handshake message start at ``pos``? (type known, length and first fields fit)"""
    if len(data) - pos < 4:
        return False
    t = data[pos]
    if t not in _HANDSHAKE_TYPES or t == HandshakeType.MESSAGE_HASH:
        return False
    n = int.from_bytes(data[pos + 1 : pos + 4], "big")
    body = data[pos + 4 : pos + 4 + n]
    if room is not None and n + 4 > room:
        return False
    if t in (HandshakeType.CLIENT_HELLO, HandshakeType.SERVER_HELLO):
        return n >= 38 and (len(body) < 2 or 0x0300 <= int.from_bytes(body[:2], "big") <= 0x0304)
    if t in (HandshakeType.SERVER_HELLO_DONE, HandshakeType.HELLO_REQUEST):
        return n == 0
    if t == HandshakeType.CERTIFICATE:
        if len(body) >= 3 and int.from_bytes(body[:3], "big") == n - 3:
            return True
        return (
            len(body) >= 4
            and int.from_bytes(body[1 + body[0] : 4 + body[0]], "big") == n - 4 - body[0]
        )
    if t == HandshakeType.FINISHED:
        return n in (12, 32, 36, 48, 64)
    return n <= 1 << 16


def _strong_header(data: bytes, pos: int) -> bool:
    """A bare message so plausible that it wins over looking for a record further in: a hello
    or Certificate (their first fields were checked), or a message that ends exactly at the
    end of the chunk or where another message or a record starts."""
    if not _plausible_header(data, pos):
        return False
    if data[pos] in (
        HandshakeType.CLIENT_HELLO,
        HandshakeType.SERVER_HELLO,
        HandshakeType.CERTIFICATE,
    ):
        return True
    end = pos + 4 + int.from_bytes(data[pos + 1 : pos + 4], "big")
    if end == len(data):
        return True
    return end < len(data) and (_plausible_header(data, end) or _is_record_start(data, end))


def _bare_messages(st: State, ci: int, chunk: Chunk, pos: int) -> int:
    data = chunk.data
    while pos < len(data):
        if not _plausible_header(data, pos):
            break
        n = int.from_bytes(data[pos + 1 : pos + 4], "big")
        raw = data[pos : pos + 4 + n]
        _handshake_item(st, ci, chunk, pos, raw, ())
        pos += len(raw)
    return pos


def _is_record_start(data: bytes, pos: int) -> bool:
    return (
        len(data) - pos >= 3 and 20 <= data[pos] <= 24 and data[pos + 1] == 3 and data[pos + 2] <= 4
    )


def _record(st: State, ci: int, chunk: Chunk, pos: int, chunks: list[Chunk]) -> int:
    data = chunk.data
    if len(data) - pos < 5:
        head = data[pos:]
        _simple(
            st,
            ci,
            chunk,
            pos,
            "record_header",
            "partial record header",
            head,
            length=5,
            problems=(f"record header truncated: {len(head)} of 5 bytes present",),
        )
        return len(data)
    ctype = data[pos]
    version = int.from_bytes(data[pos + 1 : pos + 3], "big")
    length = int.from_bytes(data[pos + 3 : pos + 5], "big")
    frag = data[pos + 5 : pos + 5 + length]
    ref = RecordRef(
        content_type=ctype,
        content_type_name=_CONTENT_TYPES[ctype],
        version=version_name(version),
        version_code=f"0x{version:04X}",
        length=length,
        present=len(frag),
        offset=pos,
    )
    complete = len(frag) == length
    rec_problems: tuple[str, ...] = ()
    if not complete:
        rec_problems = (
            f"record truncated: {length} bytes declared, {len(frag)} present "
            f"({length - len(frag)} missing)",
        )
    if length > (1 << 14) + 2048:
        rec_problems = (*rec_problems, f"record length {length} exceeds 2^14 + 2048")
    if ctype != 22 and st.cur.pending is not None:
        flush_pending(st, chunks, "the next record is not a handshake record: message cut")
    if ctype == 20:
        if not st.cur.ctx.tls13:
            st.cur.after_ccs = True
        detail = ("the sender switches to the negotiated keys; what it sends next is encrypted",)
        ok = frag == b"\x01"
        _simple(
            st,
            ci,
            chunk,
            pos,
            "change_cipher_spec",
            "ChangeCipherSpec",
            frag,
            records=(ref,),
            length=length,
            details=detail,
            problems=rec_problems
            + (() if ok or not complete else (f"body {frag.hex()}, expected 01",)),
        )
    elif ctype == 21:
        if st.cur.after_ccs or (complete and length != 2):
            _simple(
                st,
                ci,
                chunk,
                pos,
                "alert",
                f"encrypted alert ({length} bytes)",
                frag,
                records=(ref,),
                length=length,
                problems=rec_problems,
            )
        elif len(frag) >= 2:
            a = alert_ref(frag[0], frag[1])
            _simple(
                st,
                ci,
                chunk,
                pos,
                "alert",
                alert_title(a),
                frag,
                records=(ref,),
                length=length,
                alert=a,
                details=(a.meaning, f"explain: tlsprobe explain alert {a.code}"),
                problems=rec_problems,
            )
        else:
            _simple(
                st,
                ci,
                chunk,
                pos,
                "alert",
                "Alert (cut)",
                frag,
                records=(ref,),
                length=length,
                problems=rec_problems,
            )
    elif ctype == 23:
        st.cur.after_ccs = False
        _simple(
            st,
            ci,
            chunk,
            pos,
            "application_data",
            f"application_data record ({length} bytes, encrypted)",
            frag,
            records=(ref,),
            length=length,
            problems=rec_problems,
        )
    elif ctype == 24:
        _simple(
            st,
            ci,
            chunk,
            pos,
            "heartbeat",
            f"heartbeat record ({length} bytes)",
            frag,
            records=(ref,),
            length=length,
            problems=rec_problems,
        )
    else:
        _handshake_record(st, ci, chunk, pos, frag, ref, complete, rec_problems, chunks)
    return pos + 5 + len(frag)


def _handshake_record(
    st: State,
    ci: int,
    chunk: Chunk,
    pos: int,
    frag: bytes,
    ref: RecordRef,
    complete: bool,
    rec_problems: tuple[str, ...],
    chunks: list[Chunk],
) -> None:
    exact = len(frag) >= 4 and int.from_bytes(frag[1:4], "big") + 4 == len(frag)
    if st.cur.after_ccs and not (exact and _plausible_header(frag, 0)):
        st.cur.after_ccs = False
        _simple(
            st,
            ci,
            chunk,
            pos,
            "encrypted_handshake",
            f"encrypted handshake message ({ref.length} bytes; after ChangeCipherSpec: Finished)",
            frag,
            records=(ref,),
            length=ref.length,
            problems=rec_problems,
        )
        return
    st.cur.after_ccs = False
    p = 0
    if st.cur.pending is not None:
        pend = st.cur.pending
        pend.records.append(ref)
        if len(pend.head) < 4:
            take = 4 - len(pend.head)
            pend.head += frag[:take]
            p = min(take, len(frag))
        if len(pend.head) >= 4:
            need = 4 + int.from_bytes(pend.head[1:4], "big") - len(pend.head)
            got = frag[p : p + need]
            pend.head += got
            p += len(got)
            if len(got) == need:
                st.cur.pending = None
                _handshake_item(
                    st, pend.chunk, chunks[pend.chunk], pend.offset, pend.head, tuple(pend.records)
                )
            elif not complete:
                st.cur.pending = None
                _handshake_item(
                    st, pend.chunk, chunks[pend.chunk], pend.offset, pend.head, tuple(pend.records)
                )
                return
            else:
                return  # still continues in the next record
    first = True
    while p < len(frag):
        if len(frag) - p < 4:
            if complete:
                st.cur.pending = _Pending(
                    chunk=ci, offset=pos + 5 + p, head=frag[p:], records=[ref]
                )
                return
            _simple(
                st,
                ci,
                chunk,
                pos + 5 + p,
                "unknown",
                "partial handshake header",
                frag[p:],
                records=(ref,),
                problems=rec_problems,
            )
            return
        t = frag[p]
        n = int.from_bytes(frag[p + 1 : p + 4], "big")
        fits = p + 4 + n <= len(frag)
        spans = complete and not fits  # a whole record that ends inside the message
        if (
            t not in _HANDSHAKE_TYPES
            or (not fits and not _plausible_header(frag, p))
            or (not fits and not spans and 4 + n > ref.length - p)
        ):
            name = (
                f"encrypted or unknown handshake content ({len(frag) - p} bytes)"
                if first
                else f"unrecognised bytes in a handshake record ({len(frag) - p})"
            )
            _simple(
                st,
                ci,
                chunk,
                pos + 5 + p,
                "encrypted_handshake" if first else "unknown",
                name,
                frag[p:],
                records=(ref,),
                problems=rec_problems,
                details=(
                    "does not start like a handshake message: encrypted (a Finished "
                    "after ChangeCipherSpec) or damaged",
                )
                if first
                else (),
            )
            return
        if spans:
            st.cur.pending = _Pending(chunk=ci, offset=pos + 5 + p, head=frag[p:], records=[ref])
            return
        raw = frag[p : p + 4 + n]
        _handshake_item(st, ci, chunk, pos + 5 + p, raw, (ref,))
        if not fits and rec_problems:
            last = st.items[-1]
            st.items[-1] = dataclasses.replace(last, problems=(*rec_problems, *last.problems))
        p += len(raw)
        first = False


def _sslv2_hello(st: State, ci: int, chunk: Chunk, pos: int) -> int:
    data = chunk.data
    length = ((data[pos] & 0x7F) << 8) | data[pos + 1]
    body = data[pos + 2 : pos + 2 + length]
    details: list[str] = []
    problems: list[str] = []
    suites: list[SuiteRef] = []
    w = Walk(body)
    try:
        w.take(1, "msg_type")
        version = w.uint(2, "version")
        details.append(f"version {version_text(version)}")
        spec_len = w.uint(2, "cipher_specs length")
        sid_len = w.uint(2, "session_id length")
        chal_len = w.uint(2, "challenge length")
        specs = w.buf[w.pos : w.pos + spec_len]
        w.pos += len(specs)
        details.append(f"cipher_specs ({spec_len // 3} offered):")
        for i in range(0, len(specs) - 2, 3):
            code = int.from_bytes(specs[i : i + 3], "big")
            if code >> 16 == 0:
                ref = suite_ref(code & 0xFFFF)
                suites.append(ref)
                details.append(f"  {suite_text(ref)}")
            else:
                c2 = registry.sslv2_cipher(code)
                details.append(f"  0x{code:06X} {c2.name if c2 else 'unknown SSLv2 cipher'}")
        if len(specs) < spec_len:
            raise Short("cipher_specs", spec_len, len(specs))
        w.take(sid_len, "session_id")
        challenge = w.take(chal_len, "challenge")
        details.append(f"challenge ({len(challenge)} bytes) {challenge.hex()}")
    except Short as short:
        problems.append(f"truncated in {short.what}")
    _emit(
        st,
        Item(
            kind="sslv2_client_hello",
            name="SSLv2 ClientHello",
            direction="client",
            chunk=ci,
            line=chunk.line,
            offset=pos,
            length=length,
            present=len(body),
            missing=max(0, length - len(body)),
            cipher_suites=tuple(suites),
            details=tuple(details),
            problems=tuple(problems),
            hex=data[pos : pos + 2 + length].hex(),
        ),
    )
    return pos + 2 + len(body)


def _der_certificate(st: State, ci: int, chunk: Chunk, pos: int) -> int:
    data = chunk.data
    hdr = der_header(data, pos) or (0x30, 0, len(data))
    declared = hdr[1] + hdr[2]
    der = data[pos : pos + declared]
    c = certificate_ref(der, declared, 0)
    _emit(
        st,
        Item(
            kind="certificate",
            name="X.509 certificate (DER, no TLS framing)",
            direction=None,
            chunk=ci,
            line=chunk.line,
            offset=pos,
            length=declared,
            present=len(der),
            missing=c.missing,
            certificates=(c,),
            details=tuple(certificate_lines(c)),
            hex=der.hex(),
        ),
    )
    return pos + len(der)


def _find_record(data: bytes) -> int | None:
    """The first offset after 0 where a plausible TLS record starts (Wireshark frames carry
    Ethernet, IP and TCP headers before it)."""
    for pos in range(1, max(0, len(data) - 5)):
        if not _is_record_start(data, pos):
            continue
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if not 0 < length <= (1 << 14) + 2048:
            continue
        if data[pos] == 22 and not _plausible_header(data, pos + 5) and data[pos + 5] != 0:
            continue
        if data[pos] == 21 and length != 2:
            continue
        return pos
    return None


_HINT_KINDS = {"ccs", "alert", "record_header", "inner_content", "opaque", "handshake"}


def _hinted(st: State, ci: int, chunk: Chunk, chunks: list[Chunk]) -> bool:
    """Chunks whose dump says what they are (openssl -msg, tlsprobe trace). True if handled."""
    data = chunk.data
    hint = chunk.hint
    if hint not in _HINT_KINDS:
        return False
    if _is_record_start(data, 0) and not (hint == "record_header" and len(data) == 5):
        return False  # the bytes carry their own record framing: read that
    if hint == "ccs":
        if not st.cur.ctx.tls13:
            st.cur.after_ccs = True
        _simple(st, ci, chunk, 0, "change_cipher_spec", "ChangeCipherSpec", data)
    elif hint == "alert":
        if len(data) == 2:
            a = alert_ref(data[0], data[1])
            _simple(
                st,
                ci,
                chunk,
                0,
                "alert",
                alert_title(a),
                data,
                alert=a,
                details=(a.meaning, f"explain: tlsprobe explain alert {a.code}"),
            )
        else:
            _simple(
                st,
                ci,
                chunk,
                0,
                "alert",
                f"alert ({len(data)} bytes)",
                data,
                problems=("an alert is 2 bytes",),
            )
    elif hint == "record_header" and len(data) == 5 and 20 <= data[0] <= 24:
        version = int.from_bytes(data[1:3], "big")
        _simple(
            st,
            ci,
            chunk,
            0,
            "record_header",
            f"record header: {_CONTENT_TYPES[data[0]]}, {version_name(version)}, "
            f"{int.from_bytes(data[3:5], 'big')} bytes follow",
            data,
        )
    elif hint == "inner_content" and len(data) == 1:
        _simple(
            st,
            ci,
            chunk,
            0,
            "inner_content",
            f"TLS 1.3 inner content type: {_CONTENT_TYPES.get(data[0], str(data[0]))}",
            data,
        )
    elif hint == "opaque":
        _simple(
            st,
            ci,
            chunk,
            0,
            "opaque",
            f"encrypted record ({len(data)} bytes)",
            data,
            length=len(data) + chunk.missing_after,
        )
    elif hint == "handshake" and _plausible_header(data, 0):
        end = _bare_messages(st, ci, chunk, 0)
        if end < len(data):
            _simple(
                st, ci, chunk, end, "unknown", f"unrecognised bytes ({len(data) - end})", data[end:]
            )
    else:
        return False
    return True


def chunk_items(st: State, ci: int, chunk: Chunk, chunks: list[Chunk]) -> None:
    data = chunk.data
    if chunk.after_gap:
        flush_pending(st, chunks, "the dump skips bytes here: message cut")
        _simple(
            st,
            ci,
            chunk,
            0,
            "continuation",
            f"{len(data)} bytes after a gap in the dump (their context is missing)",
            data,
        )
        return
    if st.cur.pending is not None and not _is_record_start(data, 0):
        flush_pending(st, chunks, "the dump ends inside this message")
    if chunk.hint is not None and _hinted(st, ci, chunk, chunks):
        return
    pos = 0
    while pos < len(data):
        if _is_record_start(data, pos):
            pos = _record(st, ci, chunk, pos, chunks)
        elif (
            data[pos] & 0x80
            and len(data) - pos >= 5
            and data[pos + 2] == 1
            and data[pos + 3] in (0, 3)
        ):
            pos = _sslv2_hello(st, ci, chunk, pos)
        elif _strong_header(data, pos) or (pos > 0 and _plausible_header(data, pos)):
            pos = _bare_messages(st, ci, chunk, pos)
        elif (
            pos == 0
            and data[0] == 0x30
            and data[1:2] in (b"\x81", b"\x82", b"\x83")
            and (der_header(data, 0) is not None)
        ):
            pos = _der_certificate(st, ci, chunk, pos)
        elif pos == 0 and (skip := _find_record(data)) is not None:
            _simple(
                st,
                ci,
                chunk,
                0,
                "skipped",
                f"{skip} bytes before the first TLS record (link, IP and TCP headers?)",
                data[:skip],
            )
            pos = skip
        elif _plausible_header(data, pos):
            pos = _bare_messages(st, ci, chunk, pos)
        else:
            _simple(
                st,
                ci,
                chunk,
                pos,
                "unknown",
                f"unrecognised bytes ({len(data) - pos})",
                data[pos:],
                details=("not a TLS record, an SSLv2 hello, a handshake message or a certificate",),
            )
            break
