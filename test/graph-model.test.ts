// The general graph executor (GraphModel over the native graph): finite-difference gradient checks of every graph
// stage (repeat-vector, concatenation of sequences and of vectors, Luong dot attention with source lengths) and of
// the gradients that flow into initial states (from a dense projection and from another layer's returned state);
// a graph with fan-out and two outputs that trains; coded errors that name the layer.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as rk from '../lib';
import { Lcg, centralDifference, compareProbes } from './helpers/finite-difference';

const { layers, input, model } = rk;
type Sym = rk.SymbolicTensor;

const EPS = 1e-2;
const ATOL = 3e-4;
const RTOL = 2e-2;

function floats(rng: Lcg, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
}
function ints(rng: Lcg, n: number, below: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rng.next() * below) % below);
}

/** Central differences of the compiled loss against the analytic gradients, a few probes per parameter tensor. */
function gradientCheck(t: Test, m: rk.GraphModel, x: rk.GraphData, y: rk.GraphTargets, lengths?: rk.GraphLengthsOption): void {
  const opts = lengths ? { lengths } : {};
  m.lossAndGradients(x, y, opts);
  const weights = m.getWeights();
  const rng = new Lcg(7);
  for (const name of m.paramNames()) {
    const analytic = m.getGrad(name).data;
    const w = weights[name].data;
    const idx = new Set<number>();
    for (let k = 0; k < Math.min(4, w.length); k++) idx.add(Math.floor(rng.next() * w.length) % w.length);
    // The entry with the largest gradient too, so that every tensor is checked where it matters.
    let best = 0;
    for (let i = 1; i < analytic.length; i++) if (Math.abs(analytic[i]) > Math.abs(analytic[best])) best = i;
    idx.add(best);
    const probes = [...idx].map((i) => ({
      index: i,
      analytic: analytic[i],
      numeric: centralDifference(w, i, EPS, () => m.lossSync(x, y, opts), () => m.setWeights({ [name]: w })),
    }));
    const c = compareProbes(probes, ATOL, RTOL);
    t.ok(c.ok, `${name}: analytic = numeric (worst ${JSON.stringify(c.worst)})`);
    t.ok(c.maxNumeric > 3 * ATOL, `${name}: the gradient reaches it (max |numeric| ${c.maxNumeric.toExponential(2)})`);
  }
}

const adam = { type: 'adam' as const, lr: 0.01 };

t.test('gradients: dense projection into an LSTM initial state [h, c], repeatVector, vector concatenation', async (t) => {
  const rng = new Lcg(1);
  const v = input({ dtype: 'float32', features: 3, sequence: false, name: 'v' });
  const x = input({ dtype: 'float32', features: 2, name: 'x' });
  const h0 = layers.dense({ units: 4, activation: 'tanh', name: 'to_h' }).apply(v) as Sym;
  const c0 = layers.dense({ units: 4, name: 'to_c' }).apply(v) as Sym;
  const seq = layers.lstm({ units: 4, returnSequences: true, name: 'lstm' }).apply(x, { initialState: [h0, c0] }) as Sym;
  const rep = layers.repeatVector({ n: 3, name: 'rep' }).apply(h0) as Sym;
  const last = layers.gru({ units: 3, name: 'gru' }).apply(rep) as Sym;
  const both = layers.concatenate({ name: 'cat' }).apply([last, c0]) as Sym;
  const a = layers.dense({ units: 5, name: 'a' }).apply(seq) as Sym;
  const b = layers.dense({ units: 2, activation: 'sigmoid', name: 'b' }).apply(both) as Sym;
  const m = model({ inputs: [v, x], outputs: [a, b], seed: 3 }) as rk.GraphModel;
  t.ok(m instanceof rk.GraphModel);
  m.compile({ optimizer: adam, loss: ['softmaxCrossEntropy', 'mse'], lossWeights: [1, 0.5] });
  const B = 3, T = 4;
  const data = { v: { data: floats(rng, B * 3), shape: [B, 3] }, x: { data: floats(rng, B * T * 2), shape: [B, T, 2] } };
  const targets = { a: { data: ints(rng, B * T, 5), shape: [B, T] }, b: { data: floats(rng, B * 2), shape: [B, 2] } };
  gradientCheck(t, m, data, targets, { x: [4, 2, 3] });
  m.dispose();
});

