// SqueezeNet's layer kernels for wasm32 + SIMD128, freestanding (no libc): the demo page's fast
// engine (src/squeezenet/demo/src/wasm_engine.js drives it, layer by layer, as squeezenet.js
// drives its scalar loops).
//
// Layout: activations are channels-last (H, W, C) float32, so a 1x1 convolution is a plain
// (pixels x C) times (C x O) matrix product and a Fire module's two expand outputs land side by
// side in one buffer (the concat is free: each writes at its channel offset). A k x k
// convolution is the same product summed over its k*k taps, read straight from a zero-padded
// copy of the input (no im2col buffer). Weights are packed once at load into blocks of NR
// output channels, (tap, input channel, NR) contiguous, which the micro-kernel streams through
// while MR output pixels' accumulators stay in registers. Dense SIMD beats exploiting the
// pruned zeros: a third of the weights are non-zero, but a SIMD lane does 4 of them at once
// without any index loads.

#include <wasm_simd128.h>

#define MR 4  // output pixels per micro-tile
#define NR 8  // output channels per packed block (two f32x4)

extern unsigned char __heap_base;
static unsigned long top_ = 0;

static void *bump(unsigned long bytes) {
  if (top_ == 0) top_ = (unsigned long)&__heap_base;
  unsigned long at = (top_ + 15) & ~15ul;  // 16-byte aligned for v128 loads
  unsigned long end = at + bytes;
  unsigned long have = __builtin_wasm_memory_size(0) << 16;
  if (end > have) {
    unsigned long pages = (end - have + 65535) >> 16;
    if (__builtin_wasm_memory_grow(0, pages) == (unsigned long)-1) return 0;
  }
  top_ = end;
  return (void *)at;
}

// The bump allocator: persistent weights first, then per-forward scratch released by reset().
__attribute__((export_name("alloc"))) void *alloc(int bytes) { return bump((unsigned long)bytes); }
__attribute__((export_name("mark"))) unsigned long mark(void) {
  if (top_ == 0) top_ = (unsigned long)&__heap_base;
  return top_;
}
__attribute__((export_name("reset"))) void reset(unsigned long to) { top_ = to; }

/** Floats the packed form of an (O, C, KH, KW) weight takes: O rounded up to NR. */
__attribute__((export_name("packed_floats"))) int packed_floats(int o, int c, int kh, int kw) {
  return ((o + NR - 1) / NR) * NR * c * kh * kw;
}

/** (O, C, KH, KW) -> [O/NR][KH*KW][C][NR], zero rows past O. */
__attribute__((export_name("pack"))) void pack(float *dst, const float *w, int o, int c, int kh,
                                               int kw) {
  int taps = kh * kw, k = c * taps, blocks = (o + NR - 1) / NR;
  for (int b = 0; b < blocks; b++)
    for (int t = 0; t < taps; t++)
      for (int ci = 0; ci < c; ci++)
        for (int j = 0; j < NR; j++) {
          int oo = b * NR + j;
          *dst++ = oo < o ? w[oo * k + ci * taps + t] : 0.0f;
        }
}

/** (C, H, W) -> (H, W, C). */
__attribute__((export_name("chw_to_hwc"))) void chw_to_hwc(float *dst, const float *src, int c,
                                                           int h, int w) {
  int p = h * w;
  for (int q = 0; q < p; q++)
    for (int ci = 0; ci < c; ci++) dst[q * c + ci] = src[ci * p + q];
}

static inline void store_block(float *y, v128_t a, v128_t b, int valid) {
  if (valid >= NR) {
    wasm_v128_store(y, a);
    wasm_v128_store(y + 4, b);
    return;
  }
  float t[NR];
  wasm_v128_store(t, a);
  wasm_v128_store(t + 4, b);
  for (int j = 0; j < valid; j++) y[j] = t[j];
}

/** A convolution ready to run on any range of its output pixels: conv_prepare fills it (and
 * pads the input once), then conv_part computes one share of the pixels, so threads sharing the
 * memory split a layer between them (wasm_engine.js). Every field is 4 bytes (wasm32). */
typedef struct {
  const float *x;  // the input, zero-padded: (HP, WP, C)
  int wp, c;
  const float *packed, *bias;
  int o, kh, kw, stride, oh, ow;
  float *y;  // (OH, OW, ystride), written at channels [yoff, yoff + O)
  int ystride, yoff, relu;
} ConvJob;

/** Output pixels per micro-tile: the alignment of conv_part's ranges. */
__attribute__((export_name("tile_pixels"))) int tile_pixels(void) { return MR; }

