"""Run every benchmark in turn with its default settings.

Each benchmark is also a module of its own, with options for longer runs::

    .venv/bin/python -m benchmarks              # all of them
    .venv/bin/python -m benchmarks.bench_span_pipeline --spans 50000

Results are written up, with the command behind each number, in
docs/benchmarks.md.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Run each ``bench_*`` module in a fresh interpreter; return the worst status."""
    names = sorted(
        module.name
        for module in pkgutil.iter_modules([str(Path(__file__).parent)])
        if module.name.startswith("bench_")
    )
    status = 0
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        completed = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}"], check=False
        )
        status = max(status, completed.returncode)
    return status


if __name__ == "__main__":
    sys.exit(main())
