'use strict';
// Child process of test/worker-threads.test.ts: workers terminated while their networks are busy, workers that exit
// (or throw, or call process.exit) without disposing, and the main thread keeps computing the same answers.
// Prints "main ok after <case>" after each case, then "worker-terminate-child ok"; exits 0.

if (require.main === module && !process.env.RNNKIT_WORKER_CHILD) {
  // Picked up by tap's default file globs: not a test by itself.
  console.log('1..0 # SKIP helper of test/worker-threads.test.ts');
  process.exit(0);
}

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { distIndex, spec, input, target } = require('./worker-job.js');

const lib = require(distIndex);
const jobPath = path.join(__dirname, 'worker-job.js');

const net = new lib.RecurrentNetwork(spec(7));
const reference = Array.from(net.forwardSync(input()).output.data);

async function checkMain(label) {
  const sync = Array.from(net.forwardSync(input()).output.data);
  const promised = Array.from((await net.forward(input())).output.data);
  const same = (a) => a.length === reference.length && a.every((v, i) => v === reference[i]);
  if (!same(sync) || !same(promised)) throw new Error(`main thread output changed after ${label}`);
  // A fresh network on the main thread works too.
  const fresh = new lib.RecurrentNetwork(spec(7));
  if (!same(Array.from(fresh.forwardSync(input()).output.data))) throw new Error(`a new network differs after ${label}`);
  fresh.dispose();
  console.log(`main ok after ${label}`);
}

function start(role) {
  return new Worker(jobPath, { execArgv: [], workerData: { rnnkitWorkerJob: true, role, dist: distIndex } });
}

function nextMessage(worker) {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

function exited(worker) {
  return new Promise((resolve) => worker.once('exit', resolve));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  // Terminated while busy, at different points of the calls in flight.
  for (const delay of [0, 1, 5, 20, 60]) {
    const w = start('busy');
    const exit = exited(w);
    const msg = await nextMessage(w);
    if (!msg.busy) throw new Error('the worker did not report busy');
    if (delay) await sleep(delay);
    await w.terminate();
    const code = await exit;
    console.log(`terminated busy worker (delay ${delay} ms), exit code ${code}`);
    await checkMain(`terminate after ${delay} ms`);
  }

  // Terminated right after it starts (while it may still be loading the addon).
  for (const delay of [0, 2, 10]) {
    const w = start('busy');
    const exit = exited(w);
    w.on('error', () => {});
    if (delay) await sleep(delay);
    await w.terminate();
    await exit;
    await checkMain(`terminate during start-up (${delay} ms)`);
  }

  // Several busy workers terminated at once.
  {
    const workers = [start('busy'), start('busy'), start('busy')];
    await Promise.all(workers.map(nextMessage));
    await Promise.all(workers.map((w) => w.terminate()));
    await checkMain('terminating three busy workers at once');
  }

  // Ends on its own without disposing its networks; its answers match the main thread's.
  {
    const w = start('exit-undisposed');
    const exit = exited(w);
    const msg = await nextMessage(w);
    const code = await exit;
    if (code !== 0) throw new Error(`exit-undisposed worker exited with ${code}`);
    for (let i = 0; i < 4; ++i) {
      const own = new lib.RecurrentNetwork(spec(100 + i));
      own.setOptimizer({ type: 'sgd', lr: 0.1 });
      own.trainStepSync(input(), target());
      const mine = Array.from(own.forwardSync(input()).output.data);
      if (mine.some((v, j) => v !== msg.outputs[i][j])) throw new Error(`worker network ${i} computed something else`);
      own.dispose();
    }
    console.log('exit-undisposed worker exit code 0, outputs match');
    await checkMain('a worker that exits without disposing');
  }

  // process.exit() inside a worker while busy ends only that worker.
  {
    const w = start('process-exit');
    const exit = exited(w);
    await nextMessage(w);
    const code = await exit;
    if (code !== 3) throw new Error(`process-exit worker exited with ${code}, expected 3`);
    console.log('process-exit worker exit code 3');
    await checkMain('process.exit in a busy worker');
  }

  // An uncaught exception in a busy worker.
  {
    const w = start('throw-while-busy');
    const exit = exited(w);
    const error = new Promise((resolve) => w.once('error', resolve));
    await new Promise((resolve) => w.once('message', resolve));
    const err = await error;
    const code = await exit;
    if (!/thrown on purpose/.test(String(err && err.message))) throw new Error(`unexpected worker error ${err}`);
    console.log(`throw-while-busy worker exit code ${code}`);
    await checkMain('an uncaught error in a busy worker');
  }

  net.dispose();
  console.log('worker-terminate-child ok');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