t.test('gradients: a state handed to another layer, Luong attention over masked source steps, fan-out, concat', async (t) => {
  const rng = new Lcg(2);
  const src = input({ dtype: 'int32', vocabSize: 6, name: 'src' });
  const tgt = input({ dtype: 'int32', vocabSize: 5, name: 'tgt' });
  const [keys, h] = layers.gru({ units: 4, returnSequences: true, returnState: true, name: 'enc' })
    .apply(layers.embedding({ outputDim: 3, name: 'src_emb' }).apply(src) as Sym) as Sym[];
  const dec = layers.gru({ units: 4, returnSequences: true, name: 'dec' })
    .apply(layers.embedding({ outputDim: 3, name: 'tgt_emb' }).apply(tgt) as Sym, { initialState: h }) as Sym;
  const [context, weights] = layers.attention({ name: 'att' }).apply([dec, keys]) as Sym[];
  // Concatenation in the "wrong" (decoder-first) order: not the native Seq2Seq's shape, the executor runs it.
  const cat = layers.concatenate({ name: 'cat' }).apply([dec, context]) as Sym;
  const logits = layers.dense({ units: 5, name: 'out' }).apply(layers.dense({ units: 4, activation: 'tanh', name: 'wc' }).apply(cat) as Sym) as Sym;
  const aux = layers.dense({ units: 2, name: 'aux' }).apply(h) as Sym;
  const m = model({ inputs: [src, tgt], outputs: [logits, aux, weights], seed: 5 }) as rk.GraphModel;
  t.ok(m instanceof rk.GraphModel, 'compiled to the graph executor');
  m.compile({ optimizer: adam, loss: { out: 'softmaxCrossEntropy', aux: 'mse' } });
  const B = 3, S = 5, T = 4;
  const x = [{ data: ints(rng, B * S, 6), shape: [B, S] }, { data: ints(rng, B * T, 5), shape: [B, T] }];
  const y = targetsWithPadding(rng, B, T);
  gradientCheck(t, m, x, [y, { data: floats(rng, B * 2), shape: [B, 2] }, null], { src: [5, 2, 3] });
  // The weights are 0 past each row's source length and sum to 1 over it.
  const [, , w] = (await m.predict(x, { lengths: { src: [5, 2, 3] } })) as rk.Tensor[];
  t.same(w.shape, [B, T, S]);
  for (let b = 0; b < B; b++)
    for (let s = 0; s < T; s++) {
      const row = Array.from(w.data.subarray((b * T + s) * S, (b * T + s + 1) * S));
      const len = [5, 2, 3][b];
      t.ok(row.slice(len).every((v) => v === 0), `row ${b} step ${s}: nothing past the source length`);
      t.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5, `row ${b} step ${s}: sums to 1`);
    }
  m.dispose();
});

function targetsWithPadding(rng: Lcg, B: number, T: number): rk.IntTensor {
  const d = ints(rng, B * T, 5);
  d[T - 1] = -1;  // the ignore index: left out of the loss
  return { data: d, shape: [B, T] };
}

