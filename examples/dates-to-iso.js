// Encoder-decoder with attention: dates written the way people write them ("3rd of March 1987", "03/04/87",
// "Tuesday, March 3, 1987", "1987-3-3", "mar 3 87", ...) turned into ISO dates ("1987-03-03"). Input and output
// have different lengths, so this is the sequence-to-sequence model: a GRU encoder reads the characters, a GRU
// decoder with Bahdanau (additive) attention writes the ISO characters one at a time, trained by teacher forcing
// and decoded natively (greedy and beam search). The data is generated here with a seeded generator (nothing is
// downloaded); the dates of the held-out set never occur in training, in any format.
//
// Conventions the model has to learn (as a reader would): with slashes the month comes first (US: 03/04/87 is
// March 4th); with dots the day comes first (03.04.1987 is April 3rd); two-digit years are 1950-2049 ('49 is 2049,
// '50 is 1950); a weekday name may come first and carries nothing the rest does not say.
//
// Run from the repository root after `npm install`:
//   node examples/dates-to-iso.js                 full run (figures in the README), model saved to dates-model/
//                                                 (safetensors, vocabulary, and the two ONNX graphs in onnx/)
//   node examples/dates-to-iso.js --tiny          a few seconds (the tests run this)
//   options: --out DIR (model folder), --svg FILE (attention heatmap, default DIR/attention.svg), --steps N, --hidden N
// (In your own project, require('rnnkit') instead of require('..').)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const rk = require('..');

const argv = process.argv.slice(2);
const tiny = argv.includes('--tiny');
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const outDir = option('--out', tiny ? null : 'dates-model');
const svgFile = option('--svg', outDir ? path.join(outDir, 'attention.svg') : null);

// ---------------------------------------------------------------------------------------------------------------
// The data: human-written dates.

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const FIRST_YEAR = 1950;
const LAST_YEAR = 2049;

const rng = new rk.SeededRandom(1987);
const pick = (list) => list[rng.int(list.length)];
const pad2 = (n) => String(n).padStart(2, '0');
const ordinal = (d) => `${d}${d % 10 === 1 && d !== 11 ? 'st' : d % 10 === 2 && d !== 12 ? 'nd' : d % 10 === 3 && d !== 13 ? 'rd' : 'th'}`;
const short = (name) => name.slice(0, 3);
const capital = (s) => s[0].toUpperCase() + s.slice(1);

/** A month or weekday name as people write it: full or short, lower, Capitalized or UPPER case, "Sept"/"Tues" now and then. */
function name(full, kind) {
  let s = rng.next() < 0.5 ? full : short(full);
  if (s !== full && rng.next() < 0.2) s = kind === 'month' && full === 'september' ? 'sept' : kind === 'weekday' && full === 'tuesday' ? 'tues' : s;
  if (s !== full && rng.next() < 0.3) s += '.';
  const c = rng.next();
  return c < 0.45 ? s : c < 0.9 ? capital(s) : s.toUpperCase();
}
const yy = (y) => pad2(y % 100);
const dayOf = (d) => (rng.next() < 0.5 ? String(d) : pad2(d));

