"""The benchmark on the site: `just bench`'s results, recorded into docs/performance/ and shown there.

`just bench` (python -m minimoe.perf.bench) writes runs/bench/bench.json and bench.png. `record_bench`
copies them into docs/performance/, where they are committed (a run on a GPU, `--device cuda`, as
bench-gpu.json and bench-gpu.png, beside the CPU one); when the site is built, the <!-- bench -->
marker of docs/performance/index(.es).md (<!-- bench-gpu -->: the GPU run) becomes the run's
machine, the goals' verdicts (a table read from `bench.goals()`), the times and the throughput as
tables (one per token count), the plot, and, in a collapsed box, the run exactly as `just bench`
prints it (its own `table()` and `goals()`). With nothing recorded, the page says so.

`just bench-gap` (perf/gap.py: G5's gap split into the dispatch and the grouped matmuls) and `just profile`
(perf/profile.py: the demo run) are recorded the same way, as gap.json and profile.json, by `record_gap`
and `record_profile`, and shown at the <!-- bench-gap --> and <!-- demo-profile --> markers.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

from .catalog import CourseError
from .site_pages import code_block, indented

BENCH_DIR = "docs/performance"
BENCH_MARKS = {"<!-- bench -->": "bench", "<!-- bench-gpu -->": "bench-gpu"}  # marker -> the recorded files' stem
PROFILE_MARK = "<!-- demo-profile -->"  # `just profile`'s recorded run (docs/performance/profile.json)
GAP_MARK = "<!-- bench-gap -->"  # `just bench-gap`'s recorded run (docs/performance/gap.json)
# The profile's parts of the layer (perf/gap.py's PARTS) as the page's columns show them; the rest (autograd and
# "other") is left out of the table, which must fit the text column
GAP_COLUMNS = {"expert matmuls": ("expert matmuls",), "expert activations": ("expert activations",),
               "dispatch": ("sort and counts", "gather and combine")}
GAP_REST = ("autograd", "other")
DEMO_GOAL_S = 5.0  # the course's goal for `just moe-train --steps 500`, wall seconds on two cores

T = {
    "en": {
        "bench_none": "No benchmark has been recorded yet. Run `just bench` (it writes "
                      "`runs/bench/bench.json` and `bench.png`), then record it for the site with "
                      "`python -m minimoe.course.site record-bench`.",
        "bench_gpu_none": "No GPU run has been recorded yet. On a machine with a CUDA GPU, run `just bench "
                          "--device cuda` (and `--dtype bfloat16` if you like), then record it with "
                          "`python -m minimoe.course.site record-bench`: a GPU run is kept beside the CPU one.",
        "threads": "{n} threads",
        "bench_meta": "Recorded from `just bench`: torch {torch}, {where}, D = {width}, F = {hidden}, {dtype}, "
                      "{repeats} rounds a cell in alternating order, up to {max_repeats} where a goal's interval "
                      "crossed its limit ({passes} pass(es), rounds pooled), on a {machine} "
                      "machine (load average as it finished: {load}).",
        "bench_time": "Time per call, forward + backward: each cell's ratio to the dense FFN (median of the rounds), "
                      "and its time (`!` after `busiest`: other processes used more than 0.1 of a core while the "
                      "cell ran).",
        "bench_memory": "Throughput (tokens per second) and peak memory (torch's allocations, from the profiler):",
        "bench_plot": "Time per call divided by the dense FFN's, against the number of experts",
        "bench_pairs": "minimoe's time over each other column's, round by round: the median of the pairs "
                       "and its 95% confidence interval:",
        "bench_goals": "The course's speed goals, judged on this run (each goal's worst cell; met only when "
                       "the whole spread is on the right side):",
        "verdict": "verdict", "goal": "goal", "worst": "worst cell: median (95% interval)", "floor": "floor",
        "floor_note": "`floor`: the same measure with the `balanced` column (the experts alone, equal tokens, "
                      "no routing) in minimoe's place; a floor over the limit puts the goal out of reach of "
                      "per-expert matmuls on this machine.",
        "busiest": "busiest",
        "bench_skipped": "Cells a column skipped (one call would have taken too long):",
        "bench_raw": "The same run as `just bench` prints it",
        "profile_none": "No profile has been recorded yet. Run `just profile --steps 500` (it writes "
                        "`runs/profile/profile.json`), then record it with "
                        "`python -m minimoe.course.site record-profile`.",
        "profile_meta": "Recorded from `just profile {args}`: torch {torch}, {threads} threads, on a {machine} "
                        "machine with {cpus} CPUs.",
        "profile_wall": "**{verdict}**: the course's goal of {goal:g} s for `just moe-train {args}`. "
                        "{n} fresh runs of the command took {median:.2f} s wall (median; {low:.2f} to {high:.2f}), "
                        "of which the training steps took {train:.2f} s (the run's own `time:` line).",
        "met": "met", "not_met": "NOT met",
        "profile_phases": "One more run of the same command, in one process, with a timer around each phase "
                          "(Python's start and the imports timed as a fresh process):",
        "phase": "phase", "seconds": "seconds",
        "profile_step": "A training step of that run, {ms:.2f} ms, part by part (the forward pass split by "
                        "module, each module's own time):",
        "part": "part", "ms": "ms a step",
        "profile_ops": "The torch operations of {steps} more steps under torch.profiler (self CPU time, "
                       "which the profiler's own cost inflates; the backward pass's operations included): "
                       "{calls:.0f} calls a step, the {top} that take the most time:",
        "op": "operation", "share": "share", "calls": "calls a step",
        "gap_none": "No split of G5's gap has been recorded yet. Run `just bench-gap` (it writes "
                    "`runs/bench/gap.json`), then record it with `python -m minimoe.course.site record-gap`.",
        "gap_meta": "Recorded from `just bench-gap`: torch {torch}, {threads} threads, D = {width}, F = {hidden}, "
                    "{repeats} rounds a cell in alternating order, on a {machine} machine.",
        "gap_summary": "In the {n} cells G5 covers, minimoe takes {g_lo:.2f}x to {g_hi:.2f}x the floor (medians of the "
                       "pairs). The ragged layout's gap splits into the dispatch, {d_lo:.2f}x to {d_hi:.2f}x (sort, "
                       "gathers and combine, `ragged / experts`), and the grouped matmuls, {m_lo:.2f}x to {m_hi:.2f}x "
                       "(the experts on their real counts against the floor's batched matmuls on equal counts, "
                       "`experts / balanced`). The whole interval is over G5's 1.1 in {d_over} of {n} cells for the "
                       "dispatch, in {m_over} for the grouped matmuls.",
        "gap_split": "Each factor, the median of the rounds' pairs and its 95% interval (`layout`: what "
                     "`--experts-impl auto` runs there; `busiest`: the busiest expert's tokens over the mean):",
        "gap_parts": "A few calls of `ragged` and `balanced` under torch.profiler: the matmul calls in one call, with "
                     "their self CPU time each, and the profiled time shared out by the part of the layer that ran it "
                     "(self CPU time; autograd and the other operations take the rest). The profiler has its own "
                     "cost: a profiled call took {low:.2f}x to {high:.2f}x the median of the unprofiled rounds.",
        "column": "column", "matmuls": "matmuls: calls x us",
        "factors": ("G5", "dispatch", "grouped matmuls"),
        "gap_parts_title": "The profile, cell by cell: which operations run, and how many matmuls",
        "parts": {"expert matmuls": "in matmuls", "expert activations": "in activations",
                  "dispatch": "in sort, gather, combine"},
    },
    "es": {
        "bench_none": "Todavía no se ha registrado ninguna medida. Ejecuta `just bench` (escribe "
                      "`runs/bench/bench.json` y `bench.png`) y regístrala para el sitio con "
                      "`python -m minimoe.course.site record-bench`.",
        "bench_gpu_none": "Todavía no se ha registrado ninguna medida en GPU. En una máquina con una GPU CUDA, "
                          "ejecuta `just bench --device cuda` (y `--dtype bfloat16` si quieres) y regístrala con "
                          "`python -m minimoe.course.site record-bench`: una medida en GPU se guarda junto a la de "
                          "CPU.",
        "threads": "{n} hilos",
        "bench_meta": "Registrado con `just bench`: torch {torch}, {where}, D = {width}, F = {hidden}, {dtype}, "
                      "{repeats} rondas por celda en orden alterno, hasta {max_repeats} donde el intervalo de un "
                      "objetivo cruzaba su límite ({passes} pasada(s), rondas sumadas), "
                      "en una máquina {machine} (carga media al terminar: {load}).",
        "bench_time": "Tiempo por llamada, forward + backward: el cociente de cada celda respecto a la FFN densa "
                      "(mediana de las rondas) y su tiempo (`!` tras `busiest`: otros procesos usaron más de 0,1 "
                      "núcleos mientras corría la celda).",
        "bench_memory": "Rendimiento (tokens por segundo) y pico de memoria (reservas de torch, según el profiler):",
        "bench_plot": "Tiempo por llamada dividido por el de la FFN densa, frente al número de expertos",
        "bench_pairs": "El tiempo de minimoe dividido por el de cada otra columna, ronda a ronda: la "
                       "mediana de los pares y su intervalo de confianza del 95 %:",
        "bench_goals": "Los objetivos de velocidad del curso, juzgados sobre esta ejecución (la peor celda "
                       "de cada uno; cumplido solo si toda la dispersión cae del lado correcto):",
        "verdict": "veredicto", "goal": "objetivo", "worst": "peor celda: mediana (intervalo del 95 %)",
        "floor": "suelo",
        "floor_note": "`suelo` (floor): la misma medida con la columna `balanced` (los expertos solos, los mismos "
                      "tokens para todos, sin enrutado) en lugar de minimoe; un suelo por encima del límite deja "
                      "el objetivo fuera del alcance de cualquier despacho con una matmul por experto en esta "
                      "máquina.",
        "busiest": "más cargado",
        "bench_skipped": "Celdas que una columna se saltó (una sola llamada habría tardado demasiado):",
        "bench_raw": "La misma ejecución tal como la imprime `just bench`",
        "profile_none": "Todavía no se ha registrado ningún perfil. Ejecuta `just profile --steps 500` (escribe "
                        "`runs/profile/profile.json`) y regístralo con "
                        "`python -m minimoe.course.site record-profile`.",
        "profile_meta": "Registrado con `just profile {args}`: torch {torch}, {threads} hilos, en una máquina "
                        "{machine} con {cpus} CPU.",
        "profile_wall": "**{verdict}**: el objetivo del curso de {goal:g} s para `just moe-train {args}`. "
                        "{n} ejecuciones nuevas de la orden tardaron {median:.2f} s de reloj (mediana; de {low:.2f} "
                        "a {high:.2f}), de los que los pasos de entrenamiento fueron {train:.2f} s (la línea "
                        "`time:` de la propia ejecución).",
        "met": "cumplido", "not_met": "NO cumplido",
        "profile_phases": "Una ejecución más de la misma orden, en un solo proceso, con un cronómetro en cada fase "
                          "(el arranque de Python y las importaciones, medidos como un proceso nuevo aparte):",
        "phase": "fase", "seconds": "segundos",
        "profile_step": "Un paso de entrenamiento de esa ejecución, {ms:.2f} ms, parte por parte (el forward "
                        "dividido por módulo, el tiempo propio de cada módulo):",
        "part": "parte", "ms": "ms por paso",
        "profile_ops": "Las operaciones de torch de {steps} pasos más bajo torch.profiler (tiempo de CPU propio, "
                       "que el coste del propio profiler infla; incluidas las del backward): {calls:.0f} "
                       "llamadas por paso; las {top} que más tiempo ocupan:",
        "op": "operación", "share": "parte", "calls": "llamadas por paso",
        "gap_none": "Todavía no se ha registrado el desglose de la distancia de G5. Ejecuta `just bench-gap` "
                    "(escribe `runs/bench/gap.json`) y regístralo con `python -m minimoe.course.site record-gap`.",
        "gap_meta": "Registrado con `just bench-gap`: torch {torch}, {threads} hilos, D = {width}, F = {hidden}, "
                    "{repeats} rondas por celda en orden alterno, en una máquina {machine}.",
        "gap_summary": "En las {n} celdas que cubre G5, minimoe tarda de {g_lo:.2f}x a {g_hi:.2f}x el suelo (medianas "
                       "de los pares). La distancia del formato ragged se divide en el despacho, de {d_lo:.2f}x a "
                       "{d_hi:.2f}x (ordenar, reunir y combinar, `ragged / experts`), y los matmuls agrupados, de "
                       "{m_lo:.2f}x a {m_hi:.2f}x (los expertos con sus cuentas reales frente a los matmuls por lotes "
                       "del suelo con cuentas iguales, `experts / balanced`). El intervalo entero pasa del 1.1 de G5 "
                       "en {d_over} de {n} celdas para el despacho y en {m_over} para los matmuls agrupados.",
        "gap_split": "Cada factor, la mediana de los pares de las rondas y su intervalo del 95 % (`layout`: lo que "
                     "ejecuta `--experts-impl auto` ahí; `busiest`: los tokens del experto más cargado sobre la "
                     "media):",
        "gap_parts": "Unas pocas llamadas de `ragged` y `balanced` bajo torch.profiler: las llamadas a matmul de una "
                     "llamada, con su tiempo de CPU propio cada una, y el tiempo perfilado repartido según la parte "
                     "de la capa que lo ejecutó (tiempo de CPU propio; autograd y las demás operaciones se llevan el "
                     "resto). El profiler tiene su propio coste: una llamada perfilada tardó de {low:.2f}x a "
                     "{high:.2f}x la mediana de las rondas sin profiler.",
        "column": "columna", "matmuls": "matmuls: llamadas x us",
        "factors": ("G5", "despacho", "matmuls agrupados"),
        "gap_parts_title": "El perfil, celda a celda: qué operaciones se ejecutan y cuántos matmuls",
        "parts": {"expert matmuls": "en matmuls", "expert activations": "en activaciones",
                  "dispatch": "en ordenar, reunir, combinar"},
        "names": {  # the profile's phases and parts (perf/profile.py), as the Spanish page names them
            "start Python, import torch and minimoe": "arrancar Python, importar torch y minimoe", "data": "datos",
            "model and optimizer": "modelo y optimizador", "training steps": "pasos de entrenamiento",
            "evaluation": "evaluación", "dense baseline": "línea base densa",
            "outputs (telemetry.json, load.png)": "salidas (telemetry.json, load.png)", "batch": "lote",
            "forward": "forward", "loss": "pérdida", "zero_grad": "zero_grad", "backward": "backward",
            "optimizer": "optimizador", "telemetry and step lines": "telemetría y líneas de paso",
            "embeddings, final norm, head": "embeddings, norma final, cabeza",
            "norms, residual adds": "normas, sumas residuales", "attention": "atención", "router": "router",
            "MoE dispatch (sort, gather, combine)": "despacho MoE (ordenar, reunir, combinar)",
            "experts (grouped matmuls)": "expertos (matmuls agrupadas)", "dense FFN": "FFN densa",
            "shared experts": "expertos compartidos"},
    },
}


def goal_rows(text: str) -> list[tuple[str, str, str, str]]:
    """(goal, worst cell, floor, verdict) of each line of `bench.goals()`'s table (its columns are
    separated by two spaces or more); [] if the text is not that table."""
    rows = []
    for line in text.splitlines()[1:]:
        if not line.startswith("G"):
            break
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != 4:
            return []
        rows.append(tuple(cells))
    return rows


def _cell(c: dict, what: str) -> str:
    """One column of one cell, for a Markdown table: the ratio over the time (or throughput over memory)."""
    if "skipped" in c:
        return "—"
    if what == "time":
        ratio = f"{c['ratio']:.2f}×" if c.get("ratio") else ""
        return f"{ratio}<br><small>{c['ms']:.1f} ms</small>" if ratio else f"{c['ms']:.1f} ms"
    mem = f"<br><small>{c['peak_mb']:.0f} MB</small>" if c.get("peak_mb") is not None else ""
    return f"{c['tokens_per_s'] / 1e3:.0f}k/s{mem}"


def markdown_tables(cells: list[dict], columns: list[str], what: str, t: dict) -> list[str]:
    """The benchmark as Markdown tables, one per token count T: a row per (E, K), a column per implementation."""
    out = []
    for T in dict.fromkeys(c["tokens"] for c in cells):
        out += [f"**T = {T}**", "", "| E, K | " + " | ".join(n for n in columns) + f" | {t['busiest']} |",
                "|---:|" + "---:|" * len(columns) + "---:|"]
        for c in (c for c in cells if c["tokens"] == T):
            busy = c.get("busiest_over_mean")
            flag = " !" if c["others_cores"] > 0.1 else ""
            out.append(f"| {c['experts']}, {c['top_k']} | " + " | ".join(_cell(c["columns"][n], what) for n in columns)
                       + f" | {f'{busy:.1f}×' if busy else '—'}{flag} |")
        out.append("")
    return out


def pairs_markdown(cells: list[dict], columns: list[str]) -> list[str]:
    """minimoe's time over each other column's as Markdown tables (one per T): the median of the rounds'
    pairs, and its 95% interval below it."""
    from ..perf.bench_report import PAIRED, pair_ratio

    others = [n for n in PAIRED if n in columns]
    out = []
    for T in dict.fromkeys(c["tokens"] for c in cells):
        out += [f"**T = {T}**", "", "| E, K | " + " | ".join(f"/ {n}" for n in others) + " |",
                "|---:|" + "---:|" * len(others)]
        for c in (c for c in cells if c["tokens"] == T):
            mine, row = c["columns"].get("minimoe", {}), []
            for n in others:
                other = c["columns"].get(n, {})
                if "ms" in mine and "ms" in other:
                    med, lo, hi = pair_ratio(mine, other)
                    row.append(f"{med:.2f}×<br><small>{lo:.2f}–{hi:.2f}</small>")
                else:
                    row.append("—")
            out.append(f"| {c['experts']}, {c['top_k']} | " + " | ".join(row) + " |")
        out.append("")
    return out


def bench_markdown(data: dict, lang: str, plot: bool, png: str = "bench.png") -> str:
    """The recorded benchmark as the page shows it: the goals' verdicts first, then the times and the
    throughput as tables, the plot, and `just bench`'s own printout in a collapsed box."""
    from ..perf.bench_report import goals, pairs_table, table

    t = T[lang]
    try:
        meta, cells = data["meta"], data["cells"]
        columns = list(cells[0]["columns"])
        load = meta.get("load_average")
        judged = goals(cells)
        raw = [table(cells, columns, "time"), table(cells, columns, "memory"), pairs_table(cells, columns), judged]
        gpu = meta.get("device", "cpu") != "cpu"
        where = meta["device"] if gpu else t["threads"].format(n=meta.get("threads", "?"))
        out = [t["bench_meta"].format(load=" ".join(f"{x:.2f}" for x in load) if load else "?", **{
            k: meta.get(k, "?") for k in ("torch", "width", "hidden", "repeats", "machine")},
            where=where, dtype=meta.get("dtype", "float32"), passes=meta.get("passes", 1),
            max_repeats=meta.get("max_repeats", meta.get("repeats", "?"))), ""]
        rows = goal_rows(judged)
        out += [t["bench_goals"], ""]
        if rows:
            out += [f"| {t['verdict']} | {t['goal']} | {t['worst']} | {t['floor']} |", "|---|---|---|---:|"]
            out += [f"| **{v}** | {g} | {w} | {f} |" for g, w, f, v in rows]
            out += ["", t["floor_note"], ""]
        else:
            out += code_block(judged)
        out += [t["bench_time"], "", '<div class="minimoe-bench" markdown>', ""]
        out += markdown_tables(cells, columns, "time", t)
        out += ["</div>", "", t["bench_memory"], "", '<div class="minimoe-bench" markdown>', ""]
        out += markdown_tables(cells, columns, "memory", t) + ["</div>", ""]
        out += [t["bench_pairs"], "", '<div class="minimoe-bench" markdown>', ""]
        out += pairs_markdown(cells, columns) + ["</div>", ""]
        skipped = [f"T={c['tokens']} E={c['experts']} K={c['top_k']} skipped: "
                   + "; ".join(f"{n}: {v['skipped']}" for n, v in c["columns"].items() if "skipped" in v)
                   for c in cells if any("skipped" in v for v in c["columns"].values())]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise CourseError(f"the benchmark results are not in the format of this minimoe.perf.bench ({e!r}): run "
                          "`just bench` again, then `python -m minimoe.course.site record-bench`") from None
    if skipped:
        out += [t["bench_skipped"], ""] + [f"- {s}" for s in skipped] + [""]
    if plot:
        out += [f"![{t['bench_plot']}]({png})", ""]
    box = [line for block in raw for line in ["```{ .text .no-copy }", block, "```", ""]]
    out += [f'??? note "{t["bench_raw"]}"', indented("\n".join(box)), ""]
    return "\n".join(out)


