// The producer of a distributed batch (`rnnkit predict MODEL --input FILE --output FILE --queue redis://...`): cuts
// the input into the same chunks as the single-machine runner, records the run in Redis (model path and checksum,
// input, output, options), queues one BullMQ job per chunk, shows one progress line for the whole run, and when every
// chunk's output is in the run's store merges them, in input order, into the output: the same bytes the single-machine
// `rnnkit predict` writes.
//
// A run is named by what it computes (model bytes, input file, output, options), so the same command started again
// finds its run: chunks already stored are not queued again, failed ones are retried, and the run goes on. Redis
// restarts are ridden out by the client's reconnection; after each reconnection the producer queues again every
// chunk not yet stored (a job id is added once, so this only replaces jobs that Redis lost).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rnnkitError } from '../../errors';
import { checkOptions } from '../../options';
import { readChunks } from '../jsonl';
import { acquireLock } from '../../io/lockfile';
import { fatalRedisError, loadBullMQ, parseRedisUrl, waitForRedis } from './connection';
import { DEFAULT_QUEUE_NAME, decodeChunk, jobId, runKey, sha256File, type ChunkJob, type RunRecord } from './run';
import { openStore } from './store';

export interface DistributedBatchOptions {
  /** A model file written by `rnnkit train` / `model.save` (or its directory); every worker must see it at this path. */
  model: string;
  /** JSON-lines input, on a filesystem every worker mounts at the same path. */
  input: string;
  /** The merged output; chunk outputs gather in OUTPUT.parts/ beside it, which every worker must be able to write. */
  output: string;
  /** redis://[[USER]:PASSWORD@]HOST:PORT[/DB], or rediss://... for TLS. */
  queue: string;
  /** BullMQ queue name (default 'rnnkit-predict'). */
  queueName?: string;
  /** BullMQ key prefix (default 'bull'). */
  prefix?: string;
  /** Input lines per chunk job (default 256, as the single-machine runner: equal chunks give equal bytes). */
  chunkLines?: number;
  topK?: number;
  maxTokens?: number;
  /** Stop the merge at the first malformed line (exit status 1), writing the lines before it. */
  strict?: boolean;
  /** Attempts of a chunk whose prediction throws (default 3). */
  attempts?: number;
  progress?: NodeJS.WriteStream | null;
  log?: (line: string) => void;
  /** Stop waiting (the run stays queued; the same call resumes it). */
  signal?: AbortSignal;
  /** How often to look at the store and the queue (ms, default 250). */
  pollInterval?: number;
}

export interface FailedChunk {
  index: number;
  firstLine: number;
  lastLine: number;
  error: string;
}

export interface DistributedBatchSummary {
  run: string;
  /** The run existed already (a restarted producer). */
  resumed: boolean;
  chunks: number;
  /** Output records and malformed lines in the merged output (0 when the run did not finish). */
  written: number;
  malformed: number;
  /** Chunks that failed after their attempts: no merge until they succeed (run the same command again). */
  failedChunks: FailedChunk[];
  /** The malformed line that stopped a strict merge. */
  failed?: { line: number; message: string };
  interrupted: boolean;
  seconds: number;
  /** Of which the merge (reading every chunk from the store, writing the output). */
  mergeSeconds: number;
}

