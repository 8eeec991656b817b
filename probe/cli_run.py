"""The `run` and `history` commands: regression plans, their JUnit/JSON, history and drift."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .cli import app
from .errors import InputError

if TYPE_CHECKING:
    from .runner import CheckResult


def _check_doc(r: CheckResult) -> dict[str, object]:
    from .result import to_jsonable

    return {"name": r.name, "kind": r.kind, "target": r.target, "passed": r.passed,
            "expected": r.expected, "got": r.got, "failures": list(r.failures),
            "result": to_jsonable(r.result)}  # fmt: skip


@app.command()
def run(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN.toml", help="The plan to run.")],
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    db: Annotated[
        Path | None,
        typer.Option(help="History database (default $XDG_DATA_HOME/tlsprobe/history.sqlite)."),
    ] = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not store this run.")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Checks at once.")] = 20,
    per_host: Annotated[int, typer.Option("--per-host", help="Checks at once per host.")] = 10,
    expiry_days: Annotated[
        int, typer.Option(help="Warn about certificates expiring within N days.")
    ] = 30,
    lab_port_base: Annotated[
        int | None, typer.Option(help="Port base of the lab for lab:SCENARIO targets.")
    ] = None,
    lab_pki_dir: Annotated[
        Path | None, typer.Option(help="The lab's --pki-dir, for lab:SCENARIO targets.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help="Also print one JSON line per check on stdout as each finishes (an "
            "interrupted run keeps what it found); the run summary follows as the last line.",
        ),
    ] = False,
) -> None:
    """Run a regression plan: every check a real probe, scan or overlap, concurrently; compare
    with the previous run of the same plan (drift) and list certificates by expiry.

    Exit 0 when every expectation holds, 1 when one fails, 2 for an unreadable plan.

    Example: tlsprobe run profiles/plans/lab.toml --junit report.xml
    """
    # Plans, history and JUnit load only for this command (start-up time of the others).
    import trio

    from .junit import write_junit
    from .plan import load_plan
    from .result import SCHEMA_VERSION, to_jsonable
    from .runner import RunSettings, RunStats, expiry_calendar, run_plan
    from .store import connect, default_db, drift, previous_run, save_run

    if concurrency < 1 or per_host < 1:
        raise InputError("--concurrency and --per-host must be at least 1")
    if lab_port_base is not None and not 1 <= lab_port_base <= 65535:
        raise InputError(f"--lab-port-base {lab_port_base}: give a port from 1 to 65535")
    plan = load_plan(plan_file)
    settings = RunSettings(
        concurrency=concurrency,
        per_host=per_host,
        lab_port_base=lab_port_base,
        lab_pki_dir=lab_pki_dir,
    )
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tty = sys.stderr.isatty() and not as_json

    def progress(res: CheckResult, done: int, total: int) -> None:
        if jsonl:
            sys.stdout.write(json.dumps(_check_doc(res)) + "\n")
            sys.stdout.flush()
        if tty:
            mark = "ok  " if res.passed else "FAIL"
            sys.stderr.write(f"\r\033[K[{done}/{total}] {mark} {res.name}")
            sys.stderr.flush()

    stats = RunStats()
    results = trio.run(run_plan, plan, settings, progress, stats)
    if tty:
        sys.stderr.write("\r\033[K")
    changes = []
    if not no_history:
        with connect(db or default_db()) as conn:
            run_id = save_run(conn, plan.path, plan.name, started, results)
            changes = drift(conn, previous_run(conn, plan.path, run_id), run_id, expiry_days)
    if junit is not None:
        try:
            write_junit(junit, plan.name, results)
        except OSError as exc:
            raise InputError(f"--junit {junit}: cannot write ({exc.strerror})") from None
    failed = sum(not r.passed for r in results)
    # The JSON lists what the text does: certificates within the --expiry-days window.
    calendar = expiry_calendar(results, expiry_days)
    if as_json or jsonl:
        doc = {
            "schema_version": SCHEMA_VERSION,
            "plan": str(plan.path),
            "name": plan.name,
            "checks": [_check_doc(r) for r in results],
            "drift": to_jsonable(changes),
            "expiry": to_jsonable(calendar),
            "passed": len(results) - failed,
            "failed": failed,
            "stats": to_jsonable(stats),
        }  # fmt: skip
        if jsonl:  # the checks went out already, one line each: end with the run's summary
            doc.pop("checks")
            typer.echo(json.dumps(doc))
        else:
            typer.echo(json.dumps(doc, indent=2))
    else:
        width = max(len(r.name) for r in results)
        typer.echo(f"tlsprobe run {plan.name} ({plan.path})")
        for r in results:
            mark = "PASS" if r.passed else "FAIL"
            typer.echo(f"  {mark}  {r.name:<{width}}  {r.result.outcome:<26} {r.target}")
            for f in r.failures:
                typer.echo(f"          {f}")
        if changes:
            typer.echo("Drift since the previous run:")
            for c in changes:
                typer.echo(f"  {c.check}: {c.detail}")
        if calendar:
            typer.echo(f"Certificates expiring within {expiry_days} days (soonest first):")
            for row in calendar:
                typer.echo(
                    f"  {row.days_left:>5} days  {row.not_after[:10]}  {row.subject}  [{row.check}]"
                )
        typer.echo(f"{len(results) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)


@app.command()
def history(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN.toml", help="The plan.")],
    since: Annotated[
        str | None, typer.Option(help="Only runs started on or after this date (YYYY-MM-DD).")
    ] = None,
    db: Annotated[Path | None, typer.Option(help="History database.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List past runs of a plan. Reads only: a missing database is reported, not created.

    Example: tlsprobe history profiles/plans/lab.toml --since 2026-11-01
    """
    from .result import SCHEMA_VERSION, to_jsonable
    from .store import connect, default_db, runs

    if since is not None:
        try:
            dt.date.fromisoformat(since[:10])
        except ValueError:
            raise InputError(f"--since {since!r}: give a date as YYYY-MM-DD") from None
    # A mistyped plan path would otherwise read as "no runs recorded".
    if plan_file.is_dir():
        raise InputError(f"plan {plan_file}: is a directory, give the plan file")
    if not plan_file.exists():
        raise InputError(f"plan {plan_file}: no such file")
    path = db or default_db()
    rows = []
    if path.exists():
        with connect(path, readonly=True) as conn:
            rows = runs(conn, plan_file.resolve(), since)
    elif not as_json:
        typer.echo(f"no history database at {path} yet (`tlsprobe run` creates it)")
        return
    if as_json:
        typer.echo(
            json.dumps({"schema_version": SCHEMA_VERSION, "runs": to_jsonable(rows)}, indent=2)
        )
        return
    if not rows:
        typer.echo(f"no runs of {plan_file.resolve()} recorded")
        return
    for r in rows:
        typer.echo(f"  #{r.id}  {r.started}  {r.passed} passed, {r.failed} failed")
