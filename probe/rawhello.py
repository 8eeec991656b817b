"""The raw hello engine: codec-built ClientHellos over trio sockets, read only as far as needed.

Used where OpenSSL cannot or should not do the talking: asking a partner which protocol
versions it accepts after a version mismatch (one hello per version, in parallel), and later for
enumeration. A probe reads the server's first flight up to the ServerHello, an alert, EOF or
garbage, never more than ``MAX_READ`` bytes, within its deadline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import trio

from . import net
from .target import Target
from .wire import registry
from .wire.errors import DecodeError
from .wire.handshake import Defragmenter, HandshakeType
from .wire.hello import ClientHelloSpec, build_client_hello, make_key_share
from .wire.messages import parse_server_hello
from .wire.record import ContentType, parse_alert, parse_record

MAX_READ = 64 * 1024

GROUPS = (29, 23, 24, 25, 30, 256, 257)  # x25519, P-256, P-384, P-521, x448, ffdhe2048/3072
SIGALGS = (
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601,
    0x0807, 0x0808, 0x0203, 0x0201, 0x0402, 0x0202,
)  # fmt: skip
TLS13_SUITES = (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloAnswer:
    kind: str  # "server_hello" | "alert" | "eof" | "not_tls" | "timeout" | "tcp_error"
    version: int | None = None
    cipher: int | None = None
    alert: int | None = None


def hello_for_version(version: int, sni: str | None) -> ClientHelloSpec:
    """A broad, well-formed offer for exactly one protocol version."""
    if version >= 0x0304:
        return ClientHelloSpec(
            legacy_version=0x0303,
            suites=TLS13_SUITES,
            random=os.urandom(32),
            session_id=os.urandom(32),
            server_name=sni,
            supported_versions=(0x0304,),
            groups=GROUPS,
            signature_algorithms=SIGALGS,
            key_shares=(make_key_share(29), make_key_share(23)),
        )
    suites = (
        *(
            s.code
            for s in registry.all_suites()
            if not s.tls13 and not s.scsv and s.min_version <= version
        ),
        0x00FF,  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV, as clients of every era send it
    )
    if version == 0x0300:
        # SSL 3.0 servers of the seeds' era may choke on extensions (RFC 6101 has none).
        return ClientHelloSpec(
            legacy_version=version, record_version=0x0300, suites=suites,
            random=os.urandom(32), no_extensions=True,
        )  # fmt: skip
    return ClientHelloSpec(
        legacy_version=version,
        record_version=min(version, 0x0301),
        suites=suites,
        random=os.urandom(32),
        server_name=sni,
        groups=GROUPS[:4],
        ec_point_formats=(0,),
        signature_algorithms=SIGALGS if version >= 0x0303 else None,
        renegotiation_info=True,
    )


async def send_hello(
    target: Target, spec: ClientHelloSpec, *, timeout: float, starttls: str = "none"
) -> HelloAnswer:
    with trio.move_on_after(timeout):
        got = await net.connect_tcp(target.host, target.port)
        if isinstance(got, net.TcpFailure):
            return HelloAnswer(kind="tcp_error")
        async with got as stream:
            if starttls == "ftp":
                log = await net.ftp_auth_tls(stream)
                if not log.upgraded:
                    return HelloAnswer(kind="tcp_error")
            if not await net.send(stream, build_client_hello(spec)):
                return HelloAnswer(kind="eof")
            return await _read_answer(stream)
    return HelloAnswer(kind="timeout")


async def _read_answer(stream: trio.SocketStream) -> HelloAnswer:
    buf = b""
    total = 0
    defrag = Defragmenter()
    while total < MAX_READ:
        data = await net.receive(stream)
        if not data:
            return HelloAnswer(kind="eof")
        total += len(data)
        buf += data
        try:
            while (got := parse_record(buf)) is not None:
                rec, buf = got
                if rec.content_type == ContentType.ALERT:
                    return HelloAnswer(kind="alert", alert=parse_alert(rec.fragment).description)
                if rec.content_type != ContentType.HANDSHAKE:
                    return HelloAnswer(kind="not_tls")
                for msg in defrag.feed(rec.fragment):
                    if msg.msg_type == HandshakeType.SERVER_HELLO:
                        sh = parse_server_hello(msg.body)
                        return HelloAnswer(
                            kind="server_hello", version=sh.selected_version, cipher=sh.cipher_suite
                        )
        except DecodeError:
            return HelloAnswer(kind="not_tls")
    return HelloAnswer(kind="not_tls")


async def accepted_versions(
    target: Target,
    *,
    sni: str | None,
    timeout: float,
    starttls: str = "none",
    versions: tuple[int, ...] = (0x0300, 0x0301, 0x0302, 0x0303, 0x0304),
) -> tuple[int, ...]:
    """The protocol versions the partner completes a ServerHello for, one hello each."""
    answers: dict[int, HelloAnswer] = {}

    async def one(v: int) -> None:
        answers[v] = await send_hello(
            target, hello_for_version(v, sni), timeout=timeout, starttls=starttls
        )

    async with trio.open_nursery() as nursery:
        for v in versions:
            nursery.start_soon(one, v)
    return tuple(
        v for v in versions if answers[v].kind == "server_hello" and answers[v].version == v
    )
