// One-to-many: a sequence generated from a class. Asked for a digit (0-9), the model draws it as a pen stroke: a
// sequence of unit moves in 8 directions (right, down, down-left, ...), then an end token. The same digit comes in
// several sizes: every segment of the drawing is k moves long, k from 2 to 4, the same k throughout one drawing.
// So a model must know each digit's path (6 to 8 segments) and, once it has started, keep to the size it chose:
// when it samples, a drawing that switches size midway or turns a wrong way is not the digit. A bigram model of
// the moves cannot do either; the figures below show how far it gets.
//
// rnnkit's encoder-decoder (Seq2Seq) does the conditioning: the class is a length-1 source, so the decoder's
// initial state is the encoder's state after that one token (a learned projection of the class's embedding through
// one GRU step). There is no attention: there is nothing to look back at.
//
// Run from the repository root after `npm install`:
//   node examples/digit-strokes.js           full run (figures in the README), drawings in digit-strokes.svg
//   node examples/digit-strokes.js --tiny    a few seconds (the tests run this)
//   options: --svg FILE
// (In your own project, require('rnnkit') instead of require('..').)
'use strict';
const fs = require('node:fs');
const rk = require('..');

const argv = process.argv.slice(2);
const tiny = argv.includes('--tiny');
const svgAt = argv.indexOf('--svg');
const svgFile = svgAt >= 0 ? argv[svgAt + 1] : tiny ? null : 'digit-strokes.svg';

// Moves: [name, dx, dy] with y growing downwards. Target ids: 0 start, 1 end, then the moves.
const MOVES = [['R', 1, 0], ['L', -1, 0], ['U', 0, -1], ['D', 0, 1], ['UR', 1, -1], ['UL', -1, -1], ['DR', 1, 1], ['DL', -1, 1]];
const MOVE = new Map(MOVES.map(([n], i) => [n, i]));
const START = 0, END = 1, FIRST_MOVE = 2;
const TGT_VOCAB = FIRST_MOVE + MOVES.length;
// Each digit's single stroke, one letter group per segment, on a grid 1 wide and 2 tall (7-segment style).
const DIGITS = [
  'R D D L U U', // 0: a box from the top left
  'UR D D', // 1: the flag, then down
  'R D L D R', // 2
  'R D L R D L', // 3
  'D R U D D', // 4: down, across, up the right side, down to the bottom
  'L D R D L', // 5: from the top right
  'L D D R U L', // 6
  'R DL D', // 7: across, a diagonal, down
  'R D L D R U L U', // 8: around both loops
  'L D R U D D L', // 9
].map((s) => s.split(' ').map((m) => MOVE.get(m)));
const SIZES = [2, 3, 4];
const MAX_LENGTH = Math.max(...DIGITS.map((d) => d.length)) * Math.max(...SIZES) + 1;

const rng = new rk.SeededRandom(10);

/** The move ids of digit `d` drawn at size k (every segment k moves long). */
const drawing = (d, k) => DIGITS[d].flatMap((m) => Array(k).fill(FIRST_MOVE + m));

/** Which digit, if any, a move sequence draws at one consistent size; null for anything else. */
function recognise(moves) {
  for (let d = 0; d < DIGITS.length; d++)
    for (const k of SIZES) {
      const want = drawing(d, k);
      if (want.length === moves.length && want.every((m, i) => m === moves[i])) return d;
    }
  return null;
}

/** A teacher-forced batch of random digits and sizes: source [B, 1] (the class), decoder input, targets (-1 pads). */
function batch(B) {
  const T = MAX_LENGTH;
  const source = new Int32Array(B);
  const decoderInput = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    const d = rng.int(DIGITS.length);
    const moves = drawing(d, SIZES[rng.int(SIZES.length)]);
    source[b] = d;
    decoderInput[b * T] = START;
    moves.forEach((m, t) => {
      targets[b * T + t] = m;
      if (t + 1 < T) decoderInput[b * T + t + 1] = m;
    });
    targets[b * T + moves.length] = END;
  }
  return { source: { data: source, shape: [B, 1] }, decoderInput: { data: decoderInput, shape: [B, T] }, targets };
}

