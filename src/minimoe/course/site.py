"""The course site: assemble the pages from labs/ and docs/, then build or serve them with mkdocs.

The labs live once, in labs/; docs/ holds the pages that are not labs. `stage()` copies both into
build/site-src/ (git-ignored), mirroring the repository's layout so that a relative link written
for GitHub (`../../docs/theory/routing-math.md`) works on the site unchanged (site_markdown.py
rebases the few that must change), and adds what is generated (site_pages.py, site_phases.py,
site_bench.py):

  index.md, index.es.md         the home page: docs/index.md, its links rebased to the new place
  labs/phase-*/breaks/NN-MM.md  each guided break page: its diff in a spoiler box, a "Hints" section
  labs/phase-*/hunt.md          each phase's blind hunt; breaks/index.md its guided list; print.md
                                its print view (site_phases.py, from the phase's syllabus.yaml)
  docs/syllabus.md's marker     every phase's objectives, prerequisites, time and breaks
  docs/reference/cli.md         the recipes and every command's --help
  docs/reference/breaks.md      the break catalog, with the hint ladders
  docs/index.md's phase table   the phases that have pages, each with its breaks
  docs/performance/index.md     the recorded benchmark's tables (or a note that there is none yet)

It drops the pages' own "**English** · [Español](…)" line (the site has a language switcher) and
returns the navigation, discovered from the folders, so phases appear on the site as soon as their
labs/phase-NN-* folder has a README.md (and a syllabus.yaml). mkdocs runs this through the hooks in
mkdocs.yml (site_hooks.py), so `mkdocs build` and `mkdocs serve` stage the site themselves.

    python -m minimoe.course.site build [--no-strict] [--site-url URL] [--offline]
                                                        mkdocs build --strict -> site/ (or build/site-offline/)
    python -m minimoe.course.site serve [--port N]      mkdocs serve; it rebuilds when a page changes
    python -m minimoe.course.site stage                 only assemble build/site-src
    python -m minimoe.course.site record-bench          copy runs/bench/bench.{json,png} into docs/performance/
    python -m minimoe.course.site record-profile        copy runs/profile/profile.json into docs/performance/
    python -m minimoe.course.site record-gap            copy runs/bench/gap.json into docs/performance/
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import site_bench, site_pages, site_phases, site_print
from .catalog import CourseError, load_catalog, repo_root
from .site_markdown import MOVED, SWITCH_RE, Linker, es_name, is_es, title_of

ASSETS = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".css")
# read by mkdocs.yml (the address) and site_hooks.py (where to stage, whether to build the offline copy)
STAGE_ENV, URL_ENV, OFFLINE_ENV = "MINIMOE_SITE_STAGE", "MINIMOE_SITE_URL", "MINIMOE_SITE_OFFLINE"
OFFLINE_DIR = "build/site-offline"

# nav sections after the labs: (title en, title es, pages or a folder with the order of its known pages)
SECTIONS = (
    ("Theory", "Teoría", "docs/theory/", ("routing-math.md", "parameters.md")),
    ("Instructor guide", "Guía del instructor", "docs/instructor-guide.md", ()),
    ("Classroom mode", "Modo aula", "docs/classroom.md", ()),
    ("Reference", "Referencia", "docs/reference/", ("cli.md", "breaks.md", "telemetry.md")),
    ("Performance", "Rendimiento", "docs/performance/index.md", ()),
)
START, LABS = ("Start here", "Empieza aquí"), ("Labs", "Laboratorios")


@dataclass
class Staged:
    pages: dict[str, str]  # staged path -> Markdown
    assets: dict[str, Path]  # staged path -> source file
    notes: list[str] = field(default_factory=list)  # what the staging did that a course author should know
    nav: list = field(default_factory=list)  # each phase's navigation entries


def sources(root: Path) -> list[str]:
    """Every page the site shows, as repository paths: docs/**/*.md, labs/phase-*/*.md and the guided
    break pages, labs/phase-*/breaks/*.md."""
    pages = [*root.glob("docs/**/*.md"), *root.glob("labs/phase-*/*.md"), *root.glob("labs/phase-*/breaks/*.md")]
    return sorted(p.relative_to(root).as_posix() for p in pages if p.is_file())


def asset_files(root: Path) -> dict[str, Path]:
    found = {}
    for base in ("docs", "labs"):
        for p in (root / base).rglob("*"):
            if p.is_file() and p.suffix.lower() in ASSETS:
                found[p.relative_to(root).as_posix()] = p
    return found


def stage_pages(root: Path) -> Staged:
    """Everything the site shows, in memory: staged path -> Markdown, and the images beside it."""
    catalog = load_catalog(root)
    all_phases = site_phases.phases(root, catalog)
    by_page = {}
    for b in catalog.values():
        if b.lab:
            by_page[b.lab], by_page[es_name(b.lab)] = (b, "en"), (b, "es")
    generated = site_pages.generated_pages(root, catalog) | site_phases.generated_pages(root, all_phases)
    prints = {ph.path("print.md", lang): (ph, lang) for ph in all_phases for lang in ("en", "es")}
    src = sources(root)
    clash = sorted(set(generated) & set(src) | set(prints) & set(src))
    if clash:
        raise CourseError(f"{', '.join(clash)}: generated when the site is built; remove the hand-written copy")
    assets = asset_files(root)
    staged = Staged({}, assets)
    excerpts = site_phases.excerpt_names(root)  # (read once: every page's output blocks are checked against it)
    linker = Linker(root, {MOVED.get(s, s) for s in src} | set(generated) | set(prints) | set(assets), staged.notes)
    for s in src:
        text = SWITCH_RE.sub("", (root / s).read_text(encoding="utf-8"))
        lang = "es" if is_es(s) else "en"
        if s in by_page:
            text = site_pages.insert_hints(site_phases.spoilers(text, lang), *by_page[s])
        text = site_bench.fill_bench(text, root, lang)
        text = site_phases.mark_excerpts(text, excerpts, lang)
        text = site_pages.fill_phases(text, root, catalog, lang, s)
        text = site_phases.fill_syllabus(text, root, all_phases, lang, s)
        dest = MOVED.get(s, s)
        staged.pages[dest] = linker.relink(text, s, dest)
    for g, text in generated.items():
        staged.pages[g] = linker.relink(text, g, g)
    for dest, (ph, lang) in prints.items():  # made last: a print view is the phase's staged pages
        staged.pages[dest] = site_print.print_page(root, ph, lang, staged.pages, linker.relink)
    staged.nav = [{ph.title(root, "en"): site_phases.nav_items(root, ph)} for ph in all_phases]
    return staged


def nav(pages: dict[str, str], phase_items: list | None = None) -> tuple[list, dict[str, str]]:
    """The site's navigation from the staged pages (and each phase's entries, site_phases.nav_items),
    and the Spanish titles of its sections."""
    es = {START[0]: START[1], LABS[0]: LABS[1], **site_phases.nav_translations()}
    start = [p for p in ("index.md", "docs/syllabus.md", "docs/glossary.md") if p in pages]
    items: list = [{START[0]: start}]
    for phase in phase_items or []:
        (title, _), = phase.items()
        readme = next(_walk([phase]))
        es[title] = title_of(pages.get(es_name(readme), ""), title)
    items.append({LABS[0]: phase_items or []})
    for en, es_title, where, order in SECTIONS:
        if where.endswith("/"):
            found = [p for p in pages if p.startswith(where) and not is_es(p)]
            listed = [where + o for o in order if where + o in found]
            entries = listed + sorted(p for p in found if p not in listed)
        else:
            entries = [where] if where in pages else []
        if entries:
            items.append({en: entries if where.endswith("/") else entries[0]})
            es[en] = es_title
    covered = set(_walk(items))
    rest = sorted(p for p in pages if p.startswith("docs/") and not is_es(p) and p not in covered)
    items += rest  # a docs page no section names still gets a place
    return items, es


def _walk(items):
    for it in items:
        if isinstance(it, str):
            yield it
        elif isinstance(it, dict):
            for v in it.values():
                yield from ([v] if isinstance(v, str) else _walk(v))
        elif isinstance(it, list):
            yield from _walk(it)


def _sync(folder: Path, files: dict[str, bytes | Path]) -> None:
    """Make folder hold exactly these files, rewriting only what changed (mkdocs serve watches mtimes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = folder / rel
        data = content.read_bytes() if isinstance(content, Path) else content
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for path in sorted(folder.rglob("*"), reverse=True):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in files:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def sources_fingerprint(root: Path) -> tuple:
    """What the staging reads, by modification time: a change anywhere means stage again."""
    watched = [root / "mkdocs.yml", root / "justfile"]
    for base in ("docs", "labs"):
        watched += [p for p in (root / base).rglob("*") if p.is_file()]
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in watched if p.exists()))


def stage(root: Path, stage_dir: Path) -> tuple[list, dict[str, str], list[str]]:
    """Write the site's pages into stage_dir; return the navigation, its Spanish titles, and notes."""
    staged = stage_pages(root)
    files: dict[str, bytes | Path] = {k: v.encode("utf-8") for k, v in staged.pages.items()}
    files.update(staged.assets)
    _sync(stage_dir, files)
    items, es = nav(staged.pages, staged.nav)
    return items, es, staged.notes


def _mkdocs(*args: str) -> list[str]:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocs_static_i18n") is None:
        raise CourseError("the site needs mkdocs, mkdocs-material and mkdocs-static-i18n: "
                          "pip install -e '.[docs]' (or `just setup`)")
    return [sys.executable, "-m", "mkdocs", *args]


def _env(stage_dir: Path | None = None, site_url: str | None = None, offline: bool = False) -> dict:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner is known (see mkdocs.yml)
    if stage_dir:
        env[STAGE_ENV] = str(stage_dir)
    if site_url:
        env[URL_ENV] = site_url if site_url.endswith("/") else site_url + "/"
    if offline:
        env[OFFLINE_ENV] = "1"
    else:
        env.pop(OFFLINE_ENV, None)
    return env


def build(root: Path, strict: bool = True, site_dir: Path | None = None, stage_dir: Path | None = None,
          site_url: str | None = None, offline: bool = False) -> int:
    """mkdocs build on mkdocs.yml (whose hooks stage the pages) into site_dir (default: site/, or
    build/site-offline/ for the copy read from the file system)."""
    if offline and site_dir is None:
        site_dir = root / OFFLINE_DIR
    args = ["build", "-f", str(root / "mkdocs.yml")] + (["--strict"] if strict else [])
    args += ["-d", str(site_dir)] if site_dir else []
    return subprocess.run(_mkdocs(*args), cwd=root, env=_env(stage_dir, site_url, offline)).returncode


def _interrupt(*_):
    raise KeyboardInterrupt


def serve(root: Path, port: int = 8000) -> int:
    """mkdocs serve on mkdocs.yml; it rebuilds (and the hooks stage again) when labs/, docs/ or the
    config change."""
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated serve stops its mkdocs server too
    proc = subprocess.Popen(_mkdocs("serve", "-f", str(root / "mkdocs.yml"), "--dev-addr", f"127.0.0.1:{port}"),
                            cwd=root, env=_env(site_url=f"http://127.0.0.1:{port}/"))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=10)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minimoe.course.site", description="Build or serve the course site.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("build", help="mkdocs build --strict into site/ (the hooks in mkdocs.yml stage the pages)")
    s.add_argument("--no-strict", action="store_true", help="let warnings (e.g. a broken link) pass")
    s.add_argument("--site-url", help=f"the address the site is published at (default: ${URL_ENV}, else "
                                      "http://127.0.0.1:8000/); a path such as /minimoe/ is kept in every link")
    s.add_argument("--offline", action="store_true",
                   help=f"a copy to open from the file system, in {OFFLINE_DIR}/ (plain .html links, no search)")
    s = sub.add_parser("serve", help="serve at http://127.0.0.1:PORT, rebuilding when a page changes")
    s.add_argument("--port", type=int, default=8000)
    sub.add_parser("stage", help="only assemble build/site-src/ (what mkdocs builds from)")
    s = sub.add_parser("record-bench", help="copy the latest benchmark (runs/bench/) into docs/performance/")
    s.add_argument("--from", dest="source", default="runs/bench")
    s = sub.add_parser("record-profile", help="copy the latest profile (runs/profile/) into docs/performance/")
    s.add_argument("--from", dest="source", default="runs/profile")
    s = sub.add_parser("record-gap",
                       help="copy the latest split of G5's gap (runs/bench/gap.json) into docs/performance/")
    s.add_argument("--from", dest="source", default="runs/bench")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        root = repo_root()
        if args.cmd == "build":
            rc = build(root, strict=not args.no_strict, site_url=args.site_url, offline=args.offline)
            if rc == 0 and args.offline:
                print(f"offline copy: open {root / OFFLINE_DIR / 'index.html'} in a browser "
                      "(search needs the served site: `just docs-serve`)")
            return rc
        if args.cmd == "serve":
            return serve(root, args.port)
        if args.cmd == "stage":
            _, _, notes = stage(root, root / "build" / "site-src")
            for n in notes:
                print(f"note: {n}")
            print("staged the site: build/site-src/")
            return 0
        if args.cmd == "record-profile":
            site_bench.record_profile(root, args.source)
        elif args.cmd == "record-gap":
            site_bench.record_gap(root, args.source)
        else:
            site_bench.record_bench(root, args.source)
        return 0
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
