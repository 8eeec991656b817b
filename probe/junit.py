"""JUnit XML for a plan run: one testsuite, one testcase per check.

Failure messages say expected vs got and the diagnosis, so a CI page shows why a link broke.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .result import ProbeResult
from .runner import CheckResult, ScanSummary


def _summary(r: CheckResult) -> str:
    """One line for system-out: what the check saw, whatever its kind."""
    res = r.result
    if isinstance(res, ProbeResult):
        return f"outcome {res.outcome} (phase {res.phase})"
    if isinstance(res, ScanSummary):
        offered = ", ".join(r.got.get("versions_offered", [])) or "nothing"
        weak = ", ".join(r.got.get("weak_suites", [])) or "none"
        suites = len(r.got.get("suites", []))
        return f"scan {res.outcome}: offered {offered}; {suites} suites; weak: {weak}"
    predicted = r.got.get("predicted") or "no pair"
    return f"overlap with {res.profile}: {res.verdict} ({predicted}); {res.reason}"


def junit_xml(plan_name: str, results: list[CheckResult]) -> bytes:
    failed = sum(not r.passed for r in results)
    total_s = sum(r.duration_ms for r in results) / 1000
    suite = ET.Element(
        "testsuite",
        name=f"tlsprobe {plan_name}",
        tests=str(len(results)),
        failures=str(failed),
        errors="0",
        skipped="0",
        time=f"{total_s:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", name=r.name, classname=r.target, time=f"{r.duration_ms / 1000:.3f}"
        )
        if not r.passed:
            fail = ET.SubElement(case, "failure", message=r.failures[0], type="expectation")
            fail.text = "\n".join(r.failures)
        out = ET.SubElement(case, "system-out")
        out.text = _summary(r)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failed))
    root.append(suite)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def write_junit(path: Path, plan_name: str, results: list[CheckResult]) -> None:
    path.write_bytes(junit_xml(plan_name, results))
