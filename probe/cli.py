"""The command line: typer at the edge, ``trio.run`` once, rendering and exit codes only.

Exit codes (SPEC): 0 success, 1 the target failed, 2 bad usage or unreadable input (one line on
stderr, no traceback), 3 an internal error (a bug: one line, traceback only with TLSPROBE_DEBUG=1).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import traceback
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from . import __version__
from .defaults import DEFAULT_GRACE, DEFAULT_TIMEOUT
from .errors import InputError
from .lab import DEFAULT_PORT_BASE
from .starttls import CHOICES

# Start-up time is part of every command's wall time (a scan of a small server takes less time
# than importing everything): each command imports what it needs when it runs, so `explain`
# never loads trio or OpenSSL and `scan` never loads the prober, the diagnosis or the lab.
if TYPE_CHECKING:
    from .lab.server import Listening
    from .prober import ProbeRequest
    from .target import Target

app = typer.Typer(
    name="tlsprobe",
    help=(
        "Live TLS probe and negotiation tester for mainframe and middleware links "
        "(telnets 992, IBM MQ 1414, FTP AUTH TLS 21, ...). It reproduces handshake outcomes "
        "against real listeners and explains failures in the words IBM MQ, z/OS System SSL, "
        "IBM i and Transfer CFT log."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich keeps the docstrings' line breaks mid-sentence, and loads slower.
    rich_markup_mode=None,
)

VERSION_HELP = "ssl2 ssl3 1.0 1.1 1.2 1.3"


def _version(value: str | None, option: str) -> int | None:
    from .wire import registry

    if value is None:
        return None
    v = registry.find_version(value)
    if v is None:
        raise InputError(f"{option} {value!r}: choose one of {VERSION_HELP}")
    return v


# Durations come from users and plans as floats, and typer accepts "nan" and "inf": a NaN
# deadline fails deep inside trio (an internal error), an infinite one never ends.
MAX_SECONDS = 24 * 3600.0


def check_seconds(option: str, value: float | None, *, zero_ok: bool = False) -> None:
    """InputError unless ``value`` is a finite number of seconds (above 0, or 0 with
    ``zero_ok``) up to a day; None (an option not given) passes."""
    if value is None:
        return
    low = "at least 0" if zero_ok else "above 0"
    if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
        raise InputError(f"{option} {value}: give a finite number of seconds, {low}")
    if value > MAX_SECONDS:
        raise InputError(f"{option} {value}: at most {MAX_SECONDS:.0f} seconds (a day)")


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(f"tlsprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Live TLS probe and negotiation tester."""


def _emit(data: object, as_json: bool, human: str) -> None:
    from .result import to_jsonable

    if as_json:
        typer.echo(json.dumps(to_jsonable(data), indent=2))
    else:
        typer.echo(human)


