"""The pages the site makes for each phase, from its folder and its syllabus.yaml (used by site.py).

A phase is on the site once labs/phase-NN-*/README.md exists. Its folder holds what a handout ships
(README and lab 00: the healthy model and the concepts, never a break) and, in breaks/, each break's
YAML and its guided page (breaks/NN-MM.md, the YAML's `lab:`). Its syllabus.yaml says the rest:

    objectives:    {en: [...], es: [...]}   what a learner can do after the phase
    prerequisites: {en: [...], es: [...]}
    time:          {en: "...", es: "..."}   expected time on a laptop, reading and runs
    hunt:
      run: ["moe-train --steps 500", ...]   the commands a blind hunt starts with (as `just <command>`)
      watch: {en: [...], es: [...]}         what to watch in their output (never a break's name)
    breaks: ["36-01", ...]                  (optional) the order to take them; others follow by id

From these the site makes, in English and Spanish:

  labs/<phase>/hunt.md          a blind hunt: what to run and watch, the detectors, `just hint`
  labs/<phase>/breaks/index.md  the guided breaks: each break's id, title and page (spoilers)
  labs/<phase>/print.md         the phase on one page for paper (site_print.py)
  docs/syllabus.md's marker      <!-- syllabus -->: every phase's objectives, prerequisites, time, the
                                order of its breaks and its pages

and the spoiler box of a guided page: the lines between <!-- spoiler --> and <!-- /spoiler --> (the
break's diff) go into a collapsed box that says what it hides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from .catalog import Break, CourseError, safe_yaml
from .outputs import BLOCK_RE, OutputSpec, load_specs
from .site_markdown import es_name, is_es, title_of

SPOILER_RE = re.compile(r"^<!-- spoiler -->\n(.*?)^<!-- /spoiler -->\n?", re.S | re.M)

T = {
    "en": {
        "overview": "Overview", "hunt_nav": "Hunt blind", "guided_nav": "Guided breaks",
        "print_nav": "Print this phase",
        "break_nav": "Break {id}",
        "spoiler": "Spoiler: the break itself (open only once you have found it, or on a guided read)",
        "hunt_title": "Phase {n}: hunt a break blind",
        "hunt_intro": "In a blind hunt one break of this phase is on and nobody says which. You find it from "
                      "what the model prints, as you would a bug in someone else's code. This page says what "
                      "to run and what to watch; it names no break. Do not open the guided break pages or "
                      "the break catalog while you hunt: they give the answer away.",
        "start": "Start", "start_text": "Your instructor switches the break on, or you do it yourself:",
        "start_cmt": "a random break of phase {n}, unnamed", "status_cmt": "says that a blind break is on, not which",
        "run": "Run, and compare with the healthy model",
        "run_text": "Run what lab 00 runs and compare every number with the healthy run on its page and with "
                    "the healthy ranges of the [phase overview]({readme}). Run it more than once, or on "
                    "other seeds (`--seed N`), before you trust a difference.",
        "healthy": "The healthy model", "excerpt": "the lines to compare; the command prints more",
        "excerpt_note": "An excerpt: the lines to compare. The command prints more.",
        "healthy_text": "What each command printed on the healthy code, with no break on (recorded by `just "
                        "docs-outputs`; your numbers differ a little from one machine to another, not the "
                        "picture):",
        "healthy_none": "(not recorded yet: `just docs-outputs --phase {n}` records it)",
        "watch": "What to watch",
        "detectors": "The detectors",
        "detectors_text": "The phase's detector tests are the ones the grader runs. A red test reports what it "
                          "measured, not why; a red test is a symptom to explain.",
        "ladder": "The hint ladder",
        "ladder_text": "Stuck? `just hint` (no break id: the blind break's) shows the next rung of its hint ladder: "
                       "three rungs, the vaguest first (an observation to make, then a concept, then where to "
                       "look). Open one rung at a time; the grader reports how many you opened.",
        "record": "Record and check",
        "record_text": "When you have found the break, fix it in the code, write it down in "
                       "`learners/<name>/phase-{n}/notes/breaks.md` (the notes template says which fields), "
                       "and run `just grade <name>`. Once it passes, `just break off --all` closes the exercise (your "
                       "fix stays), and the next `just break blind` can start.",
        "guided_title": "Phase {n}: the guided breaks",
        "guided_intro": "**Spoilers.** Each break's title names its bug, and each page tells its story from the "
                        "symptom to the fix. On a blind hunt, go to [Hunt blind]({hunt}) instead.",
        "id": "break", "title": "title", "concept": "what it teaches", "page": "page",
        "no_page": "no guided page yet",
        "print_title": "{phase} (print view)",
        "print_intro": "The whole phase on one page, for reading on paper: print it from your browser "
                       "(Ctrl+P, or Cmd+P). Every collapsed box is open here; the guided breaks come last, after "
                       "a warning, so that you can stop before them on a blind hunt.",
        "print_spoilers": "Guided breaks (spoilers)",
        "print_spoilers_text": "Stop here if you hunt a break blind: what follows names every break of the phase.",
        "objectives": "Objectives", "prerequisites": "Prerequisites", "time": "Expected time",
        "order": "Breaks, in order", "pages": "Pages",
        "order_text": "{ids} (their titles, which give them away, are on the [guided breaks]({guided}) page)",
        "pages_text": "[overview]({readme}) · [hunt blind]({hunt}) · [guided breaks]({guided}) · [print]({print})",
    },
    "es": {
        "overview": "Resumen", "hunt_nav": "Caza a ciegas", "guided_nav": "Breaks guiados",
        "print_nav": "Imprimir la fase",
        "break_nav": "Break {id}",
        "spoiler": "Spoiler: el break en sí (ábrelo solo cuando lo hayas encontrado, o en una lectura guiada)",
        "hunt_title": "Fase {n}: caza un break a ciegas",
        "hunt_intro": "En una caza a ciegas hay un break de esta fase activado y nadie dice cuál. Lo encuentras "
                      "por lo que imprime el modelo, como un bug en código ajeno. Esta página dice qué ejecutar "
                      "y qué vigilar; no nombra ningún break. No abras las páginas de los breaks guiados ni el "
                      "catálogo de breaks mientras cazas: dan la respuesta.",
        "start": "Empieza", "start_text": "Tu instructor activa el break, o lo activas tú:",
        "start_cmt": "un break al azar de la fase {n}, sin nombre",
        "status_cmt": "dice que hay un break a ciegas, no cuál",
        "run": "Ejecuta y compara con el modelo sano",
        "run_text": "Ejecuta lo que ejecuta el lab 00 y compara cada número con la ejecución sana de su página y "
                    "con los rangos sanos del [resumen de la fase]({readme}). Ejecútalo más de una vez, o con "
                    "otras semillas aleatorias (`--seed N`), antes de fiarte de una diferencia.",
        "healthy": "El modelo sano", "excerpt": "las líneas que comparar; la orden imprime más",
        "excerpt_note": "Un extracto: las líneas que comparar. La orden imprime más.",
        "healthy_text": "Lo que imprimió cada orden con el código sano, sin ningún break activado (registrado por "
                        "`just docs-outputs`; tus números cambian un poco de una máquina a otra, no el cuadro):",
        "healthy_none": "(todavía sin registrar: `just docs-outputs --phase {n}` lo registra)",
        "watch": "Qué vigilar",
        "detectors": "Los detectores",
        "detectors_text": "Los tests detectores de la fase son los que ejecuta el corrector. Un test en rojo informa "
                          "de lo que midió, no del porqué; es un síntoma que hay que explicar.",
        "ladder": "La escalera de pistas",
        "ladder_text": "¿Atascado? `just hint` (sin id de break: el del break a ciegas) muestra el siguiente peldaño "
                       "de su escalera de pistas: tres peldaños, del más vago al más concreto (una observación, "
                       "luego un concepto, luego dónde mirar). Abre un peldaño cada vez; el corrector informa de "
                       "cuántos abriste.",
        "record": "Anota y comprueba",
        "record_text": "Cuando hayas encontrado el break, corrígelo en el código, anótalo en "
                       "`learners/<nombre>/phase-{n}/notes/breaks.md` (la plantilla de notas dice qué campos) y "
                       "ejecuta `just grade <nombre>`. Cuando lo apruebe, `just break off --all` cierra el ejercicio "
                       "(tu arreglo se queda) y puede empezar el siguiente `just break blind`.",
        "guided_title": "Fase {n}: los breaks guiados",
        "guided_intro": "**Spoilers.** El título de cada break nombra su bug, y cada página cuenta su historia desde "
                        "el síntoma hasta el arreglo. En una caza a ciegas, ve a [Caza a ciegas]({hunt}).",
        "id": "break", "title": "título", "concept": "qué enseña", "page": "página",
        "no_page": "aún sin página guiada",
        "print_title": "{phase} (para imprimir)",
        "print_intro": "La fase entera en una página, para leerla en papel: imprímela desde el navegador (Ctrl+P, o "
                       "Cmd+P). Aquí todas las cajas plegadas están abiertas; los breaks guiados van al final, tras "
                       "un aviso, para que puedas parar antes en una caza a ciegas.",
        "print_spoilers": "Breaks guiados (spoilers)",
        "print_spoilers_text": "Para aquí si cazas un break a ciegas: lo que sigue nombra todos los breaks de la fase.",
        "objectives": "Objetivos", "prerequisites": "Requisitos previos", "time": "Tiempo previsto",
        "order": "Breaks, en orden", "pages": "Páginas",
        "order_text": "{ids} (sus títulos, que los delatan, están en la página de [breaks guiados]({guided}))",
        "pages_text": "[resumen]({readme}) · [caza a ciegas]({hunt}) · [breaks guiados]({guided}) · "
                      "[imprimir]({print})",
    },
}


@dataclass
class Phase:
    number: int
    folder: str  # labs/phase-NN-name
    syllabus: dict
    breaks: list[Break]  # in the syllabus's order

    def path(self, name: str, lang: str = "en") -> str:
        p = f"{self.folder}/{name}"
        return es_name(p) if lang == "es" else p

    def title(self, root: Path, lang: str) -> str:
        readme = root / self.path("README.md", lang)
        readme = readme if readme.is_file() else root / self.path("README.md")
        return title_of(readme.read_text(encoding="utf-8"), f"Phase {self.number}")

    def labs(self, root: Path) -> list[str]:
        """The phase's own pages after its README (lab 00, ...), English paths."""
        return sorted(p.relative_to(root).as_posix() for p in (root / self.folder).glob("*.md")
                      if not is_es(p.name) and p.name != "README.md")


