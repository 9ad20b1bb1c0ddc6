"""The reference run's tape: trajectory mode's reference, kept on disk.

Trajectory mode compares every (N, variant) run, step by step, with a
full-batch run of its own. Training them side by side held a model and
optimizer copy per run, so memory grew with |N| x |variants| (17.5 GiB for
GPT-2 small's six runs). Instead the reference trains first and records, for
every step, its gradient and its parameters after the update on a tape; then
each run trains in turn on the same model, reset to the weights it started
from, and is compared with the tape tensor by tensor. One model and
optimizer are alive at a time, plus one tensor read back; the tape costs
disk (2 x parameters x steps per reference), not memory, and lives in an
unlinked temporary file, so nothing is left behind even if the run is killed.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

# where a recorded tensor lies: (byte offset, shape, dtype, device), or None
Slot = tuple[int, tuple[int, ...], Any, Any] | None


class Recorded(Sequence):
    """A recorded tensor list, read back from the tape one tensor at a time
    (each read is a fresh tensor on the tensor's device; None stays None)."""

    def __init__(self, tape: Tape, slots: list[Slot]):
        self._tape, self._slots = tape, slots

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._tape.load(self._slots[index])

    def __iter__(self) -> Iterator[Any]:
        for slot in self._slots:
            yield self._tape.load(slot)


class Tape:
    """Tensor lists written once under a key and read back lazily."""

    def __init__(self, directory: str | None = None):
        # closed by close() or the with-block that owns the tape
        self._file = tempfile.TemporaryFile(dir=directory, prefix="gaverify-tape-")  # noqa: SIM115
        self._end = 0
        self._index: dict[Hashable, list[Slot]] = {}
        self.losses: dict[Hashable, float] = {}  # scalars recorded alongside

    def write(self, key: Hashable, tensors: Sequence[Any]) -> None:
        """Record `tensors` (None entries allowed) under `key`."""
        import torch

        slots: list[Slot] = []
        for tensor in tensors:
            if tensor is None:
                slots.append(None)
                continue
            data = tensor.detach().contiguous().cpu()
            raw = data.reshape(-1).view(torch.uint8).numpy()
            os.pwrite(self._file.fileno(), memoryview(raw), self._end)
            slots.append((self._end, tuple(data.shape), data.dtype, tensor.device))
            self._end += raw.nbytes
        self._index[key] = slots

    def read(self, key: Hashable) -> Recorded:
        """The tensors recorded under `key`, read as they are used."""
        return Recorded(self, self._index[key])

    def load(self, slot: Slot) -> Any:
        """One recorded tensor, read into a fresh tensor on its device."""
        if slot is None:
            return None
        import torch

        offset, shape, dtype, device = slot
        out = torch.empty(math.prod(shape) * dtype.itemsize, dtype=torch.uint8)
        view, done = memoryview(out.numpy()), 0
        while done < len(view):  # pread may return less than asked on big reads
            done += os.preadv(self._file.fileno(), [view[done:]], offset + done)
        return out.view(dtype).reshape(shape).to(device)

    @property
    def size(self) -> int:
        """Bytes recorded so far."""
        return self._end

    def close(self) -> None:
        """Drop the tape (its file is unlinked already; this frees the disk)."""
        self._file.close()

    def __enter__(self) -> Tape:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def state_tensors(model: Any) -> list[Any]:
    """Everything training may change in `model`: parameters, then buffers."""
    return [*model.parameters(), *model.buffers()]


def restore(model: Any, saved: Sequence[Any]) -> None:
    """Put the tensors recorded from state_tensors(model) back, in place
    (so a compiled or autocast-bound forward keeps working), and drop .grad."""
    import torch

    with torch.no_grad():
        for tensor, value in zip(state_tensors(model), saved, strict=True):
            tensor.copy_(value)
    for p in model.parameters():
        p.grad = None
