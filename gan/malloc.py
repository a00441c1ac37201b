"""Keep freed memory in the process on glibc, so that training steps stop paying page faults.

A CPU training step allocates and frees many tensors of several MB. glibc serves blocks that large with
``mmap`` and returns them with ``munmap``, and trims the heap top after frees, so every step maps fresh
pages and the kernel zeroes them on first touch: tens of thousands of page faults per ``cpu64`` step on the
project machine (``resource.getrusage`` ``ru_minflt``). Raising the mmap threshold to its maximum (32 MiB on
64-bit) and the trim threshold out of reach keeps those blocks in the heap for reuse. The process then holds
on to its peak memory, which a training process reaches anyway.

Only glibc has ``mallopt``; elsewhere (musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper bound on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes (an int): in effect, never trim


def retain_freed_memory() -> bool:
    """Set glibc's malloc to reuse large freed blocks instead of unmapping them; True where it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    if not ok:
        log.debug("mallopt refused the settings; malloc keeps its defaults")
    return ok
