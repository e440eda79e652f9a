#!/usr/bin/env python3
"""PyTorch half of the thread study (bench/threads.ts spawns it with the environment under
test): the same ViT-Tiny block step and square matmul as bench/threads_child.ts.

Usage: threads_torch.py '<spec JSON>' (see ChildSpec in threads_child.ts). Prints one JSON
line per thread count, in threads_child.ts's format.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

from torch_common import Foreign, blas_info, median, now_ms, set_threads

DIM, HEADS, MLP, TOKENS = 192, 3, 768, 65


def vit_block():
    head_dim = DIM // HEADS
    scale = 1 / math.sqrt(head_dim)

    def param(shape, fill=None):
        with torch.no_grad():
            t = torch.randn(shape) / math.sqrt(shape[-1]) if fill is None else torch.full(shape, float(fill))
        return t.requires_grad_(True)

    ln1w, ln1b = param([DIM], 1), param([DIM], 0)
    qkv_w, qkv_b = param([3 * DIM, DIM]), param([3 * DIM], 0)
    proj_w, proj_b = param([DIM, DIM]), param([DIM], 0)
    ln2w, ln2b = param([DIM], 1), param([DIM], 0)
    fc1_w, fc1_b = param([MLP, DIM]), param([MLP], 0)
    fc2_w, fc2_b = param([DIM, MLP]), param([DIM], 0)
    params = [ln1w, ln1b, qkv_w, qkv_b, proj_w, proj_b, ln2w, ln2b, fc1_w, fc1_b, fc2_w, fc2_b]

    def forward(x):
        b = x.shape[0]
        h = F.layer_norm(x, [DIM], ln1w, ln1b)
        qkv = F.linear(h, qkv_w, qkv_b).reshape(b, TOKENS, 3, HEADS, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        att = F.softmax((q @ k.transpose(-2, -1)) * scale, -1)
        o = (att @ v).transpose(1, 2).reshape(b, TOKENS, DIM)
        x1 = x + F.linear(o, proj_w, proj_b)
        m = F.linear(F.gelu(F.linear(F.layer_norm(x1, [DIM], ln2w, ln2b), fc1_w, fc1_b)), fc2_w, fc2_b)
        return x1 + m

    def step(x):
        for p in params:
            p.grad = None
        forward(x).mean().backward()

    return step


def main():
    spec = json.loads(sys.argv[1])
    step = vit_block()
    x = torch.randn(spec["batch"], TOKENS, DIM)
    n = spec["gemmN"]
    a, b = torch.randn(n, n), torch.randn(n, n)
    for t in spec["threads"]:
        set_threads(t, None if spec["blasThreads"] == "follow" else spec["blasThreads"])
        for _ in range(spec["warmup"]):
            step(x)
        times = []
        with Foreign() as vit:
            for _ in range(spec["steps"]):
                t0 = now_ms()
                step(x)
                times.append(now_ms() - t0)
        a @ b
        gemm = []
        with Foreign() as mm:
            for _ in range(spec["gemmReps"]):
                t0 = now_ms()
                a @ b
                gemm.append(2 * n**3 / ((now_ms() - t0) / 1e3) / 1e9)
        info = blas_info()
        print(
            json.dumps(
                {
                    "threads": torch.get_num_threads(),
                    "vitImgPerS": spec["batch"] / (median(times) / 1e3),
                    "vitCpuPct": vit.own_ms / vit.wall_ms * 100,
                    "gemmGflops": median(gemm),
                    "foreignPct": max(vit.pct, mm.pct),
                    "blas": {"parallel": info.get("parallel"), "threads": info.get("threads"), "library": "libblas.so.3"},
                    "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
