"""The `explain` and `decode` commands: vendor codes and TLS bytes, no network."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .cli import _emit, app
from .errors import InputError

MAX_DECODE_INPUT = 16 * 1024 * 1024  # characters; a dump is text, a capture is far smaller


@app.command(context_settings={"ignore_unknown_options": True})
def explain(
    code: Annotated[
        list[str],
        typer.Argument(
            help="The code or the log line it came in: AMQ9631, CSQX631E, 'RC 428', 'RC: 401', "
            "'GSK 406', CR=48, 'alert 116', handshake_failure, CPDBC81, TCP2550, 0335304B, -93, "
            "'EZD1287I TTLS Error RC: 438', or words such as 'expired cert'.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """What a vendor code or TLS alert means, which end to look at, causes and fixes.

    Also the codes the other end of the link logs, and the lab scenario that reproduces it;
    entries that no source confirms are labelled as such.

    Exit codes: 0 the code is known; 1 it is not (the closest known codes are listed); 2 bad usage.

    Example: tlsprobe explain RC 428
    """
    from .explain import explain as run_explain
    from .render import render_explain

    # Unknown options pass through to the code words (so that "-93" or "-1009" are codes, not
    # options); a word starting with "--" is never a code, so it is a mistyped option.
    if stray := next((w for w in code if w.startswith("--")), None):
        raise InputError(f"explain: no such option {stray!r} (options: --json)")
    query = " ".join(code).strip()
    if not query:
        raise InputError("explain needs a code, for example: tlsprobe explain AMQ9631")
    answer = run_explain(query)
    _emit(answer, as_json, render_explain(answer))
    raise typer.Exit(0 if answer.found else 1)


def _decode_input(source: list[str] | None) -> str | bytes:
    """The text (or raw bytes of a binary capture) to decode: stdin, a file, or the hex given."""
    args = source or ["-"]
    if args == ["-"]:
        data = sys.stdin.buffer.read(MAX_DECODE_INPUT + 1)
        where = "standard input"
    elif not "".join(args).strip():
        return ""  # `decode ''`: Path('') is '.', which would read as a directory
    elif len(args) == 1 and (
        Path(args[0]).exists() or not (_looks_like_hex(args[0]) or " " in args[0].strip())
    ):
        path = Path(args[0])
        if path.is_dir():
            raise InputError(f"{path}: is a directory; give a dump file, hex, or - for stdin")
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_DECODE_INPUT + 1)
        except FileNotFoundError:
            raise InputError(
                f"{path}: no such file, and not hex either; give a dump file, hex, or - for stdin"
            ) from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        where = str(path)
    else:
        return " ".join(args)
    if len(data) > MAX_DECODE_INPUT:
        raise InputError(f"{where}: more than {MAX_DECODE_INPUT} bytes; cut the dump down")
    if b"\0" in data[:4096]:
        return data  # a binary capture (raw TLS bytes), not a text dump
    return data.decode("utf-8", errors="replace")


def _looks_like_hex(text: str) -> bool:
    stripped = text.replace("0x", "").replace("\\x", "").rstrip(" .…")
    return any(c.isdigit() for c in stripped) and all(
        c in "0123456789abcdefABCDEF ,:;\n\t" for c in stripped
    )


@app.command()
def decode(
    source: Annotated[
        list[str] | None,
        typer.Argument(
            help="A dump file, hex on the command line, or - (the default) for standard input.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Decode TLS bytes from a hex dump, field by field, saying what is missing.

    Records and handshake messages (versions, random, session id, every suite with its IANA
    and OpenSSL names, extensions), certificates (subject, issuer, validity), CA names of a
    CertificateRequest, alerts with their meaning; where the dump is cut, how many bytes.

    Reads plain hex, offset dumps (z/OS System SSL, xxd, hexdump -C, Wireshark), Transfer CFT
    CFTY02Z trace lines, openssl s_client -msg output and tlsprobe probe --trace (--json).

    Exit codes: 0 decoded; 2 the input holds no hex or cannot be read.

    Example: tlsprobe decode cft.log   (or: tlsprobe decode 16030100..., ... | tlsprobe decode)
    """
    from .decode import decode_bytes, decode_text
    from .render import render_decode
    from .wire.errors import DecodeError

    data = _decode_input(source)
    try:
        result = decode_bytes(data) if isinstance(data, bytes) else decode_text(data)
    except DecodeError as exc:
        raise InputError(str(exc)) from None
    _emit(result, as_json, render_decode(result))
    raise typer.Exit(0)