/** Draw `n` samples per digit from the model (softmax sampling at temperature 1, one step at a time). */
function sample(model, n) {
  const B = DIGITS.length * n;
  const classes = Int32Array.from({ length: B }, (_, i) => Math.floor(i / n));
  const decoder = model.beginDecode({ data: classes, shape: [B, 1] });
  const out = Array.from({ length: B }, () => []);
  const done = new Array(B).fill(false);
  let tokens = new Int32Array(B).fill(START);
  try {
    for (let t = 0; t < MAX_LENGTH && done.includes(false); t++) {
      const { logits } = decoder.step(tokens);
      tokens = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const row = logits.data.subarray(b * TGT_VOCAB, (b + 1) * TGT_VOCAB);
        const max = Math.max(...row);
        const p = Array.from(row, (v) => Math.exp(v - max));
        let u = rng.next() * p.reduce((a, c) => a + c, 0);
        let id = 0;
        while (id < TGT_VOCAB - 1 && (u -= p[id]) > 0) id++;
        tokens[b] = id;
        if (done[b]) continue;
        if (id === END || id === START) done[b] = true;
        else out[b].push(id);
      }
    }
  } finally {
    decoder.dispose();
  }
  return { classes, drawings: out, ended: done };
}

/** The same measure for a bigram model of the moves given the class (counts from the same number of drawings). */
function bigramBaseline(trainRows, n) {
  const counts = Array.from({ length: DIGITS.length }, () => Array.from({ length: TGT_VOCAB }, () => new Float64Array(TGT_VOCAB).fill(0.01)));
  for (const { d, moves } of trainRows) {
    let prev = START;
    for (const m of [...moves, END]) {
      counts[d][prev][m]++;
      prev = m;
    }
  }
  let right = 0;
  for (let d = 0; d < DIGITS.length; d++)
    for (let s = 0; s < n; s++) {
      const moves = [];
      let prev = START;
      for (let t = 0; t < MAX_LENGTH; t++) {
        const row = counts[d][prev];
        let u = rng.next() * row.reduce((a, c) => a + c, 0);
        let id = 0;
        while (id < TGT_VOCAB - 1 && (u -= row[id]) > 0) id++;
        if (id === END || id === START) break;
        moves.push(id);
        prev = id;
      }
      if (recognise(moves) === d) right++;
    }
  return right / (DIGITS.length * n);
}

/** An SVG of sampled drawings: one row per digit. */
function drawingsSvg(classes, drawings, perDigit, title) {
  const cell = 80, unit = 8;
  const width = 40 + perDigit * cell, height = 50 + DIGITS.length * cell * 1.3;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`, `<text x="10" y="22" font-size="14">${title}</text>`];
  drawings.forEach((moves, i) => {
    const d = classes[i], col = i % perDigit;
    const ox = 40 + col * cell + 18, oy = 45 + d * cell * 1.3 + 6;
    if (col === 0) parts.push(`<text x="10" y="${oy + 30}" font-size="16">${d}</text>`);
    let x = 0, y = 0, minX = 0, minY = 0;
    for (const m of moves) {
      x += MOVES[m - FIRST_MOVE][1];
      y += MOVES[m - FIRST_MOVE][2];
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
    }
    x = -minX;
    y = -minY;
    const points = [`${ox + x * unit},${oy + y * unit}`];
    for (const m of moves) {
      x += MOVES[m - FIRST_MOVE][1];
      y += MOVES[m - FIRST_MOVE][2];
      points.push(`${ox + x * unit},${oy + y * unit}`);
    }
    const ok = recognise(moves) === d;
    parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${ok ? '#1f4fbf' : '#d62728'}" stroke-width="2.5" stroke-linejoin="round"/>`);
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

