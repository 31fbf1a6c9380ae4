"""Process-level speed settings that no config field can express."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Stop glibc from handing large activation buffers back to the OS after every step.

    By default glibc serves big allocations with mmap and unmaps them on free, so each training step pays
    for fresh, zeroed pages: about 25% of a CPU step on the 2-core machines we measured (FINDINGS.md).
    Raising the mmap and trim thresholds keeps that memory in the heap for reuse. This is what
    ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` do, but set from inside the process.
    Returns False where it does not apply (not Linux/glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) and mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    return bool(ok)
