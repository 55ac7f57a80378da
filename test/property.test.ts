// Property-based tests (fast-check) of the public API under hostile use: random shapes and values, typed-array
// views, shared and detached buffers, getters and Proxies, buffers changed right after a call, dispose at random
// points and concurrent calls. Every call either gives the result a clean call gives (computed on a twin network)
// or fails with a coded error (err.code starts with ERR_RNNKIT_); the process never crashes.
//
// CI runs a bounded number of cases per property; a longer run: RNNKIT_FC_RUNS=2000 npx tap test/property.test.ts
// (RNNKIT_FC_SEED=N replays a run; a failure prints its seed and path).
import t from 'tap';
import fc from 'fast-check';
import { sequential, layers, optimizers, isRnnkitError } from '../lib/index';
import { native } from '../lib/native';

const RUNS = Number(process.env.RNNKIT_FC_RUNS ?? 100);
const SEED = process.env.RNNKIT_FC_SEED !== undefined ? Number(process.env.RNNKIT_FC_SEED) : undefined;
const params = (runs = RUNS) => ({ numRuns: runs, ...(SEED !== undefined ? { seed: SEED } : {}), endOnFailure: true, includeErrorInReport: true });

const I = 3;
const H = 5;
const C = 4;
const spec = { cell: 'gru' as const, inputSize: I, hiddenSize: H, headSize: C, seed: 7 };

/** An error thrown by a test's own getter: it may come back as it is (it is the caller's exception). */
class Sentinel extends Error {}

type Container = 'f32' | 'f32-shared' | 'f32-view' | 'f64' | 'array';
type Effect =
  | 'none' | 'getter' | 'proxy' | 'mutate-after' | 'detach-after' | 'detach-before' | 'detach-in-getter'
  | 'throw-in-getter' | 'dispose-in-getter' | 'nested-call-in-getter';

interface Plan {
  T: number;
  B: number;
  values: number[];
  lengthOff: number; // data length minus the shape's count
  container: Container;
  effect: Effect;
}

const finite = fc.double({ min: -2, max: 2, noNaN: true }).map(Math.fround);
const special = fc.constantFrom(Infinity, -Infinity, NaN);

function planArb(effects: readonly Effect[], allowSpecial: boolean): fc.Arbitrary<Plan> {
  return fc
    .record({
      T: fc.integer({ min: 1, max: 3 }),
      B: fc.integer({ min: 1, max: 3 }),
      seedValues: fc.array(allowSpecial ? fc.oneof({ weight: 20, arbitrary: finite }, { weight: 1, arbitrary: special }) : finite, { minLength: 27, maxLength: 27 }),
      lengthOff: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-1, 1) }),
      container: fc.oneof(
        { weight: 6, arbitrary: fc.constant<Container>('f32') },
        { weight: 2, arbitrary: fc.constantFrom<Container>('f32-shared', 'f32-view') },
        { weight: 1, arbitrary: fc.constantFrom<Container>('f64', 'array') },
      ),
      effect: fc.constantFrom(...effects),
    })
    .map(({ T, B, seedValues, lengthOff, container, effect }) => {
      const n = Math.max(0, T * B * I + lengthOff);
      return { T, B, values: Array.from({ length: n }, (_, i) => seedValues[i % seedValues.length]), lengthOff, container, effect };
    });
}

function cleanTensor(p: Plan) {
  return { data: Float32Array.from(p.values), shape: [p.T, p.B, I] };
}

function makeData(p: Plan): Float32Array | Float64Array | number[] {
  switch (p.container) {
    case 'f32': return Float32Array.from(p.values);
    case 'f32-shared': {
      const a = new Float32Array(new SharedArrayBuffer(Math.max(4, p.values.length * 4)), 0, p.values.length);
      a.set(p.values);
      return a;
    }
    case 'f32-view': {
      const big = new Float32Array(p.values.length + 7).fill(99);
      const view = big.subarray(3, 3 + p.values.length);
      view.set(p.values);
      return view;
    }
    case 'f64': return Float64Array.from(p.values);
    case 'array': return [...p.values];
  }
}

