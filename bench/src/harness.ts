// The benchmark harness: the workloads of bench/workloads.json measured for rnnkit and, in the same run, for the peer
// libraries that are installed (ONNX Runtime in the same process as rnnkit; PyTorch CPU through python3, TF.js with
// its wasm and cpu backends, brain.js in their own), plus this machine's SGEMM roofline and arithmetic peak. `npm run bench`; developer
// tooling, not part of the npm package. Timing happens here, never in tests.
//
// Every rnnkit measurement runs in its own child process, one at a time: each rnnkit workload (so that a peak RSS is
// that workload's own and nothing else's heap lingers) with ONNX Runtime beside it for the inference and step
// workloads (alternating, after checking that both give the same outputs), the same workloads again with the GEMM
// the default rule did not pick (RNNKIT_BLAS=system where the built-in GEMM is the default and a system BLAS is
// installed, RNNKIT_BLAS=none where a system BLAS is the default), and each other peer library on each workload
// (bench/peers/*).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { backendInfo, layers, sequential, optimizers, SeededRandom, Seq2Seq, type Sequential } from '../../dist/index';
import { environmentBeforeLoad } from '../../dist/native';
import { timeAlternating, type Timed } from './timing';
import { AGREEMENT, createSession, onnxRuntimeVersion, relativeDifference, sequenceRunner, stepRunner } from './onnxruntime';

export interface Workload {
  kind: 'train' | 'infer' | 'step' | string;
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
  note?: string;
  /** A step workload whose headline figure is the awaited step (the call a server makes), not the synchronous one. */
  async?: boolean;
  // Encoder-decoder workloads (kinds train_seq2seq, decode_seq2seq).
  attention?: 'none' | 'bahdanau' | 'luong';
  src_vocab?: number;
  tgt_vocab?: number;
  embed?: number;
  src_len?: number;
  tgt_len?: number;
  max_len?: number;
  beam?: number;
}

const SEQ2SEQ_KINDS = ['train_seq2seq', 'decode_seq2seq'];
const isSeq2Seq = (w: Workload): boolean => SEQ2SEQ_KINDS.includes(w.kind);

export interface BenchOptions {
  json: boolean;
  /** Scale every dimension down (a smoke run for CI): no minimum time, peers skipped unless asked for. */
  tiny: boolean;
  only?: string;
  minSeconds: number;
  repetitions: number;
}

type Figures = Record<string, number>;

const ROOT = path.join(__dirname, '..', '..');
/** The workload kinds measureWorkload knows. */
const MEASURED_KINDS = ['train', 'infer', 'step', 'train_seq2seq', 'decode_seq2seq'];
const PEER_NAMES = ['onnxruntime', 'pytorch', 'tfjs_wasm', 'tfjs_cpu', 'brain'] as const;
type PeerName = (typeof PEER_NAMES)[number];
const DEFAULT_PEERS: readonly PeerName[] = ['onnxruntime', 'pytorch', 'tfjs_wasm', 'brain'];
const PEER_LABELS: Record<string, string> = {
  rnnkit: 'rnnkit', rnnkit_builtin: 'rnnkit (built-in GEMM)', rnnkit_blas: 'rnnkit (system BLAS)', onnxruntime: 'ONNX Runtime', pytorch: 'PyTorch CPU', tfjs_wasm: 'TF.js wasm',
  tfjs_cpu: 'TF.js cpu', brain: 'brain.js',
};

function workloadsFile(): string {
  const candidates = [path.join(ROOT, 'bench', 'workloads.json')];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) throw new Error('bench/workloads.json is missing from this installation');
  return found;
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

/** The shapes the smoke run (--tiny) uses: every dimension scaled down; the same for rnnkit and for the peers. */
export function scaleWorkload(w: Workload, tiny: boolean): Workload {
  if (!tiny) return { ...w };
  return {
    ...w,
    batch: Math.min(w.batch, 4),
    seq: w.seq === undefined ? undefined : Math.min(w.seq, 8),
    hidden: Math.min(w.hidden, 32),
    head: w.head ? Math.min(w.head, 16) : w.head,
    input_size: w.input_size ? Math.min(w.input_size, 16) : w.input_size,
    ...(isSeq2Seq(w) ? {
      embed: Math.min(w.embed ?? 8, 8), src_vocab: Math.min(w.src_vocab ?? 12, 12), tgt_vocab: Math.min(w.tgt_vocab ?? 12, 12),
      src_len: Math.min(w.src_len ?? 6, 6), tgt_len: w.tgt_len === undefined ? undefined : Math.min(w.tgt_len, 6),
      max_len: w.max_len === undefined ? undefined : Math.min(w.max_len, 6),
    } : {}),
  };
}

/** FLOPs of an encoder-decoder call, counted as for the other workloads (2*M*N*K per GEMM; training 3x the forward):
 *  the encoder's input and recurrent products over S steps of B rows; the decoder's over T steps of R rows (R = B
 *  times the beam when decoding), with Bahdanau's E+H input, its query product (H x H) per step and the keys'
 *  projection (H x H) once, the scores and contexts (2 x S x H per row and step), Luong's Wc (2H x H); the logits. */
export function seq2seqFlops(w: Workload): number {
  const G = w.cell === 'lstm' ? 4 : w.cell === 'gru' ? 3 : 1;
  const H = w.hidden, L = w.layers ?? 1, E = w.embed ?? 0, B = w.batch, S = w.src_len ?? 1, V = w.tgt_vocab ?? 0;
  const decoding = w.kind === 'decode_seq2seq';
  const T = (decoding ? w.max_len : w.tgt_len) ?? 1;
  const R = decoding ? B * (w.beam ?? 1) : B;
  const att = w.attention ?? 'none';
  let enc = 0;
  let dec = 0;
  for (let k = 0; k < L; k++) {
    enc += 2 * S * B * G * H * ((k === 0 ? E : H) + H);
    dec += 2 * T * R * G * H * ((k === 0 ? E + (att === 'bahdanau' ? H : 0) : H) + H);
  }
  if (att !== 'none') dec += 2 * 2 * T * R * S * H;
  if (att === 'bahdanau') dec += 2 * T * R * H * H + 2 * S * B * H * H;
  if (att === 'luong') dec += 2 * T * R * 2 * H * H;
  dec += 2 * T * R * H * V;
  return decoding ? enc + dec : 3 * (enc + dec);
}

/** FLOPs of one call (a training step, an inference call or one stream step), counted as 2*M*N*K per GEMM. Per layer
 *  with G gates (LSTM 4, GRU 3, RNN 1), H units and I inputs, over T steps of B rows:
 *    forward  = input projection 2*T*B*G*H*I (none for a one-hot first layer read as a lookup, as rnnkit reads it)
 *             + recurrent GEMM 2*T*B*G*H*H, and the head 2*T*B*H*heads;
 *    backward = twice the forward GEMMs: for each forward product one weight-gradient GEMM (dW = dGates^T x X) and one
 *               input-gradient GEMM (dX = dGates x W) of the same size. A one-hot first layer has neither (its
 *               gradient is a scatter-add into the rows of the embedded weights), which the zero forward term
 *               already accounts for. A dense first layer's dX is counted: the engines compute it.
 *  `oneHotMultiplied`: the contender multiplies a one-hot matrix by the first layer's input weights instead of looking
 *  the columns up (ONNX Runtime on the graph toOnnx exports, OneHot then LSTM; PyTorch and TF.js fed float one-hot
 *  tensors): its forward adds 2*T*B*G*H*vocab and its training step a weight gradient of that size (no dX: the input
 *  needs no gradient). Element-wise work (activations, loss, optimizer) is not counted. */
export function workloadFlops(w: Workload, T: number, B: number, oneHotMultiplied = false): number {
  if (isSeq2Seq(w)) return seq2seqFlops(w);
  const G = w.cell === 'lstm' ? 4 : w.cell === 'gru' ? 3 : 1;
  const H = w.hidden, L = w.layers ?? 1;
  const I0 = w.input === 'one-hot' ? 0 : w.input_size ?? 0;
  let fwd = 0;
  for (let k = 0; k < L; k++) fwd += 2 * T * B * G * H * ((k === 0 ? I0 : H) + H);
  if (w.head) fwd += 2 * T * B * H * w.head;
  const oneHot = oneHotMultiplied && w.input === 'one-hot' ? 2 * T * B * G * H * (w.vocab ?? 0) : 0;
  return w.kind === 'train' ? 3 * fwd + 2 * oneHot : fwd + oneHot;
}

/** Whether a contender multiplies one-hot inputs as a matrix (see workloadFlops): every peer does; rnnkit (either
 *  GEMM) looks the weight columns up. */
const MULTIPLIES_ONE_HOT: Record<string, boolean> = { rnnkit: false, rnnkit_builtin: false, rnnkit_blas: false, onnxruntime: true, pytorch: true, tfjs_wasm: true, tfjs_cpu: true, brain: true };

