#!/usr/bin/env node
// brain.js peer of the rnnkit benchmark harness (lib/bench.ts runs it in a child process): the character-RNN
// training workload through brain.js's own API (brain.recurrent.LSTM / GRU / RNN over strings).
//
// usage: node bench/peers/brain_bench.js '<task JSON>'
//   task = { name, workload (already scaled by the harness), min_seconds, repetitions, max_seconds }
// The last line of stdout is one JSON object: tokens_per_s, s_per_step, peak_rss_mb, repetitions, library, version,
// or { unsupported: "why" } for a workload its API cannot express (only one-hot character training is).
//
// brain.js (1.6.1, the version npm installs; pure JavaScript, single-threaded) trains one sequence at a time: the
// timed unit is net.trainPattern() of one window of `seq` characters (forward, backward through time and its own
// RMSProp-style update with element-wise clipping; it has no Adam and no batches). tokens_per_s = seq / that time;
// s_per_step = batch * that time, i.e. the time it needs for the same tokens as one batched step of the workload.
'use strict';

const task = JSON.parse(process.argv[2]);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main() {
  const w = task.workload;
  if (w.kind !== 'train' || w.input !== 'one-hot') {
    process.stdout.write(JSON.stringify({ unsupported: 'brain.js: only the character (one-hot) training workload maps onto its API' }) + '\n');
    return;
  }
  const brain = require('brain.js');
  const version = require('brain.js/package.json').version;
  const Net = w.cell === 'lstm' ? brain.recurrent.LSTM : w.cell === 'gru' ? brain.recurrent.GRU : brain.recurrent.RNN;
  const L = w.layers ?? 1, T = w.seq ?? 1, B = w.batch;
  const net = new Net({ hiddenLayers: Array.from({ length: L }, () => w.hidden), learningRate: 0.01 });
  // `vocab` distinct characters (printable ASCII from '!'), every one present so the vocabulary has that size.
  const alphabet = Array.from({ length: w.vocab }, (_, i) => String.fromCharCode(33 + i));
  let seed = 7;
  const rand = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296; };
  const windows = [alphabet.join('').slice(0, T).padEnd(T, alphabet[0])];
  while (windows.length < B) windows.push(Array.from({ length: T }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(''));
  // The vocabulary (DataFormatter) is built from every character; then the windows are encoded once.
  const data = net.setupData([alphabet.join(''), ...windows]).slice(1);
  net.verifyIsInitialized(data);
  let j = 0;
  const one = () => { net.trainPattern(data[j]); j = (j + 1) % data.length; };

  const reps = task.repetitions ?? 5, minS = task.min_seconds ?? 2, maxS = task.max_seconds ?? 120;
  const now = () => performance.now() / 1000;
  let t = now();
  one();
  const first = now() - t;
  // A first (warm-up) call as long as max_seconds is the figure on its own, counted as 1 call.
  const slow = first >= maxS;
  if (!slow && first < 10) one();  // a second warm-up unless one call already takes very long
  const times = slow ? [first] : [];
  const start = now();
  while (!slow) {
    const elapsed = now() - start;
    if (times.length >= reps && elapsed >= minS) break;
    if (times.length && elapsed >= maxS) break;
    t = now();
    one();
    times.push(now() - t);
  }
  const s = median(times);
  process.stdout.write(JSON.stringify({
    library: 'brain.js', version, threads: 1, tokens_per_s: T / s, s_per_step: s * B, s_per_sequence: s,
    repetitions: times.length, peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  }) + '\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`brain_bench: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}
