#!/usr/bin/env python3
"""PyTorch half of `npm run bench -- step` (bench/step.ts starts it, one process per case).

Usage: step_torch.py --case JSON --threads N [--compile]
       step_torch.py --peak SIZE --device cpu|cuda [--reps R]
    The JSON is one entry of step.ts's case table (model sizes, batch, n, head sizes, step
    counts, device, precision). With --compile a second line times the same step with the model
    under torch.compile (mode "compile", its compile time apart as compileS; a line with
    "compileSkipped" when this PyTorch has no torch.compile). --peak times a SIZE³ bf16 matrix
    product and prints {"tflops"}. Prints one JSON line on stdout:
    {"case", "threads", "batch", "stepMs": [...], "imagesPerSec" (batch / median step),
     "loss", "foreignPct", "breakdownMs": {"ema", "forward", "backward", "optimizer"}}
    (breakdownMs: medians over the timed steps of the phases, timed inside the same steps; CPU
    ops are synchronous, so the clock between them is exact).

The step is Masked MoCo's (n online chunks, target m = 1) as MoCo-v3's main loop runs it: lr
from the warmup-cosine schedule, momentum from the cosine schedule, the momentum update, the
online forward of both views (n chunks each) through backbone, projector and predictor, the
target forward of both full views without autograd, the symmetrised InfoNCE (·2τ), zero_grad,
backward, AdamW step (torch.optim.AdamW: foreach=True on the CPU; on CUDA fused=True, PyTorch's
fastest), loss.item(). On CUDA the forward runs under bf16 autocast when the case says so and the
phases of the breakdown are separated by torch.cuda.synchronize(). The model and the step are
the plain PyTorch reference of test/fixtures/reference_step.py (timm's ViT as MoCo-v3 uses it,
MoCo-v3's BN heads and training step), the ones the fixtures are made from.
"""
import argparse
import json
import os
import sys

import torch

from torch_common import Foreign, emit, median, now_ms, set_threads

# The reference step (MoCo-v3's builder.py and main_moco.py on timm's ViT), shared with the fixtures.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from reference_step import MaskedMoCo, cosine_momentum, set_lr, train_step, warmup_cosine  # noqa: E402


def build(c):
    """MoCo-v3's builder.py MoCo with Masked MoCo's online chunks (target m = 1), BN heads, the
    CLS token drawn as MoCo-v3's vits.py does."""
    vit = dict(img=c["imgSize"], patch=c["patchSize"], dim=c["dim"], depth=c["depth"], heads=c["heads"])
    p, q = c["projector"], c["predictor"]
    return MaskedMoCo(vit, (p["layers"], p["hidden"], p["out"]), (q["layers"], q["hidden"], q["out"]),
                      n=c["numChunks"], T=c["temperature"], cls_init_std=1e-6)


def run(c, threads, compiled=False):
    set_threads(threads)
    torch.manual_seed(0)
    dev = c.get("device", "cpu")
    cuda = dev == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = build(c).to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    kind = {"fused": True} if cuda else {"foreach": True}
    opt = torch.optim.AdamW(params, lr=c["schedule"]["lr"], betas=tuple(c["betas"]),
                            weight_decay=c["weightDecay"], **kind)
    forward = torch.compile(model) if compiled else model
    b, img = c["batch"], c["imgSize"]
    x1 = torch.randn(b, 3, img, img, device=dev)
    x2 = torch.randn(b, 3, img, img, device=dev)
    ipe = c["schedule"]["itersPerEpoch"]
    phases = {"ema": [], "forward": [], "backward": [], "optimizer": []}
    bf16 = c.get("precision") == "bf16"

    s = c["schedule"]

    def step(it):
        epoch = it / ipe
        set_lr(opt, warmup_cosine(epoch, s["lr"], s["warmupEpochs"], s["epochs"]))
        mom = cosine_momentum(epoch, c["baseMomentum"], s["epochs"])
        marks = [now_ms()]

        def mark(phase):
            if phase != "optimizer":  # loss.item() has synchronised already
                sync()
            marks.append(now_ms())

        # bf16 cases: the forward under autocast, as a PyTorch user writes it
        autocast = torch.autocast(dev, dtype=torch.bfloat16) if bf16 else None
        value, _ = train_step(model, opt, x1, x2, mom, forward=forward, autocast=autocast, after=mark)
        for k, a, b in zip(phases, marks, marks[1:]):
            phases[k].append(b - a)
        return value

    tc = now_ms()
    for it in range(c["warmup"]):
        step(it)
    warm_s = (now_ms() - tc) / 1e3
    for k in phases:
        phases[k].clear()
    xs = []
    loss = float("nan")
    with Foreign() as other:
        for it in range(c["warmup"], c["warmup"] + c["steps"]):
            t0 = now_ms()
            loss = step(it)
            xs.append(now_ms() - t0)
    row = {
        "case": c["name"],
        "threads": threads,
        "batch": b,
        "stepMs": [round(x, 2) for x in xs],
        "imagesPerSec": b / (median(xs) / 1e3),
        "loss": loss,
        "foreignPct": other.pct,
        "breakdownMs": {k: round(median(v), 2) for k, v in phases.items()},
        "torch": torch.__version__,
        "optimizer": "fused" if cuda else "foreach",
    }
    if compiled:
        # the warm-up steps include compiling (and recompiling for the second view, if any)
        row.update(mode="compile", compileS=round(warm_s, 1))
    emit(**row)


def peak(size, dev, reps):
    """TFLOP/s of a size³ bf16 matrix product (median of reps after 3 warm-ups)."""
    a = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    xs = []
    for _ in range(reps):
        t0 = now_ms()
        a @ b
        sync()
        xs.append(now_ms() - t0)
    emit(tflops=2 * size**3 / (median(xs) / 1e3) / 1e12, size=size, device=dev, torch=torch.__version__)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--peak", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    if args.peak:
        peak(args.peak, args.device, args.reps)
        return
    c = json.loads(args.case)
    run(c, args.threads)
    if args.compile:
        if hasattr(torch, "compile"):
            run(c, args.threads, compiled=True)
        else:
            emit(case=c["name"], mode="compile-skipped", compileSkipped=f"torch {torch.__version__} has no torch.compile")


if __name__ == "__main__":
    sys.exit(main())
