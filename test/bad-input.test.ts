// Every bad input gets a clear error with a stable `code` (never a crash, never a silently wrong answer), through
// both the synchronous and the Promise form of a method, and the network is untouched by a rejected call: a good
// call made afterwards gives exactly what it gave before.
import t from 'tap';
import { RecurrentNetwork, isRnnkitError, setThreads, backendInfo } from '../lib/index';
import { native } from '../lib/native';

type Test = typeof t;
type Code =
  | 'ERR_RNNKIT_ARGUMENT'
  | 'ERR_RNNKIT_TYPE'
  | 'ERR_RNNKIT_SHAPE'
  | 'ERR_RNNKIT_VALUE'
  | 'ERR_RNNKIT_UNKNOWN_PARAM'
  | 'ERR_RNNKIT_STATE';

import { throwsCode, rejectsCode } from './helpers/expect-error';


// ---------------------------------------------------------------------------------------------------------------
// Fixtures: a small LSTM with a head, T=4, B=2, 3 features, 4 hidden, 2 outputs.

const T = 4;
const B = 2;
const I = 3;
const H = 4;
const V = 2;

function sequence(n: number, phase = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = Math.sin(0.7 * i + phase);
  return a;
}

const goodX = () => ({ data: sequence(T * B * I), shape: [T, B, I] });
const goodInput = () => ({ x: goodX() });
const goodClasses = () => Int32Array.from({ length: T * B }, (_, i) => i % V);

function lstm(extra: Record<string, unknown> = {}): RecurrentNetwork {
  return new RecurrentNetwork({ cell: 'lstm', inputSize: I, hiddenSize: H, headSize: V, seed: 7, ...extra } as never);
}

function flatParams(net: RecurrentNetwork): number[] {
  const out: number[] = [];
  for (const name of net.paramNames()) out.push(...net.getParam(name).data);
  return out;
}

// What a network computes, to compare before and after rejected calls.
function snapshot(net: RecurrentNetwork) {
  const r = net.forwardSync(goodInput());
  return { output: Array.from(r.output.data), hn: Array.from(r.hn), cn: Array.from(r.cn ?? []), params: flatParams(net) };
}

function intact(t: Test, net: RecurrentNetwork, before: ReturnType<typeof snapshot>, label: string): void {
  const now = snapshot(net);
  t.same(now.params, before.params, `${label}: parameters unchanged`);
  t.same(now.output, before.output, `${label}: a good forward afterwards gives the same output`);
  t.same(now.hn, before.hn, `${label}: ... and the same hn`);
  t.same(now.cn, before.cn, `${label}: ... and the same cn`);
}

// Runs one bad input through every method that reads a sequence input, sync and Promise, and checks the network.
async function badSequenceInput(
  t: Test,
  net: RecurrentNetwork,
  input: unknown,
  code: Code,
  message: RegExp,
  label: string,
  target: unknown = { classes: goodClasses() },
): Promise<void> {
  const before = snapshot(net);
  const optSteps = net.optimizerInfo()?.steps;
  throwsCode(t, () => net.forwardSync(input as never), code, message, `forwardSync ${label}`);
  intact(t, net, before, `forwardSync ${label}`);
  throwsCode(t, () => net.forwardSync(input as never, { train: true }), code, message, `forwardSync(train) ${label}`);
  intact(t, net, before, `forwardSync(train) ${label}`);
  await rejectsCode(t, () => net.forward(input as never), code, message, `forward ${label}`);
  intact(t, net, before, `forward ${label}`);
  if (optSteps !== undefined) {
    throwsCode(t, () => net.trainStepSync(input as never, target as never), code, message, `trainStepSync ${label}`);
    intact(t, net, before, `trainStepSync ${label}`);
    await rejectsCode(t, () => net.trainStep(input as never, target as never), code, message, `trainStep ${label}`);
    intact(t, net, before, `trainStep ${label}`);
    t.equal(net.optimizerInfo()?.steps, optSteps, `${label}: no optimizer step was taken`);
  }
}

// ---------------------------------------------------------------------------------------------------------------

