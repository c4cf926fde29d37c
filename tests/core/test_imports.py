"""Imports run one way: config <- router, experts <- capacity <- moe_block <- perf <- model <- train
<- the rest <- course.

Read from the source with ast: the package's module-level imports form no cycle, nothing outside
minimoe.course imports it, and no function hides an import of a minimoe module from that order (the
one exception: the optional Triton kernel, imported only when --experts-impl triton asks for it).
"""

import ast
from pathlib import Path

import minimoe

PACKAGE = Path(minimoe.__file__).resolve().parent
# (module, imported module): function-local imports of minimoe modules that are allowed, and why
LAZY_OK = {("minimoe.perf", "minimoe.perf.grouped_mm_triton"): "Triton is an optional dependency"}


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = ("minimoe", *f.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported minimoe module, inside a function?) for every import of a minimoe module in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    modules = _modules()
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: `..` is the package above this module's
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - child.level + 1] + ([base] if base else []))
                for alias in child.names:  # `from pkg import mod` imports a module, `from mod import f` a name
                    target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    if target.startswith("minimoe"):
                        found.append((target, in_function))
            elif isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names if a.name.startswith("minimoe"))
            visit(child, inner)

    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {t for t, lazy in _imports(name, path) if not lazy and t != name}
            for name, path in _modules().items()}


def test_the_core_never_imports_the_course():
    for name, path in _modules().items():
        if not name.startswith("minimoe.course"):
            bad = [t for t, _ in _imports(name, path) if t.startswith("minimoe.course")]
            assert not bad, f"{name} imports {bad}: the MoE package must not know about the course engine"


def test_no_function_hides_an_import_of_the_package():
    for name, path in _modules().items():
        if name.startswith("minimoe.course"):
            continue
        lazy = [t for t, inside in _imports(name, path) if inside and (name, t) not in LAZY_OK]
        assert not lazy, f"{name} imports {lazy} inside a function: import at the top, in the one-way order"


def test_the_import_graph_has_no_cycle():
    graph, state, path = _graph(), {}, []

    def walk(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
