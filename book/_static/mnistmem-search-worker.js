/* Exact nearest training digits, in a Web Worker so that the page never freezes.
 *
 * The arithmetic is that of mnistmem.neighbors.knn: squared distances in byte units are exact integers
 * (d2 = |q|² + |t|² - 2 q·t, every term an integer below 2^31), the k nearest are kept ordered by
 * (d2, index) — a later digit at the same distance never displaces an earlier one — and a distance is
 * Math.sqrt(d2) / 255, the same correctly rounded double operations as numpy's sqrt(d2) / 255.0.
 * The criteria follow mnistmem.copies; SSIM follows scikit-image's structural_similarity with its defaults
 * (7 × 7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance, data_range 255), over the windows that
 * lie wholly inside the image (the ones scikit-image averages after cropping its border).
 * Data: gzip files of raw bytes from the book's own _static/search folder, decompressed by the browser's
 * DecompressionStream, each fetched once, on first use. Plain JavaScript, no libraries.
 */
"use strict";

const PIXELS = 784;
let base = null;
const files = {};
const sets = {};

function fetchBytes(name) {
  if (!files[name]) {
    files[name] = (async () => {
      if (typeof DecompressionStream === "undefined") {
        throw new Error("this browser cannot decompress the data (it lacks DecompressionStream); a current browser can");
      }
      const response = await fetch(base + name);
      if (!response.ok) throw new Error(`could not load ${name} (HTTP ${response.status})`);
      const stream = response.body.pipeThrough(new DecompressionStream("gzip"));
      return new Uint8Array(await new Response(stream).arrayBuffer());
    })().catch((error) => {
      delete files[name]; // a failed download is tried again next time
      throw error;
    });
  }
  return files[name];
}

function squaredNorms(images, n) {
  const norms = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    const off = j * PIXELS;
    for (let i = 0; i < PIXELS; i++) s += images[off + i] * images[off + i];
    norms[j] = s;
  }
  return norms;
}

/* A set of images with their labels (or null) and exact squared norms, loaded once. */
function imageSet(key, imagesFile, labelsFile) {
  if (!sets[key]) {
    sets[key] = (async () => {
      const [images, labels] = await Promise.all([
        fetchBytes(imagesFile),
        labelsFile ? fetchBytes(labelsFile) : Promise.resolve(null),
      ]);
      const n = images.length / PIXELS;
      return { images, labels, n, norms: squaredNorms(images, n) };
    })().catch((error) => {
      delete sets[key];
      throw error;
    });
  }
  return sets[key];
}

const train = () => imageSet("train", "train-images.u8.gz", "train-labels.u8.gz");
const test = () => imageSet("test", "test-images.u8.gz", "test-labels.u8.gz");
const samples = (tag) => imageSet("samples-" + tag, `samples-${tag}.u8.gz`, null);

function credits(tag) {
  const key = "nn1-" + tag;
  if (!sets[key]) {
    sets[key] = fetchBytes(`samples-${tag}-nn1.u16le.gz`).then(
      (b) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2),
    );
  }
  return sets[key];
}

/* The k nearest images of `set` to `query` (Uint8Array 784): exact integer d2, ties by lower index. */
function nearest(query, set, k) {
  const where = [];
  const value = [];
  let qn = 0;
  for (let i = 0; i < PIXELS; i++) {
    if (query[i] !== 0) {
      where.push(i);
      value.push(query[i]);
      qn += query[i] * query[i];
    }
  }
  const w = Int32Array.from(where);
  const v = Int32Array.from(value);
  const m = w.length;
  const images = set.images;
  const norms = set.norms;
  const bestD = new Float64Array(k).fill(Infinity);
  const bestI = new Int32Array(k).fill(-1);
  let filled = 0;
  let worst = Infinity;
  for (let j = 0; j < set.n; j++) {
    const off = j * PIXELS;
    let dot = 0;
    for (let t = 0; t < m; t++) dot += v[t] * images[off + w[t]];
    const d2 = qn + norms[j] - 2 * dot;
    if (d2 < worst) {
      let p = filled < k ? filled : k - 1;
      while (p > 0 && bestD[p - 1] > d2) {
        bestD[p] = bestD[p - 1];
        bestI[p] = bestI[p - 1];
        p--;
      }
      bestD[p] = d2;
      bestI[p] = j;
      if (filled < k) filled++;
      if (filled === k) worst = bestD[k - 1];
    }
  }
  return { d2: Array.from(bestD.subarray(0, filled)), index: Array.from(bestI.subarray(0, filled)) };
}

/* numpy's pairwise summation of float64 (n <= 128: eight running sums), so that a mean equals numpy's. */
function numpySum(a) {
  const n = a.length;
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i];
    return s;
  }
  if (n > 128) throw new Error("numpySum: only n <= 128 is implemented");
  const r = a.slice(0, 8);
  let i = 8;
  for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[i + j];
  let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; i++) s += a[i];
  return s;
}