def _texts(d: dict, key: str, where: str, kind=list):
    v = d.get(key)
    if not isinstance(v, dict) or not all(isinstance(v.get(lang), kind) and v.get(lang) for lang in ("en", "es")):
        shape = "[...]" if kind is list else '"..."'
        raise CourseError(f"{where}: field '{key}' needs English and Spanish text: {key}: {{en: {shape}, es: {shape}}}")
    return v


def load_syllabus(root: Path, folder: str, catalog: dict[str, Break], number: int) -> Phase:
    path = root / folder / "syllabus.yaml"
    where = f"{folder}/syllabus.yaml"
    if not path.is_file():
        raise CourseError(f"{where} is missing: every phase with a README needs one (objectives, prerequisites, "
                          "time, hunt: {run, watch}); see src/minimoe/course/site_phases.py")
    d = safe_yaml(path, "syllabus file")
    if not isinstance(d, dict):
        raise CourseError(f"{where}: expected a mapping of objectives, prerequisites, time, hunt")
    for key, kind in (("objectives", list), ("prerequisites", list), ("time", str)):
        _texts(d, key, where, kind)
    hunt = d.get("hunt")
    if not isinstance(hunt, dict) or not isinstance(hunt.get("run"), list) or not hunt["run"]:
        raise CourseError(f"{where}: field 'hunt' needs run: [the commands a blind hunt starts with] and watch")
    _texts(hunt, "watch", f"{where}, hunt")
    mine = sorted((b for b in catalog.values() if b.phase == number), key=lambda b: b.id)
    order = [str(i) for i in d.get("breaks") or []]
    unknown = [i for i in order if i not in {b.id for b in mine}]
    if unknown:
        raise CourseError(f"{where}: breaks {', '.join(unknown)} are not breaks of phase {number} "
                          f"(labs/{folder.split('/')[-1]}/breaks/*.yaml)")
    ranked = sorted(mine, key=lambda b: (order.index(b.id) if b.id in order else len(order), b.id))
    return Phase(number, folder, d, ranked)


