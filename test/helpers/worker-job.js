'use strict';
// Worker script of test/worker-threads.test.ts (and of worker-terminate-child.js). Loads the compiled package from
// dist/ (a worker cannot run TypeScript) and does what workerData.role says:
//   train            train a network and post { losses, param, output }
//   busy             start long Promise calls, post 'busy', keep the network busy (to be terminated)
//   exit-undisposed  run a few networks, post their outputs, and end without disposing anything
//   process-exit     call process.exit(3) while a Promise call runs
//   throw-while-busy throw an uncaught error while a Promise call runs
// `train` is also exported, so the main thread runs exactly the same code.
const path = require('node:path');
const { isMainThread, parentPort, workerData } = require('node:worker_threads');

const spec = (seed) => ({ cell: 'gru', inputSize: 5, hiddenSize: 16, numLayers: 2, headSize: 4, seed });
const T = 7;
const B = 4;
const input = () => ({
  x: { data: Float32Array.from({ length: T * B * 5 }, (_, i) => Math.sin(i * 0.37)), shape: [T, B, 5] },
  lengths: [7, 5, 7, 3],
});
const target = () => ({ classes: Int32Array.from({ length: T * B }, (_, i) => (i * 3) % 4) });

// mode: 'sync' (trainStepSync), 'async' (trainStep), or 'mixed' (alternating).
async function train(lib, { seed, steps, mode }) {
  const net = new lib.RecurrentNetwork(spec(seed));
  net.setOptimizer({ type: 'adam', lr: 0.02 });
  const losses = [];
  for (let s = 0; s < steps; ++s) {
    const useAsync = mode === 'async' || (mode === 'mixed' && s % 2 === 1);
    const r = useAsync
      ? await net.trainStep(input(), target(), { clipNorm: 1 })
      : net.trainStepSync(input(), target(), { clipNorm: 1 });
    losses.push(r.loss, r.gradNorm);
  }
  const param = Array.from(net.getParam('weight_hh_l1').data);
  const output = Array.from((await net.forward(input())).output.data);
  net.dispose();
  return { losses, param, output };
}

const bigSpec = { cell: 'lstm', inputSize: 64, hiddenSize: 192, numLayers: 2, headSize: 8, seed: 5 };
const bigInput = () => ({
  x: { data: Float32Array.from({ length: 96 * 16 * 64 }, (_, i) => Math.cos(i * 0.001)), shape: [96, 16, 64] },
});
const bigTarget = () => ({ classes: Int32Array.from({ length: 96 * 16 }, (_, i) => i % 8) });

function startBusy(lib) {
  const net = new lib.RecurrentNetwork(bigSpec);
  net.setOptimizer({ type: 'adam' });
  const pending = [];
  for (let i = 0; i < 4; ++i) pending.push(net.trainStep(bigInput(), bigTarget()));
  const raw = new lib.RecurrentNetwork(bigSpec);
  pending.push(raw.forward(bigInput()));
  return pending;
}

async function runWorker() {
  const lib = require(workerData.dist);
  const role = workerData.role || 'train';
  if (role === 'train') {
    parentPort.postMessage({ role, result: await train(lib, workerData) });
  } else if (role === 'busy') {
    const pending = startBusy(lib);
    parentPort.postMessage({ role, busy: true });
    await Promise.allSettled(pending);
    parentPort.postMessage({ role, finished: true });
  } else if (role === 'exit-undisposed') {
    const outputs = [];
    for (let i = 0; i < 4; ++i) {
      const net = new lib.RecurrentNetwork(spec(100 + i));
      net.setOptimizer({ type: 'sgd', lr: 0.1 });
      net.trainStepSync(input(), target());
      outputs.push(Array.from(net.forwardSync(input()).output.data));
    }
    parentPort.postMessage({ role, outputs });
    // ...and ends here, with four networks never disposed.
  } else if (role === 'process-exit') {
    startBusy(lib);
    parentPort.postMessage({ role, busy: true });
    process.exit(3);
  } else if (role === 'throw-while-busy') {
    startBusy(lib);
    parentPort.postMessage({ role, busy: true });
    throw new Error('thrown on purpose while busy');
  } else {
    throw new Error(`unknown role ${role}`);
  }
}

if (!isMainThread && workerData && workerData.rnnkitWorkerJob) {
  runWorker().catch((err) => {
    // Uncaught on purpose for throw-while-busy: the worker's 'error' event reports it.
    setImmediate(() => {
      throw err;
    });
  });
} else if (require.main === module) {
  // Picked up by tap's default file globs: not a test by itself.
  console.log('1..0 # SKIP helper of test/worker-threads.test.ts');
}

module.exports = { train, spec, input, target, distIndex: path.join(__dirname, '..', '..', 'dist', 'index.js') };
