"""The course site: both languages have the same pages, headings and outputs; the site shows the
saved outputs and the hint ladders; a phase's README and lab 00 (what a handout ships) name no break,
and each phase gets its blind-hunt, guided-breaks and print pages and a syllabus entry; it builds with
mkdocs --strict (slow); and in a headless browser (slow) the language switcher leads to the other
language, a hint box opens when clicked, search finds only the current language's pages, and a build
under a subpath has no broken link, asset or sitemap address."""

from __future__ import annotations

import fcntl
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from minimoe.course import outputs, site, site_bench, site_pages, site_phases
from minimoe.course import site_markdown as md
from minimoe.course.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Pages that may exist in one language only: none so far. Add a repository path here, with the
# reason beside it, only when a page truly cannot be translated.
ONE_LANGUAGE_ONLY: set[str] = set()


def _pages(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for base in ("labs", "docs") for p in (root / base).rglob("*.md")
                  if "outputs" not in p.parts)


def _english_pages() -> list[str]:
    return [p for p in _pages(ROOT) if not md.is_es(p) and p not in ONE_LANGUAGE_ONLY
            and (ROOT / md.es_name(p)).is_file()]


def _levels(text: str) -> Counter:
    return Counter(level for level, _ in md.headings(text))


def _blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in outputs.BLOCK_RE.finditer(text)]


# ---------------------------------------------------------------- the two languages

def test_every_page_has_its_translation():
    pages = set(_pages(ROOT))
    english = {p for p in pages if not md.is_es(p)}
    spanish = {p[: -len(".es.md")] + ".md" for p in pages if md.is_es(p)}
    missing_es = sorted(english - spanish - ONE_LANGUAGE_ONLY)
    missing_en = sorted(spanish - english - ONE_LANGUAGE_ONLY)
    assert not missing_es, f"pages without a Spanish translation (X.es.md): {missing_es}"
    assert not missing_en, f"Spanish pages without their English page: {missing_en}"


def test_every_source_file_a_page_names_exists():
    """A page that sends a learner to src/minimoe/x.py must name a file that is there (phase 36 and 38's lab 00
    once listed a dispatch.py that the package never had)."""
    missing = sorted({f"{page}: {m}" for page in _pages(ROOT) + ["README.md"]
                      for m in re.findall(r"src/minimoe/[\w/]+\.py", (ROOT / page).read_text(encoding="utf-8"))
                      if not (ROOT / m).is_file()})
    assert not missing, "pages name source files that do not exist:\n" + "\n".join(missing)


def test_an_output_block_that_keeps_only_some_lines_says_it_is_an_excerpt():
    filtered = site_phases.excerpt_names(ROOT)
    assert "38-00-ternary" in filtered and "38-hunt-train" not in filtered  # (outputs.yaml: `lines:` or not)
    block = "<!-- output: {} -->\n```text\n$ just x\n```\n<!-- /output -->"
    for lang, words in (("en", "An excerpt"), ("es", "Un extracto")):
        assert words in site_phases.mark_excerpts(block.format("38-00-ternary"), filtered, lang)
        assert site_phases.mark_excerpts(block.format("38-hunt-train"), filtered, lang) == block.format("38-hunt-train")


def test_no_line_of_prose_starts_with_a_hash_by_accident():
    """The site's Markdown makes any line that starts with # a heading, space or not (md.headings reads
    them so too): a wrapped "#5 and #31" became a stray title."""
    stray = [f"{page}: #{title}" for page in _pages(ROOT)
             for level, title in md.headings((ROOT / page).read_text(encoding="utf-8"))
             if f"{'#' * level}{title}" in (ROOT / page).read_text(encoding="utf-8").splitlines()]
    assert not stray, "a line starts with # but is no heading (move the word before it):\n" + "\n".join(stray)


@pytest.mark.parametrize("page", _english_pages())
def test_translation_has_the_same_headings(page):
    en = (ROOT / page).read_text(encoding="utf-8")
    es = (ROOT / md.es_name(page)).read_text(encoding="utf-8")
    assert _levels(en) == _levels(es), (
        f"{page} and its .es.md have different headings (count per level, outside code blocks):\n"
        f"en {dict(_levels(en))}: {[t for _, t in md.headings(en)]}\n"
        f"es {dict(_levels(es))}: {[t for _, t in md.headings(es)]}")