t.test('gradients: a stacked bidirectional LSTM state handed to another, one-hot token input, sequence concatenation', async (t) => {
  const rng = new Lcg(3);
  const a = input({ dtype: 'int32', vocabSize: 5, name: 'a' });
  const b = input({ dtype: 'float32', features: 2, name: 'b' });
  const [encSeq, h, c] = layers.lstm({ units: 3, numLayers: 2, bidirectional: true, returnSequences: true, returnState: true, name: 'enc' }).apply(a) as Sym[];
  const dec = layers.lstm({ units: 3, numLayers: 2, bidirectional: { mergeMode: 'sum' }, returnSequences: true, name: 'dec' }).apply(b, { initialState: [h, c] }) as Sym;
  const joined = layers.concatenate({ name: 'join' }).apply([encSeq, b]) as Sym;
  const out1 = layers.dense({ units: 3, name: 'o1' }).apply(dec) as Sym;
  const out2 = layers.dense({ units: 4, activation: 'softmax', name: 'o2' }).apply(joined) as Sym;
  const m = model({ inputs: [a, b], outputs: [out1, out2], seed: 8 }) as rk.GraphModel;
  m.compile({ optimizer: adam, loss: ['mse', 'softmaxCrossEntropy'] });
  const B = 2, T = 3;
  const x = { a: { data: ints(rng, B * T, 5), shape: [B, T] }, b: { data: floats(rng, B * T * 2), shape: [B, T, 2] } };
  const y = { o1: { data: floats(rng, B * T * 3, 4), shape: [B, T, 3] }, o2: { data: ints(rng, B * T, 4), shape: [B, T] } };
  gradientCheck(t, m, x, y, { a: [3, 2] });
  m.dispose();
});

t.test('a graph with fan-out and two outputs trains (loss falls) and reports accuracy', async (t) => {
  // Sequence classification and a per-step copy task from one encoder: the encoder's outputs feed two heads.
  const rng = new Lcg(11);
  const V = 6, B = 64, T = 6;
  const tokens = input({ dtype: 'int32', vocabSize: V, name: 'tokens' });
  const [seq, h] = layers.gru({ units: 16, returnSequences: true, returnState: true, name: 'enc' })
    .apply(layers.embedding({ outputDim: 8, name: 'emb' }).apply(tokens) as Sym) as Sym[];
  const copy = layers.dense({ units: V, name: 'copy' }).apply(seq) as Sym;
  const cls = layers.dense({ units: 2, name: 'cls' }).apply(layers.concatenate({ name: 'pool' }).apply([h, layers.gru({ units: 8, name: 'enc2' }).apply(seq) as Sym]) as Sym) as Sym;
  const m = model({ inputs: tokens, outputs: [copy, cls], seed: 9 }) as rk.GraphModel;
  m.compile({ optimizer: { type: 'adam', lr: 0.03 }, loss: 'softmaxCrossEntropy', metrics: ['accuracy'] });
  const x = ints(rng, B * T, V);
  const copyY = Int32Array.from(x);
  const clsY = Int32Array.from({ length: B }, (_, b) => (x[b * T] > x[b * T + T - 1] ? 1 : 0));
  const history = await m.fit({ data: x, shape: [B, T] }, [{ data: copyY, shape: [B, T] }, { data: clsY, shape: [B] }], { epochs: 40, batchSize: 16, seed: 1 });
  t.ok(history.loss[39] < 0.5 * history.loss[0], `loss falls: ${history.loss[0].toFixed(3)} -> ${history.loss[39].toFixed(3)}`);
  t.ok(history.accuracy![39] > 0.8, `accuracy ${history.accuracy![39].toFixed(3)}`);
  const ev = await m.evaluate({ data: x, shape: [B, T] }, { copy: { data: copyY, shape: [B, T] }, cls: { data: clsY, shape: [B] } });
  t.ok(ev.losses.copy < history.loss[0] && ev.losses.cls >= 0, 'evaluate reports each output');
  t.match(m.summary(), /enc \(gru\)[\s\S]*pool \(concatenate\)[\s\S]*Total params/);
  m.dispose();
});

