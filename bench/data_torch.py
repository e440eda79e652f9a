#!/usr/bin/env python3
"""PyTorch half of `npm run bench -- data` (bench/data.ts starts it once per measurement).

Usage: data_torch.py --root DIR --batch 256 --workers 2 --images N [--crop 64] [--seed 0]
Loads torchvision ImageFolder(DIR) through a DataLoader (shuffle, drop_last, the given number
of worker processes), images as uint8 tensors (PILToTensor, after CenterCrop when --crop),
and prints one JSON line: {"imagesPerSec", "images", "seconds", "firstBatchSec"}.
Timing starts when the first batch arrives (worker start-up excluded, as on the mmoco side)
and stops after N more images.
"""
import argparse
import time

import torch
from torchvision import datasets, transforms

from torch_common import emit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=10240)
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    tf = [transforms.CenterCrop(a.crop)] if a.crop else []
    tf.append(transforms.PILToTensor())
    ds = datasets.ImageFolder(a.root, transform=transforms.Compose(tf))
    g = torch.Generator()
    g.manual_seed(a.seed)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, generator=g, drop_last=True
    )
    t_start = time.perf_counter()
    it = iter(dl)
    x, y = next(it)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    t0 = time.perf_counter()
    n = 0
    while n < a.images:
        x, y = next(it)
        n += x.shape[0]
    dt = time.perf_counter() - t0
    emit(imagesPerSec=n / dt, images=n, seconds=dt, firstBatchSec=t0 - t_start)


if __name__ == "__main__":
    main()
