"""Run every benchmark module of this package (each defines ``main() -> int``), or the ones named.

python -m bench               # all of them
python -m bench retrieval     # just bench/retrieval.py
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or discover()
    failed: list[str] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        code = entry() or 0
        print(
            f"== bench.{name}: {'ok' if not code else f'exit {code}'} in {time.perf_counter() - started:.1f}s\n"
        )
        if code:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
