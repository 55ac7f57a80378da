import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as rk from '../lib/index';
import { parseSafetensors, serializeSafetensors } from '../lib/io/safetensors';

const { layers, optimizers, sequential } = rk;

function randn(rng: rk.SeededRandom, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-model-'));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(a.length, b.length); i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

t.test('summary lists layers, inferred shapes and parameter counts', async (t) => {
  const m = sequential({
    vocabSize: 11,
    seed: 1,
    layers: [
      layers.embedding({ outputDim: 6 }),
      layers.lstm({ units: 8, returnSequences: true, bidirectional: true }),
      layers.gru({ units: 5 }),
      layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });
  const rows = m.layerSummaries();
  t.same(rows.map((r) => r.name), ['embedding_1', 'lstm_1', 'gru_1', 'dense_1']);
  t.same(rows.map((r) => r.outputShape), [[null, null, 6], [null, null, 16], [null, 5], [null, 3]]);
  const lstm = 2 * (4 * 8 * (6 + 8) + 2 * 4 * 8);
  const gru = 3 * 5 * (16 + 5) + 2 * 3 * 5;
  t.same(rows.map((r) => r.params), [11 * 6, lstm, gru, 5 * 3 + 3]);
  t.match(m.summary(), /Total params: \d+/);
  t.match(m.summary(), new RegExp(`Total params: ${11 * 6 + lstm + gru + 18}`));
  m.dispose();
});

t.test('architectures: many-to-many, many-to-one, stacked, bidirectional merges', async (t) => {
  const rng = new rk.SeededRandom(2);
  const x = { data: randn(rng, 3 * 5 * 4), shape: [3, 5, 4] };
  const m2m = sequential({ inputSize: 4, seed: 3, layers: [layers.simpleRNN({ units: 6, returnSequences: true }), layers.dense({ units: 2 })] });
  t.same((await m2m.predict(x)).shape, [3, 5, 2]);
  const m2o = sequential({ inputSize: 4, seed: 3, layers: [layers.lstm({ units: 6, returnSequences: true }), layers.gru({ units: 7 }), layers.dense({ units: 2, activation: 'softmax' })] });
  const p = await m2o.predict(x);
  t.same(p.shape, [3, 2]);
  for (let b = 0; b < 3; b++) t.ok(Math.abs(p.data[2 * b] + p.data[2 * b + 1] - 1) < 1e-5, 'softmax rows sum to 1');

  // merge 'sum' equals the sum of the two halves of 'concat' with the same weights.
  const concat = sequential({ inputSize: 4, seed: 4, layers: [layers.gru({ units: 3, returnSequences: true, bidirectional: true })] });
  const sum = sequential({ inputSize: 4, seed: 9, layers: [layers.gru({ units: 3, returnSequences: true, bidirectional: { mergeMode: 'sum' } })] });
  sum.setWeights(concat.getWeights());
  const yc = await concat.predict(x);
  const ys = await sum.predict(x);
  t.same(ys.shape, [3, 5, 3]);
  const expected = new Float32Array(3 * 5 * 3);
  for (let r = 0; r < 15; r++) for (let j = 0; j < 3; j++) expected[r * 3 + j] = yc.data[r * 6 + j] + yc.data[r * 6 + 3 + j];
  t.ok(maxDiff(ys.data, expected) < 1e-6, 'sum merge');

  // goBackwards reads the sequence from its end: its last-step output equals a forward layer's on the reversed input.
  const back = sequential({ inputSize: 4, seed: 5, layers: [layers.lstm({ units: 3, goBackwards: true })] });
  const fwd = sequential({ inputSize: 4, seed: 6, layers: [layers.lstm({ units: 3 })] });
  fwd.setWeights(Object.fromEntries(Object.entries(back.getWeights())));
  const rev = new Float32Array(x.data.length);
  for (let b = 0; b < 3; b++) for (let s = 0; s < 5; s++) rev.set(x.data.subarray((b * 5 + s) * 4, (b * 5 + s + 1) * 4), (b * 5 + (4 - s)) * 4);
  t.ok(maxDiff((await back.predict(x)).data, (await fwd.predict({ data: rev, shape: x.shape })).data) < 1e-6, 'goBackwards');
  for (const m of [m2m, m2o, concat, sum, back, fwd]) m.dispose();
});

t.test('fit learns a many-to-one task and reports history and callbacks', async (t) => {
  const rng = new rk.SeededRandom(11);
  const N = 96, T = 6;
  const x = { data: randn(rng, N * T), shape: [N, T, 1] };
  const y = { data: new Int32Array(N), shape: [N] };
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let k = 0; k < T; k++) s += x.data[i * T + k];
    y.data[i] = s > 0 ? 1 : 0;
  }
  const m = sequential({ inputSize: 1, seed: 12, layers: [layers.gru({ units: 12 }), layers.dense({ units: 2 })] });
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.02 }), clipNorm: 5 });
  const before = await m.evaluate(x, y);
  let steps = 0;
  const epochs: number[] = [];
  const h = await m.fit(x, y, { epochs: 25, batchSize: 32, validationData: { x, y }, callbacks: { onStepEnd: () => { steps++; }, onEpochEnd: (l) => { epochs.push(l.epoch); } } });
  const after = await m.evaluate(x, y);
  t.equal(steps, 25 * 3);
  t.same(epochs, Array.from({ length: 25 }, (_, i) => i));
  t.equal(h.loss.length, 25);
  t.equal(h.valLoss.length, 25);
  t.ok(after.loss < before.loss * 0.5, `loss fell from ${before.loss} to ${after.loss}`);
  const p = await m.predict(x);
  let correct = 0;
  for (let i = 0; i < N; i++) correct += (p.data[2 * i + 1] > p.data[2 * i] ? 1 : 0) === y.data[i] ? 1 : 0;
  t.ok(correct / N > 0.85, `accuracy ${correct / N}`);
  m.dispose();
});

