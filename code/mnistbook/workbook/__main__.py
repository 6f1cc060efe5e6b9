"""The workbook's command line: ``python -m mnistbook.workbook COMMAND [options]``.

- ``grade PATH...``: grade a class's submissions (:mod:`mnistbook.workbook.grade`);
- ``passed REPORT CHECK``: exit 0 if CHECK passed in a JUnit report of the grader
  (:mod:`mnistbook.workbook.reports`; the GitHub Classroom workflow awards points so).
"""

import importlib
import sys

PROG = "python -m mnistbook.workbook"
#: command -> (module, its function of (argv, prog) returning the exit status, summary)
COMMANDS = {
    "grade": (
        "grade",
        "main",
        "grade workbook submissions, each in a sandbox of its own",
    ),
    "passed": (
        "reports",
        "passed_main",
        "exit 0 if a check passed in a JUnit report of the grader",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    commands = "\n".join(
        f"  {name:{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()
    )
    return (
        f"usage: {PROG} COMMAND [options]  ({PROG} COMMAND --help for its options)"
        f"\n\ncommands:\n{commands}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, *rest = argv
    if command not in COMMANDS:
        print(f"{PROG}: no command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[command]
    run = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return run(rest, f"{PROG} {command}")


if __name__ == "__main__":
    sys.exit(main())
