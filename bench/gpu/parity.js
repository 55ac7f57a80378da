#!/usr/bin/env node
// CPU/GPU parity: builds the same networks (same seed, same inputs) on the CPU and on a CUDA device and compares
// every output, state, input gradient, parameter gradient, loss, gradient norm and parameters after optimizer steps.
// Together with the conformance cases (which check against PyTorch in float64), this reaches every Backend method:
// dense and one-hot inputs, embeddings, every cell (GRU both ways), lengths, bidirectional concat and sum merges,
// dropout (masks are drawn on the host, so they agree), dense activations, both losses, clipping, all optimizers,
// and the Stream step.
//
//   node bench/gpu/parity.js [device]        (device: cuda, cuda:N; default RNNKIT_PARITY_DEVICE or cuda)
//
// Needs the compiled TypeScript (dist/) and a CUDA build in build/Release. Prints one line per check and last
// "N passed, M failed"; exits 1 when M > 0.
'use strict';

const path = require('node:path');
const { native } = require(path.join(__dirname, '..', '..', 'dist', 'native'));

const device = process.argv[2] || process.env.RNNKIT_PARITY_DEVICE || 'cuda';
const ATOL = 2e-4;
const RTOL = 2e-3;

let passed = 0;
let failed = 0;

function report(name, problem) {
  if (problem) {
    failed++;
    console.log(`FAIL ${name}: ${problem}`);
  } else {
    passed++;
    console.log(`ok   ${name}`);
  }
}

function compare(got, want) {
  if (got === undefined || want === undefined) return got === want ? null : `present on one device only`;
  if (typeof want === 'number') {
    const err = Math.abs(got - want);
    return err <= ATOL + RTOL * Math.abs(want) ? null : `got ${got}, want ${want}`;
  }
  if (got.length !== want.length) return `${got.length} values, want ${want.length}`;
  let worst = -1;
  let worstExcess = 1;
  for (let i = 0; i < want.length; i++) {
    const bound = ATOL + RTOL * Math.abs(want[i]);
    const err = Math.abs(got[i] - want[i]);
    const excess = Number.isNaN(err) ? Infinity : err / bound;
    if (excess > worstExcess) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst < 0) return null;
  return `[${worst}] got ${got[worst]}, want ${want[worst]} (${worstExcess.toFixed(1)}x the tolerance)`;
}

// mulberry32: the same pseudo-random inputs on both devices.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function floats(n, r, scale = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}
function ints(n, r, max) {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * max);
  return a;
}

// Runs `script(net)` on both devices; it returns a map of name -> value (numbers or Float32Arrays) to compare.
function both(name, spec, script) {
  let cpuNet;
  let gpuNet;
  try {
    cpuNet = new native.Network({ ...spec, device: 'cpu' });
    gpuNet = new native.Network({ ...spec, device });
    const want = script(cpuNet);
    const got = script(gpuNet);
    for (const key of Object.keys(want)) report(`${name}: ${key}`, compare(got[key], want[key]));
  } catch (e) {
    report(name, `error: ${e.code || ''} ${e.message}`);
  } finally {
    if (cpuNet) cpuNet.dispose();
    if (gpuNet) gpuNet.dispose();
  }
}

function grads(net, out, prefix = 'grad ') {
  for (const p of net.paramNames()) out[prefix + p] = net.getGrad(p);
}
function params(net, out, prefix = 'param ') {
  for (const p of net.paramNames()) out[prefix + p] = net.getParam(p);
}

