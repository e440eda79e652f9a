#!/usr/bin/env python3
"""PyTorch half of `npm run bench -- engine` (bench/engine.ts starts it).

Usage: engine_torch.py --config JSON --serve
    reads requests {"case": "add"|"matmul1024"|"matmul2048"|"mlp"|"adamw", "threads": n}, one
    JSON per line on stdin, and answers each with one JSON line on stdout:
    {"case", "threads", "value" (median sample), "unit", "samples", "foreignPct"}
    (foreignPct: CPU that other processes used meanwhile, % of one core).
or: engine_torch.py --config JSON --case NAME --threads 1,2   (one answer per thread count)
The JSON is engine.ts's ENGINE_CASES, so both sides use the same sizes and counts.
"""
import argparse
import json
import math
import sys

import torch

from torch_common import Foreign, emit, median, now_ms, set_threads


def add_overhead(c):
    """us per `x + y` on 10-element float32 tensors, in a Python loop."""
    x = torch.randn(c["numel"])
    y = torch.randn(c["numel"])
    n = c["opsPerSample"]

    def sample():
        t0 = now_ms()
        for _ in range(n):
            x + y
        return (now_ms() - t0) * 1e3 / n

    sample()
    sample()
    return [sample() for _ in range(c["samples"])], "us/op"


def matmul_gflops(c):
    n = c["n"]
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    for _ in range(c["warmup"]):
        a @ b
    xs = []
    for _ in range(c["samples"]):
        t0 = now_ms()
        for _ in range(c["repsPerSample"]):
            a @ b
        sec = (now_ms() - t0) / 1e3 / c["repsPerSample"]
        xs.append(2 * n**3 / sec / 1e9)
    return xs, "GFLOP/s"


def mlp_step_ms(c):
    def param(*shape):
        with torch.no_grad():
            return (torch.randn(*shape) / math.sqrt(shape[-1])).requires_grad_(True)

    w1, b1 = param(c["hidden"], c["inFeatures"]), param(c["hidden"])
    w2, b2 = param(c["classes"], c["hidden"]), param(c["classes"])
    params = [w1, b1, w2, b2]
    x = torch.randn(c["batch"], c["inFeatures"])
    target = torch.randint(0, c["classes"], (c["batch"],))
    F = torch.nn.functional

    def step():
        for p in params:
            p.grad = None
        h = F.linear(x, w1, b1).relu()
        loss = F.cross_entropy(F.linear(h, w2, b2), target)
        loss.backward()

    for _ in range(c["warmup"]):
        step()
    xs = []
    for _ in range(c["samples"]):
        t0 = now_ms()
        for _ in range(c["stepsPerSample"]):
            step()
        xs.append((now_ms() - t0) / c["stepsPerSample"])
    return xs, "ms/step"


def vit_small_shapes(c):
    """The parameter shapes of a ViT-S/16, as vitSmallShapes() in engine.ts."""
    d, h = c["dim"], c["dim"] * c["mlpRatio"]
    shapes = [[d, c["inChans"], c["patch"], c["patch"]], [d], [1, 1, d], [1, c["tokens"], d]]
    for _ in range(c["depth"]):
        shapes += [[d], [d], [3 * d, d], [3 * d], [d, d], [d], [d], [d], [h, d], [h], [d, h], [d]]
    shapes += [[d], [d], [c["classes"], d], [c["classes"]]]
    return shapes


def adamw_step_ms(c):
    """ms per optimizer.step() of torch.optim.AdamW(foreach=True) over ViT-S-sized parameters."""
    with torch.no_grad():
        params = [(torch.randn(*s) * 0.02).requires_grad_(True) for s in vit_small_shapes(c)]
    for p in params:
        p.grad = torch.randn(p.shape)
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": c["weightDecay"]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=c["lr"],
        betas=tuple(c["betas"]),
        foreach=True,
    )
    for _ in range(c["warmup"]):
        opt.step()
    xs = []
    for _ in range(c["samples"]):
        t0 = now_ms()
        for _ in range(c["stepsPerSample"]):
            opt.step()
        xs.append((now_ms() - t0) / c["stepsPerSample"])
    return xs, "ms/step"


CASES = {
    "add": add_overhead,
    "matmul1024": matmul_gflops,
    "matmul2048": matmul_gflops,
    "mlp": mlp_step_ms,
    "adamw": adamw_step_ms,
}


def measure(name, threads, config):
    set_threads(threads)
    with Foreign() as other:
        samples, unit = CASES[name](config[name])
    emit(
        case=name,
        threads=threads,
        value=median(samples),
        unit=unit,
        samples=[round(s, 4) for s in samples],
        foreignPct=other.pct,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    config = json.loads(args.config)
    if args.serve:
        for line in sys.stdin:
            if line.strip():
                req = json.loads(line)
                measure(req["case"], int(req["threads"]), config)
    elif args.case:
        for t in [int(v) for v in args.threads.split(",")]:
            measure(args.case, t, config)
    else:
        ap.error("give --serve or --case")


if __name__ == "__main__":
    main()
