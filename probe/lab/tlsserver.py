"""The lab's TLS side: pyOpenSSL server contexts per scenario and a memory-BIO server driver.

Theory of operation
-------------------
Like the client engine, OpenSSL never touches the socket: :class:`ServerTLS` feeds it what trio
reads and sends what it writes, flushing before every read. Before OpenSSL sees anything, the
driver reads the first ClientHello with the codec (bounded), so a scenario can choose its
certificate from the SNI (IBM MQ CERTLABL) or refuse the hello at the wire level, exactly as the
partner it imitates would, and then hands the same bytes to OpenSSL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import trio
from cryptography import x509
from OpenSSL import SSL, crypto

from ..pki import IdentityFiles, TestPKI, load_certs_pem
from ..wire.errors import DecodeError
from ..wire.handshake import Defragmenter, HandshakeType
from ..wire.hello import ClientHello, parse_client_hello
from ..wire.record import ContentType, build_alert, parse_record
from .catalog import Scenario

READ = 16 * 1024
MAX_HELLO_BYTES = 64 * 1024
HANDSHAKE_DEADLINE = 30.0
IDLE_DEADLINE = 60.0

_VERSIONS = {
    "1.0": SSL.TLS1_VERSION,
    "1.1": SSL.TLS1_1_VERSION,
    "1.2": SSL.TLS1_2_VERSION,
    "1.3": SSL.TLS1_3_VERSION,
}
# Synthetic CA names for client-cert-huge-ca-list: ~155 bytes each, enough to pass the
# 32,750 bytes Transfer CFT accepts (RRUSIZE) and stay under the 65,535 a TLS 1.2
# CertificateRequest can carry (a u16 length, RFC 5246 §7.4.4), where OpenSSL gives up.
HUGE_CA_NAMES = 260


def identity(pki: TestPKI, name: str) -> IdentityFiles:
    files = getattr(pki, name.replace("-", "_"), None)
    if not isinstance(files, IdentityFiles):
        raise ValueError(f"no PKI identity {name!r}")
    return files


def _name(cert: x509.Certificate) -> crypto.X509Name:
    return crypto.X509.from_cryptography(cert).get_subject()


def _huge_names() -> list[crypto.X509Name]:
    out = []
    for i in range(HUGE_CA_NAMES):
        name = crypto.X509().get_subject()
        name.C = "FR"
        name.O = "Partner Bank Group Trust Services"
        name.OU = f"Regional Issuing Authority {i // 20:03d}"
        name.CN = f"Partner Bank Issuing CA {i:04d} for file transfer"
        out.append(name)
    return out


def server_context(s: Scenario, pki: TestPKI, ident: IdentityFiles | None = None) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    # The security level comes first: at OpenSSL's default a 1024-bit key cannot even be loaded.
    if s.ciphers:
        ctx.set_cipher_list(s.ciphers.encode())
    if s.min_version:
        ctx.set_min_proto_version(_VERSIONS[s.min_version])
    if s.max_version:
        ctx.set_max_proto_version(_VERSIONS[s.max_version])
    files = ident or identity(pki, s.identity)
    chain = load_certs_pem(files.chain)
    ctx.use_certificate(chain[0])
    ctx.use_privatekey_file(str(files.key))
    if s.chain:
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra)
    if s.client_auth != "none":
        ctx.load_verify_locations(str(pki.ca))
        store = ctx.get_cert_store()
        assert store is not None
        lab_cas = [*load_certs_pem(pki.ca), *load_certs_pem(pki.intermediate)]
        store.add_cert(crypto.X509.from_cryptography(lab_cas[1]))
        mode = SSL.VERIFY_PEER
        if s.client_auth == "required":
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        ctx.set_verify(mode, lambda conn, cert, err, depth, ok: bool(ok))
        if s.ca_names == "lab":
            ctx.set_client_ca_list([_name(c) for c in lab_cas])
        elif s.ca_names == "huge":
            ctx.set_client_ca_list([*_huge_names(), *(_name(c) for c in lab_cas)])
        # "empty": no list at all, so the CertificateRequest names no CA.
    return ctx


# --- reading the first ClientHello with the codec ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstHello:
    raw: bytes  # every byte read so far, to replay into OpenSSL
    hello: ClientHello | None  # None: not TLS, or the peer left
    record_version: int = 0x0301


async def read_client_hello(stream: trio.SocketStream) -> FirstHello:
    raw = b""
    buf = b""
    defrag = Defragmenter(max_message=MAX_HELLO_BYTES)
    version = 0x0301
    while len(raw) < MAX_HELLO_BYTES:
        try:
            data = await stream.receive_some(READ)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            return FirstHello(raw=raw, hello=None)
        raw += data
        buf += data
        try:
            while (got := parse_record(buf)) is not None:
                rec, buf = got
                version = rec.version
                if rec.content_type != ContentType.HANDSHAKE:
                    return FirstHello(raw=raw, hello=None, record_version=version)
                for msg in defrag.feed(rec.fragment):
                    if msg.msg_type != HandshakeType.CLIENT_HELLO:
                        return FirstHello(raw=raw, hello=None, record_version=version)
                    return FirstHello(
                        raw=raw, hello=parse_client_hello(msg.body), record_version=version
                    )
        except DecodeError:
            return FirstHello(raw=raw, hello=None, record_version=version)
    return FirstHello(raw=raw, hello=None, record_version=version)


# --- the server driver ----------------------------------------------------------------------------


class ServerTLS:
    """One server-side TLS connection on memory BIOs over a trio stream."""

    def __init__(self, stream: trio.SocketStream, ctx: SSL.Context) -> None:
        self.stream = stream
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_accept_state()

    async def _flush(self) -> bool:
        out = b""
        while True:
            try:
                chunk = self.conn.bio_read(READ)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            out += chunk
        if not out:
            return True
        try:
            await self.stream.send_all(out)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(READ)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.conn.bio_shutdown()
            return False
        self.conn.bio_write(data)
        return True

    async def handshake(self, already_read: bytes = b"") -> bool:
        if already_read:
            self.conn.bio_write(already_read)
        with trio.move_on_after(HANDSHAKE_DEADLINE):
            while True:
                try:
                    self.conn.do_handshake()
                except SSL.WantReadError:
                    if not await self._flush() or not await self._fill():
                        return False
                    continue
                except SSL.Error:
                    await self._flush()  # the alert OpenSSL wrote goes out, as a real server's
                    return False
                await self._flush()
                return True
        return False

    async def receive(self) -> bytes:
        """Application bytes; b"" when the client closed."""
        while True:
            try:
                return self.conn.recv(READ)
            except SSL.WantReadError:
                await self._flush()
                if not await self._fill():
                    return b""
            except (SSL.ZeroReturnError, SSL.Error):
                return b""

    async def send(self, data: bytes) -> bool:
        try:
            self.conn.sendall(data)
        except SSL.Error:
            return False
        return await self._flush()

    async def close(self) -> None:
        with contextlib.suppress(SSL.Error):
            self.conn.shutdown()
        await self._flush()
        await self.stream.aclose()


ContextChooser = Callable[[ClientHello], SSL.Context | int]


async def serve_tls(stream: trio.SocketStream, choose: ContextChooser, *, after: str) -> None:
    """Read the ClientHello, pick a context (or an alert to refuse with), run the scenario."""
    first = await read_client_hello(stream)
    if first.hello is None:
        # Not a TLS hello: let OpenSSL answer as it would (protocol_version / nothing).
        return
    picked = choose(first.hello)
    if isinstance(picked, int):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(build_alert(picked, version=first.record_version))
        return
    tls = ServerTLS(stream, picked)
    if not await tls.handshake(first.raw):
        return
    if after == "close":
        await trio.sleep(0.05)  # let TLS 1.3 session tickets leave first, as a server would
        await tls.close()
        return
    with trio.move_on_after(IDLE_DEADLINE):
        while await tls.receive():
            pass
    await tls.close()
