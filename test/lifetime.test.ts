// The life of a network handle: use after dispose, dispose while a Promise call runs, concurrent calls on one
// handle (Promise calls queued natively in call order, sync calls BUSY), sync and async results that agree, networks left to the
// garbage collector, and the shape of the errors themselves.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RecurrentNetwork, isRnnkitError } from '../lib/index';
import { native } from '../lib/native';

type Test = typeof t;

import { checkError, throwsCode, rejectsCode } from './helpers/expect-error';

const DISPOSED = /this network has been disposed/;
const BUSY = /this network is running another call; await it before starting the next one/;

const T = 5;
const B = 3;
const I = 4;
const H = 6;
const V = 3;
const spec = { cell: 'lstm' as const, inputSize: I, hiddenSize: H, headSize: V, seed: 42 };

function xs(phase = 0, t = T, b = B) {
  return { x: { data: Float32Array.from({ length: t * b * I }, (_, i) => Math.sin(0.3 * i + phase)), shape: [t, b, I] } };
}
const classes = (phase = 0) => ({ classes: Int32Array.from({ length: T * B }, (_, i) => (i + phase) % V) });
const arr = (a: ArrayLike<number> | undefined) => Array.from(a ?? []);

// A call that takes a while (tens of milliseconds), so that it is surely still running when the next line runs.
const bigSpec = { cell: 'lstm' as const, inputSize: 32, hiddenSize: 128, numLayers: 2, headSize: 4, seed: 9 };
const bigInput = () => ({
  x: { data: Float32Array.from({ length: 64 * 16 * 32 }, (_, i) => Math.cos(i * 0.01)), shape: [64, 16, 32] },
});
const bigTarget = () => ({ classes: Int32Array.from({ length: 64 * 16 }, (_, i) => i % 4) });

// Every method of the native class with arguments that would be good, for calling them all in a loop.
function nativeCalls(n: InstanceType<typeof native.Network>): Array<[string, () => unknown, boolean]> {
  const grad = { dOutput: new Float32Array(T * B * V) };
  return [
    ['spec', () => n.spec(), false],
    ['paramNames', () => n.paramNames(), false],
    ['paramShape', () => n.paramShape('weight_ih_l0'), false],
    ['getParam', () => n.getParam('weight_ih_l0'), false],
    ['setParam', () => n.setParam('bias_ih_l0', new Float32Array(4 * H)), false],
    ['getGrad', () => n.getGrad('weight_ih_l0'), false],
    ['zeroGrad', () => n.zeroGrad(), false],
    ['gradNorm', () => n.gradNorm(), false],
    ['clipGradNorm', () => n.clipGradNorm(1), false],
    ['setOptimizer', () => n.setOptimizer({ type: 'sgd', lr: 0.1 }), false],
    ['optimizerInfo', () => n.optimizerInfo(), false],
    ['step', () => n.step(), false],
    ['getOptimizerState', () => n.getOptimizerState('exp_avg'), false],
    ['setOptimizerState', () => n.setOptimizerState('steps', 1), false],
    ['memoryBytes', () => n.memoryBytes(), false],
    ['forwardSync', () => n.forwardSync(xs()), false],
    ['backwardSync', () => n.backwardSync(grad), false],
    ['lossSync', () => n.lossSync(classes()), false],
    ['trainStepSync', () => n.trainStepSync(xs(), classes()), false],
    ['forward', () => n.forward(xs()), true],
    ['backward', () => n.backward(grad), true],
    ['loss', () => n.loss(classes()), true],
    ['trainStep', () => n.trainStep(xs(), classes()), true],
  ];
}

