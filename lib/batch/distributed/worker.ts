// A worker of distributed batch predictions (`rnnkit worker --queue redis://...`): takes chunk jobs from the BullMQ
// queue, predicts them with the single-machine runner's machinery (worker threads, each with its own model, on every
// local core), stores each chunk's output atomically in the run's chunk store, then completes the job.
//
// Faults: a worker that dies mid-chunk holds the job's lock until it expires; another worker's stalled-job check then
// puts the job back, and it is predicted again (the store's put replaces, and every copy holds the same bytes). A
// chunk that keeps killing workers fails after maxStalledCount stalls; one that keeps throwing, after the job's
// attempts. Nothing from the queue runs as code: jobs and run records are JSON, checked field by field, and the only
// files a job can make a worker read or write are the run's model, input and chunk store.
import * as fs from 'node:fs';
import { defaultWorkers, startExecutor, type Executor, type LineResult } from '../runner';
import { rnnkitError } from '../../errors';
import { checkOptions } from '../../options';
import { readLines, type ChunkLine } from '../jsonl';
import { fatalRedisError, loadBullMQ, parseRedisUrl, waitForRedis } from './connection';
import { DEFAULT_QUEUE_NAME, checkAllowed, checkJob, encodeChunk, parseRunRecord, runKey, sha256File, type RunRecord } from './run';
import { openStore } from './store';

export interface WorkerOptions {
  /** redis://[[USER]:PASSWORD@]HOST:PORT[/DB], or rediss://... for TLS. */
  queue: string;
  /** BullMQ queue name (default 'rnnkit-predict'); producer and workers must agree. */
  queueName?: string;
  /** BullMQ key prefix (default 'bull'). */
  prefix?: string;
  /** Worker threads, each with its own model (default: the CPU count, at most 8); twice as many chunks are taken at once. */
  workers?: number;
  /** When given, refuse runs whose model, input or output lie outside these directories. */
  allow?: string[];
  /** How long a job stays locked without a heartbeat before another worker may take it (ms, default 30000). */
  lockDuration?: number;
  /** How often this worker looks for stalled jobs (ms, default 30000). */
  stalledInterval?: number;
  /** Times a chunk is taken back from a worker that died on it; at the next such death it fails (default 2). */
  maxStalledCount?: number;
  /** Called as a chunk starts (after its checks), before it is predicted. */
  onChunk?: (chunk: { run: string; index: number; lines: number }) => void | Promise<void>;
  /** Messages (default: stderr). */
  log?: (line: string) => void;
  /** Stop: finish the chunks in progress, then resolve. */
  signal?: AbortSignal;
}

export interface WorkerSummary {
  /** Chunks this worker completed, and failed (refused or thrown). */
  completed: number;
  failed: number;
  lines: number;
}

interface ModelSlot {
  key: string;
  exec: Promise<Executor>;
  /** The model file's size, mtime and inode when its checksum was verified. */
  verified: string;
  busy: number;
  used: number;
}

const statKey = (st: fs.Stats): string => `${st.size}:${st.mtimeMs}:${st.ino}`;