t.test('bad specs are refused with ARGUMENT, TYPE or VALUE', async (t) => {
  const base = { cell: 'lstm', inputSize: 3, hiddenSize: 4 };
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['no spec', undefined, 'ERR_RNNKIT_TYPE', /spec must be an object, got undefined/],
    ['null spec', null, 'ERR_RNNKIT_TYPE', /spec must be an object, got null/],
    ['string spec', 'lstm', 'ERR_RNNKIT_TYPE', /spec must be an object, got string/],
    ['number spec', 42, 'ERR_RNNKIT_TYPE', /spec must be an object, got number/],
    ['array spec', [base], 'ERR_RNNKIT_TYPE', /spec must be an object, got Array/],
    ['missing cell', { inputSize: 3, hiddenSize: 4 }, 'ERR_RNNKIT_ARGUMENT', /cell is required.*lstm/],
    ['unknown cell', { ...base, cell: 'peephole' }, 'ERR_RNNKIT_ARGUMENT', /unknown cell 'peephole'.*rnn_tanh.*gru/],
    ['upper-case cell', { ...base, cell: 'LSTM' }, 'ERR_RNNKIT_ARGUMENT', /unknown cell 'LSTM'/],
    ['cell not a string', { ...base, cell: 3 }, 'ERR_RNNKIT_TYPE', /cell must be a string, got number/],
    ['missing hiddenSize', { cell: 'lstm', inputSize: 3 }, 'ERR_RNNKIT_ARGUMENT', /hiddenSize is required/],
    ['hiddenSize 0', { ...base, hiddenSize: 0 }, 'ERR_RNNKIT_ARGUMENT', /hiddenSize must be an integer in \[1, \d+\], got 0/],
    ['hiddenSize -1', { ...base, hiddenSize: -1 }, 'ERR_RNNKIT_ARGUMENT', /hiddenSize must be an integer in \[1, \d+\], got -1/],
    ['hiddenSize 1.5', { ...base, hiddenSize: 1.5 }, 'ERR_RNNKIT_VALUE', /hiddenSize must be an integer, got 1\.5/],
    ['hiddenSize NaN', { ...base, hiddenSize: NaN }, 'ERR_RNNKIT_VALUE', /hiddenSize must not be NaN/],
    ['hiddenSize Infinity', { ...base, hiddenSize: Infinity }, 'ERR_RNNKIT_VALUE', /hiddenSize must be an integer/],
    ['hiddenSize 1e12', { ...base, hiddenSize: 1e12 }, 'ERR_RNNKIT_VALUE', /hiddenSize must be an integer/],
    ['hiddenSize 2^21', { ...base, hiddenSize: 2 ** 21 }, 'ERR_RNNKIT_ARGUMENT', /hiddenSize must be an integer in \[1, /],
    ['hiddenSize 2^20 (weights too large)', { ...base, hiddenSize: 2 ** 20 }, 'ERR_RNNKIT_ARGUMENT', /too large/],
    ['hiddenSize a string', { ...base, hiddenSize: '8' }, 'ERR_RNNKIT_TYPE', /hiddenSize must be a number, got string/],
    ['both inputSize and vocabSize', { ...base, vocabSize: 5 }, 'ERR_RNNKIT_ARGUMENT', /exactly one of inputSize.*vocabSize/],
    ['neither inputSize nor vocabSize', { cell: 'lstm', hiddenSize: 4 }, 'ERR_RNNKIT_ARGUMENT', /exactly one of inputSize.*vocabSize/],
    ['inputSize -3 beside vocabSize', { cell: 'gru', inputSize: -3, vocabSize: 5, hiddenSize: 4 }, 'ERR_RNNKIT_ARGUMENT', /inputSize must be a positive integer, got -3/],
    ['vocabSize -2 beside inputSize', { cell: 'gru', inputSize: 3, vocabSize: -2, hiddenSize: 4 }, 'ERR_RNNKIT_ARGUMENT', /vocabSize must be a positive integer, got -2/],
    ['inputSize -3 alone', { ...base, inputSize: -3 }, 'ERR_RNNKIT_ARGUMENT', /inputSize/],
    ['inputSize 2.5', { ...base, inputSize: 2.5 }, 'ERR_RNNKIT_VALUE', /inputSize must be an integer/],
    ['numLayers 0', { ...base, numLayers: 0 }, 'ERR_RNNKIT_ARGUMENT', /numLayers must be an integer in \[1, /],
    ['headSize -1', { ...base, headSize: -1 }, 'ERR_RNNKIT_ARGUMENT', /headSize must be an integer in \[0, /],
    ['bidirectional a string', { ...base, bidirectional: 'yes' }, 'ERR_RNNKIT_TYPE', /bidirectional must be a boolean, got string/],
    ['seed -1', { ...base, seed: -1 }, 'ERR_RNNKIT_VALUE', /seed must be a non-negative integer/],
    ['seed 0.5', { ...base, seed: 0.5 }, 'ERR_RNNKIT_VALUE', /seed must be a non-negative integer/],
    ['unknown gateActivation', { ...base, gateActivation: 'hardSigmoid' }, 'ERR_RNNKIT_ARGUMENT', /unknown gate activation 'hardSigmoid': expected sigmoid or hard_sigmoid/],
    ['gateActivation not a string', { ...base, gateActivation: 1 }, 'ERR_RNNKIT_TYPE', /gateActivation must be a string, got number/],
    ['gateActivation for an rnn cell', { ...base, cell: 'rnn_tanh', gateActivation: 'hard_sigmoid' }, 'ERR_RNNKIT_ARGUMENT', /gateActivation is for lstm and gru cells, not rnn_tanh/],
  ];
  for (const [label, spec, code, message] of cases) {
    throwsCode(t, () => new RecurrentNetwork(spec as never), code, message, `RecurrentNetwork: ${label}`);
    throwsCode(t, () => new native.Network(spec as never), code, message, `native.Network: ${label}`);
  }
  // A good spec still works after all of that.
  const net = new RecurrentNetwork(base as never);
  t.equal(net.spec.hiddenSize, 4);
  // Without `new`, the class constructor refuses (node-addon-api's TypeError; no rnnkit code).
  t.throws(() => (native.Network as unknown as (s: unknown) => unknown)(base), TypeError);
});

t.test('dense input: wrong shapes, sizes, ranks and types', async (t) => {
  const net = lstm();
  net.setOptimizer({ type: 'adam', lr: 0.01 });
  const x = (data: unknown, shape: unknown) => ({ x: { data, shape } });
  const n = T * B * I;
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['data shorter than shape', x(sequence(n - 1), [T, B, I]), 'ERR_RNNKIT_SHAPE', /shape holds 24 values but input\.x\.data has 23/],
    ['data longer than shape', x(sequence(n + 3), [T, B, I]), 'ERR_RNNKIT_SHAPE', /holds 24 values but input\.x\.data has 27/],
    ['wrong feature count', x(sequence(T * B * 4), [T, B, 4]), 'ERR_RNNKIT_SHAPE', /input has 4 features, the network expects 3/],
    ['rank 2', x(sequence(n), [T * B, I]), 'ERR_RNNKIT_SHAPE', /must have shape \[time, batch, features\], got \[8, 3\]/],
    ['rank 4', x(sequence(n), [T, B, I, 1]), 'ERR_RNNKIT_SHAPE', /must have shape \[time, batch, features\]/],
    ['rank 1', x(sequence(n), [n]), 'ERR_RNNKIT_SHAPE', /must have shape \[time, batch, features\]/],
    ['too many dimensions', x(sequence(n), [T, B, I, 1, 1, 1, 1, 1, 1]), 'ERR_RNNKIT_SHAPE', /too many dimensions/],
    ['negative entries', x(sequence(n), [-T, -B, I]), 'ERR_RNNKIT_SHAPE', /shape\[0\] must be a non-negative integer, got -4/],
    ['fractional entry', x(sequence(n), [T, 2.5, 2.4]), 'ERR_RNNKIT_SHAPE', /shape\[1\] must be a non-negative integer, got 2\.5/],
    ['NaN entry', x(sequence(n), [NaN, B, I]), 'ERR_RNNKIT_SHAPE', /shape\[0\] must be a non-negative integer, got nan/i],
    ['Infinity entry', x(sequence(n), [T, Infinity, I]), 'ERR_RNNKIT_SHAPE', /shape\[1\] must be a non-negative integer/],
    ['string entry', x(sequence(n), ['4', B, I]), 'ERR_RNNKIT_SHAPE', /shape\[0\] must be a non-negative integer, got string/],
    ['null entry', x(sequence(n), [T, null, I]), 'ERR_RNNKIT_SHAPE', /shape\[1\] must be a non-negative integer, got null/],
    ['shape a string', x(sequence(n), '4,2,3'), 'ERR_RNNKIT_TYPE', /shape must be an Array of integers, got string/],
    ['shape a typed array', x(sequence(n), Int32Array.of(T, B, I)), 'ERR_RNNKIT_TYPE', /shape must be an Array of integers, got Int32Array/],
    ['no shape', { x: { data: sequence(n) } }, 'ERR_RNNKIT_SHAPE', /input\.x needs a shape/],
    ['a bare Float32Array', { x: sequence(n) }, 'ERR_RNNKIT_SHAPE', /must have shape \[time, batch, features\], got \[\]/],
    ['zero length', x(new Float32Array(0), [0, B, I]), 'ERR_RNNKIT_SHAPE', /every dimension of the input must be at least 1, got \[0, 2, 3\]/],
    ['zero batch', x(new Float32Array(0), [T, 0, I]), 'ERR_RNNKIT_SHAPE', /every dimension of the input must be at least 1, got \[4, 0, 3\]/],
    ['zero features', x(new Float32Array(0), [T, B, 0]), 'ERR_RNNKIT_SHAPE', /at least 1|features/],
    ['huge shape', x(sequence(n), [2 ** 40, 2 ** 40, I]), 'ERR_RNNKIT_SHAPE', /shape holds more than 2\^53 values but input\.x\.data has 24/],
    ['Float64Array data', x(Float64Array.from(sequence(n)), [T, B, I]), 'ERR_RNNKIT_TYPE', /input\.x\.data must be a Float32Array, got Float64Array/],
    ['plain Array data', x(Array.from(sequence(n)), [T, B, I]), 'ERR_RNNKIT_TYPE', /input\.x\.data must be a Float32Array, got Array/],
    ['Int32Array data', x(new Int32Array(n), [T, B, I]), 'ERR_RNNKIT_TYPE', /input\.x\.data must be a Float32Array, got Int32Array/],
    ['Buffer data', x(Buffer.alloc(n * 4), [T, B, I]), 'ERR_RNNKIT_TYPE', /input\.x\.data must be a Float32Array, got Uint8Array/],
    ['ArrayBuffer data', x(new ArrayBuffer(n * 4), [T, B, I]), 'ERR_RNNKIT_TYPE', /must be a Float32Array, got ArrayBuffer/],
    ['Float64Array as x', { x: Float64Array.from(sequence(n)) }, 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array, got Float64Array/],
    ['no data', { x: { shape: [T, B, I] } }, 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array or \{ data: Float32Array, shape \}/],
    ['x null', { x: null }, 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array or \{ data: Float32Array, shape \}, got null/],
    ['x a string', { x: 'abc' }, 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array or \{ data: Float32Array, shape \}, got string/],
    ['x a plain Array', { x: Array.from(sequence(n)) }, 'ERR_RNNKIT_TYPE', /input\.x must be a Float32Array or \{ data: Float32Array, shape \}, got Array/],
    ['no x', {}, 'ERR_RNNKIT_ARGUMENT', /input\.x is required/],
    ['tokens for a dense network', { tokens: { data: [0, 1], shape: [2, 1] } }, 'ERR_RNNKIT_ARGUMENT', /input\.x is required/],
    ['batchFirst a string', { ...goodInput(), batchFirst: 'yes' }, 'ERR_RNNKIT_TYPE', /batchFirst must be a boolean, got string/],
    ['input undefined', undefined, 'ERR_RNNKIT_TYPE', /input must be an object, got undefined/],
    ['input null', null, 'ERR_RNNKIT_TYPE', /input must be an object, got null/],
    ['input a string', 'x', 'ERR_RNNKIT_TYPE', /input must be an object, got string/],
    ['input a number', 3, 'ERR_RNNKIT_TYPE', /input must be an object, got number/],
    ['input an Array', [goodX()], 'ERR_RNNKIT_TYPE', /input must be an object, got Array/],
    ['input a Float32Array', sequence(n), 'ERR_RNNKIT_TYPE', /input must be an object, got Float32Array/],
  ];
  for (const [label, input, code, message] of cases) await badSequenceInput(t, net, input, code, message, label);
});

t.test('lengths: NaN, out of range, fractional or the wrong count', async (t) => {
  const net = lstm();
  net.setOptimizer({ type: 'sgd', lr: 0.1 });
  const withLengths = (lengths: unknown) => ({ ...goodInput(), lengths });
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['0', [0, T], 'ERR_RNNKIT_VALUE', /lengths\[0\] = 0 is outside \[1, 4\]/],
    ['T+1', [T, T + 1], 'ERR_RNNKIT_VALUE', /lengths\[1\] = 5 is outside \[1, 4\]/],
    ['-1', Int32Array.of(-1, T), 'ERR_RNNKIT_VALUE', /lengths\[0\] = -1 is outside \[1, 4\]/],
    ['1.5', [1.5, T], 'ERR_RNNKIT_VALUE', /input\.lengths\[0\] must be an integer, got 1\.5/],
    ['NaN', [T, NaN], 'ERR_RNNKIT_VALUE', /input\.lengths\[1\] must be an integer, got NaN/],
    ['Infinity', [Infinity, T], 'ERR_RNNKIT_VALUE', /input\.lengths\[0\] must be an integer/],
    ['2^31', [2 ** 31, T], 'ERR_RNNKIT_VALUE', /input\.lengths\[0\] must be an integer/],
    ['fractional Float64Array', Float64Array.of(T, 2.5), 'ERR_RNNKIT_VALUE', /input\.lengths\[1\] must be an integer, got 2\.5/],
    ['one too few', [T], 'ERR_RNNKIT_SHAPE', /lengths has 1 entries, expected one per batch row \(2\)/],
    ['one too many', [T, T, T], 'ERR_RNNKIT_SHAPE', /lengths has 3 entries, expected one per batch row \(2\)/],
    ['empty', [], 'ERR_RNNKIT_SHAPE', /input\.lengths is empty/],
    ['an empty Int32Array', new Int32Array(0), 'ERR_RNNKIT_SHAPE', /input\.lengths is empty/],
    ['a string', '4', 'ERR_RNNKIT_TYPE', /input\.lengths must be an Int32Array or an Array of integers, got string/],
    ['strings inside', ['4', '4'], 'ERR_RNNKIT_TYPE', /input\.lengths\[0\] must be a number, got string/],
    ['null', null, 'ERR_RNNKIT_TYPE', /input\.lengths must be an Int32Array or an Array of integers, got null/],
    ['a BigInt64Array', new BigInt64Array(2), 'ERR_RNNKIT_TYPE', /got BigInt64Array/],
  ];
  for (const [label, lengths, code, message] of cases) {
    await badSequenceInput(t, net, withLengths(lengths), code, message, `lengths ${label}`);
  }
});