def bench_section(root: Path, lang: str, stem: str = "bench") -> str:
    """The recorded run `stem`.json (bench: the CPU's; bench-gpu: a GPU's) as the page shows it."""
    path = root / BENCH_DIR / f"{stem}.json"
    if not path.is_file():
        return f'!!! note ""\n{indented(T[lang]["bench_none" if stem == "bench" else "bench_gpu_none"])}\n'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise CourseError(f"{BENCH_DIR}/{stem}.json is not valid JSON: record the benchmark again") from None
    return bench_markdown(data, lang, (root / BENCH_DIR / f"{stem}.png").is_file(), f"{stem}.png")


def profile_markdown(data: dict, lang: str) -> str:
    """`just profile`'s recorded run as the page shows it: the goal's verdict on the fresh runs' wall time,
    then the phases, a step's parts and the torch operations as tables."""
    from ..perf.profile import PHASES, STEP_PARTS, TOP_OPS

    t = T[lang]
    try:
        argv = data["argv"]
        args = " ".join(a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out"))
        walls = sorted(r["wall_s"] for r in data["wall"])
        trains = sorted(r["train_s"] for r in data["wall"] if r["train_s"] is not None)
        p, meta = data["phases"], data["meta"]
        out = [t["profile_meta"].format(args=args, **meta), ""]
        if walls:
            median = statistics.median(walls)
            verdict = t["met"] if median <= DEMO_GOAL_S else t["not_met"]
            out += [t["profile_wall"].format(verdict=verdict, goal=DEMO_GOAL_S, args=args, n=len(walls), median=median,
                                             low=walls[0], high=walls[-1],
                                             train=statistics.median(trains) if trains else float("nan")), ""]
        out += [t["profile_phases"], "", f"| {t['phase']} | {t['seconds']} |", "|---|---:|"]
        name_of = t.get("names", {})
        out += [f"| {name_of.get(name, name)} | {p['phases_s'][name]:.3f} |" for name in PHASES]
        out += ["", t["profile_step"].format(ms=p["step_ms"]), "", f"| {t['part']} | {t['ms']} |", "|---|---:|"]
        for name in STEP_PARTS:
            out.append(f"| {name_of.get(name, name)} | {p['step_parts_ms'][name]:.3f} |")
            if name == "forward":
                out += [f"| &nbsp;&nbsp;&nbsp;&nbsp;{name_of.get(part, part)} | {ms:.3f} |"
                        for part, ms in p["forward_parts_ms"].items()]
        if data["ops"]:
            calls = sum(o["calls_per_step"] for o in data["ops"])
            out += ["", t["profile_ops"].format(steps=data["op_steps"], calls=calls, top=TOP_OPS), "",
                    f"| {t['op']} | {t['ms']} | {t['share']} | {t['calls']} |", "|---|---:|---:|---:|"]
            out += [f"| `{o['op']}` | {o['ms_per_step']:.3f} | {100 * o['share']:.1f}% | {o['calls_per_step']:.1f} |"
                    for o in data["ops"][:TOP_OPS]]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise CourseError(f"the profile is not in the format of this minimoe.perf.profile ({e!r}): run "
                          "`just profile --steps 500` again, then record it: `python -m minimoe.course.site "
                          "record-profile`") from None
    return "\n".join(out + [""])


def gap_markdown(data: dict, lang: str) -> str:
    """`just bench-gap`'s recorded run as the page shows it: the summary of G5's two factors, the split cell
    by cell, and the profile that names the operations behind them."""
    from ..perf.gap import FACTORS, PROFILED

    t = T[lang]
    try:
        cells, meta, summ = data["cells"], data["meta"], data["summary"]

        def spread(r):
            return f"{r[0]:.2f}x ({r[1]:.2f}-{r[2]:.2f})"

        g, d, m = (summ[f"{a}/{b}"] for a, b in FACTORS)
        out = [t["gap_meta"].format(**meta), "",
               t["gap_summary"].format(n=len(cells), g_lo=g["low"], g_hi=g["high"], d_lo=d["low"], d_hi=d["high"],
                                       m_lo=m["low"], m_hi=m["high"], d_over=d["over_1.1"], m_over=m["over_1.1"]),
               "", t["gap_split"], "",
               "| T, E, K | layout | busiest | " + " | ".join(f"{t['factors'][i]}: `{a} / {b}`"
                                                           for i, (a, b) in enumerate(FACTORS)) + " |",
               "|---|---|---:|" + "---:|" * len(FACTORS)]
        for c in cells:
            out.append(f"| {c['tokens']}, {c['experts']}, {c['top_k']} | {c['layout']} | "
                       f"{c['busiest_over_mean']:.2f} | "
                       + " | ".join(spread(c["ratios"][f"{a}/{b}"]) for a, b in FACTORS) + " |")
        cost = [c["profiles"][col]["profiled_ms"] / c["columns"][col]["ms"] for c in cells for col in PROFILED]
        out += ["", f'??? note "{t["gap_parts_title"]}"', "",
                indented(t["gap_parts"].format(low=min(cost), high=max(cost))), "",
                f"    | T, E, K | {t['column']} | {t['matmuls']} | " + " | ".join(t["parts"][n] for n in GAP_COLUMNS)
                + " |", "    |---|---|---|" + "---:|" * len(GAP_COLUMNS)]
        for c in cells:
            for col in PROFILED:
                p = c["profiles"][col]
                total = sum(p["parts_ms"].values()) or 1.0
                mm = ", ".join(f"`{op.split('::')[1]}` {v['calls']:.0f} x {v['us_each']:.0f}"
                               for op, v in p["matmul"].items())
                out.append(f"    | {c['tokens']}, {c['experts']}, {c['top_k']} | `{col}` | {mm} | "
                           + " | ".join(f"{100 * sum(p['parts_ms'][n] for n in parts) / total:.0f}%"
                                        for parts in GAP_COLUMNS.values()) + " |")
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise CourseError(f"the split is not in the format of this minimoe.perf.gap ({e!r}): run `just bench-gap` "
                          "again, then record it: `python -m minimoe.course.site record-gap`") from None
    return "\n".join(out + [""])


def _recorded_section(root: Path, lang: str, name: str, none: str, render) -> str:
    """docs/performance/`name` rendered for the page, or a note saying how to record it."""
    path = root / BENCH_DIR / name
    if not path.is_file():
        return f'!!! note ""\n{indented(T[lang][none])}\n'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise CourseError(f"{BENCH_DIR}/{name} is not valid JSON: record it again") from None
    return render(data, lang)


def fill_bench(text: str, root: Path, lang: str) -> str:
    for mark, stem in BENCH_MARKS.items():
        if mark in text:
            text = text.replace(mark, bench_section(root, lang, stem))
    if PROFILE_MARK in text:
        text = text.replace(PROFILE_MARK,
                            _recorded_section(root, lang, "profile.json", "profile_none", profile_markdown))
    if GAP_MARK in text:
        text = text.replace(GAP_MARK, _recorded_section(root, lang, "gap.json", "gap_none", gap_markdown))
    return text


def record_profile(root: Path, source: str = "runs/profile", echo=print) -> Path:
    """Copy `just profile`'s profile.json into docs/performance/ (committed; the performance page shows it)."""
    return _record_json(root, source, "profile.json", "just profile --steps 500", profile_markdown, echo)


def record_gap(root: Path, source: str = "runs/bench", echo=print) -> Path:
    """Copy `just bench-gap`'s gap.json into docs/performance/ (committed; the performance page shows it)."""
    return _record_json(root, source, "gap.json", "just bench-gap", gap_markdown, echo)


def _record_json(root: Path, source: str, name: str, command: str, render, echo) -> Path:
    src = root / source / name
    if not src.is_file():
        raise CourseError(f"no {name} in {source}/: run `{command}` first")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except ValueError:
        raise CourseError(f"{source}/{name} is not valid JSON: run `{command}` again") from None
    render(data, "en")  # refuses a file this minimoe did not write
    target = root / BENCH_DIR / name
    shutil.copy2(src, target)
    echo(f"recorded {target.relative_to(root)}")
    return target


def record_bench(root: Path, source: str = "runs/bench", echo=print) -> list[Path]:
    """Copy `just bench`'s bench.json and bench.png into docs/performance/ (committed; the site shows them); a
    run on a GPU becomes bench-gpu.json and bench-gpu.png there, beside the CPU's."""
    src = root / source / "bench.json"
    if not src.is_file():
        raise CourseError(f"no benchmark results in {source}/ (bench.json): run `just bench` first")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except ValueError:
        raise CourseError(f"{source}/bench.json is not valid JSON: run `just bench` again") from None
    bench_markdown(data, "en", plot=False)  # refuses results this minimoe.perf.bench did not write
    dest = root / BENCH_DIR
    stem = "bench" if data["meta"].get("device", "cpu") == "cpu" else "bench-gpu"
    written = []
    for name in ("bench.json", "bench.png"):
        target = dest / name.replace("bench", stem)
        if (root / source / name).is_file():
            shutil.copy2(root / source / name, target)
            written.append(target)
            echo(f"recorded {target.relative_to(root)}")
        elif target.is_file():
            target.unlink()  # a plot from an older run would not match the table
    return written
