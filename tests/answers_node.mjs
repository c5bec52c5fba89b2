// The page's answer rules and words (webapp/static/answers.js, words.js) over many readings in one node process.
//
//   node tests/answers_node.mjs CASES OUT
//
// CASES: JSON {slots: {key: slot_config}, vectors: [{probabilities} | {logits}], cases: [{slots: [key | null],
// inputs: [vector index | null], latencies, mode, level, k, unavailable: {name: reason}, message, kind}]}. A vector given as logits goes through
// webapp/static/inference.js's softmax first, as the page's models' answers do. A case with a message (nothing to
// read) answers nothing. OUT: JSON [{slots: [{name, error, shaped}], together, shown}], one per case.
import { readFileSync, writeFileSync } from 'node:fs';
import { answerAll } from '../webapp/static/answers.js';
import { softmax } from '../webapp/static/inference.js';
import { shown } from '../webapp/static/words.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node tests/answers_node.mjs CASES OUT');
  process.exit(2);
}
const { slots, vectors, cases } = JSON.parse(readFileSync(input, 'utf8'));
const probabilities = vectors.map((v) => (v.logits ? softmax(v.logits) : v.probabilities));

const out = cases.map((c) => {
  const unavailable = c.unavailable || {}; // the page's models that did not open: name -> reason
  const configs = c.slots.map((key) => (key === null ? null
    : { ...slots[key], ...(slots[key].name in unavailable ? { unavailable: unavailable[slots[key].name] } : {}) }));
  const analysis = c.message !== null && c.message !== undefined
    ? { slots: configs.map((s) => ({ name: s ? s.name : null, shaped: null, error: null, latencyMs: null })),
      mode: c.mode, level: c.level, together: null, message: c.message, kind: c.kind }
    : answerAll(configs, c.inputs.map((i) => (i === null ? null : probabilities[i])), c.mode, c.level, c.k,
      c.latencies);
  return {
    slots: analysis.slots.map(({ name, error, shaped }) => ({ name, error, shaped })),
    together: analysis.together,
    shown: shown(analysis),
  };
});
writeFileSync(output, JSON.stringify(out));
