#!/usr/bin/env node
// Times the workloads of bench/gpu/workloads.json through rnnkit on one device and prints one JSON object.
//
//   node bench/gpu/rnnkit_bench.js [--device cuda|cuda:N|cpu] [--min-time S] [--only NAME,...]
//
// Every figure is a synchronous call as a Node program makes it: host arrays in, host arrays out (the input upload
// and the output download are inside the time). Median of the repetitions after 3 warm-up calls.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const { native } = require(path.join(__dirname, '..', '..', 'dist', 'native'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const device = arg('device', 'cuda');
const minTime = Number(arg('min-time', '1'));
const only = arg('only', '');
const spec = JSON.parse(fs.readFileSync(path.join(__dirname, 'workloads.json'), 'utf8'));

function randomFloats(n) {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

function time(fn) {
  for (let i = 0; i < 3; i++) fn();
  const samples = [];
  const start = process.hrtime.bigint();
  while (samples.length < 10 || (samples.length < 1000 && Number(process.hrtime.bigint() - start) / 1e9 < minTime)) {
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { ms: samples[samples.length >> 1], min_ms: samples[0], reps: samples.length };
}

const results = {};
for (const w of spec.workloads) {
  if (only && !only.split(',').includes(w.name)) continue;
  const T = w.seq, B = w.batch, I = w.input, H = w.hidden;
  const r = {};
  let net;
  try {
    net = new native.Network({
      cell: w.cell, inputSize: I, hiddenSize: H, numLayers: w.layers, headSize: w.head || 0, seed: 1, device,
    });
    const x = { data: randomFloats(T * B * I), shape: [T, B, I] };
    for (const mode of w.modes) {
      let t;
      if (mode === 'infer') {
        t = time(() => net.forwardSync({ x }));
      } else if (mode === 'train') {
        const dOutput = randomFloats(T * B * H);
        t = time(() => {
          net.forwardSync({ x }, { train: true });
          net.backwardSync({ dOutput });
        });
      } else if (mode === 'train_step') {
        net.setOptimizer({ type: 'adam', lr: 1e-3 });
        const classes = new Int32Array(T * B).map((_, i) => (i * 7919) % w.head);
        t = time(() => net.trainStepSync({ x }, { classes }, { clipNorm: 5 }));
      } else if (mode === 'step') {
        const stream = new native.Stream(net);
        const one = { x: { data: randomFloats(I), shape: [1, 1, I] } };
        t = time(() => stream.stepSync(one));
        stream.dispose();
      } else {
        throw new Error(`unknown mode ${mode}`);
      }
      t.tokens_per_s = (T * B) / (t.ms / 1e3);
      r[mode] = t;
      process.stderr.write(`${w.name} ${mode}: ${t.ms.toFixed(3)} ms (${t.reps} reps)\n`);
    }
  } catch (e) {
    r.error = `${e.code || ''} ${e.message}`;
    process.stderr.write(`${w.name}: ${r.error}\n`);
  } finally {
    if (net) net.dispose();
  }
  results[w.name] = r;
}

let info = {};
try {
  info = { backend: native.backendInfo(), devices: native.devices() };
} catch (e) {
  info = { error: e.message };
}
process.stdout.write(JSON.stringify({ library: 'rnnkit', device, tf32: process.env.RNNKIT_CUDA_TF32 === '1', ...info, results }, null, 2) + '\n');
