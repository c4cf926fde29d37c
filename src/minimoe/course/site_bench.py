"""The benchmark on the site: `just bench`'s results, recorded into docs/performance/ and shown there.

`just bench` (python -m minimoe.perf.bench) writes runs/bench/bench.json and bench.png. `record_bench`
copies them into docs/performance/, where they are committed; when the site is built, the
<!-- bench --> marker of docs/performance/index(.es).md becomes the two tables exactly as
`just bench` prints them (its own `table()` formats them), the run's machine, and the plot. With
nothing recorded, the page says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .catalog import CourseError
from .site_pages import code_block, indented

BENCH_DIR = "docs/performance"
BENCH_MARK = "<!-- bench -->"

T = {
    "en": {
        "bench_none": "No benchmark has been recorded yet. Run `just bench` (it writes "
                      "`runs/bench/bench.json` and `bench.png`), then record it for the site with "
                      "`python -m minimoe.course.site record-bench`.",
        "bench_meta": "Recorded from `just bench`: torch {torch}, {threads} threads, D = {width}, F = {hidden}, "
                      "{repeats} rounds a cell in alternating order ({passes} pass(es), rounds pooled), on a {machine} "
                      "machine (load average as it finished: {load}).",
        "bench_time": "Time per call, forward + backward (ratio to the dense FFN):",
        "bench_memory": "Throughput and peak memory (torch's allocations, from the profiler):",
        "bench_plot": "Time per call divided by the dense FFN's, against the number of experts",
        "bench_pairs": "minimoe's time over each other column's, round by round: the median of the pairs "
                       "and its spread (quartiles):",
        "bench_goals": "The course's speed goals, judged on this run (each goal's worst cell; met only when "
                       "the whole spread is on the right side):",
    },
    "es": {
        "bench_none": "Todavía no se ha registrado ninguna medida. Ejecuta `just bench` (escribe "
                      "`runs/bench/bench.json` y `bench.png`) y regístrala para el sitio con "
                      "`python -m minimoe.course.site record-bench`.",
        "bench_meta": "Registrado con `just bench`: torch {torch}, {threads} hilos, D = {width}, F = {hidden}, "
                      "{repeats} rondas por celda en orden alterno ({passes} pasada(s), rondas sumadas), "
                      "en una máquina {machine} (carga media al terminar: {load}).",
        "bench_time": "Tiempo por llamada, forward + backward (cociente respecto a la FFN densa):",
        "bench_memory": "Rendimiento y pico de memoria (reservas de torch, según el profiler):",
        "bench_plot": "Tiempo por llamada dividido por el de la FFN densa, frente al número de expertos",
        "bench_pairs": "El tiempo de minimoe dividido por el de cada otra columna, ronda a ronda: la "
                       "mediana de los pares y su dispersión (cuartiles):",
        "bench_goals": "Los objetivos de velocidad del curso, juzgados sobre esta ejecución (la peor celda "
                       "de cada uno; cumplido solo si toda la dispersión cae del lado correcto):",
    },
}


def bench_markdown(data: dict, lang: str, plot: bool) -> str:
    """The recorded benchmark as the page shows it: its two tables, as `just bench` prints them."""
    from ..perf.bench_report import goals, pairs_table, table

    t = T[lang]
    try:
        meta, cells = data["meta"], data["cells"]
        columns = list(cells[0]["columns"])
        load = meta.get("load_average")
        out = [t["bench_meta"].format(load=" ".join(f"{x:.2f}" for x in load) if load else "?", **{
            k: meta.get(k, "?") for k in ("torch", "threads", "width", "hidden", "repeats", "machine")},
            passes=meta.get("passes", 1)), ""]
        out += [t["bench_time"], ""] + code_block(table(cells, columns, "time"))
        out += [t["bench_memory"], ""] + code_block(table(cells, columns, "memory"))
        out += [t["bench_pairs"], ""] + code_block(pairs_table(cells, columns))
        out += [t["bench_goals"], ""] + code_block(goals(cells))
        skipped = [f"T={c['tokens']} E={c['experts']} K={c['top_k']} skipped: "
                   + "; ".join(f"{n}: {v['skipped']}" for n, v in c["columns"].items() if "skipped" in v)
                   for c in cells if any("skipped" in v for v in c["columns"].values())]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise CourseError(f"the benchmark results are not in the format of this minimoe.bench ({e!r}): run "
                          "`just bench` again, then `python -m minimoe.course.site record-bench`") from None
    if skipped:
        out += code_block("\n".join(skipped))
    if plot:
        out += [f"![{t['bench_plot']}](bench.png)", ""]
    return "\n".join(out)


def bench_section(root: Path, lang: str) -> str:
    path = root / BENCH_DIR / "bench.json"
    if not path.is_file():
        return f'!!! note ""\n{indented(T[lang]["bench_none"])}\n'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise CourseError(f"{BENCH_DIR}/bench.json is not valid JSON: record the benchmark again") from None
    return bench_markdown(data, lang, (root / BENCH_DIR / "bench.png").is_file())


def fill_bench(text: str, root: Path, lang: str) -> str:
    return text.replace(BENCH_MARK, bench_section(root, lang)) if BENCH_MARK in text else text


def record_bench(root: Path, source: str = "runs/bench", echo=print) -> list[Path]:
    """Copy `just bench`'s bench.json and bench.png into docs/performance/ (committed; the site shows them)."""
    src = root / source / "bench.json"
    if not src.is_file():
        raise CourseError(f"no benchmark results in {source}/ (bench.json): run `just bench` first")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except ValueError:
        raise CourseError(f"{source}/bench.json is not valid JSON: run `just bench` again") from None
    bench_markdown(data, "en", plot=False)  # refuses results this minimoe.bench did not write
    dest = root / BENCH_DIR
    written = []
    for name in ("bench.json", "bench.png"):
        target = dest / name
        if (root / source / name).is_file():
            shutil.copy2(root / source / name, target)
            written.append(target)
            echo(f"recorded {target.relative_to(root)}")
        elif target.is_file():
            target.unlink()  # a plot from an older run would not match the table
    return written