t.test('initial states: h0/c0 of the wrong size, c0 for a GRU', async (t) => {
  const net = lstm();
  net.setOptimizer({ type: 'sgd', lr: 0.1 });
  const state = (extra: Record<string, unknown>) => ({ ...goodInput(), ...extra });
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['h0 too short', state({ h0: new Float32Array(7) }), 'ERR_RNNKIT_SHAPE', /h0 has 7 values, expected 8\b/],
    ['h0 too long', state({ h0: new Float32Array(16) }), 'ERR_RNNKIT_SHAPE', /h0 has 16 values, expected 8/],
    ['empty h0 tensor with a shape', state({ h0: { data: new Float32Array(8), shape: [1, 2, 3] } }), 'ERR_RNNKIT_SHAPE', /input\.h0\.shape holds 6 values but input\.h0\.data has 8/],
    ['h0 Float64Array', state({ h0: new Float64Array(8) }), 'ERR_RNNKIT_TYPE', /input\.h0 must be a Float32Array, got Float64Array/],
    ['h0 plain Array', state({ h0: new Array(8).fill(0) }), 'ERR_RNNKIT_TYPE', /input\.h0 must be a Float32Array or \{ data: Float32Array, shape \}, got Array/],
    ['h0 a number', state({ h0: 0 }), 'ERR_RNNKIT_TYPE', /input\.h0 must be a Float32Array or \{ data: Float32Array, shape \}, got number/],
    ['h0 null', state({ h0: null }), 'ERR_RNNKIT_TYPE', /input\.h0 must be a Float32Array or \{ data: Float32Array, shape \}, got null/],
    ['h0 empty', state({ h0: new Float32Array(0) }), 'ERR_RNNKIT_SHAPE', /input\.h0 is empty/],
    ['c0 empty', state({ c0: { data: new Float32Array(0), shape: [1, 0, 4] } }), 'ERR_RNNKIT_SHAPE', /input\.c0 is empty/],
    ['c0 too short', state({ c0: new Float32Array(3) }), 'ERR_RNNKIT_SHAPE', /c0 has 3 values, expected 8/],
    ['c0 Int32Array', state({ c0: new Int32Array(8) }), 'ERR_RNNKIT_TYPE', /input\.c0 must be a Float32Array, got Int32Array/],
  ];
  for (const [label, input, code, message] of cases) await badSequenceInput(t, net, input, code, message, label);

  const gru = new RecurrentNetwork({ cell: 'gru', inputSize: I, hiddenSize: H, seed: 3 });
  const before = gru.forwardSync(goodInput());
  const c0 = { ...goodInput(), c0: new Float32Array(B * H) };
  throwsCode(t, () => gru.forwardSync(c0), 'ERR_RNNKIT_ARGUMENT', /c0 is only for LSTM networks/, 'c0 for a GRU (sync)');
  await rejectsCode(t, () => gru.forward(c0), 'ERR_RNNKIT_ARGUMENT', /c0 is only for LSTM networks/, 'c0 for a GRU');
  t.same(Array.from(gru.forwardSync(goodInput()).output.data), Array.from(before.output.data), 'the GRU still works');
  t.equal(before.cn, undefined, 'a GRU has no cn');
});

