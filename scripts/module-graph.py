#!/usr/bin/env python3
"""Module graph of every crate in the workspace, and a check that it has no cycle.

    scripts/module-graph.py            print each crate's top-level module graph (Mermaid); exit 1 on a cycle
    scripts/module-graph.py --write    redraw the graph section of docs/architecture.md
    scripts/module-graph.py --check    exit 1 on a cycle or when that section is not current (`make test`)

A module is a file (`src/a.rs`, `src/a/mod.rs`, `src/a/b.rs`). An edge comes from a path in the code of one
module that names another: `crate::…`, `super::…`, `self::…` (in `use` lines and in expressions). Edges between
a module and its own ancestor or descendant are containment, not dependency (a child using its parent's
types is how Rust modules are built), so every other edge is drawn between the two siblings under the
modules' deepest common parent: `crate::a::x` → `crate::b::y` is the edge a → b among the crate's top-level
modules, `asl::exec` → `asl::definition` the edge exec → definition inside `asl`. Each parent's children must
form no cycle: two modules in a cycle are one unit in all but name — neither can be read, tested or moved
without the other. Tests (`#[cfg(test)]` modules, `*_tests.rs`) are left out: a test may reach anywhere.

Hand-written because the crates that draw module graphs (cargo-modules) need a nightly-pinned rust-analyzer
that this toolchain does not ship; a path scan is enough for file modules.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "architecture.md")
BEGIN = "<!-- module-graph:begin (scripts/module-graph.py --write) -->"
END = "<!-- module-graph:end -->"
START = re.compile(r"\b(crate|super|self)::")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([a-z]+\))?\s+)?mod\s+\w+\s*\{", re.S)

# Cycles known and owned by work in flight; each is reported on every run and must be removed, not added to.
PENDING = {}


def crates():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = sorted(d for d in dirnames if d not in ("target", ".git", "node_modules"))
        if "Cargo.toml" in filenames and os.path.isdir(os.path.join(dirpath, "src")):
            yield os.path.relpath(dirpath, ROOT), os.path.join(dirpath, "src")


def strip(text):
    """Drop comments, string literals' contents and `#[cfg(test)] mod x { ... }` blocks (brace-matched)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r(#+)".*?"\1', '""', text, flags=re.S)
    text = re.sub(r"b?'(?:\\.|[^'\\])'", "' '", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
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


def use_tree(text, i):
    """Expand the path (or `{…}` group, nested) starting at text[i] into lists of segments."""
    m = re.match(r"\s*(\{|[A-Za-z_][A-Za-z0-9_]*|\*)", text[i:])
    if not m:
        return [[]]
    tok, j = m.group(1), i + m.end()
    if tok == "{":
        paths, depth, start = [], 1, j
        k = j
        while k < len(text) and depth:
            c = text[k]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            if (c == "," and depth == 1) or depth == 0:
                part = text[start:k].strip()
                if part:
                    paths.extend(use_tree(part, 0))
                start = k + 1
            k += 1
        return paths
    if tok == "*":
        return [[]]
    rest = re.match(r"\s*::", text[j:])
    if rest:
        return [[tok] + p for p in use_tree(text, j + rest.end())]
    return [[tok]]


def module_path(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts in (["lib"], ["main"]):
        return ()
    return tuple(parts)


def graph(src):
    """Module → set of modules it names (full paths as tuples)."""
    files = {}
    for dirpath, _, filenames in os.walk(src):
        for f in filenames:
            if f.endswith(".rs") and not f.endswith("_tests.rs") and "bin" not in os.path.relpath(dirpath, src).split(os.sep):
                rel = os.path.relpath(os.path.join(dirpath, f), src)
                files[module_path(rel)] = os.path.join(dirpath, f)
    known = set(files)
    edges = {m: set() for m in known}
    for mod, path in files.items():
        with open(path, encoding="utf-8") as fh:
            text = strip(fh.read())
        for m in START.finditer(text):
            kind = m.group(1)
            j = m.end()
            base = list(mod)
            if kind == "crate":
                base = []
            elif kind == "super":
                base = base[:-1]
                while True:
                    s = re.match(r"super::", text[j:])
                    if not s:
                        break
                    base, j = base[:-1], j + s.end()
            for p in use_tree(text, j):
                full = base + p
                # The longest prefix that is a module: the rest names an item in it.
                while full and tuple(full) not in known:
                    full.pop()
                target = tuple(full)
                if target != mod:
                    edges[mod].add(target)
    return known, edges


def sibling_graphs(known, edges):
    """Parent → {child → children it depends on}, for every parent with more than one child."""
    out = {}
    for m in known:
        if m:
            out.setdefault(m[:-1], {}).setdefault(m[-1], set())
    for a, targets in edges.items():
        for b in targets:
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            if n == len(a) or n == len(b):
                continue  # ancestor or descendant
            out[a[:n]][a[n]].add(b[n])
    return out


def cycles(g):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, [])):
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
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def analyse():
    drawings, problems, pending = [], [], []
    for name, src in sorted(crates()):
        known, edges = graph(src)
        groups = sibling_graphs(known, edges)
        for parent, g in sorted(groups.items()):
            where = name + ("" if not parent else " (in " + "::".join(parent) + ")")
            for c in cycles(g):
                if not parent and c in PENDING.get(name, []):
                    pending.append(f"module-graph: {where}: known cycle awaiting its fix: {', '.join(c)}")
                else:
                    problems.append(f"module-graph: {where}: modules depend on each other in a cycle: {', '.join(c)}")
        top = groups.get((), {})
        lines = [f"#### {name}", "", "```mermaid", "graph LR"]
        for m in sorted(top):
            deps = sorted(top[m])
            lines.extend(f"  {m} --> {d}" for d in deps)
            if not deps:
                lines.append(f"  {m}")
        lines += ["```", ""]
        drawings.append("\n".join(lines))
    return "\n".join(drawings), problems, pending


def section(drawing):
    known = "".join(
        f"- {crate}: {', '.join(c)} (to be removed, not added to)\n" for crate, cs in sorted(PENDING.items()) for c in cs
    )
    return (
        f"{BEGIN}\n\n"
        "Drawn by `scripts/module-graph.py --write` from the code; `make test` fails when it is out of date or a\n"
        "cycle appears. An arrow a → b: module a names something of module b (top-level modules of each crate;\n"
        "nested modules are checked the same way but not drawn).\n\n"
        + (f"Known cycles, tolerated until their fix lands:\n\n{known}\n" if known else "")
        + f"{drawing}\n{END}"
    )


def main():
    args = set(sys.argv[1:])
    drawing, problems, pending = analyse()
    for p in pending:
        print(p, file=sys.stderr)
    for p in problems:
        print(p, file=sys.stderr)
    doc = open(DOC, encoding="utf-8").read()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"module-graph: {DOC} has no section between {BEGIN!r} and {END!r}")
    current = doc[doc.index(BEGIN) : doc.index(END) + len(END)]
    wanted = section(drawing)
    if "--write" in args:
        if current != wanted:
            with open(DOC, "w", encoding="utf-8") as fh:
                fh.write(doc.replace(current, wanted))
            print(f"module-graph: redrew the module graph in {os.path.relpath(DOC, ROOT)}")
    elif "--check" in args:
        if current != wanted:
            problems.append(
                f"module-graph: the module graph in {os.path.relpath(DOC, ROOT)} is out of date: run "
                "scripts/module-graph.py --write"
            )
            print(problems[-1], file=sys.stderr)
        elif not problems:
            print("module-graph: no module cycle beyond the known ones; docs/architecture.md's graph is current")
    else:
        print(drawing)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