t.test('every method after dispose fails with ERR_RNNKIT_DISPOSED', async (t) => {
  const n = new native.Network(spec);
  n.setOptimizer({ type: 'adam' });
  t.equal(n.isDisposed(), false, 'not disposed yet');
  n.dispose();
  t.equal(n.isDisposed(), true, 'isDisposed() after dispose');
  t.doesNotThrow(() => n.dispose(), 'dispose twice is fine');
  t.equal(n.isDisposed(), true, 'still disposed');
  const calls = nativeCalls(n);
  for (const [name, call, isPromise] of calls) {
    if (isPromise) await rejectsCode(t, call, 'ERR_RNNKIT_DISPOSED', DISPOSED, `native ${name}`);
    else throwsCode(t, call, 'ERR_RNNKIT_DISPOSED', DISPOSED, `native ${name}`);
  }
  // Every method on the prototype is covered (a method added later must refuse a disposed handle too).
  const proto = native.Network.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const names = Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor' && typeof proto[m] === 'function');
  const listed = new Set(calls.map(([name]) => name).concat(['dispose', 'isDisposed']));
  for (const m of names.filter((m) => !listed.has(m))) {
    let outcome: unknown;
    try {
      outcome = proto[m].call(n);
      if (outcome instanceof Promise) outcome = await outcome.then(() => 'resolved', (e) => e);
    } catch (e) {
      outcome = e;
    }
    checkError(t, outcome, 'ERR_RNNKIT_DISPOSED', DISPOSED, `native ${m} (not listed above)`);
  }
  // Bad arguments on a disposed handle: DISPOSED comes first, whatever the arguments.
  throwsCode(t, () => n.forwardSync(undefined as never), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forwardSync(undefined) after dispose');
  await rejectsCode(t, () => n.forward(null as never), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forward(null) after dispose');

  const net = new RecurrentNetwork(spec);
  net.setOptimizer({ type: 'sgd' });
  t.equal(net.disposed, false, 'RecurrentNetwork not disposed yet');
  net.dispose();
  net.dispose();
  t.equal(net.disposed, true, 'disposed getter after dispose');
  const sync: Array<[string, () => unknown]> = [
    ['spec', () => net.spec],
    ['paramNames', () => net.paramNames()],
    ['paramShape', () => net.paramShape('weight_ih_l0')],
    ['getParam', () => net.getParam('weight_ih_l0')],
    ['getParams', () => net.getParams()],
    ['setParam', () => net.setParam('bias_ih_l0', new Float32Array(4 * H))],
    ['setParams', () => net.setParams({ bias_ih_l0: new Float32Array(4 * H) })],
    ['getGrad', () => net.getGrad('weight_ih_l0')],
    ['zeroGrad', () => net.zeroGrad()],
    ['gradNorm', () => net.gradNorm()],
    ['clipGradNorm', () => net.clipGradNorm(1)],
    ['setOptimizer', () => net.setOptimizer({ type: 'adam' })],
    ['optimizerInfo', () => net.optimizerInfo()],
    ['step', () => net.step()],
    ['getOptimizerState', () => net.getOptimizerState('exp_avg')],
    ['setOptimizerState', () => net.setOptimizerState('steps', 2)],
    ['memoryBytes', () => net.memoryBytes()],
    ['forwardSync', () => net.forwardSync(xs())],
    ['backwardSync', () => net.backwardSync({ dOutput: new Float32Array(T * B * V) })],
    ['lossSync', () => net.lossSync(classes())],
    ['trainStepSync', () => net.trainStepSync(xs(), classes())],
  ];
  for (const [name, call] of sync) throwsCode(t, call, 'ERR_RNNKIT_DISPOSED', DISPOSED, `RecurrentNetwork ${name}`);
  const promised: Array<[string, () => unknown]> = [
    ['forward', () => net.forward(xs())],
    ['backward', () => net.backward({ dOutput: new Float32Array(T * B * V) })],
    ['loss', () => net.loss(classes())],
    ['trainStep', () => net.trainStep(xs(), classes())],
  ];
  for (const [name, call] of promised) await rejectsCode(t, call, 'ERR_RNNKIT_DISPOSED', DISPOSED, `RecurrentNetwork ${name}`);
});

t.test('dispose while a Promise call runs: the call settles cleanly, later calls are DISPOSED', async (t) => {
  const twin = new native.Network(bigSpec);
  const expected = twin.forwardSync(bigInput());
  twin.setOptimizer({ type: 'adam', lr: 0.01 });
  const expectedStep = twin.trainStepSync(bigInput(), bigTarget());

  // forward
  const n = new native.Network(bigSpec);
  const running = n.forward(bigInput());
  n.dispose();
  t.equal(n.isDisposed(), true, 'disposed at once');
  throwsCode(t, () => n.forwardSync(bigInput()), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'a sync call while the disposed call runs');
  await rejectsCode(t, () => n.forward(bigInput()), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'a Promise call while the disposed call runs');
  const result = await running;
  t.same(arr(result.output.data), arr(expected.output.data), 'the running forward still resolves, with the right output');
  t.same(arr(result.hn), arr(expected.hn), '... and the right hn');
  throwsCode(t, () => n.paramNames(), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'after it settled');
  t.doesNotThrow(() => n.dispose(), 'dispose again after it settled');

  // trainStep
  const m = new native.Network(bigSpec);
  m.setOptimizer({ type: 'adam', lr: 0.01 });
  const step = m.trainStep(bigInput(), bigTarget());
  m.dispose();
  t.same(await step, expectedStep, 'a running trainStep resolves with the right loss and gradNorm');
  throwsCode(t, () => m.optimizerInfo(), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'after the trainStep settled');

  // A call that fails while running (a target out of range is found on the worker thread).
  const f = new native.Network(bigSpec);
  f.setOptimizer({ type: 'sgd' });
  const failing = f.trainStep(bigInput(), { classes: new Int32Array(64 * 16).fill(7) });
  f.dispose();
  await rejectsCode(t, () => failing, 'ERR_RNNKIT_VALUE', /target 7 at index 0 is not a class/, 'a failing call still rejects with its own error');

  // Through RecurrentNetwork: calls queued behind a running one are refused once it is disposed.
  const net = new RecurrentNetwork(bigSpec);
  const first = net.forward(bigInput());
  const second = net.forward(bigInput());
  const third = net.trainStep(bigInput(), bigTarget());
  net.dispose();
  t.same(arr((await first).output.data), arr(expected.output.data), 'the call already running resolves');
  await rejectsCode(t, () => second, 'ERR_RNNKIT_DISPOSED', DISPOSED, 'a queued forward');
  await rejectsCode(t, () => third, 'ERR_RNNKIT_DISPOSED', DISPOSED, 'a queued trainStep');

  // dispose from inside the continuation of a call, and from inside a rejection handler.
  const g = new RecurrentNetwork(spec);
  await g.forward(xs()).then(() => g.dispose());
  t.equal(g.disposed, true, 'disposed from a then() handler');
  const h = new RecurrentNetwork(spec);
  await h.forward({ x: { data: new Float32Array(1), shape: [1, 1, 1] } }).catch(() => h.dispose());
  t.equal(h.disposed, true, 'disposed from a catch() handler');
});

t.test('two calls at once on one native handle: Promise calls wait in order, sync calls are BUSY', async (t) => {
  const n = new native.Network(bigSpec);
  n.setOptimizer({ type: 'adam' });
  const twin = new native.Network(bigSpec);
  twin.setOptimizer({ type: 'adam' });
  const expected = twin.forwardSync(bigInput());
  const first = n.forward(bigInput());
  t.equal(n.isDisposed(), false, 'isDisposed() answers while busy');
  for (const [name, call, isPromise] of nativeCalls(n)) {
    if (!isPromise) throwsCode(t, call, 'ERR_RNNKIT_BUSY', BUSY, `${name} while a forward runs`);
  }
  // BUSY comes before argument checks, and refused calls do not disturb the running one.
  throwsCode(t, () => n.forwardSync(undefined as never), 'ERR_RNNKIT_BUSY', BUSY, 'forwardSync(undefined) while busy');
  // Promise calls made now wait for the running one, in call order; bad arguments reject at once.
  await rejectsCode(t, () => n.forward(undefined as never), 'ERR_RNNKIT_TYPE', /input must be an object/, 'a queued call with bad arguments');
  const second = n.trainStep(bigInput(), bigTarget());
  const third = n.forward(bigInput());
  const r = await first;
  t.same(arr(r.output.data), arr(expected.output.data), 'the first call gives the right answer');
  const twinStep = twin.trainStepSync(bigInput(), bigTarget());
  t.same(await second, twinStep, 'the queued trainStep ran after it');
  t.same(arr((await third).output.data), arr(twin.forwardSync(bigInput()).output.data), 'the forward queued after the step sees the stepped weights');
  t.equal(n.optimizerInfo()?.steps, 1, 'exactly one step was taken');

  // A call that rejects while running does not stop the queue.
  const bad = n.trainStep(bigInput(), { classes: new Int32Array(64 * 16).fill(9) });
  const after = n.forward(bigInput());
  throwsCode(t, () => n.paramNames(), 'ERR_RNNKIT_BUSY', BUSY, 'busy while a failing call runs');
  await rejectsCode(t, () => bad, 'ERR_RNNKIT_VALUE', /target 9 at index 0/, 'the failing call rejects');
  t.type((await after).output.data, Float32Array, 'the call queued behind it runs');
  t.equal(n.paramNames().length, 10, 'free again after the queue drained');

  // Through RecurrentNetwork a sync call while a Promise call runs is BUSY too.
  const net = new RecurrentNetwork(bigSpec);
  const p = net.forward(bigInput());
  throwsCode(t, () => net.forwardSync(bigInput()), 'ERR_RNNKIT_BUSY', BUSY, 'RecurrentNetwork forwardSync while forward runs');
  await p;
});

t.test('Promise calls issued at once through RecurrentNetwork run in order, as sequential calls would', async (t) => {
  const a = new RecurrentNetwork(spec);
  const b = new RecurrentNetwork(spec);
  a.setOptimizer({ type: 'adam', lr: 0.05 });
  b.setOptimizer({ type: 'adam', lr: 0.05 });
  const bad = { x: { data: new Float32Array(3), shape: [1, 1, 3] } };
  // One buffer reused for every call: each call must see the values it had when the call was made.
  const buffer = { data: new Float32Array(T * B * I), shape: [T, B, I] };
  const fill = (phase: number) => {
    buffer.data.set(xs(phase).x.data);
    return { x: buffer };
  };
  const issued = [
    a.forward(fill(0)),
    a.trainStep(fill(1), classes(0)),
    a.forward(fill(2)),
    a.forward(bad as never), // rejected, and the queue goes on
    a.trainStep(fill(3), classes(1), { clipNorm: 0.5 }),
    a.forward(fill(4), { train: true }),
    a.loss(classes(2)),
    a.backward({ dOutput: new Float32Array(T * B * V).fill(0.25) }),
    a.trainStep(fill(5), classes(2)),
    a.forward(fill(6)),
  ];
  buffer.data.fill(NaN); // overwritten before any queued call starts
  const settled = await Promise.allSettled(issued);

  const expected: unknown[] = [];
  expected.push(b.forwardSync(xs(0)));
  expected.push(b.trainStepSync(xs(1), classes(0)));
  expected.push(b.forwardSync(xs(2)));
  let badError: unknown;
  try {
    b.forwardSync(bad as never);
  } catch (err) {
    badError = err;
  }
  expected.push(badError);
  expected.push(b.trainStepSync(xs(3), classes(1), { clipNorm: 0.5 }));
  expected.push(b.forwardSync(xs(4), { train: true }));
  expected.push(b.lossSync(classes(2)));
  expected.push(b.backwardSync({ dOutput: new Float32Array(T * B * V).fill(0.25) }));
  expected.push(b.trainStepSync(xs(5), classes(2)));
  expected.push(b.forwardSync(xs(6)));

  t.equal(settled.length, expected.length);
  settled.forEach((s, i) => {
    if (i === 3) {
      t.equal(s.status, 'rejected', 'the bad call rejects');
      if (s.status === 'rejected') t.equal(s.reason.code, (badError as { code: string }).code, 'with the code the sync call gives');
      return;
    }
    t.equal(s.status, 'fulfilled', `call ${i} resolves`);
    if (s.status === 'fulfilled') t.same(s.value, expected[i], `call ${i} gives what the sequential sync call gave`);
  });
  t.same(a.getParams(), b.getParams(), 'the parameters end up the same');
  t.same(a.optimizerInfo(), b.optimizerInfo(), 'and the optimizer took the same steps');
  t.same(arr(a.getOptimizerState('exp_avg')), arr(b.getOptimizerState('exp_avg')), 'with the same state');
});

t.test('sync and Promise forms give identical results', async (t) => {
  const configs = [
    { cell: 'lstm', inputSize: I, hiddenSize: H, headSize: V, seed: 1 },
    { cell: 'gru', inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, seed: 2 },
    { cell: 'gru', inputSize: I, hiddenSize: H, resetAfter: false, headSize: V, seed: 3 },
    { cell: 'rnn_tanh', inputSize: I, hiddenSize: H, numLayers: 3, seed: 4 },
    { cell: 'rnn_relu', inputSize: I, hiddenSize: H, bidirectional: true, headSize: V, seed: 5 },
    { cell: 'lstm', vocabSize: 7, hiddenSize: H, numLayers: 2, headSize: 7, seed: 6 },
  ] as const;
  for (const cfg of configs) {
    const label = JSON.stringify(cfg);
    const s = new RecurrentNetwork(cfg as never);
    const p = new RecurrentNetwork(cfg as never);
    const D = 'bidirectional' in cfg && cfg.bidirectional ? 2 : 1;
    const L = 'numLayers' in cfg ? cfg.numLayers : 1;
    const out = 'headSize' in cfg ? cfg.headSize : D * H;
    const input: Record<string, unknown> =
      'vocabSize' in cfg
        ? { tokens: { data: Int32Array.from({ length: T * B }, (_, i) => (i * 3) % 7), shape: [T, B] } }
        : xs(0.5);
    input.lengths = [T, 2, 4];
    input.h0 = Float32Array.from({ length: L * D * B * H }, (_, i) => Math.cos(i) * 0.5);
    for (const batchFirst of [false, true]) {
      // The same values read as [batch, time, ...]: a different batch, of the same size.
      const seq = (input.x ?? input.tokens) as { data: ArrayLike<number>; shape: number[] };
      const shape = batchFirst ? [B, T, ...seq.shape.slice(2)] : seq.shape;
      const inp = { ...input, batchFirst, [input.x ? 'x' : 'tokens']: { data: seq.data, shape } } as never;
      t.same(await p.forward(inp), s.forwardSync(inp), `${label} batchFirst=${batchFirst}: forward`);
      t.same(await p.forward(inp, { train: true }), s.forwardSync(inp, { train: true }), `${label}: training forward`);
      const grad = { dOutput: Float32Array.from({ length: T * B * out }, (_, i) => Math.sin(i)) };
      t.same(await p.backward(grad), s.backwardSync(grad), `${label}: backward`);
      if ('headSize' in cfg) {
        const target = { classes: Int32Array.from({ length: T * B }, (_, i) => i % out) };
        t.same(await p.loss(target), s.lossSync(target), `${label}: loss`);
      }
      t.same(p.getGrad('weight_hh_l0'), s.getGrad('weight_hh_l0'), `${label}: accumulated gradients`);
    }
    s.setOptimizer({ type: 'rmsprop', lr: 0.01, momentum: 0.9 });
    p.setOptimizer({ type: 'rmsprop', lr: 0.01, momentum: 0.9 });
    const target = { kind: 'mse' as const, values: Float32Array.from({ length: T * B * out }, (_, i) => Math.sin(i * 0.1)) };
    for (let i = 0; i < 3; ++i) t.same(await p.trainStep(input as never, target), s.trainStepSync(input as never, target), `${label}: trainStep ${i}`);
    t.same(p.getParams(), s.getParams(), `${label}: parameters after training`);
  }
});

t.test('errors are Errors with codes, thrown or rejected', async (t) => {
  const net = new RecurrentNetwork(spec);
  const collect = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err;
    }
    return undefined;
  };
  const typeErr = collect(() => net.forwardSync({ x: { data: new Float64Array(T * B * I), shape: [T, B, I] } } as never));
  t.type(typeErr, TypeError, 'ERR_RNNKIT_TYPE is a TypeError');
  t.type(typeErr, Error, 'and an Error');
  t.equal((typeErr as { code: string }).code, 'ERR_RNNKIT_TYPE');
  t.ok(isRnnkitError(typeErr), 'isRnnkitError(TypeError)');
  t.match((typeErr as Error).stack, /must be a Float32Array/, 'the stack carries the message');

  const shapeErr = collect(() => net.forwardSync({ x: { data: new Float32Array(2), shape: [T, B, I] } }));
  t.type(shapeErr, Error, 'ERR_RNNKIT_SHAPE is an Error');
  t.notOk(shapeErr instanceof TypeError, 'but not a TypeError');
  t.ok(isRnnkitError(shapeErr), 'isRnnkitError(shape error)');
  t.ok(Object.prototype.hasOwnProperty.call(shapeErr, 'code'), 'code is an own property');

  let rejected: unknown;
  await net.loss(classes()).catch((e) => {
    rejected = e;
  });
  t.type(rejected, Error, 'a rejected Promise carries an Error');
  t.equal((rejected as { code: string }).code, 'ERR_RNNKIT_STATE', 'with its code');
  t.ok(isRnnkitError(rejected), 'isRnnkitError(rejection)');

  let typeRejected: unknown;
  await net.forward('nonsense' as never).catch((e) => {
    typeRejected = e;
  });
  t.type(typeRejected, TypeError, 'a rejected TYPE error is a TypeError');
  t.equal((typeRejected as { code: string }).code, 'ERR_RNNKIT_TYPE');

  net.dispose();
  const disposedErr = collect(() => net.paramNames());
  t.type(disposedErr, Error);
  t.equal((disposedErr as { code: string }).code, 'ERR_RNNKIT_DISPOSED');
  t.ok(isRnnkitError(disposedErr));

  const ctorErr = collect(() => new RecurrentNetwork({ cell: 'lstm', hiddenSize: 0, inputSize: 1 }));
  t.ok(isRnnkitError(ctorErr), 'constructor errors too');

  // isRnnkitError says no to everything else.
  const foreign = Object.assign(new Error('x'), { code: 'ERR_SOMETHING_ELSE' });
  t.notOk(isRnnkitError(foreign), 'another library’s coded Error');
  t.notOk(isRnnkitError({ code: 'ERR_RNNKIT_TYPE', message: 'looks like one' }), 'a plain object with the code');
  t.notOk(isRnnkitError(new Error('no code')), 'an Error without a code');
  t.notOk(isRnnkitError(null), 'null');
  t.notOk(isRnnkitError('ERR_RNNKIT_TYPE'), 'a string');
  t.notOk(isRnnkitError(Object.assign(new Error('x'), { code: 42 })), 'a numeric code');
});

