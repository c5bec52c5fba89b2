// The EMNIST-style framing of recognizer/preprocess.py (with recognizer/ink.py), in JavaScript, for the page.
//
// The same algorithm step by step as the Python path a canvas drawing takes (`canvas_value`, then
// `to_model_input`): the layer composited over white, Pillow's integer luma, the paper level and the ink rule,
// the despeckled half-ink box, the working frame, the stroke thickening, the blur and the reframing. Where the
// Python side calls Pillow, this file computes what Pillow computes: its resampling is a separable convolution
// (coefficients in double, the support widened by the downscale factor, the box given as float32, a float32
// store after each pass), its rank filters pad by repeating the edge. numpy's float32 arithmetic is followed
// with Math.fround, so the two sides agree to rounding (tests/test_preprocess_parity.py states the tolerance).
//
// An ES module with no imports: the page loads it as a module, node imports it for the parity test.

export const SIZE = 28;
export const WORK = 128; // NIST's working resolution: the blur's sigma is given at this scale
export const WORK_INNER = 100; // long side of the half-ink box in the working frame
export const BLUR_SIGMA = 1.0;
export const FRAME_LEVEL = 0.12; // ink level whose bounding box frames the character
export const FRAME_EXTENT = 24.0 / SIZE; // that box's long side as a fraction of the output
export const MIN_STROKE = 1.2; // thinner strokes (in output pixels) are thickened
export const TARGET_STROKE = 1.8;
export const MAX_SIDE = 1024; // the Python side downscales larger inputs first: this file takes canvases only
export const MIN_CONTRAST = 0.08; // ink must differ from the paper by this much (0..1 grey scale)
export const MIN_EXTENT = 0.015; // ink whose box is smaller than this fraction of the image is noise
export const FILLED = 0.6; // ink covering more of the image than this is a filled canvas

const f32 = Math.fround;

/** Blank, nearly blank or filled input: the same refusals, with the same details, as the Python side. */
export class NothingDrawn extends Error {
  constructor(detail = '') {
    const message = 'Nothing drawn yet: draw a character';
    super(detail ? `${message} (${detail})` : message);
    this.name = 'NothingDrawn';
    this.detail = detail;
  }
}

/** Input this module cannot read (not an RGBA canvas of a sensible size). */
export class BadImage extends Error {
  constructor(message) {
    super(message);
    this.name = 'BadImage';
  }
}

// ------------------------------------------------------------------ public API

/**
 * The model's (28, 28) input, row-major Float32Array in [0, 1], from a canvas's RGBA pixels (ImageData.data:
 * dark strokes whose alpha is the ink, transparent paper), as the server computes it from the canvas's PNG.
 */
export function toModelInput(rgba, width, height) {
  return fromGrey(layerGrey(rgba, width, height), width, height);
}

/** The model's input from 8-bit grey (the composite's luma): ink levels, the half-ink box, the framing. */
export function fromGrey(grey, width, height) {
  const ink = inkLevels(grey, width, height);
  return frame(ink, maskBox(ink.mask(), width, height));
}

/**
 * The layer over white paper as Pillow's 8-bit luma: webapp.canvas.canvas_value's composite (float32
 * arithmetic, numpy's round-half-even) converted to "L" ((19595 R + 38470 G + 7471 B + 32768) >> 16).
 */
export function layerGrey(rgba, width, height) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new BadImage(`expected a positive integer width and height, got ${width}x${height}`);
  }
  if (Math.max(width, height) > MAX_SIDE) {
    throw new BadImage(`a canvas of at most ${MAX_SIDE} pixels a side, got ${width}x${height}`);
  }
  if (!rgba || rgba.length !== width * height * 4) {
    throw new BadImage(`expected ${width * height * 4} RGBA bytes for ${width}x${height}, got ${rgba && rgba.length}`);
  }
  const over = overWhite();
  const grey = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < grey.length; i++, p += 4) {
    const row = rgba[p + 3] << 8;
    grey[i] = (over[row | rgba[p]] * 19595 + over[row | rgba[p + 1]] * 38470 + over[row | rgba[p + 2]] * 7471 + 0x8000) >>> 16;
  }
  return grey;
}

