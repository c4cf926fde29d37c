"""Reading and rewriting the site's Markdown pages: language twins, headings, and relative links.

Pages are written for GitHub, with links relative to the repository's layout. The site mirrors
that layout, so most links work as they are; `Linker` rebases the few that must change (the home
page moves from docs/index.md to the site's root), turns a link into a phase that has no page yet
into plain text, and a link to a source file (which the site does not host) into its path.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

SWITCH_RE = re.compile(r"^(\*\*English\*\* · \[Español\]\([^)]*\)|\[English\]\([^)]*\) · \*\*Español\*\*)[ \t]*\n\n?",
                       re.M)  # a page's own language line: the site has a language switcher instead
FENCE_RE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN_RE = re.compile(r"(`+).+?\1")
LINK_RE = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)(\s+\"[^\"]*\")?\)")
EXTERNAL_RE = re.compile(r"^([a-z][a-z0-9+.-]*:|#|/)", re.I)
PHASE_RE = re.compile(r"^labs/phase-(\d+)-")
MOVED = {"docs/index.md": "index.md", "docs/index.es.md": "index.es.md"}  # the home page lives at the root


def es_name(path: str) -> str:
    return path[:-3] + ".es.md"


def is_es(path: str) -> bool:
    return path.endswith(".es.md")


def outside_code(text: str, fn) -> str:
    """Apply fn to the parts of the Markdown text outside fenced blocks and inline code spans."""
    out, fenced = [], False
    for line in text.splitlines(keepends=True):
        if FENCE_RE.match(line):
            fenced = not fenced
            out.append(line)
        elif fenced:
            out.append(line)
        else:
            parts, last = [], 0
            for m in CODE_SPAN_RE.finditer(line):
                parts += [fn(line[last:m.start()]), m.group(0)]
                last = m.end()
            out.append("".join(parts) + fn(line[last:]))
    return "".join(out)


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every Markdown heading outside fenced code blocks. As the site's Markdown reads them,
    a line that starts with # is a heading even with no space after the hashes ("#5 and #31" is one)."""
    found, fenced = [], False
    for line in text.splitlines():
        if FENCE_RE.match(line):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^(#{1,6})(?!#)[ \t]*(.+?)[ \t]*#*[ \t]*$", line)):
            found.append((len(m.group(1)), m.group(2)))
    return found


def title_of(text: str, default: str) -> str:
    return next((t for level, t in headings(text) if level == 1), default)


class Linker:
    """Rewrites a page's relative links for its place in the staging folder."""

    def __init__(self, root: Path, staged: set[str], notes: list[str]):
        self.root, self.staged, self.notes = root, staged, notes
        # a phase counts as written once its folder has a page; a link into a phase still to come is plain text
        self.phases = {int(p.parent.name.split("-")[1]) for p in root.glob("labs/phase-*/*.md")}

    def locate(self, target: str) -> str | None:
        target = MOVED.get(target, target)
        if target in self.staged:
            return target
        if is_es(target) and target[: -len(".es.md")] + ".md" in self.staged:
            return target[: -len(".es.md")] + ".md"  # not translated yet: the Spanish site shows the English page
        readme = posixpath.join(target, "README.md")  # a folder link: GitHub shows its README
        if (self.root / target).is_dir() and readme in self.staged:
            return readme
        return None

    def relink(self, text: str, src: str, dest: str) -> str:
        def fix(m: re.Match) -> str:
            bang, label, target, title = m.group(1), m.group(2), m.group(3), m.group(4) or ""
            if EXTERNAL_RE.match(target):
                return m.group(0)
            path, hash_, anchor = target.partition("#")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(src), path))
            found = self.locate(resolved)
            if found:
                new = posixpath.relpath(found, posixpath.dirname(dest) or ".")
                return f"{bang}[{label}]({new}{hash_}{anchor}{title})"
            phase = PHASE_RE.match(resolved)
            if phase and int(phase.group(1)) not in self.phases and not bang:
                self.notes.append(f"{src}: links to {resolved}, a phase not written yet: shown as plain text")
                return label
            if (self.root / resolved).exists() and not bang and not resolved.startswith(".."):
                return f"`{resolved}`" if label.strip("`") in (resolved, posixpath.basename(resolved)) \
                    else f"{label} (`{resolved}`)"  # a source file: the site does not host it
            return m.group(0)  # broken: mkdocs --strict names it

        return outside_code(text, lambda part: LINK_RE.sub(fix, part))