function detach(data: ArrayLike<number>): void {
  if (ArrayBuffer.isView(data) && !(data.buffer instanceof SharedArrayBuffer)) structuredClone(data.buffer, { transfer: [data.buffer as ArrayBuffer] });
}

interface Hooks {
  dispose(): void;
  nestedCall(): void;
}

/** The input object a call receives, built to the plan (getters, Proxies, detached buffers), and what to do after the call. */
function hostileInput(p: Plan, hooks: Hooks): { input: unknown; after: () => void } {
  const data = makeData(p);
  const shape = [p.T, p.B, I];
  const after = () => {
    if (p.effect === 'mutate-after' && ArrayBuffer.isView(data)) (data as Float32Array).fill(7);
    if (p.effect === 'mutate-after' && Array.isArray(data)) data.fill(7);
    if (p.effect === 'detach-after') detach(data);
  };
  const tensor = { data, shape };
  switch (p.effect) {
    case 'getter':
      return { input: { get x() { return { get data() { return data; }, get shape() { return shape; } }; } }, after };
    case 'proxy':
      return { input: new Proxy({ x: new Proxy(tensor, {}) }, { get: (o, k, r) => Reflect.get(o, k, r) }), after };
    case 'detach-before':
      detach(data);
      return { input: { x: tensor }, after };
    case 'detach-in-getter':
      return { input: { get x() { detach(data); return tensor; } }, after };
    case 'throw-in-getter':
      return { input: { get x(): never { throw new Sentinel('thrown by a getter'); } }, after };
    case 'dispose-in-getter':
      return { input: { get x() { hooks.dispose(); return tensor; } }, after };
    case 'nested-call-in-getter':
      return { input: { get x() { hooks.nestedCall(); return tensor; } }, after };
    default:
      return { input: { x: tensor }, after };
  }
}

type Outcome = { ok: true; value: number[] } | { ok: false; code: string | 'sentinel' };

/** What a call with this plan gives when nothing else happens to the network. */
function expectedFor(p: Plan, clean: () => number[]): Outcome {
  if (p.effect === 'throw-in-getter') return { ok: false, code: 'sentinel' };
  // The data is read after the getter ran: a bad value is reported first, else the dispose.
  if (p.container === 'f64' || p.container === 'array') return { ok: false, code: 'ERR_RNNKIT_TYPE' };
  if (p.effect === 'dispose-in-getter') return { ok: false, code: p.lengthOff !== 0 ? 'ERR_RNNKIT_SHAPE' : 'ERR_RNNKIT_DISPOSED' };
  const detachable = p.container !== 'f32-shared' && p.values.length > 0;
  if ((p.effect === 'detach-before' || p.effect === 'detach-in-getter') && detachable) return { ok: false, code: 'ERR_RNNKIT_SHAPE' };
  if (p.lengthOff !== 0) return { ok: false, code: 'ERR_RNNKIT_SHAPE' };
  try {
    return { ok: true, value: clean() };
  } catch (e) {
    return { ok: false, code: (e as { code: string }).code };
  }
}

function codeOf(e: unknown): string {
  if (e instanceof Sentinel) return 'sentinel';
  if (isRnnkitError(e)) return e.code;
  return `uncoded: ${String((e as Error)?.stack ?? e)}`;
}

// The outcome of one call against its expectation. `excused` codes are those another call may cause (a dispose
// from elsewhere, a sync call while Promise calls are pending).
function check(outcome: { ok: true; value: number[] } | { ok: false; code: string }, expected: Outcome, excused: string[], label: string): void {
  if (!outcome.ok && excused.includes(outcome.code)) return;
  if (expected.ok) {
    if (!outcome.ok) throw new Error(`${label}: expected a result, got ${outcome.code}`);
    if (outcome.value.length !== expected.value.length || outcome.value.some((v, i) => !Object.is(v, expected.value[i])))
      throw new Error(`${label}: the result differs from the clean call's`);
  } else {
    if (outcome.ok) throw new Error(`${label}: expected ${expected.code}, got a result`);
    if (outcome.code !== expected.code) throw new Error(`${label}: expected ${expected.code}, got ${outcome.code}`);
  }
}

