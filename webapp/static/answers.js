// The page's answer rules: recognizer/answers.py and recognizer/conformal.py step by step, so a drawing answered in
// the browser gets the server's answer (tests/test_answers_parity.py holds the two sides to each other).
//
//   const shaped = shapeAnswer(slotCfg, probabilities, 'digits', 0.9);   // top-k and calibrated set in a mode
//   const both = togetherSet(slotCfgs, shapedList, 'digits', 0.9);       // the three slots' set, where shown
//
// `slotCfg` is webapp/page_config.py's slot_config(entry): {name, labels, displays, merged, answers}. Numbers follow
// numpy's: a float32 array's values are rounded with Math.fround where Python casts to float32, a float64 sum adds
// as numpy's pairwise summation does, and a float32 array compared with a Python float compares in float32.

import { MERGED_CHARS, display, inMode, mergeKey } from './labels.js';

export { MERGED_CHARS, MODES, display, inMode, mergeKey, sameCharacter } from './labels.js';

const f32 = Math.fround;

/** numpy's float64 sum of a contiguous vector (pairwise: 8 running sums in blocks of up to 128). */
export function numpySum(a, start = 0, n = a.length - start) {
  if (n < 8) {
    let res = 0;
    for (let i = start; i < start + n; i++) res += a[i];
    return res;
  }
  if (n <= 128) {
    const r = a.slice(start, start + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return numpySum(a, start, half) + numpySum(a, start + half, n - half);
}

/** recognizer.inference.softmax: float64 steps, float32 values. */
function softmax32(logits) {
  const top = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - top));
  const total = numpySum(e);
  return e.map((v) => f32(v / total));
}

