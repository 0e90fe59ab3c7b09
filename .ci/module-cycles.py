#!/usr/bin/env python3
"""Import circles between the library's modules.

Reads the module-level "uses" graph that `cargo modules dependencies`
prints (cargo-modules 0.27; functions, types and traits filtered out, so
the nodes are modules), adds the edges of paths written inline in code
(`crate::a::b::Item` outside a `use`, which cargo-modules does not see),
and reports every strongly connected component of more than one module.
Exit 1 if there is any.

    cargo modules dependencies --lib --no-externs --no-sysroot --no-fns \
        --no-traits --no-types --no-owns | python3 .ci/module-cycles.py
"""
import re
import sys

node = re.compile(r'^\s*"([^"]+)" \[label="[^|"]*mod\|')
edge = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[label="uses"')
mods, edges = set(), {}
for line in sys.stdin:
    if m := node.match(line):
        mods.add(m.group(1))
    elif m := edge.match(line):
        edges.setdefault(m.group(1), set()).add(m.group(2))


def module_of_file(path):
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p not in ("lib", "mod")]
    return "::".join(["poortwachter", *parts])


def resolve(path):
    """The longest module prefix of a `poortwachter::…` path."""
    parts = path.split("::")
    while parts:
        cand = "::".join(parts)
        if cand in mods:
            return cand
        parts.pop()
    return None


import pathlib

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
inline = re.compile(r"\bcrate((?:::\w+)+)")
for f in SRC.rglob("*.rs"):
    if f.parent.name == "cli" or f.name == "main.rs":
        continue  # the binary's modules
    owner = module_of_file(f)
    for line in f.read_text().splitlines():
        # Unit-test modules sit at the end of their file (a top-level
        # `#[cfg(test)] mod ...`) and are not part of the library's module
        # graph: stop there. (An indented `#[cfg(test)]` marks one item.)
        if line.rstrip() == "#[cfg(test)]":
            break
        if line.lstrip().startswith(("use ", "pub use ", "//")):
            continue
        for m in inline.finditer(line):
            target = resolve("poortwachter" + m.group(1))
            if target and owner in mods:
                edges.setdefault(owner, set()).add(target)

graph = {a: {b for b in bs if b in mods and b != a} for a, bs in edges.items() if a in mods}
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
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
            sccs.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        visit(v)
print(f"{len(mods)} modules, {sum(len(b) for b in graph.values())} uses edges, {len(sccs)} import circle(s)")
for comp in sccs:
    print("circle:", " <-> ".join(comp))
    for a in comp:
        for b in sorted(graph.get(a, ())):
            if b in comp:
                print(f"    {a} uses {b}")
sys.exit(1 if sccs else 0)
