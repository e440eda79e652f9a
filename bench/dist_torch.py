#!/usr/bin/env python3
"""One rank of `npm run bench -- dist` (PyTorch side): MoCo v3's builder (concat_all_gather of the
keys, labels offset by rank) with Masked MoCo's online chunks, wrapped in DistributedDataParallel
over Gloo, as main_moco.py runs it; the CIFAR recipe's model (ViT-Tiny/4 at 32 px, n = 8, LN heads
1024 wide). RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from the environment (world 1: no process
group). Prints {"stepMs": [...]}.

    WORLD_SIZE=2 RANK=0 ... /usr/bin/python3 bench/dist_torch.py '{"batch":64,"warmup":1,"steps":4}'
"""

import json
import math
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import ViT, build_mlp  # noqa: E402
from torch_common import now_ms, set_threads  # noqa: E402


@torch.no_grad()
def concat_all_gather(t):
    if not dist.is_initialized():
        return t
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t.contiguous())
    return torch.cat(out, 0)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ViT(32, 4, 192, 12, 3)
        self.projector = build_mlp(3, 192, 1024, 256, last_bn=True, norm="ln")

    def forward(self, x, keep=None, rows_per_image=1):
        return self.projector(self.backbone.forward_features(x, keep, rows_per_image)[:, 0])


class MaskedMoCo(nn.Module):
    def __init__(self, n=8, T=0.2):
        super().__init__()
        self.n, self.T = n, T
        self.base_encoder = Encoder()
        self.predictor = build_mlp(2, 256, 1024, 256, last_bn=False, norm="ln")
        self.momentum_encoder = Encoder()
        for pb, pm in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            pm.data.copy_(pb.data)
            pm.requires_grad = False

    @torch.no_grad()
    def _update_momentum_encoder(self, m):
        for pb, pm in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            pm.data = pm.data * m + pb.data * (1.0 - m)

    def contrastive_loss(self, q, k):
        q = F.normalize(q, dim=1)
        k = concat_all_gather(F.normalize(k, dim=1))
        logits = q @ k.t() / self.T
        b = q.shape[0] // self.n
        rank = dist.get_rank() if dist.is_initialized() else 0
        labels = (torch.arange(b) + b * rank).repeat_interleave(self.n)
        return F.cross_entropy(logits, labels) * (2 * self.T)

    def online(self, x):
        N = self.base_encoder.backbone.num_patches
        k = N // self.n
        keep = torch.rand(x.shape[0], N).argsort(1)[:, : k * self.n].reshape(x.shape[0] * self.n, k)
        return self.predictor(self.base_encoder(x, keep, self.n))

    def forward(self, x1, x2, m):
        q1, q2 = self.online(x1), self.online(x2)
        with torch.no_grad():
            self._update_momentum_encoder(m)
            k1, k2 = self.momentum_encoder(x1), self.momentum_encoder(x2)
        return self.contrastive_loss(q1, k2) + self.contrastive_loss(q2, k1)


def main():
    c = json.loads(sys.argv[1])
    set_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=world)
    torch.manual_seed(0)
    model = MaskedMoCo()
    model.train()
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.1, foreach=True)
    torch.manual_seed(1 + (dist.get_rank() if world > 1 else 0))
    x1 = torch.randn(c["batch"], 3, 32, 32)
    x2 = torch.randn(c["batch"], 3, 32, 32)
    ms = []
    for it in range(c["warmup"] + c["steps"]):
        t0 = now_ms()
        epoch = it / 100
        lr = 1.5e-4 * epoch / 40
        for g in opt.param_groups:
            g["lr"] = lr
        m = 1.0 - 0.5 * (1.0 + math.cos(math.pi * epoch / 300)) * (1.0 - 0.99)
        loss = ddp(x1, x2, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        if it >= c["warmup"]:
            ms.append(now_ms() - t0)
    if world > 1:
        dist.destroy_process_group()
    print(json.dumps({"stepMs": ms}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
