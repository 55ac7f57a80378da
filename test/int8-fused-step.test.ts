// The CPU backend's fused int8 recurrent step (each thread quantizes h, multiplies its block of hidden units' gate
// columns of the int8 W_hh and runs their cell update, one parallel region per step) against the unfused int8 step
// (RNNKIT_FUSED_STEPS=0: the int8 product over all columns, then the cell kernel over all rows), in child processes.
// Both quantize the same rows to the same integers and finish them with the same float operations, so every output
// must be the same bits. Covered: every cell that takes the fused step (LSTM, hard-sigmoid LSTM, reset-after GRU,
// tanh and relu RNN) and the reset-before GRU (never fused), hidden sizes that are no multiple of the unit block or
// of 16 outputs, batch 1 (the one-row kernels) up to batches past a tile of 8 rows, masked rows (lengths), stacked
// and bidirectional layers, a one-hot input, stream steps of a batch, pool sizes 1, 2 and 3, and every int8 kernel
// that can be forced (RNNKIT_INT8_KERNEL, RNNKIT_SIMD).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { STEP_CASES } from './helpers/step-cases';

const child = `
  const rk = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
  const { layers, sequential, SeededRandom } = rk;
  const rng = new SeededRandom(3);
  const rand = (n) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  const out = {};
  const cases = [
    ...${JSON.stringify(STEP_CASES)},
    ['gru batch 1', 200, 1, {}],
    ['lstm 256', 256, 32, { numLayers: 2 }],
  ];
  for (const [name, units, batch, opts] of cases) {
    const factory = name.startsWith('lstm') ? layers.lstm : name.startsWith('gru') ? layers.gru : layers.simpleRNN;
    const T = 6, I = 9;
    const m = sequential({ inputSize: I, layers: [factory({ units, returnSequences: true, ...opts }), layers.dense({ units: 4 })], seed: 5 });
    m.setInferencePrecision('int8');
    const x = { data: rand(batch * T * I), shape: [batch, T, I] };
    out[name] = bits(m.predictSync(x).data);
    const lengths = Array.from({ length: batch }, (_, b) => 1 + (b * 5) % T);
    out[name + ' masked'] = bits(m.predictSync(x, { lengths }).data);
    m.dispose();
  }
  const oneHot = sequential({ vocabSize: 30, layers: [layers.lstm({ units: 67, numLayers: 2, returnSequences: true }), layers.dense({ units: 30 })], seed: 6 });
  oneHot.setInferencePrecision('int8');
  const tokens = { data: Int32Array.from({ length: 8 * 5 }, (_, i) => (i * 7) % 30), shape: [8, 5] };
  out['one-hot lstm 2x67'] = bits(oneHot.predictSync(tokens).data);
  // A token stream (one row; a single token is a fused step of T = 1, a run of tokens several), its state carried.
  const s = oneHot.stream();
  for (const run of [[3], [4, 5, 6], [7]]) out['one-hot stream ' + run.join(' ')] = bits(s.stepSync(run).data);
  s.dispose();
  // A dense stream of a batch, several steps per call.
  const dense = sequential({ inputSize: 9, layers: [layers.gru({ units: 41, numLayers: 2, returnSequences: true })], seed: 7 });
  dense.setInferencePrecision('int8');
  const ds = dense.stream();
  for (let call = 0; call < 3; call++) out['dense stream call ' + call] = bits(ds.stepSync({ data: rand(10 * 3 * 9), shape: [10, 3, 9] }).data);
  ds.dispose();
  process.stdout.write(JSON.stringify({ info: rk.backendInfo(), out }));
`;

function run(vars: Record<string, string>): { info: Record<string, unknown>; out: Record<string, string> } {
  const env = { ...process.env };
  for (const k of ['RNNKIT_FUSED_STEPS', 'RNNKIT_THREADS', 'RNNKIT_INT8_KERNEL', 'RNNKIT_SIMD', 'RNNKIT_GEMM_KERNEL']) delete env[k];
  Object.assign(env, vars);
  const r = spawnSync(process.execPath, ['-e', child], { env, encoding: 'utf8', timeout: 120000, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`child ${JSON.stringify(vars)} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const reference = run({ RNNKIT_THREADS: '2', RNNKIT_FUSED_STEPS: '0', RNNKIT_INT8_KERNEL: 'scalar' });

for (const vars of [
  { RNNKIT_THREADS: '2' },
  { RNNKIT_THREADS: '1' },
  { RNNKIT_THREADS: '3' },
  { RNNKIT_THREADS: '2', RNNKIT_INT8_KERNEL: 'avx2' },
  { RNNKIT_THREADS: '2', RNNKIT_INT8_KERNEL: 'scalar' },
  { RNNKIT_THREADS: '2', RNNKIT_SIMD: 'avx2' },
]) {
  t.test(`int8: fused steps equal unfused steps, bit for bit (${JSON.stringify(vars)})`, async (t) => {
    const fused = run(vars);
    const plain = run({ ...vars, RNNKIT_FUSED_STEPS: '0' });
    t.comment(`int8 kernel: ${String(fused.info.int8Kernel)}`);
    t.same(Object.keys(fused.out), Object.keys(plain.out));
    for (const name of Object.keys(plain.out)) {
      t.equal(fused.out[name], plain.out[name], `${name}: fused equals unfused`);
      // Every kernel and pool size gives the scalar kernel's unfused bits too.
      t.equal(fused.out[name], reference.out[name], `${name}: equals the scalar kernel's unfused step`);
    }
  });
}
