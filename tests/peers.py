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


def _daemon_account(*names: str) -> str | None:
    """When we are root: the first of ``names`` that exists, for a daemon that will not run
    as root or reads its files after dropping to it. None when we are not root (the peer runs
    as us)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail(f"none of the accounts {', '.join(names)} exists (see scripts/bootstrap)", False)


def _give(paths: Sequence[Path], user: str | None, *, mode: int | None = None) -> None:
    """chown (and chmod) files in a peer's private directory to the account that reads them."""
    import pwd

    for path in paths:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if mode is not None:
            path.chmod(mode)


def _copy_identity(identity: IdentityFiles, workdir: Path, user: str | None) -> tuple[Path, Path]:
    """The chain and key copied into ``workdir``, owned by ``user``, the key 0600: daemons
    that drop root read them as their own account, and PostgreSQL insists on the owner."""
    chain = workdir / "server.chain.crt"
    key = workdir / "server.key"
    shutil.copyfile(identity.chain, chain)
    shutil.copyfile(identity.key, key)
    _give([chain], user, mode=0o644)
    _give([key], user, mode=0o600)
    return chain, key


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


# --------------------------------------------------------------------------- exim (SMTP)

# exim4-daemon-light (Debian's exim, built with GnuTLS), run in the foreground (-bdf) with a
# private configuration (-C): its own spool, logs and pid file in the peer's directory, no
# DNS or ident lookups (exim looks up the name of a client whose EHLO names one of its own
# addresses, helo_lookup_domains; with no DNS that hangs), every recipient refused.
# Started as root, exim stays root only to listen and handles each connection as its exim
# user (Debian-exim), which must reach the spool, the logs and the TLS key: they are handed
# to that account. daemon_startup_retries = 0 makes a lost bind race fatal at once (the
# default retries for minutes) so `_PortTaken` can retry with another port. The default
# limit of 20 simultaneous connections is lifted: a scan's short connections linger in exim
# for half a second after a failed TLS handshake, so a scan's burst would exceed it.
_EXIM_CONFIG: Final = """\
keep_environment =
primary_hostname = tlsprobe.test
spool_directory = {workdir}/spool
log_file_path = {workdir}/log/%slog
pid_file_path = {workdir}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = {host}
daemon_startup_retries = 0
host_lookup =
helo_lookup_domains =
rfc1413_hosts =
smtp_accept_max = 0
smtp_banner = tlsprobe test exim {token}
acl_smtp_rcpt = refuse_all
{tls}
begin acl
refuse_all:
  deny message = tlsprobe test server: no mail here
begin routers
begin transports
"""

# What each named variant puts in the TLS part of the configuration.
EXIM_VARIANTS: Final = ("tls", "no-tls", "broken-tls")


def _exim_tls(variant: str, chain: Path, key: Path) -> str:
    if variant == "tls":
        return f"tls_advertise_hosts = *\ntls_certificate = {chain}\ntls_privatekey = {key}\n"
    if variant == "no-tls":
        return "tls_advertise_hosts =\n"  # STARTTLS is not in the EHLO reply
    # STARTTLS is advertised but the certificate file is missing: exim answers STARTTLS with
    # 454 "TLS currently unavailable", what a broken key ring does to a real server.
    return f"tls_advertise_hosts = *\ntls_certificate = {chain}.missing\ntls_privatekey = {key}\n"


def _log_ready(
    files: Callable[[Path], Sequence[Path]], ready_text: str, taken_text: str
) -> Callable[[int], Callable[[Path], int | None]]:
    """Readiness from what the peer writes (its own log files besides the console log)."""

    def ready_for(port: int) -> Callable[[Path], int | None]:
        def ready(log: Path) -> int | None:
            text = "".join(
                p.read_text(errors="replace") for p in (log, *files(log.parent)) if p.exists()
            )
            if taken_text.format(port=port) in text:
                raise _PortTaken(text)
            return port if ready_text.format(port=port) in text else None

        return ready

    return ready_for


