// The label rules of recognizer/labels.py and the modes of recognizer/answers.py, for the page's own answers
// (webapp/static/answers.js): the 47 merged classes, how a class is shown, when two answers are one character.

/** Letters whose upper and lower case are one class in bymerge and balanced. */
export const MERGED_CASE_LETTERS = 'CIJKLMOPSUVWXYZ';

const DIGITS = '0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';

/** The 47 merged classes in label order: digits, upper case, then the 11 lower-case letters kept apart. */
export const MERGED_CHARS = Object.freeze([
  ...DIGITS, ...UPPER, ...[...LOWER].filter((c) => !MERGED_CASE_LETTERS.includes(c.toUpperCase())),
]);

/** "What are you drawing?": the modes the app knows. */
export const MODES = Object.freeze(['anything', 'digits', 'letters']);

/** The merged (47-class) name of a character: 'c' and 'C' both give 'C'. */
export function mergeKey(char) {
  return MERGED_CASE_LETTERS.includes(char.toUpperCase()) ? char.toUpperCase() : char;
}

/** How a class is shown to a person: a merged class of bymerge/balanced reads 'C/c'. */
export function display(char, merged) {
  return merged && MERGED_CASE_LETTERS.includes(char) ? `${char}/${char.toLowerCase()}` : char;
}

/** Whether two answers agree once case is merged ('c' from byclass agrees with 'C/c'). */
export function sameCharacter(a, b) {
  return mergeKey(a) === mergeKey(b);
}

/** Whether a character (or a merged class name) belongs to a mode (Python's str.isdigit / str.isalpha on ASCII). */
export function inMode(char, mode) {
  if (mode === 'anything') return true;
  return char.length > 0 && [...char].every((c) => (mode === 'digits' ? /[0-9]/ : /[A-Za-z]/).test(c));
}
