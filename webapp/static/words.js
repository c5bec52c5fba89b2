// The Draw tab's words for one reading, as the page will write them itself: webapp/answer_words.py and the text
// parts of webapp/draw_display.py, character for character (tests/test_answers_parity.py compares them).
//
//   const texts = shown({slots: [{name, shaped, error, latencyMs}, ...], mode, level, together, message, kind});
//   // -> {status, agreement, line, infos: [3 markdown strings], labels: [3 Label values or null]}
//
// `shaped` is webapp/static/answers.js's shapeAnswer(...) (null where the slot has `error`), `together` its
// togetherSet(...) (null where not shown), `message`/`kind` what the server's Analysis holds when there is nothing
// to read ("empty", "bad", "no_models"; leave them out otherwise).

import { sameCharacter } from './labels.js';

export const SLOT_COUNT = 3; // recognizer.manifest.SLOTS
export const AGREES = 'agrees with the others'; // what the slot card's ✓ means
export const DIFFERS = 'reads another character than the others'; // and its ✗

/** Python's f"{x:.{digits}f}": toFixed, but a tie (exact in binary) rounds to even as Python does. */
export function fixed(x, digits) {
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const a = Math.abs(x);
  const halves = a * 2 ** (digits + 1); // an odd integer exactly where a * 10^digits ends in .5
  if (!Number.isSafeInteger(halves) || halves % 2 !== 1) return sign + a.toFixed(digits);
  const below = (BigInt(halves) * 5n ** BigInt(digits) - 1n) / 2n; // a * 10^digits = below + 1/2
  const text = String(below % 2n === 0n ? below : below + 1n).padStart(digits + 1, '0');
  return sign + (digits ? `${text.slice(0, -digits)}.${text.slice(-digits)}` : text);
}

/** Python's f"{q:.{digits}%}" (q times 100 in float64, then fixed). */
export function percent(q, digits = 0) {
  return `${fixed(q * 100, digits)}%`;
}

/** '**7** 99%', or '**o** 48% or **0** 41%' where the set holds several characters. */
export function said(shaped, digits = 0) {
  const members = shaped.set ? shaped.set.members : [[shaped.top[0][1], shaped.top[0][2]]];
  return members.map(([d, q]) => `**${d}** ${percent(q, digits)}`).join(' or ');
}

/** What the set means, in words, where it holds several characters. */
export function setWords(set) {
  if (!set || set.members.length < 2) return '';
  return ` (not sure which: the right one is among these ${percent(set.level)} of the time)`;
}

export function togetherWords(set) {
  if (!set) return '';
  return `All three together: ${set.members.map(([d, q]) => `**${d}** ${percent(q)}`).join(' or ')}`;
}

/** Whether every slot that answered reads the same character (case merged); null under two answers. */
export function agree(analysis) {
  const chars = analysis.slots.filter((s) => s.shaped).map((s) => s.shaped.char);
  return chars.length < 2 ? null : chars.slice(1).every((c) => sameCharacter(chars[0], c));
}

/** A slot's top 5 as Gradio's Label takes it (gr.Label.postprocess), or null where it has no answer. */
export function labelValue(analysis, i) {
  const r = analysis.slots[i];
  if (!r || !r.shaped) return null;
  const byDisplay = new Map(r.shaped.top.map(([, d, p]) => [d, p]));
  const sorted = [...byDisplay].sort((a, b) => b[1] - a[1]); // stable: equal confidences keep their order
  return { label: sorted[0][0], confidences: sorted.map(([label, confidence]) => ({ label, confidence })) };
}

/** '✓ **A** 93% · agrees with the others · 0.41 ms': its answer or set, whether it reads what the others read
 *  (the others: every other slot that answered), its latency. */
export function slotInfo(analysis, i) {
  const r = analysis.slots[i];
  if (!r || analysis.message) return '';
  if (!r.shaped) return r.error ? `⚠ ${r.error}` : '';
  const p = r.shaped;
  const others = analysis.slots.filter((s, j) => j !== i && s.shaped).map((s) => s.shaped.char);
  let [mark, words] = ['', ''];
  if (others.length) {
    [mark, words] = others.every((c) => sameCharacter(p.char, c)) ? ['✓', ` · ${AGREES}`] : ['✗', ` · ${DIFFERS}`];
  }
  return `${mark} ${said(p)}${setWords(p.set)}${words} · ${fixed(r.latencyMs, 2)} ms`;
}

export function agreement(analysis) {
  if (analysis.message) return '';
  const answered = analysis.slots.filter((r) => r.shaped);
  if (!answered.length) return '⚠ No model could answer.';
  let reads = answered.map((r) => `${r.name}: ${said(r.shaped)}`).join(' · ');
  const both = togetherWords(analysis.together);
  reads += both ? ` · ${both}` : '';
  const verdict = agree(analysis);
  if (verdict === null) return `Only one model answered: ${reads}`;
  if (verdict) {
    return `✓ **They agree** on the most likely character (upper and lower case of merged letters count as one): ${reads}`;
  }
  return `⚠ **They disagree** on the most likely character: ${reads}`;
}

export function status(analysis) {
  if (analysis.message === undefined || analysis.message === null) {
    const kind = analysis.mode === 'anything' ? '' : ` Reading ${analysis.mode} only.`;
    return 'Each model\'s answer is below. Where a model cannot tell look-alikes apart it names each ("O or 0"): '
      + 'on drawings like those it was calibrated on, the right character is among those named '
      + `${percent(analysis.level)} of the time.${kind} The heat maps show which parts of the input mattered most.`;
  }
  return (analysis.kind === 'empty' ? '✎ ' : '⚠ ') + analysis.message;
}

/** '✓ **7** 100% · **7** 100% · **0** 87% or **O** 13% — they agree': the compact line under the canvas. */
export function answerLine(analysis) {
  if (analysis.message) return status(analysis);
  const answered = analysis.slots.filter((r) => r.shaped).map((r) => r.shaped);
  if (!answered.length) return '⚠ No model could answer.';
  const verdict = agree(analysis);
  const mark = verdict === null ? '' : verdict ? '✓' : '⚠';
  const words = verdict === null ? 'one answer' : verdict ? 'they agree' : 'they disagree';
  return `${mark} ${answered.map((p) => said(p)).join(' · ')} — ${words}`.trim();
}

/** Everything the tab writes for one reading (draw_display.shown's texts and labels). */
export function shown(analysis) {
  const full = { mode: 'anything', level: 0.9, together: null, message: null, kind: null, ...analysis };
  const slots = [...Array(SLOT_COUNT).keys()];
  return {
    status: status(full),
    agreement: agreement(full),
    line: answerLine(full),
    infos: slots.map((i) => slotInfo(full, i)),
    labels: slots.map((i) => labelValue(full, i)),
  };
}
