'use strict';
// Child process of test/lifetime.test.ts (run with --expose-gc): networks created and dropped without dispose()
// are freed by the garbage collector, and their native memory with them; the process exits cleanly even when a
// Promise call is still running. Prints one JSON line of measurements, then "lifetime-gc-child ok".
//
// Modes (argv[2]): "gc" (default), "exit-while-busy" (process.exit() while a Promise call runs).

if (require.main === module && !process.env.RNNKIT_LIFETIME_CHILD) {
  // Picked up by tap's default file globs: not a test by itself.
  console.log('1..0 # SKIP helper of test/lifetime.test.ts');
  process.exit(0);
}

const path = require('node:path');
const { native } = require(path.join(__dirname, '..', '..', 'dist', 'native.js'));

const mode = process.argv[2] || 'gc';
const spec = { cell: 'lstm', inputSize: 32, hiddenSize: 96, headSize: 8, seed: 1 };
const T = 6;
const B = 4;
const x = { data: Float32Array.from({ length: T * B * 32 }, (_, i) => Math.sin(i)), shape: [T, B, 32] };
const classes = Int32Array.from({ length: T * B }, (_, i) => i % 8);

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function collect() {
  for (let i = 0; i < 12; ++i) {
    global.gc();
    await tick();
  }
}

async function gcMode() {
  if (typeof global.gc !== 'function') throw new Error('run with --expose-gc');
  const reference = new native.Network(spec).forwardSync({ x }).output.data;
  const big = { cell: 'lstm', inputSize: 256, hiddenSize: 256, seed: 2 }; // ~4 MB of parameters and gradients
  const bx = { data: new Float32Array(2 * 2 * 256).fill(0.5), shape: [2, 2, 256] };
  let collected = 0;
  const registry = new FinalizationRegistry(() => {
    collected += 1;
  });
  // Warm up the allocator and V8 with a few, then measure.
  for (let i = 0; i < 4; ++i) new native.Network(big).forwardSync({ x: bx });
  await collect();
  const base = process.memoryUsage().rss;

  // 100 networks of ~4 MB each, created and dropped without dispose(): ~400 MB if none were ever freed.
  let bytesEach = 0;
  let peak = 0;
  const created = 100;
  for (let i = 0; i < created; ++i) {
    const n = new native.Network(big);
    n.forwardSync({ x: bx });
    bytesEach = n.memoryBytes();
    registry.register(n, i);
    if (i % 10 === 9) {
      await collect();
      peak = Math.max(peak, process.memoryUsage().rss - base);
    }
  }
  await collect();
  const growth = process.memoryUsage().rss - base;

  // Networks with optimizer state, trained, never disposed.
  for (let i = 0; i < 20; ++i) {
    const n = new native.Network(spec);
    n.setOptimizer({ type: 'adam', lr: 0.01 });
    n.trainStepSync({ x }, { classes });
    registry.register(n, 1000 + i);
  }

  // Networks dropped while a Promise call runs: the call still settles with the right answer.
  const pending = [];
  for (let i = 0; i < 8; ++i) {
    const n = new native.Network(spec);
    registry.register(n, 2000 + i);
    pending.push(n.forward({ x }));
  }
  global.gc();
  const results = await Promise.all(pending);
  const sameAsReference = results.every((r) => r.output.data.every((v, j) => v === reference[j]));

  // Disposed, then collected (the finalizer must not free twice); and disposed while busy, then collected.
  for (let i = 0; i < 8; ++i) {
    const n = new native.Network(spec);
    registry.register(n, 3000 + i);
    n.dispose();
  }
  const busyDisposed = [];
  for (let i = 0; i < 8; ++i) {
    const n = new native.Network(spec);
    registry.register(n, 4000 + i);
    busyDisposed.push(n.forward({ x }));
    n.dispose();
  }
  const afterDispose = await Promise.all(busyDisposed);
  const disposedResultsRight = afterDispose.every((r) => r.output.data.every((v, j) => v === reference[j]));
  await collect();
  const registered = created + 20 + 8 + 8 + 8;

  console.log(
    JSON.stringify({ base, peak, growth, bytesEach, created, registered, collected, sameAsReference, disposedResultsRight }),
  );
}

async function exitWhileBusyMode() {
  const big = { cell: 'lstm', inputSize: 64, hiddenSize: 192, numLayers: 2, seed: 3 };
  const n = new native.Network(big);
  const bx = { data: new Float32Array(100 * 16 * 64).fill(0.1), shape: [100, 16, 64] };
  n.forward({ x: bx });
  const trainer = new native.Network(big);
  trainer.setOptimizer({ type: 'adam' });
  trainer.trainStep({ x: bx }, { kind: 'mse', values: new Float32Array(100 * 16 * 192) });
  console.log(JSON.stringify({ busy: true }));
  console.log('lifetime-gc-child ok');
  process.exit(0);
}

(mode === 'exit-while-busy' ? exitWhileBusyMode() : gcMode()).then(
  () => {
    if (mode !== 'exit-while-busy') console.log('lifetime-gc-child ok');
  },
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
