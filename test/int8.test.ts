// int8 inference (model.setInferencePrecision('int8')): dynamic quantization of the recurrent products.
// - against float32: within a stated tolerance (INT8_TOLERANCE, relative to the largest output);
// - float32 results never change: bit for bit the same before, during (other models) and after int8;
// - every int8 kernel (AVX-512 VNNI, AVX2, the scalar reference) gives the same bits: forced in child processes
//   through RNNKIT_INT8_KERNEL (the int8 kernel alone) and RNNKIT_SIMD (the ceiling of every kernel), outputs
//   compared exactly with the scalar kernel's;
// - a stream's steps equal predict over the same sequence, bit for bit (the same integers either way);
// - saved and loaded with the model; remade after training changes the weights.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as rk from '../lib/index';

const { layers, optimizers, sequential } = rk;

// Relative to the largest |output|: int8 weights and activations each carry up to 1/254 of their row's range.
const INT8_TOLERANCE = 0.03;

function randn(rng: rk.SeededRandom, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / Math.max(s, 1e-30);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

const cases: Array<{ name: string; cell: 'lstm' | 'gru' | 'rnn'; oneHot: boolean; units: number; numLayers: number; bidirectional?: boolean }> = [
  { name: 'LSTM 2 layers, dense input', cell: 'lstm', oneHot: false, units: 48, numLayers: 2 },
  { name: 'GRU, dense input', cell: 'gru', oneHot: false, units: 40, numLayers: 1 },
  { name: 'LSTM 2 layers, one-hot input, head', cell: 'lstm', oneHot: true, units: 64, numLayers: 2 },
  { name: 'simple RNN, bidirectional', cell: 'rnn', oneHot: false, units: 24, numLayers: 1, bidirectional: true },
];

function makeModel(c: (typeof cases)[number]): rk.Sequential {
  const rec = c.cell === 'lstm' ? layers.lstm : c.cell === 'gru' ? layers.gru : layers.simpleRNN;
  const list = [rec({ units: c.units, numLayers: c.numLayers, returnSequences: true, ...(c.bidirectional ? { bidirectional: true } : {}) })];
  if (c.oneHot && c.name.includes('head')) list.push(layers.dense({ units: 11 }));
  return sequential({ ...(c.oneHot ? { vocabSize: 11 } : { inputSize: 13 }), layers: list, seed: 3 });
}

function inputFor(c: (typeof cases)[number], rng: rk.SeededRandom, B: number, T: number): rk.Tensor | rk.IntTensor {
  return c.oneHot
    ? { data: Int32Array.from({ length: B * T }, () => Math.floor(rng.next() * 11)), shape: [B, T] }
    : { data: randn(rng, B * T * 13), shape: [B, T, 13] };
}

for (const c of cases) {
  t.test(`int8 inference: ${c.name}`, async (t) => {
    const rng = new rk.SeededRandom(5);
    const model = makeModel(c);
    const x = inputFor(c, rng, 3, 9);
    const fp32 = model.predictSync(x).data as Float32Array;
    t.equal(model.inferencePrecision, 'float32', 'float32 by default');
    model.setInferencePrecision('int8');
    t.equal(model.inferencePrecision, 'int8');
    const int8 = model.predictSync(x).data as Float32Array;
    const asyncInt8 = (await model.predict(x)).data as Float32Array;
    t.ok(sameBits(int8, asyncInt8), 'predict and predictSync agree');
    const rel = relDiff(int8, fp32);
    t.ok(rel <= INT8_TOLERANCE, `within ${INT8_TOLERANCE} of float32 relative to the largest output (${rel.toExponential(2)})`);
    t.ok(rel > 0, 'int8 did run (the outputs differ from float32)');
    model.setInferencePrecision('float32');
    t.ok(sameBits(model.predictSync(x).data as Float32Array, fp32), 'back to float32: bit for bit the float32 outputs');
    model.dispose();
  });
}

t.test('int8: a stream\'s steps equal predict over the same sequence, bit for bit', async (t) => {
  // No dense head here: a float32 head runs a different product for one row than for a whole sequence.
  for (const c of [cases[0], { ...cases[2], name: 'LSTM 2 layers, one-hot input' }]) {
    const rng = new rk.SeededRandom(9);
    const model = makeModel(c).setInferencePrecision('int8');
    // The one-hot sequence is longer than the vocabulary (11): predict reads a table of one row per token id, the
    // steps (one token each) their own copy of the token's column.
    const T = c.oneHot ? 14 : 6;
    const x = inputFor(c, rng, 1, T);
    const whole = model.predictSync(x).data as Float32Array;
    const stream = model.stream();
    const F = whole.length / T;
    for (let s = 0; s < T; s++) {
      const out = c.oneHot
        ? stream.stepSync([(x.data as Int32Array)[s]])
        : stream.stepSync({ data: (x.data as Float32Array).slice(s * 13, (s + 1) * 13), shape: [1, 13] });
      t.ok(sameBits(out.data as Float32Array, whole.slice(s * F, (s + 1) * F)), `${c.name}: step ${s}`);
    }
    stream.dispose();
    model.dispose();
  }
});

t.test('int8: saved and loaded with the model; float32 weights kept as they were', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-int8-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const c = cases[2];
  const rng = new rk.SeededRandom(2);
  const model = makeModel(c);
  const weights = model.getWeights();
  model.setInferencePrecision('int8');
  const x = inputFor(c, rng, 2, 7);
  const out = model.predictSync(x).data as Float32Array;
  for (const [name, w] of Object.entries(model.getWeights())) t.ok(sameBits(w.data as Float32Array, weights[name].data as Float32Array), `${name} unchanged`);
  const file = path.join(dir, 'm.safetensors');
  await model.save(file);
  const loaded = await rk.load(file);
  t.equal(loaded.inferencePrecision, 'int8');
  t.ok(sameBits(loaded.predictSync(x).data as Float32Array, out), 'the loaded model gives the same int8 outputs');
  loaded.setInferencePrecision('float32');
  await loaded.save(file);
  const plain = await rk.load(file);
  t.equal(plain.inferencePrecision, 'float32');
  model.dispose();
  loaded.dispose();
  plain.dispose();
});

