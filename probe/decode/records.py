"""The record layer of a dump: records by content type, and handshake messages across them.

A record header (type 20-24, major version 3) declares a content type and a length that the
bytes present may not honour: a cut record is reported with what it declares and what is there,
and a length beyond 2^14 + 2048 is a problem (RFC 5246 §6.2.3). A handshake record may end
inside a message while complete itself; the message then waits (:class:`~.state.Pending`) for
the next handshake record of the same connection, and any other record cuts it. After a
ChangeCipherSpec the sender's next handshake record is its encrypted Finished, so content that
cannot be a handshake message is reported as encrypted instead of being forced into one.
"""

from __future__ import annotations

import dataclasses

from ..hexdump import Chunk
from ..wire.handshake import HandshakeType
from .model import RecordRef, alert_ref, alert_title, version_name
from .state import Pending, State, flush_pending, handshake_item, simple_item

CONTENT_TYPES = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
}
_HANDSHAKE_TYPES = frozenset(int(t) for t in HandshakeType)


def plausible_header(data: bytes, pos: int, room: int | None = None) -> bool:
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


def is_record_start(data: bytes, pos: int) -> bool:
    return (
        len(data) - pos >= 3 and 20 <= data[pos] <= 24 and data[pos + 1] == 3 and data[pos + 2] <= 4
    )


def read_record(st: State, ci: int, chunk: Chunk, pos: int, chunks: list[Chunk]) -> int:
    data = chunk.data
    if len(data) - pos < 5:
        head = data[pos:]
        simple_item(
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
        content_type_name=CONTENT_TYPES[ctype],
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
        simple_item(
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
            simple_item(
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
            simple_item(
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
            simple_item(
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
        simple_item(
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
        simple_item(
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
    if st.cur.after_ccs and not (exact and plausible_header(frag, 0)):
        st.cur.after_ccs = False
        simple_item(
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
                handshake_item(
                    st, pend.chunk, chunks[pend.chunk], pend.offset, pend.head, tuple(pend.records)
                )
            elif not complete:
                st.cur.pending = None
                handshake_item(
                    st, pend.chunk, chunks[pend.chunk], pend.offset, pend.head, tuple(pend.records)
                )
                return
            else:
                return  # still continues in the next record
    first = True
    while p < len(frag):
        if len(frag) - p < 4:
            if complete:
                st.cur.pending = Pending(chunk=ci, offset=pos + 5 + p, head=frag[p:], records=[ref])
                return
            simple_item(
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
            or (not fits and not plausible_header(frag, p))
            or (not fits and not spans and 4 + n > ref.length - p)
        ):
            name = (
                f"encrypted or unknown handshake content ({len(frag) - p} bytes)"
                if first
                else f"unrecognised bytes in a handshake record ({len(frag) - p})"
            )
            simple_item(
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
            st.cur.pending = Pending(chunk=ci, offset=pos + 5 + p, head=frag[p:], records=[ref])
            return
        raw = frag[p : p + 4 + n]
        handshake_item(st, ci, chunk, pos + 5 + p, raw, (ref,))
        if not fits and rec_problems:
            last = st.items[-1]
            st.items[-1] = dataclasses.replace(last, problems=(*rec_problems, *last.problems))
        p += len(raw)
        first = False
