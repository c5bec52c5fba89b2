// The page answering a drawing itself: the app's configuration (page/config.json, webapp/page_files.py), the
// runtime (onnxruntime-web, served by the app), the three slot models' page copies, then for each reading the
// server's own steps in JavaScript: the framing (preprocess.js), the models (inference.js), the mode, prior and
// calibrated sets (answers.js) and the words the page shows (words.js).
//
// `startPage(base)` resolves to an engine, or to {ready: false, reason} where the page cannot answer (turned off,
// files missing, no WebAssembly): the server answers then, and the canvas says why (webapp/canvas.js).

import { FILLED, NothingDrawn, toModelInput } from './preprocess.js';
import { answer, openSlots } from './inference.js';
import { answerAll } from './answers.js';
import { shown } from './words.js';

/** Fraction of the canvas a person inked (alpha over half): a filled canvas is refused, as the server does. */
function inked(rgba) {
  let n = 0;
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] > 127) n++;
  return n / (rgba.length / 4);
}

/** The page's engine: `read(rgba, width, height, mode)` -> what the page shows (words.js's texts) and figures. */
class Engine {
  constructor(ort, config, sessions) {
    this.ort = ort;
    this.config = config;
    this.sessions = sessions; // [{slot, name, labels, session}], in slot order
    this.names = sessions.map((s) => s.name);
    this.ready = true;
  }

  /** Whether the page runs these slot models (the defaults): another model in a slot is the server's to answer. */
  runs(names) {
    return names.length === this.names.length && names.every((n, i) => n === this.names[i]);
  }

  /** Why the page does not answer for these slots ('' where it does). */
  refuses(names) {
    const i = names.findIndex((n, j) => n !== this.names[j]);
    return i < 0 ? '' : `slot ${i + 1} holds ${names[i] || 'no model'}, which only the server runs`;
  }

  async read(rgba, width, height, mode) {
    const started = performance.now();
    const { level, empty_message: empty } = this.config;
    let x = null, message = null;
    if (inked(rgba) > FILLED) {
      message = `${empty} (the canvas is filled: clear it and draw one character)`;
    } else {
      try {
        x = toModelInput(rgba, width, height);
      } catch (err) {
        if (!(err instanceof NothingDrawn)) throw err;
        message = empty + (err.detail && !err.detail.includes('blank') ? ` (${err.detail})` : '');
      }
    }
    const framed = performance.now();
    if (x === null) {
      return { texts: shown({ message, kind: 'empty', mode, level, slots: [] }), empty: true,
        ms: { preprocess: framed - started, models: 0, total: framed - started } };
    }
    const probabilities = [], latencies = [];
    for (const s of this.sessions) {  // one after another: one WebAssembly thread
      const t0 = performance.now();
      const [raw] = await answer(this.ort, [s], x, 0);
      latencies.push(performance.now() - t0);
      probabilities.push(raw.probabilities);
    }
    const reading = answerAll(this.config.slots, probabilities, mode, level, 5, latencies);
    const done = performance.now();
    return { texts: shown(reading), empty: false,
      ms: { preprocess: framed - started, models: done - framed, total: done - started } };
  }
}

/** Load what the page needs from the app at `base` (the page's own URL): an Engine, or {ready: false, reason}. */
export async function startPage(base) {
  const url = (path) => new URL(path, base).href;
  let config;
  try {
    const response = await fetch(url('page/config.json'), { cache: 'no-cache' });
    if (!response.ok) return { ready: false, reason: `the page's configuration is missing (HTTP ${response.status})` };
    config = await response.json();
  } catch (err) {
    return { ready: false, reason: `the page's configuration could not be read (${err.message || err})` };
  }
  if (!config.enabled) return { ready: false, reason: config.reason || 'turned off by the server' };
  if (typeof WebAssembly !== 'object') return { ready: false, reason: 'this browser has no WebAssembly' };
  try {
    const ort = await import(url(config.runtime.module));
    ort.env.wasm.wasmPaths = url(config.runtime.wasm);
    ort.env.wasm.numThreads = 1; // no cross-origin isolation here: one thread, no worker
    const manifest = { models: config.slots.map((s) => ({ ...s, input: { name: s.input } })) };
    const sessions = await openSlots(ort, manifest, async (file) => url(file));
    const engine = new Engine(ort, config, sessions);
    const blank = new Float32Array(28 * 28);
    await answer(ort, sessions, blank, 1); // the first run prepares each graph: not a person's wait
    return engine;
  } catch (err) {
    return { ready: false, reason: `the in-page models could not start (${err.message || err})` };
  }
}