/* skimage.metrics.structural_similarity(a, b, data_range=255) with its defaults, for 28 × 28 bytes. */
function ssim(a, b) {
  const size = 28;
  const win = 7;
  const pad = 3;
  const np = win * win;
  const covNorm = np / (np - 1);
  const k1 = 0.01 * 255, k2 = 0.03 * 255;
  const C1 = k1 * k1, C2 = k2 * k2;
  let total = 0;
  for (let r = pad; r < size - pad; r++) {
    for (let c = pad; c < size - pad; c++) {
      let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
      for (let y = r - pad; y <= r + pad; y++) {
        for (let x = c - pad; x <= c + pad; x++) {
          const p = a[y * size + x];
          const q = b[y * size + x];
          sa += p;
          sb += q;
          saa += p * p;
          sbb += q * q;
          sab += p * q;
        }
      }
      const ux = sa / np, uy = sb / np, uxx = saa / np, uyy = sbb / np, uxy = sab / np;
      const vx = covNorm * (uxx - ux * ux);
      const vy = covNorm * (uyy - uy * uy);
      const vxy = covNorm * (uxy - ux * uy);
      const A1 = 2 * ux * uy + C1, A2 = 2 * vxy + C2;
      const B1 = ux * ux + uy * uy + C1, B2 = vx + vy + C2;
      total += (A1 * A2) / (B1 * B2);
    }
  }
  return total / ((size - 2 * pad) * (size - 2 * pad));
}

function scores(distance, query, nn1Image, carlini) {
  const d0 = distance[0];
  const mean = numpySum(distance.slice(0, carlini.n)) / carlini.n;
  return {
    l2: d0,
    nn_ratio: d0 === 0 ? 0 : d0 / distance[1],
    calibrated_l2: d0 === 0 ? 0 : d0 / (carlini.alpha * mean),
    ssim: ssim(query, nn1Image),
  };
}

async function search(message) {
  const trainSet = await train();
  let query;
  if (message.source === "test") {
    const t = await test();
    if (!(message.index >= 0 && message.index < t.n)) throw new Error(`no test digit ${message.index}`);
    query = t.images.slice(message.index * PIXELS, (message.index + 1) * PIXELS);
  } else if (message.source === "sample") {
    const s = await samples(message.model);
    if (!(message.index >= 0 && message.index < s.n)) throw new Error(`no sample ${message.index}`);
    query = s.images.slice(message.index * PIXELS, (message.index + 1) * PIXELS);
  } else {
    query = Uint8Array.from(message.pixels);
  }
  const start = performance.now();
  const found = nearest(query, trainSet, message.k);
  const ms = performance.now() - start;
  const distance = found.d2.map((d2) => Math.sqrt(d2) / 255);
  const shown = found.index.slice(0, message.shown);
  const images = shown.map((j) => trainSet.images.slice(j * PIXELS, (j + 1) * PIXELS));
  return {
    query: Array.from(query),
    index: found.index,
    d2: found.d2,
    distance,
    labels: found.index.map((j) => trainSet.labels[j]),
    images: images.map((im) => Array.from(im)),
    scores: scores(distance, query, images[0], message.carlini),
    ms,
    n: trainSet.n,
  };
}

async function reverse(message) {
  const trainSet = await train();
  const j = message.index;
  if (!(j >= 0 && j < trainSet.n)) throw new Error(`no training digit ${j}`);
  const digit = trainSet.images.slice(j * PIXELS, (j + 1) * PIXELS);
  const models = [];
  let ms = 0;
  for (const tag of message.models) {
    const [set, nn1] = await Promise.all([samples(tag), credits(tag)]);
    const start = performance.now();
    const found = nearest(digit, set, message.k);
    ms += performance.now() - start;
    const crediting = [];
    for (let i = 0; i < nn1.length; i++) if (nn1[i] === j) crediting.push(i);
    models.push({
      tag,
      index: found.index,
      d2: found.d2,
      distance: found.d2.map((d2) => Math.sqrt(d2) / 255),
      images: found.index.map((i) => Array.from(set.images.slice(i * PIXELS, (i + 1) * PIXELS))),
      credits: crediting,
      n: set.n,
    });
  }
  return { index: j, label: trainSet.labels[j], image: Array.from(digit), models, ms };
}

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "init") {
      base = message.base;
      return;
    }
    const result = message.type === "reverse" ? await reverse(message) : await search(message);
    self.postMessage({ id: message.id, ok: true, result });
  } catch (error) {
    self.postMessage({ id: message.id, ok: false, error: String((error && error.message) || error) });
  }
};
