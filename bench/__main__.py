"""Run every benchmark and print figures beside a baseline measured in the same run.

Each runs in a process of its own: what one leaves in memory (the embedding model, a large
edition) neither slows the next nor shows in the peak memory of the processes it starts
(a child forked from a large process reports that process's size as its own peak).
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("pipeline", "hostile", "clusters", "tickers", "fetch", "wire", "web", "workers")

failed = [
    name
    for name in BENCHMARKS
    if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0
]
if failed:
    sys.exit(f"bench: {', '.join(failed)} failed")
