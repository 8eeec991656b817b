"""STARTTLS system services as test peers: exim (SMTP), dovecot (IMAP, POP3), slapd (LDAP)
and PostgreSQL, each on a private loopback port with its own throw-away configuration.

Theory of operation
-------------------
These are the distributions' own daemons, started on the process plumbing of `peers`
(own session, a port picked and retried on a lost bind race, teardown of the whole group).
Unlike s_server they write their state, logs and pid files somewhere, so each gets a private
directory holding its configuration, its data and a copy of the TLS chain and key. Started
as root, most of them drop to their own account before they read those files, so the
directory is opened to that account (0755) and the copies are handed to it.

Ready means the daemon said so in its own log (`_log_ready`), which also tells a lost bind
race (`_PortTaken`) from a slow start; where the log line comes before the daemon can answer
(dovecot's login process, slapd's listen()), readiness also waits for an answer.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import pytest
from peers import (
    HOST,
    START_DEADLINE,
    Peer,
    _first_line,
    _group_of,
    _PortTaken,
    _require,
    _spawn_on_free_port,
    port_accepts,
)

from probe.pki import IdentityFiles

# --------------------------------------------------------------------------- daemon accounts


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


# --------------------------------------------------------------------------- readiness


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