let overTable = null;

/** A channel value over white for every (alpha, value) pair, at alpha * 256 + value: numpy's float32 steps. */
function overWhite() {
  if (overTable) return overTable;
  overTable = new Uint8Array(256 * 256);
  for (let a = 0; a < 256; a++) {
    const alpha = f32(a / 255);
    const paper = f32(255 * f32(1 - alpha));
    for (let v = 0; v < 256; v++) overTable[(a << 8) | v] = roundHalfEven(f32(f32(v * alpha) + paper));
  }
  return overTable;
}

// ------------------------------------------------------------------ finding the ink

/** numpy's round (half to even), as used when compositing. */
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Python's round() of a non-negative double (half to even). */
function pyRound(x) {
  return roundHalfEven(x);
}

/** np.percentile (linear) of 8-bit values given by their histogram (recognizer.ink._percentiles8). */
function percentiles8(hist, n, qs) {
  const ends = new Float64Array(256);
  let run = 0;
  for (let v = 0; v < 256; v++) ends[v] = run += hist[v];
  const searchRight = (target) => {
    let v = 0;
    while (v < 256 && ends[v] <= target) v++;
    return v;
  };
  return qs.map((q) => {
    const virtual = (n - 1) * (q / 100);
    const below = Math.trunc(virtual);
    const above = Math.min(below + 1, n - 1);
    const t = virtual - below;
    const a = searchRight(below);
    const b = searchRight(above);
    const diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  });
}

/** The border's histogram: its top and bottom rows, then its left and right columns (corners twice). */
function borderHistogram(grey, w, h) {
  const width = Math.max(1, pyRound(0.02 * Math.min(h, w)));
  const hist = new Float64Array(256);
  let n = 0;
  const rows = (y0, y1) => {
    for (let y = Math.max(0, y0); y < Math.min(h, y1); y++) {
      for (let x = 0; x < w; x++) hist[grey[y * w + x]]++, n++;
    }
  };
  const cols = (x0, x1) => {
    for (let y = 0; y < h; y++) {
      for (let x = Math.max(0, x0); x < Math.min(w, x1); x++) hist[grey[y * w + x]]++, n++;
    }
  };
  rows(0, width);
  rows(h - width, h);
  cols(0, width);
  cols(w - width, w);
  return { hist, n };
}

/** The paper's grey level, the image's robust extremes and whether the paper is unevenly lit (8-bit grey). */
function paperLevel(grey, w, h) {
  const unit = 255;
  const { hist, n } = borderHistogram(grey, w, h);
  let ringMin = 256;
  let ringMax = -1;
  for (let v = 0; v < 256; v++) {
    if (hist[v]) {
      ringMin = Math.min(ringMin, v);
      ringMax = Math.max(ringMax, v);
    }
  }
  let lo;
  let mid;
  let hi;
  if (ringMin === ringMax) lo = mid = hi = ringMin;
  else [lo, mid, hi] = percentiles8(hist, n, [10, 50, 90]);
  let paper = mid;
  if (!(hi - lo < 0.5 * unit)) {
    const all = new Float64Array(256);
    for (let i = 0; i < grey.length; i++) all[grey[i]]++;
    paper = percentiles8(all, grey.length, [50])[0];
  }
  const uneven = hi - lo >= 0.1 * unit && Math.min(w, h) >= 16;
  return { paper, extremes: robustExtremes(grey, w, h), uneven };
}

