// The addon in worker_threads: every worker gets its own instance of the module, networks in workers compute exactly
// what they compute on the main thread (also while several workers train at once), and workers that are terminated
// while busy, or end without disposing, leave the process and the main thread working.
// Workers cannot run TypeScript: they load the compiled package from dist/ (run `npx tsc -p .` first).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';

const jobPath = path.join(__dirname, 'helpers', 'worker-job.js');
const childPath = path.join(__dirname, 'helpers', 'worker-terminate-child.js');
const distIndex = path.join(__dirname, '..', 'dist', 'index.js');
const distBuilt = fs.existsSync(distIndex);
const skip = distBuilt ? false : 'dist/index.js is missing: run `npx tsc -p .` first';

interface TrainResult {
  losses: number[];
  param: number[];
  output: number[];
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const job = require(jobPath) as {
  train(lib: unknown, opts: { seed: number; steps: number; mode: 'sync' | 'async' | 'mixed' }): Promise<TrainResult>;
};

function runWorker(workerData: Record<string, unknown>): Promise<{ message: { result: TrainResult }; code: number }> {
  return new Promise((resolve, reject) => {
    // execArgv: [] keeps tap's loaders (TypeScript, coverage) out of the worker, which only needs plain Node.
    const w = new Worker(jobPath, { execArgv: [], workerData: { rnnkitWorkerJob: true, dist: distIndex, ...workerData } });
    let message: { result: TrainResult } | undefined;
    w.once('message', (m) => {
      message = m;
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (message) resolve({ message, code });
      else reject(new Error(`worker exited with ${code} before posting its result`));
    });
  });
}

t.test('networks trained in workers equal the same run on the main thread', { skip }, async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const lib = require(distIndex);
  const steps = 6;
  const reference = await job.train(lib, { seed: 123, steps, mode: 'sync' });
  t.equal(reference.losses.length, 2 * steps, 'a loss and a gradient norm per step');
  t.ok(reference.losses[2 * (steps - 1)] < reference.losses[0], 'training lowers the loss');
  const asyncOnMain = await job.train(lib, { seed: 123, steps, mode: 'async' });
  t.same(asyncOnMain, reference, 'trainStep and trainStepSync agree on the main thread');

  // Three workers at once, with the same seed and data, one per form of the call.
  const modes = ['sync', 'async', 'mixed'] as const;
  const runs = await Promise.all(modes.map((mode) => runWorker({ role: 'train', seed: 123, steps, mode })));
  runs.forEach(({ message, code }, i) => {
    t.equal(code, 0, `worker ${modes[i]} exits with 0`);
    t.same(message.result.losses, reference.losses, `worker ${modes[i]}: the same losses and gradient norms`);
    t.same(message.result.param, reference.param, `worker ${modes[i]}: the same weight_hh_l1`);
    t.same(message.result.output, reference.output, `worker ${modes[i]}: the same output afterwards`);
  });

  // While the main thread trains too, and a worker with another seed gets another answer.
  const [again, other, onMain] = await Promise.all([
    runWorker({ role: 'train', seed: 123, steps, mode: 'async' }),
    runWorker({ role: 'train', seed: 124, steps, mode: 'async' }),
    job.train(lib, { seed: 123, steps, mode: 'async' }),
  ]);
  t.same(again.message.result, reference, 'a worker running beside main-thread training');
  t.same(onMain, reference, 'main-thread training running beside workers');
  t.not(other.message.result.losses[0], reference.losses[0], 'another seed gives another loss');
});

t.test('the addon loads again in a new worker after others have ended', { skip }, async (t) => {
  for (let i = 0; i < 3; ++i) {
    const { message, code } = await runWorker({ role: 'train', seed: 5, steps: 1, mode: 'sync' });
    t.equal(code, 0, `worker ${i} exits with 0`);
    t.equal(message.result.losses.length, 2, `worker ${i} trained`);
  }
});

t.test('terminated and abandoned workers leave the process working', { skip }, async (t) => {
  const run = spawnSync(process.execPath, [childPath], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, NODE_OPTIONS: '', RNNKIT_WORKER_CHILD: '1' }, // plain Node: no tap loaders
  });
  t.equal(run.signal, null, `the child was not killed by a signal (stderr: ${run.stderr})`);
  t.equal(run.status, 0, `the child exits with 0 (stderr: ${run.stderr})`);
  const out = run.stdout;
  for (const delay of [0, 1, 5, 20, 60]) {
    t.match(out, new RegExp(`terminated busy worker \\(delay ${delay} ms\\)`), `a worker terminated ${delay} ms after it was busy`);
    t.match(out, new RegExp(`main ok after terminate after ${delay} ms`), `... and the main thread still works`);
  }
  for (const delay of [0, 2, 10]) t.match(out, `main ok after terminate during start-up (${delay} ms)`, `terminated during start-up (${delay} ms)`);
  t.match(out, 'main ok after terminating three busy workers at once', 'three busy workers terminated at once');
  t.match(out, 'exit-undisposed worker exit code 0, outputs match', 'a worker ending without dispose computed the right outputs');
  t.match(out, 'main ok after a worker that exits without disposing', '... and the main thread still works');
  t.match(out, 'process-exit worker exit code 3', 'process.exit() in a busy worker ends only that worker');
  t.match(out, 'main ok after process.exit in a busy worker', '... and the main thread still works');
  t.match(out, 'main ok after an uncaught error in a busy worker', 'an uncaught error in a busy worker');
  t.match(out, /worker-terminate-child ok\s*$/, 'the child ran to the end');
  t.notMatch(run.stderr, /terminate called|Aborted|FATAL|Segmentation|AddressSanitizer/, 'nothing about a crash on stderr');
});