t.test('getWeights / setWeights round-trip with PyTorch-style names', async (t) => {
  const v = input({ dtype: 'float32', features: 2, sequence: false, name: 'v' });
  const h = layers.dense({ units: 3, name: 'init' }).apply(v) as Sym;
  const y = layers.simpleRNN({ units: 3, returnSequences: true, name: 'rnn' }).apply(layers.repeatVector({ n: 2 }).apply(h) as Sym, { initialState: h }) as Sym;
  const a = model({ inputs: v, outputs: y, seed: 1 }) as rk.GraphModel;
  const b = model({ inputs: v, outputs: y, seed: 2 }) as rk.GraphModel;
  t.same(a.paramNames(), ['init.weight', 'init.bias', 'rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0']);
  const x = { data: Float32Array.of(1, 2, -1, 0.5), shape: [2, 2] };
  t.notSame(Array.from((a.predictSync(x) as rk.Tensor).data), Array.from((b.predictSync(x) as rk.Tensor).data));
  b.setWeights(a.getWeights());
  t.same(Array.from((a.predictSync(x) as rk.Tensor).data), Array.from((b.predictSync(x) as rk.Tensor).data), 'same weights, same outputs');
  t.throws(() => b.setWeights({ 'rnn.weight': new Float32Array(3) }), { code: 'ERR_RNNKIT_UNKNOWN_PARAM' });
  t.throws(() => b.setWeights({ 'init.bias': new Float32Array(2) }), { code: 'ERR_RNNKIT_SHAPE', message: /init\.bias/ });
  a.dispose();
  b.dispose();
});

