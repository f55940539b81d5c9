"""Memory a run takes: the peak above what was held when it started, on a GPU or on a CPU."""

from __future__ import annotations

import ctypes
import gc
import threading

import psutil
import torch

try:  # glibc: hands freed heap memory back to the system (:class:`PeakMemory`)
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # macOS, musl: no malloc_trim; the peaks may then understate runs after the first
    _LIBC = None


class PeakMemory:
    """Peak memory of training while the ``with`` block runs, above what was held when it started, in
    bytes (``.peak`` after the block): on a GPU, what torch allocated on it; on a CPU, this process's
    resident memory, sampled every 50 ms. Memory freed by earlier runs is handed back to the system
    first (glibc's ``malloc_trim``), so that reusing it does not hide a run's growth."""

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.peak, self._stop = 0, threading.Event()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        self._process = psutil.Process()
        self._start = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss - self._start)

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() - self._start
            return
        self._stop.set()
        self._thread.join()
