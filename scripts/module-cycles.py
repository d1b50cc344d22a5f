#!/usr/bin/env python3
"""Find dependency cycles between the modules of each crate of the workspace, the way
`cargo modules dependencies --acyclic` would, without a compiler.

Nodes: the file modules (`src/foo.rs`, `src/foo/mod.rs`, `src/foo/bar.rs`) reachable by `mod x;`
from the crate root, named by path (`analyzer::stream::windows`); inline modules belong to their
file. Edges A -> B: a path in A's file naming module B of the same crate, resolved to its longest
known-module prefix: `use crate::b::X`, groups (`use crate::{a::X, b::{self, Y}}`), `super::` and
`self::` (from the enclosing module, inline ones included), code paths (`crate::b::f()`), and
names bound by a `use` of a module (`use crate::sql; sql::f()`).

Ignored by design: comments (doc comments, doc tests), string/raw-string/char literals (so
`format!("crate::x")` and `#[serde(with = "crate::x")]` do not count); test code, i.e. every
`#[cfg(test)]` item and any inline `mod tests` (test-only file modules like `#[cfg(test)] mod
fuzz;` are not nodes), as cargo-modules without `--cfg-test`; and containment: an edge between
a module and its ancestor or descendant (a parent re-exporting its child, `pub use child::X`; a
child using its parent via `super::`/`crate::`), since the acyclic check is about sibling and
unrelated modules -- so edges into the crate root (`crate::CONST`) never make a cycle.
Not supported: `#[path]`, `mod x;` inside inline modules, glob imports of modules.

Output: `ok: <crate> (<n> modules, <m> edges)`, or for each strongly connected component of more
than one module, simple cycles that together cover all its edges, each as `cycle in <crate>:
a -> b -> a` then the file:line of the first reference making each edge. Exit 1 on any cycle.
"""
import argparse
import re
import sys
import tempfile
import tomllib
from collections import deque
from pathlib import Path

# --- Lexing: blank out comments and literals, keeping every newline so line numbers hold. ---
RAW_STR = re.compile(r'(?<![\w])[bc]?r(#*)"')
CHAR_LIT = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]*\}|.)|[^\\'\n])'")


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def strip_comments_and_literals(src: str) -> str:
    out, i, n = [], 0, len(src)
    while i < n:
        c, j = src[i], None
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):  # block comments nest in Rust
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        elif (m := RAW_STR.match(src, i)) is not None:
            end = src.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
        elif c == "'" and (m := CHAR_LIT.match(src, i)) is not None:
            j = m.end()  # otherwise a lifetime or a label: kept as is
        if j is None:
            out.append(c)
            i += 1
        else:
            out.append(_blank(src[i:j]))
            i = j
    return "".join(out)


def block_end(t: str, i: int) -> int:
    """Index after the `}` matching the `{` at or after i."""
    depth = 0
    for j in range(t.index("{", i), len(t)):
        depth += {"{": 1, "}": -1}.get(t[j], 0)
        if depth == 0:
            return j + 1
    return len(t)


def item_end(t: str, i: int) -> int:
    """Index after the item at i: its `;` or `{...}` outside ()/[] (attributes, arguments), or
    before the `,` or `}` that ends a field, variant or match arm."""
    depth = angle = 0
    for j, c in enumerate(t[i:], i):
        depth += (c in "([") - (c in ")]")
        angle += (c == "<") - (c == ">" and t[j - 1] not in "-=")  # generics, not `->`/`=>`
        if depth == 0 and c == ";":
            return j + 1
        if depth == 0 and c == "{":
            return block_end(t, j)
        if depth <= 0 and (c == "}" or c == "," and angle <= 0):
            return j
    return len(t)


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
MOD_TESTS = re.compile(r"\bmod\s+tests\s*\{")
VIS_IN = re.compile(r"\bpub\s*\(\s*in\s+[^)]*\)")  # `pub(in crate::a)` is not a dependency


