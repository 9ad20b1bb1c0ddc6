"""The trajectory tape: tensors round-trip exactly, and runs replayed in turn
from the tape start where the model started."""

import os

import torch

from gaverify.backends.reference import run
from gaverify.backends.tape import Tape, restore, state_tensors
from gaverify.progress import Progress
from tests.conftest import small_scenario


def test_tensors_come_back_bit_for_bit_in_their_dtype_and_shape():
    tensors = [torch.randn(3, 5), None, torch.randn(7).to(torch.bfloat16), torch.arange(4.0)]
    with Tape() as tape:
        tape.write("a", tensors)
        tape.write("b", [torch.ones(2, dtype=torch.float64)])
        back = tape.read("a")
        assert len(back) == 4 and back[1] is None
        for before, after in zip(tensors, back, strict=True):
            if before is not None:
                assert after.dtype == before.dtype and torch.equal(after, before)
        assert torch.equal(tape.read("b")[0], torch.ones(2, dtype=torch.float64))
        assert tape.size == (15 + 4) * 4 + 7 * 2 + 2 * 8


def test_the_tape_leaves_no_file_behind(tmp_path):
    with Tape(str(tmp_path)) as tape:
        tape.write("x", [torch.zeros(1000)])
        assert os.listdir(tmp_path) == []  # unlinked from the start


def test_restore_puts_the_first_weights_back_in_place():
    model = torch.nn.Linear(4, 2)
    first = [t.detach().clone() for t in state_tensors(model)]
    weight = model.weight
    with Tape() as tape:
        tape.write("start", state_tensors(model))
        model(torch.ones(1, 4)).sum().backward()
        with torch.no_grad():
            model.weight.add_(1.0)
        restore(model, tape.read("start"))
    assert model.weight is weight and model.weight.grad is None
    assert all(torch.equal(a, b) for a, b in zip(first, state_tensors(model), strict=True))


def _rows(trace):
    return {(m.step, m.n, m.variant): m for m in trace.measurements}


def test_each_run_replayed_in_turn_matches_it_run_alone():
    # the second run starts from the tape's first weights, not from the first run's last
    both = _rows(run(small_scenario(mode="trajectory", batch={"accumulation": [2, 4]},
                                    optimizer={"lr": 0.05}), Progress()))  # fmt: skip
    for variant in ("naive", "fixed"):
        for n in (2, 4):
            alone = _rows(run(small_scenario(mode="trajectory", batch={"accumulation": [n]},
                                             optimizer={"lr": 0.05}, variants=[variant]),
                              Progress()))  # fmt: skip
            for key, row in alone.items():
                assert both[key] == row, key
    assert both[(2, 2, "naive")].param_max_abs > 0  # the runs did drift apart
