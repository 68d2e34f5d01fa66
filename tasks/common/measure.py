"""Measuring helpers every task may use: seconds per call of a device operation, calibrated as
`timeit.autorange` is, and the process's peak resident memory over a block (a CPU has no per-run
counter to reset). Imported when a run starts (it imports torch).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch


def time_per_call(
    fn: Callable[[], object], device: torch.device, warmup: int, repeats: int, min_repeat_s: float
) -> list[float]:
    """Seconds per call of `fn`, one value per repetition.

    The number of calls per repetition is calibrated (doubling, as `timeit.autorange` does) so a
    repetition lasts at least `min_repeat_s`; that keeps timer resolution and launch overhead out
    of the result for fast operations.
    """
    for _ in range(warmup):
        fn()
    _synchronize(device)
    calls = 1
    while True:
        elapsed = _timed_calls(fn, device, calls)
        if elapsed >= min_repeat_s or calls >= 2**20:
            break
        calls *= 2
    return [_timed_calls(fn, device, calls) / calls for _ in range(repeats)]


def _timed_calls(fn: Callable[[], object], device: torch.device, calls: int) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    begin = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - begin


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakResidentMemory:
    """The process's peak resident memory while the block runs, sampled every 20 ms.

    On a CPU there is no per-run counter to reset (`ru_maxrss` only ever grows, so a second seed
    would inherit the first's peak); a sampler sees this run alone, harness included.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak_bytes = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __enter__(self) -> PeakResidentMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
