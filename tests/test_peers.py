"""The test peers behave as documented, judged by ``openssl s_client`` alone.

Nothing of `probe` but the PKI is used here: if these fail, the peers (or the machine's
OpenSSL, GnuTLS, vsftpd) changed, not the probe. ``-msg`` lines name each alert and its
direction (``<<<`` received from the server, ``>>>`` sent by the client), which is what the
probe's own tests will later rely on.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import bytepeers
import peers
import pytest
import trio
from peers import (
    GNUTLS_CONFIGS,
    OPENSSL_CONFIGS,
    Peer,
    gnutls_args,
    gnutls_server,
    openssl_args,
    openssl_server,
    port_accepts,
    vsftpd_server,
)

from probe.pki import IdentityFiles, TestPKI, build_test_pki

S_CLIENT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    msg: str  # stdout: the -msg trace, in wire order
    brief: str  # stderr: -brief summary and errors

    @property
    def out(self) -> str:
        return self.msg + self.brief

    def position(self, text: str) -> int:
        """Where ``text`` is in the -msg trace (order is only meaningful within it)."""
        index = self.msg.find(text)
        assert index >= 0, f"{text!r} not in s_client -msg output:\n{self.msg}"
        return index


async def s_client(
    port: int, *args: str | Path, ca: Path | None = None, ign_eof: bool = False
) -> Run:
    """``openssl s_client -brief -msg`` against 127.0.0.1:port with stdin at EOF.

    At EOF s_client closes as soon as the handshake completes, so a TLS 1.3 server's
    post-handshake alert is only seen with ``ign_eof`` (s_client then waits for the server
    to close; use it only where the server will).
    """
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"]
    argv += ["-brief", "-msg"]
    if ca is not None:
        argv += ["-CAfile", str(ca)]
    if ign_eof:
        argv.append("-ign_eof")
    argv += [str(a) for a in args]
    with trio.fail_after(S_CLIENT_TIMEOUT):
        done = await trio.run_process(
            argv, stdin=b"", capture_stdout=True, capture_stderr=True, check=False
        )
    return Run(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def identity(files: IdentityFiles, *chain: Path) -> list[str | Path]:
    args: list[str | Path] = ["-cert", files.cert, "-key", files.key]
    for extra in chain:
        args += ["-cert_chain", extra]
    return args


def assert_in(run: Run, *texts: str) -> None:
    for text in texts:
        assert text in run.out, f"{text!r} not in s_client output:\n{run.out}"


CLIENT_FINISHED_13 = ">>> TLS 1.3, Handshake [length 0034], Finished"


def received_alert(name: str) -> str:
    return f", fatal {name}"  # the record version varies; the alert name and level do not


# --------------------------------------------------------------------------- openssl s_server


@dataclass(frozen=True, slots=True)
class Case:
    config: str
    expect: tuple[str, ...]
    client: tuple[str, ...] = ()
    ok: bool = True  # s_client exit status 0


# What an OpenSSL 3.0 client sees from each s_server configuration. Certificate problems are
# reported by s_client's verifier (the server sends no alert): without -verify_return_error
# the handshake still completes, which is what lets a probe report them all at once.
OPENSSL_CASES = [
    Case("good", ("Protocol version: TLSv1.3", "Verification: OK")),
    Case("good-ec", ("Protocol version: TLSv1.3", "Signature type: ECDSA", "Verification: OK")),
    Case("expired", ("Verification error: certificate has expired",)),
    Case("not-yet-valid", ("Verification error: certificate is not yet valid",)),
    Case("self-signed", ("Verification error: self-signed certificate",)),
    Case("unknown-ca", ("Verification error: unable to get local issuer certificate",)),
    # s_client reports the last verify error: 21 here, after 20 at depth 0.
    Case("missing-intermediate", ("verify error:num=20:unable to get local issuer certificate",
                                  "Verification error: unable to verify the first certificate")),
    Case("wrong-host", ("Verification: OK",)),  # names are only checked when asked:
    Case("wrong-host", ("Verification error: hostname mismatch",),
         ("-verify_hostname", "localhost")),
    Case("good", ("Verification: OK",), ("-verify_hostname", "localhost")),
    # Debian's default SECLEVEL 2 rejects the 1024-bit key in verification, and with
    # -verify_return_error the client aborts with alert 42 bad_certificate.
    Case("weak-key", ("Verification error: EE certificate key too weak",)),
    Case("weak-key", (">>> TLS 1.3, Alert [length 0002], fatal bad_certificate",),
         ("-verify_return_error",), ok=False),
    Case("weak-key", ("Verification: OK",), ("-cipher", "DEFAULT:@SECLEVEL=1")),
    # A default client offers TLS 1.0 still, accepts the TLS 1.0 ServerHello, then refuses
    # the SHA-1 signature in ServerKeyExchange and sends 80 internal_error (not 70!).
    Case("tls10-only", ("<<< TLS 1.0, Handshake", "ServerKeyExchange",
                        ">>> TLS 1.0, Alert [length 0002], fatal internal_error",
                        "legacy sigalg disallowed or unsupported"), ok=False),
    Case("tls10-only", ("Protocol version: TLSv1\n",), ("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")),
    Case("tls12-only", ("Protocol version: TLSv1.2",)),
    Case("tls13-only", ("Protocol version: TLSv1.3",)),
    Case("tls13-only", ("<<< TLS 1.2, Alert [length 0002], fatal protocol_version",),
         ("-no_tls1_3",), ok=False),
    # Refused straight after the ClientHello, before any ServerHello.
    Case("no-shared-cipher", (received_alert("handshake_failure"), "alert handshake failure"),
         ok=False),
    Case("no-shared-cipher", ("Ciphersuite: CAMELLIA128-SHA",), ("-cipher", "CAMELLIA128-SHA")),
    Case("null-cipher", (received_alert("handshake_failure"),), ok=False),
    Case("null-cipher", ("Ciphersuite: NULL-SHA256",), ("-cipher", "NULL-SHA256:@SECLEVEL=0")),
    Case("client-cert-required-tls12",
         ("CertificateRequest", "<<< TLS 1.2, Alert [length 0002], fatal handshake_failure"),
         ok=False),
    Case("client-cert-optional-tls12", ("CertificateRequest", "Protocol version: TLSv1.2",
                                        "Verification: OK")),
    Case("client-cert-optional-tls13", ("CertificateRequest", "Protocol version: TLSv1.3",
                                        "Verification: OK")),
]  # fmt: skip


@pytest.mark.parametrize("case", OPENSSL_CASES, ids=lambda c: f"{c.config}{list(c.client)}")
async def test_openssl_server(pki: TestPKI, case: Case) -> None:
    with openssl_server(openssl_args(pki, case.config)) as peer:
        run = await s_client(peer.port, *case.client, ca=pki.ca)
    assert_in(run, *case.expect)
    assert (run.returncode == 0) == case.ok, run.out


def test_every_openssl_config_is_exercised() -> None:
    tested_elsewhere = {"client-cert-required-tls13", "hello-retry"}  # tests below
    assert {c.config for c in OPENSSL_CASES} | tested_elsewhere == set(OPENSSL_CONFIGS)


async def test_hello_retry_config_sends_a_hello_retry_request(pki: TestPKI) -> None:
    # s_client offers x25519 (and P-256) shares; the server wants P-384, so it asks again: two
    # ClientHellos go out (s_client -msg labels the HelloRetryRequest "ServerHello").
    with openssl_server(openssl_args(pki, "hello-retry")) as peer:
        run = await s_client(peer.port, ca=pki.ca)
    assert run.out.count(", ClientHello") == 2, run.out
    assert_in(run, "Protocol version: TLSv1.3", "Verification: OK")


async def test_missing_intermediate_differs_from_unknown_ca(pki: TestPKI, tmp_path: Path) -> None:
    # Both say "unable to get local issuer certificate"; a client that already holds the
    # intermediate tells them apart.
    bundle = tmp_path / "root-and-intermediate.crt"
    bundle.write_bytes(pki.ca.read_bytes() + pki.intermediate.read_bytes())
    with openssl_server(openssl_args(pki, "missing-intermediate")) as peer:
        assert_in(await s_client(peer.port, ca=bundle), "Verification: OK")
    with openssl_server(openssl_args(pki, "unknown-ca")) as peer:
        run = await s_client(peer.port, ca=bundle)
    assert_in(run, "Verification error: unable to get local issuer certificate")


# Client certificates. In TLS 1.2 the server's verdict arrives before the client's handshake
# ends. In TLS 1.3 the client has already sent Finished (and s_client printed CONNECTION
# ESTABLISHED) when the alert arrives; ign_eof keeps s_client reading until then.
@pytest.mark.parametrize(
    ("version", "who", "alert"),
    [
        ("tls12", None, "handshake_failure"),  # 40: no certificate
        ("tls13", None, "certificate_required"),  # 116
        ("tls12", "client_expired", "certificate_expired"),  # 45
        ("tls13", "client_expired", "certificate_expired"),
        ("tls12", "client_untrusted", "unknown_ca"),  # 48
        ("tls13", "client_untrusted", "unknown_ca"),
    ],
)
async def test_openssl_client_cert_refused(
    pki: TestPKI, version: str, who: str | None, alert: str
) -> None:
    client: list[str | Path] = []
    if who is not None:
        chain = pki.other_intermediate if who == "client_untrusted" else pki.intermediate
        client = identity(getattr(pki, who), chain)
    with openssl_server(openssl_args(pki, f"client-cert-required-{version}")) as peer:
        run = await s_client(peer.port, *client, ca=pki.ca, ign_eof=True)
        await peer.wait_for_output(r"^ERROR$")
    assert run.returncode != 0, run.out
    if version == "tls13":
        assert_in(run, "CONNECTION ESTABLISHED")
        assert run.position(CLIENT_FINISHED_13) < run.position(received_alert(alert))
    else:
        assert "CONNECTION ESTABLISHED" not in run.out
        assert_in(run, f"<<< TLS 1.2, Alert [length 0002], fatal {alert}")


@pytest.mark.parametrize("version", ["tls12", "tls13"])
@pytest.mark.parametrize("need", ["required", "optional"])
async def test_openssl_client_cert_accepted(pki: TestPKI, version: str, need: str) -> None:
    with openssl_server(openssl_args(pki, f"client-cert-{need}-{version}")) as peer:
        run = await s_client(peer.port, *identity(pki.client, pki.intermediate), ca=pki.ca)
        # The server's verdict on the client certificate, whatever s_client saw before leaving.
        await peer.wait_for_output(r"^(ERROR|DONE|CONNECTION CLOSED)$")
        server_log = peer.output()
    assert_in(run, f"Protocol version: TLSv1.{version[-1]}", "Verification: OK")
    assert "verify error" not in server_log and "\nERROR" not in server_log, server_log


async def test_openssl_naccept_serves_then_exits(pki: TestPKI) -> None:
    with openssl_server([*openssl_args(pki, "good"), "-naccept", "1"]) as peer:
        assert_in(await s_client(peer.port, ca=pki.ca), "Verification: OK")
        run = await s_client(peer.port, ca=pki.ca)
    assert run.returncode != 0
    # Refused once s_server has exited; reset if we hit the backlog of the closing listener.
    assert "Connection refused" in run.out or "errno=104" in run.out, run.out


async def test_openssl_serves_many_connections_by_default(pki: TestPKI) -> None:
    with openssl_server(openssl_args(pki, "good")) as peer:
        for _ in range(3):
            assert_in(await s_client(peer.port, ca=pki.ca), "Verification: OK")


# --------------------------------------------------------------------------- gnutls-serv


@pytest.mark.parametrize(
    ("config", "client", "expect", "ok"),
    [
        ("good", (), ("Protocol version: TLSv1.3", "Verification: OK"), True),
        ("good", ("-no_tls1_3",), ("Protocol version: TLSv1.2", "Verification: OK"), True),
        ("tls13-only", (), ("Protocol version: TLSv1.3",), True),
        # GnuTLS answers a TLS 1.2-only client with 40 handshake_failure, where OpenSSL
        # sends 70 protocol_version.
        ("tls13-only", ("-no_tls1_3",), (received_alert("handshake_failure"),), False),
        # No certificate in TLS 1.2: GnuTLS 3.7 sends 50 decode_error, not 40 or 116.
        ("client-cert-required-tls12", (), ("CertificateRequest",
                                            received_alert("decode_error")), False),
    ],
)  # fmt: skip
async def test_gnutls_server(
    pki: TestPKI, config: str, client: tuple[str, ...], expect: tuple[str, ...], ok: bool
) -> None:
    with gnutls_server(gnutls_args(pki, config)) as peer:
        run = await s_client(peer.port, *client, ca=pki.ca)
    assert_in(run, *expect)
    assert (run.returncode == 0) == ok, run.out
    if config == "good":
        assert "CertificateRequest" not in run.out


@pytest.mark.parametrize(
    ("version", "who", "alert"),
    [
        ("tls13", None, "certificate_required"),
        # GnuTLS refuses a bad client certificate with 49 access_denied in both versions,
        # where OpenSSL names the problem (45 certificate_expired, 48 unknown_ca).
        ("tls12", "client_expired", "access_denied"),
        ("tls13", "client_expired", "access_denied"),
        ("tls12", "client_untrusted", "access_denied"),
        ("tls13", "client_untrusted", "access_denied"),
    ],
)
async def test_gnutls_client_cert_refused(
    pki: TestPKI, version: str, who: str | None, alert: str
) -> None:
    client: list[str | Path] = []
    if who is not None:
        chain = pki.other_intermediate if who == "client_untrusted" else pki.intermediate
        client = identity(getattr(pki, who), chain)
    with gnutls_server(gnutls_args(pki, f"client-cert-required-{version}")) as peer:
        run = await s_client(peer.port, *client, ca=pki.ca, ign_eof=True)
    assert run.returncode != 0, run.out
    if version == "tls13":
        assert_in(run, "CONNECTION ESTABLISHED")
        assert run.position(CLIENT_FINISHED_13) < run.position(received_alert(alert))
    else:
        assert_in(run, f"<<< TLS 1.2, Alert [length 0002], fatal {alert}")


@pytest.mark.parametrize("version", ["tls12", "tls13"])
async def test_gnutls_client_cert_accepted(pki: TestPKI, version: str) -> None:
    with gnutls_server(gnutls_args(pki, f"client-cert-required-{version}")) as peer:
        run = await s_client(peer.port, *identity(pki.client, pki.intermediate), ca=pki.ca)
        await peer.wait_for_output(r"The certificate is trusted")
    assert_in(run, f"Protocol version: TLSv1.{version[-1]}", "Verification: OK")


def test_every_gnutls_config_is_exercised() -> None:
    exercised = {"good", "tls13-only", "client-cert-required-tls12", "client-cert-required-tls13"}
    assert exercised == set(GNUTLS_CONFIGS)


# --------------------------------------------------------------------------- vsftpd


@pytest.mark.parametrize(("client", "version"), [((), "TLSv1.3"), (("-no_tls1_3",), "TLSv1.2")])
async def test_vsftpd_auth_tls(
    pki: TestPKI, vsftpd_tls: Peer, client: tuple[str, ...], version: str
) -> None:
    run = await s_client(vsftpd_tls.port, "-starttls", "ftp", *client, ca=pki.ca)
    assert run.returncode == 0, run.out
    assert_in(run, f"Protocol version: {version}", "Verification: OK")


async def ftp_exchange(port: int, command: bytes) -> tuple[bytes, bytes]:
    """The banner and the reply to one command, each read to its CRLF."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        buffer = b""

        async def line() -> bytes:
            nonlocal buffer
            while b"\r\n" not in buffer:
                chunk = await stream.receive_some(4096)
                assert chunk, f"connection closed; got {buffer!r}"
                buffer += chunk
            first, buffer = buffer.split(b"\r\n", 1)
            return first

        with trio.fail_after(5):
            banner = await line()
            await stream.send_all(command + b"\r\n")
            return banner, await line()