@pytest.mark.parametrize("page", _english_pages())
def test_translation_shows_the_same_output_blocks(page):
    en = _blocks((ROOT / page).read_text(encoding="utf-8"))
    es = _blocks((ROOT / md.es_name(page)).read_text(encoding="utf-8"))
    assert [n for n, _ in en] == [n for n, _ in es], f"{page}: output blocks differ in names or order"
    for (name, a), (_, b) in zip(en, es):
        assert a == b, f"{page}: output block {name} differs between English and Spanish: run `just docs-outputs`"


# ---------------------------------------------------------------- what the site shows

@pytest.fixture(scope="module")
def staged():
    return site.stage_pages(ROOT)


def test_site_output_blocks_match_the_saved_outputs(staged):
    problems = outputs.check(ROOT, fresh=False, echo=lambda *a: None)
    assert not problems, "\n".join(problems)
    for page in _pages(ROOT):
        if page.startswith("labs/"):
            shown = _blocks(staged.pages[page])
            assert shown == _blocks((ROOT / page).read_text(encoding="utf-8")), \
                f"{page}: the site shows other output blocks than the lab page"


def test_staged_pages_pair_up_with_the_same_headings(staged):
    """Generated pages (catalog, CLI, hints) are made in both languages with one structure."""
    pages = staged.pages
    for page in ("index.md", "docs/reference/breaks.md", "docs/reference/cli.md"):
        assert page in pages and md.es_name(page) in pages, f"the site has no {page} in both languages"
    for page in pages:  # a missing twin is reported by test_every_page_has_its_translation
        if not md.is_es(page) and md.es_name(page) in pages:
            assert _levels(pages[page]) == _levels(pages[md.es_name(page)]), f"staged {page}: headings differ"


def test_every_break_page_gets_its_hint_ladder(staged):
    for b in load_catalog(ROOT).values():
        if not b.lab:
            continue
        for page, lang in ((b.lab, "en"), (md.es_name(b.lab), "es")):
            if page not in staged.pages:
                continue
            text = staged.pages[page]
            word = site_pages.T[lang]["hint"]
            assert f"## {site_pages.T[lang]['hints']}\n" in text, f"{page}: no hints section"
            for rung in (1, 2, 3):
                assert f'??? note "{word} {rung}"\n    {b.hint(rung, lang).splitlines()[0]}' in text
            assert f"`just hint {b.id}`" in text
            source = (ROOT / page).read_text(encoding="utf-8")
            assert f"## {site_pages.T[lang]['hints']}\n" not in source, "hints are added to the staged copy only"


def test_the_catalog_page_lists_every_break(staged):
    for lang, name in (("en", "docs/reference/breaks.md"), ("es", "docs/reference/breaks.es.md")):
        text = staged.pages[name]
        for b in load_catalog(ROOT).values():
            assert f"### {b.id} — {b.t('title', lang)}" in text
            assert f"`{b.target}`" in text and all(f"`{d}`" in text for d in b.detectors)
            assert all(f'"{site_pages.T[lang]["hint"]} {r}"' in text for r in (1, 2, 3))


def test_the_cli_page_shows_the_real_help(staged):
    from minimoe.course.cli import build_parser

    text = staged.pages["docs/reference/cli.md"]
    assert "usage: moe-train" in text and "--aux-alpha" in text
    for sub in ("list", "break", "hint", "grade", "gradebook", "verify"):
        assert f"### `minimoe.course {sub}`" in text
    assert "usage: minimoe.course" in text and build_parser().prog == "minimoe.course"
    assert "just moe-train *args" in text and "# Train the toy MoE" in text


def test_home_page_is_docs_index_with_its_links_rebased(staged):
    home = staged.pages["index.md"]
    assert home.startswith((ROOT / "docs/index.md").read_text(encoding="utf-8").splitlines()[0])
    assert "](docs/theory/routing-math.md)" in home
    assert "](labs/phase-36-routing-and-balance/00-moe-on-the-grammar-tutor.md)" in home
    assert "docs/index.md" not in staged.pages and "index.es.md" in staged.pages
    assert "<!-- phases -->" not in home and "labs/phase-36-routing-and-balance/README.md" in home


def test_language_switch_lines_are_left_to_the_site_switcher(staged):
    for page, text in staged.pages.items():
        assert not re.search(r"^\*\*English\*\* · \[Español\]|^\[English\]\(.*\) · \*\*Español\*\*", text, re.M), page


