// The batch runner behind `rnnkit predict`: next-symbol predictions for a JSON-lines file of sequences.
//
// Input: one JSON object per line, {"id": ..., "text": "..."} or {"id": ..., "tokens": [...]} ("id" optional, any JSON
// value). Output: one line per valid input line, in input order:
//   {"id": ..., "line": N, "prediction": {"next": {"token", "id", "p"}, "top": [{"token", "id", "p"}, ...]}}
// where "line" is the 1-based input line number and "token" the character (a character model) or the id.
//
// Work is cut into chunks of lines. Worker threads (each with its own copy of the model) parse, validate and predict
// a chunk; within a chunk the sequences run as batched forwards. The main thread appends each finished chunk to the
// output in order, with one write and an fsync, after checking that the file ends with a newline; so a crash (even
// SIGKILL) loses at most the chunks in flight and leaves at most a partial last line. A new run on the same output
// truncates such a partial line, reads the "line" of the last record and goes on after it: every input line ends up
// in the output exactly once, in order.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { rnnkitError } from '../errors';
import { checkOptions } from '../options';
import { readChunks, type ChunkLine } from './jsonl';
import { acquireLock } from '../io/lockfile';
import { load, type Sequential } from '../model';
import type { CharVocabulary } from '../data/text';
import { modelVocabulary } from '../io/model-vocabulary';

export interface BatchOptions {
  /** A model file written by `rnnkit train` / `model.save` (or its directory). */
  model: string;
  input: string;
  output: string;
  /** Worker threads, each with its own model; 0 runs everything on this thread (default: the CPU count, at most 8). */
  workers?: number;
  /** Input lines per chunk: the unit of work and of the atomic append (default 256). */
  chunkLines?: number;
  /** Stop at the first malformed line (exit status 1) instead of reporting and skipping it. */
  strict?: boolean;
  /** Most likely symbols listed per prediction (default 5). */
  topK?: number;
  /** Longest sequence accepted, in symbols (default 100000). */
  maxTokens?: number;
  /** Show a progress line on this stream (a TTY), or not. */
  progress?: NodeJS.WriteStream | null;
  /** Messages (malformed lines, resume notes) go here (default: stderr). */
  log?: (line: string) => void;
  /** Abort: finish and write the chunks in flight, then stop. */
  signal?: AbortSignal;
}