def phases(root: Path, catalog: dict[str, Break]) -> list[Phase]:
    """Every phase on the site (a labs/phase-NN-* folder with a README.md), in order."""
    found = []
    for readme in root.glob("labs/phase-*/README.md"):
        folder = readme.parent.relative_to(root).as_posix()
        found.append(load_syllabus(root, folder, catalog, int(readme.parent.name.split("-")[1])))
    return sorted(found, key=lambda p: p.number)


def spoilers(text: str, lang: str) -> str:
    """The <!-- spoiler --> part of a guided page in a collapsed box that says what it hides."""
    def box(m):
        body = "\n".join(("    " + ln) if ln.strip() else "" for ln in m.group(1).rstrip("\n").splitlines())
        return f'??? danger "{T[lang]["spoiler"]}"\n\n{body}\n\n'
    return SPOILER_RE.sub(box, text)


def _lang(link: str, lang: str) -> str:
    """A link to a page in the reader's language (the site falls back to English where none is written)."""
    return es_name(link) if lang == "es" else link


def _bullets(items: list[str]) -> list[str]:
    return [f"- {i}" for i in items] + [""]


def excerpt_names(root: Path) -> set[str]:
    """The outputs whose outputs.yaml entry keeps only some of the command's lines (`lines:`)."""
    return {s.name for s in load_specs(root) if s.lines}