t.test('token input: out of the vocabulary, non-integer, wrong shapes', async (t) => {
  const net = new RecurrentNetwork({ cell: 'gru', vocabSize: 5, hiddenSize: H, headSize: 5, seed: 11 });
  net.setOptimizer({ type: 'adam' });
  const good = () => ({ tokens: { data: Int32Array.from({ length: T * B }, (_, i) => i % 5), shape: [T, B] } });
  const before = net.forwardSync(good());
  const tok = (data: unknown, shape: unknown = [T, B]) => ({ tokens: { data, shape } });
  const ids = (last: number) => [0, 1, 2, 3, 4, 0, 1, last];
  const target = { classes: Int32Array.from({ length: T * B }, (_, i) => i % 5) };
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['token == vocabSize', tok(ids(5)), 'ERR_RNNKIT_VALUE', /token 5 at index 7 is outside the vocabulary \[0, 5\)/],
    ['token -1', tok(Int32Array.from(ids(-1))), 'ERR_RNNKIT_VALUE', /token -1 at index 7 is outside the vocabulary \[0, 5\)/],
    ['huge token', tok(ids(2 ** 31 - 1)), 'ERR_RNNKIT_VALUE', /token 2147483647 at index 7 is outside the vocabulary/],
    ['token 1.5', tok(ids(1.5)), 'ERR_RNNKIT_VALUE', /input\.tokens\.data\[7\] must be an integer, got 1\.5/],
    ['token 1.5 in a Float32Array', tok(Float32Array.from(ids(1.5))), 'ERR_RNNKIT_VALUE', /input\.tokens\.data\[7\] must be an integer/],
    ['token NaN', tok(ids(NaN)), 'ERR_RNNKIT_VALUE', /input\.tokens\.data\[7\] must be an integer, got NaN/],
    ['token 2^32-1 in a Uint32Array', tok(Uint32Array.from(ids(2 ** 32 - 1))), 'ERR_RNNKIT_VALUE', /input\.tokens\.data\[7\] must be an integer/],
    ['token a string', tok([...ids(0).slice(0, 7), '1']), 'ERR_RNNKIT_TYPE', /input\.tokens\.data\[7\] must be a number, got string/],
    ['tokens a BigInt64Array', tok(new BigInt64Array(8)), 'ERR_RNNKIT_TYPE', /input\.tokens\.data must be an Int32Array or an Array of integers, got BigInt64Array/],
    ['too few tokens', tok(ids(0).slice(0, 7)), 'ERR_RNNKIT_SHAPE', /shape holds 8 values but input\.tokens\.data has 7/],
    ['rank 3', tok(ids(0), [T, B, 1]), 'ERR_RNNKIT_SHAPE', /token input must have shape \[time, batch\]/],
    ['zero batch', tok([], [T, 0]), 'ERR_RNNKIT_SHAPE', /every dimension of the input must be at least 1/],
    ['bare Int32Array', { tokens: Int32Array.from(ids(0)) }, 'ERR_RNNKIT_SHAPE', /input\.tokens needs a shape/],
    ['no shape', { tokens: { data: ids(0) } }, 'ERR_RNNKIT_SHAPE', /input\.tokens needs a shape/],
    ['dense x for a token network', goodInput(), 'ERR_RNNKIT_ARGUMENT', /input\.tokens is required: this network reads token ids over 5 symbols/],
  ];
  for (const [label, input, code, message] of cases) {
    throwsCode(t, () => net.forwardSync(input as never), code, message, `forwardSync ${label}`);
    await rejectsCode(t, () => net.forward(input as never), code, message, `forward ${label}`);
    throwsCode(t, () => net.trainStepSync(input as never, target), code, message, `trainStepSync ${label}`);
    await rejectsCode(t, () => net.trainStep(input as never, target), code, message, `trainStep ${label}`);
    const after = net.forwardSync(good());
    t.same(Array.from(after.output.data), Array.from(before.output.data), `${label}: the network is unchanged`);
  }
  t.equal(net.optimizerInfo()?.steps, 0, 'no optimizer step was taken');
});

t.test('loss targets of the wrong size, out-of-range classes, bad kinds', async (t) => {
  const net = lstm();
  net.forwardSync(goodInput(), { train: true });
  const ref = net.lossSync({ classes: goodClasses() });
  const refMse = net.lossSync({ kind: 'mse', values: sequence(T * B * V, 1) });
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['too few classes', { classes: goodClasses().subarray(1) }, 'ERR_RNNKIT_SHAPE', /targets has 7 values, expected 8/],
    ['too many classes', { classes: Array.from({ length: 9 }, () => 0) }, 'ERR_RNNKIT_SHAPE', /targets has 9 values, expected 8/],
    ['class == head size', { classes: [0, 1, 0, 1, 0, 1, 0, 2] }, 'ERR_RNNKIT_VALUE', /target 2 at index 7 is not a class of the output \(it has 2\)/],
    ['class 1000', { classes: Int32Array.of(0, 1, 1000, 1, 0, 1, 0, 1) }, 'ERR_RNNKIT_VALUE', /target 1000 at index 2 is not a class/],
    ['class 0.5', { classes: [0, 1, 0, 1, 0, 1, 0, 0.5] }, 'ERR_RNNKIT_VALUE', /target\.classes\[7\] must be an integer, got 0\.5/],
    ['class NaN', { classes: [NaN, 1, 0, 1, 0, 1, 0, 1] }, 'ERR_RNNKIT_VALUE', /target\.classes\[0\] must be an integer, got NaN/],
    ['classes a string', { classes: '01010101' }, 'ERR_RNNKIT_TYPE', /target\.classes must be/],
    ['classes tensor with a bad shape', { classes: { data: goodClasses(), shape: [3, 3] } }, 'ERR_RNNKIT_SHAPE', /target\.classes\.shape holds 9 values but target\.classes\.data has 8/],
    ['no classes', {}, 'ERR_RNNKIT_ARGUMENT', /target\.classes is required for softmaxCrossEntropy/],
    ['unknown kind', { kind: 'hinge', classes: goodClasses() }, 'ERR_RNNKIT_ARGUMENT', /unknown loss 'hinge': expected softmaxCrossEntropy or mse/],
    ['kind not a string', { kind: 1, classes: goodClasses() }, 'ERR_RNNKIT_TYPE', /kind must be a string, got number/],
    ['mse values too short', { kind: 'mse', values: new Float32Array(15) }, 'ERR_RNNKIT_SHAPE', /target has 15 values, expected 16/],
    ['mse values Float64Array', { kind: 'mse', values: new Float64Array(16) }, 'ERR_RNNKIT_TYPE', /target\.values must be a Float32Array, got Float64Array/],
    ['mse without values', { kind: 'mse' }, 'ERR_RNNKIT_ARGUMENT', /target\.values is required for mse/],
    ['target undefined', undefined, 'ERR_RNNKIT_TYPE', /target must be an object, got undefined/],
    ['target null', null, 'ERR_RNNKIT_TYPE', /target must be an object, got null/],
    ['target a string', 'mse', 'ERR_RNNKIT_TYPE', /target must be an object, got string/],
    ['target an Int32Array', goodClasses(), 'ERR_RNNKIT_TYPE', /target must be an object, got Int32Array/],
  ];
  for (const [label, target, code, message] of cases) {
    throwsCode(t, () => net.lossSync(target as never), code, message, `lossSync ${label}`);
    await rejectsCode(t, () => net.loss(target as never), code, message, `loss ${label}`);
    // The training forward is kept: the loss and its input gradient are what they were.
    const again = net.lossSync({ classes: goodClasses() });
    t.equal(again.loss, ref.loss, `${label}: the loss afterwards is unchanged`);
    t.same(Array.from(again.dx ?? []), Array.from(ref.dx ?? []), `${label}: dx afterwards is unchanged`);
  }
  t.equal(net.lossSync({ kind: 'mse', values: sequence(T * B * V, 1) }).loss, refMse.loss, 'mse loss unchanged');

  // Through trainStep: the target is checked, no step is taken, the parameters are kept.
  const trainer = lstm();
  trainer.setOptimizer({ type: 'sgd', lr: 0.5 });
  const before = snapshot(trainer);
  for (const [label, target, code, message] of cases) {
    if (label === 'target undefined') {
      throwsCode(t, () => trainer.trainStepSync(goodInput()), code, message, 'trainStepSync without a target');
      await rejectsCode(t, () => (trainer.trainStep as (i: unknown) => unknown)(goodInput()), code, message, 'trainStep without a target');
      continue;
    }
    throwsCode(t, () => trainer.trainStepSync(goodInput(), target as never), code, message, `trainStepSync ${label}`);
    await rejectsCode(t, () => trainer.trainStep(goodInput(), target as never), code, message, `trainStep ${label}`);
    intact(t, trainer, before, `trainStep ${label}`);
  }
  t.equal(trainer.optimizerInfo()?.steps, 0, 'no optimizer step was taken');
  // And a good trainStep afterwards matches the same step on a fresh twin.
  const twin = lstm();
  twin.setOptimizer({ type: 'sgd', lr: 0.5 });
  const a = trainer.trainStepSync(goodInput(), { classes: goodClasses() });
  const b = twin.trainStepSync(goodInput(), { classes: goodClasses() });
  t.same(a, b, 'a good trainStep after the rejected ones matches a fresh network');
  t.same(flatParams(trainer), flatParams(twin), 'and leaves the same parameters');
});