const childScript = path.join(__dirname, 'helpers', 'lifetime-gc-child.js');
const distBuilt = fs.existsSync(path.join(__dirname, '..', 'dist', 'native.js'));

t.test('networks dropped without dispose are collected, with their native memory', { skip: !distBuilt && 'run `npx tsc -p .` first (the child loads dist/)' }, async (t) => {
  const run = spawnSync(process.execPath, ['--expose-gc', childScript, 'gc'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NODE_OPTIONS: '', RNNKIT_LIFETIME_CHILD: '1' }, // plain Node: no tap loaders
  });
  t.equal(run.signal, null, `no signal (stderr: ${run.stderr})`);
  t.equal(run.status, 0, `exit code 0 (stderr: ${run.stderr})`);
  const lines = run.stdout.trim().split('\n');
  t.equal(lines[lines.length - 1], 'lifetime-gc-child ok', 'the child finished');
  const m = JSON.parse(lines[lines.length - 2] ?? '{}');
  t.ok(m.sameAsReference, 'calls on networks dropped while running resolve with the right answer');
  t.ok(m.disposedResultsRight, 'calls on networks disposed while running resolve with the right answer');
  t.ok(m.collected >= m.registered * 0.9, `the networks were collected (${m.collected} of ${m.registered})`);
  const leaked = m.created * m.bytesEach;
  // An ASan build keeps freed memory in quarantine: the resident size says nothing there.
  const asan = /asan/.test(process.env.LD_PRELOAD ?? '');
  t.ok(asan || m.growth < leaked / 3, `resident memory grew by ${(m.growth / 2 ** 20).toFixed(1)} MB, not the ${(leaked / 2 ** 20).toFixed(0)} MB of all the networks`);
  t.ok(asan || m.peak < leaked / 2, `and peaked at ${(m.peak / 2 ** 20).toFixed(1)} MB`);
});

t.test('process.exit while Promise calls run exits cleanly', { skip: !distBuilt && 'run `npx tsc -p .` first' }, async (t) => {
  const run = spawnSync(process.execPath, [childScript, 'exit-while-busy'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NODE_OPTIONS: '', RNNKIT_LIFETIME_CHILD: '1' }, // plain Node: no tap loaders
  });
  t.equal(run.signal, null, `no signal (stderr: ${run.stderr})`);
  t.equal(run.status, 0, `exit code 0 (stderr: ${run.stderr})`);
  t.match(run.stdout, /lifetime-gc-child ok/);
  t.notMatch(run.stderr, /Assertion|FATAL|Segmentation|AddressSanitizer/, 'nothing on stderr about a crash');
});
