"""Reading a built page as the browser will: the scripts it loads and the styles it carries."""

import json
import re


def scripts_of(page: str) -> list[str]:
    """Every script a page's HTML loads: ``src`` attributes, and the scripts lean_pages adds once
    the page has loaded (the list in its ``for (const src of [...])``)."""
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    for listed in re.findall(r"for \(const src of (\[[^\]]*\])\)", page):
        sources += json.loads(listed)
    return sources


def styles_of(page: str) -> str:
    """The CSS a page's HTML carries in its ``<style>`` elements."""
    return "".join(re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL))
