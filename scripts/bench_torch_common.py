"""bench_torch_common.py: what the PyTorch halves of the benchmarks (scripts/bench_torch_*.py)
share with bench/bench_util.h, so both sides measure alike: the thread count (AQA_BENCH_THREADS,
set by the C program, else OMP_NUM_THREADS, else 2), the clock (AQA_BENCH_CLOCK=cpu: CPU seconds
of the process, time.process_time, instead of wall time) and the best-of-n timing loop."""
import os
import time

import torch


def threads():
    """The thread count the aqa side runs with."""
    return int(os.environ.get("AQA_BENCH_THREADS") or os.environ.get("OMP_NUM_THREADS") or 2)


def setup():
    """Gives torch the thread count; returns the clock (seconds)."""
    torch.set_num_threads(threads())
    return clock


def clock():
    """Seconds on the benchmark clock: wall time, or CPU time with AQA_BENCH_CLOCK=cpu."""
    return time.process_time() if os.environ.get("AQA_BENCH_CLOCK") == "cpu" else time.perf_counter()


def best(fn, reps=5, warm=1):
    """Best time of fn over reps runs after warm runs, in seconds."""
    for _ in range(warm):
        fn()
    t = 1e30
    for _ in range(reps):
        t0 = clock()
        fn()
        t = min(t, clock() - t0)
    return t
