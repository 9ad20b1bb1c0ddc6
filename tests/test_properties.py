"""Property tests: the accumulation maths holds for any lengths, padding and N."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaverify.backends.reference import accumulate
from gaverify.collate import collate
from gaverify.models import build_model
from gaverify.scenario import ModelSpec
from gaverify.tasks import TASKS
from gaverify.variants import VARIANTS
from tests.conftest import SMALL_MODEL

causal = TASKS.get("causal-lm")
MODEL = build_model(ModelSpec(config=SMALL_MODEL), causal, "float64", "cpu", 0, None).model


def _grad(micro, variant):
    MODEL.zero_grad(set_to_none=True)
    loss, counts = accumulate(MODEL, micro, VARIANTS.get(variant), causal)
    return loss, counts, torch.cat([p.grad.flatten() for p in MODEL.parameters()])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.integers(2, 20), min_size=8, max_size=8),
    n=st.sampled_from([1, 2, 4, 8]),
    padding=st.sampled_from(["right", "left"]),
    packed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fixed_equals_the_full_batch_in_float64(lengths, n, padding, packed, seed):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(1, 97, (k,), generator=g).tolist() for k in lengths]
    samples = [{"input_ids": s, "labels": list(s)} for s in seqs]

    def batches(parts):
        size = len(samples) // parts
        return [
            collate(samples[i * size : (i + 1) * size], causal, 0, padding, packed, "cpu")
            for i in range(parts)
        ]

    full_loss, _, full = _grad(batches(1), "fixed")
    loss, counts, fixed = _grad(batches(n), "fixed")
    assert sum(counts) == sum(k - 1 for k in lengths)
    assert abs(loss - full_loss) <= 1e-12 * abs(full_loss)
    assert ((fixed - full).norm() / full.norm()).item() <= 1e-12
