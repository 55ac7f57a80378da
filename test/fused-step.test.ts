// The CPU backend's fused recurrent step (a thread's block of hidden units: its gate columns of W_hh, then their cell
// update, one parallel region per step) against the unfused step (RNNKIT_FUSED_STEPS=0: the recurrent GEMM over all
// columns, then the cell kernel over all rows), in child processes. Both run the same micro-kernel, so every output
// and every trained weight agrees to float rounding (the one difference: a one-row panel of the product sums k in two
// interleaved chains). Covered: every cell (LSTM, both GRUs, tanh/relu RNN), hard-sigmoid gates, hidden sizes that
// are no multiple of any SIMD width or block, batch 1 (the unfused few-row path) up to odd batches, masked rows
// (lengths), bidirectional and stacked layers, one-hot input, training (forward with saved activations) and every
// pool size and kernel that can be forced (RNNKIT_THREADS, RNNKIT_GEMM_KERNEL, RNNKIT_SIMD).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { STEP_CASES } from './helpers/step-cases';

const child = `
  const rk = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
  const { layers, optimizers, sequential, SeededRandom } = rk;
  const rng = new SeededRandom(3);
  const rand = (n) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const out = {};
  (async () => {
  const cases = ${JSON.stringify(STEP_CASES)};
  for (const [name, units, batch, opts] of cases) {
    const factory = name.startsWith('lstm') ? layers.lstm : name.startsWith('gru') ? layers.gru : layers.simpleRNN;
    const T = 6, I = 9;
    const make = () => sequential({ inputSize: I, layers: [factory({ units, returnSequences: true, ...opts }), layers.dense({ units: 4 })], seed: 5 });
    const m = make();
    const x = { data: rand(batch * T * I), shape: [batch, T, I] };
    out[name] = Array.from(m.predictSync(x).data);
    const lengths = Array.from({ length: batch }, (_, b) => 1 + (b * 5) % T);
    out[name + ' masked'] = Array.from(m.predictSync(x, { lengths }).data);
    // Training: its forward keeps the activations backward reads (the fused step writes them per block).
    const tm = make();
    tm.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.01 }) });
    const y = { data: Int32Array.from({ length: batch * T }, (_, i) => i % 4), shape: [batch, T] };
    const losses = [];
    for (let s = 0; s < 3; s++) losses.push((await tm.trainOnBatch(x, y, { lengths })).loss);
    out[name + ' train losses'] = losses;
    out[name + ' trained'] = Object.values(tm.getWeights()).flatMap((w) => Array.from(w.data));
  }
  const oneHot = sequential({ vocabSize: 30, layers: [layers.lstm({ units: 67, numLayers: 2, returnSequences: true }), layers.dense({ units: 30 })], seed: 6 });
  out['one-hot lstm 2x67'] = Array.from(oneHot.predictSync({ data: Int32Array.from({ length: 8 * 5 }, (_, i) => (i * 7) % 30), shape: [8, 5] }).data);
  process.stdout.write(JSON.stringify({ info: rk.backendInfo(), out }));
  })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

function run(vars: Record<string, string>): { info: Record<string, unknown>; out: Record<string, number[]> } {
  const env = { ...process.env };
  for (const k of ['RNNKIT_FUSED_STEPS', 'RNNKIT_THREADS', 'RNNKIT_GEMM_KERNEL', 'RNNKIT_SIMD', 'RNNKIT_PACKED_STEPS']) delete env[k];
  Object.assign(env, vars);
  const r = spawnSync(process.execPath, ['-e', child], { env, encoding: 'utf8', timeout: 120000, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`child ${JSON.stringify(vars)} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// Largest difference relative to the largest magnitude of the reference.
function relDiff(a: number[], b: number[]): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return s === 0 ? d : d / s;
}

for (const vars of [
  { RNNKIT_THREADS: '2' },
  { RNNKIT_THREADS: '1' },
  { RNNKIT_THREADS: '3' },
  { RNNKIT_THREADS: '2', RNNKIT_GEMM_KERNEL: 'avx2' },
  { RNNKIT_THREADS: '2', RNNKIT_GEMM_KERNEL: 'generic', RNNKIT_SIMD: 'baseline' },
  { RNNKIT_THREADS: '2', RNNKIT_SIMD: 'avx2' },
]) {
  t.test(`fused steps equal unfused steps (${JSON.stringify(vars)})`, async (t) => {
    const fused = run(vars);
    const plain = run({ ...vars, RNNKIT_FUSED_STEPS: '0' });
    t.same(Object.keys(fused.out), Object.keys(plain.out));
    for (const name of Object.keys(plain.out)) {
      const a = fused.out[name], b = plain.out[name];
      t.ok(a.length > 0 && a.every(Number.isFinite), `${name}: finite outputs`);
      const rel = relDiff(a, b);
      t.ok(rel <= 1e-6, `${name}: fused within 1e-6 of unfused (${rel.toExponential(2)})`);
    }
  });
}
