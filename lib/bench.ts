// The benchmark workloads (bench/workloads.json) measured for rnnkit on this machine: `rnnkit bench` and
// `npm run bench`. Timing happens here, never in tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { native } from './native';
import { SeededRandom } from './random';
import { layers } from './layers';
import { sequential, type Sequential } from './model';
import { optimizers } from './optimizers';

interface Workload {
  kind: 'train' | 'infer' | 'step';
  cell: 'lstm' | 'gru' | 'rnn_tanh';
  input?: 'one-hot';
  vocab?: number;
  input_size?: number;
  hidden: number;
  layers?: number;
  batch: number;
  seq?: number;
  head?: number;
  report: string[];
}

export interface BenchOptions {
  json: boolean;
  /** Scale every time/batch dimension down (a smoke run for CI). */
  tiny: boolean;
  only?: string;
  minSeconds: number;
  repetitions: number;
}

function workloadsFile(): string {
  const candidates = [path.join(__dirname, '..', 'bench', 'workloads.json')];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) throw new Error('bench/workloads.json is missing from this installation');
  return found;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Seconds per call: warm up twice, then the median of at least `reps` timed calls lasting at least minSeconds. */
async function time(fn: () => Promise<unknown> | unknown, reps: number, minSeconds: number): Promise<number> {
  await fn();
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < reps || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 10000) break;
  }
  return median(times);
}

function cellName(c: string): 'lstm' | 'gru' | 'rnn_tanh' {
  return c === 'lstm' || c === 'gru' ? c : 'rnn_tanh';
}

function makeModel(w: Workload, seed: number): Sequential {
  const cell = cellName(w.cell);
  const rec = cell === 'lstm' ? layers.lstm : cell === 'gru' ? layers.gru : layers.simpleRNN;
  const list = [rec({ units: w.hidden, numLayers: w.layers ?? 1, returnSequences: true })];
  if (w.head) list.push(layers.dense({ units: w.head }));
  return sequential({ ...(w.input === 'one-hot' ? { vocabSize: w.vocab } : { inputSize: w.input_size }), layers: list, seed });
}

/** FLOPs of one call as 2*M*N*K per GEMM (the same count for every library): forward, and backward when training. */
export function workloadFlops(w: Workload, T: number, B: number): number {
  const G = w.cell === 'lstm' ? 4 : w.cell === 'gru' ? 3 : 1;
  const H = w.hidden, L = w.layers ?? 1;
  const I0 = w.input === 'one-hot' ? 0 : w.input_size ?? 0;  // a one-hot input projection is a lookup
  let fwd = 0;
  for (let k = 0; k < L; k++) fwd += 2 * T * B * G * H * ((k === 0 ? I0 : H) + H);
  if (w.head) fwd += 2 * T * B * H * w.head;
  if (w.kind !== 'train') return fwd;
  let bwd = 0;
  for (let k = 0; k < L; k++) {
    const I = k === 0 ? I0 : H;
    bwd += 2 * T * B * G * H * (I + H);          // weight gradients
    bwd += 2 * T * B * G * H * (H + (k === 0 ? I0 : I));  // input and recurrent gradients
  }
  if (w.head) bwd += 2 * 2 * T * B * H * w.head;
  return fwd + bwd;
}

export async function measureWorkload(name: string, w: Workload, o: BenchOptions): Promise<Record<string, number>> {
  const B = o.tiny ? Math.min(w.batch, 4) : w.batch;
  const T = o.tiny ? Math.min(w.seq ?? 1, 8) : w.seq ?? 1;
  const hidden = o.tiny ? Math.min(w.hidden, 32) : w.hidden;
  const wl = { ...w, hidden, head: w.head ? (o.tiny ? Math.min(w.head, 16) : w.head) : w.head,
    input_size: w.input_size ? (o.tiny ? Math.min(w.input_size, 16) : w.input_size) : undefined };
  const model = makeModel(wl, 1);
  const rng = new SeededRandom(7);
  const features = wl.input === 'one-hot' ? 0 : wl.input_size ?? 0;
  const inputFor = (steps: number) => wl.input === 'one-hot'
    ? { data: Int32Array.from({ length: B * steps }, () => rng.int(wl.vocab ?? 1)), shape: [B, steps] }
    : { data: Float32Array.from({ length: B * steps * features }, () => rng.next() * 2 - 1), shape: [B, steps, features] };
  const figures: Record<string, number> = {};
  try {
    if (w.kind === 'train') {
      model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 1e-3 }), clipNorm: 5 });
      const x = inputFor(T);
      const y = { data: Int32Array.from({ length: B * T }, () => rng.int(wl.head ?? wl.hidden)), shape: [B, T] };
      const s = await time(() => model.trainOnBatch(x, y), o.repetitions, o.minSeconds);
      figures.tokens_per_s = (B * T) / s;
      figures.s_per_step = s;
      figures.gflops = workloadFlops(wl, T, B) / s / 1e9;
    } else if (w.kind === 'infer') {
      const x = inputFor(T);
      const s = await time(() => model.predict(x), o.repetitions, o.minSeconds);
      figures.tokens_per_s = (B * T) / s;
      figures.s_per_call = s;
      figures.gflops = workloadFlops(wl, T, B) / s / 1e9;
    } else {
      const stream = model.stream();
      const x = wl.input === 'one-hot' ? [rng.int(wl.vocab ?? 1)] : { data: Float32Array.from({ length: B * features }, () => rng.next()), shape: [B, features] };
      // Synchronous steps: the figure is the native step plus the crossing from JavaScript, nothing else.
      const s = await time(() => stream.stepSync(x), Math.max(o.repetitions, 200), o.minSeconds);
      figures.us_per_step = s * 1e6;
      stream.dispose();
    }
    figures.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  } finally {
    model.dispose();
  }
  return figures;
}

export async function runBenchmarks(argv: string[]): Promise<number> {
  const o: BenchOptions = {
    json: argv.includes('--json'),
    tiny: argv.includes('--tiny'),
    only: argv.find((a) => a.startsWith('--only='))?.slice(7),
    minSeconds: argv.includes('--tiny') ? 0 : 2,
    repetitions: argv.includes('--tiny') ? 2 : 5,
  };
  const file = JSON.parse(fs.readFileSync(workloadsFile(), 'utf8')) as { workloads: Record<string, Workload> };
  const results: Record<string, Record<string, number>> = {};
  for (const [name, w] of Object.entries(file.workloads)) {
    if (o.only && !name.includes(o.only)) continue;
    results[name] = await measureWorkload(name, w, o);
    if (!o.json) process.stderr.write(`${name}: ${Object.entries(results[name]).map(([k, v]) => `${k} ${+v.toPrecision(4)}`).join(', ')}\n`);
  }
  const info = native.backendInfo();
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', platform: `${process.platform}-${process.arch}`,
    node: process.version, gemm: info.gemm, threads: info.threads, tiny: o.tiny };
  if (o.json) process.stdout.write(JSON.stringify({ workloads: results, machine }, null, 2) + '\n');
  else {
    process.stdout.write(`machine: ${JSON.stringify(machine)}\n`);
    for (const [name, r] of Object.entries(results))
      process.stdout.write(`${name.padEnd(36)} ${Object.entries(r).map(([k, v]) => `${k}=${+v.toPrecision(4)}`).join('  ')}\n`);
  }
  return 0;
}