interface ChunkPlan {
  index: number;
  start: number;
  end: number;
  firstLine: number;
  /** First and last non-blank line, and how many. */
  first: number;
  last: number;
  lines: number;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Predict `input` into `output` with workers on a BullMQ queue; resolves when merged, failed or interrupted. */
export async function runDistributedBatch(options: DistributedBatchOptions): Promise<DistributedBatchSummary> {
  checkOptions(options, 'runDistributedBatch options', ['model', 'input', 'output', 'queue', 'queueName', 'prefix', 'chunkLines', 'topK',
    'maxTokens', 'strict', 'attempts', 'progress', 'log', 'signal', 'pollInterval']);
  const { Queue } = loadBullMQ();
  const started = performance.now();
  const log = options.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const { connection, display, stopRetrying } = parseRedisUrl(options.queue);
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  const prefix = options.prefix ?? 'bull';
  const chunkLines = options.chunkLines ?? 256;
  const topK = options.topK ?? 5;
  const maxTokens = options.maxTokens ?? 100000;
  const poll = options.pollInterval ?? 250;
  for (const [name, v] of [['chunkLines', chunkLines], ['topK', topK], ['maxTokens', maxTokens], ['attempts', options.attempts ?? 3]] as const)
    if (!Number.isInteger(v) || v < 1) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${name} must be an integer >= 1, got ${String(v)}`);

  const input = path.resolve(options.input);
  const output = path.resolve(options.output);
  let model = path.resolve(options.model);
  const inputStat = fs.statSync(input, { throwIfNoEntry: false });
  if (!inputStat?.isFile()) throw rnnkitError('ERR_RNNKIT_FILE', `${options.input}: no such file`);
  if (input === output) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'the output must be another file than the input');
  if (fs.statSync(model, { throwIfNoEntry: false })?.isDirectory()) model = path.join(model, 'model.safetensors');
  if (!fs.statSync(model, { throwIfNoEntry: false })?.isFile()) throw rnnkitError('ERR_RNNKIT_FILE', `${options.model}: no such model file`);
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const unlock = await acquireLock(`${output}.lock`, `${options.output} is being written by another 'rnnkit predict'`);

  const modelSha256 = await sha256File(model);
  const id = crypto.createHash('sha256')
    .update(JSON.stringify([model, modelSha256, input, inputStat.size, inputStat.mtimeMs, output, chunkLines, topK, maxTokens]))
    .digest('hex').slice(0, 24);
  const store = openStore({ type: 'directory', path: `${output}.parts` });
  try {
    await waitForRedis(connection, display, log, options.signal);
  } catch (e) {
    unlock();
    throw e;
  }
  const summary: DistributedBatchSummary = { run: id, resumed: false, chunks: 0, written: 0, malformed: 0, failedChunks: [], interrupted: false, seconds: 0, mergeSeconds: 0 };
  const queue = new Queue(queueName, { connection, prefix });
  let redisDown = false;
  let failFast: (e: Error) => void = () => undefined;
  const fatal = new Promise<never>((_, reject) => (failFast = reject));
  fatal.catch(() => undefined);
  queue.on('error', (e: Error) => {
    const f = fatalRedisError(e, display);
    if (f) {
      stopRetrying();
      failFast(f);
    }
    else if (!redisDown) log(`rnnkit: Redis at ${display}: ${e.message}; reconnecting`);
    redisDown = true;
  });
  let progressShown = false;
  const main = async (): Promise<DistributedBatchSummary> => {
    // The chunks: the same cut as the single-machine runner's.
    const plan: ChunkPlan[] = [];
    for await (const c of readChunks(input, chunkLines)) {
      plan.push({ index: c.index, start: c.start, end: c.end, firstLine: c.firstLine, first: c.lines[0].line, last: c.lines[c.lines.length - 1].line, lines: c.lines.length });
    }
    summary.chunks = plan.length;
    const record: RunRecord = {
      version: 1, id, model, modelSha256, input, inputSize: inputStat.size, output, store: { type: 'directory', path: store.location },
      chunkLines, topK, maxTokens, chunks: plan.length,
    };
    const client = await queue.client;
    const key = runKey(prefix, queueName, id);
    const existing = await client.get(key);
    if (existing === null && fs.existsSync(output))
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${options.output} exists: a distributed run writes the whole output at its end; remove it or choose another file`);
    summary.resumed = existing !== null;
    if (!summary.resumed) {
      await store.remove(); // leftovers of an older run with other settings
      await client.set(key, JSON.stringify(record));
    }
    await store.prepare();
    let reconnected = false;
    client.on('ready', () => {
      reconnected = true;
      if (redisDown) log(`rnnkit: Redis at ${display} is back`);
      redisDown = false;
    });

    const jobFor = (c: ChunkPlan): { name: string; data: ChunkJob; opts: object } => ({
      name: 'chunk',
      data: { run: id, index: c.index, input, start: c.start, end: c.end, firstLine: c.firstLine },
      opts: { jobId: jobId(id, c.index), attempts: options.attempts ?? 3, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: true, removeOnFail: false },
    });
    /** Queue every chunk not stored yet (jobs already in the queue are left as they are). */
    const enqueueMissing = async (done: Set<number>): Promise<void> => {
      const missing = plan.filter((c) => !done.has(c.index));
      for (let i = 0; i < missing.length; i += 1000) await queue.addBulk(missing.slice(i, i + 1000).map(jobFor));
    };
    /** This run's failed jobs, by chunk. */
    const failedJobs = async (): Promise<Map<number, { error: string; retry: () => Promise<void> }>> => {
      const out = new Map<number, { error: string; retry: () => Promise<void> }>();
      if ((await queue.getFailedCount()) === 0) return out;
      for (const j of await queue.getFailed(0, -1)) {
        const d = j?.data as Partial<ChunkJob> | undefined;
        if (j && d?.run === id && typeof d.index === 'number') out.set(d.index, { error: j.failedReason || 'failed', retry: () => j.retry('failed') });
      }
      return out;
    };

