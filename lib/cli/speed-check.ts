// `rnnkit bench`: a short check of how fast this machine runs rnnkit, for a user deciding on model sizes or threads.
// Three figures of a character model (2-layer LSTM of 256 units, 65 symbols, dense head): a training step, a batched
// inference call and one awaited stream step. No targets and no peers: those belong to the project's benchmark
// harness (`npm run bench` in a clone), which compares rnnkit with other libraries side by side.
import { native } from '../native';
import { layers } from '../layers';
import { sequential } from '../model';
import { optimizers } from '../optimizers';
import { SeededRandom } from '../random';

export interface SpeedCheckOptions {
  /** Small shapes and a few calls each: seconds in all (a smoke run). */
  tiny: boolean;
  /** Time each figure for at least this long. */
  seconds: number;
}

export interface SpeedFigure {
  what: string;
  /** Median seconds per call. */
  seconds: number;
  /** Tokens (characters) per second. */
  tokensPerSecond: number;
  calls: number;
}

/** Median seconds per call: two warm-up calls, then calls for at least `seconds` (and at least 3 of them). */
async function medianSeconds(fn: () => Promise<unknown>, seconds: number): Promise<[number, number]> {
  await fn();
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start) / 1000 < seconds) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return [times[times.length >> 1], times.length];
}

export async function speedCheck(o: SpeedCheckOptions): Promise<{ figures: SpeedFigure[]; gemm: string; threads: number; shape: string }> {
  const units = o.tiny ? 32 : 256, vocab = 65, batch = o.tiny ? 4 : 32, steps = o.tiny ? 8 : 64;
  const rng = new SeededRandom(1);
  const model = sequential({
    vocabSize: vocab,
    layers: [layers.lstm({ units, numLayers: 2, returnSequences: true }), layers.dense({ units: vocab })],
    seed: 1,
  });
  const figures: SpeedFigure[] = [];
  try {
    model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 1e-3 }), clipNorm: 5 });
    const ids = () => Int32Array.from({ length: batch * steps }, () => rng.int(vocab));
    const x = { data: ids(), shape: [batch, steps] };
    const y = { data: ids(), shape: [batch, steps] };
    const tokens = batch * steps;
    let [s, n] = await medianSeconds(() => model.trainOnBatch(x, y), o.seconds);
    figures.push({ what: `training step (batch ${batch} x ${steps} steps)`, seconds: s, tokensPerSecond: tokens / s, calls: n });
    [s, n] = await medianSeconds(() => model.predict(x), o.seconds);
    figures.push({ what: `inference (batch ${batch} x ${steps} steps)`, seconds: s, tokensPerSecond: tokens / s, calls: n });
    const stream = model.stream();
    try {
      [s, n] = await medianSeconds(() => stream.step([rng.int(vocab)]), o.seconds);
      figures.push({ what: 'one stream step (batch 1, awaited)', seconds: s, tokensPerSecond: 1 / s, calls: n });
    } finally {
      stream.dispose();
    }
  } finally {
    model.dispose();
  }
  const info = native.backendInfo();
  return { figures, gemm: info.gemm, threads: info.threads, shape: `2-layer LSTM of ${units} units, ${vocab} symbols, dense head` };
}

export function formatSpeedCheck(r: Awaited<ReturnType<typeof speedCheck>>): string {
  const lines = [`rnnkit on this machine: ${r.shape}; GEMM ${r.gemm}, ${r.threads} threads`];
  const width = Math.max(...r.figures.map((f) => f.what.length));
  for (const f of r.figures) {
    const time = f.seconds < 1e-3 ? `${(f.seconds * 1e6).toFixed(1)} us` : `${(f.seconds * 1e3).toFixed(2)} ms`;
    lines.push(`  ${f.what.padEnd(width)}  ${time.padStart(10)}  ${Math.round(f.tokensPerSecond).toLocaleString('en-US').padStart(10)} tokens/s`);
  }
  return lines.join('\n') + '\n';
}
