"""A quiet "Report an error on this page" link at the foot of every page, which opens a new issue
on the book's repository with the page, the section and the commit the page was built from
already filled in.

The repository is the one ``repository.py`` derives (a fork gets its own); a build that knows no
repository shows no link. A small script puts the section into the issue when the link is
clicked: the section of the text the reader selected (quoted in the issue too), else the section
at the middle of the screen. Without scripts the issue names the page and leaves the section to
the reader.
"""

import html
import json
from urllib.parse import quote

from repository import Repository

SCRIPT = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest("a.report-error");
  if (!link) return;
  const selection = getSelection().toString().trim().slice(0, 500);
  const anchor = selection ? getSelection().anchorNode : null;
  const headings = [...document.querySelectorAll("article h1, article h2, article h3")];
  const before = (h) => anchor ? (h.compareDocumentPosition(anchor) & Node.DOCUMENT_POSITION_FOLLOWING)
                               : h.getBoundingClientRect().top < innerHeight / 2;
  const heading = headings.filter(before).pop();
  if (!heading) return;
  const section = heading.textContent.replace(/[#¶]$/, "").trim();
  const url = new URL(link.href);
  let body = url.searchParams.get("body").replace(SECTION_UNKNOWN, section);
  if (selection) body = body.replace(WHAT_IS_WRONG, "> " + selection.replace(/\\n/g, "\\n> ") + "\\n\\n" + WHAT_IS_WRONG);
  url.searchParams.set("body", body);
  link.href = url.toString();
});
</script>"""
SECTION_UNKNOWN = "(which section?)"
WHAT_IS_WRONG = "What is wrong, and what should it say?"


def issue_url(
    repository: Repository, title: str, pagename: str, commit: str | None
) -> str:
    """The address of a new issue about ``pagename``, its title and body filled in."""
    owner, name = repository.slug.split("/", 1)
    page = f"https://{owner}.github.io/{name}/{pagename}.html"
    body = (
        f"Page: {title} ({page})\nSection: {SECTION_UNKNOWN}\n"
        f"Built from commit {commit or 'unknown'}\n\n{WHAT_IS_WRONG}\n"
    )
    return (
        f"{repository.url}/issues/new?title={quote(f'Error on the page “{title}”')}"
        f"&body={quote(body)}"
    )


def add_link(app, pagename, templatename, context, doctree) -> None:
    repository = app.config.book_repository
    if repository is None or doctree is None:
        return
    title = html.unescape(context.get("title") or pagename)
    url = issue_url(repository, title, pagename, app.book_source.commit)
    script = SCRIPT.replace("SECTION_UNKNOWN", json.dumps(SECTION_UNKNOWN)).replace(
        "WHAT_IS_WRONG", json.dumps(WHAT_IS_WRONG)
    )
    link = (
        f'<p class="report-error-line"><a class="report-error" href="{html.escape(url)}" '
        'title="Opens a new issue on GitHub; select the wrong sentence first to quote it">'
        f"Report an error on this page</a></p>{script}"
    )
    context["theme_extra_footer"] = (context.get("theme_extra_footer") or "") + link


def setup(app):
    app.setup_extension("provenance")  # the commit the pages are built from
    app.connect("html-page-context", add_link, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
