"""The site's generated pages and sections, in English and Spanish (used by site.py).

  insert_hints    a "Hints" section on each break page: its three rungs in collapsed boxes
  catalog_page    docs/reference/breaks.md: every break with phase, id, title, concept, target,
                  detectors and its hint ladder, from the catalog files
  cli_page        docs/reference/cli.md: the justfile's recipes and each command's --help, as printed
  fill_phases     the <!-- phases --> marker of the start page: a table of the phases that have pages

Everything here is computed from the repository when the site is built; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import pkgutil
import posixpath
import re
import subprocess
import sys
from pathlib import Path

from .catalog import Break

PHASES_MARK = "<!-- phases -->"
NEXT_TITLES = ("Next", "Siguiente")  # a break page's closing section: the hints go just before it
HELP_COLUMNS = "100"  # --help is wrapped at this width on every machine

T = {
    "en": {
        "hints": "Hints",
        "hint": "Hint",
        "hints_intro": "The hint ladder of {id}, vaguest rung first: open one box at a time, and only when "
                       "you are stuck. Your instructor may prefer that you ask for the rungs with "
                       "`just hint {id}` instead: it shows one at a time and remembers how many you "
                       "opened, which the grader reports.",
        "catalog": "The break catalog",
        "catalog_intro": "**Spoilers: this page names every break and its cause.** Every break of the "
                         "course, generated from its file in `labs/phase-NN-*/breaks/` when the site is built. "
                         "In a terminal, `just breaks` lists them and `just break show <id>` prints one in full. "
                         "The hint ladders are collapsed: a learner hunting a break should ask `just hint` instead.",
        "phase": "Phase {n}",
        "field": "field", "value": "value", "id": "id", "concept": "concept", "target": "target file",
        "detectors": "detectors", "lab": "lab page",
        "cli": "Command line",
        "cli_intro": "Generated when the site is built: the justfile's recipes, then the `--help` of the "
                     "programs behind them, exactly as they print it.",
        "recipes": "The recipes",
        "recipes_intro": "Every user action is a recipe of the justfile; `just` lists them. A recipe passes "
                         "its arguments on: `just moe-train --steps 100` runs "
                         "`python -m minimoe.train --steps 100`, and `just breaks`, `just break`, "
                         "`just hint`, `just grade` and the other course recipes run "
                         "`python -m minimoe.course <command>`.",
        "program": "`{cmd}`",
        "subcommand": "`{cmd} {sub}`",
        "experiments_intro": "`just experiment <name>` runs one of the labs' experiments.",
        "phase_col": "phase", "breaks_col": "breaks",
    },
    "es": {
        "hints": "Pistas",
        "hint": "Pista",
        "hints_intro": "La escalera de pistas de {id}, de la más vaga a la más concreta: abre una caja cada "
                       "vez, y solo cuando te atasques. Puede que tu instructor prefiera que pidas los "
                       "peldaños con `just hint {id}`: los muestra de uno en uno y recuerda cuántos has "
                       "abierto, y el corrector lo informa.",
        "catalog": "El catálogo de breaks",
        "catalog_intro": "**Spoilers: esta página nombra cada break y su causa.** Todos los breaks del "
                         "curso, generados a partir de su fichero en "
                         "`labs/phase-NN-*/breaks/` al construir el sitio. En un terminal, `just breaks` los "
                         "lista y `just break show <id>` muestra uno completo. Las escaleras de pistas "
                         "están plegadas: quien esté buscando un break debería usar `just hint`.",
        "phase": "Fase {n}",
        "field": "campo", "value": "valor", "id": "id", "concept": "concepto", "target": "fichero afectado",
        "detectors": "detectores", "lab": "página del lab",
        "cli": "Línea de órdenes",
        "cli_intro": "Se genera al construir el sitio: las recetas del justfile y, después, la ayuda "
                     "(`--help`) de los programas que hay detrás, tal como la imprimen (en inglés).",
        "recipes": "Las recetas",
        "recipes_intro": "Cada acción de un usuario es una receta del justfile; `just` las lista. Una receta "
                         "pasa sus argumentos: `just moe-train --steps 100` ejecuta "
                         "`python -m minimoe.train --steps 100`, y `just breaks`, `just break`, "
                         "`just hint`, `just grade` y las demás recetas del curso ejecutan "
                         "`python -m minimoe.course <orden>`.",
        "program": "`{cmd}`",
        "subcommand": "`{cmd} {sub}`",
        "experiments_intro": "`just experiment <nombre>` ejecuta uno de los experimentos de los labs.",
        "phase_col": "fase", "breaks_col": "breaks",
    },
}


def indented(text: str, n: int = 4) -> str:
    return "\n".join((" " * n + line) if line.strip() else "" for line in text.splitlines())


def hint_boxes(b: Break, lang: str) -> str:
    t = T[lang]
    return "\n\n".join(f'??? note "{t["hint"]} {i}"\n{indented(b.hint(i, lang))}' for i in (1, 2, 3))


def insert_hints(text: str, b: Break, lang: str) -> str:
    """The page with a Hints section before its closing "Next" section (or at its end)."""
    t = T[lang]
    section = f"## {t['hints']}\n\n{t['hints_intro'].format(id=b.id)}\n\n{hint_boxes(b, lang)}\n\n"
    found = list(re.finditer(rf"^## (?:{'|'.join(NEXT_TITLES)})\s*$", text, re.M))
    if found:
        m = found[-1]
        return text[:m.start()] + section + text[m.start():]
    return text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"


def _page_title(root: Path, rel: str, lang: str, default: str) -> str:
    from .site_markdown import es_name, title_of

    path = root / (es_name(rel) if lang == "es" else rel)
    if not path.is_file():
        path = root / rel
    return title_of(path.read_text(encoding="utf-8"), default) if path.is_file() else default


def catalog_page(root: Path, catalog: dict[str, Break], lang: str) -> str:
    t = T[lang]
    out = [f"# {t['catalog']}", "", t["catalog_intro"], ""]
    for phase in sorted({b.phase for b in catalog.values()}):
        readmes = sorted(root.glob(f"labs/phase-{phase}-*/README.md"))
        name = t["phase"].format(n=phase)
        title = _page_title(root, readmes[0].relative_to(root).as_posix(), lang, name) if readmes else name
        out += [f"## {title}", ""]
        for b in (b for b in catalog.values() if b.phase == phase):
            rows = [(t["id"], f"`{b.id}`"), (t["concept"], b.t("concept", lang)), (t["target"], f"`{b.target}`"),
                    (t["detectors"], "<br>".join(f"`{d}`" for d in b.detectors))]
            if b.lab:
                rows.append((t["lab"], f"[{_page_title(root, b.lab, lang, b.id)}](../../{b.lab})"))
            out += [f"### {b.id} — {b.t('title', lang)}", "", f"| {t['field']} | {t['value']} |", "|---|---|"]
            out += [f"| {k} | {v.replace('|', chr(92) + '|')} |" for k, v in rows]
            out += ["", hint_boxes(b, lang), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def recipes(root: Path) -> str:
    """The justfile's recipes with the comment above each, in the justfile's order (as `just --list`)."""
    rows, comment = [], None
    for line in (root / "justfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            comment = line.lstrip("# ").strip()
            continue
        m = re.match(r"^@?([A-Za-z][\w-]*)([^:=]*):(?!=)", line)
        if m and comment is not None:
            rows.append((f"just {m.group(1)}{m.group(2).rstrip()}", comment))
        comment = None
    width = max((len(r[0]) for r in rows), default=0) + 2
    return "\n".join(f"{cmd:<{width}}# {text}" for cmd, text in rows)


_HELP: dict[tuple[str, str | None], str] = {}


class _Parsed(Exception):
    """Raised in place of parsing: the parser that main() built has been read."""


def _help_in_process(module: str, sub: str | None) -> str | None:
    """The help of the first parser module.main() parses with; None if it parses none.

    parse_known_args is replaced for the call, so nothing after the parsing runs.
    """
    seen = []
    original = argparse.ArgumentParser.parse_known_args

    def read(self, *args, **kwargs):
        seen.append(self)
        raise _Parsed

    argparse.ArgumentParser.parse_known_args = read
    main = importlib.import_module(module).main
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # a main that parses nothing may print its error
            main([sub] if sub else [])
    except _Parsed:
        pass
    finally:
        argparse.ArgumentParser.parse_known_args = original
    if not seen:  # a main that prints its own help (launch.py): what it prints for --help
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                main([sub, "--help"] if sub else ["--help"])
        except SystemExit:
            pass
        return printed.getvalue() or None
    parser = seen[0]
    if sub:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[sub]
    return parser.format_help()


def help_texts(jobs: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], str]:
    """What `python -m <module> [sub] --help` prints for each job, wrapped at a fixed width.

    Read from the parser each command builds, in this process; a command that builds none is run
    with --help in a subprocess, with a time limit.
    """
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps at $COLUMNS
    try:
        for module, sub in (j for j in dict.fromkeys(jobs) if j not in _HELP):
            text = _help_in_process(module, sub)
            if text is None:
                head, _, name = module.rpartition(".")
                cmd = [sys.executable, "-m", head, name] if head == "minimoe.experiments" else \
                    [sys.executable, "-m", module]
                cmd += [sub, "--help"] if sub else ["--help"]
                text = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
            _HELP[(module, sub)] = text.rstrip() + "\n"
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return {j: _HELP[j] for j in jobs}


def _subcommands(module: str) -> list[str]:
    for action in importlib.import_module(module).build_parser()._actions:  # argparse keeps its subparsers here
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def code_block(text: str) -> list[str]:
    return ["```text", text.rstrip("\n"), "```", ""]


def cli_page(root: Path, lang: str) -> str:
    import minimoe

    from .. import experiments

    t = T[lang]
    programs = [("python -m minimoe.train", "minimoe.train", [None]),
                ("python -m minimoe.course", "minimoe.course.cli", [None, *_subcommands("minimoe.course.cli")]),
                ("python -m minimoe.experiments", None, [f"minimoe.experiments.{n}" for n in experiments.names()])]
    others = [f"minimoe.{m.name}" for m in pkgutil.iter_modules(minimoe.__path__) if not m.ispkg and m.name != "train"]
    programs += [(f"python -m {m}", m, [None]) for m in [*others, "minimoe.course.site"]
                 if getattr(getattr(importlib.import_module(m), "main", None), "__module__", None) == m]
    jobs = [(m, s) if m else (s, None) for _, m, subs in programs for s in subs]
    helps = help_texts(jobs)
    out = [f"# {t['cli']}", "", t["cli_intro"], "", f"## {t['recipes']}", "", t["recipes_intro"], ""]
    out += code_block(recipes(root))
    for title, module, subs in programs:
        out += [f"## {t['program'].format(cmd=title)}", ""]
        if module is None:
            out += [t["experiments_intro"], ""]
        for sub in subs:
            if module is None:
                out += [f"### {t['subcommand'].format(cmd='minimoe.experiments', sub=sub.rsplit('.', 1)[1])}", ""]
                out += code_block(helps[(sub, None)])
            elif sub:
                out += [f"### {t['subcommand'].format(cmd=title.split()[-1], sub=sub)}", ""]
                out += code_block(helps[(module, sub)])
            else:
                out += code_block(helps[(module, None)])
    return "\n".join(out).rstrip("\n") + "\n"


def phases_table(root: Path, catalog: dict[str, Break], lang: str, src: str) -> str:
    """A table of the phases that have pages, each linked from `src` (a repository path)."""
    t = T[lang]
    rows = [f"| {t['phase_col']} | {t['breaks_col']} |", "|---|---|"]
    for folder in sorted({p.parent for p in root.glob("labs/phase-*/*.md")}, key=lambda d: int(d.name.split("-")[1])):
        n = int(folder.name.split("-")[1])
        pages = sorted(p.relative_to(root).as_posix() for p in folder.glob("*.md") if not p.name.endswith(".es.md"))
        readme = f"labs/{folder.name}/README.md"
        first = readme if readme in pages else pages[0]
        title = _page_title(root, first, lang, t["phase"].format(n=n))
        link = posixpath.relpath(first, posixpath.dirname(src))
        ids = ", ".join(b.id for b in catalog.values() if b.phase == n) or "—"
        rows.append(f"| [{title}]({link}) | {ids} |")
    return "\n".join(rows) + "\n"


def fill_phases(text: str, root: Path, catalog: dict[str, Break], lang: str, src: str) -> str:
    return text.replace(PHASES_MARK, phases_table(root, catalog, lang, src)) if PHASES_MARK in text else text


def generated_pages(root: Path, catalog: dict[str, Break]) -> dict[str, str]:
    pages = {}
    for lang, suffix in (("en", ".md"), ("es", ".es.md")):
        pages[f"docs/reference/breaks{suffix}"] = catalog_page(root, catalog, lang)
        pages[f"docs/reference/cli{suffix}"] = cli_page(root, lang)
    return pages


if __name__ == "__main__":  # pragma: no cover - a quick look at one generated page
    from .catalog import load_catalog, repo_root

    r = repo_root()
    page = sys.argv[1] if len(sys.argv) > 1 else "docs/reference/breaks.md"
    sys.stdout.write(generated_pages(r, load_catalog(r))[page])
