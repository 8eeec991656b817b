"""Run history in SQLite, and drift between a run and the previous run of the same plan.

The schema is versioned with ``PRAGMA user_version`` and upgraded by the ``MIGRATIONS`` list
in order. WAL mode lets ``tlsprobe history`` read while a run writes; each run is written in one
transaction, so a run killed midway leaves no trace and earlier runs stay readable. Rows hold
what drift needs (outcome, version, suite, certificate fingerprints and dates) and the result
JSON, which never contains keys or passwords (results do not carry them). Scan and overlap
checks (migration 2) add a ``kind`` and ``facts``, the JSON drift compares for them: offered
versions and accepted suites for a scan, the verdict and predicted pair for an overlap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .result import to_jsonable
from .runner import CheckResult, OverlapSummary, ScanSummary

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, checks, certificates
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        plan TEXT NOT NULL,
        plan_name TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL
    );
    CREATE INDEX runs_plan ON runs(plan, id);
    CREATE TABLE checks (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        target TEXT NOT NULL,
        passed INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        version TEXT,
        cipher TEXT,
        result TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE certificates (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        check_name TEXT NOT NULL,
        position INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        not_after TEXT NOT NULL,
        PRIMARY KEY (run_id, check_name, position)
    );
    """,
    # 2: scan and overlap checks: their kind, and the facts drift compares (JSON)
    """
    ALTER TABLE checks ADD COLUMN kind TEXT NOT NULL DEFAULT 'probe';
    ALTER TABLE checks ADD COLUMN facts TEXT
    """,
)


def default_db() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tlsprobe" / "history.sqlite"


@contextmanager
def connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """The history database, created and upgraded as needed. ``readonly`` is for queries
    (`tlsprobe history`): it opens an existing file only and writes nothing, no directory, no
    file, no WAL switch, no migration (every schema version has the ``runs`` table). It opens
    with mode=rw, not mode=ro, because a read-only connection to a WAL database leaves its
    -wal and -shm files behind; mode=rw never creates the database either."""
    try:
        if readonly:
            uri = f"{path.resolve().as_uri()}?mode=rw"
            db = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=10, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"history database {path}: {exc}") from None
    try:
        if readonly:
            _check_version(db, path)
        else:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            _migrate(db, path)
        yield db
    except sqlite3.DatabaseError as exc:
        raise InputError(f"history database {path}: {exc} (not a tlsprobe database?)") from None
    finally:
        db.close()


def _check_version(db: sqlite3.Connection, path: Path) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise InputError(
            f"history database {path} has schema {version}, newer than this tlsprobe knows"
        )
    return version


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version = _check_version(db, path)
    for number in range(version, len(MIGRATIONS)):
        # executescript() would commit on its own; statements one by one keep the migration
        # and its version bump in one transaction.
        db.execute("BEGIN IMMEDIATE")
        for statement in MIGRATIONS[number].split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute("COMMIT")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    id: int
    plan: str
    plan_name: str
    started: str
    finished: str
    passed: int
    failed: int


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def save_run(
    db: sqlite3.Connection, plan: Path, plan_name: str, started: str, results: list[CheckResult]
) -> int:
    """Write one run atomically; returns its id."""
    passed = sum(r.passed for r in results)
    db.execute("BEGIN IMMEDIATE")
    try:
        cur = db.execute(
            "INSERT INTO runs (plan, plan_name, started, finished, passed, failed)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (str(plan), plan_name, started, _now(), passed, len(results) - passed),
        )
        run_id = int(cur.lastrowid or 0)
        for r in results:
            version = cipher = facts = None
            if isinstance(r.result, ScanSummary | OverlapSummary):
                facts = json.dumps(_facts(r.result))
            elif (n := r.result.negotiated) is not None:
                version, cipher = n.version, n.cipher.code if n.cipher else None
            db.execute(
                "INSERT INTO checks (run_id, name, target, passed, outcome, version, cipher,"
                " result, kind, facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, r.name, r.target, int(r.passed), r.result.outcome, version, cipher,
                    json.dumps(to_jsonable(r.result)), r.kind, facts,
                ),
            )  # fmt: skip
            if isinstance(r.result, ScanSummary | OverlapSummary):
                continue
            for pos, c in enumerate(r.result.server_certificates):
                db.execute(
                    "INSERT INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, r.name, pos, c.sha256, c.subject, c.issuer, c.not_after),
                )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return run_id


def _facts(result: ScanSummary | OverlapSummary) -> dict[str, Any]:
    if isinstance(result, OverlapSummary):
        p = result.predicted
        return {
            "verdict": result.verdict,
            "predicted": f"{p.version} {p.cipher.iana or p.cipher.name}" if p else None,
        }
    suites: dict[str, dict[str, Any]] = {}
    for proto in result.protocols:
        for c in proto.ciphers:
            suites.setdefault(c.code, {"name": c.iana or c.openssl or c.code, "weak": list(c.weak)})
    return {
        "versions": [p.version for p in result.protocols if p.supported],
        "suites": suites,
    }


def runs(db: sqlite3.Connection, plan: Path, since: str | None = None) -> list[RunRow]:
    query = "SELECT id, plan, plan_name, started, finished, passed, failed FROM runs WHERE plan = ?"
    args: list[Any] = [str(plan)]
    if since:
        query += " AND started >= ?"
        args.append(since)
    return [RunRow(id=r[0], plan=r[1], plan_name=r[2], started=r[3], finished=r[4],
                   passed=r[5], failed=r[6])
            for r in db.execute(query + " ORDER BY id", args)]  # fmt: skip


