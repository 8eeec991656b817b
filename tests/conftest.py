"""Shared fixtures: the test PKI and real peers on 127.0.0.1.

Peers are function-scoped (each starts in tens of milliseconds) so that one test's
connections never show up in another test's server log. The STARTTLS servers (exim,
dovecot, slapd, PostgreSQL) are module-scoped instead: they take longer to start
(PostgreSQL's initdb most of all) and no test reads their logs. Parametrize ``openssl_peer`` /
``gnutls_peer`` indirectly with a configuration name from `peers.OPENSSL_CONFIGS` /
`peers.GNUTLS_CONFIGS`::

    @pytest.mark.parametrize("openssl_peer", ["expired"], indirect=True)
    async def test_x(openssl_peer: Peer) -> None: ...

Hostile byte peers are async; use ``async with serve_script(handler) as port`` from
`bytepeers` inside the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from peers import (
    Peer,
    gnutls_args,
    gnutls_server,
    openssl_args,
    openssl_server,
    vsftpd_server,
)
from servicepeers import dovecot_server, exim_server, postgres_server, slapd_server

from probe.pki import TestPKI, build_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return build_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def openssl_peer(request: pytest.FixtureRequest, pki: TestPKI) -> Iterator[Peer]:
    """``openssl s_server`` in the configuration named by the indirect parameter."""
    with openssl_server(openssl_args(pki, request.param)) as peer:
        yield peer


@pytest.fixture
def gnutls_peer(request: pytest.FixtureRequest, pki: TestPKI) -> Iterator[Peer]:
    """``gnutls-serv`` in the configuration named by the indirect parameter."""
    with gnutls_server(gnutls_args(pki, request.param)) as peer:
        yield peer


@pytest.fixture
def vsftpd_tls(pki: TestPKI) -> Iterator[Peer]:
    """vsftpd answering AUTH TLS with 234 and the good chain."""
    with vsftpd_server(pki.good) as peer:
        yield peer


@pytest.fixture
def vsftpd_plain() -> Iterator[Peer]:
    """vsftpd with SSL disabled: AUTH TLS is refused."""
    with vsftpd_server(None) as peer:
        yield peer


# --- STARTTLS servers: "*_tls" upgrade with the good chain; the others do not offer or refuse.


@pytest.fixture(scope="module")
def smtp_tls(pki: TestPKI) -> Iterator[Peer]:
    """exim: EHLO lists STARTTLS, STARTTLS answered 220."""
    with exim_server(pki.good, "tls") as peer:
        yield peer


@pytest.fixture(scope="module")
def smtp_no_tls(pki: TestPKI) -> Iterator[Peer]:
    """exim without STARTTLS in its EHLO reply."""
    with exim_server(pki.good, "no-tls") as peer:
        yield peer


@pytest.fixture(scope="module")
def smtp_broken_tls(pki: TestPKI) -> Iterator[Peer]:
    """exim advertising STARTTLS and refusing it (454): its certificate file is missing."""
    with exim_server(pki.good, "broken-tls") as peer:
        yield peer


@pytest.fixture(scope="module")
def imap_tls(pki: TestPKI) -> Iterator[Peer]:
    with dovecot_server("imap", pki.good) as peer:
        yield peer


@pytest.fixture(scope="module")
def imap_no_tls() -> Iterator[Peer]:
    """dovecot with ssl = no: STARTTLS not in CAPABILITY."""
    with dovecot_server("imap", None) as peer:
        yield peer


@pytest.fixture(scope="module")
def pop3_tls(pki: TestPKI) -> Iterator[Peer]:
    with dovecot_server("pop3", pki.good) as peer:
        yield peer


@pytest.fixture(scope="module")
def pop3_no_tls() -> Iterator[Peer]:
    """dovecot with ssl = no: STLS not in CAPA."""
    with dovecot_server("pop3", None) as peer:
        yield peer


@pytest.fixture(scope="module")
def ldap_tls(pki: TestPKI) -> Iterator[Peer]:
    with slapd_server(pki.good) as peer:
        yield peer


@pytest.fixture(scope="module")
def ldap_no_tls() -> Iterator[Peer]:
    """slapd without TLS: the StartTLS extended operation is answered with an error."""
    with slapd_server(None) as peer:
        yield peer


@pytest.fixture(scope="module")
def postgres_tls(pki: TestPKI) -> Iterator[Peer]:
    with postgres_server(pki.good) as peer:
        yield peer


@pytest.fixture(scope="module")
def postgres_no_tls() -> Iterator[Peer]:
    """PostgreSQL with ssl = off: SSLRequest answered N."""
    with postgres_server(None) as peer:
        yield peer
