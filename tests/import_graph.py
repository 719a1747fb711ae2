"""The repository's import graph as the interpreter would follow it at import time, and the layering rules.

Built with `ast` from the source files, not by importing them, so a check of "kernels never
import pyspark" cannot itself be fooled by a module that is already imported. Only imports that
run when a module is imported count (docs/architecture.md, "Rooms and what each may import"):
module level, class bodies, `try`/`if` blocks, but not function bodies (they run when called)
and not `if TYPE_CHECKING:` blocks (they never run). Importing `a.b.c` also runs `a/__init__.py`
and `a/b/__init__.py`, so reachability follows a module's parent packages too.

The rules themselves are data (`Rule`); `tests/test_layering.py` checks them on the repository
and on a synthetic package with one violation of each, so a rule that can never fail is caught.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ImportGraph:
    """Modules of the packages under `root`, with the modules and external packages each imports."""

    root: Path
    paths: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)

    def is_package(self, module: str) -> bool:
        return self.paths[module].name == "__init__.py"

    def runs_on_import(self, target: str) -> list[str]:
        """What importing `target` executes: itself and its parent packages.

        Listed innermost first, so that a chain ends at the module a file imports rather than
        at the package around it.
        """
        parts = target.split(".")
        prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        return [name for name in prefixes if name in self.paths or name == target]

    def reach(self, start: str) -> Iterator[tuple[str, list[str]]]:
        """Every module or external package that importing `start` runs, each with one chain to it.

        Breadth first, so each chain is a shortest one: the one a reader should fix first.
        """
        chains: dict[str, list[str]] = {}
        queue: list[str] = []
        for name in self.runs_on_import(start):
            chains[name] = [name] if name == start else [start, name]
            queue.append(name)
        while queue:
            current = queue.pop(0)
            yield current, chains[current]
            for target in sorted(self.edges.get(current, ())):
                for name in self.runs_on_import(target):
                    if name not in chains:
                        chains[name] = [*chains[current], name]
                        queue.append(name)


def build_graph(root: Path, packages: Iterable[str]) -> ImportGraph:
    """Parse every `.py` file of `packages` (folders under `root`) into an `ImportGraph`."""
    graph = ImportGraph(root)
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph.paths[module_name(root, path)] = path
    for module, path in graph.paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph.edges[module] = {resolve(graph, name) for name in import_time_imports(tree, module, graph)}
    return graph


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_time_imports(tree: ast.Module, module: str, graph: ImportGraph) -> Iterator[str]:
    """Absolute names imported by statements that run when the module is imported."""
    for node in import_time_nodes(tree.body):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        else:
            base = absolute_base(node, module, graph)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in graph.paths else base


def import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements of `body` outside function bodies and `if TYPE_CHECKING:` blocks."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from import_time_nodes(node.orelse)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from import_time_nodes([child])
                elif isinstance(child, ast.excepthandler | ast.match_case):
                    yield from import_time_nodes(child.body)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def absolute_base(node: ast.ImportFrom, module: str, graph: ImportGraph) -> str:
    """The package a `from X import ...` names, with relative levels resolved against `module`."""
    if not node.level:
        return node.module or ""
    package = module if module in graph.paths and graph.is_package(module) else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def resolve(graph: ImportGraph, name: str) -> str:
    """A name inside the repository stays whole; an external one becomes its top-level package."""
    return name if name in graph.paths else _repo_prefix(graph, name) or name.split(".")[0]


def _repo_prefix(graph: ImportGraph, name: str) -> str | None:
    """The longest prefix of `name` that is a module here (`from pkg.mod import attr.x`), if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in graph.paths:
            return ".".join(parts[:end])
    return None


# ------------------------------------------------------------------ rules
@dataclass(frozen=True)
class Rule:
    """Modules matching `applies_to` must not reach (transitively) any module matching `forbidden`."""

    name: str
    applies_to: Callable[[ImportGraph, str], bool]
    forbidden: Callable[[str], bool]


def under(*prefixes: str) -> Callable[[str], bool]:
    """True for a module that is one of `prefixes` or inside one of them."""
    return lambda name: any(name == p or name.startswith(f"{p}.") for p in prefixes)


