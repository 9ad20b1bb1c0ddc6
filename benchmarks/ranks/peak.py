"""Run `gaverify ARGS...` as one rank of a launcher and record that rank's peak RSS.

    torchrun --standalone --nproc-per-node 2 benchmarks/ranks/peak.py OUT run SCENARIO -q

Each rank writes OUT/rank<RANK>.json: its peak resident memory (MiB, from
getrusage) and wall time, when it exits. gaverify joins torchrun's ranks,
so every rank's memory is its own process's (benchmarks/run.py --only ranks).
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
import time
from pathlib import Path

start = time.perf_counter()
out, args = Path(sys.argv[1]), sys.argv[2:]


def record() -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rank = os.environ.get("RANK", "0")
    wall = time.perf_counter() - start
    (out / f"rank{rank}.json").write_text(json.dumps({"peak_mib": peak, "wall_s": wall}))


atexit.register(record)
sys.argv = ["gaverify", *args]
from gaverify.cli import main  # noqa: E402 (the clock starts before the imports)

main()
