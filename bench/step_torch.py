#!/usr/bin/env python3
"""PyTorch half of `npm run bench -- step` (bench/step.ts starts it, one process per case).

Usage: step_torch.py --case JSON --threads N
    The JSON is one entry of step.ts's case table (model sizes, batch, n, head sizes, step
    counts). Prints one JSON line on stdout:
    {"case", "threads", "batch", "stepMs": [...], "imagesPerSec" (batch / median step),
     "loss", "foreignPct", "breakdownMs": {"ema", "forward", "backward", "optimizer"}}
    (breakdownMs: medians over the timed steps of the phases, timed inside the same steps; CPU
    ops are synchronous, so the clock between them is exact).

The step is Masked MoCo's (n online chunks, target m = 1) as MoCo-v3's main loop runs it: lr
from the warmup-cosine schedule, momentum from the cosine schedule, the momentum update, the
online forward of both views (n chunks each) through backbone, projector and predictor, the
target forward of both full views without autograd, the symmetrised InfoNCE (·2τ), zero_grad,
backward, AdamW step (torch.optim.AdamW, foreach=True), loss.item(). The model is the plain
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
        labels = torch.arange(k.shape[0]).repeat_interleave(q.shape[0] // k.shape[0])
        return F.cross_entropy(logits, labels) * (2 * self.T)

    def chunk_groups(self, b):
        """chunkMask: a random permutation of the N patches per image cut into n pieces, the first
        N mod n one patch longer (every patch seen); one (keep, chunks per image) per length."""
        n, N = self.n, self.base_encoder.backbone.num_patches
        if n == 1:
            return None
        q, r = divmod(N, n)
        perm = torch.rand(b, N).argsort(1)
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


def run(c, threads):
    set_threads(threads)
    torch.manual_seed(0)
    model = MaskedMoCo(c)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c["schedule"]["lr"], betas=tuple(c["betas"]),
                            weight_decay=c["weightDecay"], foreach=True)
    b, img = c["batch"], c["imgSize"]
    x1 = torch.randn(b, 3, img, img)
    x2 = torch.randn(b, 3, img, img)
    ipe = c["schedule"]["itersPerEpoch"]
    phases = {"ema": [], "forward": [], "backward": [], "optimizer": []}

    def step(it):
        epoch = it / ipe
        lr = warmup_cosine(epoch, c)
        for g in opt.param_groups:
            g["lr"] = lr
        mom = cosine_momentum(epoch, c)
        t0 = now_ms()
        model._update_momentum_encoder(mom)
        t1 = now_ms()
        # bf16 cases: the forward under CPU autocast, as a PyTorch user writes it
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=c.get("precision") == "bf16"):
            loss = model(x1, x2)
        t2 = now_ms()
        opt.zero_grad()
        loss.backward()
        t3 = now_ms()
        opt.step()
        opt.zero_grad()
        value = loss.item()
        t4 = now_ms()
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[k].append(v)
        return value

    for it in range(c["warmup"]):
        step(it)
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
        "stepMs": [round(x, 1) for x in xs],
        "imagesPerSec": b / (median(xs) / 1e3),
        "loss": loss,
        "foreignPct": other.pct,
        "breakdownMs": {k: round(median(v), 1) for k, v in phases.items()},
    }
    emit(**row)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    run(json.loads(args.case), args.threads)


if __name__ == "__main__":
    sys.exit(main())