def clean(src: str) -> str:
    """Source with comments, literals, visibility paths and test code blanked out."""
    t = VIS_IN.sub(lambda m: _blank(m.group()), strip_comments_and_literals(src))
    spans = [(m.start(), item_end(t, m.end())) for m in CFG_TEST.finditer(t)]
    spans += [(m.start(), block_end(t, m.start())) for m in MOD_TESTS.finditer(t)]
    for a, b in spans:  # blanking keeps lengths, so the spans stay valid
        t = t[:a] + _blank(t[a:b]) + t[b:]
    return t


# --- Paths: parse `a::b::{c, d::{self, E as F}}` trees and resolve them to modules. ---
PATH_START = re.compile(r"(?<![\w:$])(\$crate|[A-Za-z_]\w*)(?=\s*::)")
SEG = re.compile(r"\s*(\$crate|[A-Za-z_]\w*|\*)")
SEP, OPEN, CLOSE, COMMA = (re.compile(p) for p in (r"\s*::", r"\s*\{", r"\s*\}", r"\s*,"))
ALIAS = re.compile(r"\s+as\s+([A-Za-z_]\w*)")
USE = re.compile(r"\buse\s+(?=::|[\w$])")
MOD_DECL = re.compile(r"\bmod\s+([A-Za-z_]\w*)\s*;")
INLINE_MOD = re.compile(r"\bmod\s+([A-Za-z_]\w*)\s*\{")


def parse_tree(t: str, i: int, prefix: list):
    """Leaves [(segments, alias, position)] of the path tree at i, and the index after it."""
    leaves, segs, start = [], list(prefix), i
    while (m := SEG.match(t, i)) is not None:
        segs.append(m.group(1))
        i = m.end()
        if (s := SEP.match(t, i)) is None:
            break
        i = s.end()
        if (o := OPEN.match(t, i)) is not None:  # a group: `{ tree, tree, ... }`
            i, c = o.end(), None
            while i < len(t) and (c := CLOSE.match(t, i)) is None:
                sub, j = parse_tree(t, i, segs)
                leaves += sub
                comma = COMMA.match(t, j)
                i = comma.end() if comma else max(j, i + 1)  # always make progress
            return leaves, (c.end() if c else i)
    a = ALIAS.match(t, i)
    if segs != prefix:
        leaves.append((segs, a.group(1) if a else None, start))
    return leaves, (a.end() if a else i)


def resolve(segs, here, aliases, modules):
    """(module, exact) named by segs from logical module `here`, or None if not this crate's."""
    first, cur = segs[0], None
    if first in ("crate", "$crate"):
        cur = []
    elif first == "self":
        cur = list(here)
    elif first == "super":
        cur = list(here[:-1])
    elif first in aliases:
        cur = list(aliases[first])
    elif tuple(here) + (first,) in modules:  # 2018 relative path to a child module
        cur = list(here) + [first]
    if cur is None:
        return None
    for s in segs[1:]:
        cur = cur[:-1] if s == "super" else cur if s == "self" else cur + [s]
    exact = tuple(cur) in modules
    while tuple(cur) not in modules:
        cur.pop()
    return tuple(cur), exact


# --- Crates: modules, edges, components. ---
def load_modules(root_file: Path) -> dict:
    """{module path tuple: (file, cleaned text)} for the file modules reachable from root_file."""
    modules, todo = {}, [((), root_file)]
    while todo:
        path, f = todo.pop()
        text = clean(f.read_text(encoding="utf-8"))
        modules[path] = (f, text)
        base = f.parent if f.name in ("lib.rs", "main.rs", "mod.rs") else f.parent / f.stem
        for m in MOD_DECL.finditer(text):
            name = m.group(1)
            files = (base / f"{name}.rs", base / name / "mod.rs")
            child = next((c for c in files if c.exists()), None)
            if child is None:
                print(f"warning: {f}: no file for `mod {name};`", file=sys.stderr)
            else:
                todo.append((path + (name,), child))
    return modules


