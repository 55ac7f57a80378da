// `rnnkit worker --queue URL`: takes the chunks of distributed `rnnkit predict --queue` runs (lib/batch/distributed/).
import { runWorker, type WorkerOptions } from '../batch/distributed/worker';
import { parseRedisUrl } from '../batch/distributed/connection';
import { DEFAULT_QUEUE_NAME } from '../batch/distributed/run';

export const help = `usage: rnnkit worker --queue redis://HOST:PORT [options]

Takes chunk jobs of distributed 'rnnkit predict --queue' runs, predicts them with every local core, and stores each
chunk's output in the run's OUTPUT.parts/ directory (shared filesystem). Runs until ^C or SIGTERM, which finish the
chunks in progress first. A worker that dies mid-chunk loses nothing: after --lock-ms another worker takes the chunk
again. Needs the npm package bullmq.

options:
  --queue URL          redis://[[USER]:PASSWORD@]HOST:PORT[/DB], or rediss://... for TLS (required)
  --queue-name NAME    BullMQ queue name (default rnnkit-predict)
  --workers N          worker threads, each with its own model; two chunks per thread are taken at once
                       (default: the CPU count, at most 8)
  --threads N          native threads (default: all cores)
  --allow DIR          refuse runs whose model, input or output lie outside DIR (repeatable)
  --lock-ms N          a chunk whose worker went silent this long is taken again (default 30000)
  --stalled-check-ms N how often to look for such chunks (default 30000)
  --max-stalls N       times a chunk is taken back from a worker that died on it; at the next death it fails
                       (default 2)
  --verbose            a line per chunk taken
  --quiet              no messages on stderr
`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help);
    return 0;
  }
  const { parseArgs } = await import('node:util');
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        queue: { type: 'string' }, 'queue-name': { type: 'string' }, workers: { type: 'string' }, threads: { type: 'string' },
        allow: { type: 'string', multiple: true }, 'lock-ms': { type: 'string' }, 'stalled-check-ms': { type: 'string' },
        'max-stalls': { type: 'string' }, verbose: { type: 'boolean' }, quiet: { type: 'boolean' },
      },
    }));
  } catch (e) {
    process.stderr.write(`rnnkit: ${(e as Error).message}\nRun 'rnnkit worker --help' for the options.\n`);
    return 2;
  }
  const usage = (m: string): number => {
    process.stderr.write(`rnnkit: ${m}\nRun 'rnnkit worker --help' for the options.\n`);
    return 2;
  };
  if (!values.queue) return usage('worker needs --queue redis://HOST:PORT');
  const count = (v: string | undefined, name: string, min = 1): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= 1, got '${v}'`);
    return n;
  };
  let workers: number | undefined;
  let timing: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>;
  try {
    workers = count(values.workers, 'workers');
    timing = {
      lockDuration: count(values['lock-ms'], 'lock-ms', 100), stalledInterval: count(values['stalled-check-ms'], 'stalled-check-ms', 100),
      maxStalledCount: count(values['max-stalls'], 'max-stalls', 0),
    };
    const threads = count(values.threads, 'threads');
    if (threads !== undefined) (await import('../index')).setThreads(threads);
    parseRedisUrl(values.queue);
  } catch (e) {
    return usage((e as Error).message);
  }
  const quiet = values.quiet ?? false;
  const log = quiet ? () => undefined : (s: string) => process.stderr.write(s + '\n');
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) process.exit(130);
    log('rnnkit worker: stopping after the chunks in progress (^C again to stop now)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    log(`rnnkit worker: taking chunks from ${parseRedisUrl(values.queue).display} (queue ${values['queue-name'] ?? DEFAULT_QUEUE_NAME})`);
    const s = await runWorker({
      queue: values.queue, queueName: values['queue-name'], workers, allow: values.allow, log, signal: controller.signal,
      ...timing,
      onChunk: values.verbose ? (c) => {
        log(`rnnkit worker: run ${c.run} chunk ${c.index} (${c.lines} lines)`);
      } : undefined,
    });
    log(`rnnkit worker: stopped; ${s.completed} chunk(s) done (${s.lines} lines), ${s.failed} failed`);
    return 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    process.stderr.write(`rnnkit: ${(e as Error).message}${code?.startsWith('ERR_RNNKIT') ? ` (${code})` : ''}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