/** Bytes of a ConvJob (the caller allocates one). */
__attribute__((export_name("conv_job_bytes"))) int conv_job_bytes(void) { return sizeof(ConvJob); }

/**
 * Fill `job` for a convolution + bias (+ ReLU where relu is non-zero), channels-last, and
 * return its output pixels. x: (H, W, C). When pad > 0 the input is copied zero-padded into
 * scratch, which the caller releases (mark / reset) once every part has run.
 */
__attribute__((export_name("conv_prepare"))) int conv_prepare(
    ConvJob *job, const float *x, int h, int w, int c, const float *packed, const float *bias,
    int o, int kh, int kw, int stride, int pad, float *y, int ystride, int yoff, int relu) {
  int hp = h + 2 * pad, wp = w + 2 * pad;
  if (pad > 0) {
    float *xp = bump((unsigned long)hp * wp * c * 4);
    v128_t z = wasm_f32x4_splat(0.0f);
    int n = hp * wp * c, i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(xp + i, z);
    for (; i < n; i++) xp[i] = 0.0f;
    for (int iy = 0; iy < h; iy++) {
      const float *s = x + (iy * w) * c;
      float *d = xp + ((iy + pad) * wp + pad) * c;
      for (int j = 0; j < w * c; j++) d[j] = s[j];
    }
    x = xp;
  }
  int oh = (hp - kh) / stride + 1, ow = (wp - kw) / stride + 1;
  *job = (ConvJob){x, wp, c, packed, bias, o, kh, kw, stride, oh, ow, y, ystride, yoff, relu};
  return oh * ow;
}

/**
 * Output pixels [q0, q1) of a prepared convolution (threads take MR-aligned ranges). Each pixel
 * is computed as when the convolution runs whole, so threads change no bit of the result.
 */
__attribute__((export_name("conv_part"))) void conv_part(const ConvJob *job, int q0, int q1) {
  const float *x = job->x, *packed = job->packed, *bias = job->bias;
  int wp = job->wp, c = job->c, o = job->o, kh = job->kh, kw = job->kw, stride = job->stride;
  int ow = job->ow, p = job->oh * job->ow, ystride = job->ystride, yoff = job->yoff;
  float *y = job->y;
  if (q1 > p) q1 = p;
  int taps = kh * kw, blocks = (o + NR - 1) / NR;
  int tapoff[64];  // kh * kw <= 64 (SqueezeNet's largest kernel is 7x7)
  for (int ky = 0; ky < kh; ky++)
    for (int kx = 0; kx < kw; kx++) tapoff[ky * kw + kx] = (ky * wp + kx) * c;
  for (int b = 0; b < blocks; b++) {
    const float *wb = packed + (unsigned long)b * taps * c * NR;
    int valid = o - b * NR;
    v128_t bias0 = wasm_v128_load(bias + b * NR), bias1;
    float bt[NR];
    if (valid < NR) {
      for (int j = 0; j < NR; j++) bt[j] = j < valid ? bias[b * NR + j] : 0.0f;
      bias0 = wasm_v128_load(bt);
      bias1 = wasm_v128_load(bt + 4);
    } else {
      bias1 = wasm_v128_load(bias + b * NR + 4);
    }
    // the ReLU is max(a, 0); max(a, -inf) = a keeps the one code path for a layer without it
    v128_t floor = wasm_f32x4_splat(job->relu ? 0.0f : -__builtin_inff());
    int q = q0;
    for (; q + MR <= q1; q += MR) {
      const float *base[MR];
      for (int m = 0; m < MR; m++) {
        int oy = (q + m) / ow, ox = (q + m) % ow;
        base[m] = x + ((oy * stride) * wp + ox * stride) * c;
      }
      v128_t a00 = bias0, a01 = bias1, a10 = bias0, a11 = bias1;
      v128_t a20 = bias0, a21 = bias1, a30 = bias0, a31 = bias1;
      const float *wk = wb;
      for (int t = 0; t < taps; t++) {
        const float *x0 = base[0] + tapoff[t], *x1 = base[1] + tapoff[t];
        const float *x2 = base[2] + tapoff[t], *x3 = base[3] + tapoff[t];
        for (int ci = 0; ci < c; ci++, wk += NR) {
          v128_t w0 = wasm_v128_load(wk), w1 = wasm_v128_load(wk + 4);
          v128_t v = wasm_v128_load32_splat(x0 + ci);
          a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(v, w0));
          a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(v, w1));
          v = wasm_v128_load32_splat(x1 + ci);
          a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(v, w0));
          a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(v, w1));
          v = wasm_v128_load32_splat(x2 + ci);
          a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(v, w0));
          a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(v, w1));
          v = wasm_v128_load32_splat(x3 + ci);
          a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(v, w0));
          a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(v, w1));
        }
      }
      float *yq = y + (unsigned long)q * ystride + yoff + b * NR;
      store_block(yq, wasm_f32x4_max(a00, floor), wasm_f32x4_max(a01, floor), valid);
      store_block(yq + ystride, wasm_f32x4_max(a10, floor), wasm_f32x4_max(a11, floor), valid);
      store_block(yq + 2 * ystride, wasm_f32x4_max(a20, floor), wasm_f32x4_max(a21, floor), valid);
      store_block(yq + 3 * ystride, wasm_f32x4_max(a30, floor), wasm_f32x4_max(a31, floor), valid);
    }
    for (; q < q1; q++) {
      int oy = q / ow, ox = q % ow;
      const float *x0 = x + ((oy * stride) * wp + ox * stride) * c;
      v128_t a0 = bias0, a1 = bias1;
      const float *wk = wb;
      for (int t = 0; t < taps; t++) {
        const float *xt = x0 + tapoff[t];
        for (int ci = 0; ci < c; ci++, wk += NR) {
          v128_t v = wasm_v128_load32_splat(xt + ci);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(v, wasm_v128_load(wk)));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(v, wasm_v128_load(wk + 4)));
        }
      }
      store_block(y + (unsigned long)q * ystride + yoff + b * NR, wasm_f32x4_max(a0, floor),
                  wasm_f32x4_max(a1, floor), valid);
    }
  }
}