def crate_edges(modules: dict) -> dict:
    """{(A, B): (file, position)} of the first reference from module A to module B."""
    edges = {}
    for a, (f, t) in modules.items():
        spans = [(m.start(), block_end(t, m.start()), m.group(1)) for m in INLINE_MOD.finditer(t)]

        def here(pos, a=a, spans=spans):  # logical module at pos, inline modules included
            return a + tuple(n for s, e, n in sorted(spans) if s <= pos < e)

        aliases = {}  # first pass: local names of modules imported by `use`
        for u in USE.finditer(t):
            for segs, alias, pos in parse_tree(t, u.end(), [])[0]:
                r = resolve(segs, here(pos), aliases, modules)
                name = alias or (segs[-2] if segs[-1] == "self" and len(segs) > 1 else segs[-1])
                if r and r[1] and name not in ("self", "*"):
                    aliases[name] = r[0]
        i = 0  # second pass: every path, in `use` declarations and in code
        while (m := PATH_START.search(t, i)) is not None:
            leaves, i = parse_tree(t, m.start(), [])
            i = max(i, m.end())
            for segs, _, pos in leaves:
                r = resolve(segs, here(pos), aliases, modules)
                if r is None or r[0][: len(a)] == a or a[: len(r[0])] == r[0]:
                    continue  # not a module of this crate, itself, an ancestor or a descendant
                edges.setdefault((a, r[0]), (f, pos))
    return edges


def components(nodes, edges) -> list:
    """Strongly connected components with more than one node (mutual reachability; the graphs
    are small)."""
    succ = {n: [b for (a, b) in edges if a == n] for n in nodes}

    def reach(v):
        seen, todo = set(), [v]
        while todo:
            new = [w for w in succ[todo.pop()] if w not in seen]
            seen.update(new)
            todo += new
        return seen

    r = {v: reach(v) for v in nodes}
    comps = {frozenset(w for w in r[v] if v in r[w]) for v in nodes if v in r[v]}
    return sorted((set(c) for c in comps if len(c) > 1), key=min)


def covering_cycles(comp, edges) -> list:
    """Simple cycles, each the shortest through one edge, that together use every edge of comp."""
    inner = sorted(e for e in edges if e[0] in comp and e[1] in comp)
    covered, cycles = set(), []
    for u, v in inner:
        if (u, v) in covered:
            continue
        prev, todo = {v: None}, deque([v])  # BFS from v back to u inside the component
        while u not in prev:
            x = todo.popleft()
            for a, b in inner:
                if a == x and b not in prev:
                    prev[b] = x
                    todo.append(b)
        path, x = [], u
        while x is not None:
            path.append(x)
            x = prev[x]
        cyc = [u] + path[::-1][:-1]  # u -> v -> ... -> (back to u)
        k = cyc.index(min(cyc))
        cyc = cyc[k:] + cyc[:k]
        covered.update(zip(cyc, cyc[1:] + cyc[:1]))
        cycles.append(cyc)
    return cycles


def workspace_crates(root: Path) -> list:
    """[(member, label, module prefix, root file)] of the workspace members, in order."""
    manifest = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    crates = []
    for member in manifest["workspace"]["members"]:
        d = (root / member).resolve()
        pkg = tomllib.loads((d / "Cargo.toml").read_text(encoding="utf-8")).get("package", {})
        label = pkg.get("name", d.name) if member in (".", "") else Path(member).name
        main = next((p for p in (d / "src/lib.rs", d / "src/main.rs") if p.exists()), None)
        if main:
            crates.append((member, label, label.replace("-", "_"), main))
    return crates


