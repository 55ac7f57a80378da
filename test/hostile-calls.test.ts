// Calls made as a hostile (or hurried) caller makes them: getters that dispose the network or start a second call
// while the arguments are read, buffers reused right after a call, many concurrent callers on one handle, values
// that must not be coerced, option names from other libraries, non-finite training data, streams over
// bidirectional models and shared memory. Each case gets a coded error or the same result as a clean call, and the
// process never crashes.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RecurrentNetwork, sequential, layers, optimizers } from '../lib/index';
import { native } from '../lib/native';
import { throwsCode, rejectsCode } from './helpers/expect-error';

const DISPOSED = /has been disposed/;
const BUSY = /(reading the arguments of another call|running another call)/;
const spec = { cell: 'lstm' as const, inputSize: 3, hiddenSize: 8, headSize: 2, seed: 1 };
const xData = () => Float32Array.from({ length: 4 * 2 * 3 }, (_, i) => Math.sin(i));
const input = () => ({ x: { data: xData(), shape: [4, 2, 3] } });
const arr = (a: ArrayLike<number>) => Array.from(a);

t.test('a getter that disposes the network while the arguments are read (sync and Promise forms)', async (t) => {
  const reference = new native.Network(spec).forwardSync(input());
  const n1 = new native.Network(spec);
  throwsCode(t, () => n1.forwardSync({ get x() { n1.dispose(); return input().x; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forwardSync');
  t.equal(n1.isDisposed(), true, 'the network is disposed');
  const n2 = new native.Network(spec);
  await rejectsCode(t, () => n2.forward({ get x() { n2.dispose(); return input().x; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forward');
  const n3 = new native.Network(spec);
  n3.setOptimizer({ type: 'sgd' });
  await rejectsCode(t, () => n3.trainStep(input(), { get classes() { n3.dispose(); return new Int32Array(8); } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'trainStep (getter on the target)');
  const n4 = new native.Network(spec);
  await rejectsCode(t, () => n4.forward(input(), { get train() { n4.dispose(); return false; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forward (getter on the options)');
  // A synchronous method that reads an options object: it completes on the live network, which is freed after.
  const n5 = new native.Network(spec);
  n5.setOptimizer({ type: 'sgd', get lr() { n5.dispose(); return 0.1; } });
  t.equal(n5.isDisposed(), true, 'setOptimizer: disposed after the call');
  throwsCode(t, () => n5.paramNames(), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'and later calls are DISPOSED');

  // A running call, then a getter of a queued call disposes: the running call still resolves.
  const n6 = new native.Network(spec);
  const running = n6.forward(input());
  await rejectsCode(t, () => n6.forward({ get x() { n6.dispose(); return input().x; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'a queued call whose getter disposes');
  t.same(arr((await running).output.data), arr(reference.output.data), 'the running call resolves with the right output');

  // Streams: the stream or its network disposed from a getter.
  const n7 = new native.Network(spec);
  const s7 = new native.Stream(n7);
  throwsCode(t, () => s7.stepSync({ get x() { s7.dispose(); return { data: new Float32Array(3), shape: [1, 1, 3] }; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'stream.stepSync disposing its stream');
  const s8 = new native.Stream(n7);
  await rejectsCode(t, () => s8.step({ get x() { n7.dispose(); return { data: new Float32Array(3), shape: [1, 1, 3] }; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'stream.step disposing the network');
  const n9 = new native.Network(spec);
  const s9 = new native.Stream(n9);
  await rejectsCode(t, () => s9.step({ get x() { s9.dispose(); return { data: new Float32Array(3), shape: [1, 1, 3] }; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'stream.step disposing its stream');

  // A getter that throws: the Promise forms reject with the caller's own error (never a synchronous throw).
  const n10 = new native.Network(spec);
  const own = new Error('from a getter');
  const thrown = () => { throw own; };
  let threw: unknown;
  let p: Promise<unknown> | undefined;
  try {
    p = n10.forward({ get x() { return thrown(); } });
  } catch (e) {
    threw = e;
  }
  t.equal(threw, undefined, 'forward does not throw synchronously');
  await t.rejects(p as Promise<unknown>, own, 'forward rejects with the getter\'s error');
  const s10 = new native.Stream(n10);
  await t.rejects(s10.step({ get x() { return thrown(); } }), own, 'stream.step rejects with the getter\'s error');
  t.same(arr(n10.forwardSync(input()).output.data), arr(reference.output.data), 'the network still works');

  // Through Sequential.
  const m = sequential({ inputSize: 3, layers: [layers.lstm({ units: 4 })] });
  await rejectsCode(t, () => m.predict({ get data() { m.dispose(); return xData(); }, shape: [2, 4, 3] }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'Sequential.predict');
  const m2 = sequential({ inputSize: 3, layers: [layers.lstm({ units: 4 })] });
  throwsCode(t, () => m2.predictSync({ get data() { m2.dispose(); return xData(); }, shape: [2, 4, 3] }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'Sequential.predictSync');
  const m3 = sequential({ inputSize: 3, layers: [layers.lstm({ units: 4 })] });
  const st = m3.stream();
  await rejectsCode(t, () => st.step({ get data() { m3.dispose(); return new Float32Array(3); }, shape: [1, 3] }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'ModelStream.step');
});

t.test('a getter that starts a second call on the same network while the arguments are read', async (t) => {
  const reference = new native.Network(spec).forwardSync(input());
  const n = new native.Network(spec);
  let inner: unknown;
  const out = n.forwardSync({ get x() { try { n.forwardSync(input()); } catch (e) { inner = e; } return input().x; } });
  t.same(arr(out.output.data), arr(reference.output.data), 'the outer call gives the clean result');
  t.equal((inner as { code?: string }).code, 'ERR_RNNKIT_BUSY', 'the nested sync call is BUSY');
  let nested: Promise<unknown> | undefined;
  const outer = n.forward({ get x() { nested = n.forward(input()); nested.catch(() => undefined); return input().x; } });
  t.same(arr((await outer).output.data), arr(reference.output.data), 'the outer Promise call gives the clean result');
  await rejectsCode(t, () => nested as Promise<unknown>, 'ERR_RNNKIT_BUSY', BUSY, 'the nested Promise call');
  // A trainStep started from a getter of a forward: refused, and no step was taken.
  n.setOptimizer({ type: 'adam' });
  const w = arr(n.getParam('head.weight'));
  let step: Promise<unknown> | undefined;
  n.forwardSync({ get x() { step = n.trainStep(input(), { classes: new Int32Array(8) }); step.catch(() => undefined); return input().x; } });
  await rejectsCode(t, () => step as Promise<unknown>, 'ERR_RNNKIT_BUSY', BUSY, 'a trainStep from a getter');
  t.same(arr(n.getParam('head.weight')), w, 'the weights did not change');
  t.equal(n.optimizerInfo()?.steps, 0, 'no optimizer step');
  // Many getters at once, in both forms, each trying both kinds of nested call.
  for (let i = 0; i < 20; i++) {
    const p = n.forward({ get x() { try { n.forwardSync(input()); } catch { /* BUSY */ } void n.forward(input()).catch(() => undefined); return input().x; } });
    t.same(arr((await p).output.data), arr(reference.output.data), `round ${i}`);
  }
});

t.test('Sequential copies its inputs at call time; one queue serves every Promise call of a handle', async (t) => {
  const make = () => sequential({ inputSize: 3, seed: 3, layers: [layers.gru({ units: 5, returnSequences: true }), layers.dense({ units: 2 })] });
  const model = make();
  const clean = xData();
  const expected = arr(model.predictSync({ data: clean, shape: [2, 4, 3] }).data);
  const buffer = { data: xData(), shape: [2, 4, 3] };
  const pending = [model.predict(buffer), model.predict(buffer)];
  buffer.data.fill(9); // reused at once: the calls were made with the old values
  for (const p of pending) t.same(arr((await p).data), expected, 'predict saw the values of call time');

  const a = make().compile({ loss: 'mse', optimizer: optimizers.sgd({ lr: 0.1 }) });
  const b = make().compile({ loss: 'mse', optimizer: optimizers.sgd({ lr: 0.1 }) });
  const y = () => ({ data: Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)), shape: [2, 4, 2] });
  const bx = { data: xData(), shape: [2, 4, 3] };
  const by = y();
  const stepA = a.trainOnBatch(bx, by);
  bx.data.fill(-3);
  by.data.fill(7);
  await stepA;
  await b.trainOnBatch({ data: xData(), shape: [2, 4, 3] }, y());
  t.same(arr(a.getWeights()['dense_1.weight'].data), arr(b.getWeights()['dense_1.weight'].data), 'trainOnBatch used the arrays of call time');

  // 30 concurrent stream clients on one model all get their answers, equal to a stream run alone.
  const tokens = sequential({ vocabSize: 7, seed: 5, layers: [layers.lstm({ units: 6, returnSequences: true }), layers.dense({ units: 7, activation: 'softmax' })] });
  const alone = tokens.stream();
  const first = arr((await alone.step([1, 2, 3])).data);
  const second = arr((await alone.step([4])).data);
  const clients = Array.from({ length: 30 }, () => tokens.stream());
  const firsts = await Promise.allSettled(clients.map((s) => s.step([1, 2, 3])));
  t.equal(firsts.filter((r) => r.status === 'fulfilled').length, 30, '30 concurrent stream steps all succeed');
  const seconds = await Promise.all(clients.map((s) => s.step([4])));
  for (const r of firsts) t.same(arr((r as PromiseFulfilledResult<{ data: Float32Array }>).value.data), first, 'a first step as alone');
  for (const r of seconds) t.same(arr(r.data), second, 'a second step as alone');

  // generate beside predict and beside another generate: all succeed, and a seed gives the same sample.
  const batch = { data: Int32Array.from([1, 2, 3, 4]), shape: [2, 2] };
  const g1 = await tokens.generate({ prompt: [1, 2], length: 6, seed: 11 });
  const results = await Promise.allSettled([tokens.predict(batch), tokens.generate({ prompt: [1, 2], length: 6, seed: 11 }), tokens.predict(batch), tokens.generate({ prompt: [1, 2], length: 6, seed: 11 })]);
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'], 'generate beside predict works');
  t.same(arr((results[1] as PromiseFulfilledResult<Int32Array>).value), arr(g1), 'and gives the same sample as alone');

  // A stream disposed while its steps wait: the running step settles, the waiting ones reject, nothing leaks.
  const net = new native.Network({ cell: 'gru', inputSize: 32, hiddenSize: 128, numLayers: 2, seed: 1 });
  const big = () => ({ x: { data: new Float32Array(64 * 16 * 32).fill(0.1), shape: [64, 16, 32] } });
  const busy = net.forward(big());
  const s = new native.Stream(net);
  const waiting = s.step({ x: { data: new Float32Array(3 * 32), shape: [1, 3, 32] } });
  s.dispose();
  throwsCode(t, () => s.reset(), 'ERR_RNNKIT_DISPOSED', /stream has been disposed/, 'reset after dispose');
  await busy;
  await rejectsCode(t, () => waiting, 'ERR_RNNKIT_DISPOSED', /stream has been disposed \(before the step ran\)/, 'a step waiting when its stream was disposed');
  const s2 = new native.Stream(net);
  // 64 rows: too much work to run inline (a small step settles at once and leaves nothing in flight).
  const p2 = s2.step({ x: { data: new Float32Array(64 * 32), shape: [64, 1, 32] } });
  throwsCode(t, () => s2.reset(), 'ERR_RNNKIT_BUSY', /step of this stream is in flight/, 'reset while a step of the stream is in flight');
  await p2;
  s2.reset();
});

t.test('every entry point checks values as predictSync does: no coercion', async (t) => {
  const model = sequential({ vocabSize: 5, seed: 2, layers: [layers.gru({ units: 4, returnSequences: true }), layers.dense({ units: 5 })] });
  model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam() });
  const good = { data: Int32Array.from([1, 2, 3, 4, 0, 1]), shape: [2, 3] };
  const w = arr(model.getWeights()['dense_1.weight'].data);
  await rejectsCode(t, () => model.fit({ data: [1, 2], shape: [2, 3] }, good), 'ERR_RNNKIT_SHAPE', /x\.shape holds 6 values but x\.data has 2/, 'fit: data shorter than its shape');
  await rejectsCode(t, () => model.fit(good, { data: [1, 2, 3], shape: [2, 3] }), 'ERR_RNNKIT_SHAPE', /y\.shape holds 6 values/, 'fit: targets shorter than their shape');
  const cases: Array<[unknown, string, RegExp]> = [
    ['x', 'ERR_RNNKIT_TYPE', /must be a number, got string/],
    [3.7, 'ERR_RNNKIT_VALUE', /must be an integer, got 3\.7/],
    [NaN, 'ERR_RNNKIT_VALUE', /must be an integer, got NaN/],
    [-0.5, 'ERR_RNNKIT_VALUE', /must be an integer, got -0\.5/],
    [2 ** 32 + 5, 'ERR_RNNKIT_VALUE', /must be an integer, got 4294967301/],
    [{}, 'ERR_RNNKIT_TYPE', /must be a number, got object/],
    [null, 'ERR_RNNKIT_TYPE', /must be a number, got null/],
    [5, 'ERR_RNNKIT_VALUE', /token 5 at index 5 is outside the vocabulary/],
    [-1, 'ERR_RNNKIT_VALUE', /token -1 at index 5 is outside the vocabulary/],
  ];
  const stream = model.stream();
  for (const [bad, code, message] of cases) {
    await rejectsCode(t, () => model.fit({ data: [1, 2, 3, 4, 0, bad], shape: [2, 3] }, good), code, message, `fit token ${String(bad)}`);
    await rejectsCode(t, () => model.predict({ data: [1, 2, 3, 4, 0, bad] as number[], shape: [2, 3] }), code, message, `predict token ${String(bad)}`);
    await rejectsCode(t, () => model.trainOnBatch({ data: [1, 2, 3, 4, 0, bad] as number[], shape: [2, 3] }, good), code, message, `trainOnBatch token ${String(bad)}`);
    await rejectsCode(t, () => stream.step([1, bad] as number[]), code, /must be|outside the vocabulary/, `stream token ${String(bad)}`);
    await rejectsCode(t, () => model.generate({ prompt: [1, bad] as number[], length: 2 }), code, /must be|outside the vocabulary/, `generate prompt token ${String(bad)}`);
  }
  await rejectsCode(t, () => stream.step('abc' as never), 'ERR_RNNKIT_TYPE', /token stream step takes an Array or Int32Array/, 'stream step on a string');
  t.same(arr(model.getWeights()['dense_1.weight'].data), w, 'no training happened');
  t.equal(model.step, 0, 'no step counted');
});

t.test('options: every value checked, unknown names refused with the name meant', async (t) => {
  const model = sequential({ vocabSize: 5, layers: [layers.gru({ units: 4, returnSequences: true }), layers.dense({ units: 5 })] });
  model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam() });
  const x = { data: Int32Array.from([1, 2, 3, 4, 0, 1]), shape: [2, 3] };
  for (const [options, code, message] of [
    [{ batchSize: 0 }, 'ERR_RNNKIT_VALUE', /batchSize must be an integer >= 1/],
    [{ batchSize: -1 }, 'ERR_RNNKIT_VALUE', /batchSize must be an integer >= 1/],
    [{ batchSize: NaN }, 'ERR_RNNKIT_VALUE', /batchSize/],
    [{ batchSize: '4' }, 'ERR_RNNKIT_TYPE', /batchSize must be a number/],
    [{ epochs: -1 }, 'ERR_RNNKIT_VALUE', /epochs/],
    [{ epochs: Infinity }, 'ERR_RNNKIT_VALUE', /epochs/],
    [{ steps: 1.5 }, 'ERR_RNNKIT_VALUE', /steps/],
    [{ stateful: true, chunkLength: 0 }, 'ERR_RNNKIT_VALUE', /chunkLength must be an integer >= 1/],
    [{ chunkLength: 2 }, 'ERR_RNNKIT_ARGUMENT', /chunkLength is used only with stateful/],
    [{ shuffle: 'yes' }, 'ERR_RNNKIT_TYPE', /shuffle must be a boolean/],
    [{ callbacks: { onStepEnd: 3 } }, 'ERR_RNNKIT_TYPE', /callbacks\.onStepEnd must be a function/],
    [{ callbacks: { onEpochEnds: () => undefined } }, 'ERR_RNNKIT_ARGUMENT', /did you mean 'onEpochEnd'/],
    [{ checkpoint: { path: 'x', every: 0 } }, 'ERR_RNNKIT_VALUE', /checkpoint\.every/],
    [{ batch_size: 4 }, 'ERR_RNNKIT_ARGUMENT', /unknown option 'batch_size' in fit options: did you mean 'batchSize'\?/],
    [{ epoch: 2 }, 'ERR_RNNKIT_ARGUMENT', /did you mean 'epochs'\?/],
    [{ nonFinite: 'ignore' }, 'ERR_RNNKIT_ARGUMENT', /nonFinite must be 'error' or 'skip'/],
    [[], 'ERR_RNNKIT_TYPE', /fit options must be an object/],
  ] as Array<[unknown, string, RegExp]>) {
    await rejectsCode(t, () => model.fit(x, x, options as never), code, message, `fit ${JSON.stringify(options)}`);
  }
  await rejectsCode(t, () => model.fitDataset({ nextBatch: () => ({ x, y: x }) }, { steps: 1, validation: { source: { nextBatch: () => ({ x, y: x }) }, batches: 1, every: 0 } }), 'ERR_RNNKIT_VALUE', /validation\.every/, 'fitDataset validation.every 0');
  await rejectsCode(t, () => model.fitDataset({ nextBatch: () => ({ x, y: x }) }, { step: 3 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'steps'/, 'fitDataset step');
  throwsCode(t, () => layers.lstm({ units: 3, return_sequences: true } as never), 'ERR_RNNKIT_ARGUMENT', /unknown option 'return_sequences' in layers\.lstm\(\) options: did you mean 'returnSequences'\?/, 'Keras name on layers.lstm');
  throwsCode(t, () => layers.gru({ units: 3, reset_after: false } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'resetAfter'/, 'Keras name on layers.gru');
  throwsCode(t, () => layers.dense({ units: 3, activaton: 'relu' } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'activation'/, 'typo on layers.dense');
  throwsCode(t, () => layers.embedding({ outputDim: 3, input_dim: 4 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'inputDim'/, 'layers.embedding');
  throwsCode(t, () => layers.dropout({ rate: 0.1, seed: 1 } as never), 'ERR_RNNKIT_ARGUMENT', /unknown option 'seed'/, 'layers.dropout');
  throwsCode(t, () => layers.simpleRNN({ units: 3, unit: 3 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'units'/, 'layers.simpleRNN');
  throwsCode(t, () => sequential({ vocab_size: 5 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'vocabSize'/, 'sequential()');
  throwsCode(t, () => model.compile({ loss: 'mse', optimizer: optimizers.sgd(), clip_norm: 1 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'clipNorm'/, 'compile');
  throwsCode(t, () => model.compile({ loss: 'mse', optimizer: optimizers.sgd(), clipNorm: -1 }), 'ERR_RNNKIT_VALUE', /clipNorm must be a finite number >= 0/, 'compile clipNorm -1');
  throwsCode(t, () => model.compile({ loss: 'mse', optimizer: optimizers.adam({ learning_rate: 0.1 } as never) }), 'ERR_RNNKIT_ARGUMENT', /unknown option 'learning_rate' in the optimizer options/, 'optimizer options');
  await rejectsCode(t, () => model.predict(x, { length: [1, 2] } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'lengths'/, 'predict options');
  await rejectsCode(t, () => model.evaluate(x, x, { batchSize: 0 }), 'ERR_RNNKIT_VALUE', /batchSize/, 'evaluate batchSize 0');
  await rejectsCode(t, () => model.generate({ prompt: [1], length: 2, top_k: 3 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'topK'/, 'generate options');
  await rejectsCode(t, () => model.generate({ prompt: [1], length: -1 }), 'ERR_RNNKIT_VALUE', /length must be an integer/, 'generate length -1');
  await rejectsCode(t, () => model.generate({ prompt: [1], length: 2, temperature: -1 }), 'ERR_RNNKIT_VALUE', /temperature/, 'generate temperature -1');
  await rejectsCode(t, () => model.trainOnBatch(x, x, { carry_state: true } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'carryState'/, 'trainOnBatch options');
  await rejectsCode(t, () => model.save(path.join(os.tmpdir(), 'never.safetensors'), { include_optimizer: true } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'includeOptimizer'/, 'save options');
  throwsCode(t, () => new RecurrentNetwork({ cell: 'gru', inputSize: 3, hidden_size: 4 } as never), 'ERR_RNNKIT_ARGUMENT', /unknown option 'hidden_size' in the network spec: did you mean 'hiddenSize'/, 'RecurrentNetwork spec');
  const net = new RecurrentNetwork({ cell: 'gru', inputSize: 3, hiddenSize: 4, headSize: 2 });
  net.setOptimizer({ type: 'sgd' });
  throwsCode(t, () => net.forwardSync({ ...input(), batch_first: true } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'batchFirst'/, 'forward input');
  throwsCode(t, () => net.forwardSync(input(), { training: true } as never), 'ERR_RNNKIT_ARGUMENT', /unknown option 'training' in forward options/, 'forward options');
  throwsCode(t, () => net.trainStepSync(input(), { classes: new Int32Array(8) }, { clip_norm: 1 } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'clipNorm'/, 'trainStep options');
  throwsCode(t, () => net.lossSync({ class: new Int32Array(8) } as never), 'ERR_RNNKIT_ARGUMENT', /did you mean 'classes'/, 'loss target');
});

t.test('a training step whose loss or gradient norm is not finite is never applied', async (t) => {
  const net = new native.Network(spec);
  net.setOptimizer({ type: 'adam', lr: 0.01 });
  const before = Object.fromEntries(net.paramNames().map((p) => [p, arr(net.getParam(p))]));
  const x = input();
  x.x.data[3] = Infinity;
  const target = { classes: new Int32Array(8) };
  for (const clipNorm of [0, 1]) {
    throwsCode(t, () => net.trainStepSync(x, target, { clipNorm }), 'ERR_RNNKIT_NON_FINITE', /training step not applied: the (gradient norm|loss) is (NaN|Infinity).*weights and the optimizer state are unchanged/, `trainStepSync, clipNorm ${clipNorm}`);
    await rejectsCode(t, () => net.trainStep(x, target, { clipNorm }), 'ERR_RNNKIT_NON_FINITE', /training step not applied/, `trainStep, clipNorm ${clipNorm}`);
  }
  const nan = input();
  nan.x.data[0] = NaN;
  // Inference passes a NaN on (no finite-looking output from a NaN input).
  t.ok(arr(net.forwardSync(nan).output.data).some(Number.isNaN), 'a NaN input gives NaN outputs in inference');
  throwsCode(t, () => net.trainStepSync(nan, target), 'ERR_RNNKIT_NON_FINITE', /not applied/, 'a NaN input');
  const skipped = net.trainStepSync(x, target, { nonFinite: 'skip' });
  t.equal(skipped.skipped, true, "nonFinite: 'skip' resolves with skipped: true");
  for (const p of net.paramNames()) t.same(arr(net.getParam(p)), before[p], `${p} unchanged`);
  t.equal(net.optimizerInfo()?.steps, 0, 'the optimizer took no step');
  t.ok(arr(net.getOptimizerState('exp_avg')).every(Number.isFinite), 'the optimizer state stays finite');
  const ok = net.trainStepSync(input(), target);
  t.ok(Number.isFinite(ok.loss) && ok.skipped === false, 'a clean step after it trains');
  t.ok(net.paramNames().every((p) => arr(net.getParam(p)).every(Number.isFinite)), 'weights finite after the clean step');

  // fit: rejects naming the batch, or skips and counts.
  const model = sequential({ inputSize: 3, seed: 1, layers: [layers.lstm({ units: 4, returnSequences: true }), layers.dense({ units: 2 })] });
  model.compile({ loss: 'mse', optimizer: optimizers.adam(), clipNorm: 1 });
  const w = model.getWeights();
  const xs = { data: Float32Array.from({ length: 4 * 5 * 3 }, (_, i) => Math.sin(i)), shape: [4, 5, 3] };
  xs.data[2 * 15 + 4] = Infinity; // in row 2
  const ys = { data: new Float32Array(4 * 5 * 2).fill(0.5), shape: [4, 5, 2] };
  await rejectsCode(t, () => model.fit(xs, ys, { batchSize: 4 }), 'ERR_RNNKIT_NON_FINITE', /epoch 0, batch 0 \(training step 1\).*nonFinite: 'skip'/, 'fit rejects naming the batch');
  for (const [name, tensor] of Object.entries(model.getWeights())) t.same(arr(tensor.data), arr(w[name].data), `fit left ${name} alone`);
  const history = await model.fit(xs, ys, { batchSize: 1, shuffle: false, nonFinite: 'skip', epochs: 2 });
  t.equal(history.skippedSteps, 2, 'one bad row in each of 2 epochs: 2 skipped steps');
  t.equal(model.step, 6, 'the other steps were taken');
  t.ok(history.loss.every(Number.isFinite), `the epoch losses stay finite (${history.loss})`);
  t.ok(Object.values(model.getWeights()).every((w) => arr(w.data).every(Number.isFinite)), 'the weights stay finite');

  // The CLI's train command: a learning rate that blows up stops with the coded error and keeps a checkpoint.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-nonfinite-'));
  const data = path.join(dir, 'text.txt');
  fs.writeFileSync(data, 'hello world, a small text. '.repeat(200));
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const args = [cli, 'train', '--data', data, '--steps', '20', '--units', '16', '--layers', '1', '--seq', '16', '--batch', '4', '--lr', '1e38', '--clip', '0', '--eval-every', '10', '--val-batches', '1', '--quiet'];
  const r = spawnSync(process.execPath, [...args, '--out', path.join(dir, 'a')], { encoding: 'utf8' });
  t.equal(r.status, 1, `the CLI exits 1 (${r.stderr.trim()})`);
  t.match(r.stderr, /training step not applied.*ERR_RNNKIT_NON_FINITE/, 'and prints the coded error');
  t.ok(fs.existsSync(path.join(dir, 'a', 'checkpoint.safetensors')), 'a checkpoint of the last good state is written');
  const skip = spawnSync(process.execPath, [...args, '--out', path.join(dir, 'b'), '--skip-non-finite'], { encoding: 'utf8' });
  t.equal(skip.status, 0, `with --skip-non-finite it finishes (${skip.stderr.trim()})`);
  t.match(skip.stderr, /steps skipped: their loss or gradient norm was not finite/, 'and says how many steps it skipped');
  fs.rmSync(dir, { recursive: true, force: true });
});

t.test('stream() and generate() refuse models whose outputs need the whole sequence', async (t) => {
  for (const [label, layer] of [
    ['bidirectional', layers.lstm({ units: 4, returnSequences: true, bidirectional: true })],
    ['bidirectional sum', layers.gru({ units: 4, returnSequences: true, bidirectional: { mergeMode: 'sum' } })],
    ['goBackwards', layers.simpleRNN({ units: 4, returnSequences: true, goBackwards: true })],
  ] as const) {
    const model = sequential({ vocabSize: 5, layers: [layer, layers.dense({ units: 5, activation: 'softmax' })] });
    throwsCode(t, () => model.stream(), 'ERR_RNNKIT_UNSUPPORTED', /reads the sequence (in both directions|backwards).*cannot be run one step at a time/, `${label}: stream()`);
    await rejectsCode(t, () => model.generate({ prompt: [1], length: 3 }), 'ERR_RNNKIT_UNSUPPORTED', /cannot be run one step at a time/, `${label}: generate()`);
    t.ok((await model.predict({ data: [1, 2, 3], shape: [1, 3] })).data.length > 0, `${label}: predict still works`);
  }
  const bi = new native.Network({ cell: 'gru', inputSize: 2, hiddenSize: 3, bidirectional: true });
  throwsCode(t, () => new native.Stream(bi), 'ERR_RNNKIT_UNSUPPORTED', /both directions/, 'a native Stream over a bidirectional network');
});

t.test('typed arrays over a SharedArrayBuffer are read (copied) like any other; wrong input types are TypeErrors', async (t) => {
  const n = new native.Network({ cell: 'gru', vocabSize: 5, hiddenSize: 4, headSize: 5, seed: 1 });
  const plain = n.forwardSync({ tokens: { data: Int32Array.from([1, 2, 3, 4]), shape: [4, 1] } });
  const i32 = new Int32Array(new SharedArrayBuffer(24), 8, 4);
  i32.set([1, 2, 3, 4]);
  const u8 = new Uint8Array(new SharedArrayBuffer(8), 2, 4);
  u8.set([1, 2, 3, 4]);
  for (const [label, data] of [['Int32Array', i32], ['Uint8Array', u8]] as const) {
    t.same(arr(n.forwardSync({ tokens: { data, shape: [4, 1] } }).output.data), arr(plain.output.data), `a shared ${label} view (sync)`);
    t.same(arr((await n.forward({ tokens: { data, shape: [4, 1] } })).output.data), arr(plain.output.data), `a shared ${label} view (Promise)`);
    const lengths = new Int32Array(new SharedArrayBuffer(4)).fill(4);
    t.same(arr(n.forwardSync({ tokens: { data, shape: [4, 1] }, lengths }).output.data), arr(plain.output.data), `${label} with shared lengths`);
  }
  const f = new native.Network({ cell: 'gru', inputSize: 2, hiddenSize: 3, seed: 1 });
  const shared = new Float32Array(new SharedArrayBuffer(16));
  shared.set([0.1, 0.2, 0.3, 0.4]);
  t.same(arr(f.forwardSync({ x: { data: shared, shape: [2, 1, 2] } }).output.data), arr(f.forwardSync({ x: { data: Float32Array.from(shared), shape: [2, 1, 2] } }).output.data), 'a shared Float32Array');

  const model = sequential({ inputSize: 2, layers: [layers.lstm({ units: 3 })] });
  const net = new RecurrentNetwork({ cell: 'lstm', inputSize: 2, hiddenSize: 3 });
  for (const [label, x] of [['a plain Array', [1, 2, 3, 4]], ['a Float64Array', new Float64Array(4)]] as const) {
    let viaNet: Error | undefined;
    try {
      net.forwardSync({ x: x as never });
    } catch (e) {
      viaNet = e as Error;
    }
    await rejectsCode(t, () => model.predict(x as never), 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array/, `Sequential.predict with ${label}`);
    throwsCode(t, () => model.predictSync(x as never), 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array/, `Sequential.predictSync with ${label}`);
    t.equal((viaNet as { code?: string })?.code, 'ERR_RNNKIT_TYPE', `RecurrentNetwork gives the same code for ${label}`);
  }
});

t.test("the README's table of error codes is complete: every code the addon and the library can raise", async (t) => {
  const root = path.join(__dirname, '..');
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 1));
  const documented = new Set([...section.matchAll(/^\| `(ERR_RNNKIT_[A-Z_]+)` \| .+ \|$/gm)].map((m) => m[1]));
  const typed = new Set([...fs.readFileSync(path.join(root, 'lib', 'errors.ts'), 'utf8').matchAll(/'(ERR_RNNKIT_[A-Z_]+)'/g)].map((m) => m[1]));
  for (const code of native.errorCodes) t.ok(documented.has(code), `${code} (native) is in the README's table`);
  for (const code of native.errorCodes) t.ok(typed.has(code), `${code} (native) is in RnnkitErrorCode`);
  for (const code of typed) t.ok(documented.has(code), `${code} (RnnkitErrorCode) is in the README's table`);
  for (const code of documented) t.ok(typed.has(code), `${code} (README) is a RnnkitErrorCode`);
});

t.test('seq2seq models follow the same call protocol: getters that dispose or call again, dispose during a call', async (t) => {
  const { Seq2Seq } = await import('../lib/seq2seq');
  const spec = { cell: 'gru' as const, attention: 'bahdanau' as const, srcVocab: 7, tgtVocab: 6, embedSize: 3, hiddenSize: 4, seed: 3 };
  const batch = () => ({
    source: { data: Int32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] },
    decoderInput: { data: Int32Array.from([0, 1, 2, 0, 3, 4]), shape: [2, 3] },
    targets: Int32Array.from([1, 2, 3, 3, 4, -1]),
  });
  const reference = Array.from(new Seq2Seq(spec).forwardSync(batch()).logits.data);
  const a = new Seq2Seq(spec);
  throwsCode(t, () => a.forwardSync({ ...batch(), get source() { a.dispose(); return batch().source; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forwardSync disposing from a getter');
  const b = new Seq2Seq(spec);
  await rejectsCode(t, () => b.predict({ ...batch(), get source() { b.dispose(); return batch().source; } }), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'forward disposing from a getter');
  const c = new Seq2Seq(spec);
  let nested: unknown;
  const out = c.forwardSync({ ...batch(), get source() { try { c.forwardSync(batch()); } catch (e) { nested = e; } return batch().source; } });
  t.same(Array.from(out.logits.data), reference, 'the outer call gives the clean result');
  t.equal((nested as { code?: string })?.code, 'ERR_RNNKIT_BUSY', 'the nested call is BUSY');
  // dispose() while a Promise call runs: the call resolves, then the model is freed.
  const d = new Seq2Seq(spec);
  const running = d.predict(batch());
  d.dispose();
  t.same(Array.from((await running).logits.data), reference, 'a running forward resolves after dispose()');
  throwsCode(t, () => d.paramNames(), 'ERR_RNNKIT_DISPOSED', DISPOSED, 'later calls are DISPOSED');
});
