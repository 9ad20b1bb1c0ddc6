"""Comparing gradients and parameters of two runs, in float64.

Works tensor by tensor so no parameter-sized float64 copy is ever made:
only four running sums (|a|^2, |b|^2, a.b, |a-b|^2) are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GradComparison:
    norm_ref: float
    norm_got: float
    rel_l2: float  # |got - ref| / |ref|
    cosine: float


def trainable(model: Any) -> list[Any]:
    """The parameters that take gradients, in a fixed order."""
    return [p for p in model.parameters() if p.requires_grad]


def gradients(model: Any) -> list[Any]:
    """The model's .grad tensors in parameter order; None where a parameter
    received no gradient (compared as zeros, restored as None)."""
    return [p.grad for p in trainable(model)]


def snapshot(tensors: list[Any]) -> list[Any]:
    """Detached copies of `tensors` (None stays None)."""
    return [None if t is None else t.detach().clone() for t in tensors]


def compare_gradients(ref: list[Any], got: list[Any]) -> GradComparison:
    """Norms, relative L2 error and cosine similarity of two gradient lists."""
    aa = bb = ab = dd = 0.0
    for a, b in zip(ref, got, strict=True):
        if a is None and b is None:
            continue
        a = b.new_zeros(()) if a is None else a.double()
        b = a.new_zeros(()) if b is None else b.double()
        aa += float((a * a).sum())
        bb += float((b * b).sum())
        ab += float((a * b).sum())
        dd += float(((a - b) ** 2).sum())
    na, nb, nd = math.sqrt(aa), math.sqrt(bb), math.sqrt(dd)
    if na > 0:
        rel = nd / na
    else:
        rel = 0.0 if nd == 0 else math.inf
    if na > 0 and nb > 0:
        cosine = ab / (na * nb)
    else:
        cosine = 1.0 if na == nb == 0 else 0.0
    return GradComparison(norm_ref=na, norm_got=nb, rel_l2=rel, cosine=cosine)


def max_abs_difference(a: list[Any], b: list[Any]) -> float:
    """Largest absolute element-wise difference between two tensor lists."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        diff = float((x.detach().double() - y.detach().double()).abs().max()) if x.numel() else 0.0
        if math.isnan(diff):
            return math.nan
        worst = max(worst, diff)
    return worst