type Mode = 'async' | 'sync' | 'stream';
const ran = { inference: 0, calls: 0, training: 0, steps: 0, builder: 0 };

t.test('inference: concurrent calls with hostile inputs give the clean result or a coded error', async (t) => {
  const twin = new native.Network(spec);
  const reference = (p: Plan) => Array.from(twin.forwardSync({ x: cleanTensor(p) }).output.data);
  const effects: Effect[] = ['none', 'getter', 'proxy', 'mutate-after', 'detach-after', 'detach-before', 'detach-in-getter', 'throw-in-getter', 'dispose-in-getter', 'nested-call-in-getter'];
  const scenario = fc.record({
    calls: fc.array(fc.record({ plan: planArb(effects, false), mode: fc.constantFrom<Mode>('async', 'sync', 'stream') }), { minLength: 1, maxLength: 6 }),
    disposeAfter: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ({ calls, disposeAfter }) => {
      ran.inference++;
      ran.calls += calls.length;
      const net = new native.Network(spec);
      let disposed = false;
      let asyncLaunched = false;
      const nested: Promise<unknown>[] = [];
      const hooks: Hooks = {
        dispose: () => {
          disposed = true;
          net.dispose();
        },
        nestedCall: () => {
          // A second call from inside the argument reading: refused with BUSY (or DISPOSED), never run alongside.
          try {
            net.forwardSync({ x: cleanTensor(calls[0].plan) });
            throw new Error('a nested sync call was not refused');
          } catch (e) {
            if (!['ERR_RNNKIT_BUSY', 'ERR_RNNKIT_DISPOSED'].includes(codeOf(e))) throw e;
          }
          nested.push(net.forward({ x: cleanTensor(calls[0].plan) }).then(
            () => Promise.reject(new Error('a nested Promise call was not refused')),
            (e) => (['ERR_RNNKIT_BUSY', 'ERR_RNNKIT_DISPOSED'].includes(codeOf(e)) ? undefined : Promise.reject(e)),
          ));
        },
      };
      const pending: Array<{ promise: Promise<number[]>; expected: Outcome; excused: string[]; label: string }> = [];
      for (let i = 0; i < calls.length; i++) {
        const { plan, mode } = calls[i];
        const expected = expectedFor(plan, () => reference(plan));
        const excused = [...(disposed || disposeAfter !== undefined || calls.some((c) => c.plan.effect === 'dispose-in-getter') ? ['ERR_RNNKIT_DISPOSED'] : [])];
        if (mode === 'sync' && asyncLaunched) excused.push('ERR_RNNKIT_BUSY');
        const wasDisposed = disposed;
        const { input, after } = hostileInput(plan, hooks);
        const label = `call ${i} (${mode}, ${plan.effect}, ${plan.container})`;
        let promise: Promise<number[]>;
        if (mode === 'sync') {
          try {
            const r = net.forwardSync(input as never);
            promise = Promise.resolve(Array.from(r.output.data));
          } catch (e) {
            promise = Promise.reject(e);
          }
        } else if (mode === 'async') {
          promise = net.forward(input as never).then((r) => Array.from(r.output.data));
          asyncLaunched = true;
        } else {
          let stream: InstanceType<typeof native.Stream> | undefined;
          try {
            stream = new native.Stream(net);
          } catch (e) {
            promise = Promise.reject(e);
          }
          if (stream) {
            const s = stream;
            promise = s.step(input as never).then((r) => Array.from(r.output.data)).finally(() => s.dispose());
            asyncLaunched = true;
          }
        }
        after();
        // A call made after dispose() is refused, whatever its arguments.
        const strict = wasDisposed ? { ok: false as const, code: 'ERR_RNNKIT_DISPOSED' } : expected;
        promise!.catch(() => undefined); // handled below, after the other calls are made
        pending.push({ promise: promise!, expected: strict, excused: wasDisposed ? [] : excused, label });
        if (disposeAfter === i) hooks.dispose();
      }
      for (const p of pending) {
        let outcome: { ok: true; value: number[] } | { ok: false; code: string };
        try {
          outcome = { ok: true, value: await p.promise };
        } catch (e) {
          outcome = { ok: false, code: codeOf(e) };
        }
        if (!outcome.ok && outcome.code.startsWith('uncoded')) throw new Error(`${p.label}: ${outcome.code}`);
        check(outcome, p.expected, p.excused, p.label);
      }
      await Promise.all(nested);
      if (!disposed) {
        // The network is intact: a clean call gives the reference.
        const p = calls[0].plan;
        const clean = { ...p, effect: 'none' as Effect, container: 'f32' as Container, lengthOff: 0, values: p.values.slice(0, p.T * p.B * I) };
        if (clean.values.length === p.T * p.B * I) check({ ok: true, value: Array.from(net.forwardSync({ x: cleanTensor(clean) }).output.data) }, expectedFor(clean, () => reference(clean)), [], 'after');
        net.dispose();
      }
    }),
    params(),
  );
  t.pass(`${ran.inference} scenarios, ${ran.calls} calls`);
});