t.test('fit stops on an AbortSignal and after `steps`', async (t) => {
  const rng = new rk.SeededRandom(1);
  const x = { data: randn(rng, 20 * 4 * 2), shape: [20, 4, 2] };
  const y = { data: randn(rng, 20 * 3), shape: [20, 3] };
  const m = sequential({ inputSize: 2, seed: 1, layers: [layers.lstm({ units: 4 }), layers.dense({ units: 3 })] });
  m.compile({ loss: 'mse', optimizer: optimizers.sgd({ lr: 0.1 }) });
  const h = await m.fit(x, y, { epochs: 10, batchSize: 5, steps: 7 });
  t.equal(h.steps.length, 7);
  const ac = new AbortController();
  const h2 = await m.fit(x, y, { epochs: 10, batchSize: 5, signal: ac.signal, callbacks: { onStepEnd: (l) => { if (l.step >= 10) ac.abort(); } } });
  t.equal(h2.steps.length, 3);
  t.equal(m.step, 10);
  m.dispose();
});

t.test('the event loop stays responsive while a model trains', async (t) => {
  // Not a timing bound (a loaded machine stretches any lag): the timer must keep firing while each native step
  // runs. A step computed on the main thread, even one that yields between steps, lets it fire at most once per step.
  const rng = new rk.SeededRandom(5);
  const B = 16, T = 48, V = 40;
  const m = sequential({ vocabSize: V, seed: 2, layers: [layers.lstm({ units: 192, numLayers: 2, returnSequences: true }), layers.dense({ units: V })] });
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam() });
  const source = { nextBatch: () => ({ x: { data: Int32Array.from({ length: B * T }, () => rng.int(V)), shape: [B, T] }, y: { data: Int32Array.from({ length: B * T }, () => rng.int(V)), shape: [B, T] } }) };
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  const ticksPerStep: number[] = [];
  let ticksBefore = 0;
  await m.fitDataset(source, {
    steps: 12,
    callbacks: { onStepEnd: () => { ticksPerStep.push(ticks - ticksBefore); ticksBefore = ticks; } },
  });
  clearInterval(timer);
  const busySteps = ticksPerStep.filter((n) => n >= 2).length;
  t.ok(busySteps >= 10, `the timer fired at least twice during ${busySteps} of 12 steps (ticks per step: ${ticksPerStep.join(', ')})`);
  m.dispose();
});

