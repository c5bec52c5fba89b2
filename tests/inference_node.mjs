// The page's inference (webapp/static/inference.js) in node, on onnxruntime-web from node_modules (WebAssembly).
//
//   node tests/inference_node.mjs MODEL_DIR INPUTS OUT
//
// MODEL_DIR: a folder with manifest.json (exported_models/page/). INPUTS: "X281", uint32 little-endian count,
// then count x 28 x 28 float32. OUT: for each slot in order, count x classes float32 probabilities. Prints a JSON
// line: the slots (slot, name, classes) and milliseconds to open and per input.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-web';
import { answer, openSlots } from '../webapp/static/inference.js';

const [dir, input, output] = process.argv.slice(2);
if (!dir || !input || !output) {
  console.error('usage: node tests/inference_node.mjs MODEL_DIR INPUTS OUT');
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const data = readFileSync(input);
if (data.subarray(0, 4).toString('latin1') !== 'X281') {
  console.error(`${input}: not an inputs file (no X281 header)`);
  process.exit(2);
}
const count = data.readUInt32LE(4);
const t0 = performance.now();
const slots = await openSlots(ort, manifest, (file) => new Uint8Array(readFileSync(join(dir, file))));
const t1 = performance.now();
const columns = slots.map(() => []);
for (let i = 0; i < count; i++) {
  const x = new Float32Array(data.buffer.slice(data.byteOffset + 8 + i * 3136, data.byteOffset + 8 + (i + 1) * 3136));
  const answers = await answer(ort, slots, x);
  answers.forEach((a, s) => columns[s].push(Float32Array.from(a.probabilities)));
}
const t2 = performance.now();
const parts = columns.flat().map((p) => Buffer.from(p.buffer));
writeFileSync(output, Buffer.concat(parts));
console.log(JSON.stringify({
  slots: slots.map((s) => ({ slot: s.slot, name: s.name, classes: s.labels.length })),
  open_ms: t1 - t0, ms_per_input: (t2 - t1) / Math.max(count, 1),
}));
