"""``python -m mnistbook.bench`` runs end to end (on a tiny setting) and prints its report.

Its figures are measurements, never asserted; what is checked is that every part runs and that
the DataLoader and the in-memory batches still train identical weights."""

import subprocess
import sys


def test_bench_runs_on_a_tiny_setting():
    result = subprocess.run(
        [sys.executable, "-m", "mnistbook.bench", "--steps", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = result.stdout
    assert "GFLOP of matrix products" in report
    assert "20 steps (identical weights: True)" in report
    rows = [
        line.split()
        for line in report.splitlines()
        if line.split()[:1] in (["4"], ["64"])
    ]
    assert [row[0] for row in rows] == ["4", "64"], report


def test_the_workbook_benchmark_runs_in_its_smoke_mode():
    """Every registered check, timed once on the book's own answer (which must pass)."""
    from mnistbook.workbook import EXERCISES

    result = subprocess.run(
        [sys.executable, "benchmarks/workbook_checks.py", "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    quick = [e.name for e in EXERCISES.values() if e.time_limit <= 60 and e.solution]
    assert all(f"\n{name} " in result.stdout for name in quick), result.stdout
