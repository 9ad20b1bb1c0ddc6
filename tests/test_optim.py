"""Optimizers as a scenario builds them: usable as torch's own, and a learning
rate the parameters' dtype cannot hold is a usage error."""

import pytest
import torch

from gaverify.errors import GaverifyError
from gaverify.model.optim import build_optimizer
from gaverify.spec.sections import OptimizerSpec


def _built(**spec):
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3)
    return param, build_optimizer(OptimizerSpec(**spec), [param])


def test_an_lr_scheduler_can_wrap_the_step_and_the_step_still_updates():
    param, optimizer = _built(name="sgd", lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    optimizer.step()
    scheduler.step()
    assert torch.equal(param.detach(), torch.full((3,), 0.5))


def test_an_lr_that_overflows_the_dtype_names_optimizer_lr():
    _, optimizer = _built(lr=1e38)
    with pytest.raises(GaverifyError, match=r"optimizer.lr: 1e\+38 overflows"):
        optimizer.step()