/** Run a worker until `signal` aborts. */
export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  checkOptions(options, 'runWorker options', ['queue', 'queueName', 'prefix', 'workers', 'allow', 'lockDuration', 'stalledInterval',
    'maxStalledCount', 'onChunk', 'log', 'signal']);
  const { Worker, UnrecoverableError } = loadBullMQ();
  const log = options.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const { connection, display, stopRetrying } = parseRedisUrl(options.queue);
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  const prefix = options.prefix ?? 'bull';
  const threads = options.workers ?? defaultWorkers();
  if (!Number.isInteger(threads) || threads < 1) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `workers must be an integer >= 1, got ${String(options.workers)}`);
  const summary: WorkerSummary = { completed: 0, failed: 0, lines: 0 };
  const runs = new Map<string, RunRecord>();
  const models = new Map<string, Promise<ModelSlot>>();
  let clock = 0;

  const refuse = (e: unknown): never => {
    // Refusals and a wrong model are not retried: another attempt would meet the same.
    const code = (e as { code?: string }).code;
    if (code === 'ERR_RNNKIT_REFUSED' || code === 'ERR_RNNKIT_MODEL_MISMATCH') {
      const u = new UnrecoverableError(`${(e as Error).message} (${code})`);
      throw u;
    }
    throw e;
  };

  const runRecord = async (id: string): Promise<RunRecord> => {
    const known = runs.get(id);
    if (known) return known;
    const client = await worker.client;
    const text = await client.get(runKey(prefix, queueName, id));
    if (text === null) throw rnnkitError('ERR_RNNKIT_REFUSED', `run ${id} has no record in Redis (finished, or not made by 'rnnkit predict --queue')`);
    const rec = parseRunRecord(text, id);
    checkAllowed(rec, options.allow);
    runs.set(id, rec);
    return rec;
  };

  /** The model file's checksum against the run's; the file's size, mtime and inode when it matched. */
  const verify = async (run: RunRecord): Promise<string> => {
    const st = await fs.promises.stat(run.model).catch(() => undefined);
    if (!st?.isFile()) throw rnnkitError('ERR_RNNKIT_REFUSED', `run ${run.id}: its model ${run.model} is not a file on this machine`);
    const sha = await sha256File(run.model);
    if (sha !== run.modelSha256)
      throw rnnkitError('ERR_RNNKIT_MODEL_MISMATCH', `run ${run.id}: ${run.model} on this machine has SHA-256 ${sha.slice(0, 12)}..., the run was made with ${run.modelSha256.slice(0, 12)}...`);
    return statKey(st);
  };

  /**
   * The executor for the run's model, after checking the file is the one the run names. One promise per model, made
   * before the first await, so that chunks arriving together share one executor.
   */
  const modelFor = async (run: RunRecord): Promise<ModelSlot> => {
    const key = `${run.model}\0${run.modelSha256}\0${run.topK}\0${run.maxTokens}`;
    let pending = models.get(key);
    if (!pending) {
      pending = verify(run).then((verified): ModelSlot => ({
        key, verified, busy: 0, used: 0,
        exec: startExecutor(threads, { rnnkitBatchWorker: true, model: run.model, topK: run.topK, maxTokens: run.maxTokens }),
      }));
      models.set(key, pending);
      pending.then((s) => s.exec).catch(() => models.delete(key));
    }
    const slot = await pending;
    // The file may have been replaced since: check again when its size, mtime or inode changed.
    const st = await fs.promises.stat(run.model).catch(() => undefined);
    if (!st || statKey(st) !== slot.verified) slot.verified = await verify(run);
    slot.used = ++clock;
    // Keep the two models used last; close an idle older one.
    if (models.size > 2) {
      const settled = (await Promise.all([...models.values()].map((p) => p.catch(() => undefined)))).filter((x): x is ModelSlot => !!x);
      const idle = settled.filter((x) => x.busy === 0 && x !== slot).sort((a, b) => a.used - b.used)[0];
      if (idle) {
        models.delete(idle.key);
        void idle.exec.then((e) => e.close(), () => undefined);
      }
    }
    return slot;
  };

  const processor = async (job: { id?: string; data: unknown }): Promise<{ written: number; malformed: number }> => {
    let rec: RunRecord;
    let chunk;
    let slot: ModelSlot;
    try {
      const runId = (job.data as { run?: unknown } | null)?.run;
      if (typeof runId !== 'string' || !/^[0-9a-f]{16,64}$/.test(runId)) throw rnnkitError('ERR_RNNKIT_REFUSED', `job ${String(job.id)} names no run`);
      rec = await runRecord(runId);
      chunk = checkJob(job.data, rec);
      slot = await modelFor(rec);
    } catch (e) {
      return refuse(e);
    }
    const lines: ChunkLine[] = [];
    for await (const l of readLines(rec.input, { start: chunk.start, end: chunk.end, firstLine: chunk.firstLine })) {
      if (l.text.trim() !== '') lines.push({ line: l.line, text: l.text });
      if (lines.length > rec.chunkLines) refuse(rnnkitError('ERR_RNNKIT_REFUSED', `job ${rec.id}/${chunk.index}: its range holds more than ${rec.chunkLines} lines`));
    }
    await options.onChunk?.({ run: rec.id, index: chunk.index, lines: lines.length });
    slot.busy++;
    let results: LineResult[];
    try {
      results = await (await slot.exec).run(chunk.index, lines);
    } finally {
      slot.busy--;
    }
    const records: string[] = [];
    const recordLines: number[] = [];
    const errors: { line: number; error: string }[] = [];
    for (const r of results) {
      if ('error' in r) errors.push({ line: r.line, error: r.error });
      else {
        records.push(r.out);
        recordLines.push(r.line);
      }
    }
    // A stalled copy of a chunk (its first worker lost its lock, then finished) may end after the producer merged the
    // run and removed its record and store: drop it rather than write into a run that is over.
    if ((await (await worker.client).get(runKey(prefix, queueName, rec.id))) === null) return { written: 0, malformed: 0 };
    await openStore(rec.store).put(chunk.index, encodeChunk({ run: rec.id, index: chunk.index, records: recordLines, errors }, records));
    summary.lines += lines.length;
    return { written: records.length, malformed: errors.length };
  };

  await waitForRedis(connection, display, log, options.signal);
  const worker = new Worker(queueName, processor, {
    // Two chunks per thread, as the single-machine runner keeps in flight: one chunk's reading, storing and job
    // bookkeeping overlap another's prediction, so the threads do not wait on Redis or the filesystem.
    connection, prefix, concurrency: 2 * threads, autorun: false,
    lockDuration: options.lockDuration ?? 30000,
    stalledInterval: options.stalledInterval ?? 30000,
    maxStalledCount: options.maxStalledCount ?? 2,
  });
  let connected = true;
  let fatal: Error | undefined;
  worker.on('error', (e: Error) => {
    const f = fatalRedisError(e, display);
    if (f && !fatal) {
      fatal = f;
      stopRetrying();
      void worker.close(true);
    } else if (connected && !f) log(`rnnkit worker: Redis at ${display}: ${e.message}; reconnecting`);
    connected = false;
  });
  worker.on('completed', () => {
    summary.completed++;
    connected = true;
  });
  worker.on('failed', (job: { id?: string } | undefined, e: Error) => {
    summary.failed++;
    log(`rnnkit worker: job ${job?.id ?? '?'} failed: ${e.message}`);
  });
  // Without Redis, a graceful close would wait for it: force it then.
  const stop = (): void => void worker.close(!connected);
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    await worker.run();
  } finally {
    options.signal?.removeEventListener('abort', stop);
    await worker.close();
    for (const p of models.values()) await p.then((s) => s.exec).then((e) => e.close(), () => undefined);
  }
  if (fatal) throw fatal;
  return summary;
}
