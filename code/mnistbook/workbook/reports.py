"""The grades of a class: what one run of the grader found, and the files and the table
it writes.

The JSON is fixed, for tools outside the book::

    {"submissions": [{"name": str, "path": str,
                      "checks": [{"check": str, "passed": bool, "message": str,
                                  "seconds": float}],
                      "passed": int, "total": int}],
     "isolation": str, "seed": int}

The CSV has a row per submission and a column per check (1 passed, 0 not); the JUnit
XML a test suite per submission and a test case per check, as CI systems read it.
``python -m mnistbook.workbook passed REPORT CHECK`` reads a JUnit report back and exits
0 if the check passed: the GitHub Classroom workflow awards each check's points with it.
"""

import argparse
import csv
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

NOT_SUBMITTED = "not submitted"


@dataclass
class Check:
    check: str
    passed: bool
    message: str
    seconds: float


@dataclass
class Graded:
    """One submission's grade."""

    name: str  # the file or folder name
    path: str  # as given on the command line
    checks: list[Check]
    seconds: float = 0.0  # wall time in its sandbox
    stopped: str = ""  # why the sandbox stopped it, if it did

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def total(self) -> int:
        return len(self.checks)


@dataclass
class Report:
    submissions: list[Graded]
    isolation: str
    seed: int
    seconds: float = 0.0  # wall time of the whole run
    jobs: int = 1
    skipped: list[str] = field(default_factory=list)  # checks left out (--no-training)

    def as_json(self) -> dict:
        return {
            "submissions": [
                {
                    "name": s.name,
                    "path": s.path,
                    "checks": [
                        {
                            "check": c.check,
                            "passed": c.passed,
                            "message": c.message,
                            "seconds": c.seconds,
                        }
                        for c in s.checks
                    ],
                    "passed": s.passed,
                    "total": s.total,
                }
                for s in self.submissions
            ],
            "isolation": self.isolation,
            "seed": self.seed,
        }

    @property
    def check_names(self) -> list[str]:
        return [c.check for c in self.submissions[0].checks] if self.submissions else []


def write_json(report: Report, path: Path) -> None:
    text = json.dumps(report.as_json(), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def write_csv(report: Report, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "path", "passed", "total", *report.check_names])
        for s in report.submissions:
            writer.writerow(
                [s.name, s.path, s.passed, s.total, *(int(c.passed) for c in s.checks)]
            )


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (a learner's message may)."""
    return _NOT_XML.sub("\ufffd", text)


def write_junit(report: Report, path: Path) -> None:
    total = sum(s.total for s in report.submissions)
    failures = sum(s.total - s.passed for s in report.submissions)
    suites = ET.Element(
        "testsuites",
        name="mnistbook workbook",
        tests=str(total),
        failures=str(failures),
        time=f"{report.seconds:.3f}",
    )
    for s in report.submissions:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=_xml(s.name),
            tests=str(s.total),
            failures=str(s.total - s.passed),
            time=f"{s.seconds:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("path", s.path),
            ("isolation", report.isolation),
            ("seed", str(report.seed)),
        ):
            ET.SubElement(properties, "property", name=name, value=_xml(value))
        for c in s.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_xml(s.name),
                name=c.check,
                time=f"{c.seconds:.3f}",
            )
            if c.passed:
                ET.SubElement(case, "system-out").text = _xml(c.message)
            else:
                first = c.message.strip().split("\n")[0]
                failure = ET.SubElement(case, "failure", message=_xml(first))
                failure.text = _xml(c.message)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def mark(check: Check) -> str:
    if check.passed:
        return "✓"
    return "·" if check.message.startswith(NOT_SUBMITTED) else "✗"


def table(report: Report, width: int = 88) -> str:
    """The summary: a row per submission, a column per check (numbered, named below);
    the notes below it wrapped at ``width`` columns."""
    names = report.check_names
    name_width = max([10, *(len(s.name) for s in report.submissions)])
    columns = [str(n) for n in range(1, len(names) + 1)]
    lines = [f"{'submission':{name_width}}  " + " ".join(columns) + "  passed"]
    for s in report.submissions:
        cells = " ".join(f"{mark(c):>{len(col)}}" for c, col in zip(s.checks, columns))
        score = f"{s.passed:>{len(str(s.total))}}/{s.total}"
        lines.append(f"{s.name:{name_width}}  {cells}  {score}")
    named = [f"{n} {name}" for n, name in zip(columns, names)]
    left_out = f"; left out: {', '.join(report.skipped)}" if report.skipped else ""
    notes = [f"✓ passed, ✗ failed, · not submitted{left_out}"]
    notes += [
        f"{s.name}: stopped, {s.stopped}" for s in report.submissions if s.stopped
    ]
    n = len(report.submissions)
    each = sum(s.seconds for s in report.submissions) / n if n else 0.0
    graded = f"{n} submission{'s' * (n != 1)} graded in {report.seconds:.0f} s"
    jobs = f"{report.jobs} job{'s' * (report.jobs != 1)}"
    notes.append(
        f"{graded} with {jobs} ({each:.1f} s per submission on average); "
        f"isolation: {report.isolation}; seed {report.seed}"
    )
    wrapped = [textwrap.fill(note, width, subsequent_indent="  ") for note in notes]
    return "\n".join([*lines, "", *_items("checks:", named, width), *wrapped])


def _items(head: str, items: list[str], width: int) -> list[str]:
    """``head`` and the items, comma-separated, in lines of at most ``width`` columns
    that break between items only."""
    lines = [head]
    for n, item in enumerate(items):
        item += "," if n < len(items) - 1 else ""
        if len(lines[-1]) + 1 + len(item) > width:
            lines.append(" ")
        lines[-1] += " " + item
    return lines


def passed_in_junit(path: Path, check: str) -> tuple[bool, list[str]]:
    """Whether ``check`` passed in every submission of a JUnit report, and their
    messages. LookupError when the report holds no such check."""
    found = [
        case
        for case in ET.parse(path).getroot().iter("testcase")
        if case.get("name") == check
    ]
    if not found:
        raise LookupError(f"{path} has no test case named {check}")
    messages = []
    for case in found:
        failure = case.find("failure")
        text = failure.text if failure is not None else case.findtext("system-out")
        verdict = "passed" if failure is None else "failed"
        messages.append(f"{case.get('classname')}: {check}: {verdict} — {text or ''}")
    return all(case.find("failure") is None for case in found), messages


def passed_main(argv: list[str], prog: str) -> int:
    """``passed REPORT CHECK``: 0 if CHECK passed in the JUnit REPORT, 1 if it failed,
    2 if the report cannot be read or holds no such check."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Exit 0 if CHECK passed in the JUnit report the grader "
        "wrote (--junit), 1 if it failed; print its message.",
    )
    parser.add_argument("report", type=Path, help="the grader's JUnit report")
    parser.add_argument("check", help="a check's name, e.g. check_linear")
    args = parser.parse_args(argv)
    try:
        passed, messages = passed_in_junit(args.report, args.check)
    except (OSError, ET.ParseError, LookupError) as error:
        print(f"{prog}: {error}")
        return 2
    print("\n".join(messages))
    return 0 if passed else 1
