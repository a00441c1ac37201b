"""The import graph of our packages, read statically with ``ast``: no cycle between modules, and ``gan`` imported
only by lkdetect's training path (training/, learn/), editor, demo and the train-gan command.

Every import counts, including those inside functions: lazy imports keep ``import lkdetect`` light, but they are
dependencies all the same, and hiding wrong-way arrows behind them is what this test is for. Imports under
``if TYPE_CHECKING:`` do not count (they never run). The graph is at module granularity: an import of a package
(``from lkdetect import Detector``) is an edge to its ``__init__``, an import of a name from a module an edge to
that module. ``lkdetect.cli`` imports its subcommand modules by name (``importlib``), which is no edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lkdetect", "gan", "evaluation")
# modules of lkdetect that may import gan: the training path (and learn), the editor, the demo and train-gan
GAN_IMPORTERS = (
    "lkdetect.training",
    "lkdetect.learn",
    "lkdetect.editor",
    "lkdetect.demo",
    "lkdetect.commands.train_gan",
)


def module_names() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that module ``name`` imports anywhere in its body (lazily or not)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # a name from a module -> that module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports(name, path, modules) for name, path in modules.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_graph_sees_lazy_and_relative_imports():
    g = graph()
    assert "lkdetect.base" in g["lkdetect.detector"] and "lkdetect.models" in g["lkdetect.detector"]
    assert "lkdetect.network" in g["lkdetect.weights"]  # a function-level import
    assert "gan.train" in g["lkdetect.training.trainer"]  # lazy, inside methods
    assert "lkdetect.detector" not in g["lkdetect"]  # only under TYPE_CHECKING (and PEP 562 by name)


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_our_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_gan_imports_nothing_of_ours_and_only_the_training_path_imports_gan():
    g = graph()
    for name, deps in g.items():
        if name.startswith("gan"):
            assert not {d for d in deps if not d.startswith("gan")}, f"{name} imports {deps}"
        if name.startswith("lkdetect") and not name.startswith(GAN_IMPORTERS):
            assert not {d for d in deps if d.split(".")[0] == "gan"}, f"{name} imports gan: {sorted(deps)}"
        if name.startswith("lkdetect") and not name.startswith("lkdetect.commands"):
            assert not {d for d in deps if d.split(".")[0] == "evaluation"}, f"{name} imports evaluation"
        if name.startswith("evaluation"):  # lkdetect's public modules only, never its CLI internals
            assert not {d for d in deps if d.startswith(("lkdetect.commands", "lkdetect.training"))}, name
