"""A RunResult as a PNG: loss curves and divergence per step (matplotlib).

Left, the loss per step: the full batch in black, each (variant, N) in its
own line. Right, the gradient's relative L2 divergence from the full batch
per step on a log scale, with the tolerance dashed: a correct loop sits on
the rounding floor, a wrong one orders of magnitude above it. matplotlib is
the `plot` extra and is imported only here, when a plot is asked for.
"""

from __future__ import annotations

import io
from collections import defaultdict

from gaverify.errors import GaverifyError
from gaverify.measure.results import RunResult
from gaverify.report.table import settings_text

# log scales cannot show 0; an exact match is drawn at this floor
_FLOOR = 1e-17


def plot_png(result: RunResult) -> bytes:
    """The PNG image of `result`."""
    try:
        import matplotlib
    except ImportError:
        raise GaverifyError("--plot needs matplotlib: pip install 'gaverify[plot]'") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    lines: dict[tuple[str, int], list] = defaultdict(list)
    full: dict[int, float] = {}
    for row in result.rows:
        lines[(row.variant, row.n)].append(row)
        full[row.step] = row.loss_full
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    steps = sorted(full)
    left.plot(steps, [full[s] for s in steps], "k-", marker="s", lw=2.5, label="full batch")
    for (variant, n), rows in lines.items():
        label = f"{variant.rpartition(':')[2]} N={n}"
        xs = [r.step for r in rows]
        failed = any(r.verdict != "pass" for r in rows)
        style = "-" if failed else "--"
        (line,) = left.plot(xs, [r.loss_ga for r in rows], style, marker="o", ms=3, label=label)
        right.semilogy(
            xs, [max(r.grad_rel_l2, _FLOOR) for r in rows], style, marker="o", ms=3,
            color=line.get_color(), label=label,
        )  # fmt: skip
    tol = result.tolerance.get("grad_rel_l2")
    if tol:
        right.axhline(tol, color="grey", ls=":", label=f"tolerance {tol:.1e}")
    left.set(title="loss per step", xlabel="optimizer step", ylabel="logged loss")
    right.set(
        title="gradient divergence from the full batch",
        xlabel="optimizer step",
        ylabel="|g GA - g full| / |g full|",
    )
    for ax in (left, right):
        ax.set_xticks(steps)
        ax.grid(alpha=0.3)
    right.legend(fontsize=8, loc="best")
    left.legend(fontsize=8, loc="best")
    sc = result.scenario
    outcome = "OK" if result.ok else "FAILED"
    fig.suptitle(
        f"{sc['name']}: {outcome} (backend {sc['backend']}, {sc['mode']}, "
        f"B={sc['batch']['size']}, {settings_text(result)} on {result.device}); "
        "solid: failed, dashed: passed",
        fontsize=10,
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
