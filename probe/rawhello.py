"""The raw hello engine: codec-built ClientHellos over trio sockets, read only as far as needed.

Used where OpenSSL cannot or should not do the talking: enumeration (`scan`) and asking a
partner which versions it accepts after a version mismatch. One call is one connection: send
one hello, read the server's first flight up to the ServerHello (or, with ``full``, up to
ServerHelloDone, for the certificate chain and the ServerKeyExchange group), an alert, EOF or
garbage; never more than ``MAX_READ`` bytes, never past the caller's deadline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import trio

from . import net
from .target import Target
from .wire import registry
from .wire.errors import DecodeError
from .wire.extensions import key_share_client
from .wire.handshake import Defragmenter, HandshakeType
from .wire.hello import (
    ClientHelloSpec,
    build_client_hello,
    build_sslv2_client_hello,
    make_key_share,
)
from .wire.messages import (
    ServerHello,
    SSLv2ServerHello,
    parse_certificate,
    parse_server_hello,
    parse_server_key_exchange,
    parse_sslv2_record,
    parse_sslv2_server_hello,
)
from .wire.record import ContentType, parse_alert, parse_record

MAX_READ = 256 * 1024
HEAD_BYTES = 64  # of a non-TLS answer, kept to show the user (a banner, an HTTP status line)

# Groups a hello offers: current ones first (post-quantum hybrids included), then the rest of
# the registry, so a server of any era finds its own. The explicit-curve markers are not groups.
_FIRST = (0x11EC, 29, 23, 24, 25, 30, 256, 257)
GROUPS = (
    *_FIRST,
    *(g for g in registry.all_groups() if g not in _FIRST and g not in (0xFF01, 0xFF02)),
)
# TLS 1.2 ECDHE curves only: elliptic curves (1-41); no FFDHE, no KEMs (RFC 8422 §5.1.1).
TLS12_GROUPS = tuple(g for g in GROUPS if g <= 41)
SIGALGS = (
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601,
    0x0807, 0x0808, 0x081A, 0x081B, 0x081C, 0x0303, 0x0203, 0x0201, 0x0402, 0x0502,
    0x0602, 0x0302, 0x0202, 0x0101,
)  # fmt: skip


@dataclass(slots=True)
class Counter:
    """Connections made, for reports and politeness limits."""

    connections: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloAnswer:
    # "server_hello" | "sslv2" | "alert" | "eof" | "not_tls" | "timeout" | "tcp_error" |
    # "starttls_refused"; a "timeout" during the plaintext upgrade has ``detail`` naming the
    # unanswered step and ``starttls_stalled`` set (no hello was sent then).
    kind: str
    server_hello: ServerHello | None = None
    alert: int | None = None
    certificates: tuple[bytes, ...] = ()
    ske_group: int | None = None
    sslv2: SSLv2ServerHello | None = None
    detail: str = ""
    head: bytes = b""  # with not_tls: the first bytes the peer sent (a banner says what it is)
    starttls_stalled: bool = False

    @property
    def version(self) -> int | None:
        return self.server_hello.selected_version if self.server_hello else None

    @property
    def cipher(self) -> int | None:
        return self.server_hello.cipher_suite if self.server_hello else None


def tls_suites_for(version: int) -> tuple[int, ...]:
    """Every registry suite a server may pick at ``version`` (SCSVs excluded)."""
    if version >= 0x0304:
        return tuple(s.code for s in registry.all_suites() if s.tls13)
    return tuple(
        s.code
        for s in registry.all_suites()
        if not s.tls13 and not s.scsv and s.min_version <= version
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    version: int
    suites: tuple[int, ...]
    groups: tuple[int, ...] = ()
    # TLS 1.3 key shares: None sends x25519 and P-256; () sends an empty key_share extension.
    key_share_groups: tuple[int, ...] | None = None
    sni: str | None = None
    small: bool = False  # fewer extensions, for servers that choke on big hellos


def build_offer(o: Offer) -> bytes:
    if o.version == 0x0002:
        kinds = tuple(c.code for c in registry.all_sslv2_ciphers())
        return build_sslv2_client_hello(kinds, os.urandom(16))
    if o.version >= 0x0304:
        shares = o.key_share_groups if o.key_share_groups is not None else (29, 23)
        spec = ClientHelloSpec(
            legacy_version=0x0303,
            suites=o.suites,
            random=os.urandom(32),
            session_id=os.urandom(32),
            server_name=o.sni,
            supported_versions=(0x0304,),
            groups=o.groups or GROUPS,
            signature_algorithms=SIGALGS,
            key_shares=tuple(make_key_share(g) for g in shares),
            extra_extensions=(key_share_client(()),) if not shares else (),
        )
        return build_client_hello(spec)
    if o.version == 0x0300:
        # SSL 3.0 (RFC 6101) has no extensions; some servers of the era choke on them.
        spec = ClientHelloSpec(
            legacy_version=0x0300, record_version=0x0300, suites=(*o.suites, 0x00FF),
            random=os.urandom(32), no_extensions=True,
        )  # fmt: skip
        return build_client_hello(spec)
    spec = ClientHelloSpec(
        legacy_version=o.version,
        record_version=min(o.version, 0x0301),
        suites=(*o.suites, 0x00FF),  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV, as every client sends
        random=os.urandom(32),
        server_name=o.sni,
        groups=None if o.small else (o.groups or TLS12_GROUPS),
        ec_point_formats=None if o.small else (0,),
        signature_algorithms=SIGALGS if o.version >= 0x0303 and not o.small else None,
        extended_master_secret=not o.small,
        session_ticket=False,
    )
    return build_client_hello(spec)


async def exchange(
    target: Target,
    offer: Offer | bytes,
    *,
    timeout: float,
    starttls: str = "none",
    full: bool = False,
    counter: Counter | None = None,
) -> HelloAnswer:
    """One connection: send the offer (or a caller-built hello), read the answer."""
    hello = offer if isinstance(offer, bytes) else build_offer(offer)
    sslv2 = isinstance(offer, Offer) and offer.version == 0x0002
    tls13 = isinstance(offer, Offer) and offer.version >= 0x0304
    dialog = None
    with trio.move_on_after(timeout):
        got = await net.connect_tcp(target.host, target.port)
        if counter is not None:
            counter.connections += 1
        if isinstance(got, net.TcpFailure):
            return HelloAnswer(kind="tcp_error", detail=got.message)
        async with got as stream:
            if starttls != "none":
                dialog = net.upgrade_dialog(stream, starttls)
                log = await net.starttls(stream, dialog)
                if not log.upgraded:
                    return HelloAnswer(
                        kind="starttls_refused", detail=log.problem or f"{starttls} upgrade refused"
                    )
            if not await net.send(stream, hello):
                return HelloAnswer(kind="eof")
            seen = bytearray()
            if sslv2:
                ans = await _read_sslv2(stream, seen)
            else:
                ans = await _read_answer(stream, seen, full=full and not tls13)
            return replace(ans, head=bytes(seen)) if ans.kind == "not_tls" else ans
    if dialog is not None and not dialog.done:
        # The deadline fired inside the upgrade: the hello never left, so say where it stuck.
        dialog.stalled(timeout)
        return HelloAnswer(kind="timeout", detail=dialog.log.problem or "", starttls_stalled=True)
    return HelloAnswer(kind="timeout")


def _keep_head(seen: bytearray, data: bytes) -> None:
    if len(seen) < HEAD_BYTES:
        seen += data[: HEAD_BYTES - len(seen)]


async def _read_sslv2(stream: trio.SocketStream, seen: bytearray) -> HelloAnswer:
    buf = b""
    while len(buf) < MAX_READ:
        data = await net.receive(stream)
        if not data:
            return HelloAnswer(kind="eof")
        _keep_head(seen, data)
        buf += data
        if buf[:1] == b"\x15" or buf[:1] == b"\x16":
            # A TLS record: the server answered our SSLv2 hello in SSL 3.0+ (alert or hello).
            got = _tls_answer(buf)
            return got or HelloAnswer(kind="not_tls")
        try:
            rec = parse_sslv2_record(buf)
            if rec is None:
                continue
            msg = parse_sslv2_server_hello(rec[0])
        except DecodeError as exc:
            return HelloAnswer(kind="not_tls", detail=str(exc))
        if isinstance(msg, SSLv2ServerHello):
            return HelloAnswer(kind="sslv2", sslv2=msg)
        return HelloAnswer(kind="alert", detail=f"SSLv2 error {msg.code}")
    return HelloAnswer(kind="not_tls")


def _tls_answer(buf: bytes) -> HelloAnswer | None:
    try:
        got = parse_record(buf)
    except DecodeError:
        return HelloAnswer(kind="not_tls")
    if got is None:
        return None
    rec, _ = got
    if rec.content_type == ContentType.ALERT:
        return HelloAnswer(kind="alert", alert=parse_alert(rec.fragment).description)
    return None


async def _read_answer(stream: trio.SocketStream, seen: bytearray, *, full: bool) -> HelloAnswer:
    buf = b""
    total = 0
    defrag = Defragmenter()
    sh: ServerHello | None = None
    certs: tuple[bytes, ...] = ()
    group: int | None = None
    while total < MAX_READ:
        data = await net.receive(stream)
        if not data:
            break
        _keep_head(seen, data)
        total += len(data)
        buf += data
        try:
            while (got := parse_record(buf)) is not None:
                rec, buf = got
                if rec.content_type == ContentType.ALERT:
                    if sh is not None:
                        return HelloAnswer(kind="server_hello", server_hello=sh, certificates=certs)
                    return HelloAnswer(kind="alert", alert=parse_alert(rec.fragment).description)
                if rec.content_type != ContentType.HANDSHAKE:
                    if sh is not None:  # TLS 1.3 encrypted flight, or a CCS: we have enough
                        return HelloAnswer(kind="server_hello", server_hello=sh, certificates=certs)
                    return HelloAnswer(kind="not_tls")
                for msg in defrag.feed(rec.fragment):
                    if msg.msg_type == HandshakeType.SERVER_HELLO and sh is None:
                        sh = parse_server_hello(msg.body)
                        if not full or sh.is_hello_retry_request or sh.selected_version >= 0x0304:
                            return HelloAnswer(kind="server_hello", server_hello=sh)
                    elif msg.msg_type == HandshakeType.CERTIFICATE and sh is not None:
                        certs = parse_certificate(msg.body, tls13=False, max_certs=64).certificates
                    elif msg.msg_type == HandshakeType.SERVER_KEY_EXCHANGE and sh is not None:
                        group = _ske_group(msg.body, sh.cipher_suite)
                    elif msg.msg_type == HandshakeType.SERVER_HELLO_DONE and sh is not None:
                        return HelloAnswer(
                            kind="server_hello",
                            server_hello=sh,
                            certificates=certs,
                            ske_group=group,
                        )
        except DecodeError as exc:
            if sh is not None:
                return HelloAnswer(kind="server_hello", server_hello=sh, certificates=certs)
            return HelloAnswer(kind="not_tls", detail=str(exc))
    if sh is not None:
        return HelloAnswer(
            kind="server_hello", server_hello=sh, certificates=certs, ske_group=group
        )
    return HelloAnswer(kind="eof")


def _ske_group(body: bytes, suite_code: int) -> int | None:
    suite = registry.suite(suite_code)
    if suite is None or suite.kx not in ("ECDHE", "DHE"):
        return None
    try:
        ske = parse_server_key_exchange(body, suite.kx)
    except DecodeError:
        return None
    if ske.group is not None:
        return ske.group
    if ske.dh_prime_bits:
        return -ske.dh_prime_bits  # a negative number: a DH prime of that many bits, no group id
    return None


def hello_for_version(version: int, sni: str | None) -> Offer:
    return Offer(version=version, suites=tls_suites_for(version), sni=sni)


async def accepted_versions(
    target: Target,
    *,
    sni: str | None,
    timeout: float,
    starttls: str = "none",
    versions: tuple[int, ...] = (0x0300, 0x0301, 0x0302, 0x0303, 0x0304),
) -> tuple[tuple[int, int], ...]:
    """(version, suite the server picked) for each protocol version the partner completes a
    ServerHello for, one hello each (the pick says what a client must offer to get in)."""
    answers: dict[int, HelloAnswer] = {}

    async def one(v: int) -> None:
        answers[v] = await exchange(
            target, hello_for_version(v, sni), timeout=timeout, starttls=starttls
        )

    async with trio.open_nursery() as nursery:
        for v in versions:
            nursery.start_soon(one, v)
    return tuple(
        (v, a.cipher)
        for v in versions
        if (a := answers[v]).kind == "server_hello" and a.version == v and a.cipher is not None
    )