t.test('training: concurrent trainStep calls copy their inputs at call time and run in call order', async (t) => {
  const effects: Effect[] = ['none', 'getter', 'proxy', 'mutate-after', 'detach-after', 'detach-before', 'throw-in-getter'];
  const scenario = fc.record({
    steps: fc.array(fc.record({ plan: planArb(effects, true), classes: fc.array(fc.integer({ min: -1, max: C }), { minLength: 9, maxLength: 9 }) }), { minLength: 1, maxLength: 5 }),
    nonFinite: fc.constantFrom<'error' | 'skip'>('error', 'skip'),
    clipNorm: fc.constantFrom(0, 0.5),
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ({ steps, nonFinite, clipNorm }) => {
      ran.training++;
      ran.steps += steps.length;
      const net = new native.Network(spec);
      const twin = new native.Network(spec);
      net.setOptimizer({ type: 'adam', lr: 0.05 });
      twin.setOptimizer({ type: 'adam', lr: 0.05 });
      const launched: Array<{ promise: Promise<number[]>; expected: Outcome; label: string }> = [];
      for (let i = 0; i < steps.length; i++) {
        const { plan, classes } = steps[i];
        const target = { classes: Int32Array.from({ length: plan.T * plan.B }, (_, k) => classes[k % classes.length]) };
        // The twin takes the same step, in the same order, on clean data (only when the hostile call can be run).
        const expected = expectedFor(plan, () => {
          const r = twin.trainStepSync({ x: cleanTensor(plan) }, target, { clipNorm, nonFinite });
          return [r.loss, r.gradNorm, r.skipped ? 1 : 0];
        });
        const { input, after } = hostileInput(plan, { dispose: () => undefined, nestedCall: () => undefined });
        const promise = net.trainStep(input as never, target, { clipNorm, nonFinite }).then((r) => [r.loss, r.gradNorm, r.skipped ? 1 : 0]);
        after();
        promise.catch(() => undefined); // handled below, after the other calls are made
        launched.push({ promise, expected, label: `step ${i} (${plan.effect}, ${plan.container})` });
      }
      for (const l of launched) {
        let outcome: { ok: true; value: number[] } | { ok: false; code: string };
        try {
          outcome = { ok: true, value: await l.promise };
        } catch (e) {
          outcome = { ok: false, code: codeOf(e) };
        }
        if (!outcome.ok && outcome.code.startsWith('uncoded')) throw new Error(`${l.label}: ${outcome.code}`);
        check(outcome, l.expected, [], l.label);
      }
      for (const name of net.paramNames()) {
        const a = net.getParam(name);
        const b = twin.getParam(name);
        if (a.some((v, i) => !Object.is(v, b[i]))) throw new Error(`${name} differs from the twin's after the steps`);
        if (!a.every(Number.isFinite)) throw new Error(`${name} is not finite`);
      }
      net.dispose();
      twin.dispose();
    }),
    params(),
  );
  t.pass(`${ran.training} scenarios, ${ran.steps} steps`);
});

