"""Tolerances: the largest divergence each metric may show and still pass.

Unset tolerances come from the scenario's dtype (DEFAULT_TOLERANCES); how
these defaults were measured is in docs/tolerances.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Default tolerances by dtype: well above the rounding noise of a correct loop
# and far below the error of the mean-of-means bug on variable-length data
# (both measured; see docs/tolerances.md). An explicit value always wins.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {
        "loss_rel": 1e-10,
        "grad_norm_rel": 1e-10,
        "grad_rel_l2": 1e-9,
        "cosine_distance": 1e-12,
        "param_max_abs": 1e-9,
    },
    "float32": {
        "loss_rel": 1e-5,
        "grad_norm_rel": 1e-4,
        "grad_rel_l2": 1e-4,
        "cosine_distance": 1e-6,
        "param_max_abs": 1e-4,
    },
    "bfloat16": {
        "loss_rel": 2e-2,
        "grad_norm_rel": 5e-2,
        "grad_rel_l2": 5e-2,
        "cosine_distance": 5e-3,
        "param_max_abs": 5e-2,
    },
}


class Tolerance(BaseModel):
    """Largest allowed divergence per metric; unset ones come from the dtype."""

    model_config = ConfigDict(extra="forbid")

    loss_rel: float | None = Field(None, ge=0)
    grad_norm_rel: float | None = Field(None, ge=0)
    grad_rel_l2: float | None = Field(None, ge=0)
    cosine_distance: float | None = Field(None, ge=0, description="1 - cosine similarity")
    param_max_abs: float | None = Field(None, ge=0, description="trajectory mode only")
