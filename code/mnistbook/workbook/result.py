"""What a check returns: passed or not, a message that teaches, and a link to read more.

It displays as one coloured line (with its explanation) in Jupyter, Colab and the HTML book,
and as plain text anywhere else.
"""

import html
from dataclasses import dataclass, field

from .links import Section

NOT_IMPLEMENTED = "not implemented yet"


@dataclass(frozen=True)
class Result:
    check: str  # e.g. "check_linear"
    passed: bool
    message: str
    sections: tuple[Section, ...] = field(default=())
    pending: bool = False  # the learner's code still raises NotImplementedError
    mistake: object = None  # the known mistake named, a probe.Mistake, if one is

    def __bool__(self) -> bool:
        return self.passed

    @property
    def mark(self) -> str:
        if self.passed:
            return "✓ passed"
        return "○ " + NOT_IMPLEMENTED if self.pending else "✗ failed"

    @property
    def _dash(self) -> str:
        # a summary lists its checks below
        return "" if self.message.startswith("\n") else " — "

    def __repr__(self) -> str:
        lines = [f"{self.check}: {self.mark}{self._dash}{self.message}"]
        lines += [f"  read: {s.title} ({s.url})" for s in self.sections]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        message = self.message.replace("\n", "  \n")
        links = "".join(f"  \nRead: [{s.title}]({s.url})" for s in self.sections)
        return f"**{self.check}: {self.mark}**{self._dash}{message}{links}"

    def _repr_html_(self) -> str:
        colour = (
            "#1a7f37" if self.passed else ("#9a6700" if self.pending else "#cf222e")
        )
        message = html.escape(self.message).replace("\n", "<br>")
        links = "".join(
            f'<br>Read: <a href="{html.escape(s.url)}">{html.escape(s.title)}</a>'
            for s in self.sections
        )
        return (
            f'<div class="workbook-result" style="border-left: 4px solid {colour}; padding-left: .6em">'
            f"<strong>{html.escape(self.check)}: {self.mark}</strong>{self._dash}{message}{links}</div>"
        )


def summary(*results: Result) -> Result:
    """Several checks as one result: passed if all passed, one line each."""
    wrong = [r for r in results if not isinstance(r, Result)]
    if not results or wrong:
        what = (
            f"not {getattr(wrong[0], '__name__', type(wrong[0]).__name__)} itself: call each check, "
            "summary(check_a(a), check_b(b))"
            if wrong
            else "nothing: summary(check_a(a), check_b(b))"
        )
        return Result("summary", False, f"summary takes the results of checks, {what}")
    failed = [r for r in results if not r.passed]
    lines = [f"{r.check}: {r.mark} — {r.message}" for r in results]
    sections = tuple(dict.fromkeys(s for r in failed for s in r.sections))
    pending = bool(failed) and all(r.pending for r in failed)
    message = "\n" + "\n".join(lines)  # one line per check, below the combined verdict
    return Result(
        " + ".join(r.check for r in results), not failed, message, sections, pending
    )