@contextlib.contextmanager
def exim_server(identity: IdentityFiles, variant: str = "tls") -> Iterator[Peer]:
    """exim on 127.0.0.1 answering EHLO; ``variant`` is one of `EXIM_VARIANTS`."""
    exe = _require("exim4")
    user = _daemon_account("Debian-exim", "exim")
    token = secrets.token_hex(4)

    def argv(port: int, workdir: Path) -> list[str]:
        chain, key = _copy_identity(identity, workdir, user)
        for sub in ("spool", "log"):
            (workdir / sub).mkdir(exist_ok=True)
            _give([workdir / sub], user)
        text = _EXIM_CONFIG.format(
            workdir=workdir, port=port, host=HOST, token=token,
            tls=_exim_tls(variant, chain, key),
        )  # fmt: skip
        config = workdir / "exim.conf"
        config.write_text(text)
        return [exe, "-bdf", "-C", str(config)]

    ready = _log_ready(
        lambda d: (d / "log" / "mainlog", d / "log" / "paniclog"),
        "listening for SMTP on [127.0.0.1]:{port}",
        "Address already in use",
    )
    with _spawn_on_free_port("exim", argv, ready, shared_workdir=True) as peer:
        yield peer


# --------------------------------------------------------------------------- dovecot (IMAP, POP3)

# dovecot-imapd / dovecot-pop3d with a private configuration (-c) in the foreground (-F):
# its own base_dir (sockets, the login chroot) and state_dir, the log on the console, one
# protocol and one plaintext listener per instance (the implicit-TLS listeners are off).
# Started as root, dovecot runs its login processes as dovenull and its internal ones as
# dovecot, so the peer's directory is opened to them (0755). It reads the TLS key as root.
# Nobody logs in: the static passdb only keeps dovecot from refusing the configuration.
_DOVECOT_CONFIG: Final = """\
base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = /dev/stderr
instance_name = tlsprobe-{token}
listen = {host}
protocols = {protocol}
ssl = {ssl}
{ssl_files}
login_greeting = tlsprobe test dovecot {token}
mail_location = maildir:{workdir}/mail
passdb {{
  driver = static
  args = password=tlsprobe-never-used
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={workdir}/home
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


DOVECOT_DH: Final = "/usr/share/dovecot/dh.pem"  # shipped by dovecot-core, as Debian configures it


@contextlib.contextmanager
def dovecot_server(protocol: str, identity: IdentityFiles | None) -> Iterator[Peer]:
    """dovecot serving ``protocol`` ("imap" or "pop3") on 127.0.0.1; STARTTLS (STLS) with
    ``identity``'s chain, or ``ssl = no`` (the capability is not offered) when None."""
    exe = _require("dovecot")
    login = f"/usr/lib/dovecot/{protocol}-login"
    if not os.access(login, os.X_OK):
        pytest.fail(f"{login} is missing: install dovecot-{protocol}d (see scripts/test)", False)
    token = secrets.token_hex(4)

    def argv(port: int, workdir: Path) -> list[str]:
        if identity is None:
            ssl, ssl_files = "no", ""
        else:
            chain, key = _copy_identity(identity, workdir, None)
            ssl, ssl_files = "yes", f"ssl_cert = <{chain}\nssl_key = <{key}\n"
            if Path(DOVECOT_DH).exists():
                # Without DH parameters dovecot picks a DHE suite for a client that offers
                # one, then fails the handshake with an internal error (its log says so).
                ssl_files += f"ssl_dh = <{DOVECOT_DH}\n"
        text = _DOVECOT_CONFIG.format(
            workdir=workdir, token=token, host=HOST, protocol=protocol, ssl=ssl,
            ssl_files=ssl_files, imap_port=port if protocol == "imap" else 0,
            pop3_port=port if protocol == "pop3" else 0,
        )  # fmt: skip
        config = workdir / "dovecot.conf"
        config.write_text(text)
        return [exe, "-F", "-c", str(config)]

    ready = _log_ready(
        lambda d: (),
        "starting up for {protocol}".replace("{protocol}", protocol),
        "listen(127.0.0.1, {port}) failed: Address already in use",
    )
    with _spawn_on_free_port(f"dovecot-{protocol}", argv, ready, shared_workdir=True) as peer:
        # The master logs "starting up" once its listeners are bound; the login process that
        # answers comes a moment later, so wait for the greeting with our token.
        _wait_for_banner(peer, f"tlsprobe test dovecot {token}".encode())
        yield peer