/** Min over 2x2 neighbourhoods of their max, max over them of their min (single noisy pixels are not ink). */
function robustExtremes(a, w, h) {
  if (Math.min(w, h) < 2) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < w * h; i++) lo = Math.min(lo, a[i]), hi = Math.max(hi, a[i]);
    return [lo, hi];
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let y = 0; y + 1 < h; y++) {
    for (let x = 0; x + 1 < w; x++) {
      const p = a[y * w + x];
      const q = a[y * w + x + 1];
      const r = a[(y + 1) * w + x];
      const s = a[(y + 1) * w + x + 1];
      lo = Math.min(lo, Math.max(p, q, r, s));
      hi = Math.max(hi, Math.min(p, q, r, s));
    }
  }
  return [lo, hi];
}

/** np.median of float32 values: the middle one, or the float32 mean of the two middle ones. */
function medianF32(values) {
  const s = Float32Array.from(values).sort();
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : f32(f32(s[n / 2 - 1] + s[n / 2]) / 2);
}

/** The paper's texture in a sample of the ink map: median + 4 robust sigmas (null: clean). */
function noiseFloor(sample) {
  let nonzero = 0;
  for (const v of sample) if (v !== 0) nonzero++;
  if (2 * nonzero < sample.length) return null;
  const median = medianF32(sample);
  const m = f32(median);
  const spread = 1.4826 * medianF32(sample.map((v) => Math.abs(f32(v - m))));
  const floor = Math.min(median + 4 * spread, 0.45);
  return floor > 0 ? floor : null;
}

/** Drop everything up to ``floor`` and stretch the rest back to [0, 1] (float32, in place). */
function aboveFloor(ink, floor) {
  if (floor === null) return ink;
  const f = f32(floor);
  const d = f32(1.0 - floor);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.min(Math.max(f32(f32(ink[i] - f) / d), 0), 1);
  return ink;
}

/** Every 8-bit grey level's ink by the rule (paper, dark ink, peak, noise floor), as float32. */
function inkTable(paper, darkInk, peak, floor) {
  const table = new Float32Array(256);
  const p = f32(paper);
  const scale = f32(1.0 / peak);
  for (let g = 0; g < 256; g++) {
    const v = darkInk ? f32(p - g) : f32(g - p);
    table[g] = Math.min(f32(Math.max(v, 0) * scale), 1);
  }
  return aboveFloor(table, floor);
}

/** Every step'th row and column (recognizer.ink._noise_sample): the rows' and columns' steps. */
function noiseSteps(w, h) {
  return [Math.max(1, Math.floor(h / 256)), Math.max(1, Math.floor(w / 256))];
}

/** The values ``value(i)`` of the noise sample's pixels, as float32. */
function noiseSample(w, h, value) {
  const [sy, sx] = noiseSteps(w, h);
  const out = new Float32Array(Math.ceil(h / sy) * Math.ceil(w / sx));
  let n = 0;
  for (let y = 0; y < h; y += sy) for (let x = 0; x < w; x += sx) out[n++] = value(y * w + x);
  return out;
}

/** An ink map: ``level(i)`` of each pixel, ``mask()`` the half-ink pixels, ``region`` a float32 crop. */
class Ink {
  constructor(w, h, { grey = null, table = null, levels = null }) {
    Object.assign(this, { w, h, grey, table, levels });
  }

  level(i) {
    return this.levels ? this.levels[i] : this.table[this.grey[i]];
  }

  mask() {
    const out = new Uint8Array(this.w * this.h);
    for (let i = 0; i < out.length; i++) out[i] = this.level(i) >= 0.5 ? 1 : 0;
    return out;
  }

  region(y0, y1, x0, x1) {
    const rh = y1 - y0;
    const rw = x1 - x0;
    const out = new Float32Array(rh * rw);
    for (let y = 0; y < rh; y++) for (let x = 0; x < rw; x++) out[y * rw + x] = this.level((y0 + y) * this.w + x0 + x);
    return { a: out, w: rw, h: rh };
  }
}

