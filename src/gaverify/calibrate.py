"""`tolerance: auto`: tolerances measured from the run's own rounding noise.

Before the real run, gaverify's own correct loop runs the same scenario
(model, data, dtype, precision, checkpointing, compile, device, mode, steps,
every N) with its micro-batches backpropagated in reverse order (the
`fixed-reordered` variant). It computes
the same mathematics as the full batch in a different order, so its
divergence from the full batch is rounding and nothing else: the noise
floor. Each unset tolerance becomes `factor` times the worst noise of that
metric (never below a few units of the run's precision, FLOOR), so a correct
loop does not fail on rounding and a wrong one is judged by what this run's
arithmetic can actually resolve. A metric the correct loop never shows (the
weight of an MoE router loss; param_max_abs in lockstep) keeps its precision's
default. Explicit tolerances are kept as given.
"""

from __future__ import annotations

import math

from gaverify.backends import load_backend
from gaverify.errors import GaverifyError
from gaverify.measure.results import METRICS, Calibration
from gaverify.progress import Progress
from gaverify.spec.backends import CALIBRATION
from gaverify.spec.schema import Scenario, Tolerance
from gaverify.spec.tolerances import DEFAULT_TOLERANCES, FLOOR, profile

METHOD = "fixed-reordered, gaverify's correct loop with micro-batches reversed"


def calibrate(scenario: Scenario, progress: Progress | None = None) -> tuple[Scenario, Calibration]:
    """The scenario with every unset tolerance measured, and how it was set."""
    never = Tolerance(**{m: math.inf for m in METRICS})  # no diagnosis fits while calibrating
    probe = scenario.model_copy(
        update={
            "backend": CALIBRATION[0],
            "variants": [CALIBRATION[1]],
            "expect": None,
            "variant_expect": {},
            "tolerance": never,
        }
    )
    trace = load_backend(probe.backend)(probe, progress or Progress())
    noise: dict[str, float] = {}
    for m in trace.measurements:
        for metric, value in m.metric_values().items():
            if not math.isfinite(value):
                raise GaverifyError(
                    f"tolerance: auto: gaverify's correct loop gave a non-finite {metric} at "
                    f"step {m.step} N={m.n}, so there is no noise floor to calibrate on; "
                    "set the tolerances explicitly"
                )
            noise[metric] = max(noise.get(metric, 0.0), value)
    given, factor = scenario.tolerance, scenario.tolerance.factor
    kind = profile(scenario.dtype, scenario.precision)
    floor, defaults = FLOOR[kind], DEFAULT_TOLERANCES[kind]
    resolved = {
        # a metric the correct loop never has (an MoE router loss's weight) keeps its default
        metric: defaults[metric] if metric not in noise
        else _round_up(max(factor * noise[metric], floor[metric]))
        for metric in given.limits()
    }  # fmt: skip
    tolerance = given.filled(resolved, auto=True)
    calibration = Calibration(method=METHOD, factor=factor, noise=noise, floor=floor)
    return scenario.model_copy(update={"tolerance": tolerance}), calibration


def _round_up(x: float) -> float:
    """x rounded up to two significant digits, so reports show the tolerance in use."""
    if x == 0 or not math.isfinite(x):
        return x
    exponent = math.floor(math.log10(x)) - 1
    return float(f"{math.ceil(x / 10**exponent)}e{exponent}")