/** Every way of writing a date the example knows: each takes { y, m, d, w } (m 1-12, w 0-6). */
const FORMATS = [
  ({ y, m, d }) => `${ordinal(d)} of ${name(MONTHS[m - 1], 'month')} ${y}`, // 3rd of March 1987
  ({ y, m, d }) => `the ${ordinal(d)} of ${name(MONTHS[m - 1], 'month')}, ${y}`, // the 3rd of march, 1987
  ({ y, m, d }) => `${name(MONTHS[m - 1], 'month')} ${d}, ${y}`, // March 3, 1987
  ({ y, m, d }) => `${name(MONTHS[m - 1], 'month')} ${ordinal(d)}, ${y}`, // March 3rd, 1987
  ({ y, m, d }) => `${name(MONTHS[m - 1], 'month')} ${ordinal(d)} '${yy(y)}`, // March 3rd '87
  ({ y, m, d, w }) => `${name(WEEKDAYS[w], 'weekday')}, ${name(MONTHS[m - 1], 'month')} ${d}, ${y}`, // Tuesday, March 3, 1987
  ({ y, m, d, w }) => `${name(WEEKDAYS[w], 'weekday')} ${d} ${name(MONTHS[m - 1], 'month')} ${y}`, // Tue 3 Mar 1987
  ({ y, m, d }) => `${d} ${name(MONTHS[m - 1], 'month')} ${y}`, // 3 March 1987
  ({ y, m, d }) => `${dayOf(d)} ${name(MONTHS[m - 1], 'month')} ${yy(y)}`, // 03 mar 87
  ({ y, m, d }) => `${name(MONTHS[m - 1], 'month')} ${d} ${yy(y)}`, // mar 3 87
  ({ y, m, d }) => `${dayOf(d)}-${name(MONTHS[m - 1], 'month')}-${rng.next() < 0.5 ? yy(y) : y}`, // 3-Mar-87
  ({ y, m, d }) => `${pad2(m)}/${pad2(d)}/${yy(y)}`, // 03/04/87 (US: month first)
  ({ y, m, d }) => `${m}/${d}/${rng.next() < 0.5 ? yy(y) : y}`, // 3/4/1987
  ({ y, m, d }) => `${dayOf(d)}.${rng.next() < 0.5 ? m : pad2(m)}.${rng.next() < 0.3 ? yy(y) : y}`, // 04.03.1987 (day first)
  ({ y, m, d }) => `${y}-${m}-${d}`, // 1987-3-4
  ({ y, m, d }) => `${y}-${pad2(m)}-${pad2(d)}`, // 1987-03-04
  ({ y, m, d }) => `${y}/${pad2(m)}/${pad2(d)}`, // 1987/03/04
  ({ y, m, d }) => `${y}${pad2(m)}${pad2(d)}`, // 19870304
  ({ y, m, d }) => `${y} ${name(MONTHS[m - 1], 'month')} ${d}`, // 1987 mar 4
];

/** Every date of FIRST_YEAR..LAST_YEAR, as { y, m, d, w, iso }. */
function allDates() {
  const dates = [];
  for (let t = Date.UTC(FIRST_YEAR, 0, 1); t <= Date.UTC(LAST_YEAR, 11, 31); t += 86400000) {
    const day = new Date(t);
    const y = day.getUTCFullYear(), m = day.getUTCMonth() + 1, d = day.getUTCDate();
    dates.push({ y, m, d, w: day.getUTCDay(), iso: `${y}-${pad2(m)}-${pad2(d)}` });
  }
  return dates;
}

// Source characters: id 0 pads. Target: 0 start, 1 end, then the ISO characters.
const SRC_CHARS = ['<pad>', ...new Set(" ,.-/'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")];
const SRC_ID = new Map(SRC_CHARS.map((c, i) => [c, i]));
const TGT_CHARS = ['<s>', '</s>', ...'0123456789-'];
const TGT_ID = new Map(TGT_CHARS.map((c, i) => [c, i]));
const START = 0, END = 1;
const ISO_LENGTH = 10;

/** Human-written forms of the given dates (one random format each): { text, iso }. */
function writeDates(dates, count) {
  return Array.from({ length: count }, () => {
    const date = pick(dates);
    return { text: pick(FORMATS)(date), iso: date.iso };
  });
}

/**
 * Rows as a teacher-forced batch: source ids padded with 0 and their lengths, the decoder input (start token, then
 * the ISO characters) and the targets (the ISO characters, then the end token).
 */
function toBatch(pairs) {
  const B = pairs.length;
  const S = Math.max(...pairs.map((p) => p.text.length));
  const T = ISO_LENGTH + 1;
  const source = new Int32Array(B * S);
  const sourceLengths = new Int32Array(B);
  const decoderInput = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  pairs.forEach((p, i) => {
    for (let s = 0; s < p.text.length; s++) source[i * S + s] = SRC_ID.get(p.text[s]);
    sourceLengths[i] = p.text.length;
    decoderInput[i * T] = START;
    for (let t = 0; t < ISO_LENGTH; t++) {
      const id = TGT_ID.get(p.iso[t]);
      decoderInput[i * T + t + 1] = id;
      targets[i * T + t] = id;
    }
    targets[i * T + ISO_LENGTH] = END;
  });
  return { source: { data: source, shape: [B, S] }, sourceLengths, decoderInput: { data: decoderInput, shape: [B, T] }, targets };
}