// Options from other libraries' vocabularies, near misses, and values of every type.
const anyValue = fc.oneof(
  fc.integer({ min: -3, max: 4 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(0, 1, 2, -1, 0.5, NaN, Infinity, 2 ** 32 + 5, '2', 'x', true, false, null, undefined, [], {}, () => 1),
);

function optionsArb(names: string[], extra: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .array(fc.tuple(fc.constantFrom(...names, ...extra), anyValue), { maxLength: 4 })
    .chain((entries) => fc.boolean().map((proxy) => {
      const o = Object.fromEntries(entries);
      return proxy ? new Proxy(o, {}) : o;
    }));
}

t.test('the model builder: random options give a model or a coded error, never a hang or a crash', async (t) => {
  const layerNames = ['units', 'returnSequences', 'bidirectional', 'goBackwards', 'dropout', 'numLayers', 'stackDropout', 'name', 'recurrentActivation', 'resetAfter', 'activation'];
  const fitNames = ['epochs', 'steps', 'batchSize', 'shuffle', 'seed', 'stateful', 'chunkLength', 'nonFinite'];
  const scenario = fc.record({
    factory: fc.constantFrom('lstm', 'gru', 'simpleRNN'),
    layerOptions: optionsArb(layerNames, ['return_sequences', 'unit', 'recurrent_activation']),
    fitOptions: optionsArb(fitNames, ['batch_size', 'epoch', 'chunk_length', 'validation_split']),
    predictOptions: fc.option(optionsArb(['lengths'], ['length', 'mask']), { nil: undefined }),
    generateOptions: optionsArb(['temperature', 'topK', 'topP', 'seed'], ['top_k', 'temp']),
    disposeEarly: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ({ factory, layerOptions, fitOptions, predictOptions, generateOptions, disposeEarly }) => {
      ran.builder++;
      const expectCoded = (e: unknown, what: string) => {
        if (!isRnnkitError(e)) throw new Error(`${what}: an uncoded error: ${String((e as Error)?.stack ?? e)}`);
      };
      // Bound the work: no more than a few epochs or steps.
      for (const k of ['epochs', 'steps']) if (typeof fitOptions[k] === 'number' && (fitOptions[k] as number) > 3) return;
      let layer;
      try {
        layer = (layers as Record<string, (o: unknown) => unknown>)[factory]({ units: 4, returnSequences: true, ...layerOptions });
      } catch (e) {
        expectCoded(e, 'layer');
        return;
      }
      let model;
      try {
        model = sequential({ vocabSize: 5, seed: 1, layers: [layer as never, layers.dense({ units: 5, activation: 'softmax' })] });
        model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam() });
      } catch (e) {
        expectCoded(e, 'model');
        return;
      }
      const x = { data: Int32Array.from([1, 2, 3, 4, 0, 1]), shape: [2, 3] };
      const calls: Promise<unknown>[] = [
        model.fit(x, x, fitOptions as never),
        model.predict(x, predictOptions as never),
        model.generate({ prompt: [1, 2], length: 3, ...generateOptions } as never),
      ];
      if (disposeEarly) model.dispose();
      for (const r of await Promise.allSettled(calls)) if (r.status === 'rejected') expectCoded(r.reason, 'call');
      model.dispose();
    }),
    params(Math.max(10, Math.round(RUNS * 2))),
  );
  t.pass(`${ran.builder} scenarios`);
});
