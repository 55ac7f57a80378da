// The batch-1 step of a stream as a server runs it: ModelStream.step/stepSync (the lean native form), with and
// without a reused output array.
// - float32 steps equal the whole-sequence forward within 1e-5; the lean form equals the object form bit for bit;
// - int8 steps equal the int8 whole-sequence forward bit for bit, with and without options.output;
// - options.output: the array returned is the one given and holds the step's output; a wrong type, length, an
//   array sharing memory with the input, a detached array (before the call, or while an awaited step waits) get
//   coded errors, and a refused step leaves the stream's state where it was;
// - two streams stepping at once (interleaved synchronous steps, concurrent awaited steps) each give what they give
//   alone; a synchronous step called while an awaited one of the same network is in flight is ERR_RNNKIT_BUSY, and
//   one called from a getter of a Promise step's arguments too.
import t from 'tap';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as rk from '../lib/index';
import { native } from '../lib/native';
import { throwsCode, rejectsCode } from './helpers/expect-error';

const { layers, sequential } = rk;
const F = 13;

function randn(rng: rk.SeededRandom, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(a.length, b.length); i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function makeModel(units = 40, seed = 3): rk.Sequential {
  return sequential({ inputSize: F, layers: [layers.lstm({ units, numLayers: 2, returnSequences: true })], seed });
}

const stepOf = (x: Float32Array, s: number) => ({ data: x.slice(s * F, (s + 1) * F), shape: [1, F] });

t.test('float32 steps equal the whole sequence; the lean form equals the object form bit for bit', async (t) => {
  const rng = new rk.SeededRandom(1);
  for (const units of [40, 256]) {
    const T = 5;
    const x = randn(rng, T * F);
    // The model's stream (lean form, with and without a reused output) against the whole-sequence forward.
    const model = makeModel(units);
    const whole = model.predictSync({ data: x, shape: [1, T, F] }).data as Float32Array;
    const lean = model.stream(), reused = model.stream();
    const out = new Float32Array(units);
    // The native network's stream in both forms.
    const net = new native.Network({ cell: 'lstm', inputSize: F, hiddenSize: units, numLayers: 2, seed: 4 });
    const netWhole = net.forwardSync({ x: { data: x, shape: [1, T, F] }, batchFirst: true }).output.data as Float32Array;
    const objectForm = new native.Stream(net), leanForm = new native.Stream(net);
    for (let s = 0; s < T; s++) {
      const a = lean.stepSync(stepOf(x, s)).data as Float32Array;
      const b = reused.stepSync(stepOf(x, s), { output: out });
      t.equal(b.data, out, 'the tensor returned holds the array given');
      t.same(b.shape, [1, 1, units], 'the shape a step always had: [batch, 1, features]');
      t.ok(sameBits(a, out), `${units} units, step ${s}: with and without options.output, bit for bit`);
      t.ok(maxDiff(a, whole.subarray(s * units, (s + 1) * units)) < 1e-5, `${units} units, step ${s}: equals the sequence`);
      const c = objectForm.stepSync({ x: { data: stepOf(x, s).data, shape: [1, 1, F] }, batchFirst: true }).output.data as Float32Array;
      const d = leanForm.stepDataSync(stepOf(x, s).data, 2, 1, F, undefined);
      t.ok(sameBits(c, d), `${units} units, step ${s}: lean and object forms agree bit for bit`);
      t.ok(maxDiff(c, netWhole.subarray(s * units, (s + 1) * units)) < 1e-5, `${units} units, step ${s}: native stream equals the sequence`);
    }
    lean.dispose();
    reused.dispose();
    objectForm.dispose();
    leanForm.dispose();
    net.dispose();
    model.dispose();
  }
});

t.test('int8 steps equal the int8 sequence bit for bit, with and without options.output', async (t) => {
  const rng = new rk.SeededRandom(2);
  for (const units of [40, 256]) {
    const model = makeModel(units).setInferencePrecision('int8');
    const T = 4;
    const x = randn(rng, T * F);
    const whole = model.predictSync({ data: x, shape: [1, T, F] }).data as Float32Array;
    const a = model.stream(), b = model.stream();
    const out = new Float32Array(units);
    for (let s = 0; s < T; s++) {
      const ref = whole.slice(s * units, (s + 1) * units);
      t.ok(sameBits(a.stepSync(stepOf(x, s)).data as Float32Array, ref), `${units} units, step ${s}: stepSync`);
      t.ok(sameBits((await b.step(stepOf(x, s), { output: out })).data as Float32Array, ref), `${units} units, step ${s}: awaited into options.output`);
    }
    a.dispose();
    b.dispose();
    model.dispose();
  }
});

t.test('options.output: coded errors for a wrong array, and the state stays where it was', async (t) => {
  const units = 40;
  const model = makeModel(units);
  const rng = new rk.SeededRandom(3);
  const x = randn(rng, 3 * F);
  const clean = model.stream();
  const refs = [0, 1, 2].map((s) => clean.stepSync(stepOf(x, s)).data as Float32Array);
  const s = model.stream();
  t.ok(sameBits(s.stepSync(stepOf(x, 0)).data as Float32Array, refs[0]));
  throwsCode(t, () => s.stepSync(stepOf(x, 1), { output: new Float64Array(units) as never }), 'ERR_RNNKIT_TYPE', /options\.output must be a Float32Array/, 'a Float64Array');
  throwsCode(t, () => s.stepSync(stepOf(x, 1), { output: [0, 1] as never }), 'ERR_RNNKIT_TYPE', /options\.output must be a Float32Array/, 'an Array');
  throwsCode(t, () => s.stepSync(stepOf(x, 1), { output: new Float32Array(units + 1) }), 'ERR_RNNKIT_SHAPE', /has 41 elements, this step's output has 40/, 'one element too many');
  throwsCode(t, () => s.stepSync(stepOf(x, 1), { outptu: new Float32Array(units) } as never), 'ERR_RNNKIT_ARGUMENT', /outptu.*output/, 'a misspelt option');
  throwsCode(t, () => s.stepSync(stepOf(x, 1), 7 as never), 'ERR_RNNKIT_TYPE', /must be an object/, 'options not an object');
  // The input's own memory as the output.
  const shared = new Float32Array(units + F);
  shared.set(stepOf(x, 1).data, units);
  throwsCode(t, () => s.stepSync({ data: shared.subarray(units - 3, units - 3 + F), shape: [1, F] }, { output: shared.subarray(0, units) }), 'ERR_RNNKIT_ARGUMENT', /shares memory with the step's input/, 'overlapping the input');
  // A detached array (its buffer transferred away).
  const gone = new Float32Array(units);
  structuredClone(gone.buffer, { transfer: [gone.buffer] });
  throwsCode(t, () => s.stepSync(stepOf(x, 1), { output: gone }), 'ERR_RNNKIT_STATE', /detached/, 'a detached array');
  await rejectsCode(t, () => s.step(stepOf(x, 1), { output: gone }), 'ERR_RNNKIT_STATE', /detached/, 'a detached array (awaited)');
  // None of the refused steps ran: the next step is the second step of the clean stream.
  const out = new Float32Array(units);
  t.ok(sameBits(s.stepSync(stepOf(x, 1), { output: out }).data as Float32Array, refs[1]), 'the refused steps left the state alone');
  // Adjacent, not overlapping: allowed. A SharedArrayBuffer-backed output: allowed.
  const beside = new Float32Array(new SharedArrayBuffer((units + F) * 4));
  beside.set(stepOf(x, 2).data, units);
  const r = s.stepSync({ data: beside.subarray(units), shape: [1, F] }, { output: beside.subarray(0, units) });
  t.ok(sameBits(r.data as Float32Array, refs[2]), 'an output right beside the input in one SharedArrayBuffer');
  clean.dispose();
  s.dispose();
  model.dispose();
});

t.test('an awaited step whose output array is detached while it waits rejects, and the stream goes on', async (t) => {
  // A large step ahead in the network's queue makes the small one wait on the pool.
  const units = 64;
  const model = sequential({ inputSize: F, layers: [layers.lstm({ units, numLayers: 2, returnSequences: true })], seed: 5 });
  const rng = new rk.SeededRandom(4);
  const x = randn(rng, 2 * F);
  const big = model.predict({ data: randn(rng, 64 * 32 * F), shape: [64, 32, F] });
  const s = model.stream();
  const out = new Float32Array(units);
  const pending = s.step(stepOf(x, 0), { output: out });
  structuredClone(out.buffer, { transfer: [out.buffer] });
  await big;
  await rejectsCode(t, () => pending, 'ERR_RNNKIT_STATE', /detached/, 'the output array was detached while the step waited');
  const next = await s.step(stepOf(x, 1), { output: new Float32Array(units) });
  t.equal(next.data.length, units, 'the stream still steps');
  s.dispose();
  model.dispose();
});

t.test('two streams stepping at once each give what they give alone', async (t) => {
  const rng = new rk.SeededRandom(6);
  const T = 6;
  const xa = randn(rng, T * F), xb = randn(rng, T * F);
  for (const precision of ['float32', 'int8'] as const) {
    const model = makeModel(96).setInferencePrecision(precision);
    const other = makeModel(96, 9).setInferencePrecision(precision);
    const alone = (m: rk.Sequential, x: Float32Array) => {
      const s = m.stream();
      const r = Array.from({ length: T }, (_, i) => s.stepSync(stepOf(x, i)).data as Float32Array);
      s.dispose();
      return r;
    };
    const ra = alone(model, xa), rb = alone(model, xb), rc = alone(other, xb);
    // Interleaved synchronous steps: two streams of one model, and a stream of another model.
    const a = model.stream(), b = model.stream(), c = other.stream();
    const oa = new Float32Array(96), ob = new Float32Array(96);
    let ok = true;
    for (let i = 0; i < T; i++) {
      ok = ok && sameBits(a.stepSync(stepOf(xa, i), { output: oa }).data as Float32Array, ra[i]);
      ok = ok && sameBits(b.stepSync(stepOf(xb, i), { output: ob }).data as Float32Array, rb[i]);
      ok = ok && sameBits(c.stepSync(stepOf(xb, i)).data as Float32Array, rc[i]);
    }
    t.ok(ok, `${precision}: interleaved synchronous steps equal the streams alone`);
    // Concurrent awaited steps (queued in the network's call order, or inline).
    a.reset();
    b.reset();
    c.reset();
    let same = true;
    for (let i = 0; i < T; i++) {
      const [pa, pb, pc] = await Promise.all([a.step(stepOf(xa, i)), b.step(stepOf(xb, i)), c.step(stepOf(xb, i))]);
      same = same && sameBits(pa.data as Float32Array, ra[i]) && sameBits(pb.data as Float32Array, rb[i]) && sameBits(pc.data as Float32Array, rc[i]);
    }
    t.ok(same, `${precision}: concurrent awaited steps equal the streams alone`);
    a.dispose();
    b.dispose();
    c.dispose();
    model.dispose();
    other.dispose();
  }
});

t.test('a step\'s shape: every wrong form is a coded error and moves nothing; shared memory is read', async (t) => {
  const rng = new rk.SeededRandom(9);
  const model = makeModel(16);
  const x = randn(rng, F);
  const reference = model.stream().stepSync({ data: x, shape: [1, F] }).data as Float32Array;
  const s = model.stream();
  const cases: [unknown, unknown, string, RegExp, string][] = [
    [x, [F], 'ERR_RNNKIT_SHAPE', /a step takes \{ data, shape \} with shape \[batch, features\].*has 1 dimensions/, 'one dimension'],
    [x, [1, 1, 1, F], 'ERR_RNNKIT_SHAPE', /has 4 dimensions/, 'four dimensions'],
    [x, [1, 'a'], 'ERR_RNNKIT_SHAPE', /shape\[1\] must be a non-negative integer, got string/, 'a string dimension'],
    [x, [1.5, F], 'ERR_RNNKIT_SHAPE', /shape\[0\] must be a non-negative integer, got 1\.5/, 'a fraction'],
    [x, [-1, F], 'ERR_RNNKIT_SHAPE', /shape\[0\] must be a non-negative integer, got -1/, 'a negative dimension'],
    [x, [1, 1, NaN], 'ERR_RNNKIT_SHAPE', /shape\[2\] must be a non-negative integer, got NaN/, 'NaN'],
    [x, [2, F], 'ERR_RNNKIT_SHAPE', /as many values as the shape says/, 'more rows than the data holds'],
    [new Float32Array(0), [0, F], 'ERR_RNNKIT_SHAPE', /at least 1/, 'no rows'],
    [new Float64Array(F), [1, F], 'ERR_RNNKIT_TYPE', /must be a Float32Array/, 'a Float64Array'],
  ];
  for (const [data, shape, code, message, what] of cases) {
    throwsCode(t, () => s.stepSync({ data, shape } as never), code, message, `stepSync: ${what}`);
    await rejectsCode(t, () => s.step({ data, shape } as never), code, message, `step: ${what}`);
  }
  // A Proxy of the shape whose trap throws: its own error, nothing run.
  const own = new Error('trap');
  const trapped = new Proxy([1, F], { get(target, key) { if (key === '0') throw own; return Reflect.get(target, key); } });
  t.throws(() => s.stepSync({ data: x, shape: trapped }), own, 'a throwing trap: its error (stepSync)');
  await t.rejects(s.step({ data: x, shape: trapped }), own, 'a throwing trap: its error (step)');
  // The input in a SharedArrayBuffer is read like any other.
  const shared = new Float32Array(new SharedArrayBuffer(4 * F));
  shared.set(x);
  t.ok(sameBits(s.stepSync({ data: shared, shape: [1, F] }).data as Float32Array, reference), 'none of the refused steps ran; a shared input is read');
  s.dispose();
  model.dispose();
});

t.test('a synchronous step while an awaited step of the network is in flight, or from a getter, is ERR_RNNKIT_BUSY', async (t) => {
  const rng = new rk.SeededRandom(8);
  const model = makeModel(64);
  const x = randn(rng, F);
  const reference = model.stream().stepSync({ data: x, shape: [1, F] }).data as Float32Array;
  const s = model.stream(), other = model.stream();
  // 64 rows: too much work to run inline, so the step is in flight on the pool.
  const inFlight = s.step({ data: randn(rng, 64 * F), shape: [64, F] });
  throwsCode(t, () => other.stepSync({ data: x, shape: [1, F] }), 'ERR_RNNKIT_BUSY', /running another call/, 'stepSync of another stream of the network');
  await inFlight;
  // From a getter run while a Promise step reads its arguments natively (a token model's ids are read there one by
  // one): the nested step is refused and moves nothing.
  const tokens = sequential({ vocabSize: 5, layers: [layers.lstm({ units: 8, numLayers: 2, returnSequences: true })], seed: 3 });
  const tokenReference = tokens.stream().stepSync([1]).data as Float32Array;
  const tokenOther = tokens.stream();
  let inner: unknown;
  const ids = [0, 0];
  Object.defineProperty(ids, 1, { get() { try { tokenOther.stepSync([1]); } catch (e) { inner = e; } return 2; } });
  const fresh = tokens.stream();
  await fresh.step(ids);
  fresh.dispose();
  t.equal((inner as { code?: string })?.code, 'ERR_RNNKIT_BUSY', 'stepSync from a getter of a step\'s arguments');
  t.ok(sameBits(tokenOther.stepSync([1]).data as Float32Array, tokenReference), 'the refused step left the state alone');
  tokens.dispose();
  // A dense step's shape is read in JavaScript before the step starts: a getter there runs while nothing is in
  // flight, so a step it makes is an ordinary earlier step.
  let early: unknown = 'not run';
  const shape = [1, F];
  Object.defineProperty(shape, 1, { get() { try { early = other.stepSync({ data: x, shape: [1, F] }).data; } catch (e) { early = e; } return F; } });
  const fresh2 = model.stream();
  await fresh2.step({ data: x, shape });
  fresh2.dispose();
  t.ok(early instanceof Float32Array && sameBits(early, reference), 'a step made from a getter of the shape ran first, from the clean state');
  s.dispose();
  other.dispose();
  model.dispose();
});

t.test('int8 stream steps: the sequence\'s bits, for every cell, int8 kernel and pool size', async (t) => {
  // Each child compares its steps with its own whole-sequence forward (bit for bit), and all children must give the
  // same bits (the scalar kernel on one thread is the reference).
  const child = `
    const rk = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
    const rng = new rk.SeededRandom(21);
    const F = 19, T = 4, out = [];
    let mismatches = 0;
    const cases = [
      [rk.layers.lstm, { units: 256, numLayers: 2 }], [rk.layers.lstm, { units: 48 }], [rk.layers.lstm, { units: 40 }],
      [rk.layers.lstm, { units: 32, recurrentActivation: 'hardSigmoid' }], [rk.layers.gru, { units: 32, numLayers: 2 }],
      [rk.layers.gru, { units: 16, resetAfter: false }], [rk.layers.simpleRNN, { units: 64 }],
      [rk.layers.simpleRNN, { units: 16, activation: 'relu' }],
    ];
    for (const [layer, options] of cases) {
      const m = rk.sequential({ inputSize: F, layers: [layer({ ...options, returnSequences: true })], seed: 5 }).setInferencePrecision('int8');
      const units = options.units;
      const x = Float32Array.from({ length: T * F }, () => rng.next() * 2 - 1);
      const whole = m.predictSync({ data: x, shape: [1, T, F] }).data;
      const s = m.stream();
      for (let i = 0; i < T; i++) {
        const step = s.stepSync({ data: x.slice(i * F, (i + 1) * F), shape: [1, F] }).data;
        if (Buffer.compare(Buffer.from(step.buffer), Buffer.from(whole.buffer, i * units * 4, units * 4)) !== 0) mismatches++;
        out.push(Buffer.from(step.buffer).toString('base64'));
      }
      s.dispose();
      m.dispose();
    }
    process.stdout.write(JSON.stringify({ kernel: rk.backendInfo().int8Kernel, threads: rk.backendInfo().threads, mismatches, out }));
  `;
  const run = (vars: Record<string, string>) => {
    const env = { ...process.env };
    for (const name of ['RNNKIT_SIMD', 'RNNKIT_INT8_KERNEL', 'RNNKIT_THREADS']) delete env[name];
    Object.assign(env, vars);
    const r = spawnSync(process.execPath, ['-e', child], { env, encoding: 'utf8', timeout: 60000 });
    t.equal(r.status, 0, `child (${JSON.stringify(vars)}) ran: ${r.stderr}`);
    return JSON.parse(r.stdout || '{}') as { kernel: string; threads: number; mismatches: number; out: string[] };
  };
  const reference = run({ RNNKIT_INT8_KERNEL: 'scalar', RNNKIT_THREADS: '1' });
  t.equal(reference.kernel, 'scalar', 'RNNKIT_INT8_KERNEL=scalar runs the scalar kernel');
  t.equal(reference.mismatches, 0, 'scalar, one thread: every step equals the sequence bit for bit');
  for (const vars of [{ RNNKIT_INT8_KERNEL: 'avx2', RNNKIT_THREADS: '2' }, { RNNKIT_THREADS: '1' }, { RNNKIT_THREADS: '2' }, { RNNKIT_THREADS: '3' }]) {
    const r = run(vars);
    t.equal(r.mismatches, 0, `${r.kernel}, ${r.threads} threads: every step equals the sequence bit for bit`);
    t.same(r.out, reference.out, `${r.kernel}, ${r.threads} threads: the scalar kernel's bits`);
  }
});

t.test('a weight change reaches the next step (the folded biases are kept per weights version)', async (t) => {
  const rng = new rk.SeededRandom(23);
  for (const precision of ['float32', 'int8'] as const) {
    const model = makeModel(32).setInferencePrecision(precision);
    const x = randn(rng, F);
    // A step with the original weights (the layer folds and keeps b_ih + b_hh), then new biases and a new W_hh of
    // layer 1, then a step of a new stream: it must be the step of a model made with the new weights.
    const warm = model.stream();
    warm.stepSync({ data: x, shape: [1, F] });
    const w = model.getWeights();
    const changed: Record<string, Float32Array> = {};
    for (const name of ['lstm_1.bias_ih_l0', 'lstm_1.bias_hh_l0', 'lstm_1.bias_ih_l1', 'lstm_1.bias_hh_l1', 'lstm_1.weight_hh_l1'])
      changed[name] = Float32Array.from(w[name].data, (v, i) => v + 0.25 * Math.sin(i + 1));
    model.setWeights(changed);
    const after = model.stream().stepSync({ data: x, shape: [1, F] }).data as Float32Array;
    const fresh = makeModel(32).setInferencePrecision(precision);
    fresh.setWeights(Object.fromEntries(Object.entries(w).map(([n, v]) => [n, changed[n] ?? (v.data as Float32Array)])));
    const expected = fresh.stream().stepSync({ data: x, shape: [1, F] }).data as Float32Array;
    t.ok(sameBits(after, expected), `${precision}: the step after setWeights is the new weights' step`);
    const before = makeModel(32).setInferencePrecision(precision).stream().stepSync({ data: x, shape: [1, F] }).data as Float32Array;
    t.ok(maxDiff(before, after) > 1e-3, `${precision}: and differs from the old weights' step (max |diff| ${maxDiff(before, after).toExponential(2)})`);
    warm.dispose();
    fresh.dispose();
    model.dispose();
  }
});

// The float32 step kernel is chosen at run time: each one the CPU can run gives steps equal to the whole sequence;
// forced alone (RNNKIT_STEP_KERNEL, everything else unchanged) each gives the same bits as the scalar loop, since
// every kernel sums in the same order; RNNKIT_SIMD (the ceiling of every kernel) lowers it too.
t.test('float32 step kernels (AVX-512, AVX2, scalar): the same bits, and equal to the sequence', async (t) => {
  const child = `
    const rk = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
    const rng = new rk.SeededRandom(12);
    const F = 19, T = 3, out = [];
    let worst = 0;
    for (const [cell, units] of [['lstm', 75], ['rnn', 70], ['lstm', 256]]) {
      const rec = cell === 'lstm' ? rk.layers.lstm : rk.layers.simpleRNN;
      const m = rk.sequential({ inputSize: F, layers: [rec({ units, numLayers: 2, returnSequences: true })], seed: 8 });
      const x = Float32Array.from({ length: T * F }, () => rng.next() * 2 - 1);
      const whole = m.predictSync({ data: x, shape: [1, T, F] }).data;
      const s = m.stream();
      for (let i = 0; i < T; i++) {
        const step = s.stepSync({ data: x.slice(i * F, (i + 1) * F), shape: [1, F] }).data;
        for (let j = 0; j < units; j++) worst = Math.max(worst, Math.abs(step[j] - whole[i * units + j]));
        out.push(Buffer.from(step.buffer).toString('base64'));
      }
    }
    process.stdout.write(JSON.stringify({ kernel: rk.backendInfo().stepKernel, worst, out }));
  `;
  const run = (vars: Record<string, string>) => {
    const env = { ...process.env };
    delete env.RNNKIT_SIMD;
    delete env.RNNKIT_STEP_KERNEL;
    Object.assign(env, vars);
    const r = spawnSync(process.execPath, ['-e', child], { env, encoding: 'utf8', timeout: 60000 });
    t.equal(r.status, 0, `child (${JSON.stringify(vars)}) ran: ${r.stderr}`);
    return JSON.parse(r.stdout || '{}') as { kernel: string; worst: number; out: string[] };
  };
  const reference = run({ RNNKIT_STEP_KERNEL: 'scalar' });
  t.equal(reference.kernel, 'scalar', 'RNNKIT_STEP_KERNEL=scalar runs the scalar loop');
  t.ok(reference.worst < 1e-5, `scalar: steps equal the sequence (max |diff| ${reference.worst.toExponential(2)})`);
  const seen = new Set(['scalar']);
  for (const vars of [{ RNNKIT_STEP_KERNEL: 'avx2' }, {}]) {
    const r = run(vars);
    seen.add(r.kernel);
    t.same(r.out, reference.out, `the ${r.kernel} kernel (${JSON.stringify(vars)}) gives the scalar loop's bits`);
    t.ok(r.worst < 1e-5, `${r.kernel}: steps equal the sequence (max |diff| ${r.worst.toExponential(2)})`);
  }
  t.comment(`float32 step kernels compared: ${[...seen].join(', ')}`);
  t.equal(run({ RNNKIT_SIMD: 'baseline' }).kernel, 'scalar', 'RNNKIT_SIMD=baseline: the scalar step kernel');
  const avx2 = run({ RNNKIT_SIMD: 'avx2' });
  t.ok(avx2.kernel === 'avx2' || avx2.kernel === 'scalar', `RNNKIT_SIMD=avx2: at most the AVX2 step kernel (${avx2.kernel})`);
  t.ok(avx2.worst < 1e-5, 'and its steps equal the sequence');
});