t.test('bad graphs and bad calls are coded errors that name the layer or input', async (t) => {
  const v = input({ dtype: 'float32', features: 3, sequence: false, name: 'v' });
  const x = input({ dtype: 'float32', features: 2, name: 'x' });
  // Shapes that do not fit between layers.
  t.throws(() => layers.gru({ units: 4, name: 'reads_vector' }).apply(v), { code: 'ERR_RNNKIT_SHAPE', message: /reads_vector.*repeatVector/ });
  t.throws(() => layers.repeatVector({ n: 2, name: 'rep_seq' }).apply(x), { code: 'ERR_RNNKIT_SHAPE', message: /rep_seq/ });
  const wide = layers.dense({ units: 5, name: 'wide' }).apply(v) as Sym;
  t.throws(() => layers.gru({ units: 4, name: 'g1' }).apply(x, { initialState: wide }),
    { code: 'ERR_RNNKIT_SHAPE', message: /initial state of 'g1' has 5 units \(from 'wide'\), the layer has 4/ });
  const four = layers.dense({ units: 4, name: 'four' }).apply(v) as Sym;
  t.throws(() => layers.lstm({ units: 4, name: 'l1' }).apply(x, { initialState: four }), { code: 'ERR_RNNKIT_SHAPE', message: /'l1' \(lstm\) takes 2 initial state/ });
  t.throws(() => layers.gru({ units: 4, numLayers: 2, name: 'g2' }).apply(x, { initialState: four }), { code: 'ERR_RNNKIT_SHAPE', message: /g2/ });
  const s1 = layers.gru({ units: 4, returnSequences: true, name: 's1' }).apply(x) as Sym;
  t.throws(() => layers.attention({ name: 'att_bad' }).apply([s1, x]), { code: 'ERR_RNNKIT_SHAPE', message: /att_bad/ });
  t.throws(() => layers.concatenate({ name: 'mix' }).apply([s1, four]), { code: 'ERR_RNNKIT_SHAPE', message: /mix/ });
  t.throws(() => layers.dense({ units: 2, name: 'd_ids' }).apply(input({ dtype: 'int32', vocabSize: 3 })), { code: 'ERR_RNNKIT_SHAPE', message: /d_ids/ });
  // Graph-level: unused input, disconnected output, a cycle.
  const out = layers.dense({ units: 2, name: 'head' }).apply(s1) as Sym;
  t.throws(() => model({ inputs: [x, v], outputs: out }), { code: 'ERR_RNNKIT_ARGUMENT', message: /input 'v' is not connected/ });
  t.throws(() => model({ inputs: [v], outputs: out }), { code: 'ERR_RNNKIT_ARGUMENT', message: /layer 's1' depends on input 'x'/ });
  const a = layers.dense({ units: 2, name: 'cyc_a' }).apply(v) as Sym;
  const b = layers.dense({ units: 2, name: 'cyc_b' }).apply(a) as Sym;
  a.node.inputs.push(b);  // only by reaching into the graph's internals: apply() cannot make a cycle
  t.throws(() => model({ inputs: v, outputs: b }), { code: 'ERR_RNNKIT_ARGUMENT', message: /cycle through layer 'cyc_/ });
  // Calls: wrong input or output names, a missing target, a wrong row count.
  const y2 = layers.dense({ units: 3, name: 'y2' }).apply(layers.concatenate({ name: 'vx' }).apply([four, layers.gru({ units: 2, name: 'gx' }).apply(x) as Sym]) as Sym) as Sym;
  const m = model({ inputs: [v, x], outputs: y2, seed: 1 }) as rk.GraphModel;
  const good = { v: { data: new Float32Array(6), shape: [2, 3] }, x: { data: new Float32Array(8), shape: [2, 2, 2] } };
  const target = { data: new Float32Array(6), shape: [2, 3] };
  await t.rejects(m.fit(good, target), { code: 'ERR_RNNKIT_STATE', message: /compile/ });
  m.compile({ optimizer: adam, loss: 'mse' });
  await t.rejects(m.fit({ v: good.v, xx: good.x } as rk.GraphData, target), { code: 'ERR_RNNKIT_ARGUMENT', message: /'xx'.*v, x/ });
  await t.rejects(m.trainOnBatch({ v: good.v } as rk.GraphData, target), { code: 'ERR_RNNKIT_ARGUMENT', message: /input 'x' is missing/ });
  await t.rejects(m.trainOnBatch([good.v], target), { code: 'ERR_RNNKIT_ARGUMENT', message: /the inputs: 1 given in an array, the model has 2 \(v, x;/ });
  await t.rejects(m.fit(good, { y3: target }), { code: 'ERR_RNNKIT_ARGUMENT', message: /'y3'/ });
  await t.rejects(m.fit(good, { y2: null }), { code: 'ERR_RNNKIT_ARGUMENT', message: /'y2' has a loss but no target/ });
  await t.rejects(m.trainOnBatch({ ...good, x: { data: new Float32Array(12), shape: [3, 2, 2] } }, target), { code: 'ERR_RNNKIT_SHAPE', message: /'x' has 3 rows/ });
  await t.rejects(m.trainOnBatch(good, target, { lengths: { x: [3, 1] } }), { code: 'ERR_RNNKIT_VALUE', message: /input 'x'.*lengths\[0\] = 3/ });
  await t.rejects(m.trainOnBatch(good, target, { lengths: { v: [1, 1] } }), { code: 'ERR_RNNKIT_ARGUMENT', message: /'v' is a vector/ });
  const r = await m.trainOnBatch(good, target);
  t.ok(Number.isFinite(r.loss), 'the model still trains after the refused calls');
  m.dispose();
  await t.rejects(m.predict(good), { code: 'ERR_RNNKIT_DISPOSED' });
});

t.test('calls made together settle in call order; a synchronous call while one runs is refused', async (t) => {
  const x = input({ dtype: 'float32', features: 2, name: 'x' });
  const y = layers.dense({ units: 1, name: 'y' }).apply(layers.gru({ units: 3, name: 'g' }).apply(x) as Sym) as Sym;
  const v = input({ dtype: 'float32', features: 2, sequence: false, name: 'unused_v' });
  void v;
  const m = model({ inputs: x, outputs: layers.concatenate({ name: 'c' }).apply([y, layers.dense({ units: 1 }).apply(y) as Sym]) as Sym, seed: 1 }) as rk.GraphModel;
  m.compile({ optimizer: adam, loss: 'mse' });
  const data = { data: new Float32Array(2 * 3 * 2).fill(0.5), shape: [2, 3, 2] };
  const target = { data: new Float32Array(4), shape: [2, 2] };
  const order: number[] = [];
  const a = m.trainOnBatch(data, target).then(() => order.push(1));
  const b = m.predict(data).then(() => order.push(2));
  t.throws(() => m.predictSync(data), { code: 'ERR_RNNKIT_BUSY' });
  const c = m.evaluate(data, target).then(() => order.push(3));
  await Promise.all([a, b, c]);
  t.same(order, [1, 2, 3]);
  m.dispose();
});

t.test('a chain run by the graph executor matches the layer pipeline (sequential) exactly', async (t) => {
  // The same layers, seed and data through both native paths: same initial weights (drawn in the same order), same
  // outputs, same training losses step by step.
  const x = input({ dtype: 'int32', vocabSize: 9, name: 'ids' });
  const e = layers.embedding({ outputDim: 5, name: 'emb' }).apply(x) as Sym;
  const h = layers.lstm({ units: 4, numLayers: 2, bidirectional: true, returnSequences: true, name: 'rnn' }).apply(e) as Sym;
  const y = layers.dense({ units: 9, name: 'out' }).apply(layers.gru({ units: 3, returnSequences: true, name: 'top' }).apply(h) as Sym) as Sym;
  const seq = model({ inputs: x, outputs: y, seed: 4 }) as rk.Sequential;
  t.ok(seq instanceof rk.Sequential);
  const graph = rk.graphModel({ inputs: x, outputs: y, seed: 4 });  // the same chain on the graph executor
  const ids = { data: Int32Array.from({ length: 3 * 5 }, (_, i) => (i * 4) % 9), shape: [3, 5] };
  const lengths = [5, 2, 4];
  const a = await seq.predict(ids, { lengths });
  const b = (await graph.predict(ids, { lengths: [lengths] })) as rk.Tensor;
  t.same(b.shape, a.shape);
  t.same(Array.from(b.data), Array.from(a.data), 'identical outputs');
  seq.compile({ loss: 'softmaxCrossEntropy', optimizer: { type: 'adam', lr: 0.01 } });
  graph.compile({ loss: 'softmaxCrossEntropy', optimizer: { type: 'adam', lr: 0.01 } });
  const target = { data: Int32Array.from({ length: 15 }, (_, i) => (i * 7) % 9), shape: [3, 5] };
  for (let step = 0; step < 3; step++) {
    const ra = await seq.trainOnBatch(ids, target, { lengths });
    const rb = await graph.trainOnBatch(ids, target, { lengths: { ids: lengths } });
    t.ok(Math.abs(ra.loss - rb.loss) <= 1e-6 * Math.max(1, Math.abs(ra.loss)), `step ${step}: loss ${ra.loss} = ${rb.loss}`);
  }
  const wa = seq.getWeights() as Record<string, rk.Tensor>;
  const wb = graph.getWeights();
  for (const name of Object.keys(wb)) {
    const d = Math.max(...Array.from(wb[name].data, (v, i) => Math.abs(v - wa[name].data[i])));
    t.ok(d <= 1e-5, `${name} after training: max difference ${d}`);
  }
  // A chain run as a graph model saves and loads as one.
  const again = rk.GraphModel.fromBuffer(graph.toBuffer());
  t.same(Array.from(((await again.predict(ids)) as rk.Tensor).data), Array.from(((await graph.predict(ids)) as rk.Tensor).data));
  again.dispose();
  seq.dispose();
  graph.dispose();
  t.throws(() => model({ inputs: x, outputs: y, sed: 4 } as rk.ModelGraphOptions), { code: 'ERR_RNNKIT_ARGUMENT', message: /sed.*seed/ });
});

t.test('save and load: the same graph, names and outputs; a damaged file is a coded error', async (t) => {
  const v = input({ dtype: 'float32', features: 3, sequence: false, name: 'v' });
  const s = input({ dtype: 'int32', vocabSize: 7, name: 's' });
  const h0 = layers.dense({ units: 5, activation: 'tanh', name: 'proj' }).apply(v) as Sym;
  const [seq, hN] = layers.gru({ units: 5, returnSequences: true, returnState: true, name: 'enc' })
    .apply(layers.embedding({ outputDim: 4, name: 'emb' }).apply(s) as Sym, { initialState: h0 }) as Sym[];
  const dec = layers.lstm({ units: 5, returnSequences: true, name: 'dec' }).apply(layers.repeatVector({ n: 4, name: 'rep' }).apply(hN) as Sym) as Sym;
  const [ctx, w] = layers.attention({ name: 'att' }).apply([dec, seq]) as Sym[];
  const logits = layers.dense({ units: 7, name: 'out' }).apply(layers.concatenate({ name: 'cat' }).apply([ctx, dec]) as Sym) as Sym;
  const m = model({ inputs: [v, s], outputs: [logits, w], seed: 2 }) as rk.GraphModel;
  m.compile({ optimizer: adam, loss: ['softmaxCrossEntropy', null] });
  const B = 2, T = 5;
  const x = { v: { data: Float32Array.of(0.1, -0.2, 0.3, 0.5, 0.4, -0.1), shape: [B, 3] }, s: { data: Int32Array.from({ length: B * T }, (_, i) => i % 7), shape: [B, T] } };
  await m.trainOnBatch(x, [{ data: Int32Array.from({ length: B * 4 }, (_, i) => i % 7), shape: [B, 4] }, null], { lengths: { s: [5, 3] } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-graph-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'graph.safetensors');
  await m.save(file);
  const loaded = await rk.GraphModel.load(file);
  t.same(loaded.inputNames, m.inputNames);
  t.same(loaded.outputNames, m.outputNames);
  t.same(loaded.paramNames(), m.paramNames());
  const a = (await m.predict(x, { lengths: { s: [5, 3] } })) as rk.Tensor[];
  const b = (await loaded.predict(x, { lengths: { s: [5, 3] } })) as rk.Tensor[];
  for (let k = 0; k < a.length; k++) t.same(Array.from(b[k].data), Array.from(a[k].data), `output ${m.outputNames[k]} identical`);
  t.throws(() => rk.GraphSeq2Seq.fromBuffer(m.toBuffer()), { code: 'ERR_RNNKIT_FORMAT' }, 'not an encoder-decoder');
  // A file whose tensor does not fit its graph.
  const weights = m.getWeights();
  const { serializeSafetensors } = await import('../lib/io/safetensors');
  const bad = serializeSafetensors(Object.entries(weights).map(([name, tt]) => (name === 'proj.weight' ? { name, shape: [3, 5], data: tt.data } : { name, shape: tt.shape, data: tt.data })),
    { format: 'rnnkit', formatVersion: '1', kind: 'graph', graph: JSON.stringify(m.graph) });
  t.throws(() => rk.GraphModel.fromBuffer(bad), { code: 'ERR_RNNKIT_FORMAT', message: /proj\.weight/ });
  m.dispose();
  loaded.dispose();
});

t.test('hostile arguments: getters that dispose or call again, Proxies, wrong types', async (t) => {
  const x = input({ dtype: 'float32', features: 2, name: 'x' });
  const y = layers.dense({ units: 2, name: 'y' }).apply(layers.gru({ units: 3, name: 'g' }).apply(x) as Sym) as Sym;
  const make = (): rk.GraphModel => {
    const m = model({ inputs: x, outputs: layers.concatenate({ name: 'c' }).apply([y, y]) as Sym, seed: 1 }) as rk.GraphModel;
    m.compile({ optimizer: adam, loss: 'mse' });
    return m;
  };
  const target = { data: new Float32Array(8), shape: [2, 4] };
  const data = new Float32Array(12).fill(0.25);
  // A getter that disposes the model while its arguments are read.
  const m1 = make();
  const disposing = { get data() { m1.dispose(); return data; }, shape: [2, 3, 2] };
  await t.rejects(m1.trainOnBatch(disposing as rk.Tensor, target), { code: 'ERR_RNNKIT_DISPOSED' });
  t.throws(() => m1.predictSync({ data, shape: [2, 3, 2] }), { code: 'ERR_RNNKIT_DISPOSED' });
  // A getter that makes another call on the same model while the arguments are read: it runs first (the arguments
  // are read before the native call starts), then the outer call.
  const m2 = make();
  let innerShape: number[] | null = null;
  const reentrant = { get data() { innerShape = (m2.predictSync({ data, shape: [2, 3, 2] }) as rk.Tensor).shape; return data; }, shape: [2, 3, 2] };
  const r = await m2.trainOnBatch(reentrant as rk.Tensor, target);
  t.ok(Number.isFinite(r.loss), 'the outer call completes');
  t.same(innerShape, [2, 4], 'the inner call completed too');
  // Proxies and wrong types.
  const proxied = new Proxy({ data, shape: [2, 3, 2] }, {});
  t.ok(Number.isFinite((await m2.trainOnBatch(proxied, target)).loss), 'a Proxy of a tensor works');
  await t.rejects(m2.trainOnBatch({ data: new Float64Array(12) as unknown as Float32Array, shape: [2, 3, 2] }, target), { code: 'ERR_RNNKIT_TYPE' });
  await t.rejects(m2.trainOnBatch({ data, shape: [2, 3, 2] }, { data: Int32Array.of(1), shape: [1] }), { code: 'ERR_RNNKIT_TYPE' });
  await t.rejects(m2.trainOnBatch({ data, shape: [2, 3, 2] }, { data: new Float32Array(3), shape: [3] }), { code: 'ERR_RNNKIT_SHAPE' });
  t.throws(() => m2.compile({ optimizer: adam, loss: 'hinge' as rk.GraphLossName }), { code: 'ERR_RNNKIT_ARGUMENT' });
  m2.dispose();
});

t.test('fit with nonFinite: a batch with NaN is refused and changes nothing, or skipped and counted', async (t) => {
  const x = input({ dtype: 'float32', features: 2, name: 'x' });
  const m = model({ inputs: x, outputs: layers.dense({ units: 1, name: 'y' }).apply(layers.gru({ units: 3, name: 'g' }).apply(x) as Sym) as Sym, seed: 1 }) as rk.GraphModel;
  m.compile({ optimizer: adam, loss: 'mse' });
  const data = Float32Array.from({ length: 4 * 3 * 2 }, (_, i) => Math.sin(i));
  data[7] = NaN;  // row 1
  const xs = { data, shape: [4, 3, 2] };
  const ys = { data: new Float32Array(4), shape: [4, 1] };
  const before = m.getWeights();
  await t.rejects(m.fit(xs, ys, { batchSize: 2, shuffle: false }), { code: 'ERR_RNNKIT_NON_FINITE' });
  t.same(Array.from(m.getWeights()['g.weight_hh_l0'].data), Array.from(before['g.weight_hh_l0'].data), 'nothing applied');
  const h = await m.fit(xs, ys, { batchSize: 2, shuffle: false, epochs: 2, nonFinite: 'skip' });
  t.equal(h.skippedSteps, 2, 'the NaN batch skipped in each epoch');
  t.ok(h.loss.every(Number.isFinite), 'the epochs report the applied steps');
  m.dispose();
});
