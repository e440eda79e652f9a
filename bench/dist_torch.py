#!/usr/bin/env python3
"""One rank of `npm run bench -- dist` (PyTorch side): MoCo v3's builder (concat_all_gather of the
keys, labels offset by rank) with Masked MoCo's online chunks, wrapped in DistributedDataParallel
over Gloo, as main_moco.py runs it; the CIFAR recipe's model (ViT-Tiny/4 at 32 px, n = 8, LN heads
1024 wide). RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from the environment (world 1: no process
group). Prints {"stepMs": [...]}. The model and the step are test/fixtures/reference_step.py's.

    WORLD_SIZE=2 RANK=0 ... /usr/bin/python3 bench/dist_torch.py '{"batch":64,"warmup":1,"steps":4}'
"""

import json
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_step import MaskedMoCo, cosine_momentum, set_lr, train_step, warmup_cosine  # noqa: E402
from torch_common import now_ms, set_threads  # noqa: E402


def main():
    c = json.loads(sys.argv[1])
    set_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=world)
    torch.manual_seed(0)
    vit = dict(img=32, patch=4, dim=192, depth=12, heads=3)
    model = MaskedMoCo(vit, (3, 1024, 256), (2, 1024, 256), n=8, norm="ln")
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
        # MoCo-v3's ViT recipe: 40 warm-up epochs of 300, 100 iterations an epoch, momentum 0.99
        epoch = it / 100
        set_lr(opt, warmup_cosine(epoch, 1.5e-4, 40, 300))
        train_step(model, opt, x1, x2, cosine_momentum(epoch, 0.99, 300), forward=ddp)
        if it >= c["warmup"]:
            ms.append(now_ms() - t0)
    if world > 1:
        dist.destroy_process_group()
    print(json.dumps({"stepMs": ms}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