function charSource(seed: number, V: number, B: number, T: number) {
  const rng = new rk.SeededRandom(seed);
  return {
    nextBatch() {
      const x = new Int32Array(B * T);
      const y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        let c = rng.int(V);
        for (let s = 0; s < T; s++) {
          x[b * T + s] = c;
          c = (c * 3 + 1 + (rng.next() < 0.1 ? 1 : 0)) % V;
          y[b * T + s] = c;
        }
      }
      return { x: { data: x, shape: [B, T] }, y: { data: y, shape: [B, T] } };
    },
    getState: () => rng.getState(),
    setState: (s: number[]) => rng.setState(s),
  };
}

function charModel(V: number) {
  const m = sequential({ vocabSize: V, seed: 21, layers: [layers.embedding({ outputDim: 8 }), layers.lstm({ units: 16, returnSequences: true, dropout: 0.1 }), layers.dropout({ rate: 0.1 }), layers.dense({ units: V, activation: 'softmax' })] });
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.01 }), clipNorm: 1 });
  return m;
}

t.test('resuming from a checkpoint gives the losses of the uninterrupted run', async (t) => {
  const V = 12, B = 4, T = 10;
  const dir = tmpdir();
  const full = charModel(V);
  const fullLosses = (await full.fitDataset(charSource(3, V, B, T), { steps: 10 })).steps.map((s) => s.loss);
  full.dispose();

  const first = charModel(V);
  const src = charSource(3, V, B, T);
  const ckpt = path.join(dir, 'ckpt.safetensors');
  const h1 = await first.fitDataset(src, { steps: 6, checkpoint: { path: ckpt, every: 3, extra: () => ({ data: src.getState() }) } });
  first.dispose();
  t.same(h1.steps.map((s) => s.loss), fullLosses.slice(0, 6));
  const resumed = await rk.load(ckpt);
  t.equal(resumed.step, 6);
  const src2 = charSource(999, V, B, T);
  src2.setState((resumed.trainingExtra as { data: number[] }).data);
  const h2 = await resumed.fitDataset(src2, { steps: 4 });
  t.same(h2.steps.map((s) => s.loss), fullLosses.slice(6), 'steps 7-10 match exactly');
  t.same(h2.steps.map((s) => s.step), [7, 8, 9, 10]);
  t.same(fs.readdirSync(dir), ['ckpt.safetensors'], 'atomic writes leave no temporary file');
  resumed.dispose();
});