/** Decoded token rows as strings (up to the end token). */
function detokenize(result) {
  const [B, L] = result.shape;
  return Array.from({ length: B }, (_, i) => {
    let s = '';
    for (let t = 0; t < L; t++) {
      const id = result.tokens[i * L + t];
      if (id === END || id < 0) break;
      s += TGT_CHARS[id];
    }
    return s;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The attention heatmap: one panel per example, source characters across, produced characters down.

function escapeXml(s) {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** An SVG of attention matrices: `panels` is [{ source, output, weights }] with weights[t][s] in [0, 1]. */
function attentionSvg(panels, title) {
  const cell = 16, labelW = 28, gap = 28, top = 48;
  // Wide enough for the grids and the captions (about 7 pixels per character of 12-pixel text).
  const width = Math.max(title.length * 8, ...panels.map((p) => Math.max(labelW + p.source.length * cell, (p.source.length + p.output.length + 8) * 7))) + 40;
  let y = top;
  const parts = [];
  for (const p of panels) {
    const x0 = 20 + labelW;
    parts.push(`<text x="20" y="${y + 12}" font-size="12">"${escapeXml(p.source)}" → ${escapeXml(p.output)}</text>`);
    y += 22;
    [...p.source].forEach((c, s) => parts.push(`<text x="${x0 + s * cell + cell / 2}" y="${y + 11}" text-anchor="middle" font-family="monospace" font-size="12">${escapeXml(c)}</text>`));
    y += 16;
    p.weights.forEach((row, t) => {
      const label = t < p.output.length ? p.output[t] : 'end';
      parts.push(`<text x="${x0 - 6}" y="${y + t * cell + 12}" text-anchor="end" font-family="monospace" font-size="${label.length > 1 ? 9 : 12}">${escapeXml(label)}</text>`);
      row.forEach((w, s) => {
        // White (0) to dark blue (1); the weights of a row add up to 1.
        const shade = Math.round(255 * (1 - Math.min(1, Math.max(0, w))));
        parts.push(`<rect x="${x0 + s * cell}" y="${y + t * cell}" width="${cell - 1}" height="${cell - 1}" fill="rgb(${shade},${shade},255)"><title>${escapeXml(label)} ← ${escapeXml(p.source[s])}: ${w.toFixed(3)}</title></rect>`);
      });
    });
    y += p.weights.length * cell + gap;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="${width}" height="${y}" fill="white"/>`,
    `<text x="20" y="26" font-size="15">${escapeXml(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const dates = allDates();
  // Hold out one date in ten: those dates are never seen in training, in any format.
  const order = dates.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const heldOutDates = order.slice(0, Math.floor(dates.length / 10)).map((i) => dates[i]);
  const trainDates = order.slice(Math.floor(dates.length / 10)).map((i) => dates[i]);
  const test = writeDates(heldOutDates, tiny ? 200 : 2000);

  const config = tiny
    ? { steps: 60, batchSize: 32, embedSize: 16, hiddenSize: 32, lr: 1e-2 }
    : { steps: +option('--steps', 1000), batchSize: 64, embedSize: 32, hiddenSize: +option('--hidden', 64), lr: 4e-3 };
  const model = rk.seq2seq({
    cell: 'gru', attention: 'bahdanau', srcVocab: SRC_CHARS.length, tgtVocab: TGT_CHARS.length,
    embedSize: config.embedSize, hiddenSize: config.hiddenSize, numLayers: 1, seed: 3,
  });
  model.compile({ optimizer: { type: 'adam', lr: config.lr }, clipNorm: 1 });
  const params = model.paramNames().reduce((n, name) => n + model.getParam(name).data.length, 0);
  console.log(`GRU encoder-decoder with Bahdanau attention, ${params} parameters; ${SRC_CHARS.length} source and ${TGT_CHARS.length} target characters; ${FORMATS.length} date formats`);
  console.log(`training on dates from ${trainDates.length} days, holding out ${heldOutDates.length} days (${test.length} held-out inputs)`);
  for (const p of test.slice(0, 4)) console.log(`  e.g. "${p.text}" -> ${p.iso}`);

  const losses = [];
  let running = 0;
  for (let step = 1; step <= config.steps; step++) {
    // Fresh writings every step: the model never sees the same string twice, only the same days.
    const batch = toBatch(writeDates(trainDates, config.batchSize));
    if (step === Math.floor(config.steps * 0.7)) model.compile({ optimizer: { type: 'adam', lr: config.lr / 4 }, clipNorm: 1 });
    const { loss } = await model.trainOnBatch(batch);
    running = step === 1 ? loss : 0.95 * running + 0.05 * loss;
    const every = tiny ? 20 : 100;
    if (step % every === 0) {
      losses.push({ step, loss: running });
      const cpu = process.cpuUsage(cpuStarted);
      console.log(`step ${step}: loss ${running.toFixed(4)} (${((performance.now() - started) / 1000).toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU)`);
    }
  }
  const trainSeconds = (performance.now() - started) / 1000;

  // Held out: loss under teacher forcing, then exact match of the decoded ISO string (greedy and beam 4).
  const testBatch = toBatch(test);
  const { loss: heldOutLoss } = await model.evaluate(testBatch);
  const decodeOptions = { sourceLengths: testBatch.sourceLengths, startToken: START, endToken: END, maxLength: ISO_LENGTH + 1 };
  const greedy = await model.decode(testBatch.source, decodeOptions);
  const beam = await model.decode(testBatch.source, { ...decodeOptions, beamWidth: 4, attention: false });
  const greedyText = detokenize(greedy);
  const beamText = detokenize(beam);
  const exact = (texts) => texts.filter((s, i) => s === test[i].iso).length / test.length;
  const greedyExact = exact(greedyText);
  const beamExact = exact(beamText);
  const wrong = test.map((p, i) => ({ ...p, got: greedyText[i] })).filter((p) => p.got !== p.iso);
  console.log(`held out: loss ${heldOutLoss.toFixed(4)}, exact match greedy ${(100 * greedyExact).toFixed(2)}%, beam 4 ${(100 * beamExact).toFixed(2)}%`);
  for (const p of wrong.slice(0, 5)) console.log(`  wrong: "${p.text}" -> ${p.got} (should be ${p.iso})`);

  // The attention of a few held-out examples (greedy decode): which characters each output character looked at.
  const S = testBatch.source.shape[1];
  const L = greedy.shape[1];
  const shown = [];
  const wanted = [/ of /, /^\d+\/\d+\/\d+$/, /^[A-Za-z]+\.?, /, /^\d+\.\d+\.\d+$/];
  for (const re of wanted) {
    const i = test.findIndex((p, k) => re.test(p.text) && !shown.includes(k));
    if (i >= 0) shown.push(i);
  }
  const panels = shown.map((i) => {
    const len = testBatch.sourceLengths[i];
    const weights = [];
    for (let t = 0; t < greedy.lengths[i]; t++)
      weights.push(Array.from(greedy.attention.data.subarray((i * L + t) * S, (i * L + t) * S + len)));
    return { source: test[i].text, output: greedyText[i], weights };
  });

  if (outDir) {
    fs.mkdirSync(outDir, { recursive: true });
    await model.save(path.join(outDir, 'model.safetensors'));
    fs.writeFileSync(path.join(outDir, 'vocabulary.json'), JSON.stringify({ source: SRC_CHARS, target: TGT_CHARS, start: START, end: END }) + '\n');
    // The same model as two ONNX graphs (the encoder; one decoder step) for ONNX Runtime and other runtimes.
    await model.exportOnnx(path.join(outDir, 'onnx'));
    console.log(`model saved to ${outDir}/ (model.safetensors, vocabulary.json, onnx/encoder.onnx, onnx/decoder_step.onnx)`);
  }
  if (svgFile) {
    fs.mkdirSync(path.dirname(svgFile), { recursive: true });
    fs.writeFileSync(svgFile, attentionSvg(panels, `Attention of a GRU encoder-decoder (held-out dates, greedy decode, ${(100 * greedyExact).toFixed(1)}% exact)`));
    console.log(`attention heatmap written to ${svgFile}`);
  }

  // A round trip through the saved file decodes the same tokens.
  let reloadedSame = null;
  if (outDir) {
    const again = await rk.Seq2Seq.load(path.join(outDir, 'model.safetensors'));
    const r = await again.decode(testBatch.source, decodeOptions);
    reloadedSame = r.tokens.every((v, i) => v === greedy.tokens[i]);
    again.dispose();
  }

  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const load = require('node:os').loadavg()[0];
  console.log(`${config.steps} steps of ${config.batchSize} in ${trainSeconds.toFixed(1)} s; total ${seconds.toFixed(1)} s wall, ${cpuSeconds.toFixed(1)} s CPU, load average ${load.toFixed(2)} over ${require('node:os').cpus().length} cores`);
  console.log(JSON.stringify({
    example: 'dates-to-iso', tiny, steps: config.steps, heldOut: test.length, heldOutLoss, greedyExact, beamExact,
    trainLoss: losses.map((l) => l.loss), reloadedSame, seconds, cpuSeconds, loadAverage: load,
    attentionRowsSumToOne: panels.every((p) => p.weights.every((row) => Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-3)),
  }));
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