t.test('int8 over token ids: a weight change reaches the next pass (the token table is kept only while the weights stay)', async (t) => {
  const c = cases[2];
  const rng = new rk.SeededRandom(12);
  const model = makeModel(c).setInferencePrecision('int8');
  const x = inputFor(c, rng, 3, 9);  // 27 tokens, vocabulary 11: the table path
  const first = model.predictSync(x).data as Float32Array;
  t.ok(sameBits(model.predictSync(x).data as Float32Array, first), 'the same weights: the same outputs');
  const weights = model.getWeights();
  const changed: Record<string, Float32Array> = {};
  for (const [name, w] of Object.entries(weights)) changed[name] = Float32Array.from(w.data as Float32Array, (v, i) => (/ih/.test(name) || /bias/.test(name) ? v * 0.5 + (i % 3) * 0.01 : v));
  model.setWeights(changed);
  const after = model.predictSync(x).data as Float32Array;
  const fresh = makeModel(c);
  fresh.setWeights(changed);
  fresh.setInferencePrecision('int8');
  t.ok(sameBits(after, fresh.predictSync(x).data as Float32Array), 'after setWeights: the outputs of a fresh model with those weights');
  t.notOk(sameBits(after, first), 'the outputs moved');
  fresh.dispose();
  model.dispose();
});

t.test('int8: the quantized weights are remade after training changes the float32 weights', async (t) => {
  const c = cases[2];
  const rng = new rk.SeededRandom(4);
  const model = makeModel(c);
  model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.05 }) });
  model.setInferencePrecision('int8');
  const x = inputFor(c, rng, 2, 7) as rk.IntTensor;
  const before = model.predictSync(x).data as Float32Array;
  await model.trainOnBatch(x, x);
  const after = model.predictSync(x).data as Float32Array;
  t.notOk(sameBits(before, after), 'outputs moved with the weights');
  model.setInferencePrecision('float32');
  const fp32 = model.predictSync(x).data as Float32Array;
  t.ok(relDiff(after, fp32) <= INT8_TOLERANCE, 'and stay close to float32 of the new weights');
  model.dispose();
});

t.test('int8: bad precisions are refused', async (t) => {
  const model = makeModel(cases[0]);
  for (const bad of ['int4', 'INT8', '', undefined, 8, null]) {
    t.throws(() => model.setInferencePrecision(bad as unknown as 'int8'), { code: 'ERR_RNNKIT_VALUE' }, String(bad));
  }
  t.equal(model.inferencePrecision, 'float32');
  model.dispose();
});

