// The file's own preprocessing (docs/FORMAT.md section 3, "preprocess"), as the Python
// eval transform does it: resize the short side to `resize` (no resampling when it already has
// that size), centre-crop `crop` (torchvision's rounding), pixels 0..255 (/ 255 unless
// value_scale is 255), RGB or BGR order, then (x - mean) / std, in float32.

/** Python's round(): half to even (torchvision's centre crop uses it). */
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function makeCanvas(w, h) {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(w, h);
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  return canvas;
}

/** The resized size of a (w, h) image whose short side becomes `size` (torchvision: the long
 * side is int(size * long / short)). */
export function resizedSize(w, h, size) {
  if (!size) return [w, h];
  return w <= h ? [size, Math.floor((size * h) / w)] : [Math.floor((size * w) / h), size];
}

/** An image source -> {c, h, w, data: Float32Array (C, crop, crop)}. */
export function preprocessImage(image, pre) {
  const w0 = image.naturalWidth ?? image.width;
  const h0 = image.naturalHeight ?? image.height;
  const [w, h] = resizedSize(w0, h0, pre.resize);
  const canvas = makeCanvas(w, h);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(image, 0, 0, w, h);
  const crop = pre.crop;
  const top = roundHalfEven((h - crop) / 2);
  const left = roundHalfEven((w - crop) / 2);
  const rgba = context.getImageData(left, top, crop, crop).data;
  return normalise(rgba, crop, pre);
}

/** RGBA bytes of a crop x crop image -> the model input. */
export function normalise(rgba, crop, pre) {
  const channels = pre.channels;
  const p = crop * crop;
  const data = new Float32Array(channels * p);
  const order = pre.channel_order === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const f = Math.fround;
  for (let i = 0; i < p; i++) {
    const r = rgba[4 * i];
    const g = rgba[4 * i + 1];
    const b = rgba[4 * i + 2];
    const pixel = channels === 1 ? [(r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16] : [r, g, b];
    for (let c = 0; c < channels; c++) {
      let x = pixel[channels === 1 ? 0 : order[c]];
      if (pre.value_scale === 1) x = f(x / 255);
      data[c * p + i] = f(f(x - pre.mean[c]) / pre.std[c]);
    }
  }
  return { c: channels, h: crop, w: crop, data };
}
