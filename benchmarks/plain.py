"""The floor gaverify is measured against: plain training steps of a scenario.

Builds the scenario's model and data with gaverify's own set-up (so it is
the same model, the same samples and the same batches), then runs `steps`
plain training steps on the full batch: forward, backward, the optimizer's
step (AdamW's state included), nothing kept. Prints one JSON line: seconds
per step and the process's peak RSS.

    python benchmarks/plain.py benchmarks/scaling/gpt2-124m.yaml [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from gaverify.allocator import keep_freed_memory
from gaverify.backends.setup import Setup
from gaverify.model.optim import build_optimizer
from gaverify.spec.loading import load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", type=Path)
    parser.add_argument("overrides", nargs="*", help="key=value, as gaverify run --set")
    args = parser.parse_args()
    keep_freed_memory()  # as `gaverify run` does, so both allocate alike
    import torch

    scenario = load_scenario(args.scenario, args.overrides)
    setup = Setup(scenario, guard=False)
    model = setup.built.model
    optimizer = build_optimizer(scenario.optimizer, [p for p in model.parameters()
                                                     if p.requires_grad])  # fmt: skip
    times = []
    with torch.enable_grad():
        for samples in setup.steps:
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            model(**setup.collate(samples)).loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    json.dump({"step_s": times, "peak_rss_mib": peak}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
