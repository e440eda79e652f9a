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
PyTorch reference of test/fixtures/make_model_fixtures.py / make_method_fixtures.py (timm's
ViT as MoCo-v3 uses it, MoCo-v3's BN heads), copied here: importing those scripts builds their
fixture records.
"""
import argparse
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import Foreign, emit, median, now_ms, set_threads


# ---- MoCo-v3's position embedding (vits.py) ----
def build_2d_sincos_position_embedding(h, w, embed_dim, temperature=10000.0):
    grid_w = torch.arange(w, dtype=torch.float32)
    grid_h = torch.arange(h, dtype=torch.float32)
    grid_w, grid_h = torch.meshgrid(grid_w, grid_h, indexing="ij")
    pos_dim = embed_dim // 4
    omega = torch.arange(pos_dim, dtype=torch.float32) / pos_dim
    omega = 1.0 / (temperature**omega)
    out_w = torch.einsum("m,d->md", [grid_w.flatten(), omega])
    out_h = torch.einsum("m,d->md", [grid_h.flatten(), omega])
    pos_emb = torch.cat([torch.sin(out_w), torch.cos(out_w), torch.sin(out_h), torch.cos(out_h)], dim=1)[None, :, :]
    return torch.cat([torch.zeros([1, 1, embed_dim]), pos_emb], dim=1)


# ---- timm's VisionTransformer (the parts MoCo-v3 uses) ----
class PatchEmbed(nn.Module):
    def __init__(self, img, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, mlp_ratio=4.0):
        super().__init__()
        self.num_patches = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        g = img // patch
        self.pos_embed = nn.Parameter(build_2d_sincos_position_embedding(g, g, dim), requires_grad=False)
        self.patch_embed = PatchEmbed(img, patch, 3, dim)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.normal_(self.cls_token, std=1e-6)

    def forward_features(self, x, keep=None, rows_per_image=1):
        x = self.patch_embed(x) + self.pos_embed[:, 1:]
        if keep is not None:
            img = torch.arange(keep.shape[0]) // rows_per_image
            x = x[img[:, None], keep]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        x = self.blocks(x)
        return self.norm(x)


# ---- MoCo-v3's _build_mlp (BN heads) ----
def build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    mlp = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = ViT(c["imgSize"], c["patchSize"], c["dim"], c["depth"], c["heads"])
        p = c["projector"]
        self.projector = build_mlp(p["layers"], c["dim"], p["hidden"], p["out"], last_bn=True)

    def forward(self, x, keep=None, rows_per_image=1):
        return self.projector(self.backbone.forward_features(x, keep, rows_per_image)[:, 0])


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

    def chunk_keep(self, b):
        """chunkMask: a random permutation of the N patches per image, cut into n rows of N // n."""
        n, N = self.n, self.base_encoder.backbone.num_patches
        if n == 1:
            return None
        k = N // n
        return torch.rand(b, N).argsort(1)[:, : k * n].reshape(b * n, k)

    def online(self, x):
        return self.predictor(self.base_encoder(x, self.chunk_keep(x.shape[0]), self.n))

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