def check(root: Path, only=None, show_edges=False, out=print) -> dict:
    """Check every crate (or `only`); print the report; return {label: (modules, edges, cycles)}."""
    results = {}
    for member, label, prefix, main in workspace_crates(root):
        if only and only not in (member, label, prefix):
            continue
        modules = load_modules(main)
        edges = crate_edges(modules)
        name = lambda m: "::".join((prefix,) + m)  # noqa: E731
        line = lambda a, pos: modules[a][1].count("\n", 0, pos) + 1  # noqa: E731
        cycles = [c for comp in components(modules, edges) for c in covering_cycles(comp, edges)]
        results[label] = (modules, edges, cycles)
        if show_edges:
            for (a, b), (f, pos) in sorted(edges.items()):
                where = f"{f.relative_to(root)}:{line(a, pos)}"
                out(f"edge in {label}: {name(a)} -> {name(b)} ({where})")
        if not cycles:
            out(f"ok: {label} ({len(modules)} modules, {len(edges)} edges)")
        for cyc in cycles:
            out(f"cycle in {label}: " + " -> ".join(name(m) for m in cyc + cyc[:1]))
            for a, b in zip(cyc, cyc[1:] + cyc[:1]):
                f, pos = edges[(a, b)]
                n = line(a, pos)
                code = f.read_text(encoding="utf-8").splitlines()[n - 1].strip()
                out(f"    {name(a)} -> {name(b)}: {f.relative_to(root)}:{n}: {code[:90]}")
    if only and not results:
        sys.exit(f"error: no crate named {only!r} in {root / 'Cargo.toml'}")
    return results


def self_test() -> None:
    """A fake workspace with one known cycle (a <-> b) and several non-cycles."""
    files = {
        "Cargo.toml": '[workspace]\nmembers = ["fake"]\n',
        "fake/Cargo.toml": '[package]\nname = "fake"\n',
        "fake/src/lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod p;\n"
                           "#[cfg(test)]\nmod fuzz;\npub const K: u8 = 1;\n",
        # a -> b (nested group with self), a -> c, and a -> root (ignored: ancestor).
        "fake/src/a.rs": "use crate::{b::{self, B}, c::C};\npub struct A;\n"
                         "fn f() -> u8 { crate::K }\n",
        # b -> a only through a code path via super::, after tricky literals.
        "fake/src/b.rs": "pub struct B;\nconst Q: char = '\"';\n"
                         "const R: &str = r#\"\"crate::c\"#; fn g<'x>(_: &'x u8) {}\n"
                         "/* /* crate::c */ crate::c */\n"
                         "fn h() { let _ = super::a::A; }\n",
        # c mentions a only in docs, strings and tests: no edge c -> a.
        "fake/src/c.rs": "//! Uses `crate::a::A` in docs.\npub struct C;\n"
                         "fn s() -> String { format!(\"crate::a::{}\", 1) }\n"
                         "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n    use super::*;\n}\n",
        # p re-exports its child; the child uses its parent: containment, no edges.
        "fake/src/p/mod.rs": "mod child;\npub use child::X;\npub struct Y;\n",
        "fake/src/p/child.rs": "pub struct X;\nuse super::Y;\nuse crate::p::Y as Z;\n",
        # d reaches p::child through the name `p` bound by its `use`.
        "fake/src/d.rs": "use crate::p;\nfn f() { let _ = p::child::X; }\n",
        # test-only file module: not a node, so its use of a, b is no edge.
        "fake/src/fuzz.rs": "use crate::a::A;\nuse crate::b::B;\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        lines = []
        modules, edges, cycles = check(root, out=lines.append)["fake"]
        assert set(modules) == {(), ("a",), ("b",), ("c",), ("d",), ("p",), ("p", "child")}
        assert set(edges) == {(("a",), ("b",)), (("a",), ("c",)), (("b",), ("a",)),
                              (("d",), ("p",)), (("d",), ("p", "child"))}, edges
        assert cycles == [[("a",), ("b",)]], cycles
        assert lines[0] == "cycle in fake: fake::a -> fake::b -> fake::a", lines
        assert lines[2].startswith("    fake::b -> fake::a: fake/src/b.rs:5:"), lines
    print("self-test passed:\n  " + "\n  ".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crate", metavar="NAME", help="check only this workspace member "
                    "(directory name, or the root package's name for `.`)")
    ap.add_argument("--edges", action="store_true", help="also print every module edge found")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="workspace root (default: the parent of this script's directory)")
    ap.add_argument("--self-test", action="store_true", help="check the checker on a fake crate")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    results = check(args.root.resolve(), args.crate, args.edges)
    return 1 if any(cycles for _, _, cycles in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
