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
phases of the breakdown are separated by torch.cuda.synchronize(). The model is the plain
PyTorch reference of test/fixtures/reference_models.py (timm's ViT as MoCo-v3 uses it,
MoCo-v3's BN heads), the models the fixtures are made from.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import Foreign, emit, median, now_ms, set_threads


# ---- MoCo-v3's position embedding (vits.py) ----
# The reference models (timm's ViT as MoCo-v3 uses it, MoCo-v3's heads) shared with the fixtures.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from reference_models import ViT, build_mlp  # noqa: E402


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = ViT(c["imgSize"], c["patchSize"], c["dim"], c["depth"], c["heads"])
        nn.init.normal_(self.backbone.cls_token, std=1e-6)
        p = c["projector"]
        self.projector = build_mlp(p["layers"], c["dim"], p["hidden"], p["out"], last_bn=True)

    def forward(self, x, groups=None):
        """groups: (keep, chunks per image) per chunk length, as chunk_groups makes them."""
        if groups is None:
            return self.projector(self.backbone.forward_features(x)[:, 0])
        cls = torch.cat([self.backbone.forward_features(x, keep, c)[:, 0] for keep, c in groups])
        if len(groups) > 1:  # back to image-major rows (chunk j of image b at b·n + j)
            b = x.shape[0]
            n = sum(c for _, c in groups)
            r = groups[0][1]
            pos = torch.arange(b * n).reshape(b, n)
            cls = cls[torch.cat([pos[:, :r].reshape(-1), pos[:, r:].reshape(-1)]).argsort()]
        return self.projector(cls)


class MaskedMoCo(nn.Module):
    """MoCo-v3's builder.py MoCo with Masked MoCo's online chunks (target m = 1)."""

    def __init__(self, c):
        super().__init__()
        self.n, self.T = c["numChunks"], c["temperature"]
        self.device = c.get("device", "cpu")
        self.base_encoder = Encoder(c)
        p, q = c["projector"], c["predictor"]
        self.predictor = build_mlp(q["layers"], p["out"], q["hidden"], q["out"], last_bn=False)
        self.momentum_encoder = Encoder(c)
        for pb, pm in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            pm.data.copy_(pb.data)
            pm.requires_grad = False

    @torch.no_grad()
    def _update_momentum_encoder(self, m):
        for param_b, param_m in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            param_m.data = param_m.data * m + param_b.data * (1.0 - m)

    def contrastive_loss(self, q, k):
        q = F.normalize(q, dim=1)
        k = F.normalize(k, dim=1)
        logits = q @ k.t() / self.T
        labels = torch.arange(k.shape[0], device=q.device).repeat_interleave(q.shape[0] // k.shape[0])
        return F.cross_entropy(logits, labels) * (2 * self.T)

    def chunk_groups(self, b):
        """chunkMask: a random permutation of the N patches per image cut into n pieces, the first
        N mod n one patch longer (every patch seen); one (keep, chunks per image) per length."""
        n, N = self.n, self.base_encoder.backbone.num_patches
        if n == 1:
            return None
        q, r = divmod(N, n)
        perm = torch.rand(b, N, device=self.device).argsort(1)
        long = [(perm[:, : r * (q + 1)].reshape(b * r, q + 1), r)] if r else []
        return long + [(perm[:, r * (q + 1):].reshape(b * (n - r), q), n - r)]

    def online(self, x):
        return self.predictor(self.base_encoder(x, self.chunk_groups(x.shape[0])))

    def forward(self, x1, x2):
        q1, q2 = self.online(x1), self.online(x2)
        with torch.no_grad():
            k1, k2 = self.momentum_encoder(x1), self.momentum_encoder(x2)
        return self.contrastive_loss(q1, k2) + self.contrastive_loss(q2, k1)


def warmup_cosine(epoch, c):
    """MoCo-v3's adjust_learning_rate (mmoco's WarmupCosine with minLr 0)."""
    s = c["schedule"]
    if epoch < s["warmupEpochs"]:
        return s["lr"] * epoch / s["warmupEpochs"]
    t = (epoch - s["warmupEpochs"]) / (s["epochs"] - s["warmupEpochs"])
    return s["lr"] * 0.5 * (1.0 + math.cos(math.pi * t))


def cosine_momentum(epoch, c):
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * epoch / c["schedule"]["epochs"])) * (1.0 - c["baseMomentum"])


def run(c, threads, compiled=False):
    set_threads(threads)
    torch.manual_seed(0)
    dev = c.get("device", "cpu")
    cuda = dev == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = MaskedMoCo(c).to(dev)
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

    def step(it):
        epoch = it / ipe
        lr = warmup_cosine(epoch, c)
        for g in opt.param_groups:
            g["lr"] = lr
        mom = cosine_momentum(epoch, c)
        t0 = now_ms()
        model._update_momentum_encoder(mom)
        sync()
        t1 = now_ms()
        # bf16 cases: the forward under autocast, as a PyTorch user writes it
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            loss = forward(x1, x2)
        sync()
        t2 = now_ms()
        opt.zero_grad()
        loss.backward()
        sync()
        t3 = now_ms()
        opt.step()
        opt.zero_grad()
        value = loss.item()
        t4 = now_ms()
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[k].append(v)
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
