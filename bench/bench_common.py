"""bench_common.py - what the PyTorch benchmark scripts share: timing and reporting, printing
the same "name value unit" lines as the Lua scripts (bench/common.lua)."""
import time

clock = time.perf_counter


def report(name, value, unit):
    print("%s %.4g %s" % (name, value, unit), flush=True)


def best(iters, trials, fn):
    """Best (smallest) seconds per call of fn over `trials` trials of `iters` calls."""
    t = float("inf")
    for _ in range(trials):
        t0 = clock()
        for _ in range(iters):
            fn()
        t = min(t, (clock() - t0) / iters)
    return t
