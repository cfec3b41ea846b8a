#!/usr/bin/env bash
# List Rust functions longer than a limit (default 150 lines), longest first.
# Usage: scripts/long-fns.sh [LIMIT] [PATH...]   (paths default to src/; files or folders)
# A function runs from its `fn` line to the first later line that closes a brace at the
# same indent; rustfmt lays code out that way, so no Rust parser is needed.
set -euo pipefail
limit=${1:-150}
shift || true
[ $# -eq 0 ] && set -- src
exec python3 -c '
import os, re, sys
limit = int(sys.argv[1])
fn_re = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")
paths = []
for p in sys.argv[2:]:
    if os.path.isdir(p):
        for root, _, files in os.walk(p):
            paths += [os.path.join(root, f) for f in files if f.endswith(".rs")]
    else:
        paths.append(p)
rows = []
for path in sorted(paths):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    for i, line in enumerate(lines):
        m = fn_re.match(line)
        if not m:
            continue
        indent = m.group(1)
        j = i
        while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
            j += 1
        if j >= len(lines) or "{" not in lines[j]:
            continue  # a declaration without a body
        if lines[j].count("{") == lines[j].count("}"):
            continue  # a one-line body
        close = indent + "}"
        for k in range(j + 1, len(lines)):
            if lines[k].startswith(close) and not lines[k].startswith(close + "}"):
                n = k - i + 1
                if n > limit:
                    rows.append((n, path, i + 1, m.group(2)))
                break
rows.sort(key=lambda r: (-r[0], r[1], r[2]))
for n, path, line, name in rows:
    print(f"{n:5d}  {path}:{line}  {name}")
' "$limit" "$@"
