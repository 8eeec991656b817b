"""Regression plans: TOML files of checks with targets, probe options and expectations.

A malformed plan never runs: every unknown key, wrong type or bad value is a
:class:`PlanError` naming the file, the line and the key (tomllib gives no positions, so the
line is found by looking for the key inside the check's table in the text).

Targets are ``HOST[:PORT]`` or ``lab:SCENARIO`` (a scenario of `tlsprobe lab`, at the lab's
port base plus its catalog index, trusted through the lab's ``ca.crt``). Paths are relative to
the plan file; ``~`` and ``$VARS`` are expanded. Passwords never sit in a plan: give
``cert_password_env`` (a variable name) or ``cert_password_file``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .result import OUTCOMES

# Probe options a plan may set, in [defaults] or per check, with their types.
OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "starttls": str,
    "sni": str,
    "tls": str,
    "tls_min": str,
    "tls_max": str,
    "ciphers": str,
    "mq_channel": str,
    "cert": str,
    "key": str,
    "cert_password_env": str,
    "cert_password_file": str,
    "ca": str,
    "no_verify": bool,
    "timeout": (int, float),
    "grace": (int, float),
    "lab_port_base": int,
    "lab_pki_dir": str,
}
EXPECT_TYPES: dict[str, type | tuple[type, ...]] = {
    "outcome": str,
    "version": str,
    "cipher": str,
    "days_left_min": int,
    "client_cert_requested": bool,
    "cause": str,
}
CHECK_KEYS = {"name", "target", "expect", *OPTION_TYPES}
PATH_OPTIONS = ("cert", "key", "ca", "cert_password_file", "lab_pki_dir")


class PlanError(InputError):
    """A plan that cannot run (exit 2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    target: str
    options: dict[str, Any]
    expect: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    path: Path
    name: str
    checks: tuple[Check, ...]
    defaults: dict[str, Any] = field(default_factory=dict)


def _line_of(text: str, key: str, occurrence: int = 0, section: str = "[[check]]") -> int:
    """Best-effort line of ``key`` in the ``occurrence``-th ``section`` (1-based lines)."""
    lines = text.splitlines()
    start = 0
    if section:
        seen = -1
        for i, line in enumerate(lines):
            if line.strip() == section:
                seen += 1
                if seen == occurrence:
                    start = i
                    break
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=|[{{,]\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if pattern.search(lines[i]):
            return i + 1
    return start + 1


def _check_types(table: dict[str, Any], types: dict[str, Any], where: Callable[[str], str]) -> None:
    for key, value in table.items():
        want = types.get(key)
        if want is None:
            raise PlanError(f"{where(key)}: unknown key {key!r}")
        wants = want if isinstance(want, tuple) else (want,)
        # bool is an int in Python; a plan's `timeout = true` is still a mistake.
        ok = isinstance(value, wants) and not (isinstance(value, bool) and bool not in wants)
        if not ok:
            names = " or ".join(t.__name__ for t in wants)
            raise PlanError(f"{where(key)}: {key} must be {names}, not {type(value).__name__}")


def _expand(value: str, base: Path) -> str:
    expanded = os.path.expanduser(os.path.expandvars(value))
    path = Path(expanded)
    return str(path if path.is_absolute() else (base / path))


def load_plan(path: Path) -> Plan:
    from .identity import read_input_file

    raw = read_input_file(path, "plan")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError(f"plan {path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"plan {path}: {exc}") from None
    unknown = set(data) - {"plan", "defaults", "check"}
    if unknown:
        key = sorted(unknown)[0]
        raise PlanError(f"{path}:{_line_of(text, key, section='')}: unknown table or key {key!r}")
    meta = data.get("plan", {})
    if not isinstance(meta, dict) or set(meta) - {"name"}:
        raise PlanError(f"{path}: [plan] takes only name")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise PlanError(f"{path}: defaults must be a table")
    _check_types(
        defaults,
        OPTION_TYPES,
        lambda k: f"{path}:{_line_of(text, k, section='[defaults]')}: [defaults]",
    )
    raw_checks = data.get("check", [])
    if not isinstance(raw_checks, list) or not raw_checks:
        raise PlanError(f"{path}: no [[check]] tables; a plan needs at least one check")
    base = path.resolve().parent
    checks: list[Check] = []
    names: set[str] = set()
    for i, raw_check in enumerate(raw_checks):
        label = raw_check.get("name", f"#{i + 1}")

        def where(key: str, i: int = i, label: object = label) -> str:
            return f"{path}:{_line_of(text, key, i)}: check {label!r}"

        for key in raw_check:
            if key not in CHECK_KEYS:
                raise PlanError(f"{where(key)}: unknown key {key!r}")
        for key in ("name", "target"):
            if not isinstance(raw_check.get(key), str) or not raw_check[key].strip():
                raise PlanError(f"{where(key)}: {key} is required and must be a string")
        if raw_check["name"] in names:
            raise PlanError(f"{where('name')}: duplicate check name {raw_check['name']!r}")
        names.add(raw_check["name"])
        options = {k: v for k, v in raw_check.items() if k in OPTION_TYPES}
        _check_types(options, OPTION_TYPES, where)
        expect = raw_check.get("expect", {"outcome": "connected"})
        if not isinstance(expect, dict):
            raise PlanError(f"{where('expect')}: expect must be a table")
        _check_types(expect, EXPECT_TYPES, where)
        if "outcome" in expect and expect["outcome"] not in OUTCOMES:
            raise PlanError(f"{where('outcome')}: unknown outcome {expect['outcome']!r}")
        merged = {**defaults, **options}
        if "cert_password" in raw_check or "cert_password" in defaults:
            raise PlanError(f"{where('cert_password')}: use cert_password_env or _file")
        for key in PATH_OPTIONS:
            if key in merged:
                merged[key] = _expand(str(merged[key]), base)
        checks.append(
            Check(
                name=raw_check["name"],
                target=raw_check["target"],
                options=merged,
                expect=dict(expect),
            )
        )
    name = meta.get("name") if isinstance(meta.get("name"), str) else path.stem
    return Plan(path=path.resolve(), name=str(name), checks=tuple(checks), defaults=defaults)
