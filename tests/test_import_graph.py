"""The package's import graph has no cycle and follows the layer order of pipeline/__init__.

The graph is read from the source with `ast` (nothing is imported), with every import
statement wherever it sits (module level, inside functions, under TYPE_CHECKING) and every
string literal that names a package module exactly (registries such as
`"pipeline.tts.espeak:EspeakBackend"` or the CLI's job table, loaded with import_module).
`python tests/test_import_graph.py` prints the graph summary and the layers.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pipeline

ROOT = Path(pipeline.__file__).resolve().parent
PACKAGE = "pipeline"

# Layer name -> module patterns (fnmatch over dotted names), lowest first; the docstring of
# pipeline/__init__.py lists the same layers. A module may import its own layer or a lower
# one. A module no pattern matches (new in another branch) is checked for cycles only.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("pipeline", "pipeline.paths", "pipeline.schema",
              "pipeline.textnorm", "pipeline.budget", "pipeline.rows")),
    ("storage", ("pipeline.storage", "pipeline.sink", "pipeline.shard_verify",
                 "pipeline.claim_store", "pipeline.run_lock", "pipeline.dataset")),
    ("steps", ("pipeline.scenarios", "pipeline.phenomena_quotas", "pipeline.writers",
               "pipeline.writers.*",
               "pipeline.prompts", "pipeline.script_check", "pipeline.tts", "pipeline.tts.*",
               "pipeline.corpus", "pipeline.timing", "pipeline.timing_*", "pipeline.timeline",
               "pipeline.timeline_*", "pipeline.segments",
               "pipeline.render", "pipeline.augment", "pipeline.augment_*", "pipeline.labels",
               "pipeline.labels.*")),
    ("config", ("pipeline.config", "pipeline.derive")),
    ("stages", ("pipeline.stages", "pipeline.shard_sink")),
    ("driver", ("pipeline.run", "pipeline.stream")),
    ("jobs", ("pipeline.jobs_common", "pipeline.jobs", "pipeline.card", "pipeline.card_*",
              "pipeline.publish",
              "pipeline.exports", "pipeline.exports.*", "pipeline.evalset", "pipeline.score",
              "pipeline.dpo", "pipeline.asr_mix", "pipeline.fit_timing",
              "pipeline.duplex_clips", "pipeline.vad", "pipeline.viewer", "pipeline.viewer.*",
              "pipeline.verify_job")),
    ("tools", ("pipeline.cli", "pipeline.__main__", "pipeline.bench", "pipeline.bench_probe",
               "pipeline.devserver")),
)
MODULE_NAME = re.compile(r"^pipeline(\.\w+)*(:\w+)?$")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _named(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names an AST node imports or names (may be attributes, not modules)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            here = here[: len(here) - (node.level - 1)]
            base = ".".join(here + ([base] if base else []))
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
          and MODULE_NAME.match(node.value)):
        yield node.value.split(":")[0]


@cache
def package_graph() -> dict[str, set[str]]:
    """The import graph of the installed package, built once per test session."""
    return import_graph(modules())


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports. `from a import b` counts as an import of
    a.b when that is a module, else of a (b is a name defined there)."""
    graph: dict[str, set[str]] = {}
    for module, path in found.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = list(_named(node, module, path.name == "__init__.py"))
            if isinstance(node, ast.ImportFrom) and len(names) > 1:
                base, members = names[0], names[1:]
                names = [m for m in members if m in found] or [base]
                if any(m not in found for m in members):
                    names.append(base)
            for name in names:
                while name and name not in found:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step):] + [step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
    return None


def layer_of(module: str) -> int | None:
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return rank
    return None


def test_find_cycle_reports_the_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "pipeline"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .leaf import VALUE\n")
    (package / "sub" / "leaf.py").write_text("VALUE = 1\n")
    (package / "top.py").write_text(
        "def late():\n    from pipeline.sub import leaf\n    from pipeline import sub\n"
        "REGISTRY = {'x': 'pipeline.sub.leaf:VALUE'}\n")
    graph = import_graph(modules(package))
    assert graph["pipeline.sub"] == {"pipeline.sub.leaf"}
    assert graph["pipeline.top"] == {"pipeline.sub.leaf", "pipeline.sub"}
    assert graph["pipeline.sub.leaf"] == set()


def test_no_import_cycles() -> None:
    graph = package_graph()
    assert len(graph) > 50, "the package's modules were not found"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_follow_the_layer_order() -> None:
    graph = package_graph()
    wrong = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
             f"({LAYERS[layer_of(target)][0]})"
             for module, targets in sorted(graph.items()) for target in sorted(targets)
             if layer_of(module) is not None and layer_of(target) is not None
             and layer_of(target) > layer_of(module)]
    assert not wrong, "imports against the order in pipeline/__init__.py:\n" + "\n".join(wrong)


def test_layers_are_documented_in_the_package_docstring() -> None:
    doc = pipeline.__doc__ or ""
    listed = re.findall(r"^\d+\. (\w+)", doc, flags=re.M)
    assert listed == [name for name, _ in LAYERS]


def summary() -> str:
    graph = package_graph()
    lines = [f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, "
             f"cycle: {find_cycle(graph)}"]
    for rank, (name, _) in enumerate(LAYERS):
        members = sorted(m.removeprefix("pipeline.") for m in graph if layer_of(m) == rank)
        lines.append(f"{rank + 1}. {name} ({len(members)}): {' '.join(members)}")
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    if unplaced:
        lines.append(f"no layer: {' '.join(unplaced)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(print(summary()))