async function main() {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const config = tiny ? { steps: 60, batchSize: 32, hiddenSize: 32, samples: 10 } : { steps: 1200, batchSize: 64, hiddenSize: 64, samples: 100 };
  const model = rk.seq2seq({ cell: 'gru', attention: 'none', srcVocab: DIGITS.length, tgtVocab: TGT_VOCAB, embedSize: 16, hiddenSize: config.hiddenSize, seed: 4 });
  model.compile({ optimizer: { type: 'adam', lr: 1e-2 }, clipNorm: 1 });
  const params = model.paramNames().reduce((n, name) => n + model.getParam(name).data.length, 0);
  console.log(`GRU decoder started from the class (a length-1 source), ${params} parameters; ${DIGITS.length} digits, ${SIZES.length} sizes, ${MOVES.length} moves`);
  const trainLoss = [];
  let running = 0;
  const seen = [];
  for (let step = 1; step <= config.steps; step++) {
    const b = batch(config.batchSize);
    for (let i = 0; i < config.batchSize; i++) {
      const moves = [];
      for (let t = 0; b.targets[i * MAX_LENGTH + t] >= FIRST_MOVE; t++) moves.push(b.targets[i * MAX_LENGTH + t]);
      seen.push({ d: b.source.data[i], moves });
    }
    if (step === Math.floor(config.steps * 0.6)) model.compile({ optimizer: { type: 'adam', lr: 2e-3 }, clipNorm: 1 });
    const { loss } = await model.trainOnBatch(b);
    running = step === 1 ? loss : 0.9 * running + 0.1 * loss;
    if (step % (tiny ? 20 : 100) === 0) {
      trainLoss.push(running);
      console.log(`step ${step}: loss ${running.toFixed(4)}`);
    }
  }
  const heldOut = batch(512);
  const { loss: heldOutLoss } = await model.evaluate(heldOut);

  // Greedy: one drawing per digit (the model's most likely one).
  const greedy = await model.decode({ data: Int32Array.from(DIGITS.keys()), shape: [DIGITS.length, 1] }, { startToken: START, endToken: END, maxLength: MAX_LENGTH });
  let greedyRight = 0;
  for (let d = 0; d < DIGITS.length; d++) {
    const moves = Array.from(greedy.tokens.subarray(d * greedy.shape[1], d * greedy.shape[1] + greedy.lengths[d])).filter((m) => m >= FIRST_MOVE);
    if (recognise(moves) === d) greedyRight++;
  }
  // Sampling: how many drawings are the requested digit at one consistent size.
  const { classes, drawings } = sample(model, config.samples);
  const sampledRight = drawings.filter((m, i) => recognise(m) === classes[i]).length / drawings.length;
  const baseline = bigramBaseline(seen, config.samples);
  console.log(`held-out loss ${heldOutLoss.toFixed(4)}; greedy draws ${greedyRight}/10 digits right; ${(100 * sampledRight).toFixed(1)}% of ${drawings.length} sampled drawings are the requested digit at one size (a bigram model of the moves: ${(100 * baseline).toFixed(1)}%)`);
  if (svgFile) {
    const perDigit = 8;
    const shown = [], shownClasses = [];
    for (let d = 0; d < DIGITS.length; d++)
      for (let s = 0; s < perDigit; s++) {
        shown.push(drawings[d * config.samples + s]);
        shownClasses.push(d);
      }
    fs.writeFileSync(svgFile, drawingsSvg(shownClasses, shown, perDigit, `Sampled drawings (temperature 1); red: not the digit at one size`));
    console.log(`drawings written to ${svgFile}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const load = require('node:os').loadavg()[0];
  console.log(`${config.steps} steps in ${seconds.toFixed(1)} s wall, ${cpuSeconds.toFixed(1)} s CPU, load average ${load.toFixed(2)}`);
  console.log(JSON.stringify({ example: 'digit-strokes', tiny, steps: config.steps, heldOutLoss, greedyRight, sampledRight, bigramBaseline: baseline, trainLoss, seconds, cpuSeconds, loadAverage: load }));
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