/** How much ink each pixel holds (0 paper .. 1 full ink), noise removed (recognizer.ink._ink_levels). */
function inkLevels(grey, w, h) {
  const unit = 255;
  const { paper, extremes, uneven } = paperLevel(grey, w, h);
  const [lo, hi] = extremes;
  const darkInk = paper - lo >= hi - paper;
  if (uneven) return unevenInk(grey, w, h, paper, darkInk);
  const peak = darkInk ? paper - lo : hi - paper;
  if (peak < MIN_CONTRAST * unit) throw new NothingDrawn('the image is blank');
  const clean = inkTable(paper, darkInk, peak, null);
  // Mostly clean paper (fewer than half the sampled pixels hold any ink): nothing to remove.
  const [sy, sx] = noiseSteps(w, h);
  let inked = 0;
  let sampled = 0;
  for (let y = 0; y < h; y += sy) {
    for (let x = 0; x < w; x += sx) {
      sampled++;
      if (clean[grey[y * w + x]] !== 0) inked++;
    }
  }
  if (2 * inked < sampled) return new Ink(w, h, { grey, table: clean });
  const floor = noiseFloor(noiseSample(w, h, (i) => clean[grey[i]]));
  return new Ink(w, h, { grey, table: inkTable(paper, darkInk, peak, floor) });
}

/** A photo-like canvas whose border is unevenly lit: flatten the lighting, then measure the ink on it. */
function unevenInk(grey8, w, h, paper8, darkInk) {
  const grey = new Float32Array(w * h);
  let paper = paper8 / 255;
  for (let i = 0; i < grey.length; i++) grey[i] = f32(grey8[i] / 255);
  if (darkInk) {
    for (let i = 0; i < grey.length; i++) grey[i] = f32(1.0 - grey[i]);
    paper = 1.0 - paper;
  }
  const flat = flattenLighting(grey, w, h, paper);
  const p = f32(paper);
  const ink = new Float32Array(w * h);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.max(f32(flat[i] - p), 0);
  const peak = robustExtremes(ink, w, h)[1];
  if (peak < MIN_CONTRAST) throw new NothingDrawn('the image is blank');
  const scale = f32(1.0 / peak);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.min(f32(ink[i] * scale), 1);
  const floor = noiseFloor(noiseSample(w, h, (i) => ink[i]));
  return new Ink(w, h, { levels: aboveFloor(ink, floor) });
}

/** Subtract a smooth estimate of the paper's brightness (grey has bright ink here). */
function flattenLighting(grey, w, h, paper) {
  const sh = Math.max(1, pyRound((64 * h) / w));
  let small = resample({ a: grey, w, h }, [0, 0, w, h], 64, sh, BOX);
  small = rankFilter(small, 9, 'min');
  small = rankFilter(small, 5, 'max');
  const background = resample(small, [0, 0, small.w, small.h], w, h, BILINEAR);
  const p = f32(paper);
  const out = new Float32Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = f32(f32(grey[i] - background.a[i]) + p);
  return out;
}

/** Pillow's MinFilter/MaxFilter on a float image: the edge repeated outward, then the window's extreme. */
function rankFilter(img, size, kind) {
  const { a, w, h } = img;
  const r = Math.floor(size / 2);
  const out = new Float32Array(w * h);
  const pick = kind === 'min' ? Math.min : Math.max;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = a[y * w + x];
      for (let dy = -r; dy <= r; dy++) {
        const yy = Math.min(h - 1, Math.max(0, y + dy));
        for (let dx = -r; dx <= r; dx++) v = pick(v, a[yy * w + Math.min(w - 1, Math.max(0, x + dx))]);
      }
      out[y * w + x] = v;
    }
  }
  return { a: out, w, h };
}