// ---- stacked networks with a head over dense input: every cell, lengths, two directions, h0/c0 ---------------
const cells = [
  { cell: 'rnn_tanh' },
  { cell: 'rnn_relu' },
  { cell: 'lstm' },
  { cell: 'gru', resetAfter: true },
  { cell: 'gru', resetAfter: false },
  // TF.js's hard sigmoid on the gates, with inputs large enough that some gates clip.
  { cell: 'lstm', gateActivation: 'hard_sigmoid', xScale: 8 },
  { cell: 'gru', resetAfter: true, gateActivation: 'hard_sigmoid', xScale: 8 },
  { cell: 'gru', resetAfter: false, gateActivation: 'hard_sigmoid', xScale: 8 },
];
for (const { xScale = 1, ...c } of cells) {
  const T = 9, B = 6, I = 7, H = 33, L = 2, D = 2, K = 5;
  const spec = { ...c, inputSize: I, hiddenSize: H, numLayers: L, bidirectional: true, headSize: K, seed: 11 };
  const name = `${c.cell}${c.resetAfter === false ? ' reset-before' : ''}${c.gateActivation ? ` ${c.gateActivation}` : ''}`;
  both(name, spec, (net) => {
    const r = rng(5);
    const out = {};
    const input = {
      x: { data: floats(T * B * I, r, xScale), shape: [T, B, I] },
      lengths: Int32Array.from([9, 3, 7, 1, 9, 5]),
      h0: floats(L * D * B * H, r, 0.5),
    };
    if (c.cell === 'lstm') input.c0 = floats(L * D * B * H, r, 0.5);
    const inference = net.forwardSync(input, { train: false });
    out['inference output'] = inference.output.data;
    const f = net.forwardSync(input, { train: true });
    out.output = f.output.data;
    out.hn = f.hn;
    if (f.cn) out.cn = f.cn;
    const grad = { dOutput: floats(T * B * K, r), dhn: floats(L * D * B * H, r) };
    if (c.cell === 'lstm') grad.dcn = floats(L * D * B * H, r);
    const g = net.backwardSync(grad);
    out.dx = g.dx;
    out.dh0 = g.dh0;
    if (g.dc0) out.dc0 = g.dc0;
    grads(net, out);
    // Cross-entropy with ignored rows, accumulated onto the gradients above.
    net.forwardSync(input, { train: true });
    const classes = ints(T * B, r, K);
    classes[3] = -1;
    classes[10] = -100;
    out.loss = net.lossSync({ classes }).loss;
    out['grad norm'] = net.gradNorm();
    grads(net, out, 'grad after loss ');
    return out;
  });
}