def path_matches(*patterns: str) -> Callable[[ImportGraph, str], bool]:
    """True for a module whose path relative to the root matches a glob (`*` spans folders)."""

    def matches(graph: ImportGraph, module: str) -> bool:
        relative = graph.paths[module].relative_to(graph.root).as_posix()
        return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)

    return matches


def in_packages(
    packages: Iterable[str], test: Callable[[ImportGraph, str], bool]
) -> Callable[[ImportGraph, str], bool]:
    """`test`, limited to modules of `packages`."""
    inside = under(*packages)
    return lambda graph, module: inside(module) and test(graph, module)


AREAS = ("pipelines.ingest", "curation", "dedup", "pii", "training")
KERNEL_FILES = ("*/kernel.py", "*_kernel.py", "*/kernels/*.py")
# Annotators are pickled to the workers with the fused kernel that runs them.
ANNOTATOR_FILES = ("*/annotators/*.py",)
CONFIG_FILES = ("*/config.py", "*_config.py", "*/settings.py")
# The loader, the model and the trainer: their packages whole, the shard reader they read with and the
# encoders the trainer tokenizes with.
TRAINING_LOOP_FILES = (
    "training/loader/*.py",
    "training/trainer/*.py",
    "training/shards/reader.py",
    "training/tokenizer/encoders.py",
)

# The I/O layer imports only pyarrow and pydantic (and its empty parent packages), so the training loop
# may read shard sets on object storage through it without reaching the rest of `pipelines`; and
# `validation` (pydantic only) words a damaged manifest or config the way every other config error is.
TRAINING_MAY_IMPORT = frozenset(
    {
        "pipelines",
        "pipelines.framework",
        "pipelines.framework.storage",
        "pipelines.framework.storage_clients",
        "pipelines.framework.storage_cloud",
        "pipelines.framework.storage_settings",
        "pipelines.framework.storage_urls",
        "pipelines.framework.validation",
    }
)

RULES = (
    Rule("the framework imports no area", path_matches("pipelines/framework/*"), under(*AREAS, "jobs")),
    Rule("areas never import jobs", lambda graph, module: under(*AREAS)(module), under("jobs")),
    Rule("kernels import no pyspark", in_packages(AREAS, path_matches(*KERNEL_FILES)), under("pyspark")),
    Rule(
        "annotators import no pyspark", in_packages(AREAS, path_matches(*ANNOTATOR_FILES)), under("pyspark")
    ),
    Rule("configs import no pyspark", in_packages(AREAS, path_matches(*CONFIG_FILES)), under("pyspark")),
    Rule(
        "training's loader, model and trainer import neither pyspark nor pipelines",
        path_matches(*TRAINING_LOOP_FILES),
        lambda name: under("pyspark", "pipelines")(name) and name not in TRAINING_MAY_IMPORT,
    ),
    Rule(
        "an area's CLI is a leaf (only jobs mounts it)",
        lambda graph, module: under(*AREAS, "pipelines.framework")(module),
        lambda name: under(*AREAS)(name) and name.rpartition(".")[2].endswith("cli"),
    ),
)


def violations(graph: ImportGraph, rules: Iterable[Rule] = RULES) -> list[str]:
    """One line per module that breaks a rule, naming the rule and the import chain (a -> b -> pyspark)."""
    found = []
    for rule in rules:
        for module in sorted(graph.paths):
            if not rule.applies_to(graph, module):
                continue
            for reached, chain in graph.reach(module):
                if reached != module and rule.forbidden(reached):
                    found.append(f"{rule.name}: {' -> '.join(chain)}")
                    break
    return found


def cycles(graph: ImportGraph) -> list[list[str]]:
    """Import cycles among the repository's modules, each as a closed chain [a, b, ..., a].

    Direct edges only (a package's parents are already being imported when a child runs, so a
    child importing its parent is no cycle by itself): one cycle per strongly connected component.
    """
    internal = {m: {t for t in targets if t in graph.paths} for m, targets in graph.edges.items()}
    return [shortest_cycle(internal, component) for component in strongly_connected(internal)]


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Components of more than one module (Tarjan, iterative: deep graphs overflow no stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = _pop_component(stack, on_stack, node)
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component = []
    while True:
        node = stack.pop()
        on_stack.discard(node)
        component.append(node)
        if node == root:
            return component


def shortest_cycle(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest closed chain through the component's first module, within the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"component {component} holds no cycle through {start}")
