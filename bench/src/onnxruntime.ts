// ONNX Runtime as a peer, run in the same process as rnnkit on the model that rnnkit's toOnnx exports: the same
// intra-op threads, sequential execution, every graph optimization. Before any timing, the two must agree on the
// same input (relative difference, as `relativeDifference` defines it, at most AGREEMENT); then the harness times
// them alternately (timing.ts).
import * as path from 'node:path';
import * as fs from 'node:fs';
import type { Tensor, IntTensor } from '../../dist/index';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;
type OrtTensor = import('onnxruntime-node').Tensor;

/** The largest relative difference allowed between rnnkit's and ONNX Runtime's outputs before timing. */
export const AGREEMENT = 1e-5;

const ROOT = path.join(__dirname, '..', '..');

/** onnxruntime-node's version, or undefined when it is not installed. */
export function onnxRuntimeVersion(): string | undefined {
  try {
    const file = require.resolve('onnxruntime-node/package.json', { paths: [ROOT] });
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function loadOrt(): Ort {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(require.resolve('onnxruntime-node', { paths: [ROOT] })) as Ort;
}

/** max_i |a_i - b_i| / max_i |b_i|: the difference relative to the size of the reference output (element-wise
 *  ratios would divide float32 rounding by outputs that happen to be near zero). */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = d;  // NaN propagates as Infinity below
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return Number.isNaN(diff) ? Infinity : diff / Math.max(scale, 1e-30);
}

/** An ONNX Runtime session with `threads` intra-op threads. `spinning`: whether ORT's pool threads spin-wait for more
 *  work after each run. Each workload gives ORT the setting that is faster for ORT itself, measured here (2 threads):
 *  - whole sequences: off. ORT's own call is as fast without it (LSTM 512, batch 64, 100 steps: 136-137 ms against
 *    140), while with it the call timed right after an ORT run (rnnkit's, in the alternating rounds) lost 19% to the
 *    spinning threads (171-173 ms against 144-146 alone); off, the alternation costs neither side anything measurable.
 *  - batch-1 steps: on (its default). Off, its step of the 2-layer LSTM 256 took 104 us against 75 with it on: a step
 *    is too short to pay for waking a parked thread. */
export async function createSession(onnx: Uint8Array, threads: number, spinning: boolean): Promise<{ ort: Ort; session: Session }> {
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } },
  });
  return { ort, session };
}

function toOrt(ort: Ort, x: Tensor | IntTensor): OrtTensor {
  return x.data instanceof Int32Array ? new ort.Tensor('int32', x.data, x.shape) : new ort.Tensor('float32', x.data as Float32Array, x.shape);
}

/** A whole-sequence run: `model.predict(x)`'s counterpart. */
export function sequenceRunner(ort: Ort, session: Session, x: Tensor | IntTensor): () => Promise<Float32Array> {
  const feeds = { [session.inputNames[0]]: toOrt(ort, x) };
  const out = mainOutput(session);
  return async () => (await session.run(feeds))[out].data as Float32Array;
}

/** One step of a graph exported with `states: true`: the input `[batch, 1, features]`, every `<layer>_h0` / `_c0`
 *  fed from the previous call's `<layer>_hn` / `_cn` (zeros at first), as a server would carry the state. */
export function stepRunner(ort: Ort, session: Session, x: Tensor): () => Promise<Float32Array> {
  const [batch, features] = x.shape;
  const input = new ort.Tensor('float32', x.data as Float32Array, [batch, 1, features]);
  const stateInputs = session.inputNames.slice(1);
  const stateOutput = (name: string) => name.replace(/_h0$/, '_hn').replace(/_c0$/, '_cn');
  for (const name of stateInputs) {
    if (!session.outputNames.includes(stateOutput(name))) throw new Error(`the exported graph has no output for its state input ${name}`);
  }
  const feeds: Record<string, OrtTensor> = { [session.inputNames[0]]: input };
  const out = mainOutput(session);
  return async () => {
    if (stateInputs.some((n) => !feeds[n])) {
      // The first call: zero states of the shapes the graph declares ([layers * directions, batch, units]).
      const first = await session.run({ ...feeds, ...Object.fromEntries(stateInputs.map((n) => [n, zeroState(ort, session, n, batch)])) });
      for (const n of stateInputs) feeds[n] = first[stateOutput(n)];
      return first[out].data as Float32Array;
    }
    const r = await session.run(feeds);
    for (const n of stateInputs) feeds[n] = r[stateOutput(n)];
    return r[out].data as Float32Array;
  };
}

/** The graph's output (not one of the `<layer>_hn` / `_cn` state outputs that `states: true` adds). */
function mainOutput(session: Session): string {
  const name = session.outputNames.find((n) => !/_(hn|cn)$/.test(n));
  if (!name) throw new Error('the exported graph has no output besides its states');
  return name;
}

function zeroState(ort: Ort, session: Session, name: string, batch: number): OrtTensor {
  const meta = (session.inputMetadata as unknown as Array<{ name: string; shape?: Array<number | string> }>).find((m) => m.name === name);
  const dims = (meta?.shape ?? []).map((d) => (typeof d === 'number' ? d : batch));
  if (dims.length !== 3) throw new Error(`state input ${name}: unexpected shape ${JSON.stringify(meta?.shape)}`);
  return new ort.Tensor('float32', new Float32Array(dims[0] * dims[1] * dims[2]), dims);
}
