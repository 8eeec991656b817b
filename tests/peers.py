"""Real TLS peers for the tests: ``openssl s_server``, ``gnutls-serv`` and ``vsftpd``.

Theory of operation
-------------------
Each peer is a child process started in its own session (``start_new_session=True``), so
its process group id is its pid and teardown can signal the whole group (vsftpd forks a
child per connection; a shell wrapper would too): SIGTERM, a short wait, then SIGKILL.
Teardown runs however the test ends, so no peer outlives its test.

Ready means "a client can connect now", decided without a race:

* ``openssl s_server`` is told ``-accept 127.0.0.1:0``; the kernel picks a free port and
  s_server prints ``ACCEPT 127.0.0.1:PORT`` once it listens. We read that line rather than
  probe the port because a probe connection would count against ``-naccept`` and leave a
  handshake error in the log. (``-quiet`` suppresses the ACCEPT line, so it is not used.)
* ``gnutls-serv`` and ``vsftpd`` need a port number up front. We take one the kernel has
  just handed out and start the peer. If another process grabbed the port in between, we
  retry with a new one. A bare "the port accepts" would be fooled by that other process,
  so gnutls-serv is ready when it logs its IPv4 listener, and vsftpd when a connect gets
  its banner with a per-instance token.

Either way the wait has a deadline; a peer that exits or stays silent fails the test with
everything it printed.

s_server reads stdin and shuts down at EOF (it prints ``DONE``), so its stdin is a pipe we
hold open. All output goes to one log file per peer; `Peer.output` reads it back for
assertions about what the server saw.

The STARTTLS system services (exim, dovecot, slapd, PostgreSQL) run on the same plumbing
and live in `servicepeers`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
import trio

from probe.pki import IdentityFiles, TestPKI

HOST: Final = "127.0.0.1"
START_DEADLINE: Final = 10.0  # seconds; s_server is up in ~20 ms, this is for loaded CI hosts
STOP_GRACE: Final = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """A running peer: where to connect and what it has printed so far."""

    name: str
    host: str
    port: int
    log: Path
    pid: int

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for_output(self, pattern: str, *, timeout: float = 5.0) -> re.Match[str]:
        """Wait until the peer's log matches ``pattern`` (a server logs a handshake's end a
        little after the client has already gone). Fails the test with the log on timeout."""
        compiled = re.compile(pattern, re.MULTILINE)
        with trio.move_on_after(timeout):
            while (match := compiled.search(self.output())) is None:
                await trio.sleep(0.01)
            return match
        pytest.fail(f"{self.name} never printed /{pattern}/ in {timeout} s\n{self.output()}", False)


# --------------------------------------------------------------------------- process plumbing


def _require(tool: str) -> str:
    path = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        # A skip would turn CI green without testing against the real peer; fail instead.
        pytest.fail(f"{tool} is not installed; the tests need it (see scripts/test)", False)
    return path


def _group_of(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (free now; not reserved)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the peer's process group, then SIGKILL whatever is left."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, STOP_GRACE)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children (vsftpd sessions) may still be in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        break
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


class _PortTaken(Exception):
    """Another process bound the port we picked before the peer did."""


@contextlib.contextmanager
def _spawn(
    name: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    ready: Callable[[Path], int | None],
    stdin_is_log: bool = False,
    user: str | None = None,
) -> Iterator[Peer]:
    """Run ``argv`` until the ``with`` block ends. ``ready(log)`` returns the listening port
    once the peer accepts connections, None while it does not yet, or raises `_PortTaken`;
    it is polled until `START_DEADLINE`. ``stdin_is_log`` is for vsftpd, which writes its
    fatal "500 OOPS" messages to file descriptor 0. ``user`` runs the peer as that account
    (PostgreSQL refuses to run as root)."""
    log = workdir / f"{name}.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            list(argv),
            stdin=log_file if stdin_is_log else subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
            user=user,
            group=_group_of(user) if user else None,
            extra_groups=[] if user else None,
        )
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            exited = proc.poll() is not None  # before reading the log, so the log is complete
            port = ready(log)
            if port is not None:
                break
            if exited:
                pytest.fail(
                    f"{name} exited with {proc.returncode} before listening\n"
                    f"command: {' '.join(argv)}\n{log.read_text(errors='replace')}",
                    False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{name} not listening after {START_DEADLINE} s\n"
                    f"command: {' '.join(argv)}\n{log.read_text(errors='replace')}",
                    False,
                )
            time.sleep(0.01)
        yield Peer(name=name, host=HOST, port=port, log=log, pid=proc.pid)
    finally:
        _stop(proc)


@contextlib.contextmanager
def _spawn_on_free_port(
    name: str,
    argv_for: Callable[[int, Path], Sequence[str]],
    ready_for: Callable[[int], Callable[[Path], int | None]],
    *,
    stdin_is_log: bool = False,
    attempts: int = 3,
    user: str | None = None,
    shared_workdir: bool = False,
) -> Iterator[Peer]:
    """For peers that must be told their port: pick one, retry if someone else took it.
    ``shared_workdir`` opens the private directory to the daemon's own accounts (mode 0755:
    exim, dovecot and PostgreSQL drop root and still need to reach their files there)."""
    with tempfile.TemporaryDirectory(prefix=f"tlsprobe-{name}-") as tmp:
        workdir = Path(tmp)
        if shared_workdir:
            workdir.chmod(0o755)
        for attempt in range(attempts):
            port = free_port()
            try:
                with _spawn(
                    name, argv_for(port, workdir), workdir=workdir, ready=ready_for(port),
                    stdin_is_log=stdin_is_log, user=user,
                ) as peer:  # fmt: skip
                    yield peer
                    return
            except _PortTaken:
                if attempt == attempts - 1:
                    raise


# --------------------------------------------------------------------------- openssl s_server

_ACCEPT_LINE: Final = re.compile(rb"^ACCEPT 127\.0\.0\.1:(\d+)$", re.MULTILINE)


@contextlib.contextmanager
def openssl_server(args: Sequence[str | Path]) -> Iterator[Peer]:
    """``openssl s_server -accept 127.0.0.1:0 ARGS`` until the block ends.

    ``args`` are everything after ``-accept`` (certificates, versions, ciphers, -Verify,
    -naccept, ...); see `openssl_args` for the named configurations the tests use.
    """
    argv = [_require("openssl"), "s_server", "-accept", f"{HOST}:0", *map(str, args)]

    def ready(log: Path) -> int | None:
        match = _ACCEPT_LINE.search(log.read_bytes())
        return int(match.group(1)) if match else None

    with (
        tempfile.TemporaryDirectory(prefix="tlsprobe-s_server-") as tmp,
        _spawn("s_server", argv, workdir=Path(tmp), ready=ready) as peer,
    ):
        yield peer


def _serve(identity: IdentityFiles, *chain: Path) -> list[str | Path]:
    args: list[str | Path] = ["-cert", identity.cert, "-key", identity.key]
    for extra in chain:
        args += ["-cert_chain", extra]
    return args


# `-verify_return_error` matters: without it s_server requests and logs a bad client
# certificate but carries on with the handshake.
def _client_auth(pki: TestPKI, flag: str) -> list[str | Path]:
    return [flag, "1", "-verify_return_error", "-CAfile", pki.ca]


# Named s_server configurations. Where the outcome is not obvious, the comment says what an
# OpenSSL 3.0 client (s_client) sees; tests/test_peers.py holds each line to it.
OPENSSL_CONFIGS: Final[dict[str, Callable[[TestPKI], list[str | Path]]]] = {
    "good": lambda p: _serve(p.good, p.intermediate),
    "good-ec": lambda p: _serve(p.good_ec, p.intermediate),
    "expired": lambda p: _serve(p.expired, p.intermediate),
    "not-yet-valid": lambda p: _serve(p.not_yet_valid, p.intermediate),
    "self-signed": lambda p: _serve(p.self_signed),
    "unknown-ca": lambda p: _serve(p.unknown_ca, p.other_intermediate),
    # No -cert_chain and no -CAfile, so OpenSSL cannot auto-complete the chain either.
    "missing-intermediate": lambda p: _serve(p.good),
    "wrong-host": lambda p: _serve(p.wrong_host, p.intermediate),
    # Debian builds OpenSSL with SECLEVEL 2 as the default, where s_server refuses to load an
    # RSA 1024 certificate ("ee key too small"); SECLEVEL 1 (80 bits) lets it serve one.
    "weak-key": lambda p: [*_serve(p.weak_key, p.intermediate), "-cipher", "DEFAULT:@SECLEVEL=1"],
    # OpenSSL 3.0 does TLS 1.0 only at SECLEVEL 0 (its handshake signatures use SHA-1). A
    # default s_client still offers 1.0 and accepts the TLS 1.0 ServerHello, then rejects
    # the SHA-1 ServerKeyExchange signature and sends alert 80 internal_error, not 70.
    "tls10-only": lambda p: [*_serve(p.good, p.intermediate), "-tls1",
                             "-cipher", "DEFAULT:@SECLEVEL=0"],
    "tls12-only": lambda p: [*_serve(p.good, p.intermediate), "-tls1_2"],
    # Only P-384: a client's x25519/P-256 key shares get a HelloRetryRequest (RFC 8446 §4.1.4).
    "hello-retry": lambda p: [*_serve(p.good, p.intermediate), "-tls1_3", "-groups", "P-384"],
    "tls13-only": lambda p: [*_serve(p.good, p.intermediate), "-tls1_3"],
    # Camellia is in neither OpenSSL 3's DEFAULT, GnuTLS's NORMAL nor Python's default list,
    # and needs no SECLEVEL change. The server answers with alert 40 handshake_failure.
    "no-shared-cipher": lambda p: [*_serve(p.good, p.intermediate), "-no_tls1_3",
                                   "-cipher", "CAMELLIA128-SHA"],
    # NULL-SHA256 works too but only at SECLEVEL 0 (kept for the "null cipher" checks).
    "null-cipher": lambda p: [*_serve(p.good, p.intermediate), "-no_tls1_3",
                              "-cipher", "NULL-SHA256:@SECLEVEL=0"],
    "client-cert-required-tls12": lambda p: [*_serve(p.good, p.intermediate), "-tls1_2",
                                             *_client_auth(p, "-Verify")],
    "client-cert-required-tls13": lambda p: [*_serve(p.good, p.intermediate), "-tls1_3",
                                             *_client_auth(p, "-Verify")],
    "client-cert-optional-tls12": lambda p: [*_serve(p.good, p.intermediate), "-tls1_2",
                                             *_client_auth(p, "-verify")],
    "client-cert-optional-tls13": lambda p: [*_serve(p.good, p.intermediate), "-tls1_3",
                                             *_client_auth(p, "-verify")],
}  # fmt: skip


def openssl_args(pki: TestPKI, config: str, *extra: str | Path) -> list[str | Path]:
    """The s_server arguments of a named configuration, plus ``extra`` (e.g. -naccept 1)."""
    return [*OPENSSL_CONFIGS[config](pki), *extra]


# --------------------------------------------------------------------------- gnutls-serv

# gnutls-serv 3.7 has no option to choose the listening address: it binds every address
# (0.0.0.0 and ::) on the port. Acceptable on a loopback-only CI host; on a workstation it
# means the test server is reachable from the network while the test runs.
# Worse, when the IPv4 bind fails it carries on serving IPv6 only, so a connect to
# 127.0.0.1:PORT would reach whoever holds the port. Readiness is therefore its own
# "IPv4 ... done" line, not a successful connect.
_GNUTLS_LISTENING: Final = "listening on IPv4 0.0.0.0 port {port}...done"
_GNUTLS_PORT_TAKEN: Final = "listening on IPv4 0.0.0.0 port {port}...bind() failed"


def _gnutls_ready(port: int) -> Callable[[Path], int | None]:
    def ready(log: Path) -> int | None:
        text = log.read_text(errors="replace")
        if _GNUTLS_PORT_TAKEN.format(port=port) in text:
            raise _PortTaken(text)
        return port if _GNUTLS_LISTENING.format(port=port) in text else None

    return ready


# Priority strings (gnutls_priority_init(3)).
GNUTLS_TLS12: Final = "NORMAL:-VERS-ALL:+VERS-TLS1.2"
GNUTLS_TLS13: Final = "NORMAL:-VERS-ALL:+VERS-TLS1.3"


@contextlib.contextmanager
def gnutls_server(args: Sequence[str | Path]) -> Iterator[Peer]:
    """``gnutls-serv --port PORT ARGS`` until the block ends (an HTTP server unless ARGS
    say ``--echo``)."""
    exe = _require("gnutls-serv")

    def argv(port: int, _workdir: Path) -> list[str]:
        return [exe, "--port", str(port), *map(str, args)]

    with _spawn_on_free_port("gnutls-serv", argv, _gnutls_ready) as peer:
        yield peer


def _gnutls_identity(identity: IdentityFiles) -> list[str | Path]:
    # gnutls-serv sends every certificate in the file, so the chain file is the right one.
    return ["--x509certfile", identity.chain, "--x509keyfile", identity.key]


# --require-client-cert alone only checks that a certificate arrived: gnutls-serv then
# accepts an expired or untrusted one ("Peer's certificate was NOT verified").
# --verify-client-cert makes it check the chain against --x509cafile.
def _gnutls_client_auth(pki: TestPKI, priority: str) -> list[str | Path]:
    return [*_gnutls_identity(pki.good), "--require-client-cert", "--verify-client-cert",
            "--x509cafile", pki.ca, "--priority", priority]  # fmt: skip


GNUTLS_CONFIGS: Final[dict[str, Callable[[TestPKI], list[str | Path]]]] = {
    # gnutls-serv asks for a client certificate unless told not to (-a).
    "good": lambda p: [*_gnutls_identity(p.good), "--disable-client-cert"],
    "tls13-only": lambda p: [*_gnutls_identity(p.good), "--disable-client-cert",
                             "--priority", GNUTLS_TLS13],
    "client-cert-required-tls12": lambda p: _gnutls_client_auth(p, GNUTLS_TLS12),
    "client-cert-required-tls13": lambda p: _gnutls_client_auth(p, GNUTLS_TLS13),
}  # fmt: skip


def gnutls_args(pki: TestPKI, config: str, *extra: str | Path) -> list[str | Path]:
    return [*GNUTLS_CONFIGS[config](pki), *extra]


# --------------------------------------------------------------------------- vsftpd

# Debian's vsftpd 3.0.3 has no ssl_tlsv1_1 / ssl_tlsv1_2 options (an unknown option is a
# fatal "500 OOPS"); it negotiates TLS 1.3 and 1.2 as OpenSSL allows. Its man page gives
# DES-CBC3-SHA as the default ssl_ciphers, which no OpenSSL 3 client offers; the Debian
# build does not actually use it, but ssl_ciphers=HIGH pins a TLS 1.2 list that works
# either way. isolate/isolate_network/seccomp_sandbox are off because containers often
# forbid the namespaces and syscalls they need. vsftpd sends a CertificateRequest
# (ssl_request_cert defaults to YES) but does not require a client certificate.
_VSFTPD_CONFIG: Final = """\
listen=YES
listen_ipv6=NO
listen_address={host}
listen_port={port}
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root={anon_root}
secure_chroot_dir={empty}
ftp_username=ftp
nopriv_user=ftp
isolate=NO
isolate_network=NO
seccomp_sandbox=NO
pasv_enable=YES
pasv_address={host}
xferlog_enable=NO
vsftpd_log_file={workdir}/vsftpd.log
dual_log_enable=NO
syslog_enable=NO
ftpd_banner=tlsprobe test vsftpd {token}
"""
_VSFTPD_TLS: Final = """\
ssl_enable=YES
rsa_cert_file={cert}
rsa_private_key_file={key}
ssl_ciphers=HIGH
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=YES
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
require_ssl_reuse=NO
"""


def _vsftpd_ready(
    banner: bytes, *, implicit: bool = False
) -> Callable[[int], Callable[[Path], int | None]]:
    # vsftpd prints nothing when it listens, so: connect and expect our own banner (the
    # token rules out a stranger that took the port). A lost bind race ends vsftpd with
    # "500 OOPS: could not bind listening IPv4 socket".
    def ready_for(port: int) -> Callable[[Path], int | None]:
        def ready(log: Path) -> int | None:
            text = log.read_text(errors="replace")
            if "could not bind listening" in text:
                raise _PortTaken(text)
            first = _first_line_tls(port) if implicit else _first_line(port)
            return port if first.startswith(banner) else None

        return ready

    return ready_for


def _first_line_tls(port: int) -> bytes:
    """The first line after a TLS handshake (implicit FTPS), verification off: this only
    tells that our own vsftpd is up."""
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((HOST, port), timeout=0.5) as raw,
            ctx.wrap_socket(raw) as sock,
        ):
            data = b""
            while b"\r\n" not in data and (chunk := sock.recv(256)):
                data += chunk
            return data
    except OSError:
        return b""


def _first_line(port: int) -> bytes:
    try:
        with socket.create_connection((HOST, port), timeout=0.2) as sock:
            data = b""
            while b"\r\n" not in data and (chunk := sock.recv(256)):
                data += chunk
            return data
    except OSError:
        return b""


@contextlib.contextmanager
def vsftpd_server(identity: IdentityFiles | None, *, implicit: bool = False) -> Iterator[Peer]:
    """vsftpd on 127.0.0.1 with a private config; AUTH TLS with ``identity``'s chain, or
    SSL disabled (AUTH TLS refused) when ``identity`` is None. ``implicit`` serves implicit
    FTPS instead (TLS from the first byte, as on port 990)."""
    exe = _require("vsftpd")
    token = secrets.token_hex(4)

    def argv(port: int, workdir: Path) -> list[str]:
        empty = workdir / "empty"
        anon_root = workdir / "anon"
        for d in (empty, anon_root):
            d.mkdir(mode=0o755, exist_ok=True)
        (anon_root / "hello.txt").write_text("hello from tlsprobe tests\n")
        text = _VSFTPD_CONFIG.format(
            host=HOST, port=port, anon_root=anon_root, empty=empty, workdir=workdir, token=token
        )
        if identity is None:
            text += "ssl_enable=NO\n"
        else:
            # rsa_cert_file is read with SSL_CTX_use_certificate_chain_file: leaf first.
            text += _VSFTPD_TLS.format(cert=identity.chain, key=identity.key)
            if implicit:
                text += "implicit_ssl=YES\n"
        config = workdir / f"vsftpd-{port}.conf"
        config.write_text(text)
        config.chmod(0o600)  # vsftpd refuses a config file others may write; keep it private
        return [exe, str(config)]

    banner = f"220 tlsprobe test vsftpd {token}".encode()
    ready = _vsftpd_ready(banner, implicit=implicit)
    with _spawn_on_free_port("vsftpd", argv, ready, stdin_is_log=True) as peer:
        yield peer
