/* "Was this digit in the training set?": the page's controls. The search runs in
 * mnistmem-search-worker.js; the numbers it is judged by (thresholds, calibration) come from the page's
 * JSON, exported by mnistmem.search_page when the book is built. Plain JavaScript, no libraries.
 */
"use strict";
(function () {
  const root = document.getElementById("mnistmem-search");
  if (!root) return;
  const config = JSON.parse(document.getElementById("ms-config").textContent);
  const $ = (id) => document.getElementById(id);
  const status = $("ms-status");
  const FIELD = 28;
  const BOX = 20;

  // ------------------------------------------------------------------ the MNIST centring (= Python's)
  /* Integer weights: overlap of source cell s with target cell t when `source` cells become `target`. */
  function overlaps(source, target) {
    const w = [];
    for (let t = 0; t < target; t++) {
      const row = new Array(source).fill(0);
      for (let s = 0; s < source; s++) {
        const low = Math.max(t * source, s * target);
        const high = Math.min((t + 1) * source, (s + 1) * target);
        row[s] = Math.max(high - low, 0);
      }
      w.push(row);
    }
    return w;
  }
  const floorDiv = (a, b) => Math.floor(a / b); // exact here: |a|, b < 2^53 and a/b is never within 1e-12 of an integer unless it is one

  /* mnistmem.search_page.centre_like_mnist: bounding box to 20 × 20 (shape kept, area means rounded half
   * up), centre of mass to pixel (14, 14) of a 28 × 28 field (nearest pixel, half up). `grey`: H × W bytes. */
  function centreLikeMnist(grey, height, width) {
    const out = new Uint8Array(FIELD * FIELD);
    let r0 = height, r1 = -1, c0 = width, c1 = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (grey[y * width + x] !== 0) {
          if (y < r0) r0 = y;
          if (y > r1) r1 = y;
          if (x < c0) c0 = x;
          if (x > c1) c1 = x;
        }
      }
    }
    if (r1 < 0) return out;
    const h = r1 - r0 + 1, w = c1 - c0 + 1;
    const longest = Math.max(h, w);
    const th = Math.max(1, floorDiv(BOX * h + floorDiv(longest, 2), longest));
    const tw = Math.max(1, floorDiv(BOX * w + floorDiv(longest, 2), longest));
    const wy = overlaps(h, th), wx = overlaps(w, tw);
    // rows first: tmp[t][x] = sum_y wy[t][y] * crop[y][x]; then columns
    const tmp = [];
    for (let t = 0; t < th; t++) {
      const row = new Array(w).fill(0);
      for (let y = 0; y < h; y++) {
        const k = wy[t][y];
        if (k === 0) continue;
        const off = (r0 + y) * width + c0;
        for (let x = 0; x < w; x++) row[x] += k * grey[off + x];
      }
      tmp.push(row);
    }
    const area = h * w;
    const box = new Array(th * tw).fill(0);
    let mass = 0, sy = 0, sx = 0;
    for (let t = 0; t < th; t++) {
      for (let u = 0; u < tw; u++) {
        let num = 0;
        const weights = wx[u];
        for (let x = 0; x < w; x++) if (weights[x] !== 0) num += weights[x] * tmp[t][x];
        const v = floorDiv(2 * num + area, 2 * area);
        box[t * tw + u] = v;
        mass += v;
        sy += t * v;
        sx += u * v;
      }
    }
    let oy, ox;
    if (mass === 0) {
      oy = floorDiv(FIELD - th, 2);
      ox = floorDiv(FIELD - tw, 2);
    } else {
      oy = floorDiv(29 * mass - 2 * sy, 2 * mass);
      ox = floorDiv(29 * mass - 2 * sx, 2 * mass);
    }
    for (let t = 0; t < th; t++) {
      const y = t + oy;
      if (y < 0 || y >= FIELD) continue;
      for (let u = 0; u < tw; u++) {
        const x = u + ox;
        if (x >= 0 && x < FIELD) out[y * FIELD + x] = box[t * tw + u];
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ drawing
  const canvas = $("ms-canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const SIZE = canvas.width;
  const BRUSH = Math.round(SIZE / 12.5); // strokes about as thick, relative to the digit, as MNIST's
  let drawn = false;
  function clearCanvas() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIZE, SIZE);
    drawn = false;
  }
  clearCanvas();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  function stroke(points) {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = BRUSH;
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], BRUSH / 2, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.beginPath();
      ctx.moveTo(points[0][0], points[0][1]);
      for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
    drawn = true;
  }
  function canvasGrey() {
    const rgba = ctx.getImageData(0, 0, SIZE, SIZE).data;
    const grey = new Uint8Array(SIZE * SIZE);
    for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i];
    return grey;
  }
  function at(event) {
    const rect = canvas.getBoundingClientRect();
    return [((event.clientX - rect.left) * SIZE) / rect.width, ((event.clientY - rect.top) * SIZE) / rect.height];
  }
  let last = null;
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke([last]);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const p = at(event);
    stroke([last, p]);
    last = p;
  });
  const lift = () => (last = null);
  canvas.addEventListener("pointerup", lift);
  canvas.addEventListener("pointercancel", lift);

  // keyboard: a pen moved with the arrow keys, Space lifts or lowers it
  const pen = { x: SIZE / 2, y: SIZE / 2, down: false };
  const cursor = document.createElement("div");
  cursor.className = "ms-cursor";
  cursor.hidden = true;
  canvas.parentNode.insertBefore(cursor, canvas.nextSibling);
  const wrap = document.createElement("div");
  wrap.className = "ms-canvas-wrap";
  canvas.parentNode.insertBefore(wrap, canvas);
  wrap.appendChild(canvas);
  wrap.appendChild(cursor);
  function showCursor() {
    cursor.hidden = false;
    cursor.style.left = `${(100 * pen.x) / SIZE}%`;
    cursor.style.top = `${(100 * pen.y) / SIZE}%`;
    cursor.classList.toggle("ms-cursor-down", pen.down);
  }
  canvas.addEventListener("focus", showCursor);
  canvas.addEventListener("blur", () => (cursor.hidden = true));
  canvas.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 2 : 8;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[event.key]) {
      event.preventDefault();
      const from = [pen.x, pen.y];
      pen.x = Math.min(SIZE - 1, Math.max(0, pen.x + moves[event.key][0]));
      pen.y = Math.min(SIZE - 1, Math.max(0, pen.y + moves[event.key][1]));
      if (pen.down) stroke([from, [pen.x, pen.y]]);
    } else if (event.key === " ") {
      event.preventDefault();
      pen.down = !pen.down;
      if (pen.down) stroke([[pen.x, pen.y]]);
      say(pen.down ? "Pen down: the arrow keys draw." : "Pen up: the arrow keys move without drawing.");
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      clearCanvas();
      say("Drawing cleared.");
    } else if (event.key === "Enter") {
      event.preventDefault();
      searchDrawing();
    } else return;
    showCursor();
  });
  $("ms-clear").addEventListener("click", clearCanvas);

  // ------------------------------------------------------------------ the worker
  let worker = null;
  let nextId = 1;
  const waiting = new Map();
  function ask(message) {
    if (!worker) {
      worker = new Worker(new URL(root.dataset.worker, document.baseURI).href);
      worker.postMessage({ type: "init", base: new URL(root.dataset.static, document.baseURI).href });
      worker.onmessage = (event) => {
        const { id, ok, result, error } = event.data;
        const pending = waiting.get(id);
        waiting.delete(id);
        if (pending) (ok ? pending.resolve : pending.reject)(ok ? result : new Error(error));
      };
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage(Object.assign({ id }, message));
    });
  }
  function say(text) {
    status.textContent = text;
  }
  let busy = 0;
  let done = 0; // finished searches and look-ups (the tests wait on it)
  function loadingNote(extra) {
    const firstTime = !worker;
    if (!firstTime) return "Searching…";
    const mb = (config.files["train-images.u8.gz"].bytes + config.files["train-labels.u8.gz"].bytes) / 1e6;
    return `Loading the 60,000 training digits (${mb.toFixed(1)} MB, once)${extra || ""} and searching…`;
  }

  // ------------------------------------------------------------------ showing images and results
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };
  const tableHead = (labels) =>
    el("thead", {}, el("tr", {}, ...labels.map((text) => el("th", { scope: "col", text }))));
  function digitCanvas(pixels, label, cls) {
    const c = el("canvas", { width: FIELD, height: FIELD, role: "img", "aria-label": label, class: cls || "ms-digit" });
    const g = c.getContext("2d");
    const image = g.createImageData(FIELD, FIELD);
    for (let i = 0; i < FIELD * FIELD; i++) {
      image.data.set([pixels[i], pixels[i], pixels[i], 255], 4 * i);
    }
    g.putImageData(image, 0, 0);
    return c;
  }
  const num = (x, places) => x.toFixed(places);
  const pct = (rate) => `${(100 * rate).toFixed(2)}%`;
  function isCopy(criterion, score) {
    const t = criterion.threshold;
    if (criterion.direction === "below") return criterion.inclusive ? score <= t : score < t;
    return criterion.inclusive ? score >= t : score > t;
  }
  function scoreText(name, score) {
    return name === "ssim" ? num(score, 4) : num(score, 3);
  }

  function showResult(result, what) {
    const out = $("ms-result");
    out.replaceChildren();
    out.hidden = false;
    out.dataset.index = JSON.stringify(result.index);
    out.dataset.d2 = JSON.stringify(result.d2);
    out.dataset.distance = JSON.stringify(result.distance.map(String));
    out.dataset.scores = JSON.stringify(Object.fromEntries(Object.entries(result.scores).map(([k, v]) => [k, String(v)])));
    out.dataset.query = JSON.stringify(result.query);
    out.dataset.ms = String(result.ms);
    const head = el("div", { class: "ms-query" });
    head.append(
      digitCanvas(result.query, `${what}, as searched`, "ms-digit ms-digit-large"),
      el("p", {
        text:
          `${what[0].toUpperCase() + what.slice(1)}: its nearest training digit is #${result.index[0].toLocaleString("en-US")} ` +
          `(a ${result.labels[0]}), at pixel distance ${num(result.distance[0], 3)}.`,
      }),
    );
    out.append(el("h3", { class: "ms-h", text: "Is it a copy? Each definition's verdict" }), head);

    const table = el("table", { class: "table ms-table ms-verdicts" });
    table.append(el("caption", { text: "Four definitions of a copy, at the thresholds the book uses" }));
    table.append(tableHead(["definition", "score (a copy when)", "verdict", "test digits it calls copies"]));
    const body = el("tbody");
    const copies = [];
    for (const c of config.criteria) {
      const score = result.scores[c.name];
      const copy = isCopy(c, score);
      if (copy) copies.push(c.label);
      const cal = c.calibration;
      const calText = cal
        ? `${cal.count.toLocaleString("en-US")} of ${cal.n.toLocaleString("en-US")} (${pct(cal.rate)})`
        : "not measured";
      body.append(
        el(
          "tr",
          { "data-criterion": c.name, "data-copy": String(copy) },
          el("th", { scope: "row", text: c.label }),
          el("td", { text: `${scoreText(c.name, score)} (${c.threshold_text})` }),
          el("td", { class: copy ? "ms-yes" : "ms-no", text: copy ? "a copy" : "not a copy" }),
          el("td", { text: calText }),
        ),
      );
    }
    table.append(body);
    const nearestText = `training digit #${result.index[0].toLocaleString("en-US")}`;
    out.append(
      el("p", {
        class: "ms-summary",
        text:
          copies.length === 0
            ? `None of the four definitions calls it a copy of ${nearestText}.`
            : `${copies.length} of the four definitions call${copies.length === 1 ? "s" : ""} it a copy of ${nearestText}: ` +
              `${copies.join(", ")}.`,
      }),
      el("div", { class: "ms-scroll" }, table),
      el("p", {
        class: "ms-hint",
        text:
          "Last column: how often the same definition calls independent handwriting a copy — the held-out half of the " +
          "MNIST test digits, written by other people and never trained on" +
          (config.calibration_note ? ` (${config.calibration_note}).` : "."),
      }),
    );

    out.append(el("h3", { class: "ms-h", text: `Its ${config.shown} nearest training digits, of all ${result.n.toLocaleString("en-US")}` }));
    const grid = el("ol", { class: "ms-neighbours" });
    for (let r = 0; r < config.shown && r < result.images.length; r++) {
      const j = result.index[r];
      grid.append(
        el(
          "li",
          { "data-index": String(j) },
          digitCanvas(result.images[r], `training digit #${j}, a ${result.labels[r]}`),
          el("span", { class: "ms-caption", text: `#${j.toLocaleString("en-US")} · a ${result.labels[r]} · ${num(result.distance[r], 3)}` }),
        ),
      );
    }
    out.append(grid);
    out.append(
      el("p", {
        class: "ms-hint",
        text:
          `Each caption: the training digit's number, its label and its pixel distance to your digit. All ${result.index.length} ` +
          "nearest were kept to compute the calibrated distance; the search compared every one of the training digits, exactly.",
      }),
    );
    const all = el("table", { class: "table ms-table ms-all" });
    all.append(
      el("caption", { text: `The ${result.index.length} nearest training digits, closest first` }),
      tableHead(["rank", "training digit", "label", "pixel distance"]),
    );
    const allBody = el("tbody");
    result.index.forEach((j, r) =>
      allBody.append(
        el(
          "tr",
          {},
          el("td", { text: String(r + 1) }),
          el("td", { text: `#${j.toLocaleString("en-US")}` }),
          el("td", { text: String(result.labels[r]) }),
          el("td", { text: num(result.distance[r], 4) }),
        ),
      ),
    );
    all.append(allBody);
    out.append(
      el("details", { class: "ms-details" }, el("summary", { text: `All ${result.index.length} nearest, as a list` }), el("div", { class: "ms-scroll" }, all)),
    );
    const timing =
      `Searched all ${result.n.toLocaleString("en-US")} training digits in ${Math.round(result.ms)} ms ` +
      "(measured in your browser just now).";
    out.append(el("p", { class: "ms-timing", text: timing }));
    say(timing);
    status.dataset.ms = String(result.ms);
  }

  let latest = 0; // a slow answer (one waiting for a download) never replaces a newer one
  async function run(message, what, extra) {
    busy++;
    const mine = ++latest;
    say(loadingNote(extra));
    try {
      const result = await ask(Object.assign({ type: "search", k: config.k, shown: config.shown, carlini: config.carlini }, message));
      if (mine === latest) showResult(result, what);
    } catch (error) {
      say(`The search failed: ${error.message}`);
    } finally {
      busy--;
      root.dataset.busy = String(busy);
      root.dataset.done = String(++done);
    }
  }
  root.dataset.busy = "0";
  root.dataset.done = "0";

  function searchDrawing() {
    if (!drawn) {
      say("Draw a digit first.");
      return;
    }
    run({ source: "pixels", pixels: Array.from(centreLikeMnist(canvasGrey(), SIZE, SIZE)) }, "your drawing");
  }
  $("ms-draw-go").addEventListener("click", searchDrawing);

  function intFrom(input) {
    const v = input.value.trim() === "" ? NaN : Number(input.value);
    const max = Number(input.max);
    if (!Number.isInteger(v) || v < 0 || v > max) {
      say(`Please enter a whole number from 0 to ${max.toLocaleString("en-US")}.`);
      input.focus();
      return null;
    }
    return v;
  }
  $("ms-test-go").addEventListener("click", () => {
    const i = intFrom($("ms-test"));
    if (i !== null) run({ source: "test", index: i }, `test digit #${i}`);
  });
  if ($("ms-sample-go")) {
    $("ms-sample-go").addEventListener("click", () => {
      const i = intFrom($("ms-sample"));
      const model = $("ms-model").value;
      const name = config.models.find((m) => m.tag === model).name;
      if (i !== null) run({ source: "sample", model, index: i }, `${name} sample ${i}`);
    });
  }

  // upload: a 28 × 28 image as it is; any other drawn onto the canvas (dark ink inverted) and centred
  $("ms-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (error) {
      say("That file could not be read as an image.");
      return;
    }
    const small = bitmap.width === FIELD && bitmap.height === FIELD;
    const size = small ? FIELD : SIZE;
    const off = document.createElement("canvas");
    off.width = off.height = size;
    const g = off.getContext("2d", { willReadFrequently: true });
    g.fillStyle = "#fff";
    g.fillRect(0, 0, size, size);
    const scale = Math.min(size / bitmap.width, size / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    g.drawImage(bitmap, (size - w) / 2, (size - h) / 2, w, h);
    const rgba = g.getImageData(0, 0, size, size).data;
    const grey = new Uint8Array(size * size);
    let sum = 0;
    for (let i = 0; i < grey.length; i++) {
      grey[i] = Math.round((299 * rgba[4 * i] + 587 * rgba[4 * i + 1] + 114 * rgba[4 * i + 2]) / 1000);
      sum += grey[i];
    }
    const invert = sum / grey.length > 127;
    for (let i = 0; i < grey.length; i++) {
      if (invert) grey[i] = 255 - grey[i];
      if (!small && grey[i] < 32) grey[i] = 0; // a photo's background is not quite black
    }
    if (small) {
      run({ source: "pixels", pixels: Array.from(grey) }, `your image (${file.name})`);
      return;
    }
    const image = ctx.createImageData(SIZE, SIZE);
    for (let i = 0; i < grey.length; i++) image.data.set([grey[i], grey[i], grey[i], 255], 4 * i);
    ctx.putImageData(image, 0, 0);
    drawn = true;
    run({ source: "pixels", pixels: Array.from(centreLikeMnist(grey, SIZE, SIZE)) }, `your image (${file.name})`);
  });

  // ------------------------------------------------------------------ the reverse look-up
  let latestReverse = 0;
  async function reverseLookup() {
    const j = intFrom($("ms-train"));
    if (j === null) return;
    busy++;
    const out = $("ms-reverse-out");
    const mb = Object.entries(config.files)
      .filter(([k]) => k.startsWith("samples-"))
      .reduce((s, [, v]) => s + v.bytes, 0) / 1e6;
    const sayHere = (text) => ($("ms-reverse-status").textContent = text);
    sayHere(`Loading the generated samples (${mb.toFixed(1)} MB, once) and comparing…`);
    try {
      const mine = ++latestReverse;
      const result = await ask({ type: "reverse", index: j, k: config.reverse_k, models: config.models.map((m) => m.tag) });
      if (mine !== latestReverse) return;
      out.replaceChildren();
      out.dataset.result = JSON.stringify({
        index: result.index,
        models: result.models.map((m) => ({ tag: m.tag, index: m.index, d2: m.d2, credits: m.credits })),
      });
      out.append(
        el(
          "div",
          { class: "ms-query" },
          digitCanvas(result.image, `training digit #${j}, a ${result.label}`, "ms-digit ms-digit-large"),
          el("p", { text: `Training digit #${j.toLocaleString("en-US")}, a ${result.label}.` }),
        ),
        el("p", {
          class: "ms-hint",
          text: "Under each sample: its number and its pixel distance to this training digit (every sample compared, exactly).",
        }),
      );
      for (const m of result.models) {
        const name = config.models.find((x) => x.tag === m.tag).name;
        const n = m.credits.length;
        const creditText =
          n === 0
            ? `None of its ${m.n.toLocaleString("en-US")} samples has this digit as its nearest training digit (by pixel distance).`
            : `${n.toLocaleString("en-US")} of its ${m.n.toLocaleString("en-US")} samples ha${n === 1 ? "s" : "ve"} this digit as ` +
              `their nearest training digit by pixel distance (sample${n === 1 ? "" : "s"} ${m.credits.slice(0, 12).join(", ")}${n > 12 ? ", …" : ""}).`;
        const list = el("ol", { class: "ms-neighbours" });
        m.index.forEach((i, r) =>
          list.append(
            el(
              "li",
              { "data-index": String(i) },
              digitCanvas(m.images[r], `${name} sample ${i}`),
              el("span", { class: "ms-caption", text: `sample ${i} · ${num(m.distance[r], 3)}` }),
            ),
          ),
        );
        out.append(
          el("h4", { class: "ms-h4", text: `${name}: the ${m.index.length} closest samples` }),
          el("p", { class: "ms-credit", "data-model": m.tag, "data-credits": String(n), text: creditText }),
          list,
        );
      }
      sayHere(
        `Compared training digit #${j} with all ${result.models.reduce((s, m) => s + m.n, 0).toLocaleString("en-US")} samples ` +
          `in ${Math.round(result.ms)} ms (measured in your browser just now).`,
      );
    } catch (error) {
      sayHere(`The look-up failed: ${error.message}`);
    } finally {
      busy--;
      root.dataset.busy = String(busy);
      root.dataset.done = String(++done);
    }
  }
  if ($("ms-train-go")) $("ms-train-go").addEventListener("click", reverseLookup);

  // for the tests: the canvas as the centring sees it, and the centring itself
  window.mnistmemSearch = { canvasGrey, centreLikeMnist, stroke, clearCanvas, size: SIZE };
})();
