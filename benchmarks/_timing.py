"""Wall-clock timing shared by every benchmark: device-synchronised milliseconds and round-robin rounds.

No transformers import here, so that `bench_losses.py` stays a torch-only script.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on CPU), so that wall time covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(run: Callable[[], object], device: torch.device | str) -> float:
    """Milliseconds of `run()`, device work included."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return 1e3 * (time.perf_counter() - start)


def round_robin(
    cases: dict[str, list[Callable[[], object]]], device: torch.device | str, warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Milliseconds of each case per timed round; round r runs `cases[name][r % len]` for every name.

    The order of the cases rotates by one each round, so that no case always runs first, and
    machine drift hits every case alike. The first `warmup` rounds are not recorded.
    """
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            runs = cases[name]
            elapsed = timed_ms(runs[round_index % len(runs)], device)
            if round_index >= warmup:
                times[name].append(elapsed)
    return times
