// The page's own answers: the three slot models of a manifest (exported_models/page/manifest.json's form) opened
// with onnxruntime-web, and one 28x28 input (webapp/static/preprocess.js) answered by each.
//
// The runtime is passed in (`ort`): the page has it as a global from ort.wasm.min.js, node imports it from
// node_modules. Slots follow recognizer.inference.Recognizer.default_slots: a model's `slot` field, else the best
// of its split. Probabilities are a float64 softmax of the logits, as recognizer.inference.softmax computes them.

export const SLOTS = ['byclass', 'bymerge', 'balanced'];

/** The manifest's model per slot (as Recognizer.default_slots chooses), each with its labels and file. */
export function slotEntries(manifest) {
  const models = manifest.models || [];
  const chosen = [];
  for (const slot of SLOTS) {
    const marked = models.filter((m) => m.slot === slot);
    const same = models.filter((m) => m.split === slot)
      .sort((a, b) => ((b.metrics || {}).test_accuracy || 0) - ((a.metrics || {}).test_accuracy || 0));
    const entry = marked[0] || same[0];
    if (entry) chosen.push({ slot, name: entry.name, file: entry.file, labels: entry.labels, input: entry.input });
  }
  return chosen;
}

/**
 * Open the slot models: `source(file)` gives a URL (the page) or the bytes (node) of a model file.
 * Returns [{slot, name, labels, session}], in slot order.
 */
export async function openSlots(ort, manifest, source, options = {}) {
  const settings = { executionProviders: ['wasm'], graphOptimizationLevel: 'all', ...options };
  return Promise.all(slotEntries(manifest).map(async (entry) => ({
    ...entry,
    session: await ort.InferenceSession.create(await source(entry.file), settings),
  })));
}

/** A float64 softmax of float32 logits (the largest subtracted first). */
export function softmax(logits) {
  let top = -Infinity;
  for (const v of logits) top = Math.max(top, v);
  const e = Array.from(logits, (v) => Math.exp(v - top));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

/**
 * Each slot's answer to one input (Float32Array of 28x28): [{slot, name, top: [[label, probability], ...],
 * probabilities}], best first, ``k`` answers per slot. The models run one after another (one WebAssembly thread).
 */
export async function answer(ort, slots, x, k = 5) {
  const tensor = new ort.Tensor('float32', x, [1, 1, 28, 28]);
  const out = [];
  for (const s of slots) {
    const inputName = (s.input && s.input.name) || s.session.inputNames[0];
    const outputName = s.session.outputNames.includes('logits') ? 'logits' : s.session.outputNames[0];
    const result = await s.session.run({ [inputName]: tensor }, [outputName]);
    const probabilities = softmax(result[outputName].data);
    const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    out.push({ slot: s.slot, name: s.name, probabilities,
      top: order.slice(0, k).map(([p, i]) => [s.labels[i], p]) });
  }
  return out;
}