/** The GEMM shapes (M, N, K; op(B) = B^T as a layer's weights are used) a workload's forward pass runs. */
function workloadGemmShapes(w: Workload): Array<{ m: number; n: number; k: number; what: string }> {
  if (isSeq2Seq(w)) return [];  // many small products of several shapes: no single GEMM figure speaks for them
  const G = w.cell === 'lstm' ? 4 : w.cell === 'gru' ? 3 : 1;
  const H = w.hidden, L = w.layers ?? 1, B = w.batch, T = w.seq ?? 1;
  const out: Array<{ m: number; n: number; k: number; what: string }> = [];
  for (let k = 0; k < L; k++) {
    const I = k === 0 ? (w.input === 'one-hot' ? 0 : w.input_size ?? 0) : H;
    if (I > 0) out.push({ m: T * B, n: G * H, k: I, what: `input projection, layer ${k + 1}` });
    out.push({ m: B, n: G * H, k: H, what: `recurrent, layer ${k + 1}${T > 1 ? ', per step' : ''}` });
  }
  if (w.head) out.push({ m: T * B, n: w.head, k: H, what: 'head' });
  return out;
}

/** What one child measures: rnnkit's figures, and ONNX Runtime's beside them (or why not) when asked. */
export interface Measured { figures: Figures; onnxruntime?: Figures | { error: string } }

/** The largest difference allowed between rnnkit's int8 and float32 outputs (relative to the largest output), as
 *  test/int8.test.ts states it. */
const INT8_TOLERANCE = 0.03;

/** Measure one (already scaled) workload for rnnkit in this process, and with `withOrt` ONNX Runtime on the same
 *  model and input (inference and step workloads), alternating with rnnkit. */
export async function measureWorkload(w: Workload, o: BenchOptions, withOrt: boolean): Promise<Measured> {
  if (isSeq2Seq(w)) return measureSeq2Seq(w, o);
  const B = w.batch;
  const T = w.seq ?? 1;
  const model = makeModel(w, 1);
  const rng = new SeededRandom(7);
  const features = w.input === 'one-hot' ? 0 : w.input_size ?? 0;
  const inputFor = (steps: number) => w.input === 'one-hot'
    ? { data: Int32Array.from({ length: B * steps }, () => rng.int(w.vocab ?? 1)), shape: [B, steps] }
    : { data: Float32Array.from({ length: B * steps * features }, () => rng.next() * 2 - 1), shape: [B, steps, features] };
  const figures: Figures = {};
  let ort: Measured['onnxruntime'];
  const threads = backendInfo().threads;
  try {
    if (w.kind === 'train') {
      model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 1e-3 }), clipNorm: 5 });
      const x = inputFor(T);
      const y = { data: Int32Array.from({ length: B * T }, () => rng.int(w.head ?? w.hidden)), shape: [B, T] };
      const [t] = await timeAlternating([() => model.trainOnBatch(x, y)], o.repetitions, o.minSeconds);
      figures.tokens_per_s = (B * T) / t.seconds;
      figures.s_per_step = t.seconds;
      figures.repetitions = t.calls;
    } else if (w.kind === 'infer') {
      const x = inputFor(T);
      // The same model with int8 inference (same seed, same weights), timed in the same rounds.
      const quantized = makeModel(w, 1).setInferencePrecision('int8');
      const int8Rel = relativeDifference((await quantized.predict(x)).data, (await model.predict(x)).data);
      if (!(int8Rel <= INT8_TOLERANCE)) throw new Error(`int8 outputs differ from float32 by ${int8Rel.toExponential(2)} relative (limit ${INT8_TOLERANCE})`);
      figures.int8_agreement = int8Rel;
      const contenders: Timed[] = [() => model.predict(x), () => quantized.predict(x)];
      if (withOrt) {
        try {
          const { ort: lib, session } = await createSession(model.toOnnx(), threads, false);
          const run = sequenceRunner(lib, session, x);
          const rel = relativeDifference(await run(), (await model.predict(x)).data);
          if (!(rel <= AGREEMENT)) throw new Error(`outputs differ from rnnkit's by ${rel.toExponential(2)} relative (limit ${AGREEMENT})`);
          ort = { agreement: rel };
          contenders.push(run);
        } catch (e) {
          ort = { error: (e as Error).message };
        }
      }
      const [mine, int8, theirs] = await timeAlternating(contenders, o.repetitions, o.minSeconds);
      quantized.dispose();
      figures.tokens_per_s = (B * T) / mine.seconds;
      figures.s_per_call = mine.seconds;
      figures.repetitions = mine.calls;
      figures.int8_tokens_per_s = (B * T) / int8.seconds;
      if (theirs && ort && !('error' in ort)) Object.assign(ort, { tokens_per_s: (B * T) / theirs.seconds, s_per_call: theirs.seconds, repetitions: theirs.calls });
    } else {
      // A batch-1 (or batch-B) step of a stream whose state stays native: the synchronous call and the awaited one
      // (the call a server makes), both always measured; the workload's `async` says which one is its headline.
      const stream = model.stream();
      const x = { data: Float32Array.from({ length: B * features }, () => rng.next()), shape: [B, features] };
      const quantized = makeModel(w, 1).setInferencePrecision('int8');
      const qstream = quantized.stream();
      const plain = model.stream();
      const int8Rel = relativeDifference(qstream.stepSync(x).data, plain.stepSync(x).data);
      plain.dispose();
      qstream.reset();
      if (!(int8Rel <= INT8_TOLERANCE)) throw new Error(`int8 step outputs differ from float32 by ${int8Rel.toExponential(2)} relative (limit ${INT8_TOLERANCE})`);
      figures.int8_agreement = int8Rel;
      const contenders: Timed[] = [() => stream.stepSync(x), () => stream.step(x), () => qstream.stepSync(x), () => qstream.step(x)];
      if (withOrt) {
        try {
          const { ort: lib, session } = await createSession(model.toOnnx({ states: true }), threads, true);
          const run = stepRunner(lib, session, x);
          // Three steps from the zero state in both, each output compared.
          const check = model.stream();
          let rel = 0;
          for (let i = 0; i < 3; i++) rel = Math.max(rel, relativeDifference(await run(), check.stepSync(x).data));
          check.dispose();
          if (!(rel <= AGREEMENT)) throw new Error(`step outputs differ from rnnkit's by ${rel.toExponential(2)} relative (limit ${AGREEMENT})`);
          ort = { agreement: rel };
          contenders.push(run);
        } catch (e) {
          ort = { error: (e as Error).message };
        }
      }
      const [sync, awaited, int8Sync, int8Awaited, theirs] = await timeAlternating(contenders, Math.max(o.repetitions, 200), o.minSeconds);
      qstream.dispose();
      quantized.dispose();
      figures.int8_us_per_step_sync = int8Sync.seconds * 1e6;
      figures.int8_us_per_step_awaited = int8Awaited.seconds * 1e6;
      const head = w.async ? awaited : sync;
      figures.us_per_step = head.seconds * 1e6;
      figures.us_per_step_sync = sync.seconds * 1e6;
      figures.us_per_step_awaited = awaited.seconds * 1e6;
      figures.tokens_per_s = B / head.seconds;
      figures.repetitions = head.calls;
      if (theirs && ort && !('error' in ort)) {
        // ONNX Runtime has no synchronous run in Node: its one figure is the awaited session.run.
        Object.assign(ort, { us_per_step: theirs.seconds * 1e6, us_per_step_awaited: theirs.seconds * 1e6, tokens_per_s: B / theirs.seconds, repetitions: theirs.calls });
      }
      stream.dispose();
    }
    figures.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  } finally {
    model.dispose();
  }
  return { figures, ...(ort ? { onnxruntime: ort } : {}) };
}

/** An encoder-decoder workload: a training step by teacher forcing (cross-entropy over every target step, clip 5,
 *  Adam), or a decode from token 0 to max_len without an end token (greedy, or beam search keeping `beam`
 *  hypotheses). Tokens are target tokens (decoding: those of the best hypothesis of every row). */
