#!/usr/bin/env node
// The pieces of a batch-1 stream step, timed in one process (developer tool, not part of the package):
//   node bench/step.js [--hidden 256] [--layers 2] [--input 65] [--batches 30] [--steps 300]
// For float32 and int8: the synchronous step (a new output array, and options.output reused), the awaited step,
// and the same model at 8 units (what is left when the products are negligible: the JavaScript crossing, argument
// reading, the pass's bookkeeping and the output). Each figure is the best and the median over batches of steps,
// wall time and the process's CPU time per step (CPU time is the steadier one on a shared machine; with more than one
// thread it includes the pool's spinning). Run with RNNKIT_THREADS=1 for one thread.
'use strict';
const path = require('node:path');
const rk = require(path.join(__dirname, '..', 'dist', 'index.js'));

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const H = opt('hidden', 256), L = opt('layers', 2), I = opt('input', 65), batches = opt('batches', 30), steps = opt('steps', 300);

function model(units, precision) {
  const m = rk.sequential({ inputSize: I, layers: [rk.layers.lstm({ units, numLayers: L, returnSequences: true })], seed: 1 });
  return m.setInferencePrecision(precision);
}

const x = { data: Float32Array.from({ length: I }, (_, i) => Math.sin(i)), shape: [1, I] };

function timeSync(fn) {
  const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) fn();
  const c = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / steps / 1e3, cpu: (c.user + c.system) / steps };
}

async function timeAwaited(fn) {
  const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) await fn();
  const c = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / steps / 1e3, cpu: (c.user + c.system) / steps };
}

async function main() {
  const rows = [];
  for (const precision of ['float32', 'int8']) {
    for (const units of [H, 8]) {
      const m = model(units, precision);
      const s = m.stream();
      const out = new Float32Array(units);
      const cases = [
        [`stepSync`, () => timeSync(() => s.stepSync(x))],
        [`stepSync, output reused`, () => timeSync(() => s.stepSync(x, { output: out }))],
        [`await step`, () => timeAwaited(() => s.step(x))],
      ];
      const results = cases.map(() => []);
      for (let b = 0; b < batches; b++)
        for (let c = 0; c < cases.length; c++) results[c].push(await cases[c][1]());
      cases.forEach(([name], c) => {
        const r = results[c];
        const best = (k) => Math.min(...r.map((v) => v[k]));
        const median = (k) => r.map((v) => v[k]).sort((a, b) => a - b)[r.length >> 1];
        rows.push({ model: `${L}x${units} ${precision}`, call: name, best_us: +best('wall').toFixed(2), median_us: +median('wall').toFixed(2), cpu_best_us: +best('cpu').toFixed(2), cpu_median_us: +median('cpu').toFixed(2) });
      });
      s.dispose();
      m.dispose();
    }
  }
  const info = rk.backendInfo();
  console.log(`threads ${info.threads}, int8 kernel ${info.int8Kernel}, float32 step kernel ${info.stepKernel}, input ${I}`);
  console.table(rows);
}

main();