// Every int8 kernel the CPU can run gives the same bits as the scalar reference.
t.test('int8: the VNNI, AVX2 and scalar kernels give exactly the same outputs', async (t) => {
  const child = `
    const rk = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
    const out = [];
    for (const [cell, oneHot] of [['lstm', false], ['gru', false], ['lstm', true]]) {
      const rng = new rk.SeededRandom(11);
      const rec = cell === 'lstm' ? rk.layers.lstm : rk.layers.gru;
      const m = rk.sequential({ ...(oneHot ? { vocabSize: 30 } : { inputSize: 70 }), layers: [rec({ units: 67, numLayers: 2, returnSequences: true })], seed: 8 });
      m.setInferencePrecision('int8');
      const B = 5, T = 4;
      const x = oneHot ? { data: Int32Array.from({ length: B * T }, () => Math.floor(rng.next() * 30)), shape: [B, T] }
                       : { data: Float32Array.from({ length: B * T * 70 }, () => rng.next() * 2 - 1), shape: [B, T, 70] };
      out.push(Buffer.from(m.predictSync(x).data.buffer).toString('base64'));
      const s = m.stream();
      const step = oneHot ? s.stepSync([3]) : s.stepSync({ data: x.data.slice(0, 70), shape: [1, 70] });
      out.push(Buffer.from(step.data.buffer).toString('base64'));
      if (!oneHot) {
        // Halves from -35 to 34.5 after a 127: the activation scale is exactly 1, so every half is a rounding tie
        // (to even) for the vector quantizers as for the scalar loop; then a NaN and an infinity among them.
        const ties = Float32Array.from({ length: 70 }, (_, i) => (i === 0 ? 127 : (i - 70) / 2));
        out.push(Buffer.from(s.stepSync({ data: ties, shape: [1, 70] }).data.buffer).toString('base64'));
        ties[5] = NaN;
        ties[9] = -Infinity;
        out.push(Buffer.from(s.stepSync({ data: ties, shape: [1, 70] }).data.buffer).toString('base64'));
      }
    }
    // Row counts around the tiles of 8 rows (the batch of a step, B * T of the input product, past one panel of
    // rows), column blocks in odd numbers (45 GRU units: 135 outputs, 9 blocks of 16), an input width no multiple
    // of 4, the GRU's recurrent bias added to the product (beta 1) and the LSTM's product from zero (beta 0).
    for (const [cell, B, T] of [['gru', 1, 3], ['gru', 2, 5], ['lstm', 7, 3], ['gru', 9, 30], ['lstm', 16, 2], ['gru', 17, 14]]) {
      const rng = new rk.SeededRandom(B * 31 + T);
      const rec = cell === 'lstm' ? rk.layers.lstm : rk.layers.gru;
      const m = rk.sequential({ inputSize: 13, layers: [rec({ units: 45, numLayers: 2, returnSequences: true })], seed: B });
      m.setInferencePrecision('int8');
      const x = { data: Float32Array.from({ length: B * T * 13 }, () => rng.next() * 4 - 2), shape: [B, T, 13] };
      out.push(Buffer.from(m.predictSync(x).data.buffer).toString('base64'));
    }
    process.stdout.write(JSON.stringify({ kernel: rk.backendInfo().int8Kernel, out }));
  `;
  const run = (vars: Record<string, string>) => {
    const env = { ...process.env };
    delete env.RNNKIT_SIMD;
    delete env.RNNKIT_INT8_KERNEL;
    Object.assign(env, vars);
    const r = spawnSync(process.execPath, ['-e', child], { env, encoding: 'utf8', timeout: 60000 });
    t.equal(r.status, 0, `child (${JSON.stringify(vars)}) ran: ${r.stderr}`);
    return JSON.parse(r.stdout || '{}') as { kernel: string; out: string[] };
  };
  const reference = run({ RNNKIT_INT8_KERNEL: 'scalar' });
  t.equal(reference.kernel, 'scalar', 'RNNKIT_INT8_KERNEL=scalar runs the scalar reference');
  t.equal(reference.out.length, 16);
  const kernels = new Set<string>(['scalar']);
  for (const vars of [{ RNNKIT_INT8_KERNEL: 'avx2' }, {}]) {
    const r = run(vars);
    kernels.add(r.kernel);
    t.same(r.out, reference.out, `the ${r.kernel} kernel (${JSON.stringify(vars)}) equals the scalar reference`);
  }
  t.comment(`int8 kernels compared: ${[...kernels].join(', ')}`);
  // The SIMD ceiling of every kernel applies to the int8 kernel too.
  t.equal(run({ RNNKIT_SIMD: 'baseline' }).kernel, 'scalar', 'RNNKIT_SIMD=baseline: the scalar int8 kernel');
  const avx2 = run({ RNNKIT_SIMD: 'avx2' }).kernel;
  t.ok(avx2 === 'avx2' || avx2 === 'scalar', `RNNKIT_SIMD=avx2: at most the AVX2 int8 kernel (${avx2})`);
});

// Small awaited steps run on the calling thread (NetworkHandle::run), large ones on the pool: the same results.
t.test('stream.step (awaited) equals stepSync, for steps small enough to run inline and for pool-sized ones', async (t) => {
  for (const [units, batch] of [[32, 1], [256, 48]]) {
    const model = sequential({ inputSize: 20, layers: [layers.lstm({ units, numLayers: 2, returnSequences: true })], seed: 4 });
    const rng = new rk.SeededRandom(6);
    const a = model.stream(), b = model.stream();
    for (let s = 0; s < 3; s++) {
      const x = { data: randn(rng, batch * 20), shape: [batch, 20] };
      const pending = a.step(x);
      t.ok(pending instanceof Promise, 'step returns a Promise');
      const awaited = (await pending).data as Float32Array;
      t.ok(sameBits(awaited, b.stepSync(x).data as Float32Array), `${units} units, batch ${batch}, step ${s}`);
    }
    await t.rejects(a.step({ data: new Float32Array(3), shape: [1, 3] }), { code: 'ERR_RNNKIT_SHAPE' }, 'a bad input rejects the Promise');
    a.dispose();
    b.dispose();
    model.dispose();
  }
});
