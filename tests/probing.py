"""Helpers to run a real probe from a test and check its JSON against the published schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

import probe
from probe.identity import load_identity
from probe.prober import ProbeRequest, run_probe
from probe.result import ProbeResult, to_jsonable
from probe.target import Target
from probe.tlsconfig import make_offer
from probe.wire import registry


@cache
def schema(name: str) -> dict[str, Any]:
    """A published JSON Schema of the package (``probe``, ``scan``, ``overlap``, ...), itself
    checked against the 2020-12 meta-schema, so a broken schema cannot pass every document."""
    path = Path(probe.__file__).parent / "schemas" / f"{name}.schema.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def probe_schema() -> dict[str, Any]:
    return schema("probe")


def check_schema(result: ProbeResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(to_jsonable(result)))
    jsonschema.validate(doc, probe_schema())
    return doc


async def probe_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    ca: Path | None = None,
    tls: str | None = None,
    tls_min: str | None = None,
    tls_max: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    password: str | None = None,
    timeout: float = 5.0,
    grace: float = 0.5,
    starttls: str = "none",
    verify: bool = True,
    sni: str | None = None,
    mq_channel: str | None = None,
    ciphers: str | None = None,
    trace: bool = False,
) -> ProbeResult:
    """One probe as the CLI would run it, validated against the JSON schema."""
    from probe.cipherlist import parse_cipher_list

    def v(x: str | None) -> int | None:
        return registry.find_version(x) if x else None

    suites = parse_cipher_list(ciphers) if ciphers else None
    req = ProbeRequest(
        target=Target(host=host, port=port),
        starttls=starttls,
        sni=sni,
        offer=make_offer(v(tls), v(tls_min), v(tls_max), suites),
        identity=load_identity(cert, key, password) if cert else None,
        ca_file=ca,
        verify=verify,
        timeout=timeout,
        grace=grace,
        trace=trace,
        mq_channel=mq_channel,
    )
    result = await run_probe(req)
    check_schema(result)
    return result


def causes(result: ProbeResult) -> list[str]:
    return [d.cause for d in result.diagnosis]