t.test('save and load keep the architecture, weights and metadata; files use PyTorch names', async (t) => {
  const dir = tmpdir();
  const m = sequential({ vocabSize: 7, seed: 4, layers: [layers.gru({ units: 5, returnSequences: true, numLayers: 2, resetAfter: false }), layers.dense({ units: 7, activation: 'softmax' })] });
  m.metadata = { note: 'hello' };
  const file = path.join(dir, 'm.safetensors');
  await m.save(file);
  const parsed = parseSafetensors(fs.readFileSync(file));
  t.ok(parsed.tensors.has('gru_1.weight_ih_l1'));
  t.ok(parsed.tensors.has('dense_1.weight'));
  t.same(parsed.tensors.get('gru_1.weight_hh_l0')?.shape, [15, 5]);
  const loaded = await rk.load(file);
  t.same(loaded.metadata, { note: 'hello' });
  const x = { data: Int32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
  t.equal(maxDiff((await m.predict(x)).data, (await loaded.predict(x)).data), 0);
  m.dispose();
  loaded.dispose();
  await t.rejects(rk.load(Buffer.from('not a model file at all')), { code: 'ERR_RNNKIT_FORMAT' });
});

t.test('recurrentActivation hardSigmoid: in the summary, saved with the architecture; older files load as sigmoid', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const build = (recurrentActivation?: rk.RecurrentActivation) => sequential({
    inputSize: 3, seed: 5, layers: [
      layers.lstm({ units: 4, returnSequences: true, recurrentActivation }),
      layers.gru({ units: 3, resetAfter: false, recurrentActivation }),
    ],
  });
  const hard = build('hardSigmoid');
  t.match(hard.summary(), /lstm_1 \(lstm, hardSigmoid\)[^\n]*\n[^\n]*gru_1 \(gru, hardSigmoid\)/);
  t.notMatch(build().summary(), /hardSigmoid/);
  const file = path.join(dir, 'hard.safetensors');
  await hard.save(file);
  // Inputs in [-4, 4], so that gates clip and the two activations give different outputs.
  const x = { data: randn(new rk.SeededRandom(1), 2 * 5 * 3).map((v) => 4 * v), shape: [2, 5, 3] };
  const want = await hard.predict(x);
  const loaded = await rk.load(file);
  t.same(loaded.layers.map((l) => (l as { recurrentActivation?: string }).recurrentActivation), ['hardSigmoid', 'hardSigmoid']);
  t.equal(maxDiff((await loaded.predict(x)).data, want.data), 0, 'the loaded model predicts the same');

  // The same file as an rnnkit without the option wrote it: no recurrentActivation in the architecture.
  const parsed = parseSafetensors(fs.readFileSync(file));
  const rewrite = (desc: (model: { layers: Record<string, unknown>[] }) => void): string => {
    const model = JSON.parse(parsed.metadata.model);
    desc(model);
    const out = path.join(dir, `variant-${Math.random().toString(36).slice(2)}.safetensors`);
    fs.writeFileSync(out, serializeSafetensors([...parsed.tensors].map(([name, v]) => ({ name, shape: v.shape, data: v.data })), { ...parsed.metadata, model: JSON.stringify(model) }));
    return out;
  };
  const older = await rk.load(rewrite((m) => m.layers.forEach((l) => delete l.recurrentActivation)));
  const sigmoid = build();
  sigmoid.setWeights(hard.getWeights());
  const olderOut = await older.predict(x);
  t.equal(maxDiff(olderOut.data, (await sigmoid.predict(x)).data), 0, 'a file without recurrentActivation loads with sigmoid gates');
  t.ok(maxDiff(olderOut.data, want.data) > 1e-3, `which differ from hardSigmoid's (max |diff| ${maxDiff(olderOut.data, want.data).toFixed(4)})`);
  await t.rejects(rk.load(rewrite((m) => { m.layers[0].recurrentActivation = 'tanh'; })), { code: 'ERR_RNNKIT_FORMAT', message: /recurrentActivation must be 'sigmoid' or 'hardSigmoid'/ });
  t.throws(() => layers.gru({ units: 2, recurrentActivation: 'hard_sigmoid' as never }), { code: 'ERR_RNNKIT_ARGUMENT' });
  for (const m of [hard, loaded, older, sigmoid]) m.dispose();
});

t.test('a stream fed one step at a time matches the whole-sequence prediction', async (t) => {
  const m = sequential({ vocabSize: 9, seed: 8, layers: [layers.lstm({ units: 6, numLayers: 2, returnSequences: true }), layers.dense({ units: 9 })] });
  const seq = [1, 4, 2, 8, 0, 3];
  const whole = await m.predict({ data: Int32Array.from(seq), shape: [1, seq.length] });
  const s = m.stream();
  const steps: number[] = [];
  for (const tok of seq) steps.push(...(await s.step([tok])).data);
  t.ok(maxDiff(steps, whole.data) < 1e-6);
  s.reset();
  t.ok(maxDiff(s.stepSync([seq[0]]).data, whole.data.subarray(0, 9)) < 1e-6, 'reset starts again from zero');
  s.dispose();
  m.dispose();
});

