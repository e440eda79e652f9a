// The data pipeline's native module: the addon's image kernels (native/src/image).
export { decodeJpegFiles, decodeJpegBuffers, type NativeDecoded } from './jpeg.js';
export { imagesToBatch } from './batch.js';
export { colorJitterCpu, resizeCropImage, resizedCrops } from './kernels.js';
