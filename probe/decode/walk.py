"""Walking the chunks of a dump: what each chunk holds, told from its first bytes.

A chunk is read as records where a record header starts (:mod:`.records`), as an SSLv2 record
carrying a CLIENT-HELLO, as bare handshake messages (z/OS prints them without a record header)
where a header is plausible for its type, or as a DER certificate. Failing all of these at the
start, the first plausible record header further in is taken and the bytes before it are
reported as skipped (Wireshark frames carry link, IP and TCP headers). A dump that says what a
chunk is (``openssl -msg``, ``tlsprobe probe --trace``) is believed, unless the bytes carry
their own record framing. What is known about each connection lives in :mod:`.state`.
"""

from __future__ import annotations

import dataclasses

from ..hexdump import Chunk
from ..wire import registry
from ..wire.handshake import HandshakeType
from .certs import certificate_lines, certificate_ref, der_header
from .messages import Short, Walk
from .model import (
    Item,
    SuiteRef,
    alert_ref,
    alert_title,
    suite_ref,
    suite_text,
    version_name,
    version_text,
)
from .records import CONTENT_TYPES, is_record_start, plausible_header, read_record
from .state import State, emit, flush_pending, handshake_item, simple_item


def _strong_header(data: bytes, pos: int) -> bool:
    """A bare message so plausible that it wins over looking for a record further in: a hello
    or Certificate (their first fields were checked), or a message that ends exactly at the
    end of the chunk or where another message or a record starts."""
    if not plausible_header(data, pos):
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
    return end < len(data) and (plausible_header(data, end) or is_record_start(data, end))


def _bare_messages(st: State, ci: int, chunk: Chunk, pos: int) -> int:
    data = chunk.data
    while pos < len(data):
        if not plausible_header(data, pos):
            break
        n = int.from_bytes(data[pos + 1 : pos + 4], "big")
        raw = data[pos : pos + 4 + n]
        handshake_item(st, ci, chunk, pos, raw, ())
        pos += len(raw)
    return pos


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
    emit(
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
    emit(
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
        if not is_record_start(data, pos):
            continue
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if not 0 < length <= (1 << 14) + 2048:
            continue
        if data[pos] == 22 and not plausible_header(data, pos + 5) and data[pos + 5] != 0:
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
    if is_record_start(data, 0) and not (hint == "record_header" and len(data) == 5):
        return False  # the bytes carry their own record framing: read that
    if hint == "ccs":
        if not st.cur.ctx.tls13:
            st.cur.after_ccs = True
        simple_item(st, ci, chunk, 0, "change_cipher_spec", "ChangeCipherSpec", data)
    elif hint == "alert":
        if len(data) == 2:
            a = alert_ref(data[0], data[1])
            simple_item(
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
            simple_item(
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
        simple_item(
            st,
            ci,
            chunk,
            0,
            "record_header",
            f"record header: {CONTENT_TYPES[data[0]]}, {version_name(version)}, "
            f"{int.from_bytes(data[3:5], 'big')} bytes follow",
            data,
        )
    elif hint == "inner_content" and len(data) == 1:
        simple_item(
            st,
            ci,
            chunk,
            0,
            "inner_content",
            f"TLS 1.3 inner content type: {CONTENT_TYPES.get(data[0], str(data[0]))}",
            data,
        )
    elif hint == "opaque":
        simple_item(
            st,
            ci,
            chunk,
            0,
            "opaque",
            f"encrypted record ({len(data)} bytes)",
            data,
            length=len(data) + chunk.missing_after,
        )
    elif hint == "handshake" and plausible_header(data, 0):
        end = _bare_messages(st, ci, chunk, 0)
        if end < len(data):
            simple_item(
                st, ci, chunk, end, "unknown", f"unrecognised bytes ({len(data) - end})", data[end:]
            )
    else:
        return False
    return True


def chunk_items(st: State, ci: int, chunk: Chunk, chunks: list[Chunk]) -> None:
    first = len(st.items)
    _walk(st, ci, chunk, chunks)
    if chunk.damage is not None:
        _damaged_end(st, ci, chunk, chunks, first)


def _damaged_end(st: State, ci: int, chunk: Chunk, chunks: list[Chunk], first: int) -> None:
    """The chunk ends where the dump is damaged: what it cut says so (instead of a structural
    error read from guessed bytes), and the unknown bytes are an item of their own."""
    damage = chunk.damage
    assert damage is not None
    stop = f"{damage.finding()}: decoding stops there"
    for i in range(first, len(st.items)):
        it = st.items[i]
        if it.chunk == ci and it.missing:
            st.items[i] = dataclasses.replace(it, problems=(*it.problems, stop))
    flush_pending(st, chunks, stop)
    simple_item(
        st,
        ci,
        chunk,
        len(chunk.data),
        "unknown",
        damage.finding(),
        b"",
        length=damage.size,
        details=(
            f"{'??' * damage.size}  ({damage.size} byte(s) of unknown value, printed as "
            f"{damage.group!r}: a digit was lost, OCR?)",
            "the bytes after it are shown without their context",
        ),
    )


def _walk(st: State, ci: int, chunk: Chunk, chunks: list[Chunk]) -> None:
    data = chunk.data
    if chunk.after_gap or chunk.after_damage is not None:
        if chunk.after_damage is not None:
            after = f"the damaged group on line {chunk.after_damage.line}"
            flush_pending(st, chunks, f"{chunk.after_damage.finding()}: message cut")
        else:
            after = "a gap in the dump"
            flush_pending(st, chunks, "the dump skips bytes here: message cut")
        if data:
            simple_item(
                st,
                ci,
                chunk,
                0,
                "continuation",
                f"{len(data)} bytes after {after} (their context is missing)",
                data,
            )
        return
    if st.cur.pending is not None and not is_record_start(data, 0):
        flush_pending(st, chunks, "the dump ends inside this message")
    if chunk.hint is not None and _hinted(st, ci, chunk, chunks):
        return
    pos = 0
    while pos < len(data):
        if is_record_start(data, pos):
            pos = read_record(st, ci, chunk, pos, chunks)
        elif (
            data[pos] & 0x80
            and len(data) - pos >= 5
            and data[pos + 2] == 1
            and data[pos + 3] in (0, 3)
        ):
            pos = _sslv2_hello(st, ci, chunk, pos)
        elif _strong_header(data, pos) or (pos > 0 and plausible_header(data, pos)):
            pos = _bare_messages(st, ci, chunk, pos)
        elif (
            pos == 0
            and data[0] == 0x30
            and data[1:2] in (b"\x81", b"\x82", b"\x83")
            and (der_header(data, 0) is not None)
        ):
            pos = _der_certificate(st, ci, chunk, pos)
        elif pos == 0 and (skip := _find_record(data)) is not None:
            simple_item(
                st,
                ci,
                chunk,
                0,
                "skipped",
                f"{skip} bytes before the first TLS record (link, IP and TCP headers?)",
                data[:skip],
            )
            pos = skip
        elif plausible_header(data, pos):
            pos = _bare_messages(st, ci, chunk, pos)
        else:
            simple_item(
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
