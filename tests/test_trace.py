"""probe --trace: what crossed the wire, and what OpenSSL decrypted inside the encrypted records.

TLS 1.3 encrypts everything after the ServerHello, so a wire-only ladder shows "encrypted record"
where the CertificateRequest and the alert that decides the outcome are. OpenSSL's message
callback (probe.engine) gives each message as decrypted; the trace puts it under the record
that carried it. Ground truth is `openssl s_client -msg` of the same handshakes.
"""

from __future__ import annotations

import pytest
from peers import Peer
from probing import probe_port

from probe.pki import TestPKI


@pytest.mark.parametrize("openssl_peer", ["client-cert-required-tls13"], indirect=True)
async def test_tls13_trace_names_the_encrypted_messages(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca, tls="1.3", trace=True)
    assert r.outcome == "client_cert_required"
    decrypted = [(e.direction, e.what) for e in r.trace if e.what.endswith("(decrypted)")]
    # The order s_client -msg prints for the same handshake.
    assert decrypted == [
        ("server", "EncryptedExtensions (decrypted)"),
        ("server", "CertificateRequest (decrypted)"),
        ("server", "Certificate (decrypted)"),
        ("server", "CertificateVerify (decrypted)"),
        ("server", "Finished (decrypted)"),
        ("client", "Certificate (decrypted)"),
        ("client", "Finished (decrypted)"),
        ("server", "Alert fatal certificate_required(116) (decrypted)"),
    ]
    # Each follows the encrypted record that carried it.
    for i, e in enumerate(r.trace):
        if e.what.endswith("(decrypted)"):
            before = r.trace[i - 1]
            assert before.what.startswith("encrypted record") or before.what.endswith(
                "(decrypted)"
            ), (before.what, e.what)
    request = next(e for e in r.trace if e.what == "CertificateRequest (decrypted)")
    assert request.hex.startswith("0d")  # the plaintext message, header included
    assert any("CA" in line or "signature" in line for line in request.detail), request.detail


@pytest.mark.parametrize("openssl_peer", ["tls12-only"], indirect=True)
async def test_tls12_trace_shows_the_finished_messages(openssl_peer: Peer, pki: TestPKI) -> None:
    r = await probe_port(openssl_peer.port, ca=pki.ca, trace=True)
    assert r.outcome == "connected"
    assert ("client", "Finished (decrypted)") in [(e.direction, e.what) for e in r.trace]
    assert ("server", "Finished (decrypted)") in [(e.direction, e.what) for e in r.trace]
    plain = [e.what for e in r.trace if not e.what.endswith("(decrypted)")]
    assert plain[:2] == ["ClientHello", "ServerHello"]
