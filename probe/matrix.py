"""`tlsprobe matrix`: the outcome of every combination of versions, cipher groups and client
identities, so an operator sees at once which partner configuration works.

Every cell is one real probe (the same engine and options as `probe`); cells run concurrently
under a per-host limit, and all inputs are checked before the first connection.

A cipher list need not fit every version row (`--ciphers AES128-SHA` has nothing TLS 1.3 can
offer): such a cell is "not applicable", shown and not tried. Only a matrix with no cell to try
is bad input. A cell whose offer the partner refuses for its version asks which versions the
partner speaks, as `probe` does, so both report the same outcome and causes; the answer depends
on the target alone, so the raw hellos behind it go out once per matrix, not once per cell.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import trio

from .errors import InputError
from .identity import ClientIdentity
from .prober import ProbeRequest, partner_versions_of, run_probe
from .result import ProbeResult
from .tlsconfig import build_context, make_offer
from .wire import registry
from .wire.registry import Suite

NOT_APPLICABLE = "not_applicable"  # a cell's outcome when its offer cannot be made at all


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
    outcome: str  # an outcome of the taxonomy, or NOT_APPLICABLE
    result: ProbeResult | None  # None: not tried
    note: str | None = None  # why a cell was not tried


def axes(
    versions: list[int | None],
    cipher_lists: list[tuple[str, tuple[Suite, ...] | None]],
    identities: list[tuple[str, ClientIdentity | None]],
) -> list[Axis]:
    return [
        Axis(version=v, ciphers=c, ciphers_label=cl, identity=i, identity_label=il)
        for v, (cl, c), (il, i) in itertools.product(versions, cipher_lists, identities)
    ]


def _version_label(version: int | None) -> str:
    return (registry.version_name(version) or hex(version)) if version else "default"


def request_for(base: ProbeRequest, axis: Axis) -> ProbeRequest | str:
    """The probe of one cell, or why the cell cannot be tried. Input wrong whatever the row
    (an unknown version, a suite OpenSSL lacks) still raises InputError."""
    try:
        offer = make_offer(axis.version, None, None, axis.ciphers)
    except InputError:
        # Each axis alone must be valid (these raise if not); then the pair is what fails.
        make_offer(axis.version, None, None, None)
        make_offer(None, None, None, axis.ciphers)
        return f"{axis.ciphers_label}: no suite in this list can be used with " + _version_label(
            axis.version
        )
    try:
        # The context the probe will use (shared through the cache): built now, so a list the
        # local OpenSSL refuses is found before the first connection.
        build_context(offer, identity=axis.identity, ca_file=base.ca_file)
    except InputError as exc:
        return str(exc)
    return replace(base, offer=offer, identity=axis.identity)


class _SharedPartnerVersions:
    """`partner_lookup` for all cells of one matrix: the first cell that needs the partner's
    versions asks (raw hellos); the others wait for that answer instead of asking again."""

    def __init__(self) -> None:
        self._asked = False
        self._done = trio.Event()
        self._answer: tuple[tuple[int, int], ...] = ()

    async def __call__(self, req: ProbeRequest) -> tuple[tuple[int, int], ...]:
        if self._asked:
            await self._done.wait()
        else:
            self._asked = True
            try:
                self._answer = await partner_versions_of(req)
            finally:
                self._done.set()  # never leave waiters hanging, even if cancelled
        return self._answer


async def run_matrix(base: ProbeRequest, cells: list[Axis], per_host: int = 8) -> list[Cell]:
    planned = [request_for(base, a) for a in cells]  # InputError here: nothing has run yet
    if cells and all(isinstance(p, str) for p in planned):
        raise InputError(f"no cell of the matrix can be tried ({planned[0]})")
    out: list[Cell] = [
        Cell(
            version=_version_label(a.version),
            ciphers=a.ciphers_label,
            identity=a.identity_label,
            outcome=NOT_APPLICABLE,
            result=None,
            note=p if isinstance(p, str) else None,
        )
        for a, p in zip(cells, planned, strict=True)
    ]
    limiter = trio.CapacityLimiter(per_host)
    lookup = _SharedPartnerVersions()  # every cell has base's target, SNI and STARTTLS

    async def one(i: int, req: ProbeRequest) -> None:
        async with limiter:
            r = await run_probe(req, partner_lookup=lookup)
        out[i] = replace(out[i], outcome=r.outcome, result=r)

    async with trio.open_nursery() as nursery:
        for i, p in enumerate(planned):
            if not isinstance(p, str):
                nursery.start_soon(one, i, p)
    return out


def render_matrix(target: str, cells: list[Cell]) -> str:
    """Rows: version x cipher list; columns: client identities."""
    idents = list(dict.fromkeys(c.identity for c in cells))
    rows = list(dict.fromkeys((c.version, c.ciphers) for c in cells))
    by = {(c.version, c.ciphers, c.identity): _shown(c.outcome) for c in cells}
    head = ["version", "ciphers", *idents]
    table = [head] + [[v, cl, *(by.get((v, cl, i), "-") for i in idents)] for v, cl in rows]
    widths = [max(len(r[k]) for r in table) for k in range(len(head))]
    lines = [f"tlsprobe matrix {target}"]
    for n, row in enumerate(table):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    if any(c.outcome == NOT_APPLICABLE for c in cells):
        lines.append("  n/a: not tried, this client cannot offer that cipher list at that version")
    return "\n".join(lines)


def _shown(outcome: str) -> str:
    return "n/a" if outcome == NOT_APPLICABLE else outcome