/** (top, left, bottom, right) of the half-ink mask after despeckling, bottom/right exclusive. */
function maskBox(mask, w, h) {
  let count = 0;
  for (let i = 0; i < mask.length; i++) count += mask[i];
  if (count > FILLED * mask.length) throw new NothingDrawn('the canvas is filled: clear it and draw one character');
  const factor = Math.max(1, Math.ceil(Math.max(h, w) / 256));
  const bw = Math.ceil(w / factor);
  const bh = Math.ceil(h / factor);
  const blocks = new Uint8Array(bw * bh);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) if (mask[y * w + x]) blocks[Math.floor(y / factor) * bw + Math.floor(x / factor)] = 1;
  }
  const [r0, r1, c0, c1] = extent(blocks, bw, bh);
  if (r1 < 0) throw new NothingDrawn('no ink found');
  const y0 = Math.max(0, r0 - 1);
  const x0 = Math.max(0, c0 - 1);
  const kh = Math.min(bh, r1 + 2) - y0;
  const kw = Math.min(bw, c1 + 2) - x0;
  const sub = new Uint8Array(kh * kw);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) sub[y * kw + x] = blocks[(y0 + y) * bw + x0 + x];
  const kept = despeckle(sub, kw, kh);
  if (!kept.some((v) => v)) throw new NothingDrawn('no ink found');
  // The kept blocks' edge rows and columns, then the mask's own first and last inked line inside them.
  const [kr0, kr1, kc0, kc1] = extent(kept, kw, kh);
  const inked = (px, py) => px < w && py < h && mask[py * w + px] === 1;
  const edge = (blockIndex, vertical, pick) => {
    // Lines (rows when vertical) of the block line ``blockIndex`` holding ink inside kept blocks.
    const hits = [];
    for (let d = 0; d < factor; d++) {
      let any = false;
      const line = blockIndex * factor + d;
      for (let b = 0; b < (vertical ? kw : kh) && !any; b++) {
        if (!(vertical ? kept[blockIndex * kw + b] : kept[b * kw + blockIndex])) continue;
        for (let e = 0; e < factor && !any; e++) {
          const along = b * factor + e;
          any = vertical ? inked(x0 * factor + along, y0 * factor + line) : inked(x0 * factor + line, y0 * factor + along);
        }
      }
      if (any) hits.push(line);
    }
    return pick === 0 ? hits[0] : hits[hits.length - 1];
  };
  const top = y0 * factor + edge(kr0, true, 0);
  const bottom = y0 * factor + edge(kr1, true, -1) + 1;
  const left = x0 * factor + edge(kc0, false, 0);
  const right = x0 * factor + edge(kc1, false, -1) + 1;
  if (Math.max(bottom - top, right - left) < Math.max(3, MIN_EXTENT * Math.max(h, w))) {
    throw new NothingDrawn('the ink is too small to be a character');
  }
  return [top, left, bottom, right];
}

/** [first row, last row, first column, last column] holding a set cell (-1s when none). */
function extent(m, w, h) {
  let r0 = -1;
  let r1 = -1;
  let c0 = w;
  let c1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!m[y * w + x]) continue;
      if (r0 < 0) r0 = y;
      r1 = y;
      c0 = Math.min(c0, x);
      c1 = Math.max(c1, x);
    }
  }
  return [r0, r1, c0, c1];
}

/** 3x3 binary dilation (outside the array counts as unset). */
function dilate3(m, w, h) {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let dy = -1; dy <= 1 && !v; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1 && !v; dx++) {
          const xx = x + dx;
          if (xx >= 0 && xx < w && m[yy * w + xx]) v = 1;
        }
      }
      out[y * w + x] = v;
    }
  }
  return out;
}

/** Morphological opening (3x3), unless it would erase most of the ink (very thin strokes). */
function despeckle(blocks, w, h) {
  const not = (m) => m.map((v) => 1 - v);
  const opened = dilate3(not(dilate3(not(blocks), w, h)), w, h);
  const sum = (m) => m.reduce((s, v) => s + v, 0);
  return sum(opened) >= 0.5 * sum(blocks) ? opened : blocks;
}

// ------------------------------------------------------------------ Pillow's resampling

const BOX = { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0) };
const BILINEAR = {
  support: 1.0,
  f: (x) => {
    x = Math.abs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
  },
};
const BICUBIC = {
  support: 2.0,
  f: (x) => {
    const a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
  },
};

