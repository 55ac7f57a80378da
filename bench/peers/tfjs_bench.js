#!/usr/bin/env node
// TensorFlow.js peer of the rnnkit benchmark harness (lib/bench.ts runs it in a child process, one workload per
// process).
//
// usage: node bench/peers/tfjs_bench.js '<task JSON>'
//   task = { name, workload (one entry of bench/workloads.json, already scaled by the harness), backend: 'wasm'|'cpu',
//            threads, min_seconds, repetitions, max_seconds }
// The last line of stdout is one JSON object: the workload's figures (tokens_per_s, s_per_step, s_per_call,
// us_per_step, peak_rss_mb), repetitions, library, version, backend. (TF.js itself may print a banner before it.)
//
// How it measures (../shared/bench/reference.md): tf.sequential of tf.layers.lstm/gru (returnSequences) and, for
// training, a timeDistributed dense softmax head; model.trainOnBatch with Adam (lr 1e-3) and sparse categorical
// cross-entropy (TF.js layers have no global-norm gradient clipping, so none is applied); model.predict for
// inference; a stateful batch-1 model for the step workload. One-hot inputs are float one-hot tensors. Two warm-up
// calls, then the median of at least `repetitions` timed calls lasting at least `min_seconds`.
'use strict';

const task = JSON.parse(process.argv[2]);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timed(fn, reps, minSeconds, maxSeconds) {
  const now = () => performance.now() / 1000;
  let t = now();
  await fn();
  const first = now() - t;
  // So slow that the first (warm-up) call already took max_seconds: that call is the figure, counted as 1 call.
  if (first >= maxSeconds) return [first, 1];
  if (first < 10) await fn(); // a second warm-up unless one call already takes very long
  const times = [];
  const start = now();
  for (;;) {
    const elapsed = now() - start;
    if (times.length >= reps && elapsed >= minSeconds) break;
    if (times.length && elapsed >= maxSeconds) break;
    if (times.length >= 100000) break;
    t = now();
    await fn();
    times.push(now() - t);
  }
  return [median(times), times.length];
}

async function main() {
  const tf = require('@tensorflow/tfjs');
  const backend = task.backend || 'wasm';
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    // The .wasm binaries ship inside the npm package; point at them explicitly so nothing is fetched.
    const path = require('node:path');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend '${backend}' could not be initialised`);
  await tf.ready();
  let threads = 1;
  if (backend === 'wasm') {
    try { threads = require('@tensorflow/tfjs-backend-wasm').getThreadsCount(); } catch { threads = 1; }
  }

  const w = task.workload;
  const reps = task.repetitions ?? 5, minS = task.min_seconds ?? 2, maxS = task.max_seconds ?? 120;
  const H = w.hidden, L = w.layers ?? 1, B = w.batch, T = w.seq ?? 1;
  const oneHot = w.input === 'one-hot';
  const I = oneHot ? w.vocab : w.input_size;
  // The recurrent kernels start glorotUniform instead of TF.js's default 'orthogonal': that initializer's QR
  // decomposition takes minutes on the cpu backend at 512 units (it is set-up, never timed; the initial values do
  // not change the time of a step).
  const rnnLayer = (o) => {
    const opts = { recurrentInitializer: 'glorotUniform', ...o };
    return w.cell === 'lstm' ? tf.layers.lstm(opts) : w.cell === 'gru' ? tf.layers.gru(opts) : tf.layers.simpleRNN(opts);
  };
  let seed = 7;
  const rand = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296; };
  const makeInput = (batch, steps) => {
    const data = new Float32Array(batch * steps * I);
    for (let i = 0; i < batch * steps; i++) {
      if (oneHot) data[i * I + Math.floor(rand() * I)] = 1;
      else for (let j = 0; j < I; j++) data[i * I + j] = rand() * 2 - 1;
    }
    return tf.tensor3d(data, [batch, steps, I]);
  };

  const out = { library: 'tfjs', version: tf.version.tfjs, backend: tf.getBackend(), threads };
  let s, n;
  if (w.kind === 'train') {
    const model = tf.sequential();
    for (let k = 0; k < L; k++) model.add(rnnLayer({ units: H, returnSequences: true, ...(k === 0 ? { inputShape: [T, I] } : {}) }));
    model.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: w.head, activation: 'softmax' }) }));
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
    const x = makeInput(B, T);
    const yData = new Float32Array(B * T);
    for (let i = 0; i < yData.length; i++) yData[i] = Math.floor(rand() * w.head);
    const y = tf.tensor3d(yData, [B, T, 1]);
    [s, n] = await timed(() => model.trainOnBatch(x, y), reps, minS, maxS);
    out.tokens_per_s = (B * T) / s;
    out.s_per_step = s;
  } else if (w.kind === 'infer') {
    const model = tf.sequential();
    for (let k = 0; k < L; k++) model.add(rnnLayer({ units: H, returnSequences: true, ...(k === 0 ? { inputShape: [T, I] } : {}) }));
    const x = makeInput(B, T);
    [s, n] = await timed(() => { const y = model.predict(x); y.dataSync(); y.dispose(); }, reps, minS, maxS);
    out.tokens_per_s = (B * T) / s;
    out.s_per_call = s;
  } else {
    // One step of a stateful stream: batch-1 stateful layers keep their state between predict calls.
    const model = tf.sequential();
    for (let k = 0; k < L; k++) {
      model.add(rnnLayer({ units: H, stateful: true, returnSequences: k < L - 1, ...(k === 0 ? { batchInputShape: [B, 1, I] } : {}) }));
    }
    const x = makeInput(B, 1);
    [s, n] = await timed(() => { const y = model.predict(x); y.dataSync(); y.dispose(); }, Math.max(reps, 200), minS, maxS);
    out.us_per_step = s * 1e6;
    out.tokens_per_s = B / s;
  }
  out.repetitions = n;
  out.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write('\n' + JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`tfjs_bench: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
