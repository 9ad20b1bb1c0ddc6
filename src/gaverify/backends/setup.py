"""Preparing a run: everything built once before any training pass.

A Setup holds the model (and tokenizer), the task, the resolved variants
(by the backend's resolver; user code imported here, and noted), the samples of every step, and the
collator that turns samples into (micro-)batches. Backends share it, so every
backend trains on exactly the same data in the same order. The model gets the
scenario's precision, checkpointing and compile settings here, except those
the backend's engine applies through its own switches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from gaverify.accumulation.declaration import Declaration
from gaverify.accumulation.variants import resolve
from gaverify.backends import memory
from gaverify.data.collate import Batch, collate
from gaverify.data.sources import batch_indices, load_samples
from gaverify.data.text import ByteEncoder, TokenizerEncoder
from gaverify.errors import GaverifyError
from gaverify.measure.compare import trainable_names
from gaverify.model.build import Built, build_model, resolve_device
from gaverify.model.calls import takes
from gaverify.model.precision import apply_settings
from gaverify.spec.backends import BACKENDS
from gaverify.spec.schema import Scenario
from gaverify.tasks.heads import TASKS, Sample


class Setup:
    """Everything a run needs, built once: model, task, variants, and the
    samples of every step with the collator that batches them."""

    def __init__(
        self,
        scenario: Scenario,
        resolve_variant: Callable[[str, list[Path]], Any] = resolve,
        guard: bool = True,
    ):
        self.scenario = scenario
        self.estimate: memory.Estimate | None = None  # the guard's, when it ran
        self.device = resolve_device(scenario.device)
        self.task = TASKS.get(scenario.model.task)
        # where user code named by import path is looked up (the scenario's folder)
        self.search = search = [scenario.source_dir] if scenario.source_dir else []
        self.variants = {name: resolve_variant(name, search) for name in scenario.variants}
        processes = scenario.distributed.processes or 1
        self.built: Built = build_model(
            scenario.model,
            self.task,
            scenario.dtype,
            self.device,
            scenario.seed,
            scenario.source_dir,
            partial(self._guard, processes) if guard else None,  # one process checks for all
        )
        switches = BACKENDS.get(scenario.backend).switches
        self.built.notes += apply_settings(
            self.built.model,
            self.device,
            "32" if "precision" in switches else scenario.precision,
            scenario.model.gradient_checkpointing and "gradient_checkpointing" not in switches,
            None if "compile" in switches else scenario.model.compile,
        )
        for name, variant in self.variants.items():  # those that need the model (loss-type)
            if isinstance(variant, Declaration) and variant.build:
                self.variants[name] = variant.build(scenario, search, self.built.model)
        self.notes = [*self.built.notes, *scenario.notes]
        self.steps = self._steps()
        data = scenario.data
        keep_positions = takes(self.built.model, "position_ids")
        if data.packed and not keep_positions:
            raise GaverifyError(
                "data.packed: the model's forward takes no position_ids, so packed sequences "
                "would attend to each other"
            )
        if self.task.sees_padding and not data.pad_to_max and not data.packed:
            self.notes.append(
                f"data: {self.task.name} scores padded positions too, so padding each "
                "micro-batch to its own longest sample changes every sample's loss; "
                "data.pad_to_max: true pads as padding='max_length' does"
            )
        if data.padding == "left" and not keep_positions:
            self.notes.append(
                "data: left padding without position_ids (the model takes none): positions "
                "shift with padding unless the model's positions are relative"
            )
        self.collate = partial(
            _collate_keeping,
            keep_positions,
            task=self.task,
            pad_id=self.built.pad_id(),
            padding=data.padding,
            packed=data.packed,
            device=self.device,
            width=data.length.max if data.pad_to_max else None,
        )
        self._check_items()
        # what the report says a counted item is, and how dropout is kept off: a
        # backend whose engine counts its own items (TRL) says otherwise
        self.unit: str = self.task.unit
        self.dropout_off = "model in eval mode"
        for variant in self.variants.values():
            if variant.origin:
                self.notes.append(f"user code ran: {variant.origin}")

    def _guard(self, processes: int, model: Any) -> None:
        """The memory guard (memory.check), keeping its estimate: it chose the plan."""
        self.estimate = memory.check(self.scenario, model, device=self.device, processes=processes)

    @property
    def plan(self) -> str:
        """The lockstep plan this run follows (backends/memory.py): the one the
        guard chose or the scenario forced; shared when nothing chose."""
        chosen = self.estimate.plan if self.estimate else None
        forced = self.scenario.memory_plan
        return chosen or (forced if forced != "auto" else "shared")

    def _steps(self) -> list[list[Sample]]:
        scenario, task, model = self.scenario, self.task, self.built.model
        space = self.built.token_space(task, scenario.model)
        length = scenario.data.length
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if limit and limit > 0 and length.max > limit:  # XLNet's -1: no limit
            raise GaverifyError(
                f"data.length.max: {length.max} is longer than the model's "
                f"max_position_embeddings ({limit}); lower it or raise model.config"
            )
        if self.built.tokenizer is not None:
            encoder = TokenizerEncoder(self.built.tokenizer, length.max)
        else:
            encoder = ByteEncoder(length.max)
            if scenario.data.source != "synthetic" and space.vocab_size < 256:
                raise GaverifyError(
                    f"model.config.vocab_size: reading text without a tokenizer uses bytes, "
                    f"which needs a vocabulary of 256 or more, not {space.vocab_size}"
                )
        samples, where = load_samples(scenario, task, space, encoder, scenario.source_dir)
        self.notes.append(
            f"data: {where}; tokens: {encoder.name}"
            if scenario.data.source != "synthetic"
            else f"data: {where}"
        )
        order = batch_indices(len(samples), scenario.batch.size, scenario.steps, scenario.seed)
        return [[samples[i] for i in idx] for idx in order]

    def _check_items(self) -> None:
        """A full batch with nothing to count has a 0/0 loss: no reference to
        compare with, so it is the data's problem, not a verdict. (A
        micro-batch with nothing to count is real: naive gives NaN there.)"""
        for step, samples in enumerate(self.steps, start=1):
            if self.task.count_items(self.collate(samples)["labels"]) == 0:
                raise GaverifyError(
                    f"data: step {step}'s batch of {len(samples)} samples has no "
                    f"{self.task.unit} to count (every label is -100 or padding), so its loss "
                    "is 0/0; give samples with labels, or drop the empty ones"
                )

    @property
    def parameters(self) -> int:
        """The model's parameter count."""
        return sum(p.numel() for p in self.built.model.parameters())

    @cached_property
    def parameter_names(self) -> list[str]:
        """Names of the trainable parameters, in gradient order."""
        return trainable_names(self.built.model)

    def run_notes(self) -> list[str]:
        """What every report of this run should say about its set-up."""
        scenario = self.scenario
        notes = [
            f"task: {self.task.name} (items: {self.unit}), {self.parameters:,} parameters",
            *self.notes,
            "dropout: on (kept by model.dropout: true; full and micro-batch runs use "
            "different masks)"
            if scenario.model.dropout
            else f"dropout: off ({self.dropout_off}, so full and micro-batch passes are "
            "comparable)",
        ]
        if scenario.loss.label_smoothing:
            notes.append(f"loss: label smoothing {scenario.loss.label_smoothing} in every run")
        return notes

    def micro_batches(self, samples: list[Sample], n: int) -> list[Batch]:
        """`n` micro-batches of consecutive samples, each collated on its own."""
        size = len(samples) // n
        return [self.collate(samples[i * size : (i + 1) * size]) for i in range(n)]

    def item_counts(self, n: int) -> list[list[int]]:
        """Per step, the counted items of each of its n micro-batches."""
        return [
            [self.task.count_items(mb["labels"]) for mb in self.micro_batches(samples, n)]
            for samples in self.steps
        ]


def _collate_keeping(keep_positions: bool, samples: list[Sample], **options) -> Batch:
    batch = collate(samples, **options)
    if not keep_positions:
        batch.pop("position_ids", None)
    return batch