t.test('backward: gradients of the wrong size or type', async (t) => {
  const net = lstm();
  net.forwardSync(goodInput(), { train: true });
  const dOutput = sequence(T * B * V, 2);
  const ref = net.backwardSync({ dOutput });
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['dOutput too short', { dOutput: new Float32Array(15) }, 'ERR_RNNKIT_SHAPE', /dOutput has 15 values, expected 16/],
    ['dOutput tensor with a bad shape', { dOutput: { data: dOutput, shape: [4, 2, 3] } }, 'ERR_RNNKIT_SHAPE', /gradient\.dOutput\.shape holds 24 values but gradient\.dOutput\.data has 16/],
    ['dOutput Float64Array', { dOutput: new Float64Array(16) }, 'ERR_RNNKIT_TYPE', /gradient\.dOutput must be a Float32Array, got Float64Array/],
    ['dOutput plain Array', { dOutput: Array.from(dOutput) }, 'ERR_RNNKIT_TYPE', /gradient\.dOutput must be a Float32Array or \{ data: Float32Array, shape \}, got Array/],
    ['dOutput empty', { dOutput: new Float32Array(0) }, 'ERR_RNNKIT_SHAPE', /gradient\.dOutput is empty/],
    ['dhn empty', { dOutput, dhn: new Float32Array(0) }, 'ERR_RNNKIT_SHAPE', /gradient\.dhn is empty/],
    ['dcn empty', { dOutput, dcn: new Float32Array(0) }, 'ERR_RNNKIT_SHAPE', /gradient\.dcn is empty/],
    ['dhn too long', { dhn: new Float32Array(9) }, 'ERR_RNNKIT_SHAPE', /dhn has 9 values, expected 8/],
    ['dcn too short', { dcn: new Float32Array(1) }, 'ERR_RNNKIT_SHAPE', /dcn has 1 values, expected 8/],
    ['gradient undefined', undefined, 'ERR_RNNKIT_TYPE', /gradient must be an object, got undefined/],
    ['gradient null', null, 'ERR_RNNKIT_TYPE', /gradient must be an object, got null/],
    ['gradient a string', 'dOutput', 'ERR_RNNKIT_TYPE', /gradient must be an object, got string/],
    ['gradient a Float32Array', dOutput, 'ERR_RNNKIT_TYPE', /gradient must be an object, got Float32Array/],
  ];
  for (const [label, grad, code, message] of cases) {
    throwsCode(t, () => net.backwardSync(grad as never), code, message, `backwardSync ${label}`);
    await rejectsCode(t, () => net.backward(grad as never), code, message, `backward ${label}`);
    const again = net.backwardSync({ dOutput });
    t.same(Array.from(again.dx ?? []), Array.from(ref.dx ?? []), `${label}: dx afterwards is unchanged`);
    t.same(Array.from(again.dh0), Array.from(ref.dh0), `${label}: dh0 afterwards is unchanged`);
  }
  const gru = new RecurrentNetwork({ cell: 'gru', inputSize: I, hiddenSize: H, seed: 1 });
  gru.forwardSync(goodInput(), { train: true });
  const dcn = { dcn: new Float32Array(B * H) };
  throwsCode(t, () => gru.backwardSync(dcn), 'ERR_RNNKIT_ARGUMENT', /dcn is only for LSTM networks/, 'dcn for a GRU (sync)');
  await rejectsCode(t, () => gru.backward(dcn), 'ERR_RNNKIT_ARGUMENT', /dcn is only for LSTM networks/, 'dcn for a GRU');
});

t.test('calls out of order are STATE errors', async (t) => {
  const net = lstm();
  const dOutput = { dOutput: new Float32Array(T * B * V) };
  const target = { classes: goodClasses() };
  const noForward = /needs a training forward first \(forward with train: true\)/;
  throwsCode(t, () => net.backwardSync(dOutput), 'ERR_RNNKIT_STATE', noForward, 'backwardSync before any forward');
  await rejectsCode(t, () => net.backward(dOutput), 'ERR_RNNKIT_STATE', noForward, 'backward before any forward');
  throwsCode(t, () => net.lossSync(target), 'ERR_RNNKIT_STATE', noForward, 'lossSync before any forward');
  await rejectsCode(t, () => net.loss(target), 'ERR_RNNKIT_STATE', noForward, 'loss before any forward');
  net.forwardSync(goodInput());
  throwsCode(t, () => net.backwardSync(dOutput), 'ERR_RNNKIT_STATE', noForward, 'backwardSync after an inference forward');
  await rejectsCode(t, () => net.loss(target), 'ERR_RNNKIT_STATE', noForward, 'loss after an inference forward');
  net.forwardSync(goodInput(), { train: true });
  net.setParam('bias_hh_l0', net.getParam('bias_hh_l0'));
  throwsCode(t, () => net.lossSync(target), 'ERR_RNNKIT_STATE', noForward, 'lossSync after setParam (activations are stale)');
  // A training forward that is then replaced by a failed one is still usable (the failed call changed nothing).
  await net.forward(goodInput(), { train: true });
  throwsCode(t, () => net.forwardSync({ x: { data: new Float32Array(1), shape: [1, 1, 1] } }, { train: true }), 'ERR_RNNKIT_SHAPE', /features/, 'a bad training forward');
  t.type(net.lossSync(target).loss, 'number', 'the earlier training forward is still there');

  const noOptimizer = /no optimizer is set: call setOptimizer first/;
  throwsCode(t, () => net.step(), 'ERR_RNNKIT_STATE', noOptimizer, 'step without an optimizer');
  throwsCode(t, () => net.trainStepSync(goodInput(), target), 'ERR_RNNKIT_STATE', noOptimizer, 'trainStepSync without an optimizer');
  await rejectsCode(t, () => net.trainStep(goodInput(), target), 'ERR_RNNKIT_STATE', noOptimizer, 'trainStep without an optimizer');
  throwsCode(t, () => net.getOptimizerState('exp_avg'), 'ERR_RNNKIT_STATE', /no optimizer is set/, 'getOptimizerState without an optimizer');
  throwsCode(t, () => net.setOptimizerState('steps', 3), 'ERR_RNNKIT_STATE', /no optimizer is set/, 'setOptimizerState(steps) without an optimizer');
  throwsCode(t, () => net.setOptimizerState('exp_avg', new Float32Array(3)), 'ERR_RNNKIT_STATE', /no optimizer is set/, 'setOptimizerState without an optimizer');
  t.equal(net.optimizerInfo(), null, 'still no optimizer');

  net.setOptimizer({ type: 'sgd', lr: 0.1 });
  net.forwardSync(goodInput(), { train: true });
  net.lossSync(target);
  net.step();
  throwsCode(t, () => net.backwardSync(dOutput), 'ERR_RNNKIT_STATE', noForward, 'backwardSync after an optimizer step');
});