async function measureSeq2Seq(w: Workload, o: BenchOptions): Promise<Measured> {
  const B = w.batch, S = w.src_len ?? 1;
  const model = new Seq2Seq({
    cell: w.cell === 'lstm' ? 'lstm' : 'gru', attention: w.attention ?? 'bahdanau', srcVocab: w.src_vocab ?? 1,
    tgtVocab: w.tgt_vocab ?? 1, embedSize: w.embed ?? 1, hiddenSize: w.hidden, numLayers: w.layers ?? 1, seed: 1,
  });
  const rng = new SeededRandom(7);
  const ids = (n: number, v: number) => Int32Array.from({ length: n }, () => rng.int(v));
  const figures: Figures = {};
  try {
    const source = { data: ids(B * S, w.src_vocab ?? 1), shape: [B, S] };
    if (w.kind === 'train_seq2seq') {
      const T = w.tgt_len ?? 1;
      model.compile({ optimizer: { type: 'adam', lr: 1e-3 }, clipNorm: 5 });
      const batch = { source, decoderInput: { data: ids(B * T, w.tgt_vocab ?? 1), shape: [B, T] }, targets: ids(B * T, w.tgt_vocab ?? 1) };
      const [t] = await timeAlternating([() => model.trainOnBatch(batch)], o.repetitions, o.minSeconds);
      figures.tokens_per_s = (B * T) / t.seconds;
      figures.s_per_step = t.seconds;
      figures.repetitions = t.calls;
    } else {
      const M = w.max_len ?? 1;
      const options = { startToken: 0, maxLength: M, beamWidth: w.beam ?? 1, attention: false };
      const [t] = await timeAlternating([() => model.decode(source, options)], o.repetitions, o.minSeconds);
      figures.tokens_per_s = (B * M) / t.seconds;
      figures.s_per_call = t.seconds;
      figures.repetitions = t.calls;
    }
    figures.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  } finally {
    model.dispose();
  }
  return { figures };
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes

interface ChildResult { ok: boolean; figures?: Figures; error?: string; info?: Record<string, unknown> }

/** Run a command, collect its stdout; the last stdout line that is a JSON object is the result. */
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutS: number): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    let timedOut = false;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; if (err.length > 1 << 16) err = err.slice(-(1 << 15)); });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutS * 1000);
    child.on('error', (e) => { clearTimeout(timer); resolve({ ok: false, error: e.message }); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ ok: false, error: `timeout after ${timeoutS} s` });
      const line = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).pop();
      let parsed: Record<string, unknown> | undefined;
      try { parsed = line ? JSON.parse(line) : undefined; } catch { parsed = undefined; }
      if (code !== 0 || !parsed) {
        const why = err.trim().split('\n').filter(Boolean).slice(-3).join(' | ') || `exit status ${code}`;
        return resolve({ ok: false, error: why.slice(0, 400) });
      }
      if (typeof parsed.unsupported === 'string') return resolve({ ok: false, error: `unsupported: ${parsed.unsupported}` });
      const figures: Figures = {};
      const info: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(parsed)) {
        if (typeof v === 'number' && Number.isFinite(v)) figures[k] = v;
        else info[k] = v;
      }
      resolve({ ok: true, figures, info });
    });
  });
}

interface ChildTask { name: string; workload: Workload; minSeconds: number; repetitions: number; onnxruntime: boolean }