    let done = await store.list();
    if (summary.resumed) {
      const failed = await failedJobs();
      for (const [index, f] of failed) if (!done.has(index)) await f.retry();
      log(`rnnkit: resuming run ${id}: ${done.size} of ${plan.length} chunks done${failed.size ? `, ${failed.size} failed chunk(s) retried` : ''}`);
    }
    await enqueueMissing(done);

    // Wait, with one progress line for the run.
    const total = plan.reduce((n, c) => n + c.lines, 0);
    const linesOf = (set: Set<number>): number => plan.reduce((n, c) => n + (set.has(c.index) ? c.lines : 0), 0);
    const startLines = linesOf(done);
    const t0 = performance.now();
    const progress = options.progress ?? null;
    let failed = new Map<number, { error: string }>();
    const draw = (): void => {
      if (!progress) return;
      const linesDone = linesOf(done);
      const rate = (linesDone - startLines) / Math.max(1e-3, (performance.now() - t0) / 1000);
      const frac = total > 0 ? linesDone / total : 1;
      const eta = rate > 0 ? (total - linesDone) / rate : Infinity;
      progress.write(`\r[${'#'.repeat(Math.round(frac * 24)).padEnd(24, '.')}] ${linesDone}/${total} lines  ${rate.toFixed(0)} lines/s  ETA ${formatDuration(eta)}  chunks ${done.size}/${plan.length}  failed ${failed.size}  `);
      progressShown = true;
    };
    for (;;) {
      done = await store.list();
      try {
        if (reconnected) {
          // A Redis that lost its data (restarted without persistence) lost the run's record and jobs: both again.
          reconnected = false;
          await client.set(key, JSON.stringify(record));
          await enqueueMissing(done);
        }
        const f = await failedJobs();
        failed = new Map([...f].filter(([i]) => !done.has(i)));
      } catch (e) {
        if (!redisDown) throw e;
      }
      draw();
      if (done.size + failed.size >= plan.length || options.signal?.aborted) break;
      await sleep(poll, options.signal);
    }
    if (progressShown && progress) progress.write('\n');
    if (done.size < plan.length) {
      if (failed.size > 0 && !options.signal?.aborted) {
        for (const c of plan) {
          const f = failed.get(c.index);
          if (f) summary.failedChunks.push({ index: c.index, firstLine: c.first, lastLine: c.last, error: f.error });
        }
      } else summary.interrupted = true;
      summary.seconds = (performance.now() - started) / 1000;
      return summary;
    }

    // Merge, in input order, into a private file renamed over the output.
    const mergeStarted = performance.now();
    const tmp = `${output}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    const fh = await fs.promises.open(tmp, 'wx');
    try {
      for (const c of plan) {
        const chunk = decodeChunk(await store.get(c.index), id, c.index);
        let body = chunk.body;
        const errors = [...chunk.errors].sort((a, b) => a.line - b.line);
        let stopAt = -1;
        for (const e of errors) {
          if (options.strict) {
            summary.failed = { line: e.line, message: e.error };
            stopAt = e.line;
            break;
          }
          summary.malformed++;
          log(`line ${e.line}: ${e.error} (skipped)`);
        }
        let records = chunk.records.length;
        if (stopAt >= 0) {
          records = chunk.records.filter((l) => l < stopAt).length;
          let cut = 0;
          for (let k = 0; k < records; k++) cut = body.indexOf(0x0a, cut) + 1;
          body = body.subarray(0, cut);
        }
        let off = 0;
        while (off < body.length) off += (await fh.write(body, off, body.length - off)).bytesWritten;
        summary.written += records;
        if (stopAt >= 0) break;
      }
      await fh.sync();
    } catch (e) {
      await fh.close();
      await fs.promises.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await fs.promises.rename(tmp, output);
    summary.mergeSeconds = (performance.now() - mergeStarted) / 1000;
    await store.remove();
    await client.del(key);
    summary.seconds = (performance.now() - started) / 1000;
    return summary;
  };
  try {
    return await Promise.race([main(), fatal]);
  } finally {
    // Closing waits for Redis; after a fatal error there is none to wait for.
    await Promise.race([queue.close().catch(() => undefined), sleep(2000)]);
    await queue.disconnect().catch(() => undefined);
    unlock();
  }
}