export interface BatchSummary {
  /** Input line the run started after (0: from the start). */
  resumedAfter: number;
  /** Output records written by this run. */
  written: number;
  /** Malformed lines reported and skipped by this run. */
  malformed: number;
  /** Last input line handled (written or skipped). */
  lastLine: number;
  interrupted: boolean;
  /** The malformed line that stopped a --strict run. */
  failed?: { line: number; message: string };
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Predictions for one chunk (in a worker, or on the main thread with workers: 0)

/** A line's output record, or why it was skipped. */
export type LineResult = { line: number; out: string } | { line: number; error: string };

interface Predictor {
  model: Sequential;
  vocab: CharVocabulary | null;
  V: number;
  probabilities: boolean;
  streamable: boolean;
  stateBlocks: { ld: number; hidden: number; cell: boolean }[];
  topK: number;
  maxTokens: number;
  /** Rows x time steps of one forward (bounds the output buffer). */
  maxRowSteps: number;
}

async function makePredictor(file: string, topK: number, maxTokens: number): Promise<Predictor> {
  const model = await load(file);
  if (!model.vocabSize) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${file}: rnnkit predict needs a model over token ids; this one takes dense input`);
  const vocab = modelVocabulary(model, file, false);
  const stateBlocks: Predictor['stateBlocks'] = [];
  let streamable = true;
  for (const l of model.layers) {
    if (l.kind !== 'recurrent') continue;
    stateBlocks.push({ ld: (l.numLayers ?? 1) * (l.bidirectional ? 2 : 1), hidden: l.units, cell: l.cell === 'lstm' });
    if (l.bidirectional || l.goBackwards) streamable = false;
  }
  return {
    model, vocab, V: model.vocabSize, probabilities: model.outputActivation === 'softmax', streamable, stateBlocks,
    topK: Math.min(topK, model.vocabSize), maxTokens, maxRowSteps: 16384,
  };
}

function describeChar(ch: string): string {
  return `${JSON.stringify(ch)} (U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')})`;
}

/** Parse and check one input line: its ids and id, or an error message. */
function parseLine(p: Predictor, text: string): { ids: Int32Array; id: unknown } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { error: `not valid JSON: ${(e as Error).message}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: 'not a JSON object' };
  const o = v as { id?: unknown; text?: unknown; tokens?: unknown };
  if (o.text !== undefined && o.tokens !== undefined) return { error: "has both 'text' and 'tokens'" };
  let ids: Int32Array;
  if (o.text !== undefined) {
    if (typeof o.text !== 'string') return { error: "'text' must be a string" };
    if (!p.vocab) return { error: "this model has no character vocabulary: give 'tokens'" };
    const vocab = p.vocab;
    ids = new Int32Array(o.text.length);
    let n = 0;
    let position = 0;
    for (const ch of o.text) {
      const id = vocab.idOf(ch);
      if (id !== undefined) ids[n++] = id;
      else if (vocab.unknown === 'replace') ids[n++] = vocab.idOf(vocab.replacement as string) as number;
      else if (vocab.unknown === 'error') return { error: `character ${describeChar(ch)} at position ${position} is not in the model's vocabulary` };
      position++;
    }
    ids = ids.slice(0, n);
  } else if (o.tokens !== undefined) {
    if (!Array.isArray(o.tokens)) return { error: "'tokens' must be an array of integers" };
    ids = new Int32Array(o.tokens.length);
    for (let i = 0; i < o.tokens.length; i++) {
      const t = o.tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= p.V) return { error: `tokens[${i}] = ${JSON.stringify(t)} is not a token id (0 to ${p.V - 1})` };
      ids[i] = t;
    }
  } else {
    return { error: "needs 'text' (a string) or 'tokens' (an array of ids)" };
  }
  if (ids.length === 0) return { error: 'the sequence is empty' };
  if (ids.length > p.maxTokens) return { error: `the sequence has ${ids.length} symbols; the limit is ${p.maxTokens}` };
  return { ids, id: o.id };
}

/** Rows `keep` of a batch state (each stage's [ld, B, H] in turn), as a state of keep.length rows. */
function selectStateRows(blocks: Predictor['stateBlocks'], cellOnly: boolean, state: Float32Array, B: number, keep: number[]): Float32Array {
  let per = 0;
  for (const b of blocks) if (!cellOnly || b.cell) per += b.ld * b.hidden;
  const out = new Float32Array(per * keep.length);
  let src = 0;
  let dst = 0;
  for (const blk of blocks) {
    if (cellOnly && !blk.cell) continue;
    const H = blk.hidden;
    for (let k = 0; k < blk.ld; k++)
      for (let j = 0; j < keep.length; j++) {
        const from = src + (k * B + keep[j]) * H;
        out.set(state.subarray(from, from + H), dst + (k * keep.length + j) * H);
      }
    src += blk.ld * B * H;
    dst += blk.ld * keep.length * H;
  }
  return out;
}

/**
 * The last-step scores of each sequence ([n * V]). Streamable models: sequences sorted by length run in groups as
 * batched forwards over their common time span, the state carried (and rows that end dropped) between passes, so no
 * step is padding. Models that must see whole sequences: one forward per group of equal lengths.
 */