def _wait_for_banner(peer: Peer, banner: bytes) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while banner not in _first_line(peer.port):
        if time.monotonic() > deadline:
            pytest.fail(f"{peer.name} never greeted with {banner!r}\n{peer.output()}", False)
        time.sleep(0.02)


# --------------------------------------------------------------------------- slapd (LDAP)

# slapd with a slapd.conf-style private configuration (-f): the core schema, an empty LDIF
# database in the peer's directory, TLS with the test chain or none at all (then the
# StartTLS extended operation is answered with an error). -d 256 (stats) keeps it in the
# foreground, logging each operation, so tests can see what it was asked.
_SLAPD_CONFIG: Final = """\
include /etc/ldap/schema/core.schema
pidfile {workdir}/slapd.pid
argsfile {workdir}/slapd.args
{tls}
database ldif
suffix "dc=tlsprobe,dc=test"
directory {workdir}/db
"""


@contextlib.contextmanager
def slapd_server(identity: IdentityFiles | None) -> Iterator[Peer]:
    """slapd on ldap://127.0.0.1:PORT/, StartTLS with ``identity``'s chain or without TLS."""
    exe = _require("slapd")

    def argv(port: int, workdir: Path) -> list[str]:
        (workdir / "db").mkdir(exist_ok=True)
        tls = ""
        if identity is not None:
            chain, key = _copy_identity(identity, workdir, None)
            tls = f"TLSCertificateFile {chain}\nTLSCertificateKeyFile {key}\n"
        config = workdir / "slapd.conf"
        config.write_text(_SLAPD_CONFIG.format(workdir=workdir, tls=tls))
        return [exe, "-d", "256", "-f", str(config), "-h", f"ldap://{HOST}:{port}/"]

    logged = _log_ready(lambda d: (), "slapd starting", "errno=98 (Address already in use)")

    def ready_for(port: int) -> Callable[[Path], int | None]:
        # slapd binds before it logs "slapd starting" (so a lost race shows) but calls
        # listen() a moment later in its daemon thread: wait until a connect succeeds too.
        check = logged(port)
        return lambda log: port if check(log) and port_accepts(HOST, port) else None

    with _spawn_on_free_port("slapd", argv, ready_for) as peer:
        yield peer


# --------------------------------------------------------------------------- PostgreSQL

# Debian's postgresql: a throw-away cluster (initdb, trust authentication, no fsync) in the
# peer's directory, started in the foreground on 127.0.0.1 with no Unix socket. PostgreSQL
# refuses to run as root, so as root it runs as the postgres account, owning its directory
# and a copy of the TLS key (it insists that the key belongs to it and is 0600).


def _pg_tool(name: str) -> str:
    import glob

    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return found[-1]
    return _require(name)


@contextlib.contextmanager
def postgres_server(identity: IdentityFiles | None) -> Iterator[Peer]:
    """A PostgreSQL server on 127.0.0.1: ``ssl = on`` with ``identity``'s chain, or off
    (SSLRequest answered ``N``) when None."""
    postgres, initdb = _pg_tool("postgres"), _pg_tool("initdb")
    user = _daemon_account("postgres", "nobody")

    def argv(port: int, workdir: Path) -> list[str]:
        data = workdir / "data"
        if not data.exists():
            _give([workdir], user)
            subprocess.run(
                [initdb, "-D", str(data), "-A", "trust", "-U", "tlsprobe", "--no-sync",
                 "-E", "UTF8", "--no-instructions"],
                check=True, capture_output=True, cwd=workdir, user=user,
                group=_group_of(user) if user else None, extra_groups=[] if user else None,
            )  # fmt: skip
        args = [postgres, "-D", str(data), "-h", HOST, "-p", str(port), "-c", "fsync=off",
                "-c", "unix_socket_directories=", "-c", "log_connections=on"]  # fmt: skip
        if identity is None:
            return [*args, "-c", "ssl=off"]
        chain, key = _copy_identity(identity, workdir, user)
        return [*args, "-c", "ssl=on", "-c", f"ssl_cert_file={chain}", "-c", f"ssl_key_file={key}"]

    ready = _log_ready(
        lambda d: (),
        "database system is ready to accept connections",
        "could not bind IPv4 address",
    )
    with _spawn_on_free_port("postgres", argv, ready, user=user, shared_workdir=True) as peer:
        yield peer
