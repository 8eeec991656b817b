"""Every outcome of the SPEC table, reproduced against a real peer.

Peers: the system `openssl s_server` and `gnutls-serv` (started per test by the fixtures in
conftest.py), vsftpd for FTP AUTH TLS, the stdlib-ssl server in tlspeers.py for a close right
after the handshake, and scripted byte servers (bytepeers.py) for what no TLS library will do.
Each test asserts the outcome, the phase, the wire facts behind it and the diagnosis cause.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from bytepeers import (
    alert_after_hello,
    close_after_hello,
    garbage,
    plaintext_banner,
    receive_record,
    reset_after_hello,
    serve_script,
    silent,
)
from peers import Peer, free_port, gnutls_args, gnutls_server, openssl_server
from probing import causes, probe_port
from tlspeers import close_after_handshake

from probe.pki import TestPKI

# --- connected ------------------------------------------------------------------------------


@pytest.mark.parametrize("openssl_peer", ["good"], indirect=True)
async def test_connected_openssl_tls13(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert (r.outcome, r.phase) == ("connected", "done")
    assert r.negotiated is not None and r.negotiated.version == "TLSv1.3"
    assert r.negotiated.cipher is not None and r.negotiated.cipher.code.startswith("0x130")
    assert r.verification is not None and r.verification.verified
    assert r.verification.chain_sent == 2
    assert r.server_certificates[0].subject.startswith("CN=")
    assert r.diagnosis == ()


@pytest.mark.parametrize("openssl_peer", ["tls12-only"], indirect=True)
async def test_connected_tls12_reports_suite_and_group(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca, ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    assert r.outcome == "connected"
    assert r.negotiated is not None and r.negotiated.version == "TLSv1.2"
    assert r.negotiated.cipher is not None
    assert r.negotiated.cipher.code == "0xC02F"
    assert r.negotiated.cipher.iana == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert r.negotiated.group in ("x25519", "X25519")


@pytest.mark.parametrize("openssl_peer", ["hello-retry"], indirect=True)
async def test_connected_after_hello_retry_request(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca, trace=True)
    assert r.outcome == "connected"
    assert r.negotiated is not None and r.negotiated.version == "TLSv1.3"
    assert r.negotiated.group == "secp384r1"
    assert [t.what for t in r.trace if t.direction == "server"][:2] == [
        "HelloRetryRequest",
        "ServerHello",
    ] or [t.what for t in r.trace if t.direction == "server"][:3] == [
        "HelloRetryRequest",
        "ChangeCipherSpec",
        "ServerHello",
    ]


@pytest.mark.parametrize("gnutls_peer", ["good"], indirect=True)
async def test_connected_gnutls(gnutls_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(gnutls_peer.port, ca=pki.ca)
    assert r.outcome == "connected", r.diagnosis
    assert r.negotiated is not None and r.negotiated.version == "TLSv1.3"


async def test_connected_ftp_auth_tls(vsftpd_tls: Peer, pki: TestPKI) -> None:
    r = await probe_port(vsftpd_tls.port, ca=pki.ca, starttls="ftp")
    assert r.outcome == "connected", r.diagnosis
    assert r.starttls is not None and r.starttls.upgraded
    assert any(line.startswith("S: 234") for line in r.starttls.transcript)
    assert "C: AUTH TLS" in r.starttls.transcript


# --- tcp --------------------------------------------------------------------------------------


async def test_refused() -> None:
    r = await probe_port(free_port())
    assert (r.outcome, r.phase) == ("refused", "tcp")
    assert causes(r) == ["port_closed"]


async def test_unreachable_when_syn_is_dropped() -> None:
    # A listener that never accepts, with its accept queue full: Linux drops further SYNs,
    # so connect() hangs until our deadline, as behind a firewall that drops packets.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        await trio.sleep(0.1)
        r = await probe_port(port, timeout=0.5)
    finally:
        for s in fillers:
            s.close()
        lsock.close()
    assert (r.outcome, r.phase) == ("unreachable", "tcp")
    assert causes(r) == ["host_unreachable"]


async def test_dns_failure_without_touching_the_network() -> None:
    # A resolver hook that answers "no such name", so the test sends no DNS packet anywhere
    # (only loopback exists); the probe's classification path is the real one.
    class NoNames(trio.abc.HostnameResolver):
        async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # type: ignore[no-untyped-def]
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async def getnameinfo(self, sockaddr, flags):  # type: ignore[no-untyped-def]
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    old = trio.socket.set_custom_hostname_resolver(NoNames())
    try:
        r = await probe_port(443, host="partner.invalid")
    finally:
        trio.socket.set_custom_hostname_resolver(old)
    assert (r.outcome, r.phase) == ("dns_failure", "tcp")
    assert causes(r) == ["name_not_resolved"]


# --- starttls / not TLS ---------------------------------------------------------------------------


async def test_starttls_refused_by_vsftpd_without_tls(vsftpd_plain: Peer) -> None:
    r = await probe_port(vsftpd_plain.port, starttls="ftp")
    assert (r.outcome, r.phase) == ("starttls_refused", "starttls")
    assert r.starttls is not None and not r.starttls.upgraded
    assert any(line.startswith("S: 5") for line in r.starttls.transcript)
    assert causes(r) == ["starttls_refused"]


async def test_not_tls_plaintext_banner() -> None:
    async with serve_script(plaintext_banner(b"220 CFT ready, no SSL here\r\n")) as port:
        r = await probe_port(port)
    assert (r.outcome, r.phase) == ("not_tls", "handshake")
    assert causes(r) == ["peer_not_tls"]
    assert "220 CFT ready" in (r.diagnosis[0].detail or "")


async def test_not_tls_garbage() -> None:
    async with serve_script(garbage()) as port:
        r = await probe_port(port)
    assert r.outcome == "not_tls"


# --- versions and suites ----------------------------------------------------------------------


@pytest.mark.parametrize("openssl_peer", ["tls10-only"], indirect=True)
async def test_version_mismatch_names_what_the_partner_speaks(
    openssl_peer: Peer, pki: TestPKI
) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert (r.outcome, r.phase) == ("version_mismatch", "handshake")
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("peer", 70)
    assert r.partner_versions == ("TLSv1.0",)
    assert causes(r) == ["partner_version_too_old"]
    assert "--tls-min 1.0" in (r.diagnosis[0].detail or "")
    # ... and the advice works.
    again = await probe_port(openssl_peer.port, ca=pki.ca, tls_min="1.0")
    assert again.outcome == "connected", again.diagnosis
    assert again.negotiated is not None and again.negotiated.version == "TLSv1.0"


@pytest.mark.parametrize("openssl_peer", ["tls12-only"], indirect=True)
async def test_a_tls12_partner_asked_for_tls13_is_not_called_old(
    openssl_peer: Peer, pki: TestPKI
) -> None:
    """--tls 1.3 against a TLS 1.2 server: TLS 1.2 is current, so no "upgrade the partner";
    the advice names --tls (--tls-min cannot be combined with it) and works."""
    r = await probe_port(openssl_peer.port, ca=pki.ca, tls="1.3")
    assert r.outcome == "version_mismatch"
    assert causes(r) == ["version_mismatch"]
    detail = r.diagnosis[0].detail or ""
    assert "does not speak TLSv1.3" in detail and "`--tls 1.2`" in detail, detail
    again = await probe_port(openssl_peer.port, ca=pki.ca, tls="1.2")
    assert again.outcome == "connected", again.diagnosis


@pytest.mark.parametrize("openssl_peer", ["tls13-only"], indirect=True)
async def test_version_mismatch_partner_too_new(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca, tls_max="1.2")
    assert r.outcome == "version_mismatch"
    assert r.partner_versions == ("TLSv1.3",)
    assert causes(r) == ["partner_version_too_new"]


async def test_a_cn_only_certificate_does_not_name_the_host(tmp_path: Path) -> None:
    """A certificate with the host only in its CN (no subjectAltName): OpenSSL's check falls
    back to the CN unless told not to; tlsprobe follows RFC 9525 (as service-identity,
    browsers and Go do), so OpenSSL's verdict and the explanation agree."""
    cert, key = tmp_path / "cn-only.pem", tmp_path / "cn-only.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with openssl_server(["-cert", cert, "-key", key]) as peer:
        r = await probe_port(peer.port, ca=cert, sni="localhost")
    assert r.outcome == "hostname_mismatch", r.diagnosis
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("local", 42)
    assert "no subjectAltName" in (r.diagnosis[0].detail or "")


