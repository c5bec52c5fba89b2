// The drawing canvas's script (webapp/canvas.py): Gradio runs it once per page with `element` (the component's
// HTML), `props` (its value) and `trigger` (its events). Strokes are kept as data so Undo can redraw the rest;
// the eraser paints transparency. Each point is [x, y, ms since the drawing's first point, pressure] and each
// stroke names its pointer (mouse, touch, pen): online handwriting, kept with a drawing. After each stroke the value
// is JSON text {png: the PNG as a data URL, strokes} (null once nothing is drawn) and `change` fires.
//
// The page answers a drawing itself where it can (webapp/static/page.js: the three slot models in WebAssembly):
// while a stroke is drawn (at most once per animation frame, none while one is running) and at its end. Its
// answers reach the page's components through the canvas's `submit` event, a browser-only event (webapp/draw.py),
// and the drawing goes to the server through its `input` event, so the server computes no answers for it (only the
// model input, the heat maps and what keeping needs). Until the page's models are ready, and wherever they cannot run, the
// server answers as before; the line under the toolbar says which one answered, and why.
const canvas = element.querySelector('canvas');
const pen = canvas.getContext('2d', {willReadFrequently: true});  // the page reads it back per frame
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
// What the page's own answering needs: the engine (once loaded), the slots' models and the mode (the page's own
// browser-only listeners keep them: webapp/draw.py), the answers to show next (read by the `submit` event) and who
// answered the drawing on the canvas.
const page = window.emnistCanvas = {engine: null, reason: 'the in-page models are loading', names: null,
                                    mode: 'anything', outputs: null, answerer: 'server', timings: []};
const answerer = element.querySelector('.answerer');
const inPage = () => Boolean(page.engine && page.engine.runs(page.names || page.engine.names));
const say = () => {
  const here = inPage();
  const why = page.engine ? page.engine.refuses(page.names || page.engine.names) : page.reason;
  answerer.textContent = here ? 'Answered in your browser (the three models run on this page).'
                              : `Answered by the server: ${why}.`;
  answerer.title = answerer.textContent;  // a narrow screen shows its start; the whole line on hover
  canvas.dataset.answerer = here ? 'page' : 'server';
};
let wanted = 0, read = 0, running = false;
// Answer what the canvas shows now; readings run one at a time, and one asked for while another runs follows it.
const answerNow = async () => {
  wanted += 1;
  if (running) return;
  running = true;
  try {
    while (read < wanted && inPage()) {
      const n = wanted;
      const pixels = pen.getImageData(0, 0, canvas.width, canvas.height);
      const reading = await page.engine.read(pixels.data, canvas.width, canvas.height, page.mode);
      read = n;
      const t = reading.texts;
      // a slot without an answer: an empty Label, as the server sends it (gr.Label().postprocess(None) is {})
      page.outputs = [t.status, t.agreement, t.line, ...t.labels.map(l => l ?? {}), ...t.infos];
      page.timings.push({...reading.ms, shown: performance.timeOrigin + performance.now()});  // epoch ms, as the benchmark reads
      if (page.timings.length > 1000) page.timings.shift();
      trigger('submit');  // the browser-only event that shows page.outputs
    }
  } catch (err) {
    page.engine = null; page.reason = `the in-page models failed (${err.message || err})`; say();
  } finally {
    running = false;
    if (valueDue) requestAnimationFrame(() => setTimeout(setValue));  // once the answers are painted
  }
};
page.answer = answerNow;
page.say = say;
page.inPage = inPage;
page.drawn = () => strokes.some(s => s.mode === 'brush');
// What the server gets, once the page has painted its answers (encoding the PNG takes the same thread): where the
// page read the drawing, the `input` event with {value} as its data (the server keeps it and draws the heat maps, in
// one step); else the canvas's value, whose `change` event has the server answer. Either value is the same JSON text
// {png, strokes}, null once nothing is drawn.
let valueDue = false;
const setValue = () => {
  valueDue = false;
  page.answerer = inPage() ? 'page' : 'server';
  const value = page.drawn() ? JSON.stringify({png: canvas.toDataURL('image/png'), strokes}) : null;
  if (page.answerer === 'page') { trigger('input', {value}); return; }
  // setting props.value raises the component's change event itself: no trigger('change') here (it sent every stroke twice)
  props.value = value;
};
const send = () => {
  if (inPage()) { valueDue = true; answerNow(); } else setValue();
};
let framed = false;  // an answer asked for this animation frame
const followPen = () => {
  if (framed || running || !inPage()) return;
  framed = true;
  requestAnimationFrame(() => { framed = false; if (!running && current) answerNow(); });
};
say();
import(new URL('page/js/page.js', document.baseURI).href)
  .then(m => m.startPage(document.baseURI))
  .catch(err => ({ready: false, reason: `the in-page files could not be loaded (${err.message || err})`}))
  .then(engine => {
    if (engine.ready) page.engine = engine; else page.reason = engine.reason;
    say();
    canvas.dataset.engine = engine.ready ? 'ready' : 'off';  // tests and benchmarks wait for this
  });
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
  if (current.mode === 'brush') followPen();
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