async function lastStepScores(p: Predictor, seqs: Int32Array[]): Promise<Float32Array> {
  const V = p.V;
  const result = new Float32Array(seqs.length * V);
  const order = seqs.map((_, i) => i).sort((a, b) => seqs[a].length - seqs[b].length || a - b);
  const maxRows = 256;
  let start = 0;
  while (start < order.length) {
    if (!p.streamable) {
      const len = seqs[order[start]].length;
      let end = start;
      const limit = Math.max(1, Math.floor(p.maxRowSteps / len));
      while (end < order.length && end - start < limit && seqs[order[end]].length === len) end++;
      const rows = order.slice(start, end);
      const tokens = new Int32Array(rows.length * len);
      rows.forEach((r, b) => tokens.set(seqs[r], b * len));
      const out = await p.model.predict({ data: tokens, shape: [rows.length, len] });
      const seq = out.shape.length === 3;
      rows.forEach((r, b) => {
        const off = seq ? (b * len + len - 1) * V : b * V;
        result.set(out.data.subarray(off, off + V), r * V);
      });
      start = end;
      continue;
    }
    let rows = order.slice(start, Math.min(order.length, start + maxRows));
    start += rows.length;
    let pos = 0;
    let h: Float32Array | undefined;
    let c: Float32Array | undefined;
    while (rows.length > 0) {
      const B = rows.length;
      const T = Math.max(1, Math.min(seqs[rows[0]].length - pos, Math.floor(p.maxRowSteps / B)));
      const tokens = new Int32Array(B * T);
      rows.forEach((r, b) => tokens.set(seqs[r].subarray(pos, pos + T), b * T));
      const r = await p.model.predictWithState({ data: tokens, shape: [B, T] }, h ? { h, c } : undefined);
      pos += T;
      const seq = r.output.shape.length === 3;
      const keep: number[] = [];
      rows.forEach((row, b) => {
        if (seqs[row].length === pos) {
          const off = seq ? (b * T + T - 1) * V : b * V;
          result.set(r.output.data.subarray(off, off + V), row * V);
        } else keep.push(b);
      });
      if (keep.length === 0) break;
      h = selectStateRows(p.stateBlocks, false, r.h, B, keep);
      c = r.c && r.c.length > 0 ? selectStateRows(p.stateBlocks, true, r.c, B, keep) : undefined;
      rows = keep.map((b) => rows[b]);
    }
  }
  return result;
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

function formatPrediction(p: Predictor, scores: Float32Array): string {
  let probs = scores;
  if (!p.probabilities) {
    let max = -Infinity;
    for (const s of scores) if (s > max) max = s;
    probs = new Float32Array(scores.length);
    let sum = 0;
    for (let i = 0; i < scores.length; i++) sum += probs[i] = Math.exp(scores[i] - max);
    for (let i = 0; i < probs.length; i++) probs[i] /= sum;
  }
  // Top k by a partial selection (k is small).
  const top: number[] = [];
  for (let i = 0; i < probs.length; i++) {
    if (top.length === p.topK && probs[i] <= probs[top[top.length - 1]]) continue;
    let j = top.length < p.topK ? top.length : top.length - 1;
    while (j > 0 && probs[top[j - 1]] < probs[i]) j--;
    top.splice(j, 0, i);
    if (top.length > p.topK) top.pop();
  }
  const entry = (id: number): string => `{"token":${JSON.stringify(p.vocab ? p.vocab.charOf(id) : id)},"id":${id},"p":${round6(probs[id])}}`;
  const list = top.map(entry);
  return `{"next":${list[0]},"top":[${list.join(',')}]}`;
}

async function processChunk(p: Predictor, lines: ChunkLine[]): Promise<LineResult[]> {
  const parsed = lines.map((l) => ({ line: l.line, r: parseLine(p, l.text) }));
  const good = parsed.filter((x) => 'ids' in x.r) as { line: number; r: { ids: Int32Array; id: unknown } }[];
  const scores = good.length ? await lastStepScores(p, good.map((g) => g.r.ids)) : new Float32Array(0);
  const outs = new Map<number, string>();
  good.forEach((g, i) => {
    const idPart = g.r.id === undefined ? '' : `"id":${JSON.stringify(g.r.id)},`;
    outs.set(g.line, `{${idPart}"line":${g.line},"prediction":${formatPrediction(p, scores.subarray(i * p.V, (i + 1) * p.V))}}`);
  });
  return parsed.map((x) => ('error' in x.r ? { line: x.line, error: x.r.error } : { line: x.line, out: outs.get(x.line) as string }));
}

// Worker side: load the model, then answer {index, lines} messages with {index, results} (or {index, error}).
export interface WorkerInit {
  rnnkitBatchWorker: true;
  model: string;
  topK: number;
  maxTokens: number;
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.rnnkitBatchWorker) {
  const init = workerData as WorkerInit;
  const port = parentPort as NonNullable<typeof parentPort>;
  makePredictor(init.model, init.topK, init.maxTokens).then(
    (p) => {
      port.postMessage({ ready: true });
      port.on('message', (m: { index: number; lines: ChunkLine[] }) => {
        processChunk(p, m.lines).then(
          (results) => port.postMessage({ index: m.index, results }),
          (e: Error) => port.postMessage({ index: m.index, error: e.message }),
        );
      });
    },
    (e: Error) => port.postMessage({ ready: false, error: e.message, code: (e as { code?: unknown }).code }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The runner (main thread)

/** Predicts chunks: on worker threads (each with its own model) or on this thread. */
export interface Executor {
  run(index: number, lines: ChunkLine[]): Promise<LineResult[]>;
  close(): Promise<void>;
}

function workerScript(): string {
  const here = path.join(__dirname, 'runner.js');
  return fs.existsSync(here) ? here : path.join(__dirname, '..', '..', 'dist', 'batch', 'runner.js');
}

async function startWorkers(n: number, init: WorkerInit): Promise<Executor> {
  const script = workerScript();
  const workers: { w: Worker; busy: boolean }[] = [];
  const waiting = new Map<number, { resolve: (r: LineResult[]) => void; reject: (e: Error) => void }>();
  const idle: (() => void)[] = [];
  const start = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      // execArgv: [] keeps the parent's loaders (a TypeScript runner) out of the worker, which runs plain dist/.
      const w = new Worker(script, { workerData: init, execArgv: [] });
      // The worker's error keeps its code (a model that does not fit, say).
      w.once('message', (m: { ready: boolean; error?: string; code?: string }) => (m.ready ? resolve(w) : reject(Object.assign(new Error(m.error), m.code ? { code: m.code } : {}))));
      w.once('error', reject);
    });
  for (const w of await Promise.all(Array.from({ length: n }, start))) {
    const slot = { w, busy: false };
    workers.push(slot);
    w.on('message', (m: { index: number; results?: LineResult[]; error?: string }) => {
      const job = waiting.get(m.index);
      if (!job) return;
      waiting.delete(m.index);
      slot.busy = false;
      idle.shift()?.();
      if (m.error !== undefined) job.reject(new Error(m.error));
      else job.resolve(m.results as LineResult[]);
    });
    const fail = (e: Error): void => {
      for (const job of waiting.values()) job.reject(e);
      waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`a worker thread exited (status ${code}) with work in progress`)));
  }
  return {
    async run(index, lines) {
      let slot = workers.find((s) => !s.busy);
      while (!slot) {
        await new Promise<void>((r) => idle.push(r));
        slot = workers.find((s) => !s.busy);
      }
      slot.busy = true;
      const s = slot;
      return new Promise((resolve, reject) => {
        waiting.set(index, { resolve, reject });
        s.w.postMessage({ index, lines });
      });
    },
    async close() {
      await Promise.all(workers.map((s) => s.w.terminate()));
    },
  };
}