async def test_a_refused_server_hello_verifies_nothing(pki: TestPKI) -> None:
    """GnuTLS limited to TLS 1.1 answers our 1.2-1.3 hello with a TLS 1.1 ServerHello and its
    chain; we refuse the version (alert 70) before OpenSSL checks anything. The chain is
    reported from the wire, but nothing may claim it was verified."""
    priority = "NORMAL:-VERS-ALL:+VERS-TLS1.1"
    with gnutls_server(gnutls_args(pki, "good", "--priority", priority)) as peer:
        r = await probe_port(peer.port)
    assert r.outcome == "version_mismatch"
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("local", 70)
    assert r.server_certificates, "the chain sent is still shown"
    v = r.verification
    assert v is not None and not v.verified and not v.errors
    assert v.chain_verified == () and v.hostname_matched is None


@pytest.mark.parametrize("gnutls_peer", ["tls13-only"], indirect=True)
async def test_version_mismatch_gnutls(gnutls_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(gnutls_peer.port, ca=pki.ca, tls="1.2")
    assert r.outcome == "version_mismatch"
    assert r.alert is not None and r.alert.origin == "peer"


@pytest.mark.parametrize("openssl_peer", ["no-shared-cipher"], indirect=True)
async def test_cipher_mismatch(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert (r.outcome, r.phase) == ("cipher_mismatch", "handshake")
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("peer", 40)
    assert causes(r) == ["no_shared_cipher"]


async def test_cipher_mismatch_insufficient_security() -> None:
    async with serve_script(alert_after_hello(71)) as port:
        r = await probe_port(port)
    assert r.outcome == "cipher_mismatch"
    assert r.alert is not None and r.alert.name == "insufficient_security"
    assert causes(r) == ["insufficient_security"]


# --- client certificates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("openssl_peer", "alert"),
    [("client-cert-required-tls12", 40), ("client-cert-required-tls13", 116)],
    indirect=["openssl_peer"],
)
async def test_client_cert_required_openssl(openssl_peer: Peer, alert: int, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert r.outcome == "client_cert_required"
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("peer", alert)
    assert r.client_auth.requested and not r.client_auth.sent
    assert r.client_auth.ca_names and "CN=" in r.client_auth.ca_names[0]
    assert r.client_auth.ca_names_bytes > 0
    assert r.phase == ("handshake" if alert == 40 else "post_handshake")
    assert causes(r)[0] == "client_cert_missing"


@pytest.mark.parametrize(
    "gnutls_peer", ["client-cert-required-tls12", "client-cert-required-tls13"], indirect=True
)
async def test_client_cert_required_gnutls(gnutls_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(gnutls_peer.port, ca=pki.ca)
    assert r.outcome == "client_cert_required", (r.alert, r.diagnosis)
    assert r.client_auth.requested and not r.client_auth.sent


@pytest.mark.parametrize(
    "openssl_peer", ["client-cert-required-tls12", "client-cert-required-tls13"], indirect=True
)
async def test_client_cert_accepted(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(
        openssl_peer.port, ca=pki.ca, cert=pki.client.pkcs12, password=pki.pkcs12_password
    )
    assert r.outcome == "connected", (r.alert, r.diagnosis)
    assert r.client_auth.sent and r.client_auth.chains_to_requested_ca is True


@pytest.mark.parametrize(
    ("openssl_peer", "phase"),
    [("client-cert-required-tls12", "handshake"), ("client-cert-required-tls13", "post_handshake")],
    indirect=["openssl_peer"],
)
async def test_client_cert_rejected_unknown_ca(
    openssl_peer: Peer, phase: str, pki: TestPKI
) -> None:
    r = await probe_port(
        openssl_peer.port, ca=pki.ca, cert=pki.client_untrusted.cert, key=pki.client_untrusted.key
    )
    assert (r.outcome, r.phase) == ("client_cert_rejected", phase)
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("peer", 48)
    assert r.client_auth.sent and r.client_auth.chains_to_requested_ca is False
    assert "client_cert_unknown_ca" in causes(r)


@pytest.mark.parametrize("openssl_peer", ["client-cert-required-tls12"], indirect=True)
async def test_client_cert_rejected_expired(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(
        openssl_peer.port,
        ca=pki.ca,
        cert=pki.client_expired.chain,
        key=pki.client_expired.encrypted_key,
        password=pki.key_password,
    )
    assert r.outcome == "client_cert_rejected"
    assert r.alert is not None and r.alert.code == 45
    assert causes(r) == ["client_cert_expired"]


@pytest.mark.parametrize("openssl_peer", ["client-cert-optional-tls13"], indirect=True)
async def test_client_cert_optional_connects_without_one(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert r.outcome == "connected"
    assert r.client_auth.requested and not r.client_auth.sent


# --- server certificates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("openssl_peer", "outcome", "cause"),
    [
        ("expired", "server_cert_expired", "server_cert_expired"),
        ("not-yet-valid", "server_cert_not_yet_valid", "server_cert_not_yet_valid"),
        ("self-signed", "server_cert_untrusted", "server_cert_self_signed"),
        ("unknown-ca", "server_cert_untrusted", "server_cert_unknown_ca"),
        ("missing-intermediate", "server_cert_untrusted", "server_cert_missing_intermediate"),
        ("weak-key", "server_cert_untrusted", "server_cert_weak_key"),
    ],
    indirect=["openssl_peer"],
)
async def test_server_certificate_outcomes(
    openssl_peer: Peer, outcome: str, cause: str, pki: TestPKI
) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert (r.outcome, r.phase) == (outcome, "verify")
    assert causes(r)[0] == cause
    assert r.alert is not None and r.alert.origin == "local"
    assert r.verification is not None and r.verification.errors
    assert r.server_certificates, "the chain is reported even when it fails"


@pytest.mark.parametrize(
    ("openssl_peer", "also"),
    [("expired", "server_cert_expired"), ("wrong-host", "hostname_mismatch")],
    indirect=["openssl_peer"],
)
async def test_problems_behind_the_first_are_listed_too(openssl_peer: Peer, also: str) -> None:
    """Without the CA, OpenSSL stops at the unknown issuer; the expiry or the wrong name the
    certificate also has comes after it, so fixing the trust store does not hide it."""
    r = await probe_port(openssl_peer.port)
    assert r.outcome == "server_cert_untrusted"
    got = causes(r)
    assert got[0] == "server_cert_unknown_ca" and also in got, got
    extra = next(d for d in r.diagnosis if d.cause == also)
    assert (extra.detail or "").startswith("also: "), extra.detail


@pytest.mark.parametrize("openssl_peer", ["expired"], indirect=True)
async def test_no_verify_connects_and_still_reports(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca, verify=False)
    assert r.outcome == "connected"
    assert r.verification is not None and not r.verification.verified
    assert r.verification.errors[0].name == "CERT_HAS_EXPIRED"
    assert r.server_certificates[0].days_left < 0


@pytest.mark.parametrize("openssl_peer", ["wrong-host"], indirect=True)
async def test_hostname_mismatch(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca)
    assert (r.outcome, r.phase) == ("hostname_mismatch", "verify")
    assert causes(r) == ["hostname_mismatch"]
    assert "127.0.0.1" in (r.diagnosis[0].detail or "")
    # An IP address is checked by OpenSSL too (iPAddress SANs): bad_certificate, as from
    # s_client -verify_ip, not the internal_error a callback's veto would send.
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("local", 42), r.alert
    by_name = await probe_port(openssl_peer.port, ca=pki.ca, sni="localhost")
    assert by_name.outcome == "hostname_mismatch"
    # OpenSSL's own host check: the client refuses with bad_certificate, as real clients do.
    assert by_name.alert is not None and (by_name.alert.origin, by_name.alert.code) == ("local", 42)
    assert "localhost" in (by_name.diagnosis[0].detail or "")


@pytest.mark.parametrize("openssl_peer", ["wrong-host"], indirect=True)
async def test_untrusted_chain_does_not_claim_the_name_matches(openssl_peer: Peer) -> None:
    """Without the lab's CA the chain fails first and OpenSSL stops there; the name is still
    looked at for the report, never shown as matching when it does not."""
    r = await probe_port(openssl_peer.port)
    assert r.outcome == "server_cert_untrusted"
    assert r.verification is not None and r.verification.hostname == "127.0.0.1"
    assert r.verification.hostname_matched is False
    assert "127.0.0.1" in (r.verification.hostname_detail or "")


@pytest.mark.parametrize("openssl_peer", ["good"], indirect=True)
async def test_hostname_by_sni_name(openssl_peer: Peer, pki: TestPKI) -> None:
    good = await probe_port(openssl_peer.port, ca=pki.ca, sni="localhost")
    assert good.outcome == "connected"
    bad = await probe_port(openssl_peer.port, ca=pki.ca, sni="partner.example")
    assert bad.outcome == "hostname_mismatch"
    # MQ checks the chain, not the host name: with a channel name the same server connects.
    mq = await probe_port(openssl_peer.port, ca=pki.ca, mq_channel="TO.QMGR1")
    assert mq.outcome == "connected"
    assert mq.offered["sni"] == "to2e-qmgr1.chl.mq.ibm.com"


# --- the peer ends it -------------------------------------------------------------------------


async def test_peer_error_internal_error() -> None:
    async with serve_script(alert_after_hello(80)) as port:
        r = await probe_port(port)
    assert (r.outcome, r.phase) == ("peer_error", "handshake")
    assert r.alert is not None and (r.alert.origin, r.alert.code) == ("peer", 80)
    assert causes(r) == ["peer_internal_error"]


@pytest.mark.parametrize("handler", [reset_after_hello, close_after_hello])
async def test_peer_closed(handler: object) -> None:
    async with serve_script(handler) as port:  # type: ignore[arg-type]
        r = await probe_port(port)
    assert (r.outcome, r.phase) == ("peer_closed", "handshake")
    assert causes(r) == ["peer_closed_during_handshake"]
    # OpenSSL's own alert to the EOF went nowhere: the result names no alert.
    assert r.alert is None


async def test_timeout_on_silence() -> None:
    async with serve_script(silent) as port:
        with trio.fail_after(5):
            r = await probe_port(port, timeout=0.5)
    assert (r.outcome, r.phase) == ("timeout", "handshake")
    assert causes(r) == ["handshake_timeout"]


@pytest.mark.parametrize("close_notify", [True, False])
async def test_post_handshake_close(pki: TestPKI, close_notify: bool) -> None:
    async with close_after_handshake(
        pki.good.chain, pki.good.key, close_notify=close_notify
    ) as port:
        r = await probe_port(port, ca=pki.ca)
    assert (r.outcome, r.phase) == ("post_handshake_close", "post_handshake")
    assert r.negotiated is not None and r.negotiated.version == "TLSv1.3"
    assert causes(r) == ["post_handshake_rejected"]


async def test_protocol_error_server_picks_a_suite_never_offered() -> None:
    from probe.wire.messages import build_server_hello
    from probe.wire.record import build_records

    async def handler(stream: trio.SocketStream) -> None:
        await receive_record(stream)
        body = build_server_hello(version=0x0303, random=bytes(range(32)), cipher_suite=0x1337)
        await stream.send_all(build_records(22, 0x0303, body))
        await trio.sleep(1)

    async with serve_script(handler) as port:
        r = await probe_port(port, tls="1.2")
    assert (r.outcome, r.phase) == ("protocol_error", "handshake")
    assert r.alert is not None and r.alert.origin == "local"
    assert causes(r) == ["protocol_violation"]


# --- what the human view claims -----------------------------------------------------------------


def _human(port: int, *args: str | Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "probe", f"127.0.0.1:{port}", *map(str, args)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.stdout


@pytest.mark.parametrize("openssl_peer", ["not-yet-valid"], indirect=True)
def test_human_view_of_a_certificate_not_valid_yet(openssl_peer: Peer, pki: TestPKI) -> None:
    out = _human(openssl_peer.port, "--ca", pki.ca)
    assert "(not valid yet)" in out and " from 20" in out, out  # its start date, not only its end
    assert "(server's choice; no session)" in out, out  # the handshake never completed


@pytest.mark.parametrize("openssl_peer", ["wrong-host"], indirect=True)
def test_human_view_with_mq_channel_does_not_claim_a_name_check(
    openssl_peer: Peer, pki: TestPKI
) -> None:
    out = _human(openssl_peer.port, "--ca", pki.ca, "--mq-channel", "TO.QMGR1")
    assert "chain verified; host name not checked" in out, out
    assert "name verified" not in out, out