// ---- optimizers: a few training steps each (clip, then the update) -------------------------------------------
const optimizers = [
  { type: 'sgd', lr: 0.1 },
  { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
  { type: 'sgd', lr: 0.05, momentum: 0.8, dampening: 0.1, maximize: true },
  { type: 'adam', lr: 1e-2 },
  { type: 'adam', lr: 1e-2, amsgrad: true, weightDecay: 1e-2 },
  { type: 'adamw', lr: 1e-2, weightDecay: 0.1 },
  { type: 'rmsprop', lr: 1e-2 },
  { type: 'rmsprop', lr: 1e-2, centered: true, momentum: 0.9, weightDecay: 1e-3 },
];
for (const opt of optimizers) {
  const T = 6, B = 4, V = 17, H = 24;
  both(`train ${JSON.stringify(opt)}`, { cell: 'lstm', vocabSize: V, hiddenSize: H, headSize: V, seed: 3 }, (net) => {
    const r = rng(9);
    const out = {};
    net.setOptimizer(opt);
    const tokens = { data: ints(T * B, r, V), shape: [T, B] };
    tokens.data[1] = tokens.data[0]; // a repeated token: the one-hot gradient scatters into one column twice
    const classes = ints(T * B, r, V);
    for (let step = 0; step < 3; step++) {
      const res = net.trainStepSync({ tokens }, { classes }, { clipNorm: step === 1 ? 0.5 : 5 });
      out[`loss ${step}`] = res.loss;
      out[`grad norm ${step}`] = res.gradNorm;
    }
    params(net, out);
    for (const slot of net.optimizerInfo().stateSlots) out[`state ${slot}`] = net.getOptimizerState(slot);
    return out;
  });
}

// ---- layer pipelines: embedding, stacked GRU with dropout and a sum merge, dropout, dense activations ----------
{
  const T = 7, B = 5, V = 30;
  const spec = {
    vocabSize: V,
    seed: 21,
    layers: [
      { type: 'embedding', outputDim: 16 },
      { type: 'recurrent', cell: 'gru', hiddenSize: 24, numLayers: 2, bidirectional: true, merge: 'sum', dropout: 0.3 },
      { type: 'dropout', rate: 0.2 },
      { type: 'dense', units: 12, activation: 'tanh' },
      { type: 'dense', units: 10, activation: 'relu' },
      { type: 'dense', units: V, activation: 'softmax' },
    ],
  };
  both('pipeline embedding/gru-sum/dropout/dense', spec, (net) => {
    const r = rng(4);
    const out = {};
    net.setRandomState(Int32Array.from([1, 2, 3, 4]));
    const input = { tokens: { data: ints(T * B, r, V), shape: [B, T] }, batchFirst: true };
    out.inference = net.forwardSync(input).output.data;
    const f = net.forwardSync(input, { train: true });
    out.output = f.output.data;
    const res = net.lossSync({ classes: { data: ints(T * B, r, V), shape: [B, T] } });
    out.loss = res.loss;
    grads(net, out);
    net.zeroGrad();
    net.forwardSync(input, { train: true });
    net.backwardSync({ dOutput: floats(T * B * V, r) }); // through the softmax's Jacobian
    grads(net, out, 'grad through softmax ');
    return out;
  });
}
{
  const T = 8, B = 3, I = 5;
  const spec = {
    inputSize: I,
    seed: 8,
    layers: [
      { type: 'recurrent', cell: 'lstm', hiddenSize: 20, bidirectional: true, returnSequences: false },
      { type: 'dense', units: 3, activation: 'sigmoid' },
    ],
  };
  both('pipeline lstm last step / sigmoid / mse', spec, (net) => {
    const r = rng(6);
    const out = {};
    net.setOptimizer({ type: 'adam', lr: 1e-2 });
    const input = { x: { data: floats(T * B * I, r), shape: [T, B, I] }, lengths: Int32Array.from([8, 2, 5]) };
    const values = floats(B * 3, r);
    for (let step = 0; step < 2; step++) {
      const res = net.trainStepSync(input, { kind: 'mse', values }, { clipNorm: 1 });
      out[`loss ${step}`] = res.loss;
      out[`grad norm ${step}`] = res.gradNorm;
    }
    params(net, out);
    out.evaluate = net.evaluateSync(input, { kind: 'mse', values });
    return out;
  });
}
{
  const spec = {
    inputSize: 6,
    seed: 2,
    layers: [{ type: 'recurrent', cell: 'gru', hiddenSize: 16, goBackwards: true }, { type: 'dense', units: 4 }],
  };
  both('pipeline gru goBackwards', spec, (net) => {
    const r = rng(12);
    const out = {};
    const input = { x: { data: floats(5 * 2 * 6, r), shape: [5, 2, 6] } };
    out.output = net.forwardSync(input, { train: true }).output.data;
    const g = net.backwardSync({ dOutput: floats(5 * 2 * 4, r) });
    out.dx = g.dx;
    grads(net, out);
    return out;
  });
}

// ---- the Stream: one step at a time from the kept state --------------------------------------------------------
both('stream steps', { cell: 'lstm', inputSize: 4, hiddenSize: 32, numLayers: 2, headSize: 3, seed: 1 }, (net) => {
  const r = rng(1);
  const out = {};
  const stream = new native.Stream(net);
  for (let step = 0; step < 5; step++)
    out[`step ${step}`] = stream.stepSync({ x: { data: floats(4, r), shape: [1, 1, 4] } }).output.data;
  stream.dispose();
  return out;
});

// ---- larger shapes: GEMMs with every leading dimension over 128 ------------------------------------------------
both('lstm 256 x batch 32 x 20 steps', { cell: 'lstm', inputSize: 128, hiddenSize: 256, seed: 4 }, (net) => {
  const r = rng(2);
  const out = {};
  const input = { x: { data: floats(20 * 32 * 128, r), shape: [20, 32, 128] } };
  const f = net.forwardSync(input, { train: true });
  out.output = f.output.data;
  const g = net.backwardSync({ dOutput: floats(20 * 32 * 256, r, 0.1) });
  out.dx = g.dx;
  grads(net, out);
  return out;
});

// ---- the async path (a worker thread makes the device current for itself) ---------------------------------------
(async () => {
  let cpuNet;
  let gpuNet;
  try {
    const spec = { cell: 'gru', inputSize: 3, hiddenSize: 8, seed: 5 };
    cpuNet = new native.Network({ ...spec, device: 'cpu' });
    gpuNet = new native.Network({ ...spec, device });
    const input = { x: { data: floats(4 * 2 * 3, rng(3)), shape: [4, 2, 3] } };
    const [want, got] = await Promise.all([cpuNet.forward(input), gpuNet.forward(input)]);
    report('async forward', compare(got.output.data, want.output.data));
  } catch (e) {
    report('async forward', `error: ${e.code || ''} ${e.message}`);
  } finally {
    if (cpuNet) cpuNet.dispose();
    if (gpuNet) gpuNet.dispose();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
})();