t.test('parameters: unknown names and wrong sizes', async (t) => {
  const net = lstm();
  const names = net.paramNames();
  const before = snapshot(net);
  const listsNames = (label: string, err: unknown) => {
    const message = (err as Error).message;
    for (const name of names) t.ok(message.includes(name), `${label}: the message lists ${name}`);
  };
  const unknown = [
    ['weight_ih_l1', /no parameter named 'weight_ih_l1'; this network has: weight_ih_l0, /],
    ['head.weight ', /no parameter named 'head\.weight '/],
    ['', /no parameter named ''/],
    ['WEIGHT_IH_L0', /no parameter named 'WEIGHT_IH_L0'/],
  ] as const;
  for (const [name, message] of unknown) {
    for (const [method, call] of [
      ['getParam', () => net.getParam(name)],
      ['getGrad', () => net.getGrad(name)],
      ['paramShape', () => net.paramShape(name)],
      ['setParam', () => net.setParam(name, new Float32Array(48))],
      ['setParam with a bad value', () => net.setParam(name, new Float64Array(1) as never)],
    ] as const) {
      throwsCode(t, call, 'ERR_RNNKIT_UNKNOWN_PARAM', message, `${method}('${name}')`);
      try {
        call();
      } catch (err) {
        listsNames(`${method}('${name}')`, err);
      }
    }
  }
  const sizes: Array<[string, unknown, Code, RegExp]> = [
    ['too short', new Float32Array(47), 'ERR_RNNKIT_SHAPE', /weight_ih_l0 has 47 values, expected 48 \(shape \[16, 3\]\)/],
    ['too long', new Float32Array(49), 'ERR_RNNKIT_SHAPE', /weight_ih_l0 has 49 values, expected 48/],
    ['empty', new Float32Array(0), 'ERR_RNNKIT_SHAPE', /weight_ih_l0 has 0 values, expected 48/],
    ['Float64Array', new Float64Array(48), 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got Float64Array/],
    ['plain Array', new Array(48).fill(0), 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got Array/],
    ['tensor of Float64', { data: new Float64Array(48), shape: [16, 3] }, 'ERR_RNNKIT_TYPE', /must be a Float32Array, got Float64Array/],
    ['undefined', undefined, 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got undefined/],
    ['null', null, 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got null/],
    ['a string', 'x', 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got string/],
    ['Float64Array in a tensor-like', { data: new Float64Array(48) }, 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got Float64Array/],
  ];
  for (const [label, value, code, message] of sizes)
    throwsCode(t, () => net.setParam('weight_ih_l0', value as never), code, message, `setParam ${label}`);
  // The native method directly, where no wrapper unpacks `.data`.
  const raw = new native.Network({ cell: 'lstm', inputSize: I, hiddenSize: H, seed: 7 });
  throwsCode(t, () => raw.setParam('weight_ih_l0', [1, 2] as never), 'ERR_RNNKIT_TYPE', /value of weight_ih_l0 must be a Float32Array, got Array/, 'native setParam with an Array');
  throwsCode(t, () => raw.setParam('weight_ih_l0', new Float32Array(5)), 'ERR_RNNKIT_SHAPE', /expected 48/, 'native setParam of the wrong size');
  for (const [label, arg] of [['nothing', []], ['undefined', [undefined]], ['null', [null]], ['a number', [3]], ['an object', [{}]]] as const) {
    for (const method of ['getParam', 'getGrad', 'paramShape', 'setParam'] as const)
      throwsCode(t, () => (raw[method] as (...a: unknown[]) => unknown)(...arg), 'ERR_RNNKIT_TYPE', /name must be a string, got /, `native ${method} with ${label}`);
  }
  intact(t, net, before, 'after the rejected parameter calls');
});

t.test('optimizer configs and optimizer state', async (t) => {
  const net = lstm();
  net.setOptimizer({ type: 'adam', lr: 0.01 });
  net.trainStepSync(goodInput(), { classes: goodClasses() });
  const info = net.optimizerInfo();
  const expAvg = Array.from(net.getOptimizerState('exp_avg'));
  const cases: Array<[string, unknown, Code, RegExp]> = [
    ['unknown type', { type: 'adagrad' }, 'ERR_RNNKIT_ARGUMENT', /unknown optimizer 'adagrad': expected one of sgd, adam, adamw, rmsprop/],
    ['no type', { lr: 0.1 }, 'ERR_RNNKIT_ARGUMENT', /optimizer\.type is required \(sgd, adam, adamw or rmsprop\)/],
    ['type a number', { type: 1 }, 'ERR_RNNKIT_TYPE', /type must be a string, got number/],
    ['negative lr', { type: 'sgd', lr: -0.1 }, 'ERR_RNNKIT_ARGUMENT', /lr must be a finite number >= 0/],
    ['lr Infinity', { type: 'sgd', lr: Infinity }, 'ERR_RNNKIT_ARGUMENT', /lr must be a finite number >= 0/],
    ['lr NaN', { type: 'adam', lr: NaN }, 'ERR_RNNKIT_VALUE', /lr must not be NaN/],
    ['lr a string', { type: 'adam', lr: '0.1' }, 'ERR_RNNKIT_TYPE', /lr must be a number, got string/],
    ['one beta', { type: 'adam', betas: [0.9] }, 'ERR_RNNKIT_TYPE', /optimizer\.betas must be an Array of two numbers/],
    ['three betas', { type: 'adam', betas: [0.9, 0.99, 0.999] }, 'ERR_RNNKIT_TYPE', /optimizer\.betas must be an Array of two numbers/],
    ['a string beta', { type: 'adam', betas: [0.9, '0.99'] }, 'ERR_RNNKIT_TYPE', /optimizer\.betas must be an Array of two numbers/],
    ['betas a string', { type: 'adam', betas: '0.9,0.99' }, 'ERR_RNNKIT_TYPE', /optimizer\.betas must be an Array of two numbers/],
    ['betas a Float32Array', { type: 'adam', betas: Float32Array.of(0.9, 0.99) }, 'ERR_RNNKIT_TYPE', /optimizer\.betas must be an Array of two numbers/],
    ['beta1 = 1', { type: 'adam', betas: [1, 0.99] }, 'ERR_RNNKIT_ARGUMENT', /betas must be in \[0, 1\)/],
    ['beta2 negative', { type: 'adamw', betas: [0.9, -0.1] }, 'ERR_RNNKIT_ARGUMENT', /betas must be in \[0, 1\)/],
    ['beta NaN', { type: 'adam', betas: [NaN, 0.99] }, 'ERR_RNNKIT_ARGUMENT', /betas must be in \[0, 1\)/],
    ['negative momentum', { type: 'sgd', momentum: -1 }, 'ERR_RNNKIT_ARGUMENT', /momentum must be >= 0/],
    ['nesterov without momentum', { type: 'sgd', nesterov: true }, 'ERR_RNNKIT_ARGUMENT', /nesterov needs momentum > 0/],
    ['negative weightDecay', { type: 'adamw', weightDecay: -1 }, 'ERR_RNNKIT_ARGUMENT', /weightDecay must be >= 0/],
    ['alpha 2', { type: 'rmsprop', alpha: 2 }, 'ERR_RNNKIT_ARGUMENT', /alpha must be in \[0, 1\]/],
    ['amsgrad a string', { type: 'adam', amsgrad: 'yes' }, 'ERR_RNNKIT_TYPE', /amsgrad must be a boolean, got string/],
    ['undefined', undefined, 'ERR_RNNKIT_TYPE', /optimizer must be an object, got undefined/],
    ['null', null, 'ERR_RNNKIT_TYPE', /optimizer must be an object, got null/],
    ['a string', 'adam', 'ERR_RNNKIT_TYPE', /optimizer must be an object, got string/],
  ];
  for (const [label, config, code, message] of cases) {
    throwsCode(t, () => net.setOptimizer(config as never), code, message, `setOptimizer ${label}`);
    t.same(net.optimizerInfo(), info, `${label}: the optimizer in place is kept`);
  }
  t.same(Array.from(net.getOptimizerState('exp_avg')), expAvg, 'its state is kept');

  const total = expAvg.length;
  throwsCode(t, () => net.getOptimizerState('momentum_buffer'), 'ERR_RNNKIT_UNKNOWN_PARAM', /this optimizer has no state named 'momentum_buffer'/, 'getOptimizerState of a slot adam lacks');
  throwsCode(t, () => net.setOptimizerState('nope', new Float32Array(total)), 'ERR_RNNKIT_UNKNOWN_PARAM', /no state named 'nope'/, 'setOptimizerState of an unknown slot');
  throwsCode(t, () => net.setOptimizerState('nope', new Float32Array(3)), 'ERR_RNNKIT_UNKNOWN_PARAM', /no state named 'nope'/, 'setOptimizerState of an unknown slot, wrong size too');
  throwsCode(t, () => net.setOptimizerState('exp_avg', new Float32Array(total - 1)), 'ERR_RNNKIT_SHAPE', new RegExp(`exp_avg has ${total - 1} values, expected ${total}`), 'setOptimizerState of the wrong size');
  throwsCode(t, () => net.setOptimizerState('exp_avg', new Float64Array(total) as never), 'ERR_RNNKIT_TYPE', /exp_avg must be a Float32Array, got Float64Array/, 'setOptimizerState with a Float64Array');
  throwsCode(t, () => net.setOptimizerState('steps', -1), 'ERR_RNNKIT_VALUE', /steps must be a non-negative integer/, 'steps -1');
  throwsCode(t, () => net.setOptimizerState('steps', NaN), 'ERR_RNNKIT_VALUE', /steps must be a non-negative integer/, 'steps NaN');
  throwsCode(t, () => net.setOptimizerState('steps', '3' as never), 'ERR_RNNKIT_TYPE', /steps must be a number/, 'steps a string');
  throwsCode(t, () => (net.getOptimizerState as (...a: unknown[]) => unknown)(), 'ERR_RNNKIT_TYPE', /slot must be a string, got (nothing|undefined)/, 'getOptimizerState()');
  throwsCode(t, () => (net.setOptimizerState as (...a: unknown[]) => unknown)(null), 'ERR_RNNKIT_TYPE', /slot must be a string, got null/, 'setOptimizerState(null)');
  t.same(Array.from(net.getOptimizerState('exp_avg')), expAvg, 'the state is unchanged after the rejected writes');
  t.same(net.optimizerInfo(), info, 'and so is the step count');
});