def test_links_are_rebased_and_pending_phases_shown_as_text():
    notes = []
    linker = md.Linker(ROOT, {"index.md", "docs/theory/routing-math.md", "labs/phase-36-x/README.md"}, notes)
    page = "labs/phase-36-y/a.es.md"
    untranslated = linker.relink("[x](../phase-36-x/README.es.md)", page, page)
    assert untranslated == "[x](../phase-36-x/README.md)"  # the Spanish site falls back to the English page
    text = ("[math](theory/routing-math.md#the-z-loss) [up](../labs/phase-99-later/README.md) "
            "[code](../src/minimoe/loss.py) `[not a link](x.md)` [web](https://example.org)\n")
    out = linker.relink(text, "docs/index.md", "index.md")
    assert "[math](docs/theory/routing-math.md#the-z-loss)" in out
    assert "up " in out and "phase-99" not in out and notes  # a phase not written yet: plain text
    assert "code (`src/minimoe/loss.py`)" in out  # the site does not host the source
    assert "`[not a link](x.md)`" in out and "[web](https://example.org)" in out


def test_nav_discovers_every_phase_folder_and_its_pages(staged):
    nav, es = site.nav(staged.pages, staged.nav)
    assert nav[0] == {"Start here": ["index.md", "docs/syllabus.md", "docs/glossary.md"]}
    labs = next(item["Labs"] for item in nav if isinstance(item, dict) and "Labs" in item)
    folders = sorted((p for p in ROOT.glob("labs/phase-*") if (p / "README.md").is_file()),
                     key=lambda p: int(p.name.split("-")[1]))
    assert len(labs) == len(folders)
    for (title, items), folder in zip((next(iter(d.items())) for d in labs), folders):
        d = f"labs/{folder.name}"
        assert title == md.title_of((folder / "README.md").read_text(encoding="utf-8"), "")
        assert items[0] == {"Overview": f"{d}/README.md"} and f"{d}/00-" in items[1]
        assert {"Hunt blind": f"{d}/hunt.md"} in items and {"Print this phase": f"{d}/print.md"} in items
        guided = next(i["Guided breaks"] for i in items if isinstance(i, dict) and "Guided breaks" in i)
        ids = [b.id for b in load_catalog(ROOT).values() if b.lab and b.lab.startswith(d + "/")]
        assert guided[0] == f"{d}/breaks/index.md"
        assert sorted(list(g)[0] for g in guided[1:]) == [f"Break {i}" for i in ids]
        assert es[title] == md.title_of((folder / "README.es.md").read_text(encoding="utf-8"), "")
    assert es["Hunt blind"] == "Caza a ciegas" and es["Labs"] == "Laboratorios"
    assert {"Theory": ["docs/theory/routing-math.md", "docs/theory/parameters.md"]} in nav


# ---------------------------------------------------------------- what a handout ships names no break

