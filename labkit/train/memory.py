"""Keep freed memory in the process during training (glibc only).

A training step allocates and frees the same large buffers (activations, fp32 logits, gradients) every step. glibc
hands blocks above its mmap threshold back to the kernel on ``free`` and maps fresh pages on the next ``malloc``, so
each step pays page faults for every such block: on the 2-core course CPU a third of a step's time was kernel time.
``reuse_freed_memory()`` raises the mmap and trim thresholds (``mallopt``) so the heap keeps those pages for the next
step — the effect of ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, set from inside a running process (a
notebook kernel, papermill). Elsewhere (macOS, Windows, musl) it does nothing. bench/bench_train.py measures it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
# Blocks below 64 MiB (activations, gradients, most attention scores) come from the heap and are reused step after
# step; larger ones (the fp32 logits) are still mapped and unmapped, so a heap fragmented by rows of varying shape
# cannot grow without bound (with a 1 GiB threshold the course run's resident memory grew to 17.9 GB, 8 GB without).
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB free at the top of the heap
TOP_PAD = 64 << 20  # grow the heap 64 MiB at a time


def reuse_freed_memory() -> bool:
    """Tune glibc's allocator for repeated large allocations; True when it was applied (Linux with glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(opt, value) == 1 for opt, value in
               ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
