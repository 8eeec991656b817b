"""What the chunk walk remembers, and the items it emits.

State is kept per logged connection (:class:`Conn`: a Transfer CFT context, one openssl run):
the negotiated version and suite (for the layouts that depend on them), whether a
ChangeCipherSpec came (the sender's next handshake record is its encrypted Finished), and a
message still waiting for the rest of its bytes in the next handshake record (:class:`Pending`).
Every finding becomes one :class:`~.model.Item` through :func:`emit`, which lists at most
:data:`MAX_ITEMS` and counts the rest; a waiting message whose rest never comes is emitted as
far as it goes by :func:`flush_pending`, with the reason it was cut as a problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..hexdump import Chunk
from .messages import Ctx, describe
from .model import AlertRef, Item, RecordRef

MAX_ITEMS = 2000  # a dump of endless tiny records is summarised, not listed forever
_CLIENT_TYPES = frozenset({1, 5, 15, 16})  # hello, end_of_early_data, cert_verify, cke
_SERVER_TYPES = frozenset({0, 2, 3, 4, 8, 12, 13, 14, 22})


@dataclass(slots=True)
class Pending:
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
    pending: Pending | None = None


@dataclass(slots=True)
class State:
    items: list[Item] = field(default_factory=list)
    conns: dict[str | None, Conn] = field(default_factory=dict)
    cur: Conn = field(default_factory=Conn)
    dropped: int = 0


def emit(st: State, item: Item) -> None:
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


def handshake_item(
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
    emit(
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


def simple_item(
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
    emit(
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
        simple_item(
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
    handshake_item(st, p.chunk, chunk, p.offset, p.head, tuple(p.records))
    last = st.items[-1]
    st.items[-1] = dataclasses.replace(last, problems=(*last.problems, why))
