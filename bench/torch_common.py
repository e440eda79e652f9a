"""Helpers shared by the PyTorch halves of the benchmarks (engine_torch.py, threads_torch.py)."""
import ctypes
import json
import time

import torch


def _openblas():
    """The OpenBLAS that libtorch loaded (libblas.so.3 resolves to the same library), or None."""
    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_parallel  # noqa: B018 - raises AttributeError when not OpenBLAS
            return lib
        except (OSError, AttributeError):
            continue
    return None


_BLAS = _openblas()


def blas_info():
    """Like mmoco's blasInfo(): which OpenBLAS build is live and its thread count."""
    if _BLAS is None:
        return {"vendor": "other"}
    _BLAS.openblas_get_config.restype = ctypes.c_char_p
    parallel = {0: "serial", 1: "pthread", 2: "openmp"}.get(_BLAS.openblas_get_parallel(), "unknown")
    return {
        "vendor": "openblas",
        "parallel": parallel,
        "threads": _BLAS.openblas_get_num_threads(),
        "config": _BLAS.openblas_get_config().decode(),
    }


def set_threads(n, blas_threads=None):
    """torch.set_num_threads(n); the pthread OpenBLAS keeps its own pool, so it is set too
    (to blas_threads, default n), which is what mmoco's setNumThreads does."""
    torch.set_num_threads(n)
    if _BLAS is not None and _BLAS.openblas_get_parallel() == 1:
        _BLAS.openblas_set_num_threads(blas_threads or n)


def now_ms():
    return time.perf_counter() * 1e3


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def emit(**row):
    print(json.dumps(row), flush=True)


def machine_busy_ms():
    """CPU time used by the whole machine so far, in ms (see machineBusyMs in common.ts)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 10
    except (OSError, IndexError, ValueError):
        return float("nan")


class Foreign:
    """CPU that other processes used while the block ran, in % of one core."""

    def __enter__(self):
        self.w0, self.b0, self.c0 = now_ms(), machine_busy_ms(), time.process_time() * 1e3
        return self

    def __exit__(self, *exc):
        wall = now_ms() - self.w0
        busy = machine_busy_ms() - self.b0
        own = time.process_time() * 1e3 - self.c0
        self.wall_ms, self.own_ms = wall, own
        self.pct = max(0.0, (busy - own) / wall * 100)