def previous_run(db: sqlite3.Connection, plan: Path, before: int) -> int | None:
    row = db.execute(
        "SELECT max(id) FROM runs WHERE plan = ? AND id < ?", (str(plan), before)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    check: str
    # outcome | version | cipher | certificate | issuer | expiry | new_check | gone | kind;
    # scan checks: version_added | version_removed | suite_added | suite_removed |
    # new_weak_suite; overlap checks: verdict
    kind: str
    before: str | None
    after: str | None
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    outcome: str
    version: str | None
    cipher: str | None
    kind: str
    facts: dict[str, Any] | None


def _checks(db: sqlite3.Connection, run_id: int) -> dict[str, _Row]:
    return {
        r[0]: _Row(outcome=r[1], version=r[2], cipher=r[3], kind=r[4],
                   facts=json.loads(r[5]) if r[5] else None)
        for r in db.execute(
            "SELECT name, outcome, version, cipher, kind, facts FROM checks WHERE run_id = ?",
            (run_id,),
        )
    }  # fmt: skip


def _scan_drift(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Drift]:
    """Versions and suites offered now that were not (or the reverse); a newly accepted weak
    suite is reported once, as new_weak_suite."""
    out: list[Drift] = []
    for v in new["versions"]:
        if v not in old["versions"]:
            out.append(Drift(check=name, kind="version_added", before=None, after=v,
                             detail=f"{v} is offered now"))  # fmt: skip
    for v in old["versions"]:
        if v not in new["versions"]:
            out.append(Drift(check=name, kind="version_removed", before=v, after=None,
                             detail=f"{v} is no longer offered"))  # fmt: skip
    for code in sorted(new["suites"].keys() - old["suites"].keys()):
        suite = new["suites"][code]
        if suite["weak"]:
            why = f"weak suite {suite['name']} ({', '.join(suite['weak'])}) accepted now"
            out.append(Drift(check=name, kind="new_weak_suite", before=None, after=suite["name"],
                             detail=why))  # fmt: skip
        else:
            out.append(Drift(check=name, kind="suite_added", before=None, after=suite["name"],
                             detail=f"{suite['name']} accepted now"))  # fmt: skip
    for code in sorted(old["suites"].keys() - new["suites"].keys()):
        suite = old["suites"][code]
        out.append(Drift(check=name, kind="suite_removed", before=suite["name"], after=None,
                         detail=f"{suite['name']} no longer accepted"))  # fmt: skip
    return out


def _leaf_certs(db: sqlite3.Connection, run_id: int) -> dict[str, tuple[str, str, str, str]]:
    return {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in db.execute(
            "SELECT check_name, sha256, subject, issuer, not_after FROM certificates"
            " WHERE run_id = ? AND position = 0",
            (run_id,),
        )
    }


def drift(
    db: sqlite3.Connection, before: int | None, after: int, expiry_days: int = 30
) -> list[Drift]:
    """What changed since the previous run, and leaf certificates expiring within the window."""
    out: list[Drift] = []
    now_checks = _checks(db, after)
    now_certs = _leaf_certs(db, after)
    if before is not None:
        old_checks = _checks(db, before)
        old_certs = _leaf_certs(db, before)
        for name, row in now_checks.items():
            if name not in old_checks:
                out.append(Drift(check=name, kind="new_check", before=None, after=row.outcome,
                                 detail="not in the previous run"))  # fmt: skip
                continue
            was = old_checks[name]
            if was.kind != row.kind:
                out.append(Drift(check=name, kind="kind", before=was.kind, after=row.kind,
                                 detail=f"now a {row.kind} check (was {was.kind})"))  # fmt: skip
                continue
            pairs = [("outcome", was.outcome, row.outcome), ("version", was.version, row.version),
                     ("cipher", was.cipher, row.cipher)]  # fmt: skip
            if row.kind == "overlap":
                pairs = [("verdict", was.outcome, row.outcome)]
            for kind, old, new in pairs:
                if old != new:
                    out.append(Drift(check=name, kind=kind, before=old, after=new,
                                     detail=f"{kind} changed from {old} to {new}"))  # fmt: skip
            # Both scanned: compare what is offered (an unreachable target offers nothing, and
            # the outcome drift above already says so).
            if row.kind == "scan" and was.outcome == row.outcome == "scanned":
                out.extend(_scan_drift(name, was.facts or {}, row.facts or {}))
            if name in old_certs and name in now_certs:
                o_sha, _, o_issuer, _ = old_certs[name]
                n_sha, n_subject, n_issuer, _ = now_certs[name]
                if o_sha != n_sha:
                    out.append(Drift(check=name, kind="certificate", before=o_sha[:16],
                                     after=n_sha[:16],
                                     detail=f"new server certificate {n_subject}"))  # fmt: skip
                if o_issuer != n_issuer:
                    out.append(Drift(check=name, kind="issuer", before=o_issuer, after=n_issuer,
                                     detail="the issuer changed"))  # fmt: skip
        for name in old_checks.keys() - now_checks.keys():
            out.append(Drift(check=name, kind="gone", before=old_checks[name].outcome, after=None,
                             detail="no longer in the plan"))  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    for name, (_, subject, _, not_after) in now_certs.items():
        days = (dt.datetime.fromisoformat(not_after) - now).days
        if days <= expiry_days:
            what = "expired" if days < 0 else f"expires in {days} days"
            out.append(Drift(check=name, kind="expiry", before=None, after=not_after,
                             detail=f"{subject} {what}"))  # fmt: skip
    return out
