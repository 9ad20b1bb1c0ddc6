"""Tolerances: the largest divergence each metric may show and still pass.

Unset tolerances come from the scenario's dtype (DEFAULT_TOLERANCES), or,
with `tolerance: auto`, from the run's own rounding noise (calibrate.py);
how both were measured is in docs/tolerances.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# tolerance: auto sets each unset tolerance this many times above the noise
# of a second correct loop (see docs/tolerances.md for the measurements).
AUTO_FACTOR = 10.0

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
        "extra_weight_rel": 1e-3,
    },
    "float32": {
        "loss_rel": 1e-5,
        "grad_norm_rel": 1e-4,
        "grad_rel_l2": 1e-4,
        "cosine_distance": 1e-6,
        "param_max_abs": 1e-4,
        "extra_weight_rel": 1e-2,
    },
    "bfloat16": {
        "loss_rel": 2e-2,
        "grad_norm_rel": 5e-2,
        "grad_rel_l2": 5e-2,
        "cosine_distance": 5e-3,
        "param_max_abs": 5e-2,
        "extra_weight_rel": 5e-2,
    },
}


class Tolerance(BaseModel):
    """Largest allowed divergence per metric; unset ones come from the dtype."""

    model_config = ConfigDict(extra="forbid")

    auto: bool = Field(
        False,
        description="calibrate unset tolerances from this run's rounding noise "
        "(`tolerance: auto` is short for {auto: true})",
    )
    factor: float = Field(AUTO_FACTOR, gt=1, description="with auto: tolerance = factor x noise")

    loss_rel: float | None = Field(None, ge=0)
    grad_norm_rel: float | None = Field(None, ge=0)
    grad_rel_l2: float | None = Field(None, ge=0)
    cosine_distance: float | None = Field(None, ge=0, description="1 - cosine similarity")
    param_max_abs: float | None = Field(None, ge=0, description="trajectory mode only")
    extra_weight_rel: float | None = Field(
        None, ge=0, description="|w - 1|, w the weight of an MoE router loss (models with one)"
    )

    @model_validator(mode="before")
    @classmethod
    def _auto_shorthand(cls, value: Any) -> Any:
        return {"auto": True} if value == "auto" else value

    def limits(self) -> dict[str, float]:
        """Metric -> tolerance (all set once the scenario is resolved)."""
        return self.model_dump(exclude={"auto", "factor"})