/** `workers` threads (0: this thread) that predict chunks with the model `init` names. */
export function startExecutor(workers: number, init: WorkerInit): Promise<Executor> {
  return workers > 0 ? startWorkers(workers, init) : inProcess(init);
}

/** The default worker-thread count: the CPU count, at most 8. */
export const defaultWorkers = (): number => Math.min(8, os.availableParallelism?.() ?? os.cpus().length);

async function inProcess(init: WorkerInit): Promise<Executor> {
  const p = await makePredictor(init.model, init.topK, init.maxTokens);
  let queue: Promise<unknown> = Promise.resolve();
  return {
    run(_index, lines) {
      const r = queue.then(() => processChunk(p, lines));
      queue = r.catch(() => undefined);
      return r;
    },
    async close() {
      p.model.dispose();
    },
  };
}

/** Make sure the output ends with a complete line (cutting a partial one) and return the last record's line. */
async function prepareOutput(file: string, log: (s: string) => void): Promise<number> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return 0;
    // Walk back from the end to the last newline, and to the one before it (the last complete record).
    const block = 65536;
    let end = size;
    let lastNl = -1;
    let prevNl = -1;
    let tail = Buffer.alloc(0);
    while (end > 0 && prevNl < 0) {
      const startAt = Math.max(0, end - block);
      const buf = Buffer.alloc(end - startAt);
      await fh.read(buf, 0, buf.length, startAt);
      tail = Buffer.concat([buf, tail]);
      const base = startAt;
      for (let i = buf.length - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a) continue;
        if (lastNl < 0) lastNl = base + i;
        else {
          prevNl = base + i;
          break;
        }
      }
      end = startAt;
    }
    const tailStart = size - tail.length;
    if (lastNl + 1 < size) {
      log(`${file}: cutting an incomplete last line (${size - lastNl - 1} bytes) left by an interrupted run`);
      await fh.truncate(lastNl + 1);
      await fh.sync();
    }
    if (lastNl < 0) return 0;
    const recordStart = prevNl + 1;
    const record = tail.subarray(recordStart - tailStart, lastNl - tailStart).toString('utf8');
    let line: unknown;
    try {
      line = (JSON.parse(record) as { line?: unknown }).line;
    } catch {
      line = undefined;
    }
    if (!Number.isInteger(line) || (line as number) < 1)
      throw new Error(`${file}: cannot resume: its last line is not a record written by 'rnnkit predict' (no "line" number)`);
    return line as number;
  } finally {
    await fh.close();
  }
}

