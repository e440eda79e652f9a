// The loader's per-image resize + centre crop (src/data/fit.ts' fitImage: ResizeCenterCrop's plan
// run by the native async op resizeCropImage, native/src/image/crops.cc) gives exactly the
// pixels of ResizeCenterCrop.forward on the image as a batch of one, for every kind of plan;
// many images in flight at once give the same pixels; bad arguments are errors naming them.
// (Against torchvision's own outputs: test/data/transforms.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RgbImage } from '../../src/data/dataset.js';
import { fitImage } from '../../src/data/fit.js';
import { imagesToBatch } from '../../src/data/native/batch.js';
import { resizeCropImage } from '../../src/data/native/kernels.js';
import { Rng } from '../../src/data/rng.js';
import { ResizeCenterCrop, type ResizeCenterCropOptions } from '../../src/data/transforms/geometry.js';
import { getNumThreads, liveTensors, setNumThreads, tidy } from '../../src/torch/index.js';

/** Noise on a gradient: neighbouring pixels differ, so any misplaced or misweighted tap shows. */
function image(width: number, height: number, seed: number): RgbImage {
  const rng = new Rng(seed, width, height);
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const x = p % width;
    for (let c = 0; c < 3; c++) data[3 * p + c] = (((x * 255) / width + (rng.next() & 63)) | 0) % 256;
  }
  return { data, width, height };
}

/** ResizeCenterCrop.forward on the image as a batch of one, back to HWC. */
function viaBatch(op: ResizeCenterCrop, img: RgbImage): RgbImage {
  return tidy(() => {
    const y = op.forward(imagesToBatch([img.data], img.width, img.height));
    const [, , height, width] = y.shape as [number, number, number, number];
    return { data: y.permute([0, 2, 3, 1]).toTypedArray() as Uint8Array, width, height };
  });
}

type Case = [string, number, number, number | null, number | [number, number], ResizeCenterCropOptions?];
const CASES: Case[] = [
  ['down, non-square image (shorter side 37 to 24), square crop', 50, 37, 24, 20],
  ['down, portrait image, non-square crop', 41, 67, 30, [28, 22]],
  ['ImageNet-like: 500x375 to 256, crop 224', 500, 375, 256, 224],
  ['up (shorter side 9 to 30), crop [25, 31]', 13, 9, 30, [25, 31]],
  ['up, then padded on one side (crop wider than the resize)', 12, 10, 16, [14, 23]],
  ['crop only, odd offsets (half to even)', 31, 22, null, [15, 20]],
  ['crop only, zero padding all round', 7, 5, null, [12, 11]],
  ['crop only, padding in width, cropping in height', 6, 20, null, [9, 9]],
  ['no resize (shorter side already resizeTo), crop', 40, 32, 32, 30],
  ['bicubic antialiased (clamped to 0..255)', 48, 36, 20, 16, { interpolation: 'bicubic' }],
  ['bilinear without antialias', 48, 36, 20, [16, 18], { antialias: false }],
  [
    'bicubic without antialias, upsampling (overshoot clamped)',
    11,
    14,
    25,
    [23, 26],
    { interpolation: 'bicubic', antialias: false },
  ],
  ['crop-sized image, resized anyway (passCropSized false)', 20, 16, 20, [16, 20]],
];

test('fitImage equals ResizeCenterCrop.forward exactly: down, up, crop-only, padding, non-square, other modes', async () => {
  const before = liveTensors();
  for (const [name, w, h, resizeTo, crop, o] of CASES) {
    const op = new ResizeCenterCrop(resizeTo, crop, o);
    const img = image(w, h, 1);
    const want = viaBatch(op, img);
    const got = await fitImage(op, img);
    assert.deepEqual([got.width, got.height], [want.width, want.height], name);
    assert.ok(Buffer.from(got.data).equals(Buffer.from(want.data)), `${name}: pixels differ`);
  }
  assert.equal(liveTensors(), before, 'tensors leaked');
});

test('an image the op keeps comes back as it is, without a native call', async () => {
  const img = image(16, 12, 2);
  assert.equal(await fitImage(new ResizeCenterCrop(null, [12, 16]), img), img);
  assert.equal(await fitImage(new ResizeCenterCrop(12, [12, 16]), img), img);
  assert.equal(await fitImage(new ResizeCenterCrop(24, [12, 16], { passCropSized: true }), img), img);
});

test('many images in flight at once (at several intra-op thread settings) give the batch path’s pixels', async () => {
  const op = new ResizeCenterCrop(64, 56);
  const imgs = Array.from({ length: 24 }, (_, i) => image(70 + 13 * i, 160 - 3 * i, i));
  const want = imgs.map((img) => viaBatch(op, img));
  const threads = getNumThreads();
  try {
    for (const t of [1, 2]) {
      setNumThreads(t);
      const got = await Promise.all(imgs.map((img) => fitImage(op, img)));
      got.forEach((g, i) => assert.ok(Buffer.from(g.data).equals(Buffer.from(want[i]!.data)), `image ${i}, ${t}`));
      // the pool threads' one-thread setting does not leak into the JS thread's
      assert.equal(getNumThreads(), t);
    }
  } finally {
    setNumThreads(threads);
  }
});

test('resizeCropImage: bad arguments are errors naming them', async () => {
  const img = image(4, 3, 3);
  const box = [0, 0, 2, 2] as const;
  await assert.rejects(
    resizeCropImage({ ...img, data: img.data.subarray(1) }, null, null, box),
    /resizeCropImage: pixels holds 35 bytes, 4x3x3 needs 36/,
  );
  await assert.rejects(
    resizeCropImage({ ...img, width: 0 }, null, null, box),
    /resizeCropImage: width and height must be positive, got 0x3/,
  );
  await assert.rejects(
    resizeCropImage(img, [0, 5], null, box),
    /resizeCropImage: resize size must be positive \(or 0, 0: no resize\), got 0x5/,
  );
  await assert.rejects(
    resizeCropImage(img, [6, 8], null, [1, 0, 6, 8]),
    /resizeCropImage: box 1,0,6,8 is not inside the 6x8 resized and padded image/,
  );
  await assert.rejects(
    resizeCropImage(img, null, [0, 0, -1, 0], box),
    /resizeCropImage: pads must not be negative, got -1/,
  );
  await assert.rejects(
    resizeCropImage(img, [6, 8], null, box, { mode: 'area' as 'nearest' }),
    /resizeCropImage: mode must be 'bilinear', 'bicubic' or 'nearest', got 'area'/,
  );
  await assert.rejects(
    resizeCropImage({ ...img, data: Array.from(img.data) as unknown as Uint8Array }, null, null, box),
    /resizeCropImage: pixels must be a Uint8Array/,
  );
  // a box at the padded image's edge is inside it
  const padded = await resizeCropImage(img, null, [1, 2, 0, 1], [0, 0, 4, 7]);
  assert.deepEqual([padded.width, padded.height], [7, 4]);
});