async def test_vsftpd_auth_tls_answers_234(vsftpd_tls: Peer) -> None:
    banner, reply = await ftp_exchange(vsftpd_tls.port, b"AUTH TLS")
    assert banner.startswith(b"220 ")
    assert reply.startswith(b"234 ")


async def test_vsftpd_plain_refuses_auth_tls(pki: TestPKI, vsftpd_plain: Peer) -> None:
    banner, reply = await ftp_exchange(vsftpd_plain.port, b"AUTH TLS")
    assert banner.startswith(b"220 ")
    # vsftpd without SSL treats AUTH as a command needing login: 530, not 502/504.
    assert reply.startswith(b"530 ")
    # s_client ignores the reply and starts TLS anyway; the text it reads is no record.
    run = await s_client(vsftpd_plain.port, "-starttls", "ftp", ca=pki.ca)
    assert run.returncode != 0
    assert_in(run, "wrong version number")


async def test_vsftpd_leaves_no_process_behind(pki: TestPKI) -> None:
    with vsftpd_server(pki.good) as peer:
        await s_client(peer.port, "-starttls", "ftp", ca=pki.ca)  # forks a session process
        group = peer.pid
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)


# --------------------------------------------------------------------------- byte peers

# What s_client (OpenSSL 3.0) reports for each scripted misbehaviour.
BYTE_CASES = [
    ("plaintext-ftp", bytepeers.plaintext_banner(), "wrong version number"),
    ("plaintext-http", bytepeers.plaintext_banner(bytepeers.HTTP_RESPONSE, wait_for_input=True),
     "wrong version number"),
    ("garbage", bytepeers.garbage(), "wrong version number"),
    ("reset-after-hello", bytepeers.reset_after_hello, "errno=104"),  # ECONNRESET
    ("close-after-hello", bytepeers.close_after_hello, "unexpected eof while reading"),
    ("alert-40", bytepeers.alert_after_hello(40), "SSL alert number 40"),
    ("alert-70", bytepeers.alert_after_hello(70), "SSL alert number 70"),
    ("alert-71", bytepeers.alert_after_hello(71), "alert insufficient security"),
    ("alert-80", bytepeers.alert_after_hello(80), "alert internal error"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("handler", "expect"), [c[1:] for c in BYTE_CASES], ids=[c[0] for c in BYTE_CASES]
)
async def test_byte_peer(handler: bytepeers.Handler, expect: str) -> None:
    async with bytepeers.serve_script(handler) as port:
        run = await s_client(port)
    assert run.returncode != 0
    assert_in(run, expect)


async def test_silent_peer_never_answers() -> None:
    async with bytepeers.serve_script(bytepeers.silent) as port:
        with trio.move_on_after(0.5) as waited:
            await s_client(port)
    assert waited.cancelled_caught


async def test_alert_record_bytes_on_the_wire() -> None:
    # A raw client: the alert must be exactly one record, 15 03 03 00 02 02 <code>, then FIN.
    async with bytepeers.serve_script(bytepeers.alert_after_hello(71)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            hello = b"\x16\x03\x01\x00\x04" + b"\x01\x00\x00\x00"
            await stream.send_all(hello)
            with trio.fail_after(5):
                got = b""
                while chunk := await stream.receive_some(4096):
                    got += chunk
    assert got == bytes.fromhex("15030300020247")


async def test_garbage_cannot_start_a_record() -> None:
    async with bytepeers.serve_script(bytepeers.garbage(size=64)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"\x16\x03\x01\x00\x04\x01\x00\x00\x00")
            with trio.fail_after(5):
                got = await bytepeers.receive_exactly(stream, 64)
    assert len(got) == 64
    assert got[0] not in range(0x14, 0x19)  # no TLS content type (RFC 8446 section 5.1)


async def test_reset_is_a_reset_not_a_fin() -> None:
    async with bytepeers.serve_script(bytepeers.reset_after_hello) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"\x16\x03\x01\x00\x04\x01\x00\x00\x00")
            with trio.fail_after(5), pytest.raises(trio.BrokenResourceError) as raised:
                while await stream.receive_some(4096):
                    pass
    assert isinstance(raised.value.__cause__, ConnectionResetError)


async def test_byte_peer_in_the_test_nursery() -> None:
    async with trio.open_nursery() as nursery:
        port = await bytepeers.start_script(nursery, bytepeers.plaintext_banner())
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            with trio.fail_after(5):
                assert await stream.receive_some(100) == bytepeers.FTP_BANNER
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- the PKI itself


def test_private_keys_are_private(pki: TestPKI) -> None:
    for files in (pki.good, pki.client, pki.weak_key):
        for path in (files.key, files.encrypted_key, files.pkcs12, files.pkcs12_no_key):
            assert path.stat().st_mode & 0o077 == 0, path


def test_client_formats_open_with_the_published_passwords(pki: TestPKI) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

    client = pki.client
    leaf = x509.load_der_x509_certificate(client.cert_der.read_bytes())
    key = load_pem_private_key(client.encrypted_key.read_bytes(), pki.key_password.encode())
    assert key.public_key() == leaf.public_key()
    bundle = pkcs12.load_pkcs12(client.pkcs12.read_bytes(), pki.pkcs12_password.encode())
    assert bundle.key is not None and bundle.cert is not None
    assert bundle.cert.certificate == leaf
    assert [c.certificate.subject for c in bundle.additional_certs] == [
        x509.load_pem_x509_certificate(pki.intermediate.read_bytes()).subject
    ]
    keyless = pkcs12.load_pkcs12(client.pkcs12_no_key.read_bytes(), pki.pkcs12_password.encode())
    # Without a key nothing marks one certificate as "the" certificate: all come back as
    # additional certificates, the leaf with its friendly name.
    assert keyless.key is None
    first = keyless.additional_certs[0]
    assert (first.certificate, first.friendly_name) == (leaf, b"client")
    with pytest.raises(ValueError):
        load_pem_private_key(client.encrypted_key.read_bytes(), b"wrong")


def test_good_names_and_chain(pki: TestPKI) -> None:
    from cryptography import x509

    chain = x509.load_pem_x509_certificates(pki.good.chain.read_bytes())
    assert len(chain) == 2
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert chain[1].subject == x509.load_pem_x509_certificate(pki.intermediate.read_bytes()).subject


def test_build_reuses_keys_and_repairs_a_broken_set(tmp_path: Path) -> None:
    first = build_test_pki(tmp_path)
    key, cert = first.good.key.read_bytes(), first.good.cert.read_bytes()
    again = build_test_pki(tmp_path)
    assert again == first
    assert again.good.cert.read_bytes() == cert  # a valid set is left alone
    first.intermediate.unlink()
    build_test_pki(tmp_path)
    assert first.good.key.read_bytes() == key  # keys survive a repair
    assert first.good.cert.read_bytes() != cert  # certificates are re-issued under it


def test_no_port_clash_between_concurrent_peers(pki: TestPKI) -> None:
    with (
        openssl_server(openssl_args(pki, "good")) as a,
        openssl_server(openssl_args(pki, "good")) as b,
        gnutls_server(gnutls_args(pki, "good")) as c,
    ):
        ports = {a.port, b.port, c.port}
    assert len(ports) == 3
    for port in ports:  # all stopped
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


@pytest.mark.parametrize("which", ["gnutls-serv", "vsftpd"])
def test_peer_retries_when_its_port_was_taken(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    # Someone takes the port between our pick and the peer's bind. gnutls-serv then keeps
    # running on IPv6 only and vsftpd exits; either way we must not hand out the stranger.
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        taken = stranger.getsockname()[1]
        picks = iter([taken])
        real_free_port = peers.free_port
        monkeypatch.setattr(peers, "free_port", lambda: next(picks, None) or real_free_port())
        start = (
            gnutls_server(gnutls_args(pki, "good"))
            if which == "gnutls-serv"
            else vsftpd_server(None)
        )
        with start as peer:
            assert peer.port != taken
            assert port_accepts("127.0.0.1", peer.port)


def test_peer_that_cannot_start_fails_with_its_output(pki: TestPKI) -> None:
    with (
        pytest.raises(pytest.fail.Exception, match=re.escape("No such file")),
        openssl_server(["-cert", pki.directory / "missing.crt"]),
    ):
        pass