/** f"{level:g}": how the manifest keys a level ("0.9", "0.95"). */
export function levelKey(level) {
  if (level === 0 || !Number.isFinite(level)) return String(level);
  const [mantissa, exp] = level.toExponential(5).split('e');
  const e = Number(exp);
  const strip = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (e >= -4 && e < 6) return strip(level.toFixed(5 - e));
  return `${strip(mantissa)}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

/** Python's truth value of a JSON value (null, false, 0, '', [] and {} are false). */
function truthy(v) {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

/** AnswerRules.threshold: the set threshold of a mode at a level, null where none was calibrated. */
export function threshold(rules, mode, level) {
  const found = ((((rules || {}).sets || {})[mode] || {}).thresholds || {})[levelKey(level)];
  return found === undefined || found === null ? null : Number(found);
}

/** Logit adjustment towards the rules' prior (``log p - tau * (log training prior - log target prior)``); the
 *  probabilities as float32 where tau is 0 or there is no training prior. */
export function adjust(probs, rules) {
  const tau = rules ? rules.tau : null;
  if (!tau || !rules || !truthy(rules.training_prior)) return Array.from(probs, f32);
  let shift = rules.training_prior.map((p) => Math.log(p + 1e-12));
  if (rules.prior === 'kept' && truthy(rules.kept_prior)) {
    shift = shift.map((s, i) => s - Math.log(rules.kept_prior[i] + 1e-12));
  }
  return softmax32(Array.from(probs, (p, i) => Math.log(Math.max(p, 1e-12)) - tau * shift[i]));
}

/** Probabilities renormalised over the mode's labels (zero elsewhere), float32; all zero if it has none. */
export function restrict(probs, labels, mode) {
  const kept = Array.from(probs, (p, i) => (inMode(labels[i], mode) ? p : 0));
  const total = numpySum(kept);
  return kept.map((p) => f32(p / (total > 0 ? total : 1)));
}

/** A model's probabilities summed (float32) into the 47 merged classes. */
export function fold(probs, labels) {
  const out = new Array(MERGED_CHARS.length).fill(0);
  labels.forEach((c, i) => {
    const j = MERGED_CHARS.indexOf(mergeKey(c));
    out[j] = f32(out[j] + f32(probs[i]));
  });
  return out;
}

/** Indices by descending value, equal values in index order (numpy's stable argsort of -values). */
function byProbability(values, indices) {
  return [...indices].sort((a, b) => values[b] - values[a] || a - b);
}

/** One input's set as merged class indices: the answer's class `first` (default: the most probable, first of
 *  equals), then every class at or above the threshold by probability. */
export function answerSet(probs, threshold, first = null) {
  const start = first === null ? probs.indexOf(Math.max(...probs)) : first;
  const bar = f32(threshold);
  const members = probs.map((p, j) => j).filter((j) => probs[j] >= bar || j === start);
  return [start, ...byProbability(probs, members).filter((j) => j !== start)];
}

/** How one merged class of a set is shown: the model's own most probable label of it. */
export function foldedDisplay(merged, labels, probs, mergedSplit) {
  const group = labels.map((c, i) => i).filter((i) => mergeKey(labels[i]) === merged);
  if (!group.length) return display(merged, true);
  const best = group.reduce((b, i) => (probs[i] > probs[b] ? i : b));
  return display(labels[best], mergedSplit);
}

/**
 * A slot's answer under a mode: {top: [[label, display, p], ...], probabilities, mode, set: {members: [[display,
 * p], ...], level} | null, char}. Throws Error(`${name} reads no ${mode}`) where the model gives the mode nothing.
 */
export function shapeAnswer(slot, probabilities, mode = 'anything', level = 0.9, k = 5) {
  const { labels, displays } = slot;
  const probs = restrict(adjust(probabilities, slot.answers), labels, mode);
  const positive = probs.filter((p) => p > 0).length;
  if (!positive) throw new Error(`${slot.name} reads no ${mode}`);
  const order = byProbability(probs, probs.keys()).slice(0, Math.max(1, Math.min(k, positive)));
  const top = order.map((i) => [labels[i], displays[i], probs[i]]);
  const bar = slot.answers ? threshold(slot.answers, mode, level) : null;
  let set = null;
  if (bar !== null) {
    const folded = fold(probs, labels);
    const first = MERGED_CHARS.indexOf(mergeKey(top[0][0]));
    set = { members: answerSet(folded, bar, first)
      .map((j) => [foldedDisplay(MERGED_CHARS[j], labels, probs, slot.merged), folded[j]]), level };
  }
  return { top, probabilities: probs, mode, set, char: top[0][0] };
}

/**
 * webapp.analysis.run_slot's outcome for one slot's probabilities: {name, shaped, error}, with the server's error
 * words where the slot has no model (null), its model did not open (`slot.unavailable`: the reason) or reads
 * nothing of the mode.
 */
export function slotAnswer(slot, probabilities, mode = 'anything', level = 0.9, k = 5) {
  const failed = (error) => ({ name: slot ? slot.name : null, shaped: null, error });
  if (!slot) return failed('No model in this slot.');
  if (slot.unavailable) return failed(`${slot.name} is unavailable: ${slot.unavailable}`);
  if (!slot.labels.some((c) => inMode(c, mode))) return failed(`${slot.name} reads no ${mode}.`);
  try {
    return { name: slot.name, shaped: shapeAnswer(slot, probabilities, mode, level, k), error: null };
  } catch (err) {
    return failed(`${slot.name} failed: ValueError: ${err.message}`);
  }
}

/**
 * webapp.analysis.analyse_x28 for the page: every slot's answer (`probabilitiesList[i]`: the i-th slot's softmax,
 * `latencies[i]`: its milliseconds) and, where every slot answered, their set together. The result is what
 * webapp/static/words.js's shown() reads: {slots: [{name, shaped, error, latencyMs}], mode, level, together}.
 */
export function answerAll(slots, probabilitiesList, mode = 'anything', level = 0.9, k = 5, latencies = []) {
  const results = slots.map((s, i) => ({ ...slotAnswer(s, probabilitiesList[i], mode, level, k),
    latencyMs: latencies[i] ?? null }));
  const answered = results.map((r, i) => [slots[i], r.shaped]).filter(([, shaped]) => shaped);
  const together = answered.length === results.length
    ? togetherSet(answered.map(([s]) => s), answered.map(([, shaped]) => shaped), mode, level) : null;
  return { slots: results, mode, level, together };
}

/**
 * The slots' answer together (their folded, shaped probabilities averaged in float32) and its set, only where the
 * first slot's together record names exactly these models and shows this mode at this level; else null.
 */
export function togetherSet(slots, shapedList, mode, level) {
  const record = slots.length && slots[0].answers ? slots[0].answers.together : null;
  const models = truthy(record) ? record.models : null;
  if (!Array.isArray(models) || models.length !== slots.length || slots.some((s, i) => s.name !== models[i])) {
    return null;
  }
  const rule = (record.modes || {})[mode] || {};
  const bar = (rule.thresholds || {})[levelKey(level)];
  if (!truthy(rule.shown) || bar === undefined || bar === null) return null;
  const folded = slots.map((s, i) => fold(shapedList[i].probabilities, s.labels));
  const mean = MERGED_CHARS.map((_, j) => f32(folded.reduce((sum, f) => f32(sum + f[j]), 0) / folded.length));
  return { members: answerSet(mean, bar).map((j) => [display(MERGED_CHARS[j], true), mean[j]]), level };
}