t.test('clipGradNorm and clipNorm: zero, negative, NaN, not a number', async (t) => {
  const net = lstm();
  net.forwardSync(goodInput(), { train: true });
  net.lossSync({ classes: goodClasses() });
  const norm = net.gradNorm();
  const grad = Array.from(net.getGrad('weight_hh_l0').data);
  t.ok(norm > 0, 'there is a gradient to clip');
  for (const [label, value] of [['0', 0], ['-1', -1], ['NaN', NaN], ['Infinity', Infinity], ['-0', -0]] as const)
    throwsCode(t, () => net.clipGradNorm(value), 'ERR_RNNKIT_ARGUMENT', /must be a finite number > 0/, `clipGradNorm(${label})`);
  for (const [label, args] of [['nothing', []], ['undefined', [undefined]], ['null', [null]], ['a string', ['1']]] as const)
    throwsCode(t, () => (net.clipGradNorm as (...a: unknown[]) => unknown)(...args), 'ERR_RNNKIT_TYPE', /maxNorm must be a number/, `clipGradNorm(${label})`);
  t.equal(net.gradNorm(), norm, 'the gradients were not scaled');
  t.same(Array.from(net.getGrad('weight_hh_l0').data), grad, 'the gradients are unchanged');

  net.setOptimizer({ type: 'sgd', lr: 0.1 });
  const before = snapshot(net);
  const target = { classes: goodClasses() };
  const bad: Array<[string, unknown, Code, RegExp]> = [
    ['clipNorm -1', { clipNorm: -1 }, 'ERR_RNNKIT_VALUE', /clipNorm must be a finite number >= 0/],
    ['clipNorm Infinity', { clipNorm: Infinity }, 'ERR_RNNKIT_VALUE', /clipNorm must be a finite number >= 0/],
    ['clipNorm NaN', { clipNorm: NaN }, 'ERR_RNNKIT_VALUE', /clipNorm must not be NaN/],
    ['clipNorm a string', { clipNorm: '1' }, 'ERR_RNNKIT_TYPE', /clipNorm must be a number, got string/],
    ['options null', null, 'ERR_RNNKIT_TYPE', /options must be an object, got null/],
    ['options a number', 1, 'ERR_RNNKIT_TYPE', /options must be an object, got number/],
  ];
  for (const [label, options, code, message] of bad) {
    throwsCode(t, () => net.trainStepSync(goodInput(), target, options as never), code, message, `trainStepSync ${label}`);
    await rejectsCode(t, () => net.trainStep(goodInput(), target, options as never), code, message, `trainStep ${label}`);
    intact(t, net, before, `trainStep ${label}`);
  }
  for (const [label, options] of [['null', null], ['a string', 'train'], ['train a number', { train: 1 }]] as const) {
    const message = label === 'train a number' ? /train must be a boolean, got number/ : /options must be an object/;
    throwsCode(t, () => net.forwardSync(goodInput(), options as never), 'ERR_RNNKIT_TYPE', message, `forwardSync options ${label}`);
    await rejectsCode(t, () => net.forward(goodInput(), options as never), 'ERR_RNNKIT_TYPE', message, `forward options ${label}`);
  }
  intact(t, net, before, 'after the rejected options');
});

t.test('methods called on something that is not a Network', async (t) => {
  const proto = native.Network.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const promiseMethods = new Set(['forward', 'backward', 'loss', 'trainStep', 'evaluate']);
  const notANetwork = /(this method must be called on a Network|receiver of this method must be a Network)/;
  const methods = Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor' && typeof proto[m] === 'function');
  t.ok(methods.length >= 25, `the native prototype has its methods (${methods.length})`);
  const good = new native.Network({ cell: 'gru', inputSize: I, hiddenSize: H, seed: 2 });
  const before = Array.from(good.forwardSync(goodInput()).output.data);
  const impostors: Array<[string, unknown]> = [
    ['a plain object', {}],
    ['undefined', undefined],
    ['null', null],
    ['a string', 'Network'],
    ['an object with the prototype', Object.create(native.Network.prototype)],
    ['a RecurrentNetwork', new RecurrentNetwork({ cell: 'gru', inputSize: I, hiddenSize: H })],
    ['a Buffer', Buffer.alloc(16)],
    ['the constructor', native.Network],
  ];
  for (const [label, self] of impostors) {
    for (const m of methods) {
      const call = () => proto[m].call(self, goodInput(), { classes: goodClasses() });
      if (promiseMethods.has(m)) await rejectsCode(t, call, 'ERR_RNNKIT_TYPE', notANetwork, `${m} on ${label}`);
      else throwsCode(t, call, 'ERR_RNNKIT_TYPE', notANetwork, `${m} on ${label}`);
    }
  }
  t.same(Array.from(good.forwardSync(goodInput()).output.data), before, 'a real Network is unaffected');
  // A real network's method applied to another real network works on that other one.
  const other = new native.Network({ cell: 'gru', inputSize: I, hiddenSize: H, seed: 2 });
  const borrowed = proto.forwardSync.call(other, goodInput()) as { output: { data: Float32Array } };
  t.same(Array.from(borrowed.output.data), before, 'a borrowed method runs on its `this`');

  // RecurrentNetwork's own methods on a foreign `this` fail with a TypeError (JavaScript's private-field check).
  const rproto = RecurrentNetwork.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const m of ['forwardSync', 'paramNames', 'getParam', 'dispose', 'trainStepSync']) {
    t.throws(() => rproto[m].call({}, goodInput()), TypeError, `RecurrentNetwork.prototype.${m}.call({}) is a TypeError`);
  }
});

