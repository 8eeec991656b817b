"""The lab's scenario catalog: ``profiles/lab/scenarios.toml`` read and checked.

The file is data the product and its tests depend on, so it is validated strictly: an unknown
key, a wrong type or an unknown outcome is a :class:`CatalogError` naming the scenario and key.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import profiles_dir
from ..result import OUTCOMES

KINDS = ("tls", "script", "ftp")
ACTIONS = ("alert", "reset", "plaintext", "silent", "sslv3", "legacy-3des")
PROBE_KEYS = {"tls_max": str, "tls_min": str, "starttls": str, "mq_channel": str, "timeout": float}


class CatalogError(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Expect:
    outcome: str
    cause: str | None = None
    probe: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    summary: str
    seeds: str
    kind: str
    expect: Expect
    identity: str = "good"
    chain: bool = True
    min_version: str | None = None
    max_version: str | None = None
    ciphers: str | None = None
    client_auth: str = "none"
    ca_names: str = "lab"
    after: str = "hold"
    select_by_sni: str | None = None
    action: str | None = None
    alert: int | None = None
    text: str | None = None
    auth_tls: str = "accept"


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "summary": str, "seeds": str, "kind": str, "identity": str, "chain": bool,
    "min_version": str, "max_version": str, "ciphers": str, "client_auth": str,
    "ca_names": str, "after": str, "select_by_sni": str, "action": str, "alert": int,
    "text": str, "auth_tls": str, "expect": dict,
}  # fmt: skip
_CHOICES = {
    "kind": KINDS,
    "action": ACTIONS,
    "client_auth": ("none", "optional", "required"),
    "ca_names": ("lab", "empty", "huge"),
    "after": ("hold", "close"),
    "select_by_sni": ("mq",),
    "auth_tls": ("accept", "refuse"),
}


def _scenario(raw: dict[str, Any], path: Path) -> Scenario:
    name = raw.get("name", "?")
    where = f"{path}: scenario {name!r}"
    for key, value in raw.items():
        want = _FIELDS.get(key)
        if want is None:
            raise CatalogError(f"{where}: unknown key {key!r}")
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise CatalogError(f"{where}: {key} must be {getattr(want, '__name__', want)}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise CatalogError(f"{where}: {key} = {value!r}, expected one of {_CHOICES[key]}")
    for key in ("name", "summary", "seeds", "kind", "expect"):
        if key not in raw:
            raise CatalogError(f"{where}: missing {key}")
    exp = dict(raw["expect"])
    outcome = exp.pop("outcome", None)
    if outcome not in OUTCOMES:
        raise CatalogError(f"{where}: expect.outcome {outcome!r} is not an outcome")
    cause = exp.pop("cause", None)
    probe = exp.pop("probe", {})
    if exp:
        raise CatalogError(f"{where}: unknown expect keys {sorted(exp)}")
    for key, value in probe.items():
        if key not in PROBE_KEYS:
            raise CatalogError(f"{where}: unknown expect.probe key {key!r}")
        if not isinstance(value, PROBE_KEYS[key] | int):
            raise CatalogError(f"{where}: expect.probe.{key} has the wrong type")
    fields = {k: v for k, v in raw.items() if k != "expect"}
    return Scenario(**fields, expect=Expect(outcome=outcome, cause=cause, probe=dict(probe)))


@functools.cache
def load_catalog(path: Path | None = None) -> tuple[Scenario, ...]:
    path = path or profiles_dir() / "lab" / "scenarios.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    scenarios = tuple(_scenario(raw, path) for raw in data.get("scenario", []))
    names = [s.name for s in scenarios]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise CatalogError(f"{path}: duplicate scenario names {sorted(dupes)}")
    return scenarios


def scenario_names() -> tuple[str, ...]:
    return tuple(s.name for s in load_catalog())
