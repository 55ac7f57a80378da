// What a distributed run records in Redis and what its jobs and chunk files hold; one owner for the checks that a
// worker applies to everything it reads from the queue (plain JSON data, never code; files only those the run
// named).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rnnkitError } from '../../errors';
import type { StoreSpec } from './store';

/** The run's record, written once by the producer under runKey(). */
export interface RunRecord {
  version: 1;
  id: string;
  /** Absolute path of the model file, and the SHA-256 of its bytes: workers refuse another file. */
  model: string;
  modelSha256: string;
  /** Absolute path of the input, and its size when the run was made. */
  input: string;
  inputSize: number;
  /** Absolute path of the merged output. */
  output: string;
  store: StoreSpec;
  chunkLines: number;
  topK: number;
  maxTokens: number;
  chunks: number;
}

/** A chunk job: which bytes of the run's input to predict. */
export interface ChunkJob {
  run: string;
  index: number;
  input: string;
  start: number;
  end: number;
  firstLine: number;
}

export const DEFAULT_QUEUE_NAME = 'rnnkit-predict';

/** The Redis key of a run's record (beside the queue's own keys). */
export const runKey = (prefix: string, queueName: string, id: string): string => `${prefix}:${queueName}:rnnkit-run:${id}`;

/** A chunk's job id: adding it twice (a resumed producer) adds nothing. */
export const jobId = (run: string, index: number): string => `${run}-${index}`;

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const piece of fs.createReadStream(file) as AsyncIterable<Buffer>) h.update(piece);
  return h.digest('hex');
}

function refuse(message: string): Error {
  return rnnkitError('ERR_RNNKIT_REFUSED', message);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isAbsolute = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length < 4096 && path.isAbsolute(v) && path.normalize(v) === v && !v.includes('\0');

/** Check a run record read from Redis (JSON text). */
export function parseRunRecord(text: string, id: string): RunRecord {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw refuse(`run ${id}: its record is not JSON`);
  }
  const ok =
    isObject(r) && r.version === 1 && r.id === id && isAbsolute(r.model) && typeof r.modelSha256 === 'string' && /^[0-9a-f]{64}$/.test(r.modelSha256) &&
    isAbsolute(r.input) && isCount(r.inputSize) && isAbsolute(r.output) && isObject(r.store) && r.store.type === 'directory' && isAbsolute(r.store.path) &&
    isCount(r.chunkLines, 1) && isCount(r.topK, 1) && isCount(r.maxTokens, 1) && isCount(r.chunks);
  if (!ok) throw refuse(`run ${id}: its record is malformed`);
  const rec = r as unknown as RunRecord;
  if (rec.store.path !== `${rec.output}.parts`) throw refuse(`run ${id}: its chunk store ${rec.store.path} is not beside its output ${rec.output}`);
  return rec;
}

/** Check a job's data against its run: the only file a job may name is the run's input, within its size. */
export function checkJob(data: unknown, run: RunRecord): ChunkJob {
  if (!isObject(data)) throw refuse('a job without data');
  const keys = Object.keys(data).sort().join(',');
  if (keys !== 'end,firstLine,index,input,run,start') throw refuse(`a job with unexpected fields (${keys})`);
  const j = data as unknown as ChunkJob;
  if (j.input !== run.input) throw refuse(`job ${j.run}/${String(j.index)} names the file ${JSON.stringify(j.input)}, which is not the run's input (${run.input})`);
  if (!isCount(j.index) || j.index >= run.chunks) throw refuse(`job ${j.run}: chunk index ${JSON.stringify(j.index)} is not one of the run's ${run.chunks} chunks`);
  if (!isCount(j.start) || !isCount(j.end) || j.end <= j.start || j.end > run.inputSize || !isCount(j.firstLine, 1))
    throw refuse(`job ${j.run}/${j.index}: byte range ${JSON.stringify([j.start, j.end])} or first line ${JSON.stringify(j.firstLine)} outside the run's input`);
  return j;
}

/** Refuse files outside the directories a worker was allowed to use (when it was given any). */
export function checkAllowed(run: RunRecord, allow: string[] | undefined): void {
  if (!allow || allow.length === 0) return;
  const inside = (file: string): boolean => allow.some((dir) => {
    const rel = path.relative(path.resolve(dir), file);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
  for (const [what, file] of [['model', run.model], ['input', run.input], ['output', run.store.path]] as const)
    if (!inside(file)) throw refuse(`run ${run.id}: its ${what} ${file} is outside the directories this worker may use (${allow.join(', ')})`);
}

/**
 * A chunk's output as stored: one JSON header line ({"run", "index", "records": [line numbers], "errors": [{"line",
 * "error"}]}), then the chunk's output records, each ending with "\n", exactly as the merged output holds them.
 */
export interface ChunkOutput {
  run: string;
  index: number;
  records: number[];
  errors: { line: number; error: string }[];
  body: Buffer;
}

export function encodeChunk(c: Omit<ChunkOutput, 'body'>, records: string[]): Buffer {
  const header = JSON.stringify({ run: c.run, index: c.index, records: c.records, errors: c.errors });
  return Buffer.from(header + '\n' + records.map((r) => r + '\n').join(''), 'utf8');
}

export function decodeChunk(buf: Buffer, run: string, index: number): ChunkOutput {
  const nl = buf.indexOf(0x0a);
  let h: unknown;
  try {
    h = JSON.parse(buf.toString('utf8', 0, nl < 0 ? buf.length : nl));
  } catch {
    h = undefined;
  }
  if (nl < 0 || !isObject(h) || h.run !== run || h.index !== index || !Array.isArray(h.records) || !Array.isArray(h.errors))
    throw rnnkitError('ERR_RNNKIT_FORMAT', `chunk ${index} of run ${run}: its stored output is damaged`);
  return { run, index, records: h.records as number[], errors: h.errors as ChunkOutput['errors'], body: buf.subarray(nl + 1) };
}
