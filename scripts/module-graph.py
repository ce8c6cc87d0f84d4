#!/usr/bin/env python3
"""Module graph of every crate in the workspace, and a check that it has no cycle.

    scripts/module-graph.py            print each crate's graph (Mermaid) and fail on a cycle
    scripts/module-graph.py --check    only the check (what `make test` runs)

A module is a top-level item of a crate's `src/` (a file `src/x.rs` or a directory `src/x/`); an edge a -> b
means code in a names `crate::b` (a `use` or a path). Tests (`#[cfg(test)]` modules, `*_tests.rs`) are left
out: a test may reach anywhere. Cycles make two modules one unit in all but name — neither can be read,
tested or moved without the other — so the check fails on any, naming the modules in it.

Hand-written because the crates that draw module graphs (cargo-modules) need a nightly-pinned rust-analyzer
that this toolchain does not ship; a `use` scan is enough for top-level modules.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATE_PATH = re.compile(r"\bcrate::(?:\{([^}]*)\}|([a-z_][a-z0-9_]*))")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+\w+\s*\{", re.S)


def crates():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in ("target", ".git", "node_modules")]
        if "Cargo.toml" in filenames and os.path.isdir(os.path.join(dirpath, "src")):
            yield os.path.relpath(dirpath, ROOT), os.path.join(dirpath, "src")


def strip_tests(text):
    """Drop `#[cfg(test)] mod x { ... }` blocks (brace-matched) and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in TEST_MOD.finditer(text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def graph(src):
    modules = {}
    for dirpath, _, filenames in os.walk(src):
        for f in filenames:
            if not f.endswith(".rs") or f.endswith("_tests.rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            top = rel.split(os.sep)[0]
            top = top[:-3] if top.endswith(".rs") else top
            if top in ("lib", "main"):
                continue
            with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                text = strip_tests(fh.read())
            deps = modules.setdefault(top, set())
            for m in CRATE_PATH.finditer(text):
                names = [m.group(2)] if m.group(2) else [n.strip().split("::")[0] for n in m.group(1).split(",")]
                deps.update(n for n in names if n and n != top and n != "self")
    known = set(modules)
    return {m: sorted(d & known) for m, d in sorted(modules.items())}


def cycles(g):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def main():
    check_only = "--check" in sys.argv[1:]
    failed = False
    for name, src in sorted(crates()):
        g = graph(src)
        found = cycles(g)
        if not check_only:
            print(f"### {name}\n\n```mermaid\ngraph LR")
            for m, deps in g.items():
                for d in deps:
                    print(f"  {m} --> {d}")
                if not deps:
                    print(f"  {m}")
            print("```\n")
        for c in found:
            failed = True
            print(f"module-graph: {name}: modules depend on each other in a cycle: {', '.join(c)}", file=sys.stderr)
    if failed:
        sys.exit(1)
    if check_only:
        print("module-graph: no module cycle in any crate")


if __name__ == "__main__":
    main()