/** Append `data` with one write (looping only on a short write) and fsync, after checking the file ends with '\n'. */
async function appendChunk(fh: fs.promises.FileHandle, data: Buffer): Promise<void> {
  const size = (await fh.stat()).size;
  if (size > 0) {
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] !== 0x0a) throw new Error('the output does not end with a newline: was it changed by another program during the run?');
  }
  let off = 0;
  while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
  await fh.sync();
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  let last = 0x0a;
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) n++;
    if (chunk.length) last = chunk[chunk.length - 1];
  }
  return last === 0x0a ? n : n + 1;
}

/** Run predictions over `options.input` into `options.output`, resuming after what the output already holds. */
export async function runBatch(options: BatchOptions): Promise<BatchSummary> {
  checkOptions(options, 'runBatch options', ['model', 'input', 'output', 'workers', 'chunkLines', 'strict', 'topK', 'maxTokens', 'progress', 'log', 'signal']);
  const log = options.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const chunkLines = options.chunkLines ?? 256;
  const workers = options.workers ?? defaultWorkers();
  const init: WorkerInit = { rnnkitBatchWorker: true, model: path.resolve(options.model), topK: options.topK ?? 5, maxTokens: options.maxTokens ?? 100000 };
  if (!fs.existsSync(options.input)) throw new Error(`${options.input}: no such file`);
  if (path.resolve(options.input) === path.resolve(options.output)) throw new Error('the output must be another file than the input');
  const started = performance.now();
  fs.mkdirSync(path.dirname(path.resolve(options.output)), { recursive: true });
  // A lock beside the output, so two runs never append to the same file; a crashed run's lock is taken over.
  const unlock = await acquireLock(`${options.output}.lock`, `${options.output} is being written by another 'rnnkit predict'`);
  const summary: BatchSummary = { resumedAfter: 0, written: 0, malformed: 0, lastLine: 0, interrupted: false, seconds: 0 };
  let exec: Executor | undefined;
  let fh: fs.promises.FileHandle | undefined;
  const progress = options.progress ?? null;
  let progressShown = false;
  try {
    summary.resumedAfter = await prepareOutput(options.output, log);
    summary.lastLine = summary.resumedAfter;
    if (summary.resumedAfter > 0) log(`${options.output}: resuming after input line ${summary.resumedAfter}`);
    exec = await startExecutor(workers, init);
    fh = await fs.promises.open(options.output, 'a+');
    const total = progress ? await countLines(options.input) : 0;
    let lastDraw = 0;
    const t0 = performance.now();
    const draw = (force = false): void => {
      if (!progress) return;
      const now = performance.now();
      if (!force && now - lastDraw < 100) return;
      lastDraw = now;
      const done = summary.lastLine;
      const width = 24;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const rate = (done - summary.resumedAfter) / Math.max(1e-3, (now - t0) / 1000);
      const eta = rate > 0 ? (total - done) / rate : Infinity;
      progress.write(`\r[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${done}/${total} lines  ${rate.toFixed(0)} lines/s  ETA ${formatDuration(eta)}  `);
      progressShown = true;
    };
    const say = (s: string): void => {
      if (progressShown && progress) progress.write('\r\x1b[K');
      log(s);
    };

    // Chunks go out to the executor in order; a single writer appends their results strictly in order, as soon as
    // the oldest chunk is done. At most maxInFlight chunks are dispatched and not yet written.
    const done = new Map<number, LineResult[] | Error>();
    let nextToWrite = 0;
    let nextIndex = 0;
    let stop = false;
    let writeError: Error | undefined;
    let writing: Promise<void> = Promise.resolve();
    let wake: (() => void) | undefined;
    const maxInFlight = Math.max(2, workers * 2);
    const writeChunk = async (results: LineResult[]): Promise<void> => {
      const out: string[] = [];
      let failedAt = -1;
      for (let i = 0; i < results.length; i++) {
        const r = results[i];
        if ('error' in r) {
          if (options.strict) {
            summary.failed = { line: r.line, message: r.error };
            failedAt = i;
            break;
          }
          summary.malformed++;
          say(`line ${r.line}: ${r.error} (skipped)`);
        } else out.push(r.out);
      }
      if (out.length > 0) await appendChunk(fh as fs.promises.FileHandle, Buffer.from(out.join('\n') + '\n', 'utf8'));
      summary.written += out.length;
      if (failedAt >= 0) {
        stop = true; // later chunks are not written
        summary.lastLine = results[failedAt].line - 1;
      } else if (results.length > 0) summary.lastLine = results[results.length - 1].line;
      draw();
    };
    const pump = (): void => {
      writing = writing
        .then(async () => {
          while (done.has(nextToWrite) && !writeError) {
            const r = done.get(nextToWrite) as LineResult[] | Error;
            done.delete(nextToWrite);
            nextToWrite++;
            if (r instanceof Error) throw r;
            if (!stop) await writeChunk(r);
          }
        })
        .catch((e: Error) => {
          writeError ??= e;
        })
        .finally(() => {
          const w = wake;
          wake = undefined;
          w?.();
        });
    };
    /** Wait until at most `limit` chunks are dispatched and unwritten (or the writer failed). */
    const settle = async (limit: number): Promise<void> => {
      while (nextIndex - nextToWrite > limit && !writeError) await new Promise<void>((r) => (wake = r));
      if (writeError) throw writeError;
    };
    const dispatch = async (lines: ChunkLine[]): Promise<void> => {
      const index = nextIndex++;
      (exec as Executor).run(index, lines).then(
        (r) => {
          done.set(index, r);
          pump();
        },
        (e: Error) => {
          done.set(index, e);
          pump();
        },
      );
      await settle(maxInFlight - 1);
    };

    // The same chunks as a distributed run cuts (jsonl.ts): equal batches give equal bytes.
    const seen = { lines: 0 };
    for await (const chunk of readChunks(options.input, chunkLines, summary.resumedAfter, seen)) {
      if (stop || options.signal?.aborted) break;
      await dispatch(chunk.lines);
    }
    const lineNo = Math.max(seen.lines, summary.resumedAfter);
    await settle(0);
    // Blank lines after the last record are done too.
    if (!stop && !options.signal?.aborted) summary.lastLine = Math.max(summary.lastLine, lineNo);
    summary.interrupted = !stop && (options.signal?.aborted ?? false);
    draw(true);
    if (progressShown && progress) progress.write('\n');
  } finally {
    await fh?.close();
    await exec?.close();
    unlock();
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
