#!/usr/bin/env python3
"""Each domain crate reads top-down: no two of its modules import each other,
directly or through others.

A module's imports are the `crate::name` and `super::name` paths in its file
(the top-level module they name, for files at the top of `src/`; the sibling,
for files in a folder). `#[cfg(test)]` blocks are left out: a test may reach
anywhere. Prints each cycle found and exits 1 if there is one.

Usage: scripts/module_cycles.py CRATE_DIR...
"""

import re
import sys
from pathlib import Path


def strip_tests(text: str) -> str:
    """The text before the first `#[cfg(test)]` item (tests come last here)."""
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def modules(src: Path) -> dict[str, set[str]]:
    """For each module (folder modules as `folder/file`), the modules it uses."""
    graph: dict[str, set[str]] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.name in ("lib.rs", "main.rs"):
            continue
        folder = rel.parent.as_posix()
        name = rel.stem if folder == "." else f"{folder}/{rel.stem}"
        if rel.stem == "mod":
            name = folder
        text = strip_comments(strip_tests(path.read_text()))
        deps: set[str] = set()
        for target in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text):
            deps.add(target)
        if folder != ".":
            for target in re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", text):
                sibling = f"{folder}/{target}"
                if (src / folder / f"{target}.rs").exists():
                    deps.add(sibling)
                elif rel.stem != "mod":
                    deps.add(folder)
        # a folder module's files count as the folder when seen from outside
        graph[name] = {d for d in deps if d != name}
    known = set(graph)
    for name, deps in graph.items():
        graph[name] = {d for d in deps if d in known and not name.startswith(d + "/") and not d.startswith(name + "/")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    failed = False
    for crate in sys.argv[1:]:
        src = Path(crate) / "src"
        if not src.is_dir():
            continue
        for cycle in cycles(modules(src)):
            print(f"modules: {crate} has modules that import each other: {', '.join(cycle)}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
