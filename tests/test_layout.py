"""The companion's layout: modules form layers, so a chapter module is never imported from below it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "companion"


def _imports() -> dict[str, set[str]]:
    """For each companion module, the companion modules it imports (at any depth of its code)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("__init__", "__main__"):
            continue
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        graph[path.stem] = found - {path.stem}
    return graph


def test_companion_has_no_import_circle():
    graph, done, path = _imports(), set(), []

    def visit(module: str) -> None:
        assert module not in path, f"import circle: {' -> '.join([*path[path.index(module):], module])}"
        if module in done or module not in graph:
            return
        path.append(module)
        for other in sorted(graph[module]):
            visit(other)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_data_modules_sit_below_the_chapter_modules():
    graph = _imports()
    for low in ("brown", "data", "memory", "provision", "settings", "training"):
        assert not graph[low] & {"gpt", "bert", "t5", "qa", "loop", "peft_tuning", "prompting", "serving",
                              "instructions", "curves", "distributed"}, low

