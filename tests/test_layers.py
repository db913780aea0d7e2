"""The layout's rules, checked on the code's own imports (module level and inside functions):
no import cycle among product modules, nothing in the product imports the bench app, the
installed apps import nothing of the demo project, and every Redis key is spelled in
recs/redis_keys.py only."""

import ast
import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# The installed apps (what the wheel ships) and the demo project around them.
APPS = ("aisle", "merch", "recs")
PRODUCT = (*APPS, "config", "storefront")


def module_files(roots=(*PRODUCT, "bench")) -> dict[str, Path]:
    files = {}
    for root in roots:
        for path in (BASE_DIR / root).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(BASE_DIR).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    return files


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (a package import counts as its __init__)."""

    def known(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    targets.add(known(f"{base}.{alias.name}") or known(base))
        graph[module] = {t for t in targets if t and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_product_modules():
    files = module_files(PRODUCT)
    assert cycles(import_graph(files)) == []


def test_nothing_in_the_product_imports_the_bench_app():
    graph = import_graph(module_files())
    offenders = {m: sorted(t for t in targets if t.split(".")[0] == "bench")
                 for m, targets in graph.items() if m.split(".")[0] in PRODUCT}  # fmt: skip
    assert {m: t for m, t in offenders.items() if t} == {}


def test_the_installed_apps_import_nothing_of_the_demo_project():
    """A shop installs aisle, merch and recs into its own project: they must not need ours."""
    graph = import_graph(module_files())
    demo = ("bench", "config", "storefront")
    offenders = {
        module: sorted(t for t in targets if t.split(".")[0] in demo)
        for module, targets in graph.items()
        if module.split(".")[0] in APPS
    }
    assert {m: t for m, t in offenders.items() if t} == {}


# A string that starts like a key of the engine's layout (see recs/redis_keys.py).
KEY_LITERAL = re.compile(r"""["'](c|f|ev|m|avail|cat|cfg|served|heal|rescore|health|throttle):""")


def test_every_redis_key_is_spelled_in_the_key_registry_only():
    registry = BASE_DIR / "recs" / "redis_keys.py"
    offenders = []
    for path in module_files().values():
        if path == registry:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if KEY_LITERAL.search(line):
                offenders.append(f"{path.relative_to(BASE_DIR)}:{number}: {line.strip()}")
    assert offenders == []
