"""The `matrix` command: outcomes of every version x cipher list x client identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .cli import VERSION_HELP, _version, app, check_seconds
from .defaults import DEFAULT_TIMEOUT
from .errors import InputError

if TYPE_CHECKING:
    from .identity import ClientIdentity
    from .wire.registry import Suite


@app.command()
def matrix(
    target: Annotated[str, typer.Argument(help="HOST[:PORT] or [IPV6]:PORT.")],
    tls: Annotated[
        list[str] | None,
        typer.Option("--tls", help=f"A version row ({VERSION_HELP}); repeat. Default 1.0-1.3."),
    ] = None,
    ciphers: Annotated[
        list[str] | None,
        typer.Option(help="A cipher list row (any name form); repeat. Default: OpenSSL's."),
    ] = None,
    cert: Annotated[
        list[Path] | None,
        typer.Option(
            help="A client identity column (PKCS#12, or PEM holding cert and key); repeat."
            " A 'no certificate' column is always there."
        ),
    ] = None,
    cert_password: Annotated[
        str | None,
        typer.Option(
            envvar="TLSPROBE_CERT_PASSWORD",
            show_default=False,
            help="Password of the identities (or TLSPROBE_CERT_PASSWORD).",
        ),
    ] = None,
    ca: Annotated[Path | None, typer.Option(help="Trust anchors (default: system store).")] = None,
    sni: Annotated[str | None, typer.Option(help="Server name to send.")] = None,
    starttls: Annotated[str, typer.Option(help="As for probe.")] = "auto",
    mq_channel: Annotated[
        str | None, typer.Option("--mq-channel", help="IBM MQ channel name (sets the SNI).")
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Do not fail on verification.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per phase.")] = DEFAULT_TIMEOUT,
    per_host: Annotated[int, typer.Option("--per-host", help="Probes at once.")] = 8,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON: a list of cells (result null when not tried).")
    ] = False,
) -> None:
    """The outcome of every combination of versions, cipher lists and client identities.

    A cipher list that cannot be offered at a version row shows n/a there (not tried).

    Exit 0 when at least one cell connected, 1 when none did, 2 for bad input (or no cell to try).

    Example: tlsprobe matrix mq.example:1414 --tls 1.2 --tls 1.3 --cert qm1.p12 --cert qm2.p12
    """
    import trio

    from .cipherlist import parse_cipher_list
    from .identity import load_certificates, load_identity
    from .matrix import axes, render_matrix, run_matrix
    from .mq import channel_sni
    from .prober import ProbeRequest
    from .result import SCHEMA_VERSION, to_jsonable
    from .starttls import resolve_protocol
    from .target import parse_target
    from .tlsconfig import make_offer

    tgt = parse_target(target)
    if per_host < 1:
        raise InputError("--per-host must be at least 1")
    check_seconds("--timeout", timeout)
    every: list[int | None] = [0x0301, 0x0302, 0x0303, 0x0304]
    versions = [_version(v, "--tls") for v in tls] if tls else every
    lists: list[tuple[str, tuple[Suite, ...] | None]] = [("default", None)]
    if ciphers:
        lists = [(c, parse_cipher_list(c)) for c in ciphers]
    idents: list[tuple[str, ClientIdentity | None]] = [("no certificate", None)]
    for path in cert or []:
        idents.append((path.name, load_identity(path, None, cert_password)))
    if ca is not None:
        load_certificates(ca, "CA file")
    if mq_channel is not None:
        if sni is not None:
            raise InputError("--mq-channel sets the server name itself; drop --sni")
        channel_sni(mq_channel)
    base = ProbeRequest(
        target=tgt,
        starttls=resolve_protocol(starttls, tgt.port),
        sni=sni,
        offer=make_offer(None, None, None, None),
        ca_file=ca,
        verify=not no_verify,
        timeout=timeout,
        mq_channel=mq_channel,
    )
    cells = trio.run(run_matrix, base, axes(versions, lists, idents), per_host)
    if as_json:
        doc = {
            "schema_version": SCHEMA_VERSION,
            "target": str(tgt),
            "cells": [
                {"version": c.version, "ciphers": c.ciphers, "identity": c.identity,
                 "outcome": c.outcome, "note": c.note,
                 "result": to_jsonable(c.result)}
                for c in cells
            ],
        }  # fmt: skip
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(render_matrix(str(tgt), cells))
    raise typer.Exit(0 if any(c.outcome == "connected" for c in cells) else 1)