t.test('a stream of feature steps matches the whole-sequence prediction for every cell and batch size', async (t) => {
  // A single step with feature inputs runs its input and recurrent products as one pass (few rows) or as two
  // GEMMs (more rows); both must give what the whole-sequence forward gives.
  const rng = new rk.SeededRandom(11);
  const F = 5, T = 4;
  const cells: Array<[string, () => ReturnType<typeof layers.lstm>]> = [
    ['rnn tanh', () => layers.simpleRNN({ units: 7, numLayers: 2, returnSequences: true })],
    ['rnn relu', () => layers.simpleRNN({ units: 7, activation: 'relu', returnSequences: true })],
    ['lstm', () => layers.lstm({ units: 9, numLayers: 2, returnSequences: true })],
    ['lstm hard sigmoid', () => layers.lstm({ units: 9, recurrentActivation: 'hardSigmoid', returnSequences: true })],
    ['gru', () => layers.gru({ units: 8, numLayers: 2, returnSequences: true })],
    ['gru reset-before', () => layers.gru({ units: 8, resetAfter: false, returnSequences: true })],
    ['gru hard sigmoid', () => layers.gru({ units: 8, recurrentActivation: 'hardSigmoid', returnSequences: true })],
  ];
  for (const [name, make] of cells) {
    const m = sequential({ inputSize: F, seed: 3, layers: [make(), layers.dense({ units: 3 })] });
    for (const B of [1, 3, 6]) {
      const x = randn(rng, B * T * F);
      const whole = await m.predict({ data: x, shape: [B, T, F] });
      const s = m.stream();
      let worst = 0;
      for (let step = 0; step < T; step++) {
        const xt = new Float32Array(B * F);
        for (let b = 0; b < B; b++) xt.set(x.subarray((b * T + step) * F, (b * T + step + 1) * F), b * F);
        const out = s.stepSync({ data: xt, shape: [B, F] });
        t.equal(out.data.length, B * 3, `${name}, batch ${B}: one output row per batch row`);
        for (let b = 0; b < B; b++)
          for (let o = 0; o < 3; o++) worst = Math.max(worst, Math.abs(out.data[b * 3 + o] - whole.data[(b * T + step) * 3 + o]));
      }
      t.ok(worst < 1e-5, `${name}, batch ${B}: steps match the sequence (max |diff| ${worst.toExponential(2)})`);
      s.dispose();
    }
    m.dispose();
  }
});

t.test('generation is reproducible from a seed', async (t) => {
  const m = sequential({ vocabSize: 20, seed: 8, layers: [layers.lstm({ units: 16, returnSequences: true }), layers.dense({ units: 20, activation: 'softmax' })] });
  const a = await m.generate({ prompt: [1, 2], length: 40, seed: 42, temperature: 1.2 });
  const b = await m.generate({ prompt: [1, 2], length: 40, seed: 42, temperature: 1.2 });
  const c = await m.generate({ prompt: [1, 2], length: 40, seed: 43, temperature: 1.2 });
  t.same(Array.from(a), Array.from(b));
  t.notSame(Array.from(a), Array.from(c));
  const greedy1 = await m.generate({ prompt: [3], length: 10, temperature: 0, seed: 1 });
  const greedy2 = await m.generate({ prompt: [3], length: 10, temperature: 0, seed: 2 });
  t.same(Array.from(greedy1), Array.from(greedy2), 'temperature 0 ignores the seed');
  const top1 = await m.generate({ prompt: [3], length: 10, topK: 1, seed: 7 });
  t.same(Array.from(top1), Array.from(greedy1), 'top-k 1 is greedy');
  for (const v of a) t.ok(v >= 0 && v < 20);
  m.dispose();
});