/** Pillow's precompute_coeffs: per output pixel, the first input pixel, the count and the weights. */
function coefficients(inSize, in0, in1, outSize, filter) {
  const scale = f32(in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = filter.support * filterscale;
  const ss = 1.0 / filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(Math.max(0, xmax));
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      k[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) k[x] /= ww;
    out.push({ xmin, k });
  }
  return out;
}

/**
 * Image.resize((outW, outH), filter, box) of a mode "F" image: the box as float32, a horizontal pass then a
 * vertical one, sums in double and each pass stored as float32.
 */
function resample(img, box, outW, outH, filter) {
  const { a, w, h } = img;
  const [b0, b1, b2, b3] = box.map(f32);
  const horiz = coefficients(w, b0, b2, outW, filter);
  const vert = coefficients(h, b1, b3, outH, filter);
  const yFirst = vert[0].xmin;
  const yLast = vert[outH - 1].xmin + vert[outH - 1].k.length;
  const temp = new Float32Array(Math.max(0, yLast - yFirst) * outW);
  for (let y = yFirst; y < yLast; y++) {
    for (let xx = 0; xx < outW; xx++) {
      const { xmin, k } = horiz[xx];
      let ss = 0.0;
      for (let x = 0; x < k.length; x++) ss += a[y * w + x + xmin] * k[x];
      temp[(y - yFirst) * outW + xx] = ss;
    }
  }
  const out = new Float32Array(outW * outH);
  for (let yy = 0; yy < outH; yy++) {
    const { xmin, k } = vert[yy];
    for (let xx = 0; xx < outW; xx++) {
      let ss = 0.0;
      for (let y = 0; y < k.length; y++) ss += temp[(y + xmin - yFirst) * outW + xx] * k[y];
      out[yy * outW + xx] = ss;
    }
  }
  return { a: out, w: outW, h: outH };
}

// ------------------------------------------------------------------ framing

/** Crop, blur, reframe and downscale the ink inside ``box`` to the EMNIST layout (recognizer.preprocess.frame). */
function frame(ink, box) {
  let work = toWorkingFrame(ink, box);
  work = thicken(work);
  work = gaussianBlur(work, BLUR_SIGMA);
  const out = reframe(work);
  const peak = maxOf(out.a);
  if (peak <= 0) throw new NothingDrawn('no ink found');
  return out.a.map((v) => f32(v / peak));
}

function maxOf(a) {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

/** The ink around ``box`` as a WORK x WORK image whose half-ink box is WORK_INNER long. */
function toWorkingFrame(ink, [top, left, bottom, right]) {
  const longest = Math.max(bottom - top, right - left);
  const rim = Math.ceil(Math.max(2.0, 0.03 * longest));
  const y0 = Math.max(0, top - rim);
  const x0 = Math.max(0, left - rim);
  const kept = ink.region(y0, Math.min(ink.h, bottom + rim), x0, Math.min(ink.w, right + rim));
  const centre = [(top + bottom) / 2 - y0, (left + right) / 2 - x0];
  const work = resampleSquare(kept, centre, (longest * WORK) / WORK_INNER, WORK);
  const peak = maxOf(work.a);
  if (peak <= 0) throw new NothingDrawn('no ink found');
  work.a = work.a.map((v) => f32(v / peak));
  return work;
}

/** The square of ``side`` pixels centred on ``centre`` (y, x), zero outside the image, bicubic to size x size. */
function resampleSquare(img, [cy, cx], side, size) {
  const y0 = Math.floor(cy - side / 2) - 2;
  const x0 = Math.floor(cx - side / 2) - 2;
  const y1 = Math.ceil(cy + side / 2) + 2;
  const x1 = Math.ceil(cx + side / 2) + 2;
  const cw = x1 - x0;
  const ch = y1 - y0;
  const canvas = new Float32Array(cw * ch);
  for (let y = Math.max(0, y0); y < Math.min(img.h, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(img.w, x1); x++) canvas[(y - y0) * cw + x - x0] = img.a[y * img.w + x];
  }
  const region = [cx - side / 2 - x0, cy - side / 2 - y0, cx + side / 2 - x0, cy + side / 2 - y0];
  const out = resample({ a: canvas, w: cw, h: ch }, region, size, size, BICUBIC);
  out.a = out.a.map((v) => Math.max(v, 0));
  return out;
}

/** Mean stroke width in pixels: twice the inked area over its outline length. */
export function strokeWidth(img, level = 0.5) {
  const { a, w, h } = img;
  const on = (y, x) => a[y * w + x] >= level;
  let area = 0;
  let edges = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const m = on(y, x);
      if (m) area++;
      if (y + 1 < h && m !== on(y + 1, x)) edges++;
      if (x + 1 < w && m !== on(y, x + 1)) edges++;
      if (m) edges += (y === 0) + (y === h - 1) + (x === 0) + (x === w - 1); // the image's own edges
    }
  }
  return (2.0 * area) / Math.max(edges, 1);
}