def _handout_pages() -> list[Path]:
    """A phase's README and lab 00, both languages: what a classroom handout ships."""
    return sorted(p for p in ROOT.glob("labs/phase-*/*.md") if p.name.startswith(("README", "00-")))


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in _handout_pages()])
def test_a_phase_readme_and_lab00_name_no_break(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    found = []
    for b in load_catalog(ROOT).values():
        found += [f"id {b.id}" for _ in re.finditer(rf"(?<![\w-]){re.escape(b.id)}(?![\w-])", text)]
        found += [f"title {b.t('title', lang)!r}" for lang in ("en", "es")
                  if b.t("title", lang).lower() in text.lower()]
    found += [f"link {m.group(0)}" for m in re.finditer(r"\]\([^)]*breaks/[^)]*\)", text)]
    specs = {s.name: s for s in outputs.load_specs(ROOT)}
    found += [f"the output of break {specs[n].brk} ({n})" for n in outputs.page_blocks(ROOT / page) if specs[n].brk]
    assert not found, f"{page} gives a break away: {found}"


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in _handout_pages() if "/00-" in p.as_posix()])
def test_lab00_lists_what_you_will_do_for_every_step(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    steps = [t for level, t in md.headings(text) if level == 2 and re.match(r"(Step|Paso) \d+ ", t)]
    intro = text.split("\n## ", 2)[1]  # the "What you'll do" section
    items = re.findall(r"^\d+\. ", intro, re.M)
    assert len(items) == len(steps), f"{page}: 'What you'll do' lists {len(items)} items for {len(steps)} steps"


SOURCE_AS_SEED = re.compile(r"\b(the seed|seed \d{3}|seed's|la semilla(?! aleatoria| \d)|semilla \d{3})\b", re.I)


@pytest.mark.parametrize("page", _pages(ROOT))
def test_seed_means_a_random_seed_only(page):
    """The five source documents are named as source notes or by title, never "the seed"."""
    text = md.outside_code((ROOT / page).read_text(encoding="utf-8"), lambda part: part)
    prose = "\n".join(ln for ln in text.splitlines() if not ln.startswith(("    ", "$ ", "seed ")))
    found = [m.group(0) for m in SOURCE_AS_SEED.finditer(md.CODE_SPAN_RE.sub("", prose))]
    assert not found, f"{page}: 'seed' for a source document: {found}"


SOURCE_NOTE_ES = re.compile(r"\bnotas? fuente\b|\bdocumentos? fuente\b", re.I)


def test_spanish_names_a_source_note_nota_de_origen():
    """Spanish pages and break texts call a source note "nota de origen", one name for one thing."""
    texts = {p: (ROOT / p).read_text(encoding="utf-8") for p in _pages(ROOT) if md.is_es(p)}
    texts |= {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
              for p in ROOT.glob("labs/phase-*/breaks/*.yaml")}
    found = {p: m.group(0) for p, text in texts.items() if (m := SOURCE_NOTE_ES.search(text))}
    assert not found, f"'nota de origen' is the Spanish name of a source note: {found}"


@pytest.mark.parametrize("page", ["docs/index.md", "labs/phase-36-routing-and-balance/00-moe-on-the-grammar-tutor.md"])
def test_where_numbers_first_appear_the_page_says_yours_may_differ(page):
    """The start page and lab 00 of phase 36 say that a run may differ in the last digits, and what does not."""
    for path, words in ((page, ("last digits", "does not change", "ranges")),
                        (md.es_name(page), ("últimas cifras", "no cambia", "rangos"))):
        text = (ROOT / path).read_text(encoding="utf-8")
        assert all(w in text for w in words), f"{path}: say that a run may differ in the last digits, and what does not"


def test_a_guided_page_shows_its_breaks_own_mutation():
    """The spoiler box of a guided page shows the line the break's YAML changes, before and after."""
    for b in load_catalog(ROOT).values():
        if not b.lab:
            continue
        for page in (b.lab, md.es_name(b.lab)):
            source = (ROOT / page).read_text(encoding="utf-8")
            spoiler = re.search(r"^<!-- spoiler -->\n(.*?)^<!-- /spoiler -->", source, re.S | re.M)
            box = spoiler.group(1) if spoiler else ""
            for line in (b.old, b.new):
                code = line.split("  #")[0].strip()
                assert code in box, f"{page}: the spoiler box does not show the break's line {code!r}"


def test_hint_ladders_go_from_the_symptom_to_the_place():
    """Rung 1 is an observation: it names no source file; the last rung says where to look: the target."""
    for b in load_catalog(ROOT).values():
        target = Path(b.target).name
        for lang in ("en", "es"):
            rungs = [h[lang] for h in b.hints]
            assert len(rungs) >= 3, f"{b.id}: a ladder has at least three rungs"
            assert "src/" not in rungs[0] and target not in rungs[0], f"{b.id} ({lang}): rung 1 names the file"
            assert target in rungs[-1], f"{b.id} ({lang}): the last rung should name {target}"


def _yaml_example(text: str) -> list[str]:
    block = re.search(r"^```yaml\n(.*?)^```", text, re.S | re.M)
    return [ln.strip() for ln in (block.group(1) if block else "").splitlines()
            if re.match(r"\s+(concept|hint_\d|fix_diff):", ln) and '"..."' not in ln]


@pytest.mark.parametrize("page", [p for p in _english_pages() if "/breaks/" in p])
def test_spanish_notes_example_is_translated(page):
    """A guided page's notes example (concept, hints, fix) is written in the page's language."""
    en = _yaml_example((ROOT / page).read_text(encoding="utf-8"))
    es = _yaml_example((ROOT / md.es_name(page)).read_text(encoding="utf-8"))
    same = [ln for ln in es if ln in en and not (ln.startswith("fix_diff:") and re.search(r"[=(]|self\.", ln))]  # code
    assert not same, f"{md.es_name(page)}: notes example lines left in English: {same}"


# ---------------------------------------------------------------- each phase's generated pages

def test_guided_pages_hide_the_diff_in_a_spoiler_box(staged):
    for b in load_catalog(ROOT).values():
        if not b.lab:
            continue
        for page, lang in ((b.lab, "en"), (md.es_name(b.lab), "es")):
            source = (ROOT / page).read_text(encoding="utf-8")
            spoiler = re.search(r"^<!-- spoiler -->\n(.*?)^<!-- /spoiler -->", source, re.S | re.M)
            assert spoiler, f"{page}: no <!-- spoiler --> ... <!-- /spoiler --> around the break's diff"
            outside = source.replace(spoiler.group(0), "")
            assert b.new.strip() not in outside, f"{page}: the broken line shows outside the spoiler box"
            assert f'??? danger "{site_phases.T[lang]["spoiler"]}"' in staged.pages[page]


def test_each_phase_has_a_blind_hunt_page_that_names_no_break(staged):
    catalog = load_catalog(ROOT)
    for ph in site_phases.phases(ROOT, catalog):
        for lang in ("en", "es"):
            text = staged.pages[ph.path("hunt.md", lang)]
            assert f"just break blind {ph.number}" in text and "just hint" in text
            assert f"just test tests/phase{ph.number}" in text
            for c in ph.syllabus["hunt"]["run"]:
                assert f"just {c}" in text
            for b in catalog.values():
                assert b.id not in text and b.t("title", lang) not in text, f"{ph.folder} hunt page names {b.id}"


def test_each_phase_has_a_guided_list_and_a_print_view(staged):
    for ph in site_phases.phases(ROOT, load_catalog(ROOT)):
        for lang in ("en", "es"):
            guided = staged.pages[ph.path("breaks/index.md", lang)]
            printed = staged.pages[ph.path("print.md", lang)]
            assert printed.startswith("---\nsearch:\n  exclude: true\n---")
            assert "??? " not in printed  # every collapsed box is open on paper
            for b in ph.breaks:
                assert f"| {b.id} | " in guided and b.t("title", lang).replace("|", "\\|") in guided
                if b.lab:
                    assert b.t("title", lang) in printed
            spoilers = printed.index(site_phases.T[lang]["print_spoilers"])
            assert all(printed.index(b.t("title", lang)) > spoilers for b in ph.breaks if b.lab)


def test_the_syllabus_lists_every_phase_with_its_breaks_in_order(staged):
    catalog = load_catalog(ROOT)
    for lang, page in (("en", "docs/syllabus.md"), ("es", "docs/syllabus.es.md")):
        text = staged.pages[page]
        assert site_phases.SYLLABUS_MARK not in text
        for ph in site_phases.phases(ROOT, catalog):
            assert f"## {ph.title(ROOT, lang)}" in text
            assert all(o in text for o in ph.syllabus["objectives"][lang]) and ph.syllabus["time"][lang] in text
            assert " → ".join(f"`{b.id}`" for b in ph.breaks) in text
    home = staged.pages["index.md"]
    assert "](docs/syllabus.md)" in home and "](docs/glossary.md)" in home


def test_a_phase_without_a_syllabus_is_refused_with_what_it_needs(tmp_path):
    from minimoe.course.catalog import CourseError

    (tmp_path / "labs" / "phase-41-x").mkdir(parents=True)
    (tmp_path / "labs" / "phase-41-x" / "README.md").write_text("# Phase 41\n")
    with pytest.raises(CourseError, match="syllabus.yaml is missing"):
        site_phases.phases(tmp_path, {})
    (tmp_path / "labs" / "phase-41-x" / "syllabus.yaml").write_text("objectives: {en: [a]}\n")
    with pytest.raises(CourseError, match="'objectives' needs English and Spanish"):
        site_phases.phases(tmp_path, {})


def test_telemetry_page_names_every_field(tmp_path):
    import dataclasses

    from minimoe.config import Config
    from minimoe.telemetry import HealthSummary, LayerHealth
    from minimoe.train import train, write_outputs

    cfg = Config().replace(train={"steps": 2, "eval_tokens": 256, "threads": 1, "log_every": 1})
    write_outputs(train(cfg), str(tmp_path))
    blob = json.loads((tmp_path / "telemetry.json").read_text())
    names = {f.name for cls in (LayerHealth, HealthSummary) for f in dataclasses.fields(cls)}
    names |= set(blob) | set(blob["history"][0]) | set(blob["log"][0]) | set(blob["params"])
    for page in ("docs/reference/telemetry.md", "docs/reference/telemetry.es.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        missing = sorted(n for n in names if f"`{n}`" not in text)
        assert not missing, f"{page} does not describe these telemetry fields: {missing}"


def test_no_benchmark_recorded_yet_is_said_in_both_languages(tmp_path):
    (tmp_path / "docs" / "performance").mkdir(parents=True)
    for lang in ("en", "es"):
        assert site_bench.T[lang]["bench_none"].split(".")[0] in site_bench.bench_section(tmp_path, lang)


def test_a_recorded_benchmark_shows_its_tables_and_plot(tmp_path):
    from minimoe.course.catalog import CourseError

    (tmp_path / "docs" / "performance").mkdir(parents=True)
    with pytest.raises(CourseError, match="run `just bench` first"):
        site_bench.record_bench(tmp_path, echo=lambda *a: None)
    runs = tmp_path / "runs" / "bench"
    runs.mkdir(parents=True)
    (runs / "bench.json").write_text('{"meta": {}, "cells": [{"tokens": 1}]}')
    with pytest.raises(CourseError, match="not in the format"):
        site_bench.record_bench(tmp_path, echo=lambda *a: None)
    cell = {"tokens": 1024, "experts": 8, "top_k": 2, "others_cores": 0.0, "columns": {
        "minimoe": {"ms": 12.5, "ratio": 1.5, "tokens_per_s": 81920.0, "peak_mb": 4.0},
        "dense": {"ms": 8.3, "ratio": 1.0, "tokens_per_s": 123000.0, "peak_mb": 4.0},
        "loop": {"skipped": "one call took 3.0 s (> --skip-over 2)"}}}
    meta = {"torch": "2.13.0+cpu", "threads": 2, "width": 64, "hidden": 128, "repeats": 5, "machine": "x86_64",
            "load_average": [0.5, 0.4, 0.3]}
    (runs / "bench.json").write_text(json.dumps({"meta": meta, "cells": [cell]}))
    (runs / "bench.png").write_bytes(b"\x89PNG")
    site_bench.record_bench(tmp_path, echo=lambda *a: None)
    assert (tmp_path / "docs" / "performance" / "bench.png").is_file()
    for lang in ("en", "es"):
        text = site_bench.bench_section(tmp_path, lang)
        assert "12.5 ms  1.50x" in text and "loop: one call took 3.0 s" in text and "](bench.png)" in text
        assert site_bench.T[lang]["bench_gpu_none"].split(".")[0] in site_bench.bench_section(tmp_path, lang,
                                                                                              "bench-gpu")
    # a GPU run is recorded beside the CPU one, and the page's GPU marker shows it
    meta.update(device="NVIDIA H100 80GB HBM3", dtype="bfloat16")
    cell["columns"]["minimoe"]["ms"] = 0.7
    (runs / "bench.json").write_text(json.dumps({"meta": meta, "cells": [cell]}))
    site_bench.record_bench(tmp_path, echo=lambda *a: None)
    perf = tmp_path / "docs" / "performance"
    assert {p.name for p in perf.iterdir()} == {"bench.json", "bench.png", "bench-gpu.json", "bench-gpu.png"}
    page = site_bench.fill_bench("<!-- bench -->\n\n<!-- bench-gpu -->\n", tmp_path, "en")
    cpu, gpu = page.split("NVIDIA H100")
    assert "12.5 ms" in cpu and "2 threads" in cpu and "0.7 ms" in gpu and "](bench-gpu.png)" in gpu
    assert "bfloat16" in gpu and "float32" in cpu


# ---------------------------------------------------------------- the build and a browser (slow)

SITE_URL = "https://example.org/course/minimoe/"  # the site is built for a subpath, as a project page is
MOUNT = "/course/minimoe/"
LAB = "labs/phase-36-routing-and-balance/breaks/36-01/"


def _shared_build(tmp_path_factory, name: str, **kwargs) -> tuple[int, Path]:
    """A site build made once per test session (shared by the xdist workers through a lock)."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / f"minimoe-{name}"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "result.json"
        if not done.is_file():
            rc = site.build(ROOT, strict=True, stage_dir=shared / "site-src", site_dir=shared / "site", **kwargs)
            done.write_text(json.dumps({"rc": rc}))
        rc = json.loads(done.read_text())["rc"]
    return rc, shared / "site"


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    return _shared_build(tmp_path_factory, "site", site_url=SITE_URL)


@pytest.mark.slow
def test_mkdocs_build_strict_succeeds(built_site):
    rc, out = built_site
    assert rc == 0, "mkdocs build --strict failed: run `just docs` to see the warnings"
    for page in ("index.html", "es/index.html", "labs/phase-36-routing-and-balance/index.html", LAB + "index.html",
                 "es/" + LAB + "index.html", "labs/phase-36-routing-and-balance/hunt/index.html",
                 "labs/phase-36-routing-and-balance/print/index.html", "docs/syllabus/index.html",
                 "es/docs/glossary/index.html", "docs/reference/breaks/index.html",
                 "es/docs/theory/routing-math/index.html", "404.html", "es/404.html"):
        assert (out / page).is_file(), f"the site has no {page}"
    for lang, index in (("en", out / "search"), ("es", out / "es" / "search")):
        data = json.loads((index / "search_index.json").read_text())
        assert data["config"]["lang"] == [lang] and data["docs"], f"{index}: not one language's index"
        assert not any(d["location"].startswith("es/") for d in data["docs"])  # es/'s own index is relative to es/
        assert not any("/print/" in d["location"] for d in data["docs"])  # a print view repeats its phase
    assert '<html lang="es"' in (out / "es" / "404.html").read_text() and "Página no encontrada" in \
        (out / "es" / "404.html").read_text()


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if v and ((tag == "a" and k == "href") or (k == "src") or (tag == "link" and k == "href")):
                self.links.append(v)


def _serve(root: Path, mount: str = "/"):
    """An HTTP server for `root` at the path `mount`, as a project page is hosted (anything else is a 404)."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def translate_path(self, path):
            if not path.startswith(mount):
                return str(root / "__not_here__")
            return super().translate_path("/" + path[len(mount):])

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # a browser that hangs up mid-reply is not a failure
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}{mount}"


SITE_DIR: list[Path] = []  # the served build, for the crawl to list its pages


@pytest.fixture()
def served(built_site):
    rc, out = built_site
    if rc != 0:
        pytest.fail("the site did not build; see test_mkdocs_build_strict_succeeds")
    SITE_DIR[:] = [out]
    server, url = _serve(out, MOUNT)
    yield url
    server.shutdown()


@pytest.mark.slow
def test_a_site_under_a_subpath_has_no_broken_link_asset_or_sitemap_address(served):
    """Crawl every page from both home pages and the 404 pages: each link, image, stylesheet and script
    inside the site must answer; every sitemap address must be under the site's address and answer."""
    base = urllib.parse.urlsplit(served)
    seen, broken, queue = set(), [], [served, served + "es/", served + "404.html", served + "es/404.html"]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                kind, body = r.headers.get_content_type(), r.read()
        except urllib.error.HTTPError as e:
            broken.append(f"{url} ({e.code})")
            continue
        if kind != "text/html":
            continue
        parser = _Links()
        parser.feed(body.decode("utf-8"))
        for link in parser.links:
            target = urllib.parse.urljoin(url, link).split("#")[0]
            parts = urllib.parse.urlsplit(target)
            if parts.scheme in ("http", "https") and parts.netloc == base.netloc:
                assert parts.path.startswith(base.path), f"{url} links outside the site's path: {link}"
                queue.append(target)
    assert not broken, f"broken links or assets under {MOUNT}: {broken[:10]}"
    pages = {served + p.relative_to(built).as_posix().removesuffix("index.html") for built in [SITE_DIR[0]]
             for p in built.rglob("*.html")}
    assert pages <= seen, f"pages no link leads to: {sorted(pages - seen)[:10]}"
    sitemap = urllib.request.urlopen(served + "sitemap.xml", timeout=10).read().decode()
    locs = re.findall(r"<loc>([^<]+)</loc>", sitemap) + re.findall(r'hreflang="\w+" href="([^"]+)"', sitemap)
    assert locs and all(loc.startswith(SITE_URL) for loc in locs), [x for x in locs if not x.startswith(SITE_URL)][:5]
    for loc in set(locs):
        urllib.request.urlopen(served + loc[len(SITE_URL):], timeout=10).close()  # raises on a 404


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        pytest.skip("browser test: /usr/bin/chromium or /usr/bin/chromedriver is absent "
                    "(apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="browser test: selenium is not installed "
                                    "(pip install -e '.[docs]')")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="minimoe-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files", f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_browser_language_switcher_and_hint_box(browser, served, tmp_path_factory):
    from selenium.webdriver.common.by import By

    shots = tmp_path_factory.mktemp("site-screenshots")

    def switcher(lang: str) -> str:
        links = browser.find_elements(By.CSS_SELECTOR, f"a.md-select__link[hreflang='{lang}']")
        assert links, f"{browser.current_url}: no language switcher link to '{lang}'"
        return links[0].get_attribute("href")

    browser.get(served)
    browser.save_screenshot(str(shots / "home-en.png"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Start here"
    assert switcher("es") == served + "es/"

    browser.get(served + "es/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Empieza aquí"
    assert switcher("en") == served

    browser.get(served + LAB)
    assert switcher("es") == served + "es/" + LAB
    boxes = browser.find_elements(By.CSS_SELECTOR, "article details")
    spoiler, hints = boxes[0], [b for b in boxes if b.text.startswith("Hint")]
    assert "Spoiler" in spoiler.text and not spoiler.get_attribute("open"), "the diff is not in a closed box"
    assert len(hints) >= 3, "the lab page has no hint boxes"
    box = hints[0]
    assert not box.get_attribute("open")
    summary = box.find_element(By.TAG_NAME, "summary")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", summary)
    summary.click()
    browser.save_screenshot(str(shots / "lab-en-hint-open.png"))
    assert box.get_attribute("open") is not None, "clicking the hint box did not open it"

    browser.get(served + "es/" + LAB)
    assert switcher("en") == served + LAB
    assert any(s.text == "Pista 1" for s in browser.find_elements(By.CSS_SELECTOR, "article details summary"))
    print(f"screenshots: {shots}")


def _search(browser, url: str, query: str) -> list[str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    field = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")
    field.click()
    field.send_keys(query)
    WebDriverWait(browser, 20).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".md-search-result__item a.md-search-result__link"))
    return [a.get_attribute("href") for a in
            browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item a.md-search-result__link")]


@pytest.mark.slow
def test_search_finds_only_the_current_languages_pages(browser, served):
    english = _search(browser, served + "labs/phase-36-routing-and-balance/", "aux loss")
    assert english and not any("/es/" in h for h in english), english[:5]
    spanish = _search(browser, served + "es/labs/phase-36-routing-and-balance/", "aux loss")
    assert spanish and all(h.startswith(served + "es/") for h in spanish), spanish[:5]


@pytest.mark.slow
def test_the_offline_copy_reads_from_disk(browser, tmp_path_factory):
    """`just docs --offline`: opened from file://, the links lead to pages, not to folder listings."""
    from selenium.webdriver.common.by import By

    rc, out = _shared_build(tmp_path_factory, "offline", offline=True)
    assert rc == 0
    browser.get((out / "index.html").as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text == "Start here"
    link = browser.find_element(By.CSS_SELECTOR, "article a[href$='00-moe-on-the-grammar-tutor.html']")
    browser.get(link.get_attribute("href"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Lab 00")
    assert not browser.find_elements(By.CSS_SELECTOR, ".md-search")[0].is_displayed()


@pytest.mark.slow
def test_screenshots_of_the_performance_page_and_the_syllabus(browser, served, tmp_path_factory):
    """Not a check of looks: screenshots to look at (the path is printed), at a laptop's and a phone's width.
    What it asserts: the benchmark's tables and the syllabus fit the text column at 1280 px."""
    from selenium.webdriver.common.by import By

    shots = tmp_path_factory.mktemp("site-screenshots-widths")
    for width in (1280, 390):
        browser.set_window_size(width, 1000)
        for page in ("docs/performance/", "docs/syllabus/"):
            browser.get(served + page)
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(width, min(height, 8000))
            browser.save_screenshot(str(shots / f"{page.strip('/').replace('/', '_')}-{width}.png"))
            if width == 1280:
                column = browser.find_element(By.CSS_SELECTOR, "article").rect
                for table in browser.find_elements(By.CSS_SELECTOR, "article table"):
                    right = table.rect["x"] + table.rect["width"]
                    assert right <= column["x"] + column["width"] + 1, f"{page}: a table runs past the text"
            browser.set_window_size(width, 1000)
    browser.set_window_size(1280, 1000)
    print(f"screenshots: {shots}")
