"""The launcher process: torch's elastic agent starting W ranks.

Run by launch.py as `python -m gaverify.distributed.agent FOLDER`. This is
what `torchrun --standalone --nproc-per-node W --max-restarts 0` does, called
through torch.distributed's launcher API so that a failure comes back as
data (which ranks, exit codes, signals) rather than as text to parse: it
is written to FOLDER/failures.json. Exit 0 when every rank succeeded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: Path) -> int:
    """Launch the job in `folder` on its W ranks and wait for them."""
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    job = json.loads((folder / "job.json").read_text())
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=job["processes"],
        run_id=folder.name,
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # a free port, as torchrun --standalone picks
        max_restarts=0,  # a failed rank ends the run: gaverify reports it, never retries
        monitor_interval=0.1,
        logs_specs=DefaultLogsSpecs(log_dir=str(folder / "logs")),  # not a stray temp dir
    )
    try:
        elastic_launch(config, sys.executable)("-m", "gaverify.distributed.rank", str(folder))
    except ChildFailedError as exc:
        failures = {
            rank: {
                "exitcode": f.exitcode,
                "signal": f.signal_name() if f.exitcode < 0 else None,
            }
            for rank, f in exc.failures.items()
        }
        (folder / "failures.json").write_text(json.dumps(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
