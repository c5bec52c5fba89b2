// The drawing canvas's script (webapp/canvas.py): Gradio runs it once per page with `element` (the component's
// HTML), `props` (its value) and `trigger` (its events). Strokes are kept as data so Undo can redraw the rest;
// the eraser paints transparency. Each point is [x, y, ms since the drawing's first point, pressure] and each
// stroke names its pointer (mouse, touch, pen): online handwriting, kept with a drawing. After each stroke the value
// is JSON text {png: the PNG as a data URL, strokes} (null once nothing is drawn) and `change` fires.
const canvas = element.querySelector('canvas');
const pen = canvas.getContext('2d');
const strokes = [];
let mode = 'brush', current = null, started = null;  // started: the first point's time stamp
const brush = Number(canvas.dataset.brush);  // the radius, canvas.BRUSH
const widths = {brush: 2 * brush, eraser: 4 * brush};
const place = e => {
  const box = canvas.getBoundingClientRect();
  return [(e.clientX - box.left) * canvas.width / box.width, (e.clientY - box.top) * canvas.height / box.height];
};
const POINTERS = ['mouse', 'touch', 'pen'];
const sample = e => {
  const [x, y] = place(e);
  if (started === null) started = e.timeStamp;
  const pressure = Math.min(1, Math.max(0, e.pressure ?? 0.5));
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10, Math.max(0, Math.round(e.timeStamp - started)),
          Math.round(pressure * 100) / 100];
};
const paint = (stroke, from = 0) => {
  pen.globalCompositeOperation = stroke.mode === 'eraser' ? 'destination-out' : 'source-over';
  pen.lineCap = 'round'; pen.lineJoin = 'round'; pen.lineWidth = widths[stroke.mode]; pen.strokeStyle = '#000';
  pen.beginPath();
  const points = stroke.points.slice(from);
  points.forEach(([x, y], i) => i ? pen.lineTo(x, y) : pen.moveTo(x, y));
  if (points.length === 1) pen.lineTo(points[0][0], points[0][1]);
  pen.stroke();
};
const redraw = () => { pen.clearRect(0, 0, canvas.width, canvas.height); strokes.forEach(s => paint(s)); };
const send = () => {
  props.value = strokes.some(s => s.mode === 'brush')
    ? JSON.stringify({png: canvas.toDataURL('image/png'), strokes}) : null;
  // setting props.value raises the component's change event itself: no trigger('change') here (it sent every stroke twice)
};
canvas.addEventListener('pointerdown', e => {
  if (e.button > 0) return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  const pointer = POINTERS.includes(e.pointerType) ? e.pointerType : 'mouse';
  current = {pointer, mode, points: [sample(e)]};
  strokes.push(current);
  paint(current);
});
canvas.addEventListener('pointermove', e => {
  if (!current) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  const from = current.points.length - 1;
  current.points.push(...events.map(sample));
  paint(current, from);  // only the new segments: a long stroke stays smooth
});
const finish = () => { if (current) { current = null; send(); } };
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
const pick = name => element.querySelectorAll('.tool').forEach(b => {
  const on = b.classList.contains(name);
  b.classList.toggle('active', on);
  b.setAttribute('aria-pressed', String(on));
});
element.querySelector('.brush').addEventListener('click', () => { mode = 'brush'; pick('brush'); });
element.querySelector('.eraser').addEventListener('click', () => { mode = 'eraser'; pick('eraser'); });
element.querySelector('.undo').addEventListener('click', () => {
  if (strokes.length) { strokes.pop(); redraw(); send(); }
});
element.querySelector('.trash').addEventListener('click', () => {
  const had = strokes.length > 0;
  strokes.length = 0; started = null; redraw();
  mode = 'brush'; pick('brush');  // a clean canvas is for the next character
  if (had) send();
});
canvas.dataset.ready = 'true';  // listeners attached: tests wait for this before the first stroke