/** The whole convolution on this thread (conv_prepare, then its one part); arguments as
 * conv_prepare's, the padded copy released before returning. */
__attribute__((export_name("conv"))) void conv(const float *x, int h, int w, int c,
                                               const float *packed, const float *bias, int o,
                                               int kh, int kw, int stride, int pad, float *y,
                                               int ystride, int yoff, int relu) {
  unsigned long scratch = mark();
  ConvJob job;
  int p = conv_prepare(&job, x, h, w, c, packed, bias, o, kh, kw, stride, pad, y, ystride, yoff,
                       relu);
  conv_part(&job, 0, p);
  reset(scratch);
}

/** 3x3 / 2 max-pool, ceil mode (windows clipped at the far edge), channels-last; (oh, ow) from
 * the caller (the rule of squeezenet.js's maxPool). */
__attribute__((export_name("maxpool"))) void maxpool(const float *x, int h, int w, int c, float *y,
                                                     int oh, int ow) {
  for (int oy = 0; oy < oh; oy++)
    for (int ox = 0; ox < ow; ox++) {
      float *d = y + (oy * ow + ox) * c;
      int y1 = oy * 2 + 3 < h ? oy * 2 + 3 : h, x1 = ox * 2 + 3 < w ? ox * 2 + 3 : w;
      int ci = 0;
      for (; ci + 4 <= c; ci += 4) {
        v128_t m = wasm_v128_load(x + ((oy * 2) * w + ox * 2) * c + ci);
        for (int iy = oy * 2; iy < y1; iy++)
          for (int ix = ox * 2; ix < x1; ix++)
            m = wasm_f32x4_pmax(m, wasm_v128_load(x + (iy * w + ix) * c + ci));
        wasm_v128_store(d + ci, m);
      }
      for (; ci < c; ci++) {
        float m = x[((oy * 2) * w + ox * 2) * c + ci];
        for (int iy = oy * 2; iy < y1; iy++)
          for (int ix = ox * 2; ix < x1; ix++) {
            float v = x[(iy * w + ix) * c + ci];
            if (v > m) m = v;
          }
        d[ci] = m;
      }
    }
}

/** a += b, n floats (a bypass connection). */
__attribute__((export_name("add"))) void add(float *a, const float *b, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(a + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) a[i] += b[i];
}

/** Global average pool: (P, C) -> (C). Sums in pixel order, as squeezenet.js does per channel. */
__attribute__((export_name("global_average"))) void global_average(const float *x, int p, int c,
                                                                   float *y) {
  for (int ci = 0; ci < c; ci++) y[ci] = 0.0f;
  for (int q = 0; q < p; q++) {
    const float *r = x + q * c;
    int ci = 0;
    for (; ci + 4 <= c; ci += 4)
      wasm_v128_store(y + ci, wasm_f32x4_add(wasm_v128_load(y + ci), wasm_v128_load(r + ci)));
    for (; ci < c; ci++) y[ci] += r[ci];
  }
  for (int ci = 0; ci < c; ci++) y[ci] /= (float)p;
}
