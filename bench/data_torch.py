#!/usr/bin/env python3
"""PyTorch half of `npm run bench -- data` (bench/data.ts starts it once per measurement).

Usage: data_torch.py --root DIR --batch 256 --workers 2 --images N [--resize 224] [--crop 64] [--seed 0]
                     [--strategy strong|medium|light --size S]
Loads torchvision ImageFolder(DIR) through a DataLoader (shuffle, drop_last, the given number
of worker processes), images as uint8 tensors (PILToTensor, after Resize when --resize and
CenterCrop when --crop), or
with --strategy as two normalised float views of side S made in the workers the way MoCo v3's
main_moco.py does it (PIL + torchvision transforms per image: RandomResizedCrop(S, (0.08, 1)),
ColorJitter(0.4, 0.4, 0.2, 0.1) p 0.8, RandomGrayscale 0.2, PIL GaussianBlur sigma in [0.1, 2],
PIL solarize, flip), with the paper's medium and light variants; and prints one JSON line:
{"imagesPerSec", "images", "seconds", "firstBatchSec"}.
Timing starts when the first batch arrives (worker start-up excluded, as on the mmoco side)
and stops after N more images.
"""
import argparse
import random
import time

import torch
from PIL import ImageFilter, ImageOps
from torchvision import datasets, transforms

from torch_common import emit


class Blur:
    """MoCo v3's GaussianBlur: PIL's filter with a radius drawn from sigma."""

    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class Solarize:
    def __call__(self, img):
        return ImageOps.solarize(img)


class TwoViews:
    """The paper's strategies (as src/data/transforms/pretrain.ts, per image in PIL)."""

    def __init__(self, strategy, size):
        t = transforms
        jitter = t.RandomApply([t.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8)
        gray = t.RandomGrayscale(p=0.2)
        flip = t.RandomHorizontalFlip()
        tail = [t.ToTensor(), t.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
        self.strategy = strategy
        self.size = size
        if strategy == "strong":
            rrc = t.RandomResizedCrop(size, scale=(0.08, 1.0))
            blur2 = t.RandomApply([Blur()], p=0.1)
            sol2 = t.RandomApply([Solarize()], p=0.2)
            self.v1 = t.Compose([rrc, jitter, gray, Blur(), flip] + tail)
            self.v2 = t.Compose([rrc, jitter, gray, blur2, sol2, flip] + tail)
        else:
            outer = round(size * 256 / 224) if strategy == "medium" else size
            self.max_shift = min(outer - size, round(size * 32 / 224))
            self.outer = outer
            self.shared = t.Compose([t.RandomResizedCrop(outer, scale=(0.08, 1.0)), flip])
            self.color = t.Compose([jitter, gray] + tail)

    def __call__(self, img):
        if self.strategy == "strong":
            return [self.v1(img), self.v2(img)]
        x = self.shared(img)
        if self.strategy == "light":
            return [self.color(x), self.color(x)]
        # two crops along the diagonal, a random 0..max_shift apart
        d = random.randint(0, self.max_shift)
        a = random.randint(0, self.outer - self.size - d)
        b = a + d
        if random.random() < 0.5:
            a, b = b, a
        s = self.size
        return [self.color(x.crop((o, o, o + s, o + s))) for o in (a, b)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=10240)
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--resize", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", choices=["strong", "medium", "light"])
    ap.add_argument("--size", type=int, default=0)
    a = ap.parse_args()

    if a.strategy:
        tf = TwoViews(a.strategy, a.size)
    else:
        tf = [transforms.Resize(a.resize)] if a.resize else []
        tf += [transforms.CenterCrop(a.crop)] if a.crop else []
        tf = transforms.Compose(tf + [transforms.PILToTensor()])
    ds = datasets.ImageFolder(a.root, transform=tf)
    g = torch.Generator()
    g.manual_seed(a.seed)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, generator=g, drop_last=True
    )
    t_start = time.perf_counter()
    it = iter(dl)
    x, y = next(it)
    if a.strategy:
        assert x[0].dtype == torch.float32 and x[1].shape == (a.batch, 3, a.size, a.size)
    else:
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
    t0 = time.perf_counter()
    n = 0
    while n < a.images:
        x, y = next(it)
        n += y.shape[0]
    dt = time.perf_counter() - t0
    emit(imagesPerSec=n / dt, images=n, seconds=dt, firstBatchSec=t0 - t_start)


if __name__ == "__main__":
    main()