/** Widen strokes drawn with a pen much finer than EMNIST's (a round brush, via shifted maxima). */
function thicken(work) {
  const toOutput = (SIZE * FRAME_EXTENT) / WORK_INNER;
  const width = strokeWidth(work) * toOutput;
  if (width >= MIN_STROKE) return work;
  const radius = (TARGET_STROKE - width) / toOutput / 2;
  const r = Math.ceil(radius);
  const n = work.w;
  const out = Float32Array.from(work.a);
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      if (dy * dy + dx * dx > radius * radius) continue;
      for (let y = Math.max(0, -dy); y < Math.min(n, n - dy); y++) {
        for (let x = Math.max(0, -dx); x < Math.min(n, n - dx); x++) {
          const v = work.a[(y + dy) * n + x + dx];
          if (v > out[y * n + x]) out[y * n + x] = v;
        }
      }
    }
  }
  return { a: out, w: n, h: n };
}

/** Separable Gaussian blur with zero padding, in float32 (recognizer.preprocess.gaussian_blur). */
export function gaussianBlur(img, sigma) {
  const { a, w, h } = img;
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  const s = f32(sigma);
  for (let i = 0; i < kernel.length; i++) {
    const x = f32(f32(i - radius) / s);
    kernel[i] = f32(Math.exp(f32(-0.5 * f32(x * x))));
  }
  let total = 0;
  for (const v of kernel) total = f32(total + v);
  for (let i = 0; i < kernel.length; i++) kernel[i] = f32(kernel[i] / total);
  const rows = new Float32Array(w * h);
  for (let i = 0; i < kernel.length; i++) {
    const wt = kernel[i];
    for (let y = 0; y < h; y++) {
      const src = y + i - radius;
      if (src < 0 || src >= h) {
        continue; // a zero row: adding weight * 0 leaves the float32 sum as it is
      }
      for (let x = 0; x < w; x++) rows[y * w + x] = f32(rows[y * w + x] + f32(wt * a[src * w + x]));
    }
  }
  const out = new Float32Array(w * h);
  for (let i = 0; i < kernel.length; i++) {
    const wt = kernel[i];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = x + i - radius;
        if (src >= 0 && src < w) out[y * w + x] = f32(out[y * w + x] + f32(wt * rows[y * w + src]));
      }
    }
  }
  return { a: out, w, h };
}

/** NIST's crop of the blurred image: centre its faint-ink box in a square, then bicubic to 28. */
function reframe(work) {
  const { a, w, h } = work;
  const level = f32(FRAME_LEVEL * maxOf(a));
  let top = h;
  let bottom = -1;
  let left = w;
  let right = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (a[y * w + x] >= level) {
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
        left = Math.min(left, x);
        right = Math.max(right, x);
      }
    }
  }
  bottom += 1;
  right += 1;
  const side = Math.max(bottom - top, right - left) / FRAME_EXTENT;
  return resampleSquare(work, [(top + bottom) / 2, (left + right) / 2], side, SIZE);
}
