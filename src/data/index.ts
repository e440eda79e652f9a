// Data sets, decoding and the batch loader.
export * from './dataset.js';
export { Rng, mixKey } from './rng.js';
export { ImageFolder, type ImageFolderOptions } from './image-folder.js';
export {
  Pack,
  PackError,
  PackedImages,
  openPack,
  packImageFolder,
  jpegHeaderLength,
  PACK_MAGIC,
  PACK_VERSION,
  type PackHeader,
  type PackOptions,
  type PackStats,
} from './pack.js';
export { indexImageFolder, defaultCacheDir, byteOrder, IMAGE_EXTENSIONS } from './folder-index.js';
export type { FolderIndex, IndexOptions } from './folder-index.js';
export { decodeImage, encodeImage } from './decode.js';
export {
  decodeFiles,
  ensureDecodeWorkers,
  decodeWorkers,
  decodeWorkerPids,
  closeDecodePool,
  DecodeCrash,
  type DecodedFile,
} from './decode-pool.js';
export {
  Cifar10,
  Cifar100,
  CIFAR_ARCHIVES,
  CIFAR10_CLASSES,
  cifarFiles,
  downloadCifar,
  type CifarSplit,
} from './cifar.js';
export { downloadFile, verifyFile, fileDigest, type Checksum } from './download.js';
export { extractTar } from './tar.js';
export { IdxImageDataset, mnist, MNIST_CLASSES, FASHION_MNIST_CLASSES } from './mnist.js';
export { readIdx, readFashionMnist, FASHION_MNIST_DIR } from './idx.js';
export { SyntheticImages, writeImageFolder, type SyntheticOptions } from './synthetic.js';
export { Subset, subsetFraction, subsetPerClass, indicesByClass } from './subset.js';
export { DataLoader, type Batch, type LoaderOptions, type SampleContext, type SkipEvent } from './loader.js';
export { resizeCenterCrop } from './fit.js';
export * as transforms from './transforms/index.js';
export { DeviceImageCache, CachedLoader, toDevice, type DeviceCacheOptions } from './device-cache.js';
