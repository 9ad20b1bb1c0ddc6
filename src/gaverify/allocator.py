"""Keeping freed memory for reuse: the C allocator setting `gaverify run` uses.

glibc returns every allocation above a threshold (at most 32 MiB) to the
operating system when it is freed. A training pass frees and reallocates
tensors of hundreds of MiB (GPT-2's logits at batch 8 x 128 are 200 MiB) on
every pass, and each reallocation page-faults its memory in afresh: measured
on 2 CPUs, the kernel took a fifth of a GPT-2-small run's CPU time. Telling glibc
to serve everything from its heap and keep what is freed (mallopt: no mmap,
no trimming) turns that into reuse. The cost is that freed memory is not given
back until the process ends, which for a one-shot command is no cost.

Only the `gaverify run` command applies it (its process is gaverify's own;
the library never changes its host's allocator). GAVERIFY_MALLOC=system
leaves the allocator alone. Not glibc (macOS, musl): nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # from glibc's malloc.h
KEEP = 2**31 - 1  # the largest trim threshold mallopt takes: keep up to 2 GiB free

_state = "system defaults"


def keep_freed_memory() -> str:
    """Apply the setting if this is glibc and the user did not opt out.
    Returns (and remembers, for `describe`) what was done."""
    global _state
    if os.environ.get("GAVERIFY_MALLOC", "").lower() == "system":
        _state = "system defaults (GAVERIFY_MALLOC=system)"
    elif platform.libc_ver()[0] != "glibc":
        _state = "system defaults (not glibc)"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        kept = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, KEEP) == 1
        _state = "glibc, freed memory kept for reuse" if kept else "system defaults (refused)"
    return _state


def describe() -> str:
    """The allocator setting of this process, for the environment report."""
    return _state