/** The hidden `--child '<task>'` entry: one rnnkit workload, its figures as one JSON line. */
async function childMain(taskJson: string): Promise<number> {
  const task = JSON.parse(taskJson) as ChildTask;
  const m = await measureWorkload(task.workload, { json: true, tiny: false, minSeconds: task.minSeconds, repetitions: task.repetitions }, task.onnxruntime);
  const info = backendInfo();
  process.stdout.write(JSON.stringify({ ...m.figures, gemm: info.gemm, threads: info.threads, ...(m.onnxruntime ? { onnxruntime: m.onnxruntime } : {}) }) + '\n');
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Peers

interface PeerStatus { available: boolean; version?: string; detail: string; command?: string[] }

function packageVersion(name: string): string | undefined {
  try {
    const file = require.resolve(`${name}/package.json`, { paths: [ROOT] });
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function detectPeers(threads: number): Record<PeerName, PeerStatus> {
  const script = (f: string) => path.join(ROOT, 'bench', 'peers', f);
  const haveScripts = fs.existsSync(script('tfjs_bench.js'));
  const missing = { available: false, detail: 'bench/peers/ is not part of this installation (run from a clone)' };
  const result = {} as Record<PeerName, PeerStatus>;

  // ONNX Runtime runs inside each rnnkit child (inference and step workloads), not as a command of its own.
  const ortVersion = onnxRuntimeVersion();
  result.onnxruntime = ortVersion
    ? { available: true, version: ortVersion, detail: `onnxruntime-node, CPU, intraOpNumThreads ${threads}, sequential, spin-waiting off for whole sequences and on for steps (each ORT's faster setting), in rnnkit's process on the model toOnnx exports` }
    : { available: false, detail: 'not installed (npm install -D onnxruntime-node)' };

  // PyTorch: the first python that imports torch (RNNKIT_BENCH_PYTHON, the system python, python3 on PATH).
  const pythons = [process.env.RNNKIT_BENCH_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  const tried: string[] = [];
  result.pytorch = { available: false, detail: '' };
  for (const py of [...new Set(pythons)]) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120000 });
    if (r.status === 0 && r.stdout.trim()) {
      result.pytorch = { available: haveScripts, version: r.stdout.trim().split('\n').pop(),
        detail: haveScripts ? `${py}, torch.set_num_threads(${threads})` : missing.detail, command: [py, script('pytorch_bench.py')] };
      break;
    }
    tried.push(`${py}: ${r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() || `exit ${r.status}`}`);
  }
  if (!result.pytorch.version) result.pytorch.detail = `no python with torch (${tried.join('; ')})`;

  const tfjs = packageVersion('@tensorflow/tfjs');
  const wasm = packageVersion('@tensorflow/tfjs-backend-wasm');
  const node = process.execPath;
  result.tfjs_wasm = !tfjs || !wasm
    ? { available: false, detail: `not installed (npm install -D @tensorflow/tfjs @tensorflow/tfjs-backend-wasm)` }
    : haveScripts ? { available: true, version: wasm, detail: 'tfjs-backend-wasm (SIMD, single-threaded under Node)', command: [node, script('tfjs_bench.js')] } : missing;
  result.tfjs_cpu = !tfjs
    ? { available: false, detail: 'not installed (npm install -D @tensorflow/tfjs)' }
    : haveScripts ? { available: true, version: tfjs, detail: "tfjs 'cpu' backend (plain JavaScript)", command: [node, script('tfjs_bench.js')] } : missing;
  const brain = packageVersion('brain.js');
  result.brain = !brain
    ? { available: false, detail: 'not installed (npm install -D brain.js@1.6.1)' }
    : haveScripts ? { available: true, version: brain, detail: 'brain.recurrent API, one sequence at a time', command: [node, script('brain_bench.js')] } : missing;
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM roofline

interface GemmFigure { m: number; n: number; k: number; trans_b: boolean; gflops: number; gemm: string; builtin_gflops?: number; blas_gflops?: number; used_by?: string[] }

type BenchReadFn = (bytes: number, reps: number) => { bestSeconds: number; medianSeconds: number; gbPerSecond: number; threads: number };

type BenchGemmFn = (M: number, N: number, K: number, reps: number, o?: { transB?: boolean; builtin?: boolean }) =>
  { bestSeconds: number; medianSeconds: number; gflops: number; gemm: string; threads: number };

type BenchPeakFn = (type: 'float32' | 'int8', iterations: number, reps: number) =>
  { bestSeconds: number; medianSeconds: number; perSecond: number; unit: string; kernel: string; threads: number };

interface BenchAddon { benchGemm: BenchGemmFn; benchRead: BenchReadFn; benchPeak?: BenchPeakFn }

/** The harness's own native module (bench/native: the GEMM roofline, the read floor, the arithmetic peak), or
 *  undefined when it has not been built (bench/run.js builds it). */
function loadBenchAddon(): BenchAddon | undefined {
  const file = path.join(ROOT, 'bench', 'native', 'build', 'Release', 'rnnkit_bench.node');
  if (!fs.existsSync(file)) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(file) as BenchAddon;
}

/** The machine's arithmetic peak with the pool's threads: the best rate of many short calls (about 10 ms each, over
 *  `seconds`) of register-only multiply-adds (bench/native/peak_bench.cc). The best, not the median: a call that
 *  shared a core with another process measures the neighbour, not the machine. */
function measurePeak(fn: BenchPeakFn, type: 'float32' | 'int8', seconds: number): { rate: number; kernel: string } | undefined {
  const probeIterations = 100_000;
  const probe = fn(type, probeIterations, 3);
  if (!probe.kernel) return undefined;
  const iterations = Math.max(1000, Math.round(probeIterations * 0.01 / Math.max(probe.bestSeconds, 1e-6)));
  const r = fn(type, iterations, Math.max(3, Math.round(seconds / 0.01)));
  return { rate: Math.max(r.perSecond, probe.perSecond), kernel: r.kernel };
}

interface Peak { threads: number; float32_gflops?: number; float32_kernel?: string; int8_gmacs?: number; int8_kernel?: string; measured?: string }

/** The peak measured now, or the better of it and `before` (one figure of the machine, measured at the start and
 *  at the end of a run: neighbours that slowed one measurement rarely slow both). */
function peakNow(fn: BenchPeakFn, threads: number, seconds: number, before?: Peak): Peak {
  const fp = measurePeak(fn, 'float32', seconds);
  const i8 = measurePeak(fn, 'int8', seconds);
  const best = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
  return {
    threads,
    float32_gflops: best(fp?.rate, before?.float32_gflops), float32_kernel: fp?.kernel,
    int8_gmacs: best(i8?.rate, before?.int8_gmacs), int8_kernel: i8 ? i8.kernel : 'none (no int8 vector route on this CPU)',
    measured: before ? 'best of the start and the end of the run' : 'at the start of the run',
  };
}

/** Each figure set's fraction of the arithmetic peak (peak_fraction: GFLOP/s over the float32 peak;
 *  int8_peak_fraction: rnnkit's int8 MAC/s over the int8 peak), and for the inference workloads the fraction that
 *  1.3x ONNX Runtime's speed would need, in rnnkit's own FLOPs (peak_fraction_for_1_3x_onnxruntime). */
function addPeakFractions(results: Record<string, Record<string, unknown>>, defs: Record<string, Workload>, peak: Peak): void {
  const add = (f: Record<string, unknown> | undefined) => {
    if (!f) return;
    if (typeof f.gflops === 'number' && peak.float32_gflops) f.peak_fraction = f.gflops / peak.float32_gflops;
    if (typeof f.int8_gmacs === 'number' && peak.int8_gmacs) f.int8_peak_fraction = f.int8_gmacs / peak.int8_gmacs;
  };
  for (const [name, r] of Object.entries(results)) {
    add(r);
    add(r.builtin as Record<string, unknown> | undefined);
    add(r.blas as Record<string, unknown> | undefined);
    const peers = (r.peers ?? {}) as Record<string, Record<string, unknown>>;
    for (const p of Object.values(peers)) add(p);
    const w = defs[name];
    const ortSeconds = (peers.onnxruntime as Figures | undefined)?.s_per_call;
    if (w?.kind === 'infer' && peak.float32_gflops && ortSeconds !== undefined && ortSeconds > 0)
      r.peak_fraction_for_1_3x_onnxruntime = (1.3 * workloadFlops(w, w.seq ?? 1, w.batch)) / ortSeconds / 1e9 / peak.float32_gflops;
  }
}

/** Best GFLOP/s of C = A x op(B) over at least `seconds` of calls. */
function gemmBest(fn: BenchGemmFn, m: number, n: number, k: number, transB: boolean, builtin: boolean, seconds: number): number {
  const probe = fn(m, n, k, 1, { transB, builtin });
  const reps = Math.max(3, Math.min(2000, Math.ceil(seconds / Math.max(probe.bestSeconds, 1e-7))));
  return Math.max(probe.gflops, fn(m, n, k, reps, { transB, builtin }).gflops);
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

function fmt(v: number | undefined, digits = 3): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return (+v.toPrecision(digits)).toString();
}

/** The headline figure of a workload: tokens/s, or microseconds per step. */
function headline(w: Workload, f: Figures | undefined): string {
  if (!f) return '-';
  return w.kind === 'step' ? `${fmt(f.us_per_step)} us` : `${fmt(f.tokens_per_s)}`;
}

/** rnnkit's speed over another's, from the headline figure (> 1: rnnkit is faster). */
function speedRatio(w: Workload, ours: Figures, theirs: Figures): number | undefined {
  const r = w.kind === 'step' ? theirs.us_per_step / ours.us_per_step : ours.tokens_per_s / theirs.tokens_per_s;
  return Number.isFinite(r) && r > 0 ? r : undefined;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);
}

interface Report {
  workloads: Record<string, Record<string, unknown>>;
  machine: Record<string, unknown>;
  peers: Record<string, unknown>;
  targets: Array<{ check: string; value: number | null; pass: boolean | null }>;
}

/** Grouped bars of tokens per second (steps per second for the step workload) per workload, log scale. */
export function benchChartSvg(report: Report, defs: Record<string, Workload>): string {
  const names = Object.keys(report.workloads).filter((n) => defs[n] && !report.workloads[n].not_measured);
  const series = ['rnnkit', 'rnnkit_builtin', 'rnnkit_blas', ...PEER_NAMES];
  const colors: Record<string, string> = { rnnkit: '#d62728', rnnkit_builtin: '#ff9896', rnnkit_blas: '#ff9896', pytorch: '#1f77b4', tfjs_wasm: '#2ca02c', tfjs_cpu: '#98df8a', brain: '#9467bd' };
  const value = (name: string, s: string): number | undefined => {
    const r = report.workloads[name] as Record<string, unknown>;
    const f = (s === 'rnnkit' ? r : s === 'rnnkit_builtin' ? r.builtin : s === 'rnnkit_blas' ? r.blas : (r.peers as Record<string, unknown> | undefined)?.[s]) as Figures | undefined;
    const v = f?.tokens_per_s;
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
  };
  const used = series.filter((s) => names.some((n) => value(n, s) !== undefined));
  const all = names.flatMap((n) => used.map((s) => value(n, s))).filter((v): v is number => v !== undefined);
  const lo = Math.floor(Math.log10(Math.max(1e-3, Math.min(...all, 1e9) / 3)));  // room under the shortest bar
  const hi = Math.ceil(Math.log10(Math.max(...all, 10) * 4));  // headroom for the value labels
  const W = Math.max(760, 120 + names.length * (used.length * 18 + 30)), Ht = 470, left = 70, right = 20, top = 60, bottom = 100;
  const pw = W - left - right, ph = Ht - top - bottom;
  const sy = (v: number) => top + (1 - (Math.log10(v) - lo) / Math.max(1, hi - lo)) * ph;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Ht}" viewBox="0 0 ${W} ${Ht}" font-family="sans-serif" font-size="11">`);
  o.push(`<rect width="${W}" height="${Ht}" fill="white"/>`);
  const m = report.machine as Record<string, unknown>;
  o.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">Tokens per second (log scale; higher is better)</text>`);
  o.push(`<text x="${W / 2}" y="38" text-anchor="middle" fill="#555">${escapeXml(`${m.cpu}, ${m.cpus} cores, ${m.threads} threads; ${String(m.date ?? '').slice(0, 10)}${m.tiny ? '; TINY shapes' : ''}`)}</text>`);
  for (let e = lo; e <= hi; e++) {
    const y = sy(10 ** e).toFixed(1);
    o.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#ddd"/>`);
    o.push(`<text x="${left - 6}" y="${(+y + 4).toFixed(1)}" text-anchor="end">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  const gw = pw / names.length, bw = Math.min(22, (gw - 16) / Math.max(1, used.length));
  names.forEach((name, i) => {
    const gx = left + i * gw + (gw - bw * used.length) / 2;
    used.forEach((s, j) => {
      const v = value(name, s);
      if (v === undefined) return;
      const y = sy(Math.max(v, 10 ** lo));
      o.push(`<rect x="${(gx + j * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(top + ph - y).toFixed(1)}" fill="${colors[s]}"><title>${escapeXml(`${PEER_LABELS[s]}: ${fmt(v)}`)}</title></rect>`);
      o.push(`<text x="${(gx + j * bw + bw / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="8" transform="rotate(-90 ${(gx + j * bw + bw / 2 - 1).toFixed(1)} ${(y - 3).toFixed(1)})" dx="14" dy="3">${escapeXml(fmt(v, 3))}</text>`);
    });
    // Two lines under the group: kind and model, then the shape ("train charrnn" / "lstm2x256 b32 t64").
    const parts = name.split('_');
    const lx = (left + i * gw + gw / 2).toFixed(1);
    o.push(`<text x="${lx}" y="${top + ph + 16}" text-anchor="middle">${escapeXml(parts.slice(0, 2).join(' '))}</text>`);
    o.push(`<text x="${lx}" y="${top + ph + 30}" text-anchor="middle">${escapeXml(parts.slice(2).join(' '))}</text>`);
    const w = defs[name];
    if (w) o.push(`<text x="${lx}" y="${top + ph + 44}" text-anchor="middle" fill="#777">${escapeXml(w.kind === 'step' ? 'steps/s' : 'tokens/s')}</text>`);
  });
  o.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  used.forEach((s, j) => {
    const lx = left + 8 + (j % 3) * 190, ly = Ht - 34 + Math.floor(j / 3) * 15;
    o.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${colors[s]}"/>`);
    o.push(`<text x="${lx + 16}" y="${ly}">${escapeXml(PEER_LABELS[s])}</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

function tableRows(report: Report, defs: Record<string, Workload>, peers: string[], markdown: boolean): string[] {
  const any = (k: string) => Object.values(report.workloads).some((r) => typeof r[k] === 'number');
  const head = ['workload', 'rnnkit', 'GFLOP/s', '% roofline', ...(any('peak_fraction') ? ['% peak'] : []), ...(any('int8_peak_fraction') ? ['int8 % int8 peak'] : []),
    ...(any('builtin_vs_blas') ? ['built-in/BLAS'] : []),
    ...peers.map((p) => PEER_LABELS[p])];
  const pct = (v: unknown) => (typeof v === 'number' ? `${fmt(100 * v, 2)}%` : '-');
  const rows: string[][] = [];
  for (const [name, r] of Object.entries(report.workloads)) {
    const w = defs[name];
    if (!w || r.not_measured) {
      rows.push([name, 'not measured', ...head.slice(2).map(() => '-')]);
      continue;
    }
    const f = r as unknown as Figures & { builtin?: Figures; builtin_vs_blas?: number; peers?: Record<string, Figures & { error?: string }>; vs?: Record<string, number> };
    const row = [name, headline(w, f), fmt(f.gflops), pct(f.roofline_fraction)];
    if (head.includes('% peak')) row.push(pct(f.peak_fraction));
    if (head.includes('int8 % int8 peak')) row.push(pct(f.int8_peak_fraction));
    if (head.includes('built-in/BLAS')) row.push(f.builtin_vs_blas !== undefined ? f.builtin_vs_blas.toFixed(2) : '-');
    for (const p of peers) {
      const pf = f.peers?.[p];
      if (!pf) row.push('-');
      else if (pf.error) row.push(String(pf.error).startsWith('unsupported') ? 'n/a' : String(pf.error).startsWith('timeout') ? 'timeout' : 'failed');
      else row.push(`${headline(w, pf)}${pf.repetitions !== undefined && pf.repetitions < 5 ? '*' : ''} (${f.vs?.[p] !== undefined ? `${fmt(f.vs[p], 3)}x` : '-'}` +
        `${pf.peak_fraction !== undefined ? `; ${pct(pf.peak_fraction)} peak` : ''})`);
    }
    rows.push(row);
  }
  if (markdown) {
    return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)];
}

export function formatReport(report: Report, defs: Record<string, Workload>, markdown = false): string {
  const m = report.machine as Record<string, any>;
  const pct1 = (v: number | undefined) => (v === undefined ? '-' : `${fmt(100 * v, 3)}%`);
  const peers = PEER_NAMES.filter((p) => Object.values(report.workloads).some((r) => (r.peers as Record<string, unknown> | undefined)?.[p]));
  const out: string[] = [];
  const load = (l: number[] | undefined) => (l ? l.map((x) => x.toFixed(2)).join(' / ') : '?');
  out.push(`machine: ${m.cpu}, ${m.cpus} cores; rnnkit ${m.threads} threads, GEMM ${m.gemm}${m.blas !== 'none' ? ` (system BLAS: ${m.blas_detail})` : ''}; node ${m.node}; ${m.date}`);
  out.push(`load average (1/5/15 min): ${load(m.load_start)} at start, ${load(m.load_end)} at end${m.tiny ? '; TINY shapes (smoke run, not a measurement)' : ''}`);
  const rf = m.roofline as Record<string, any> | undefined;
  if (rf) {
    out.push(`SGEMM roofline ${rf.m}x${rf.n}x${rf.k}, ${m.threads} threads: ${fmt(rf.gflops)} GFLOP/s (${rf.source})` +
      `${rf.blas_gflops !== undefined ? `; system BLAS ${fmt(rf.blas_gflops)}` : ''}; built-in ${fmt(rf.builtin_gflops)}` +
      `${rf.builtin_vs_blas !== undefined ? ` (built-in/BLAS ${rf.builtin_vs_blas.toFixed(2)})` : ''}`);
  } else {
    out.push('SGEMM roofline: not measured (bench/native is not built: run the harness through bench/run.js)');
  }
  const pk = m.peak as Record<string, any> | undefined;
  if (pk?.float32_gflops) {
    out.push(`arithmetic peak, ${pk.threads} threads (register-only multiply-adds, best of many calls): float32 ${fmt(pk.float32_gflops)} GFLOP/s (${pk.float32_kernel})` +
      `${pk.int8_gmacs ? `, int8 ${fmt(pk.int8_gmacs)} G MAC/s (${pk.int8_kernel})` : `, int8: ${pk.int8_kernel}`}` +
      `${rf?.gflops ? `; the SGEMM roofline is ${fmt(100 * rf.gflops / pk.float32_gflops, 2)}% of it` : ''}`);
    out.push('  each contender\'s GFLOP/s counts its own products: a one-hot first layer is a lookup for rnnkit, a one-hot matrix product for ONNX Runtime (OneHot + LSTM of toOnnx\'s graph), PyTorch and TF.js');
    for (const [name, r] of Object.entries(report.workloads)) {
      const f = r as Record<string, any>;
      const ort = f.peers?.onnxruntime as Figures | undefined;
      if (!name.startsWith('infer_') || ort?.peak_fraction === undefined) continue;
      out.push(`${markdown ? '- ' : '  '}${name}: ONNX Runtime reaches ${pct1(ort.peak_fraction)} of the float32 peak, rnnkit ${pct1(f.peak_fraction)}` +
        `${f.builtin?.peak_fraction !== undefined ? ` (built-in GEMM ${pct1(f.builtin.peak_fraction)})` : ''}` +
        `${f.blas?.peak_fraction !== undefined ? ` (system BLAS ${pct1(f.blas.peak_fraction)})` : ''}` +
        `${f.peak_fraction_for_1_3x_onnxruntime !== undefined ? `; 1.3x ONNX Runtime would need ${pct1(f.peak_fraction_for_1_3x_onnxruntime)}` : ''}` +
        `${f.int8_peak_fraction !== undefined ? `; rnnkit int8 ${pct1(f.int8_peak_fraction)} of the int8 peak` : ''}`);
    }
  } else {
    out.push('arithmetic peak: not measured (bench/native is not built, or predates benchPeak)');
  }
  for (const [name, b] of Object.entries((m.step_weight_read ?? {}) as Record<string, { bytes: number; us: number; read_us?: number }>)) {
    const f = report.workloads[name] as Figures | undefined;
    out.push(`${name}: one matrix-vector product over its ${fmt(b.bytes / 2 ** 20, 3)} MiB of weights takes ${fmt(b.us, 3)} us here` +
      `${f?.weight_read_fraction !== undefined ? ` (${fmt(100 * f.weight_read_fraction, 2)}% of the step's time)` : ''}` +
      `${b.read_us !== undefined ? `; merely reading those bytes, ${m.threads} threads, best of many passes: ${fmt(b.read_us, 3)} us` : ''}`);
  }
  out.push('');
  out.push(markdown ? 'Tokens per second (step: microseconds per step); peers: their figure and (rnnkit speed / peer speed).' : 'tokens/s (step: us per step); peer columns: figure (rnnkit / peer speed)');
  if (markdown) out.push('');
  out.push(...tableRows(report, defs, peers, markdown));
  if (peers.some((p) => Object.values(report.workloads).some((r) => {
    const pf = (r.peers as Record<string, Figures> | undefined)?.[p];
    return pf && pf.repetitions !== undefined && pf.repetitions < 5;
  }))) {
    out.push(`${markdown ? '\n' : ''}* fewer than 5 timed calls: the peer was so slow that timing stopped after --peer-max-seconds (a first call that long is the figure on its own).`);
  }
  out.push('');
  if (markdown) out.push('Every figure, per workload:', '');
  for (const [name, r] of Object.entries(report.workloads)) {
    const f = r as Record<string, any>;
    if (f.not_measured) {
      out.push(`${markdown ? '- ' : ''}${name}: ${f.not_measured}`);
      continue;
    }
    const own = Object.entries(f).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${fmt(v as number, 4)}`).join(', ');
    out.push(`${markdown ? '- ' : ''}${name}: rnnkit ${own}`);
    if (f.builtin) out.push(`${markdown ? '  ' : '    '}built-in GEMM (RNNKIT_BLAS=none): ${Object.entries(f.builtin as Figures).map(([k, v]) => `${k} ${fmt(v, 4)}`).join(', ')}`);
    if (f.blas) out.push(`${markdown ? '  ' : '    '}system BLAS (RNNKIT_BLAS=system): ${Object.entries(f.blas as Figures).map(([k, v]) => `${k} ${fmt(v, 4)}`).join(', ')}`);
    for (const [p, pf] of Object.entries((f.peers ?? {}) as Record<string, Record<string, unknown>>)) {
      const text = pf.error ? String(pf.error) : Object.entries(pf).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${fmt(v as number, 4)}`).join(', ');
      out.push(`${markdown ? '  ' : '    '}${PEER_LABELS[p]}: ${text}`);
    }
  }
  if (m.gemm_shapes?.length) {
    out.push('');
    const otherName = m.blas !== 'none' ? ' / built-in' : (m.gemm_shapes as GemmFigure[]).some((g) => g.blas_gflops !== undefined) ? ` / ${m.other_gemm ?? 'system BLAS'}` : '';
    out.push(`GEMM shapes the workloads use (M x N x K, op(B)=B^T), GFLOP/s with ${m.gemm}${otherName}:`);
    if (markdown) out.push('');
    for (const g of m.gemm_shapes as GemmFigure[]) {
      const other = g.builtin_gflops !== undefined && m.blas !== 'none' ? g.builtin_gflops : g.blas_gflops;
      out.push(`${markdown ? '- ' : '  '}${g.m}x${g.n}x${g.k}: ${fmt(g.gflops)}${other !== undefined ? ` / ${fmt(other)}` : ''}  (${(g.used_by ?? []).join('; ')})`);
    }
  }
  out.push('');
  out.push(markdown ? 'Peers:' : 'peers:');
  if (markdown) out.push('');
  for (const [p, s] of Object.entries(report.peers as Record<string, PeerStatus & { version?: string }>)) {
    out.push(`${markdown ? '- ' : '  '}${PEER_LABELS[p]}: ${s.available ? `${s.version}, ${s.detail}` : s.detail}`);
  }
  out.push('');
  if (m.tiny) {
    out.push('target checks: none (tiny shapes are a smoke run, not a measurement)');
    return out.join('\n') + '\n';
  }
  out.push(markdown ? 'Target checks (informational):' : 'target checks (informational):');
  if (markdown) out.push('');
  for (const t of report.targets) {
    const v = t.value === null ? '' : ` (${fmt(t.value, 3)})`;
    out.push(`${markdown ? '- ' : '  '}${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL'} ${t.check}${v}`);
  }
  return out.join('\n') + '\n';
}

function targetChecks(report: Report): Report['targets'] {
  const W = report.workloads as Record<string, Record<string, any>>;
  const checks: Report['targets'] = [];
  const add = (check: string, value: number | undefined, pass: (v: number) => boolean) => {
    checks.push({ check, value: value ?? null, pass: value === undefined || !Number.isFinite(value) ? null : pass(value) });
  };
  const vsTorch = (n: string) => W[n]?.vs?.pytorch as number | undefined;
  const charrnn = 'train_charrnn_lstm2x256_b32_t64';
  if (W[charrnn]) {
    add('char-rnn training >= 5x PyTorch tokens/s', vsTorch(charrnn), (v) => v >= 5);
    add('char-rnn training >= 50% of the SGEMM roofline', W[charrnn].roofline_fraction, (v) => v >= 0.5);
    add('char-rnn training peak RSS <= 200 MB', W[charrnn].peak_rss_mb, (v) => v <= 200);
  }
  for (const n of ['train_lstm512_b16_t50', 'train_gru512_b16_t50']) if (W[n]) add(`${n} >= 4x PyTorch`, vsTorch(n), (v) => v >= 4);
  for (const n of ['infer_lstm512_b64_t100', 'infer_gru512_b64_t100']) {
    if (!W[n]) continue;
    add(`${n} >= 2.5x PyTorch`, vsTorch(n), (v) => v >= 2.5);
    add(`${n} >= 70% of the SGEMM roofline`, W[n].roofline_fraction, (v) => v >= 0.7);
  }
  if (W.step_lstm2x256_b1) {
    // The issue's target: the synchronous step at most 20 us, float32 or int8 (each checked, the name says which).
    add('step_lstm2x256_b1 float32 <= 20 us per step (synchronous)', W.step_lstm2x256_b1.us_per_step_sync ?? W.step_lstm2x256_b1.us_per_step, (v) => v <= 20);
    if (W.step_lstm2x256_b1.int8_us_per_step_sync !== undefined)
      add('step_lstm2x256_b1 int8 <= 20 us per step (synchronous)', W.step_lstm2x256_b1.int8_us_per_step_sync, (v) => v <= 20);
  }
  // Against ONNX Runtime, measured in the same process, alternating: every inference workload at least 1.3x; the
  // awaited step at least 2x session.run and within 15 us of rnnkit's own synchronous step.
  const vsOrt = (n: string) => W[n]?.vs?.onnxruntime as number | undefined;
  for (const [n, w] of Object.entries(W)) {
    if (n.startsWith('infer_') && !w.not_measured) add(`${n} >= 1.3x ONNX Runtime`, vsOrt(n), (v) => v >= 1.3);
  }
  // int8 inference (opt-in): at least 2x ONNX Runtime's float32 on every inference workload, a step of at most 12 us.
  for (const [n, w] of Object.entries(W)) {
    const ort = w.peers?.onnxruntime?.tokens_per_s;
    if (n.startsWith('infer_') && w.int8_tokens_per_s && ort) add(`${n}: rnnkit int8 >= 2x ONNX Runtime float32`, w.int8_tokens_per_s / ort, (v) => v >= 2);
  }
  if (W.step_lstm2x256_b1?.int8_us_per_step_sync !== undefined) add('step_lstm2x256_b1 int8 <= 12 us per step (synchronous)', W.step_lstm2x256_b1.int8_us_per_step_sync, (v) => v <= 12);
  const awaited = W.step_async_lstm2x256_b1;
  if (awaited) {
    add('step_async_lstm2x256_b1 (awaited) >= 2x ONNX Runtime session.run', vsOrt('step_async_lstm2x256_b1'), (v) => v >= 2);
    const gap = awaited.us_per_step_awaited !== undefined && awaited.us_per_step_sync !== undefined ? awaited.us_per_step_awaited - awaited.us_per_step_sync : undefined;
    add('step_async_lstm2x256_b1: awaited step within 15 us of the synchronous one (us)', gap, (v) => v <= 15);
  }
  // The encoder-decoder against PyTorch's seq2seq tutorial model at the same sizes and threads.
  for (const n of ['train_seq2seq_gru256_bahdanau_b32', 'decode_seq2seq_gru256_bahdanau_b32_greedy', 'decode_seq2seq_gru256_bahdanau_b32_beam4'])
    if (W[n] && !W[n].not_measured) add(`${n} >= 5x PyTorch`, vsTorch(n), (v) => v >= 5);
  const rf = (report.machine as Record<string, any>).roofline;
  add('built-in GEMM >= 70% of the system BLAS (SGEMM 2048^3)', rf?.builtin_vs_blas, (v) => v >= 0.7);
  // The same on the workloads themselves: rnnkit with RNNKIT_BLAS=none over rnnkit with the BLAS, the lowest one.
  const perWorkload = Object.values(W).map((w) => w.builtin_vs_blas).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (perWorkload.length) add('built-in GEMM >= 70% of the system BLAS on every workload (lowest ratio)', Math.min(...perWorkload), (v) => v >= 0.7);
  return checks;
}

// ---------------------------------------------------------------------------------------------------------------

function optionValue(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const a = argv[i];
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
}

/** The hidden `--child-gemm '<task>'` entry: the GEMM this process's environment selects (RNNKIT_BLAS), timed at
 *  the roofline's square size and at the workloads' shapes, as one JSON line. */
function childGemmMain(taskJson: string): number {
  const task = JSON.parse(taskJson) as { S: number; secs: number; shapeSecs: number; shapes: Array<[number, number, number]> };
  const fn = loadBenchAddon()?.benchGemm;
  if (typeof fn !== 'function') throw new Error('bench/native is not built');
  const square = gemmBest(fn, task.S, task.S, task.S, false, false, task.secs);
  const shapes = task.shapes.map(([m, n, k]) => gemmBest(fn, m, n, k, true, false, task.shapeSecs));
  process.stdout.write(JSON.stringify({ gemm: backendInfo().gemm, square, shapes }) + '\n');
  return 0;
}

/** The GEMM the default rule did not pick, for the comparison run: the built-in one where a system BLAS is the
 *  default; a system BLAS where the built-in GEMM is the default and one is installed (asked of a child process,
 *  RNNKIT_BLAS=system); else none. */
function otherGemm(info: { gemm: string; blas: string }): { key: 'builtin' | 'blas'; env: Record<string, string>; name: string } | undefined {
  if (info.blas !== 'none' && info.gemm === info.blas) return { key: 'builtin', env: { RNNKIT_BLAS: 'none' }, name: 'built-in' };
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(require(process.argv[1]).backendInfo()))', path.join(ROOT, 'dist', 'index.js')],
    { env: { ...process.env, RNNKIT_BLAS: 'system' }, encoding: 'utf8' });
  try {
    const found = JSON.parse(r.stdout) as { gemm: string; blas: string };
    if (found.blas !== 'none' && found.gemm === found.blas) return { key: 'blas', env: { RNNKIT_BLAS: 'system' }, name: found.blas };
  } catch { /* no answer: no comparison */ }
  return undefined;
}

