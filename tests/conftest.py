"""Shared fixtures: the test PKI and real peers on 127.0.0.1.

Peers are function-scoped (each starts in tens of milliseconds) so that one test's
connections never show up in another test's server log. Parametrize ``openssl_peer`` /
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
from peers import Peer, gnutls_args, gnutls_server, openssl_args, openssl_server, vsftpd_server

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