@app.command()
def probe(
    target: Annotated[
        str | None,
        typer.Argument(help="HOST[:PORT] or [IPV6]:PORT (port defaults to 443); or use -f."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "-f",
            "--file",
            help="Probe every target in FILE (one a line, # comments): one JSON line per "
            "target as each finishes, a summary on stderr.",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Probes at once with -f.")] = 50,
    per_host: Annotated[int, typer.Option("--per-host", help="Probes at once per host.")] = 10,
    deadline: Annotated[
        float | None,
        typer.Option(
            help="With -f: stop after this many seconds; targets not done get outcome timeout."
        ),
    ] = None,
    starttls: Annotated[
        str,
        typer.Option(
            help=f"Plaintext upgrade before TLS: {', '.join(CHOICES)}. auto picks by port: 21 "
            "ftp (AUTH TLS), 25/587 smtp, 110 pop3, 143 imap, 389 ldap, 5432 postgres, 23 "
            "telnet (START_TLS); 992, 990, 1414, 443 and every other port: implicit TLS."
        ),
    ] = "auto",
    sni: Annotated[
        str | None,
        typer.Option(help="Server name to send (default: the target host name; '' sends none)."),
    ] = None,
    tls: Annotated[
        str | None, typer.Option("--tls", help=f"Offer exactly this version: {VERSION_HELP}.")
    ] = None,
    tls_min: Annotated[
        str | None, typer.Option("--tls-min", help="Lowest version to offer (default 1.2).")
    ] = None,
    tls_max: Annotated[
        str | None, typer.Option("--tls-max", help="Highest version to offer (default 1.3).")
    ] = None,
    ciphers: Annotated[
        str | None,
        typer.Option(
            help="Suites to offer, comma or colon separated: OpenSSL or IANA names, hex codes, "
            "IBM MQ CipherSpecs and aliases (mq:ANY_TLS12_OR_HIGHER), GSKit codes (gsk:0A, "
            "gsk:C02F), Transfer CFT CIPHLIST numbers (cft:47), a partner profile's client "
            "list (profile:NAME). MQ names also pin the protocol version unless --tls* says "
            "otherwise. `tlsprobe ciphers` lists them all. Default: the bundled OpenSSL's."
        ),
    ] = None,
    mq_channel: Annotated[
        str | None,
        typer.Option(
            "--mq-channel",
            help="IBM MQ channel name: send the SNI MQ derives from it (TO.QMGR1 -> "
            "to2e-qmgr1.chl.mq.ibm.com) and, like MQ, check the chain but not the host name.",
        ),
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option(
            help="Client certificate: PEM (chain and key allowed), DER or PKCS#12 (.p12/.pfx)."
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="Private key for --cert (PEM or DER) if not inside it.")
    ] = None,
    cert_password: Annotated[
        str | None,
        typer.Option(
            envvar="TLSPROBE_CERT_PASSWORD",
            help="Password of the PKCS#12 file or encrypted key (or set TLSPROBE_CERT_PASSWORD).",
            show_default=False,
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(help="Trust anchors (PEM bundle or DER). Default: the system store."),
    ] = None,
    no_verify: Annotated[
        bool,
        typer.Option(
            "--no-verify", help="Report verification problems but complete the handshake."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds allowed for each phase (TCP, STARTTLS, handshake).")
    ] = DEFAULT_TIMEOUT,
    grace: Annotated[
        float,
        typer.Option(
            help="Seconds to listen after the handshake for a late rejection (TLS 1.3 client-"
            "certificate alerts, channels closed after TLS)."
        ),
    ] = DEFAULT_GRACE,
    trace: Annotated[
        bool, typer.Option(help="Show the handshake as a ladder of messages with hex.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Open one real TLS session and say what happened and why.

    Exit 0 when connected (and verified, unless --no-verify), 1 for any other outcome,
    2 for bad input.

    Example: tlsprobe probe mq.example:1414 --mq-channel TO.QMGR1 --cert qm.p12 --ca ca.pem
    """
    import trio

    from .cipherlist import apply_pinned_versions, parse_cipher_selection
    from .identity import load_certificates, load_identity, validity_warning
    from .mq import channel_sni
    from .prober import ProbeRequest, run_probe
    from .render import render_probe
    from .starttls import resolve_protocol
    from .target import parse_target
    from .tlsconfig import make_offer

    if (target is None) == (file is None):
        raise InputError("give one TARGET or -f FILE")
    tgt = parse_target(target) if target is not None else parse_target("0.0.0.0:1")
    check_seconds("--timeout", timeout)
    check_seconds("--grace", grace, zero_ok=True)
    check_seconds("--deadline", deadline)
    selection = parse_cipher_selection(ciphers) if ciphers is not None else None
    exact, lo, hi = apply_pinned_versions(
        selection,
        _version(tls, "--tls"),
        _version(tls_min, "--tls-min"),
        _version(tls_max, "--tls-max"),
    )
    offer = make_offer(exact, lo, hi, selection.suites if selection else None)
    if key is not None and cert is None:
        raise InputError("--key needs --cert")
    identity = load_identity(cert, key, cert_password) if cert is not None else None
    if identity is not None and (warning := validity_warning(identity)):
        typer.echo(f"tlsprobe: warning: {warning}", err=True)
    if ca is not None:
        load_certificates(ca, "CA file")  # fail now, with the file named, not mid-handshake
    if mq_channel is not None:
        if sni is not None:
            raise InputError("--mq-channel sets the server name itself; drop --sni")
        channel_sni(mq_channel)  # a bad channel name is a usage error, found before connecting
    req = ProbeRequest(
        target=tgt,
        starttls=resolve_protocol(starttls, tgt.port),
        sni=sni,
        offer=offer,
        identity=identity,
        ca_file=ca,
        verify=not no_verify,
        timeout=timeout,
        grace=grace,
        trace=trace,
        mq_channel=mq_channel,
    )
    if file is not None:
        _probe_file(file, req, starttls, concurrency, per_host, deadline)
    result = trio.run(run_probe, req)
    _emit(result, as_json, render_probe(result))
    raise typer.Exit(0 if result.ok else 1)


def _probe_file(
    file: Path,
    template: ProbeRequest,
    starttls: str,
    concurrency: int,
    per_host: int,
    deadline: float | None,
) -> NoReturn:
    """`probe -f`: stream one JSON line per target as each finishes (so an interrupted run
    keeps what it found), bounded overall and per host, within an optional global deadline."""
    import trio

    from .multi import json_lines, probe_many, read_targets, requests_for
    from .result import to_jsonable
    from .starttls import resolve_protocol

    targets = read_targets(file, check=lambda t: resolve_protocol(starttls, t.port))
    summary = trio.run(
        partial(
            probe_many,
            requests_for(targets, template, starttls),
            concurrency=concurrency,
            per_host=per_host,
            deadline=deadline,
            on_result=json_lines(sys.stdout),
        )
    )
    typer.echo(json.dumps(to_jsonable(summary)), err=True)
    raise typer.Exit(0 if summary.outcomes == {"connected": summary.results} else 1)


@app.command()
def scan(
    target: Annotated[
        str | None, typer.Argument(help="HOST[:PORT] or [IPV6]:PORT (or use -f).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("-f", "--file", help="Scan every target in FILE (one a line; # comments)."),
    ] = None,
    starttls: Annotated[
        str, typer.Option(help=f"As for probe: {', '.join(CHOICES)} (auto picks by port).")
    ] = "auto",
    sni: Annotated[
        str | None, typer.Option(help="Server name to send (default: the host).")
    ] = None,
    mq_channel: Annotated[
        str | None,
        typer.Option(
            "--mq-channel",
            help="IBM MQ channel name: send the SNI MQ derives from it, as probe does (a "
            "queue manager with per-channel certificates refuses other names with alert 112).",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Targets scanned at once with -f.")] = 10,
    per_host: Annotated[
        int, typer.Option("--per-host", help="Connections at once to one host.")
    ] = 5,
    pause: Annotated[
        float,
        typer.Option(help="Seconds between connection starts to one host (be polite to IDSs)."),
    ] = 0.0,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per connection.")] = 5.0,
    deadline: Annotated[
        float | None,
        typer.Option(help="With -f: stop after this many seconds; unfinished targets: timeout."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON (one line per target with -f).")
    ] = False,
) -> None:
    """Every protocol version (SSLv2 to TLS 1.3) and every accepted cipher suite, in the server's
    order, with groups, certificate chains, secure renegotiation and extended master secret.

    Uses raw hellos built by tlsprobe's own codec, so it sees SSLv2, SSLv3, EXPORT, NULL, RC4,
    3DES and every IANA suite whatever the local OpenSSL supports. A port that never speaks TLS
    gets the probe's outcome for it (not_tls with the banner, starttls_refused, peer_closed,
    timeout). Exit 0 when every target was scanned, 1 when one was not, 2 for bad input.

    Example: tlsprobe scan partner.example:992 --json
    """
    import trio

    from .result import to_jsonable
    from .scan import HostGate, ScanOptions
    from .scan import scan as run_scan
    from .starttls import resolve_protocol
    from .target import parse_target

    if (target is None) == (file is None):
        raise InputError("give one TARGET or -f FILE")
    if concurrency < 1 or per_host < 1:
        raise InputError("--concurrency and --per-host must be 1 or more")
    check_seconds("--timeout", timeout)
    check_seconds("--pause", pause, zero_ok=True)
    check_seconds("--deadline", deadline)
    if mq_channel is not None:
        from .mq import channel_sni

        if sni is not None:
            raise InputError("--mq-channel sets the server name itself; drop --sni")
        sni = channel_sni(mq_channel)
    show_progress = sys.stderr.isatty()

    def progress(msg: str) -> None:
        if show_progress:
            sys.stderr.write(f"\r\033[Kscanning: {msg}")
            sys.stderr.flush()

    def options_for(tgt: Target) -> ScanOptions:
        return ScanOptions(
            target=tgt,
            starttls=resolve_protocol(starttls, tgt.port),
            sni=sni if sni is not None else (None if tgt.is_ip else tgt.host),
            timeout=timeout,
        )

    if file is not None:
        from .multi import json_lines, read_targets, scan_many

        targets = read_targets(file, check=lambda t: resolve_protocol(starttls, t.port))
        summary = trio.run(
            partial(
                scan_many,
                (options_for(t) for t in targets),
                concurrency=concurrency,
                per_host=per_host,
                pause=pause,
                deadline=deadline,
                on_result=json_lines(sys.stdout),
                progress=progress,
            )
        )
        if show_progress:
            sys.stderr.write("\r\033[K")
        typer.echo(json.dumps(to_jsonable(summary)), err=True)
        raise typer.Exit(0 if summary.outcomes == {"scanned": summary.results} else 1)
    assert target is not None
    result = trio.run(
        partial(run_scan, options_for(parse_target(target)), HostGate(per_host, pause), progress)
    )
    if show_progress:
        sys.stderr.write("\r\033[K")
    if as_json:
        typer.echo(json.dumps(to_jsonable(result), indent=2))
    else:
        from .render import render_scan

        typer.echo(render_scan(result))
    raise typer.Exit(0 if result.outcome == "scanned" else 1)


def _default_pki_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tlsprobe" / "lab-pki"


def _lab_doc(host: str, pki_dir: Path, listening: list[Listening] | None) -> dict[str, object]:
    from .pki import PKCS12_PASSWORD

    rows: list[dict[str, object]] = []
    for item in listening or []:
        s = item.scenario
        expect: dict[str, object] = {"outcome": s.expect.outcome}
        if s.expect.cause:
            expect["cause"] = s.expect.cause
        if s.expect.probe:
            expect["probe"] = s.expect.probe
        rows.append({"name": s.name, "port": item.port, "index": item.index,
                     "summary": s.summary, "seeds": s.seeds, "expect": expect})  # fmt: skip
    return {
        "schema_version": 1,
        "ready": listening is not None,
        "host": host,
        "pki_dir": str(pki_dir),
        "ca": str(pki_dir / "ca.crt"),
        "client_p12_password": PKCS12_PASSWORD,
        "scenarios": rows,
    }


@app.command()
def lab(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help="Scenarios to serve (default: all; see --list).", show_default=False),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="Print the catalog and exit.")] = False,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default 127.0.0.1; others only when given)."),
    ] = None,
    port_base: Annotated[
        int,
        typer.Option(
            help="Port base: the scenario at catalog index i listens on N + i, whichever "
            "scenarios are served (the port `lab:NAME` in a plan expects; --list shows them). "
            "0: any free port."
        ),
    ] = DEFAULT_PORT_BASE,
    pki_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the lab keeps its PKI (made once, reused): ca.crt is the anchor to "
            "trust, client.crt/client.key/client.p12 a client identity the lab trusts. "
            "Default: $XDG_DATA_HOME/tlsprobe/lab-pki."
        ),
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            help="Serve each scenario on N ports (copy j of the scenario at catalog index i: "
            "port base + i*N + j), for tests at scale."
        ),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line when every port listens.")
    ] = False,
) -> None:
    """Serve the documented failure scenarios on loopback, one port each, until Ctrl-C.

    Example: tlsprobe lab expired client-cert-required --port-base 9440 (expired, catalog
    index 1, on 9441), then
    tlsprobe probe 127.0.0.1:9441 --ca ~/.local/share/tlsprobe/lab-pki/ca.crt
    """
    import trio

    from .lab.server import check_host, layout, pki_dir_warning, select, serve_lab
    from .render import render_lab

    chosen = select(scenarios or [])
    where = pki_dir or _default_pki_dir()
    bind = host or "127.0.0.1"
    warning = check_host(bind, explicit=host is not None)
    if repeat < 1:
        raise InputError("--repeat must be at least 1")
    if port_base < 0:
        raise InputError(f"--port-base {port_base}: give a port number (0: any free port)")
    # Ports follow the catalog index, so the chosen scenario latest in the catalog decides
    # whether they fit below 65536 (layout raises), not how many are chosen.
    listing = layout(chosen, host=bind, port_base=port_base, repeat=repeat)
    if where.exists() and not where.is_dir():
        raise InputError(f"--pki-dir {where}: not a directory; give a directory for the lab's PKI")
    if list_:
        doc = _lab_doc(bind, where, listing)
        doc["ready"] = False
        if as_json:
            typer.echo(json.dumps(doc))
        else:
            typer.echo(render_lab(doc, listening=False))
        raise typer.Exit(0)
    for text in (warning, pki_dir_warning(where)):
        if text:
            typer.echo(f"tlsprobe: {text}", err=True)

    async def serve() -> None:
        # The signal handlers go in before the ready line, so a SIGTERM sent the moment a
        # supervisor reads it still ends the lab cleanly (exit 0), not by the default action.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                _pki, listening = await nursery.start(
                    partial(
                        serve_lab,
                        chosen,
                        host=bind,
                        port_base=port_base,
                        pki_dir=where,
                        repeat=repeat,
                    )
                )
                doc = _lab_doc(bind, where, listening)
                typer.echo(json.dumps(doc) if as_json else render_lab(doc, listening=True))
                sys.stdout.flush()
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(serve)
    raise typer.Exit(0)


INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def main() -> None:
    """Console entry point: every error becomes one line and an exit code."""
    try:
        rc = app(standalone_mode=False)
        if rc == INTERRUPTED:
            # typer turns a bare KeyboardInterrupt into a silent exit code 130; no command of
            # ours exits 130 otherwise.
            typer.echo("tlsprobe: interrupted", err=True)
        sys.exit(rc if isinstance(rc, int) else 0)
    except InputError as exc:
        typer.echo(f"tlsprobe: error: {exc}", err=True)
        sys.exit(2)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            # Ctrl-C lands in whichever task was running: inside a nursery it comes wrapped.
            typer.echo("tlsprobe: interrupted", err=True)
            sys.exit(INTERRUPTED)
        # Bad input met inside concurrent work (a nursery) arrives wrapped; it is still bad input.
        bad = group.subgroup(InputError)
        if bad is not None and group.split(InputError)[1] is None:
            first = bad.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            typer.echo(f"tlsprobe: error: {first}", err=True)
            sys.exit(2)
        _internal_error(group)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("tlsprobe: aborted", err=True)
        sys.exit(INTERRUPTED)
    except KeyboardInterrupt:
        typer.echo("tlsprobe: interrupted", err=True)
        sys.exit(INTERRUPTED)
    except Exception as exc:
        # Usage errors from the CLI layer (click's, vendored by recent typer): show and exit 2.
        # Matched by shape because typer moved the class between releases.
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        _internal_error(exc)


def _internal_error(exc: BaseException) -> NoReturn:
    if os.environ.get("TLSPROBE_DEBUG"):
        traceback.print_exception(exc)
    typer.echo(
        f"tlsprobe: internal error ({type(exc).__name__}: {exc}); this is a bug, please "
        "report it (TLSPROBE_DEBUG=1 shows the traceback)",
        err=True,
    )
    sys.exit(3)


# Commands that live in their own modules register themselves on `app` when imported.
from . import (  # noqa: E402,F401
    cli_explain,  # explain, decode
    cli_matrix,  # matrix
    cli_partners,  # ciphers, overlap
    cli_run,  # run, history
)