export async function runBenchmarks(argv: string[]): Promise<number> {
  const childTask = optionValue(argv, '--child');
  if (childTask !== undefined) return childMain(childTask);
  const childGemm = optionValue(argv, '--child-gemm');
  if (childGemm !== undefined) return childGemmMain(childGemm);

  const tiny = argv.includes('--tiny');
  const o: BenchOptions = {
    json: argv.includes('--json'),
    tiny,
    only: optionValue(argv, '--only'),
    minSeconds: Number(optionValue(argv, '--min-seconds') ?? (tiny ? 0 : 2)),
    repetitions: Number(optionValue(argv, '--repetitions') ?? (tiny ? 2 : 5)),
  };
  // Peers: by default the installed ones of DEFAULT_PEERS in a full run, ONNX Runtime alone in a --tiny run; --peers (the default
  // set), --peers=all, --peers=a,b and --no-peers override. TF.js's plain-JavaScript cpu backend is not in the default
  // set: one training step of these shapes takes it minutes.
  const peersArg = argv.find((a) => a.startsWith('--peers='))?.slice('--peers='.length);
  // ONNX Runtime runs in --tiny runs too: in-process and quick, and its agreement check is worth having in CI.
  let wantPeers: string[] = tiny ? ['onnxruntime'] : [...DEFAULT_PEERS];
  if (argv.includes('--peers')) wantPeers = [...DEFAULT_PEERS];
  else if (peersArg === 'all') wantPeers = [...PEER_NAMES];
  else if (peersArg !== undefined) wantPeers = peersArg.split(',').map((s) => s.trim()).filter(Boolean);
  if (argv.includes('--no-peers')) wantPeers = [];
  const maxPeerSeconds = Number(optionValue(argv, '--peer-max-seconds') ?? 60);
  for (const [flag, v, min] of [['--min-seconds', o.minSeconds, 0], ['--repetitions', o.repetitions, 1], ['--peer-max-seconds', maxPeerSeconds, 0]] as const) {
    if (!Number.isFinite(v) || v < min) {
      process.stderr.write(`bench: ${flag} must be a number >= ${min}\n`);
      return 2;
    }
  }
  const unknown = wantPeers.filter((p) => !(PEER_NAMES as readonly string[]).includes(p));
  if (unknown.length) {
    process.stderr.write(`bench: unknown peer(s) ${unknown.join(', ')}; known: ${PEER_NAMES.join(', ')}\n`);
    return 2;
  }
  // The other GEMM's run (otherGemm: the built-in one or a system BLAS, whichever the default did not pick): on by
  // default except in --tiny runs; --no-builtin turns it off, --builtin on (the names are older than the rule).
  const wantOther = argv.includes('--builtin') || (!tiny && !argv.includes('--no-builtin'));
  const svgFile = optionValue(argv, '--svg');
  const mdFile = optionValue(argv, '--markdown');
  const quiet = argv.includes('--quiet');
  const log = (s: string) => { if (!quiet) process.stderr.write(s + '\n'); };

  const file = JSON.parse(fs.readFileSync(workloadsFile(), 'utf8')) as { workloads: Record<string, Workload> };

  // --from FILE: no measurement, only the table / JSON / chart / markdown of a report saved by `--json`.
  const fromFile = optionValue(argv, '--from');
  if (fromFile !== undefined) {
    const saved = JSON.parse(fs.readFileSync(fromFile, 'utf8')) as Report;
    const savedDefs: Record<string, Workload> = {};
    for (const n of Object.keys(saved.workloads)) if (file.workloads[n]) savedDefs[n] = scaleWorkload(file.workloads[n], !!saved.machine?.tiny);
    saved.targets = saved.machine?.tiny ? [] : targetChecks(saved);
    if (svgFile) fs.writeFileSync(svgFile, benchChartSvg(saved, savedDefs));
    if (mdFile) fs.writeFileSync(mdFile, formatReport(saved, savedDefs, true));
    process.stdout.write(o.json ? JSON.stringify(saved, null, 2) + '\n' : formatReport(saved, savedDefs));
    return 0;
  }

  // --only: one or more comma-separated parts of workload names; a part that names no workload is an error, so that a
  // typo never ends in an empty report.
  const onlyParts = o.only === undefined ? [] : o.only.split(',').map((s) => s.trim()).filter(Boolean);
  const unmatched = onlyParts.filter((part) => !Object.keys(file.workloads).some((n) => n.includes(part)));
  if (o.only !== undefined && (onlyParts.length === 0 || unmatched.length)) {
    process.stderr.write(`bench: --only ${JSON.stringify(o.only)} names no workload${unmatched.length ? ` (${unmatched.join(', ')})` : ''}; workloads: ${Object.keys(file.workloads).join(', ')}\n`);
    return 2;
  }
  const selected = Object.keys(file.workloads).filter((n) => !onlyParts.length || onlyParts.some((part) => n.includes(part)));
  // Kinds this harness does not measure (yet) are listed in the report with the reason, never silently dropped.
  const names = selected.filter((n) => MEASURED_KINDS.includes(file.workloads[n].kind));
  const notMeasured = selected.filter((n) => !names.includes(n));
  const defs: Record<string, Workload> = {};
  for (const n of names) defs[n] = scaleWorkload(file.workloads[n], tiny);

  const loadStart = os.loadavg();
  const info = backendInfo();
  const threads = info.threads;
  const systemBlas = info.blas !== 'none' && info.gemm === info.blas;
  const other = wantOther ? otherGemm(info) : undefined;
  const machine: Record<string, unknown> = {
    cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', platform: `${process.platform}-${process.arch}`,
    memory_gb: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, gemm: info.gemm, blas: info.blas,
    blas_detail: info.blasDetail, builtin_kernel: info.builtinKernel, threads, date: new Date().toISOString(),
    tiny, load_start: loadStart.map((x) => +x.toFixed(2)), ...(other ? { other_gemm: other.name } : {}),
  };

  // The SGEMM roofline of this machine, with the thread count in use: the best of the GEMM the networks use and of
  // the built-in kernel, at a large square product; and the shapes the workloads run.
  const floors = loadBenchAddon();
  const benchGemm = floors?.benchGemm;
  const benchRead = floors?.benchRead;
  // The arithmetic peak: what every contender's GFLOP/s is a fraction of (peak_fraction in each figure set, added
  // at the end, after a second measurement).
  const benchPeak = floors?.benchPeak;
  if (typeof benchPeak === 'function') {
    log('arithmetic peak (float32 FMA, int8 dot products) ...');
    machine.peak = peakNow(benchPeak, threads, tiny ? 0.05 : 1);
  }
  if (typeof benchGemm === 'function') {
    const S = tiny ? 256 : 2048;
    const secs = tiny ? 0.05 : 1.5;
    log(`SGEMM ${S}^3 ...`);
    const inUse = gemmBest(benchGemm, S, S, S, false, false, secs);
    const builtin = systemBlas ? gemmBest(benchGemm, S, S, S, false, true, secs) : inUse;
    const shapes = new Map<string, GemmFigure>();
    for (const n of names) {
      for (const s of workloadGemmShapes(defs[n])) {
        const key = `${s.m}x${s.n}x${s.k}`;
        if (!shapes.has(key)) shapes.set(key, { m: s.m, n: s.n, k: s.k, trans_b: true, gflops: 0, gemm: info.gemm, used_by: [] });
        shapes.get(key)!.used_by!.push(`${n}: ${s.what}`);
      }
    }
    for (const g of shapes.values()) {
      g.gflops = gemmBest(benchGemm, g.m, g.n, g.k, true, false, tiny ? 0.01 : 0.3);
      if (systemBlas) g.builtin_gflops = gemmBest(benchGemm, g.m, g.n, g.k, true, true, tiny ? 0.01 : 0.3);
    }
    // Where the built-in GEMM is the default, the system BLAS is timed in a child process that selects it.
    let blas = systemBlas ? inUse : undefined;
    if (!systemBlas && other?.key === 'blas') {
      log(`SGEMM ${S}^3 and the workloads' shapes with ${other.name} (RNNKIT_BLAS=system) ...`);
      const list = [...shapes.values()];
      const task = { S, secs, shapeSecs: tiny ? 0.01 : 0.3, shapes: list.map((g) => [g.m, g.n, g.k]) };
      const r = spawnSync(process.execPath, [path.join(__dirname, 'harness.js'), '--child-gemm', JSON.stringify(task)],
        { cwd: ROOT, env: { ...process.env, ...other.env }, encoding: 'utf8', timeout: 600_000 });
      try {
        const got = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { square: number; shapes: number[] };
        blas = got.square;
        list.forEach((g, i) => { g.blas_gflops = got.shapes[i]; });
      } catch {
        log(`  failed: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ') || `exit status ${r.status}`}`);
      }
    }
    const best = Math.max(inUse, builtin, blas ?? 0);
    machine.roofline = {
      m: S, n: S, k: S, gflops: best, source: best === builtin ? `builtin-${info.builtinKernel}` : best === inUse ? info.gemm : other?.name,
      ...(blas !== undefined ? { blas_gflops: blas, builtin_vs_blas: builtin / blas } : {}), builtin_gflops: builtin,
    };
    machine.gemm_shapes = [...shapes.values()];
    // A batch-1 step does little arithmetic per weight: its floor is reading every weight matrix once. Measured
    // as one matrix-vector product over as many bytes as the step's weights, with the same threads and kernel.
    const readBound: Record<string, unknown> = {};
    for (const n of names) {
      const w = defs[n];
      if (w.kind !== 'step') continue;
      const floats = workloadGemmShapes(w).reduce((sum, g) => sum + g.n * g.k, 0);
      const rows = Math.ceil(floats / w.hidden);
      const gflops = gemmBest(benchGemm, 1, rows, w.hidden, true, false, tiny ? 0.01 : 0.5);
      const bytes = rows * w.hidden * 4;
      readBound[n] = { bytes, us: (2 * rows * w.hidden) / (gflops * 1e9) * 1e6 };
      // And the machine's own floor: the same bytes read and summed, nothing else, split across the same threads.
      if (typeof benchRead === 'function') {
        // As many passes as fit about half a second (at most 20,000): a loaded machine makes each one slow.
        const probe = benchRead(bytes, 20);
        const r = tiny ? probe : benchRead(bytes, Math.max(20, Math.min(20000, Math.round(0.5 / Math.max(probe.medianSeconds, 1e-7)))));
        Object.assign(readBound[n] as object, { read_us: r.bestSeconds * 1e6, read_median_us: r.medianSeconds * 1e6 });
      }
    }
    machine.step_weight_read = readBound;
  }
  const roofline = (machine.roofline as { gflops: number } | undefined)?.gflops;

  const self = path.join(__dirname, 'harness.js');
  const childTimeout = 600;
  const results: Record<string, Record<string, unknown>> = {};
  // GFLOP/s of a contender's figures, counted with its own arithmetic (MULTIPLIES_ONE_HOT), and their fractions of
  // the SGEMM roofline and of the arithmetic peak; rnnkit's int8 figures as int8 multiply-accumulates per second
  // (the same products, one MAC per two FLOPs) against the int8 peak.
  const withFlops = (name: string, f: Figures, contender: string): Figures => {
    const w = defs[name];
    const s = w.kind === 'train' || w.kind === 'train_seq2seq' ? f.s_per_step
      : w.kind === 'infer' || w.kind === 'decode_seq2seq' ? f.s_per_call : (f.us_per_step ?? NaN) / 1e6;
    const flops = workloadFlops(w, w.seq ?? 1, w.batch, MULTIPLIES_ONE_HOT[contender] ?? true);
    const g = flops / s / 1e9;
    const out: Figures = { ...f };
    if (Number.isFinite(g) && g > 0) {
      out.gflops = g;
      if (roofline) out.roofline_fraction = g / roofline;
    }
    const int8Seconds = w.kind === 'infer' ? (w.batch * (w.seq ?? 1)) / f.int8_tokens_per_s : (f.int8_us_per_step_sync ?? NaN) / 1e6;
    const gmacs = flops / 2 / int8Seconds / 1e9;
    if (Number.isFinite(gmacs) && gmacs > 0) out.int8_gmacs = gmacs;
    const read = (machine.step_weight_read as Record<string, { us: number }> | undefined)?.[name];
    if (read && f.us_per_step) out.weight_read_fraction = read.us / f.us_per_step;
    return out;
  };
  const pick = (name: string, f: Figures): Figures => {
    // The figures the workload lists, then the derived ones; a step workload keeps tokens_per_s for the chart.
    const w = file.workloads[name];
    const keep = new Set([...w.report, 'gflops', 'roofline_fraction', 'peak_fraction', 'int8_gmacs', 'int8_peak_fraction', 'weight_read_fraction', 'repetitions', 'tokens_per_s', 'us_per_step_sync', 'us_per_step_awaited',
      'int8_tokens_per_s', 'int8_us_per_step_sync', 'int8_us_per_step_awaited', 'int8_agreement']);
    return Object.fromEntries(Object.entries(f).filter(([k]) => keep.has(k)));
  };

  const peerStatus = wantPeers.length ? detectPeers(threads) : ({} as Record<PeerName, PeerStatus>);
  const ortWanted = wantPeers.includes('onnxruntime') && !!peerStatus.onnxruntime?.available;
  if (wantPeers.includes('onnxruntime') && !ortWanted) log(`onnxruntime: ${peerStatus.onnxruntime.detail}`);
  let failed = false;
  for (const name of names) {
    const withOrt = ortWanted && (defs[name].kind === 'infer' || defs[name].kind === 'step');
    const task: ChildTask = { name, workload: defs[name], minSeconds: o.minSeconds, repetitions: o.repetitions, onnxruntime: withOrt };
    log(`rnnkit ${name}${withOrt ? ' (and ONNX Runtime, alternating)' : ''} ...`);
    const r = await runChild(process.execPath, [self, '--child', JSON.stringify(task)], process.env, childTimeout);
    if (!r.ok) {
      failed = true;
      results[name] = { error: r.error };
      log(`  failed: ${r.error}`);
      continue;
    }
    results[name] = pick(name, withFlops(name, r.figures!, 'rnnkit'));
    log(`  ${headline(defs[name], r.figures)}${defs[name].kind === 'step' ? '' : ' tokens/s'}`);
    const ortResult = r.info?.onnxruntime as Figures | { error: string } | undefined;
    if (ortResult) {
      const entry = (results[name].peers ??= {}) as Record<string, unknown>;
      if ('error' in ortResult) {
        failed = true;  // a peer that disagrees with rnnkit is a finding, not a figure
        entry.onnxruntime = ortResult;
        log(`  ONNX Runtime: ${ortResult.error}`);
      } else {
        const f = withFlops(name, ortResult as Figures, 'onnxruntime');
        entry.onnxruntime = { ...pick(name, f), agreement: (ortResult as Figures).agreement };
        const ratio = speedRatio(defs[name], results[name] as Figures, f);
        if (ratio !== undefined) ((results[name].vs ??= {}) as Record<string, number>).onnxruntime = ratio;
        log(`  ONNX Runtime ${headline(defs[name], f)}${ratio !== undefined ? ` (rnnkit ${fmt(ratio)}x)` : ''}`);
      }
    }
  }
  // The other GEMM on every workload: `builtin` or `blas` figures beside the default's, and builtin_vs_blas (the
  // built-in GEMM's speed over the system BLAS's) either way.
  if (other) {
    for (const name of names) {
      if (!results[name] || results[name].error) continue;
      const task: ChildTask = { name, workload: defs[name], minSeconds: o.minSeconds, repetitions: o.repetitions, onnxruntime: false };
      log(`rnnkit (RNNKIT_BLAS=${other.env.RNNKIT_BLAS}) ${name} ...`);
      const r = await runChild(process.execPath, [self, '--child', JSON.stringify(task)], { ...process.env, ...other.env }, childTimeout);
      if (!r.ok) { log(`  failed: ${r.error}`); continue; }
      const f = withFlops(name, r.figures!, other.key === 'builtin' ? 'rnnkit_builtin' : 'rnnkit_blas');
      const { peak_rss_mb: _rss, ...rest } = pick(name, f);
      void _rss;
      results[name][other.key] = rest;
      const ratio = other.key === 'builtin' ? speedRatio(defs[name], f, results[name] as Figures) : speedRatio(defs[name], results[name] as Figures, f);
      if (ratio !== undefined) results[name].builtin_vs_blas = ratio;
      log(`  ${headline(defs[name], f)}`);
    }
  }

  for (const p of PEER_NAMES) {
    if (!wantPeers.includes(p) || p === 'onnxruntime') continue;
    const st = peerStatus[p];
    if (!st.available || !st.command) { log(`${p}: ${st.detail}`); continue; }
    if (p === 'brain' && !names.some((n) => defs[n].kind === 'train' && defs[n].input === 'one-hot')) continue;
    for (const name of names) {
      if (!results[name] || results[name].error) continue;
      const w = defs[name];
      if (p === 'brain' && !(w.kind === 'train' && w.input === 'one-hot')) continue;  // its API has no other mapping
      if (p.startsWith('tfjs') && isSeq2Seq(w)) continue;  // no encoder-decoder peer in TF.js's layers API here
      const task = { name, workload: w, threads, min_seconds: o.minSeconds, repetitions: o.repetitions, max_seconds: tiny ? 5 : maxPeerSeconds,
        ...(p.startsWith('tfjs') ? { backend: p === 'tfjs_wasm' ? 'wasm' : 'cpu' } : {}) };
      log(`${p} ${name} ...`);
      // A slow peer stops timing after max_seconds (its first call alone, when that took so long): the child's limit
      // leaves room for a first call several times that long.
      // Peers run in the environment the user gave, not the one rnnkit's BLAS loading adjusted for itself.
      const r = await runChild(st.command[0], [...st.command.slice(1), JSON.stringify(task)], { ...environmentBeforeLoad, OMP_NUM_THREADS: String(threads) }, Math.max(900, maxPeerSeconds * 10));
      const entry = (results[name].peers ??= {}) as Record<string, unknown>;
      if (!r.ok) { entry[p] = { error: r.error }; log(`  ${r.error}`); continue; }
      const f = withFlops(name, r.figures!, p);
      entry[p] = pick(name, f);
      const ratio = speedRatio(w, results[name] as Figures, f);
      if (ratio !== undefined) ((results[name].vs ??= {}) as Record<string, number>)[p] = ratio;
      log(`  ${headline(w, f)}${ratio !== undefined ? ` (rnnkit ${fmt(ratio)}x)` : ''}`);
    }
  }

  if (typeof benchPeak === 'function' && machine.peak) {
    log('arithmetic peak again ...');
    machine.peak = peakNow(benchPeak, threads, tiny ? 0.05 : 1, machine.peak as Peak);
    addPeakFractions(results, defs, machine.peak as Peak);
  }
  machine.load_end = os.loadavg().map((x) => +x.toFixed(2));
  const peersOut: Record<string, unknown> = {};
  for (const p of PEER_NAMES) {
    const st = peerStatus[p];
    peersOut[p] = !wantPeers.includes(p) ? { available: false, detail: tiny ? 'skipped (--tiny; add --peers)' : 'skipped (not asked for)' }
      : { available: st.available, ...(st.version ? { version: st.version } : {}), detail: st.detail };
  }
  for (const n of notMeasured) results[n] = { not_measured: `kind '${file.workloads[n].kind}' is not measured by this harness yet` };
  const report: Report = { workloads: results, machine, peers: peersOut, targets: [] };
  // Tiny shapes are a smoke run, not a measurement: no target is checked against them.
  report.targets = tiny ? [] : targetChecks(report);

  if (svgFile) fs.writeFileSync(svgFile, benchChartSvg(report, defs));
  if (mdFile) fs.writeFileSync(mdFile, formatReport(report, defs, true));
  if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatReport(report, defs));
  return failed ? 1 : 0;
}

if (require.main === module) {
  runBenchmarks(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: Error) => { process.stderr.write(`bench: ${e.stack ?? e.message}\n`); process.exitCode = 1; },
  );
}