def mark_excerpts(text: str, filtered: set[str], lang: str) -> str:
    """Under each output block of `filtered` (excerpt_names), say that it is an excerpt: a learner comparing
    line by line would otherwise miss the lines the command also prints."""
    def note(m):
        return m.group(0) + (f"\n\n*{T[lang]['excerpt_note']}*" if m.group(2) in filtered else "")
    return BLOCK_RE.sub(note, text)


def hunt_outputs(root: Path, ph: Phase) -> dict[str, OutputSpec]:
    """Each command of the phase's blind-hunt page -> its healthy output: the outputs.yaml entry of the phase
    that runs that command with no break on (`just docs-outputs` records it). A test command has none: on the
    healthy code its tests pass."""
    healthy = {}
    for s in sorted(load_specs(root, ph.number), key=lambda s: s.lines is not None):  # whole outputs first
        if s.brk is None:
            healthy.setdefault(s.command, s)
    return {c: healthy[c] for c in ph.syllabus["hunt"]["run"] if c in healthy}  # in the page's order


def _healthy_boxes(root: Path, ph: Phase, lang: str, terminal: bool) -> list[str]:
    """The healthy output of each hunt command, as saved: collapsed boxes on the site, plain blocks in a
    terminal. The output's name is never shown (it may name the break whose measure it is)."""
    out = [T[lang]["healthy_text"], ""]
    for command, spec in hunt_outputs(root, ph).items():
        text = spec.txt.read_text(encoding="utf-8").rstrip("\n") if spec.txt.is_file() else \
            T[lang]["healthy_none"].format(n=ph.number)
        title = f"{T[lang]['healthy']}: just {command}" + (f" ({T[lang]['excerpt']})" if spec.lines else "")
        if terminal:
            out += [title, "", "```text", text, "```", ""]
        else:
            out += [f'??? example "{title}"', "", "    ```text",
                    *(f"    {line}" if line else "" for line in text.splitlines()), "    ```", ""]
    return out if len(out) > 2 else []


