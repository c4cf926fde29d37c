"""The print view of a phase (labs/<phase>/print.md, made by site.py from the staged pages).

The phase on one page, for students who work from paper: its overview, lab 00 and blind-hunt page,
then, after a warning, its guided break pages. Each part's headings go one level down, its collapsed
boxes (hints, the spoiler box) are open (`!!!` instead of `???`), its links to its own anchors lead
to the page itself, and each part starts on a new sheet (docs/stylesheets/minimoe.css). The page is
left out of the search index: it repeats its phase.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from .site_markdown import FENCE_RE, es_name
from .site_phases import Phase, T

BOX_RE = re.compile(r"^(\s*)\?\?\?\+? ", re.M)
SELF_ANCHOR_RE = re.compile(r"\]\(#([^)\s]+)\)")


def _demote(text: str) -> str:
    """Every heading one level down (# -> ##), outside fenced code."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE_RE.match(line):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,5} ", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def print_part(text: str, page: str, dest: str) -> str:
    """A staged page as a part of the print view at `dest`: headings one level down, boxes open, links to
    its own anchors sent to the page itself, a page break before it."""
    text = BOX_RE.sub(lambda m: m.group(1) + "!!! ", text)
    own = posixpath.relpath(page, posixpath.dirname(dest))
    text = SELF_ANCHOR_RE.sub(lambda m: f"]({own}#{m.group(1)})", text)
    return '<div class="minimoe-part"></div>\n\n' + _demote(text).strip("\n") + "\n"


def print_page(root: Path, ph: Phase, lang: str, staged: dict[str, str], relink) -> str:
    """The phase on one page. `relink(text, src, dest)` rebases a staged page's links to the print page."""
    t = T[lang]
    dest = ph.path("print.md", lang)
    parts = [ph.path("README.md")] + ph.labs(root) + [ph.path("hunt.md")]
    out = ["---", "search:", "  exclude: true", "---", "",
           f"# {t['print_title'].format(phase=ph.title(root, lang))}", "", t["print_intro"], ""]
    for p in parts:
        p = es_name(p) if lang == "es" and es_name(p) in staged else p
        out.append(print_part(relink(staged[p], p, dest), p, dest))
    out += ['<div class="minimoe-part"></div>', "", f"## {t['print_spoilers']}", "",
            f"!!! warning \"{t['print_spoilers']}\"",
            f"    {t['print_spoilers_text']}", ""]
    for b in ph.breaks:
        if b.lab:
            p = es_name(b.lab) if lang == "es" and es_name(b.lab) in staged else b.lab
            out.append(print_part(relink(staged[p], p, dest), p, dest))
    return "\n".join(out)
