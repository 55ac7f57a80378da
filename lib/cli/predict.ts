// `rnnkit predict MODEL --input FILE.jsonl --output FILE.jsonl`: the batch runner (lib/batch/) on one machine, or
// its chunks queued for `rnnkit worker` processes with --queue.
import { runBatch, type BatchOptions } from '../batch/runner';
import type { DistributedBatchOptions } from '../batch/distributed/producer';

export const help = `usage: rnnkit predict MODEL --input FILE.jsonl --output FILE.jsonl [options]

Predicts the next symbol after each sequence of a JSON-lines file, one object per line: {"id": ..., "text": "..."}
(a model trained by 'rnnkit train') or {"id": ..., "tokens": [ids]} ("id" optional). Writes one line per input
line, in order: {"id": ..., "line": N, "prediction": {"next": {"token", "id", "p"}, "top": [...]}}.
Worker threads share the work; each chunk of lines is appended with one write and an fsync. An interrupted run
(^C, a crash) is resumed by running the same command again: it cuts a partial last line, then goes on after the
last line written, so every input line is in the output exactly once.

options:
  --input FILE         JSON-lines input (required)
  --output FILE        JSON-lines output, appended to when it exists (required)
  --workers N          worker threads, each with its own model; 0: none (default: the CPU count, at most 8)
  --chunk N            lines per chunk: the unit of work and of each append (default 256)
  --top-k N            most likely symbols listed per line (default 5)
  --max-tokens N       longest sequence accepted (default 100000)
  --threads N          native threads (default: all cores)
  --strict             stop at the first malformed line (exit status 1) instead of reporting and skipping it
  --quiet              no progress or messages on stderr
  --queue URL          distributed run: queue the chunks on BullMQ at redis://[:PASSWORD@]HOST:PORT[/DB] (rediss://
                       for TLS) for 'rnnkit worker' processes on any machine, wait, then merge them into --output (the
                       same bytes as a single-machine run). MODEL, --input and the directory of --output must be at
                       the same paths on every machine (a shared filesystem). The same command resumes the run.
                       Needs the npm package bullmq.
  --queue-name NAME    BullMQ queue name (default rnnkit-predict)
`;

/** The predict command: returns the exit status (0 done, 1 failed or a --strict stop, 2 usage, 130 interrupted). */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help);
    return 0;
  }
  const { parseArgs } = await import('node:util');
  const usage = (msg: string): number => {
    process.stderr.write(`rnnkit: ${msg}\nRun 'rnnkit predict --help' for the options.\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        input: { type: 'string', short: 'i' }, output: { type: 'string', short: 'o' }, workers: { type: 'string' },
        chunk: { type: 'string' }, 'top-k': { type: 'string' }, 'max-tokens': { type: 'string' }, threads: { type: 'string' },
        strict: { type: 'boolean' }, quiet: { type: 'boolean' }, queue: { type: 'string' }, 'queue-name': { type: 'string' },
      },
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usage('predict needs one MODEL argument (a model.safetensors or its directory)');
  if (!values.input) return usage('predict needs --input FILE.jsonl');
  if (!values.output) return usage('predict needs --output FILE.jsonl');
  const int = (v: string | undefined, name: string, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  if (values.queue !== undefined && values.workers !== undefined) return usage("--workers is for the single-machine run; with --queue, give it to 'rnnkit worker'");
  let opts: BatchOptions;
  try {
    opts = {
      model: positionals[0], input: values.input, output: values.output,
      workers: int(values.workers, 'workers', 0), chunkLines: int(values.chunk, 'chunk', 1),
      topK: int(values['top-k'], 'top-k', 1), maxTokens: int(values['max-tokens'], 'max-tokens', 1),
      strict: values.strict ?? false,
    };
    const threads = int(values.threads, 'threads', 1);
    if (threads !== undefined) (await import('../index')).setThreads(threads);
  } catch (e) {
    return usage((e as Error).message);
  }
  const quiet = values.quiet ?? false;
  opts.progress = !quiet && process.stderr.isTTY ? process.stderr : null;
  if (quiet) opts.log = () => undefined;
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) process.exit(130); // a second ^C: stop now (what is written stays valid)
    if (!quiet) process.stderr.write('\nrnnkit: interrupted: writing the chunks in flight (^C again to stop now)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  opts.signal = controller.signal;
  try {
    if (values.queue !== undefined) {
      const { workers: _local, ...shared } = opts; // worker threads are the workers' own (--workers was refused above)
      return await distributedPredict(shared, values.queue, values['queue-name'], quiet);
    }
    const s = await runBatch(opts);
    const say = (line: string): void => {
      if (!quiet) process.stderr.write(line + '\n');
    };
    if (s.failed) {
      process.stderr.write(`rnnkit: line ${s.failed.line}: ${s.failed.message} (--strict: stopped; lines before it are written)\n`);
      return 1;
    }
    const what = `${s.written} prediction(s) written, ${s.malformed} malformed line(s) skipped, in ${s.seconds.toFixed(1)} s`;
    if (s.interrupted) {
      say(`rnnkit: interrupted after input line ${s.lastLine}: ${what}; run the same command again to resume`);
      return 130;
    }
    say(`rnnkit: ${what}${s.resumedAfter ? ` (resumed after line ${s.resumedAfter})` : ''}`);
    return 0;
  } catch (e) {
    process.stderr.write(`rnnkit: ${(e as Error).message}${(e as { code?: string }).code?.startsWith('ERR_RNNKIT') ? ` (${(e as { code: string }).code})` : ''}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** `rnnkit predict ... --queue URL`: the exit status (0 merged, 1 failed chunks or a strict stop, 130 interrupted). */
async function distributedPredict(opts: Omit<DistributedBatchOptions, 'queue'>, queue: string, queueName: string | undefined, quiet: boolean): Promise<number> {
  const say = (line: string): void => {
    if (!quiet) process.stderr.write(line + '\n');
  };
  const { runDistributedBatch } = await import('../batch/distributed/producer');
  const s = await runDistributedBatch({ ...opts, queue, queueName });
  if (s.failedChunks.length > 0) {
    for (const f of s.failedChunks) process.stderr.write(`rnnkit: chunk ${f.index} (lines ${f.firstLine}-${f.lastLine}) failed: ${f.error}\n`);
    process.stderr.write(`rnnkit: run ${s.run}: ${s.failedChunks.length} of ${s.chunks} chunk(s) failed; nothing merged. Fix the cause and run the same command again: it retries them and keeps the chunks done\n`);
    return 1;
  }
  if (s.interrupted) {
    say(`rnnkit: stopped waiting for run ${s.run}; its chunks stay queued: run the same command again to wait for it and merge`);
    return 130;
  }
  if (s.failed) {
    process.stderr.write(`rnnkit: line ${s.failed.line}: ${s.failed.message} (--strict: stopped; lines before it are written)\n`);
    return 1;
  }
  say(`rnnkit: ${s.written} prediction(s) written, ${s.malformed} malformed line(s) skipped, ${s.chunks} chunk(s) of run ${s.run}${s.resumed ? ' (resumed)' : ''}, in ${s.seconds.toFixed(1)} s (merge ${s.mergeSeconds.toFixed(2)} s)`);
  return 0;
}
