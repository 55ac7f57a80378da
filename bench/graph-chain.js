#!/usr/bin/env node
// One chain of layers trained side by side by the layer pipeline (Sequential) and by the graph executor (GraphModel,
// the same layers compiled to a graph plan), alternating in one process (developer tool, not part of the package):
//   node bench/graph-chain.js [--hidden 128] [--batch 32] [--steps 64] [--rounds 10]
// Both start from the same weights and compute the same losses (test/graph-model.test.ts checks that bit for bit);
// the figure is the process's CPU time per training step of each, and their ratio.
'use strict';
const path = require('node:path');
const rk = require(path.join(__dirname, '..', 'dist', 'index.js'));

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const H = opt('hidden', 128), B = opt('batch', 32), T = opt('steps', 64), rounds = opt('rounds', 10), V = 65;

const { layers, input, model } = rk;
const x = input({ dtype: 'int32', vocabSize: V, name: 'ids' });
const y = layers.dense({ units: V, name: 'out' }).apply(
  layers.lstm({ units: H, returnSequences: true, name: 'rnn' }).apply(layers.embedding({ outputDim: 32, name: 'emb' }).apply(x)));
const pipeline = model({ inputs: x, outputs: y, seed: 4 });
const graph = rk.graphModel({ inputs: x, outputs: y, seed: 4 });
for (const m of [pipeline, graph]) m.compile({ loss: 'softmaxCrossEntropy', optimizer: { type: 'adam' } });
const ids = { data: Int32Array.from({ length: B * T }, (_, i) => (i * 7) % V), shape: [B, T] };
const targets = { data: Int32Array.from({ length: B * T }, (_, i) => (i * 5) % V), shape: [B, T] };

(async () => {
  const cpu = { pipeline: 0, graph: 0 };
  const per = 5;
  for (let r = 0; r < rounds; r++) {
    for (const [name, m] of [['pipeline', pipeline], ['graph', graph]]) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < per; i++) await m.trainOnBatch(ids, targets);
      const c = process.cpuUsage(c0);
      cpu[name] += (c.user + c.system) / 1e3;
    }
  }
  const n = rounds * per;
  console.log(JSON.stringify({ hidden: H, batch: B, steps: T, cpuMsPerStep: { pipeline: cpu.pipeline / n, graph: cpu.graph / n }, ratio: cpu.graph / cpu.pipeline }));
})();
