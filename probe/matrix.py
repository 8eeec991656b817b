"""`tlsprobe matrix`: the outcome of every combination of versions, cipher groups and client
identities, so an operator sees at once which partner configuration works.

Every cell is one real probe (the same engine as `probe`); cells run concurrently under a
per-host limit, and all inputs are checked before the first connection.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import trio

from .identity import ClientIdentity
from .prober import ProbeRequest, run_probe
from .result import ProbeResult
from .tlsconfig import make_offer
from .wire import registry
from .wire.registry import Suite


@dataclass(frozen=True, slots=True, kw_only=True)
class Axis:
    """One value on each axis: a version (None: the default offer), a suite list, an identity."""

    version: int | None
    ciphers: tuple[Suite, ...] | None
    ciphers_label: str
    identity: ClientIdentity | None
    identity_label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    version: str
    ciphers: str
    identity: str
    outcome: str
    result: ProbeResult


def axes(
    versions: list[int | None],
    cipher_lists: list[tuple[str, tuple[Suite, ...] | None]],
    identities: list[tuple[str, ClientIdentity | None]],
) -> list[Axis]:
    return [
        Axis(version=v, ciphers=c, ciphers_label=cl, identity=i, identity_label=il)
        for v, (cl, c), (il, i) in itertools.product(versions, cipher_lists, identities)
    ]


def request_for(base: ProbeRequest, axis: Axis) -> ProbeRequest:
    offer = make_offer(axis.version, None, None, axis.ciphers)
    return replace(base, offer=offer, identity=axis.identity, partner_versions=False)


async def run_matrix(base: ProbeRequest, cells: list[Axis], per_host: int = 8) -> list[Cell]:
    requests = [request_for(base, a) for a in cells]  # InputError here: nothing has run yet
    out: list[Cell | None] = [None] * len(cells)
    limiter = trio.CapacityLimiter(per_host)

    async def one(i: int) -> None:
        async with limiter:
            r = await run_probe(requests[i])
        a = cells[i]
        out[i] = Cell(
            version=(registry.version_name(a.version) or hex(a.version))
            if a.version
            else "default",
            ciphers=a.ciphers_label,
            identity=a.identity_label,
            outcome=r.outcome,
            result=r,
        )

    async with trio.open_nursery() as nursery:
        for i in range(len(cells)):
            nursery.start_soon(one, i)
    return [c for c in out if c is not None]


def render_matrix(target: str, cells: list[Cell]) -> str:
    """Rows: version x cipher list; columns: client identities."""
    idents = list(dict.fromkeys(c.identity for c in cells))
    rows = list(dict.fromkeys((c.version, c.ciphers) for c in cells))
    by = {(c.version, c.ciphers, c.identity): c.outcome for c in cells}
    head = ["version", "ciphers", *idents]
    table = [head] + [[v, cl, *(by.get((v, cl, i), "-") for i in idents)] for v, cl in rows]
    widths = [max(len(r[k]) for r in table) for k in range(len(head))]
    lines = [f"tlsprobe matrix {target}"]
    for n, row in enumerate(table):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)