def hunt_page(root: Path, ph: Phase, lang: str, terminal: bool = False) -> str:
    t, n = T[lang], ph.number
    watch = ph.syllabus["hunt"]["watch"][lang]
    run = "\n".join(f"just {c}" for c in ph.syllabus["hunt"]["run"])
    out = [f"# {t['hunt_title'].format(n=n)}", "", t["hunt_intro"], "",
           f"## {t['start']}", "", t["start_text"], "", "```bash",
           f"just break blind {n}      # {t['start_cmt'].format(n=n)}", f"just break status        # {t['status_cmt']}",
           "```", "", f"## {t['run']}", "", "```bash", run, "```", "",
           t["run_text"].format(readme=_lang("README.md", lang)), "", *_healthy_boxes(root, ph, lang, terminal),
           f"## {t['watch']}", "", *_bullets(watch),
           f"## {t['detectors']}", "", "```bash", f"just test tests/phase{n}", "```", "", t["detectors_text"], "",
           f"## {t['ladder']}", "", "```bash", "just hint", "```", "", t["ladder_text"], "",
           f"## {t['record']}", "", t["record_text"].format(n=n), ""]
    return "\n".join(out)


def guided_page(root: Path, ph: Phase, lang: str) -> str:
    t = T[lang]
    out = [f"# {t['guided_title'].format(n=ph.number)}", "",
           t["guided_intro"].format(hunt=_lang("../hunt.md", lang)), "",
           f"| {t['id']} | {t['title']} | {t['concept']} |", "|---|---|---|"]
    for b in ph.breaks:
        title = b.t("title", lang).replace("|", "\\|")
        if b.lab:
            title = f"[{title}]({_lang(posixpath.relpath(b.lab, ph.folder + '/breaks'), lang)})"
        else:
            title += f" ({t['no_page']})"
        out.append(f"| {b.id} | {title} | {b.t('concept', lang).replace('|', chr(92) + '|')} |")
    return "\n".join(out) + "\n"


SYLLABUS_MARK = "<!-- syllabus -->"


def syllabus_section(root: Path, all_phases: list[Phase], lang: str, src: str) -> str:
    """What the <!-- syllabus --> marker of `src` (docs/syllabus.md) becomes: each phase's objectives,
    prerequisites, time, the order of its breaks and its pages."""
    t, out = T[lang], []
    for ph in all_phases:
        s = ph.syllabus
        rel = posixpath.relpath(ph.folder, posixpath.dirname(src))
        links = {k: _lang(f"{rel}/{v}", lang) for k, v in (("readme", "README.md"), ("hunt", "hunt.md"),
                                                            ("guided", "breaks/index.md"), ("print", "print.md"))}
        out += [f"## {ph.title(root, lang)}", "", f"**{t['objectives']}**", "", *_bullets(s["objectives"][lang]),
                f"**{t['prerequisites']}**", "", *_bullets(s["prerequisites"][lang]),
                f"**{t['time']}:** {s['time'][lang]}", ""]
        ids = " → ".join(f"`{b.id}`" for b in ph.breaks) or "—"
        out += [f"**{t['order']}:** {t['order_text'].format(ids=ids, guided=links['guided'])}", "",
                f"**{t['pages']}:** {t['pages_text'].format(**links)}", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def fill_syllabus(text: str, root: Path, all_phases: list[Phase], lang: str, src: str) -> str:
    if SYLLABUS_MARK not in text:
        return text
    return text.replace(SYLLABUS_MARK, syllabus_section(root, all_phases, lang, src))


def nav_items(root: Path, ph: Phase) -> list:
    t = T["en"]
    items = [{t["overview"]: ph.path("README.md")}, *ph.labs(root), {t["hunt_nav"]: ph.path("hunt.md")}]
    guided = [ph.path("breaks/index.md")] + [{t["break_nav"].format(id=b.id): b.lab} for b in ph.breaks if b.lab]
    items.append({t["guided_nav"]: guided})
    items.append({t["print_nav"]: ph.path("print.md")})
    return items


def nav_translations() -> dict[str, str]:
    return {T["en"][k]: T["es"][k] for k in ("overview", "hunt_nav", "guided_nav", "print_nav")}


def generated_pages(root: Path, all_phases: list[Phase]) -> dict[str, str]:
    """The blind-hunt and guided-breaks pages of every phase (the print views come later, from the
    staged pages)."""
    pages = {}
    for lang in ("en", "es"):
        for ph in all_phases:
            pages[ph.path("hunt.md", lang)] = hunt_page(root, ph, lang)
            pages[ph.path("breaks/index.md", lang)] = guided_page(root, ph, lang)
    return pages
