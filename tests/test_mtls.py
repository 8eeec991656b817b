"""Mutual TLS against real servers: the full grid of client identities, both stacks, both versions.

Servers: ``openssl s_server -Verify 1 -verify_return_error -CAfile ca.crt`` and ``gnutls-serv
--require-client-cert --verify-client-cert --x509cafile ca.crt`` (configurations in
peers.py), each in TLS 1.2 and TLS 1.3. Both send the test root as the one CA name they
accept. Client identities: none; the trusted client as a PEM chain + key and as PKCS#12; a
client certificate from another root; an expired one from the trusted root.

SPEC outcomes: none -> ``client_cert_required``; trusted -> ``connected``; untrusted and
expired -> ``client_cert_rejected``. In TLS 1.3 the verdict arrives after our Finished (RFC 8446
§4.4.2.4), so those are ``post_handshake`` findings; in TLS 1.2 they end the handshake.
Whatever the phase, the diagnosis names the certificate sent and the CA names wanted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import Peer, gnutls_args, gnutls_server, openssl_args, openssl_server
from probing import causes, probe_port

from probe.identity import load_identity, validity_warning
from probe.pki import TestPKI

SERVERS = [
    ("openssl", "1.2"),
    ("openssl", "1.3"),
    ("gnutls", "1.2"),
    ("gnutls", "1.3"),
]
ROOT_CN = "tlsprobe lab root CA"


@pytest.fixture(params=SERVERS, ids=[f"{s}-tls{v}" for s, v in SERVERS])
def mtls_server(request: pytest.FixtureRequest, pki: TestPKI) -> Iterator[tuple[Peer, str]]:
    stack, version = request.param
    config = f"client-cert-required-tls{version.replace('.', '')}"
    if stack == "openssl":
        with openssl_server(openssl_args(pki, config)) as peer:
            yield peer, version
    else:
        with gnutls_server(gnutls_args(pki, config)) as peer:
            yield peer, version


def identity_args(pki: TestPKI, name: str) -> dict[str, Any]:
    if name == "none":
        return {}
    if name == "trusted-pem":
        return {"cert": pki.client.chain, "key": pki.client.key}
    if name == "trusted-p12":
        return {"cert": pki.client.pkcs12, "password": pki.pkcs12_password}
    if name == "untrusted":
        return {"cert": pki.client_untrusted.chain, "key": pki.client_untrusted.key}
    if name == "expired":
        return {"cert": pki.client_expired.chain, "key": pki.client_expired.key}
    raise AssertionError(name)


EXPECTED = {
    "none": "client_cert_required",
    "trusted-pem": "connected",
    "trusted-p12": "connected",
    "untrusted": "client_cert_rejected",
    "expired": "client_cert_rejected",
}
SUBJECTS = {
    "trusted-pem": "CN=tlsprobe client",
    "trusted-p12": "CN=tlsprobe client",
    "untrusted": "CN=untrusted client",
    "expired": "CN=expired client",
}


@pytest.mark.parametrize("who", list(EXPECTED))
async def test_mutual_tls_grid(mtls_server: tuple[Peer, str], who: str, pki: TestPKI) -> None:
    peer, version = mtls_server
    r = await probe_port(peer.port, ca=pki.ca, tls=version, **identity_args(pki, who))
    assert r.outcome == EXPECTED[who], (r.phase, r.alert, r.diagnosis)
    assert r.negotiated is not None and r.negotiated.version == f"TLSv{version}"
    # What the server asked for, from the CertificateRequest (encrypted in TLS 1.3).
    auth = r.client_auth
    assert auth.requested
    assert any(ROOT_CN in name for name in auth.ca_names), auth.ca_names
    assert auth.ca_names_bytes > 0
    # TLS 1.2: the plaintext CertificateRequest; TLS 1.3: the message as OpenSSL decrypted it
    # (which has no certificate_types).
    assert auth.signature_algorithms
    assert bool(auth.certificate_types) == (version == "1.2")
    if who == "none":
        assert not auth.sent and auth.sent_subject is None
        assert r.phase == ("handshake" if version == "1.2" else "post_handshake")
        assert causes(r)[0] == "client_cert_missing"
        detail = r.diagnosis[0].detail or ""
        assert "no client certificate sent" in detail
        assert f"1 CA: CN={ROOT_CN}" in detail, detail
        return
    assert auth.sent and auth.sent_subject is not None
    assert auth.sent_subject.startswith(SUBJECTS[who])
    if who.startswith("trusted"):
        assert auth.chains_to_requested_ca is True
        assert r.diagnosis == ()
        return
    # Rejected: the alert is the server's, the detail says what was sent and what was wanted.
    assert r.alert is not None and r.alert.origin == "peer", r.alert
    assert r.phase in ("handshake", "post_handshake")
    details = " | ".join(d.detail or "" for d in r.diagnosis)
    assert SUBJECTS[who] in details, details
    assert ROOT_CN in details and "1 CA" in details, details
    if who == "untrusted":
        assert auth.chains_to_requested_ca is False
        assert causes(r)[0] == "client_cert_no_matching_ca"
        assert "untrusted intermediate CA" in details  # the issuer, to compare with the wanted CA
    else:
        assert auth.chains_to_requested_ca is True
        # OpenSSL answers 45 certificate_expired, GnuTLS 49 access_denied: either way the
        # expiry is named first, since we know our certificate is past its notAfter.
        assert causes(r)[0] == "client_cert_expired"
        assert "expired on" in (r.diagnosis[0].detail or "") or r.alert.code == 45


@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_requested_signature_algorithms_are_the_servers_list(
    pki: TestPKI, version: str
) -> None:
    """s_server -client_sigalgs sets what its CertificateRequest asks for: the same list, in
    order, in both versions (in TLS 1.3 read after decryption, through the message callback)."""
    config = f"client-cert-required-tls{version.replace('.', '')}"
    wanted = "RSA-PSS+SHA256:ECDSA+SHA384:ed25519"
    with openssl_server(openssl_args(pki, config, "-client_sigalgs", wanted)) as peer:
        r = await probe_port(peer.port, ca=pki.ca, tls=version)
    assert r.outcome == "client_cert_required", r.diagnosis
    assert r.client_auth.signature_algorithms == (
        "rsa_pss_rsae_sha256",
        "ecdsa_secp384r1_sha384",
        "ed25519",
    )


# --- the expired-certificate warning (probe.identity.validity_warning) -------------------------


def test_expired_client_certificate_warns_in_one_line(pki: TestPKI) -> None:
    ident = load_identity(pki.client_expired.chain, pki.client_expired.key)
    warning = validity_warning(ident)
    assert warning is not None and "\n" not in warning
    assert warning.startswith("warning: ")
    assert "CN=expired client" in warning and "expired on" in warning
    assert str(pki.client_expired.chain) in warning
    assert "days ago" in warning


def test_valid_client_certificate_gives_no_warning(pki: TestPKI) -> None:
    assert validity_warning(load_identity(pki.client.pkcs12, None, pki.pkcs12_password)) is None


def test_not_yet_valid_client_certificate_warns(pki: TestPKI) -> None:
    ident = load_identity(pki.client.chain, pki.client.key)
    before = ident.cert.not_valid_before_utc - dt.timedelta(days=3)
    warning = validity_warning(ident, now=before)
    assert warning is not None and "not valid before" in warning and "in 3 days" in warning


def test_validity_warning_does_not_stop_the_probe(pki: TestPKI, tmp_path: Path) -> None:
    # The warning is advice: loading the identity (what the CLI does next) still works.
    ident = load_identity(pki.client_expired.pkcs12, None, pki.pkcs12_password)
    assert ident.expired and validity_warning(ident) is not None
