"""Shape the PDF edition for print, where the HTML's interactive parts do not exist.

On a web page a solution is folded under its exercise; on paper it would sit in plain view right
below it. So the LaTeX build moves every chapter's solutions into a "Solutions" section at the
end of that chapter, each still titled with its exercise's number. It also numbers every display
equation, gives references to another chapter's exercise the number sphinx-exercise gives only to
same-chapter ones, spells math in section titles as text in the PDF's bookmarks, and sets code in DejaVu Sans Mono.

Written for the releases of sphinx-exercise (its nodes and ``sphinx_exercise_registry``) and myst-nb
(its execution table) that ``_versions.py`` lists; ``setup`` checks them. Everything here applies to LaTeX output only.
"""

import re

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx_exercise.nodes import (
    exercise_enumerable_node,
    exercise_latex_number_reference,
    solution_node,
)

from _versions import require

# Math in a section title goes into the PDF's bookmarks too, as text, where unicode-math's symbols
# stop XeLaTeX ("Improper alphabetic constant"): the first line spells them there as characters.
PREAMBLE = r"""
\pdfstringdefDisableCommands{\def\varepsilon{ε}}
% FreeMono, Sphinx's XeLaTeX default, lacks characters the code comments use (ᵀ, ⊙)
\setmonofont{DejaVu Sans Mono}[Scale=MatchLowercase]
"""


class SolutionsAtChapterEnd(SphinxPostTransform):
    """Move each chapter's solutions into a section at its end (LaTeX only)."""

    default_priority = 30  # after sphinx-exercise titles solutions (21, 22)
    builders = ("latex",)

    def run(self, **kwargs) -> None:
        for chapter in self.document.findall(addnodes.start_of_file):
            solutions = [s for s in chapter.findall(solution_node)]
            sections = [s for s in chapter.children if isinstance(s, nodes.section)]
            if not solutions or not sections:
                continue
            end = nodes.section(
                ids=[f"solutions-{chapter['docname'].replace('/', '-')}"]
            )
            end += nodes.title(text="Solutions")
            for solution in solutions:
                solution.parent.remove(solution)
                end += solution
            sections[-1] += end


class ExerciseReferencesAcrossChapters(SphinxPostTransform):
    """Point a reference to another chapter's exercise at the label sphinx-exercise gives it.

    sphinx-exercise 1.x rewrites references to an exercise in the same chapter only; one from
    another chapter keeps Sphinx's label, which its exercises do not define, and the PDF would
    print "Exercise ??". (LaTeX only.)
    """

    default_priority = 30  # after sphinx-exercise's own rewrite (22)
    builders = ("latex",)

    def run(self, **kwargs) -> None:
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for reference in list(self.document.findall(addnodes.number_reference)):
            label = re.split(
                r"[#:]", reference.get("refid") or reference.get("refuri", "")
            )[-1]
            if isinstance(
                registry.get(label, {}).get("node"), exercise_enumerable_node
            ):
                rewritten = exercise_latex_number_reference(refid=label)
                rewritten += reference.children
                reference.replace_self(rewritten)


class NumberedEquations(SphinxPostTransform):
    """Number every display equation, so a printed page can be cited by equation (LaTeX only).

    Sphinx's LaTeX writer numbers a display equation that has a label; an unlabelled one gets a
    label of its own here. (``math_number_all`` would do it too, but would change the HTML.)
    """

    default_priority = 30
    builders = ("latex",)

    def run(self, **kwargs) -> None:
        blocks = [
            b
            for b in self.document.findall(nodes.math_block)
            if not b.get("label") and not b.get("nowrap")
        ]
        for number, block in enumerate(blocks):
            block["docname"], block["label"] = "pdf-edition", f"equation-{number}"


def add_preamble(app, config) -> None:
    config.latex_elements["preamble"] = (
        config.latex_elements.get("preamble", "") + PREAMBLE
    )


def setup(app):
    require("pdf_edition")
    app.connect("config-inited", add_preamble)
    app.add_post_transform(SolutionsAtChapterEnd)
    app.add_post_transform(ExerciseReferencesAcrossChapters)
    app.add_post_transform(NumberedEquations)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
