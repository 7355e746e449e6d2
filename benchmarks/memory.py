"""Peak resident memory of a block of code, sampled from /proc by a background thread.

torch has no allocator statistics on CPU, but glibc serves large blocks with mmap and
returns them to the system on free, so the resident set size follows the live tensors.
By default glibc raises its mmap threshold (up to 32 MB) after frees and then keeps
freed blocks in its heap, hiding them from RSS; :func:`fix_mmap_threshold` pins the
threshold (``mallopt``) so that every block above 64 KiB is mapped and unmapped. That
changes allocation speed, so the benchmark measures memory in a pass after all timings;
and :class:`PeakMemory` first trims the heap (``malloc_trim``) so that freed heap pages
reused by the block are counted as they are touched again. A thread reads
/proc/self/statm every ``interval`` seconds while the block runs (torch kernels release
the GIL) and reports the peak above the level at entry.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")
_M_MMAP_THRESHOLD = -3


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (glibc ``malloc_trim(0)``).

    Afterwards every page a block touches counts in RSS again, even when the block reuses
    heap memory freed earlier, so RSS growth measures what the block needs.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        ctypes.CDLL(libc_name).malloc_trim(0)


def fix_mmap_threshold(threshold_bytes: int = 64 * 1024) -> bool:
    """Serve every allocation above ``threshold_bytes`` by mmap (glibc only); True on success."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))


def resident_bytes() -> int:
    """Current resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakMemory:
    """Context manager: ``peak_bytes`` = max RSS during the block minus RSS at entry."""

    def __init__(self, interval: float = 2e-4) -> None:
        self.interval = interval
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        release_free_memory()
        self._base = resident_bytes()
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, resident_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._peak = max(self._peak, resident_bytes())
        self._stop.set()
        self._thread.join()
        self.peak_bytes = self._peak - self._base
