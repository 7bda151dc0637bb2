#!/usr/bin/env python3
"""The shape of the code, for reviews and before/after notes of refactors:
files and lines per crate, the largest files and functions, unsafe blocks
with and without a SAFETY comment, `Result<_, String>` returns, module docs,
and the dependency graph of skiff's own crates.

    scripts/code-stats.py [--top N]

Functions are found by their `fn` line and end at the first `}` line with
the same indentation (rustfmt's layout), which is what the numbers mean.
"""

import argparse
import re
import statistics
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FN = re.compile(r'^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+"C"\s+)?fn\s+(\w+)')
STRING_ERR = re.compile(r"Result<[^;{]*,\s*String>")


def rust_files():
    for p in sorted(ROOT.rglob("*.rs")):
        rel = p.relative_to(ROOT)
        if rel.parts[0] in ("target",) or "target" in rel.parts:
            continue
        yield rel


def crate_of(rel: Path) -> str:
    parts = rel.parts
    if parts[0] == "stage1-flavors":
        return "/".join(parts[:2])
    return parts[0]


def functions(lines):
    """(name, first line, length) of each fn with a body."""
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            s = lines[j]
            if s.startswith(indent + "}") and not s.startswith(indent + " "):
                out.append((m.group(2), i + 1, j - i + 1))
                break
            if j > i and s.strip() and not s.startswith(indent + " ") and not s.startswith(indent + "}") \
                    and not s.startswith(indent + ")") and not s.startswith(indent + "where") \
                    and not s.startswith(indent + "->"):
                break
    return out


def in_test_module(lines, lineno):
    """True when `lineno` is below a `#[cfg(test)]` at the top level."""
    for k in range(lineno - 1, -1, -1):
        if lines[k].startswith("#[cfg(test)]"):
            return True
    return False


def skiff_deps():
    graph = {}
    for toml in sorted(ROOT.glob("**/Cargo.toml")):
        rel = toml.relative_to(ROOT)
        if "target" in rel.parts or rel.parts[0] == "fuzz" or rel == Path("Cargo.toml"):
            continue
        data = tomllib.loads(toml.read_text())
        name = data.get("package", {}).get("name", str(rel.parent))
        deps = data.get("dependencies", {})
        graph[name] = sorted(d for d in deps if d.startswith("skiff"))
    return graph


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    per_crate = {}
    file_sizes = []
    fns = []
    unsafe_total = unsafe_documented = 0
    string_errs = {}
    no_doc = []
    for rel in rust_files():
        text = (ROOT / rel).read_text()
        lines = text.splitlines()
        crate = crate_of(rel)
        n, total = per_crate.get(crate, (0, 0))
        per_crate[crate] = (n + 1, total + len(lines))
        file_sizes.append((len(lines), str(rel)))
        if not text.lstrip().startswith("//!") and rel.parts[0] not in ("tests", "fuzz"):
            no_doc.append(str(rel))
        for name, start, length in functions(lines):
            if not in_test_module(lines, start) and rel.parts[0] != "tests":
                fns.append((length, f"{rel}:{start} {name}"))
        for i, line in enumerate(lines):
            if re.search(r"\bunsafe\s*\{", line) and not line.strip().startswith("//"):
                unsafe_total += 1
                window = "\n".join(lines[max(0, i - 6):i + 1])
                if "SAFETY:" in window:
                    unsafe_documented += 1
            if STRING_ERR.search(line) and not in_test_module(lines, i + 1):
                string_errs[crate] = string_errs.get(crate, 0) + 1

    files = sum(n for n, _ in per_crate.values())
    lines_total = sum(t for _, t in per_crate.values())
    print(f"files: {files}   lines: {lines_total}   median file: {statistics.median(s for s, _ in file_sizes):.0f} lines")
    print("\ncrate                          files   lines")
    for crate, (n, t) in sorted(per_crate.items()):
        print(f"  {crate:<28} {n:>5} {t:>7}")
    print(f"\nlargest files (top {args.top}):")
    for size, name in sorted(file_sizes, reverse=True)[:args.top]:
        print(f"  {size:>5}  {name}")
    lengths = [n for n, _ in fns]
    print(f"\nfunctions outside tests: {len(fns)}   median {statistics.median(lengths):.0f} lines   "
          f"over 60 lines: {sum(1 for n in lengths if n > 60)}")
    for size, name in sorted(fns, reverse=True)[:args.top]:
        print(f"  {size:>5}  {name}")
    print(f"\nunsafe blocks: {unsafe_total}, with a SAFETY comment: {unsafe_documented}")
    print(f"files without a module doc (outside tests/, fuzz/): {len(no_doc)} {' '.join(no_doc)}")
    print("Result<_, String> outside tests: " + (", ".join(f"{c} {n}" for c, n in sorted(string_errs.items())) or "none"))
    print("\nskiff crates and the skiff crates they depend on:")
    for name, deps in skiff_deps().items():
        print(f"  {name} -> {', '.join(deps) or '-'}")


if __name__ == "__main__":
    main()
