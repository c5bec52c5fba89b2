// The parity test's node side: webapp/static/preprocess.js over a binary file of canvases, in one process.
//
//   node tests/preprocess_node.mjs CANVASES OUT
//
// CANVASES: "CNV1", then uint32 little-endian count, width, height, then count x height x width x 4 RGBA bytes
// (the canvas's ImageData). OUT: per canvas an int32 status (0 input, 1 NothingDrawn, 2 BadImage, 3 anything
// else) and 28x28 float32 (zeros when refused). Prints a JSON line: canvases, refusals, milliseconds per canvas.
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { BadImage, NothingDrawn, SIZE, toModelInput } from '../webapp/static/preprocess.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node tests/preprocess_node.mjs CANVASES OUT');
  process.exit(2);
}
const data = readFileSync(input);
if (data.subarray(0, 4).toString('latin1') !== 'CNV1') {
  console.error(`${input}: not a canvases file (no CNV1 header)`);
  process.exit(2);
}
const [count, width, height] = [4, 8, 12].map((at) => data.readUInt32LE(at));
const bytes = width * height * 4;
if (data.length !== 16 + count * bytes) {
  console.error(`${input}: ${data.length} bytes, expected ${16 + count * bytes}`);
  process.exit(2);
}
const record = 4 + SIZE * SIZE * 4;
const out = Buffer.alloc(count * record);
const details = {};
const started = performance.now();
for (let i = 0; i < count; i++) {
  const rgba = new Uint8ClampedArray(data.buffer, data.byteOffset + 16 + i * bytes, bytes);
  let status = 0;
  try {
    const x = toModelInput(rgba, width, height);
    Buffer.from(x.buffer, x.byteOffset, x.byteLength).copy(out, i * record + 4);
  } catch (err) {
    status = err instanceof NothingDrawn ? 1 : err instanceof BadImage ? 2 : 3;
    const key = `${err.name}: ${err.detail ?? err.message}`;
    details[key] = (details[key] || 0) + 1;
  }
  out.writeInt32LE(status, i * record);
}
const ms = (performance.now() - started) / Math.max(count, 1);
writeFileSync(output, out);
console.log(JSON.stringify({ canvases: count, refused: details, ms_per_canvas: ms }));