t.test('no arguments, undefined, null or a string, everywhere', async (t) => {
  const net = lstm();
  net.setOptimizer({ type: 'adam' });
  const before = snapshot(net);
  net.forwardSync(goodInput(), { train: true });
  const nets = net as unknown as Record<string, (...a: unknown[]) => unknown>;
  const what: Record<string, RegExp> = {
    forward: /input must be an object/,
    forwardSync: /input must be an object/,
    trainStep: /input must be an object/,
    trainStepSync: /input must be an object/,
    backward: /gradient must be an object/,
    backwardSync: /gradient must be an object/,
    loss: /target must be an object/,
    lossSync: /target must be an object/,
    setOptimizer: /optimizer must be an object/,
    getParam: /name must be a string/,
    getGrad: /name must be a string/,
    paramShape: /name must be a string/,
    setParam: /name must be a string/,
    getOptimizerState: /slot must be a string/,
    setOptimizerState: /slot must be a string/,
    clipGradNorm: /maxNorm must be a number/,
  };
  const argLists: Array<[string, unknown[]]> = [
    ['no arguments', []],
    ['undefined', [undefined]],
    ['null', [null]],
    ['a number', [42]],
    ['a boolean', [true]],
  ];
  for (const [method, message] of Object.entries(what)) {
    for (const [label, args] of argLists) {
      if (method === 'clipGradNorm' && label === 'a number') continue; // a valid call
      const call = () => nets[method].apply(net, args);
      if (['forward', 'backward', 'loss', 'trainStep'].includes(method))
        await rejectsCode(t, call, 'ERR_RNNKIT_TYPE', message, `${method} with ${label}`);
      else throwsCode(t, call, 'ERR_RNNKIT_TYPE', message, `${method} with ${label}`);
    }
  }
  // A string where an object is expected is a TYPE error; where a name is expected it is an unknown name.
  for (const method of ['forward', 'backward', 'loss', 'trainStep'])
    await rejectsCode(t, () => nets[method].call(net, 'x'), 'ERR_RNNKIT_TYPE', what[method], `${method} with a string`);
  for (const method of ['forwardSync', 'backwardSync', 'lossSync', 'trainStepSync', 'setOptimizer', 'clipGradNorm'])
    throwsCode(t, () => nets[method].call(net, 'x'), 'ERR_RNNKIT_TYPE', what[method], `${method} with a string`);
  for (const method of ['getParam', 'getGrad', 'paramShape', 'setParam'])
    throwsCode(t, () => nets[method].call(net, 'x'), 'ERR_RNNKIT_UNKNOWN_PARAM', /no parameter named 'x'; this network has: /, `${method} with a string`);
  throwsCode(t, () => net.getOptimizerState('x'), 'ERR_RNNKIT_UNKNOWN_PARAM', /no state named 'x'/, 'getOptimizerState with a string');
  // The training forward made before all of this is still usable, and nothing changed.
  t.type(net.lossSync({ classes: goodClasses() }).loss, 'number', 'loss still works on the kept training forward');
  net.zeroGrad();
  intact(t, net, before, 'after every rejected call');
});

t.test('setThreads refuses anything but an integer in [1, 1024]', async (t) => {
  const threads = backendInfo().threads;
  const cases: Array<[string, unknown[]]> = [
    ['0', [0]],
    ['1.5', [1.5]],
    ["'x'", ['x']],
    ["'2'", ['2']],
    ['-1', [-1]],
    ['NaN', [NaN]],
    ['Infinity', [Infinity]],
    ['1025', [1025]],
    ['nothing', []],
    ['null', [null]],
  ];
  for (const [label, args] of cases) {
    throwsCode(t, () => (setThreads as (...a: unknown[]) => unknown)(...args), 'ERR_RNNKIT_VALUE', /setThreads needs an integer in \[1, 1024\]/, `setThreads(${label})`);
    throwsCode(t, () => (native.setThreads as (...a: unknown[]) => unknown)(...args), 'ERR_RNNKIT_VALUE', /setThreads needs an integer in \[1, 1024\]/, `native.setThreads(${label})`);
  }
  t.equal(backendInfo().threads, threads, 'the thread count is unchanged');
});

t.test('input arrays are read correctly whatever their view or element type (no wrong answers)', async (t) => {
  const net = lstm();
  const ref = net.forwardSync(goodInput());
  // A Float32Array view at an offset into a larger buffer.
  const big = new Float32Array(T * B * I + 10);
  big.set(sequence(T * B * I), 7);
  const view = big.subarray(7, 7 + T * B * I);
  t.same(Array.from(net.forwardSync({ x: { data: view, shape: [T, B, I] } }).output.data), Array.from(ref.output.data), 'a subarray view');
  // The data is copied when the call is made: overwriting it while a Promise call runs changes nothing.
  const scratch = { data: sequence(T * B * I), shape: [T, B, I] };
  const pending = net.forward({ x: scratch });
  scratch.data.fill(1e6);
  t.same(Array.from((await pending).output.data), Array.from(ref.output.data), 'input overwritten during a Promise call');
  // h0 as a bare array or a tensor, lengths as an Array or Int32Array: the same answer.
  const h0 = sequence(B * H, 3);
  const a = net.forwardSync({ ...goodInput(), h0, lengths: [T, 2] });
  const b = net.forwardSync({ ...goodInput(), h0: { data: h0, shape: [1, B, H] }, lengths: Int32Array.of(T, 2) });
  t.same(Array.from(a.output.data), Array.from(b.output.data), 'h0 and lengths in either form');
  t.not(Array.from(a.output.data).join(), Array.from(ref.output.data).join(), 'h0 and lengths are not ignored');

  const tokenNet = new RecurrentNetwork({ cell: 'rnn_tanh', vocabSize: 6, hiddenSize: H, seed: 5 });
  const ids = [0, 5, 1, 4, 2, 3, 3, 2];
  const tref = tokenNet.forwardSync({ tokens: { data: Int32Array.from(ids), shape: [T, B] } });
  const padded = new Int8Array(ids.length + 3);
  padded.set(ids, 3);
  for (const [label, data] of [
    ['Array', ids],
    ['Uint8Array', Uint8Array.from(ids)],
    ['Int16Array', Int16Array.from(ids)],
    ['Float32Array', Float32Array.from(ids)],
    ['Float64Array', Float64Array.from(ids)],
    ['Int8Array subarray', padded.subarray(3)],
  ] as const) {
    const r = tokenNet.forwardSync({ tokens: { data: data as never, shape: [T, B] } });
    t.same(Array.from(r.output.data), Array.from(tref.output.data), `tokens as ${label}`);
  }
});