t.test('truncated BPTT: stateful fit carries the state across chunks', async (t) => {
  // Chunked streaming forward must equal the whole-sequence forward: the carried state is exact.
  const rng = new rk.SeededRandom(4);
  const x = { data: randn(rng, 2 * 12 * 3), shape: [2, 12, 3] };
  const y = { data: randn(rng, 2 * 12 * 2), shape: [2, 12, 2] };
  const m = sequential({ inputSize: 3, seed: 1, layers: [layers.gru({ units: 4, returnSequences: true }), layers.dense({ units: 2 })] });
  m.compile({ loss: 'mse', optimizer: optimizers.sgd({ lr: 0 }) });
  const h = await m.fit(x, y, { stateful: true, chunkLength: 4, epochs: 2 });
  t.equal(h.steps.length, 6);
  // With lr 0 the weights stay put: the chunk losses of the two epochs repeat (the state resets per epoch),
  // and they equal the losses of the chunks of one whole-sequence forward.
  for (let i = 0; i < 3; i++) t.ok(Math.abs(h.steps[i].loss - h.steps[i + 3].loss) < 1e-7);
  const out = await m.predict(x);
  for (let c = 0; c < 3; c++) {
    let sse = 0;
    for (let b = 0; b < 2; b++)
      for (let s = c * 4; s < c * 4 + 4; s++)
        for (let j = 0; j < 2; j++) sse += (out.data[(b * 12 + s) * 2 + j] - y.data[(b * 12 + s) * 2 + j]) ** 2;
    t.ok(Math.abs(sse / 16 - h.steps[c].loss) < 1e-5, `chunk ${c}`);
  }
  m.dispose();
});

t.test('dropout acts in training only', async (t) => {
  const m = sequential({ vocabSize: 5, seed: 3, layers: [layers.embedding({ outputDim: 4 }), layers.dropout({ rate: 0.5 }), layers.lstm({ units: 4 }), layers.dense({ units: 5 })] });
  const x = { data: Int32Array.from([1, 2, 3, 4]), shape: [1, 4] };
  t.same((await m.predict(x)).data, (await m.predict(x)).data, 'inference is deterministic');
  m.dispose();
});

t.test('the CLI trains, logs, charts and samples', async (t) => {
  const dir = tmpdir();
  const data = path.join(dir, 'text.txt');
  fs.writeFileSync(data, 'To be, or not to be, that is the question.\nWhether tis nobler in the mind to suffer.\n'.repeat(60));
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const out = path.join(dir, 'out');
  const train = spawnSync(process.execPath, [cli, 'train', '--data', data, '--steps', '30', '--units', '24', '--layers', '1',
    '--seq', '16', '--batch', '8', '--eval-every', '10', '--val-batches', '2', '--out', out, '--seed', '3'], { encoding: 'utf8' });
  t.equal(train.status, 0, train.stderr);
  const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
  t.same(log.map((r: { step: number }) => r.step), [10, 20, 30]);
  for (const r of log) for (const k of ['step', 'loss', 'valLoss', 'tokensPerSecond', 'elapsedSeconds']) t.type(r[k], 'number', k);
  t.ok(log[2].loss < log[0].loss, 'training loss falls');
  const svg = fs.readFileSync(path.join(out, 'loss.svg'), 'utf8');
  t.match(svg, /^<svg/);
  t.match(svg, /validation loss/);
  const s1 = spawnSync(process.execPath, [cli, 'sample', out, '--length', '50', '--seed', '9', '--prompt', 'To'], { encoding: 'utf8' });
  t.equal(s1.status, 0, s1.stderr);
  t.ok(s1.stdout.startsWith('To'));
  t.equal(s1.stdout.length, 2 + 50 + 1);
  const s2 = spawnSync(process.execPath, [cli, 'sample', out, '--length', '50', '--seed', '9', '--prompt', 'To'], { encoding: 'utf8' });
  t.equal(s2.stdout, s1.stdout, 'a seed reproduces the sample');
  const bad = spawnSync(process.execPath, [cli, 'train', '--cell', 'transformer'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--cell must be lstm, gru or rnn/);
  for (const cmd of ['train', 'sample', 'bench']) {
    const help = spawnSync(process.execPath, [cli, cmd, '--help'], { encoding: 'utf8' });
    t.equal(help.status, 0);
    t.match(help.stdout, new RegExp(`usage: rnnkit ${cmd}`));
  }
});
