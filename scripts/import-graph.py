#!/usr/bin/env python3
"""Import graph of the crate's top-level modules (src/<name>.rs, src/<name>/).

Prints who names whom (`crate::x` paths, in `use` lines or inline, and
`use crate::{a, b::c}` groups), every cycle among the top-level modules,
and the largest source files. Exits 1 when there is a cycle, so it can
guard the layering in CI.

Comments and string literals are blanked out before scanning: a doc
comment that mentions `crate::lan::LanGossip` is not a dependency.
`super::` and `self::` never leave a top-level module, so they are not
followed. A name after `crate::` that is no top-level module (something
lib.rs itself defines or re-exports) counts as the crate root, `lib`.

Run from the repository root: python3 scripts/import-graph.py
"""

import os
import re
import sys
from collections import defaultdict

SRC = "src"
ROOT = "lib"
# The binary's root names the library as `meridian::`, never `crate::`.
CRATE_ROOTS = {"lib.rs": ROOT, "main.rs": "main"}
LIB_NAME = "meridian"


def top_level_modules():
    mods = set()
    for entry in os.listdir(SRC):
        path = os.path.join(SRC, entry)
        if os.path.isdir(path):
            mods.add(entry)
        elif entry.endswith(".rs") and entry not in CRATE_ROOTS:
            mods.add(entry[:-3])
    return mods


def owner(path):
    """The top-level module a file under src/ belongs to."""
    rel = os.path.relpath(path, SRC).split(os.sep)
    if len(rel) == 1:
        return CRATE_ROOTS.get(rel[0], rel[0][:-3])
    return rel[0]


RAW_STRING = re.compile(r'(?:b|c)?r(#*)"')


def strip(text):
    """Blanks comments and string/char literals, keeping newlines (so line
    numbers stay right) and everything else as it is."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        out.append("".join(c if c == "\n" else " " for c in s))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(text[i:j])
            i = j
        elif (m := RAW_STRING.match(text, i)) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            close = '"' + m.group(1)
            j = text.find(close, m.end())
            j = n if j < 0 else j + len(close)
            blank(text[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(text[i : j + 1])
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F600}', '"') or a lifetime ('a).
            if i + 1 < n and text[i + 1] == "\\":
                j = text.find("'", i + 2)
                j = n if j < 0 else j + 1
                blank(text[i:j])
                i = j
            elif i + 2 < n and text[i + 2] == "'":
                blank(text[i : i + 3])
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


PATH_START = re.compile(r"(?<![\w])\$?crate\s*::\s*")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def group_heads(text, start):
    """The first segment of each item of the brace group opening at
    `start` (`{a, b::c, d::{e}}` gives a, b, d)."""
    heads, depth, item = [], 0, ""
    for j in range(start, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and ch == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    names = []
    for h in heads:
        m = IDENT.match(h.strip())
        if m:
            names.append(m.group(0))
    return names


def references(text, modules):
    """(target module, line) for every crate path in `text`."""
    refs = []
    for m in PATH_START.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        rest = m.end()
        if rest < len(text) and text[rest] == "{":
            names = group_heads(text, rest)
        else:
            ident = IDENT.match(text, rest)
            names = [ident.group(0)] if ident else []
        for name in names:
            if name == "self":
                continue
            refs.append((name if name in modules else ROOT, line))
    return refs


def lib_references(text, modules):
    """`meridian::x` from the binary's root."""
    refs = []
    for m in re.finditer(r"(?<![\w])%s\s*::\s*(\w+)" % LIB_NAME, text):
        name = m.group(1)
        line = text.count("\n", 0, m.start()) + 1
        refs.append((name if name in modules else ROOT, line))
    return refs


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def short_cycles(comp, graph):
    """For each edge inside a component, the shortest cycle through it:
    a readable account of a component that one stray edge can make large."""
    members = set(comp)
    found = set()
    for a in comp:
        for b in graph[a] & members:
            # Breadth-first from b back to a, inside the component.
            prev, frontier = {b: None}, [b]
            while frontier and a not in prev:
                nxt = []
                for v in frontier:
                    for w in sorted(graph[v] & members):
                        if w not in prev:
                            prev[w] = v
                            nxt.append(w)
                frontier = nxt
            path, v = [], a
            while v is not None:
                path.append(v)
                v = prev[v]
            cycle = [a] + path[::-1][:-1]
            k = cycle.index(min(cycle))
            found.add(tuple(cycle[k:] + cycle[:k]))
    return sorted(found, key=lambda c: (len(c), c))


def main():
    if not os.path.isdir(SRC):
        sys.exit("run from the repository root (no src/ here)")
    modules = top_level_modules()
    # (from, to) -> list of (file, line)
    uses = defaultdict(list)
    sizes = []
    for dirpath, dirnames, filenames in os.walk(SRC):
        dirnames.sort()
        for f in sorted(filenames):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            sizes.append((text.count("\n"), path))
            src = owner(path)
            code = strip(text)
            refs = references(code, modules)
            if src == "main":
                refs += lib_references(code, modules)
            for dst, line in refs:
                if dst != src:
                    uses[(src, dst)].append((path, line))

    print("Edges between top-level modules (from -> to: references in files)")
    width = max((len(a) + len(b) + 4 for a, b in uses), default=10)
    for (a, b), where in sorted(uses.items()):
        files = len({p for p, _ in where})
        print(f"  {a + ' -> ' + b:<{width}}  {len(where):4} in {files} file(s)")

    nodes = modules | {ROOT} | {a for a, _ in uses}
    graph = defaultdict(set)
    for a, b in uses:
        graph[a].add(b)
    cycles = [c for c in sccs(nodes, graph) if len(c) > 1]

    print()
    if cycles:
        print(f"Cycles among top-level modules: {len(cycles)}")
        for comp in cycles:
            print("  {" + ", ".join(comp) + "}")
            for c in short_cycles(comp, graph):
                print("    cycle: " + " -> ".join(c + (c[0],)))
            members = set(comp)
            for (a, b), where in sorted(uses.items()):
                if a in members and b in members:
                    shown = ", ".join(f"{p}:{l}" for p, l in where[:3])
                    more = f" (+{len(where) - 3} more)" if len(where) > 3 else ""
                    print(f"    {a} -> {b}: {shown}{more}")
    else:
        print("No cycles among top-level modules.")

    print()
    print("Largest .rs files (lines)")
    for lines, path in sorted(sizes, key=lambda s: (-s[0], s[1]))[:5]:
        print(f"  {lines:6}  {path}")

    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
