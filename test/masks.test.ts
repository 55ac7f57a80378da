// Masks in training: per-row lengths in fit / evaluate / trainOnBatch, the ignore index of the cross-entropy, and
// the accuracy metric. Each result is checked against an independent computation: the same rows run one at a time
// and truncated to their length, a hand count over predict's outputs, and PyTorch's packed-sequence gradients.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { sequential, layers, optimizers, RecurrentNetwork, type Sequential, type IntTensor, type Tensor } from '../lib';
import { Lcg, maxExcess } from './helpers/finite-difference';
import { rejectsCode, throwsCode } from './helpers/expect-error';

const close = (a: number, b: number, tol = 1e-5): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

function tokenBatch(rng: Lcg, B: number, T: number, vocab: number): IntTensor {
  return { data: Int32Array.from({ length: B * T }, () => rng.int(vocab)), shape: [B, T] };
}

/** Row b of a batch-first tensor, cut to its first `len` steps, as a batch of one. */
function truncatedRow<X extends { data: Int32Array | Float32Array; shape: number[] }>(x: X, b: number, len: number): X {
  const [, T] = x.shape;
  const per = x.shape.slice(2).reduce((a, c) => a * c, 1);
  const data = x.data.slice(b * T * per, (b * T + len) * per);
  return { data, shape: [1, len, ...x.shape.slice(2)] } as X;
}

function tagger(cell: 'lstm' | 'gru', bidirectional: boolean, seed: number): Sequential {
  const rnn = cell === 'lstm' ? layers.lstm : layers.gru;
  return sequential({
    vocabSize: 7,
    seed,
    layers: [layers.embedding({ outputDim: 5 }), rnn({ units: 6, returnSequences: true, bidirectional }), layers.dense({ units: 4 })],
  });
}

t.test('the loss with lengths equals the loss of the truncated rows computed one by one', async (t) => {
  const rng = new Lcg(3);
  for (const [cell, bi] of [['lstm', true], ['gru', false]] as const) {
    const m = tagger(cell, bi, 5);
    m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd({ lr: 0 }), metrics: ['accuracy'] });
    const B = 4, T = 6;
    const lengths = [6, 2, 4, 1];
    const x = tokenBatch(rng, B, T, 7);
    const y = tokenBatch(rng, B, T, 4);
    y.data[1] = -1; // an ignored target inside row 0
    // Past each row's length: targets that would be errors if they were read.
    for (let b = 0; b < B; b++) for (let s = lengths[b]; s < T; s++) y.data[b * T + s] = s % 2 ? 99 : -7;
    let sum = 0;
    let counted = 0;
    for (let b = 0; b < B; b++) {
      const yb = truncatedRow(y, b, lengths[b]);
      const n = Array.from(yb.data).filter((c) => c >= 0).length;
      sum += (await m.evaluate(truncatedRow(x, b, lengths[b]), yb)).loss * n;
      counted += n;
    }
    const masked = await m.evaluate(x, y, { lengths });
    t.ok(close(masked.loss, sum / counted), `${cell}${bi ? ' bidirectional' : ''}: evaluate ${masked.loss} = rows one by one ${sum / counted}`);
    const batched = await m.evaluate(x, y, { lengths, batchSize: 3 });
    t.ok(close(batched.loss, masked.loss), `in batches of 3: ${batched.loss}`);
    const step = await m.trainOnBatch(x, y, { lengths });
    t.ok(close(step.loss, masked.loss), `trainOnBatch's loss ${step.loss} (lr 0)`);
    t.equal(step.counted, counted, `trainOnBatch counted ${counted} positions`);
    await rejectsCode(t, () => m.evaluate(x, y), 'ERR_RNNKIT_VALUE', /target -7 at index 8 is not a class of the output.*ignore index \(-1\)/,
      'without lengths the padding targets are read, and rejected');
    m.dispose();
  }
});

t.test('what lies past a row\'s length changes neither the loss nor the training step', async (t) => {
  const rng = new Lcg(8);
  const B = 3, T = 5;
  const lengths = Int32Array.from([3, 5, 1]);
  const x = tokenBatch(rng, B, T, 7);
  const y = tokenBatch(rng, B, T, 4);
  const x2 = { data: x.data.slice(), shape: x.shape };
  const y2 = { data: y.data.slice(), shape: y.shape };
  for (let b = 0; b < B; b++) for (let s = lengths[b]; s < T; s++) {
    x2.data[b * T + s] = (x.data[b * T + s] + 3) % 7;
    y2.data[b * T + s] = (y.data[b * T + s] + 1) % 4;
  }
  const a = tagger('lstm', true, 9);
  const b = tagger('lstm', true, 9);
  for (const m of [a, b]) m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.05 }) });
  for (let i = 0; i < 3; i++) {
    const ra = await a.trainOnBatch(x, y, { lengths });
    const rb = await b.trainOnBatch(x2, y2, { lengths });
    t.equal(ra.loss, rb.loss, `step ${i}: same loss ${ra.loss}`);
    t.equal(ra.gradNorm, rb.gradNorm, `step ${i}: same gradient norm`);
  }
  const wa = a.getWeights();
  const wb = b.getWeights();
  t.ok(Object.keys(wa).every((k) => maxExcess(wa[k].data, wb[k].data, 0, 0).ok), 'same weights after three steps');
  a.dispose();
  b.dispose();
});

t.test('mse with lengths: the mean over the values of the counted positions', async (t) => {
  const rng = new Lcg(21);
  const B = 3, T = 4, I = 2, F = 3;
  const lengths = [4, 1, 2];
  const m = sequential({ inputSize: I, seed: 2, layers: [layers.gru({ units: 5, returnSequences: true }), layers.dense({ units: F })] });
  m.compile({ loss: 'mse', optimizer: optimizers.sgd({ lr: 0 }) });
  const x: Tensor = { data: rng.floats(B * T * I, -1, 1), shape: [B, T, I] };
  const y: Tensor = { data: rng.floats(B * T * F, -1, 1), shape: [B, T, F] };
  const out = await m.predict(x, { lengths });
  let sum = 0;
  let n = 0;
  for (let b = 0; b < B; b++)
    for (let s = 0; s < lengths[b]; s++)
      for (let f = 0; f < F; f++) {
        const i = (b * T + s) * F + f;
        sum += (out.data[i] - y.data[i]) ** 2;
        n++;
      }
  const r = await m.evaluate(x, y, { lengths });
  t.ok(close(r.loss, sum / n), `evaluate ${r.loss} = hand computation ${sum / n}`);
  t.equal(r.accuracy, undefined, 'no accuracy without the metric');
  const step = await m.trainOnBatch(x, y, { lengths });
  t.ok(close(step.loss, sum / n), `trainOnBatch ${step.loss}`);
  t.equal(step.counted, 7, 'counted the 7 valid positions');
  m.dispose();
});

t.test('accuracy over the unmasked positions equals a hand count over predict', async (t) => {
  const rng = new Lcg(5);
  const B = 5, T = 7;
  const lengths = [7, 3, 5, 1, 6];
  const m = tagger('gru', true, 13);
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.03 }), metrics: ['accuracy'] });
  const x = tokenBatch(rng, B, T, 7);
  // The tag is a function of the token, so the model can learn it and accuracy moves well away from chance.
  const y = { data: Int32Array.from(x.data, (v) => v % 4), shape: [B, T] };
  y.data[2] = -1;
  y.data[T + 1] = -1;
  const handAccuracy = async (): Promise<number> => {
    const p = await m.predict(x, { lengths });
    let right = 0;
    let n = 0;
    for (let b = 0; b < B; b++)
      for (let s = 0; s < lengths[b]; s++) {
        const i = b * T + s;
        if (y.data[i] < 0) continue;
        const z = p.data.subarray(i * 4, i * 4 + 4);
        let best = 0;
        for (let c = 1; c < 4; c++) if (z[c] > z[best]) best = c;
        right += best === y.data[i] ? 1 : 0;
        n++;
      }
    return right / n;
  };
  const before = await handAccuracy();
  const step = await m.trainOnBatch(x, y, { lengths });
  t.ok(close(step.accuracy!, before, 1e-12), `trainOnBatch's accuracy ${step.accuracy} = hand count ${before} (before its update)`);
  const history = await m.fit(x, y, { lengths, epochs: 40, batchSize: 5, validationData: { x, y, lengths } });
  const after = await handAccuracy();
  const r = await m.evaluate(x, y, { lengths });
  t.ok(close(r.accuracy!, after, 1e-12), `evaluate's accuracy ${r.accuracy} = hand count ${after}`);
  t.ok(after > before + 0.2, `the model learned (${before.toFixed(3)} -> ${after.toFixed(3)})`);
  t.equal(history.accuracy?.length, 40, 'history.accuracy per epoch');
  t.equal(history.valAccuracy?.length, 40, 'history.valAccuracy per epoch');
  t.ok(close(history.valAccuracy![39], after, 1e-12), 'the last valAccuracy is the final accuracy');
  t.ok(history.steps.every((s) => typeof s.accuracy === 'number'), 'every step entry has its accuracy');
  m.dispose();
});

t.test('many-to-one with lengths: the state at each row\'s last valid step, accuracy per row', async (t) => {
  const rng = new Lcg(17);
  const B = 6, T = 5;
  const lengths = [5, 1, 3, 2, 5, 4];
  const m = sequential({ vocabSize: 7, seed: 4, layers: [layers.embedding({ outputDim: 4 }), layers.lstm({ units: 5 }), layers.dense({ units: 3, activation: 'softmax' })] });
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd({ lr: 0 }), metrics: ['accuracy'] });
  const x = tokenBatch(rng, B, T, 7);
  const y = { data: Int32Array.from({ length: B }, (_, b) => b % 3), shape: [B] };
  let sum = 0;
  let right = 0;
  for (let b = 0; b < B; b++) {
    const p = await m.predict(truncatedRow(x, b, lengths[b]));
    sum += -Math.log(p.data[y.data[b]]);
    const best = Array.from(p.data).indexOf(Math.max(...p.data));
    right += best === y.data[b] ? 1 : 0;
  }
  const r = await m.evaluate(x, y, { lengths });
  t.ok(close(r.loss, sum / B, 1e-5), `loss ${r.loss} = rows one by one ${sum / B}`);
  t.equal(r.accuracy, right / B, `accuracy ${r.accuracy}`);
  m.dispose();
});

t.test('the ignore index: -1 by default, another one from compile, and every other class id checked', async (t) => {
  const rng = new Lcg(2);
  const m = tagger('lstm', false, 3);
  const x = tokenBatch(rng, 2, 4, 7);
  const y = { data: Int32Array.from([0, 1, 2, 3, 3, 2, -1, -1]), shape: [2, 4] };
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd({ lr: 0 }) });
  const viaDefault = await m.evaluate(x, y);
  const viaLengths = await m.evaluate(x, y, { lengths: [4, 2] });
  t.ok(close(viaDefault.loss, viaLengths.loss), '-1 targets are left out as positions past the length are');
  await rejectsCode(t, () => m.evaluate(x, { data: Int32Array.from([0, 1, 2, 3, 3, 2, -2, -1]), shape: [2, 4] }), 'ERR_RNNKIT_VALUE',
    /target -2 at index 6 is not a class/, 'another negative id is an error, not silently left out');
  await rejectsCode(t, () => m.trainOnBatch(x, { data: Int32Array.from([0, 1, 2, 4, 3, 2, 1, 0]), shape: [2, 4] }), 'ERR_RNNKIT_VALUE',
    /target 4 at index 3 is not a class of the output \(it has 4\)/, 'a class id past the output');
  // Padding marked with 0 (a real class here, so the counted set differs from the default's).
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd({ lr: 0 }), ignoreIndex: 3 });
  const y3 = { data: Int32Array.from([0, 1, 2, 3, 3, 2, 3, 3]), shape: [2, 4] };
  const viaIndex3 = await m.evaluate(x, y3);
  const same = await m.evaluate(x, { data: Int32Array.from([0, 1, 2, 3, 3, 2, 3, 3]).map((c) => (c === 3 ? -1 : c)), shape: [2, 4] }).catch((e) => e);
  t.ok(same instanceof Error && /target -1/.test(same.message), 'with ignoreIndex 3, -1 is no longer special');
  const manual = new RecurrentNetwork({ cell: 'lstm', vocabSize: 3, hiddenSize: 2, headSize: 3, seed: 1 });
  manual.forwardSync({ tokens: { data: Int32Array.from([0, 1, 2, 1]), shape: [2, 2] } }, { train: true });
  const l1 = manual.lossSync({ classes: Int32Array.from([0, 5, 2, 5]), ignoreIndex: 5 }).loss;
  manual.forwardSync({ tokens: { data: Int32Array.from([0, 1, 2, 1]), shape: [2, 2] } }, { train: true });
  const l2 = manual.lossSync({ classes: Int32Array.from([0, -1, 2, -1]) }).loss;
  t.ok(close(l1, l2), `the functional API takes ignoreIndex too (${l1} = ${l2})`);
  manual.dispose();
  t.ok(Number.isFinite(viaIndex3.loss), `ignoreIndex 3: loss ${viaIndex3.loss}`);
  throwsCode(t, () => m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd(), ignoreIndex: 1.5 }), 'ERR_RNNKIT_VALUE', /ignoreIndex must be an integer/, 'fractional ignoreIndex');
  throwsCode(t, () => m.compile({ loss: 'mse', optimizer: optimizers.sgd(), ignoreIndex: -1 }), 'ERR_RNNKIT_ARGUMENT', /ignoreIndex is for the softmaxCrossEntropy loss/, 'ignoreIndex with mse');
  // Every position ignored: the loss is 0 and nothing moves.
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd({ lr: 1 }), metrics: ['accuracy'] });
  const none = await m.trainOnBatch(x, { data: new Int32Array(8).fill(-1), shape: [2, 4] });
  t.same([none.loss, none.gradNorm, none.counted], [0, 0, 0], 'no counted position: loss 0, no gradient');
  t.ok(Number.isNaN(none.accuracy), 'and no accuracy (NaN)');
  m.dispose();
});

t.test('bad lengths and metrics get coded errors', async (t) => {
  const m = tagger('gru', false, 1);
  const x = { data: new Int32Array(6), shape: [2, 3] };
  const y = { data: new Int32Array(6), shape: [2, 3] };
  throwsCode(t, () => m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd(), metrics: ['acc' as never] }), 'ERR_RNNKIT_ARGUMENT', /unknown metric "acc"; known metrics: accuracy/, 'unknown metric');
  throwsCode(t, () => m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd(), metrics: 'accuracy' as never }), 'ERR_RNNKIT_TYPE', /metrics must be an array/, 'metrics not an array');
  throwsCode(t, () => m.compile({ loss: 'mse', optimizer: optimizers.sgd(), metrics: ['accuracy'] }), 'ERR_RNNKIT_ARGUMENT', /needs the softmaxCrossEntropy loss/, 'accuracy with mse');
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.sgd() });
  await rejectsCode(t, () => m.trainOnBatch(x, y, { lengths: [3] }), 'ERR_RNNKIT_SHAPE', /lengths has 1 entries, expected one per batch row \(2\)/, 'trainOnBatch: too few lengths');
  await rejectsCode(t, () => m.trainOnBatch(x, y, { lengths: [3, 4] }), 'ERR_RNNKIT_VALUE', /lengths\[1\] = 4 is outside \[1, 3\]/, 'trainOnBatch: too long');
  await rejectsCode(t, () => m.evaluate(x, y, { lengths: [0, 1] }), 'ERR_RNNKIT_VALUE', /lengths\[0\] = 0/, 'evaluate: zero length');
  await rejectsCode(t, () => m.fit(x, y, { lengths: [1, 1.5] }), 'ERR_RNNKIT_TYPE', /lengths\[1\] is not an integer/, 'fit: fractional');
  await rejectsCode(t, () => m.fit(x, y, { lengths: [1, 2], stateful: true }), 'ERR_RNNKIT_ARGUMENT', /cannot be combined with stateful/, 'fit: with stateful');
  await rejectsCode(t, () => m.evaluate(x, y, { batchSize: 0 }), 'ERR_RNNKIT_VALUE', /batchSize must be an integer >= 1/, 'evaluate: batchSize 0');
  t.equal(m.step, 0, 'no step was taken');
  m.dispose();
});

t.test('fitDataset takes each batch\'s lengths', async (t) => {
  const rng = new Lcg(4);
  const m = tagger('gru', false, 6);
  m.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr: 0.02 }), metrics: ['accuracy'] });
  const x = tokenBatch(rng, 4, 5, 7);
  const y = { data: Int32Array.from(x.data, (v) => v % 4), shape: [4, 5] };
  const lengths = [5, 2, 3, 4];
  for (let b = 0; b < 4; b++) for (let s = lengths[b]; s < 5; s++) y.data[b * 5 + s] = 42; // read only without lengths
  const h = await m.fitDataset({ nextBatch: () => ({ x, y, lengths }) }, { steps: 6, validation: { source: { nextBatch: () => ({ x, y, lengths }) }, batches: 1, every: 3 } });
  t.equal(h.loss.length, 2, 'two intervals');
  t.equal(h.valAccuracy?.length, 2, 'validation accuracy per interval');
  const r = await m.evaluate(x, y, { lengths });
  t.ok(close(h.valLoss[1], r.loss), 'the last validation loss is evaluate\'s');
  m.dispose();
});

// PyTorch's packed sequences (test/fixtures/golden/packed_*): the gradients of sum(y*dy) + sum(hn*dhn) + sum(cn*dcn)
// with dy 0 past each length. The mse of the masked loss path with targets y - dy * n/2 (n = counted values) has the
// output gradient dy at the counted positions, so the loss path plus a backward of dhn/dcn must give PyTorch's
// gradients, and its value must be sum over the counted positions of (dy * n/2)^2 / n.
t.test('masked mse gradients equal PyTorch\'s packed-sequence gradients', async (t) => {
  const dir = path.join(__dirname, 'fixtures', 'golden');
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('packed_') && f.endsWith('.json'));
  t.ok(files.length >= 4, `${files.length} packed cases`);
  for (const f of files) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const net = new RecurrentNetwork({ cell: c.cell, inputSize: c.input_size, hiddenSize: c.hidden_size, numLayers: c.num_layers, bidirectional: c.bidirectional });
    for (const [name, p] of Object.entries<{ data: number[] }>(c.params)) net.setParam(name, Float32Array.from(p.data));
    const T = c.seq_len, B = c.batch;
    const F = c.dy.shape[2];
    const lstm = c.cell === 'lstm';
    const input = { x: { data: Float32Array.from(c.x.data), shape: c.x.shape }, lengths: c.lengths, h0: Float32Array.from(c.h0.data), ...(lstm ? { c0: Float32Array.from(c.c0.data) } : {}) };
    let n = 0;
    for (let b = 0; b < B; b++) n += c.lengths[b] * F;
    const values = new Float32Array(T * B * F);
    let want = 0;
    for (let s = 0; s < T; s++)
      for (let b = 0; b < B; b++)
        for (let k = 0; k < F; k++) {
          const i = (s * B + b) * F + k;
          const shift = (c.dy.data[i] * n) / 2;
          // Past the length: a target far off, which would dominate the loss if it were counted.
          values[i] = s < c.lengths[b] ? c.y.data[i] - shift : 1e3;
          if (s < c.lengths[b]) want += shift * shift;
        }
    want /= n;
    net.zeroGrad();
    net.forwardSync(input, { train: true });
    const l = net.lossSync({ kind: 'mse', values: { data: values, shape: [T, B, F] } });
    const b = net.backwardSync({ dhn: Float32Array.from(c.dhn.data), ...(lstm ? { dcn: Float32Array.from(c.dcn.data) } : {}) });
    t.ok(close(l.loss, want, 1e-4), `${f}: loss ${l.loss} = ${want}`);
    const got: Record<string, ArrayLike<number>> = {};
    for (const name of Object.keys(c.params)) got[name] = net.getGrad(name).data;
    got.x = l.dx!.map((v, i) => v + b.dx![i]);
    got.h0 = l.dh0.map((v, i) => v + b.dh0[i]);
    if (lstm) got.c0 = l.dc0!.map((v, i) => v + b.dc0![i]);
    for (const [name, g] of Object.entries(got)) {
      const e = maxExcess(g, c.grads[name].data, 1e-4, 1e-3);
      t.ok(e.ok, `${f}: d/d${name} matches PyTorch (max |diff| ${e.maxAbsDiff.toExponential(2)})`);
    }
    net.dispose();
  }
});

t.test('the encoder-decoder follows the same cross-entropy rule: -1 is left out, any other id outside the classes is an error', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Seq2Seq } = require('../lib/seq2seq') as typeof import('../lib/seq2seq');
  const model = new Seq2Seq({ cell: 'gru', attention: 'bahdanau', srcVocab: 5, tgtVocab: 4, embedSize: 3, hiddenSize: 4, numLayers: 1, seed: 1 });
  const batch = (targets: number[]) => ({
    source: { data: Int32Array.from([1, 2, 3, 1, 2, 3]), shape: [2, 3] },
    decoderInput: { data: Int32Array.from([0, 1, 2, 0, 3, 1]), shape: [2, 3] },
    targets: Int32Array.from(targets),
  });
  const all = model.evaluateSync(batch([1, 2, 3, 3, 1, 2]));
  const some = model.evaluateSync(batch([1, 2, 3, 3, -1, -1]));
  t.equal(some.counted, 4, 'the -1 targets are not counted');
  t.not(all.loss, some.loss, 'and change the mean');
  throwsCode(t, () => model.evaluateSync(batch([1, 2, 3, 3, -2, -1])), 'ERR_RNNKIT_VALUE', /seq2seq: target -2 at index 4 is not a class of the output \(it has 4\).*ignore index \(-1\)/, '-2');
  throwsCode(t, () => model.evaluateSync(batch([1, 2, 4, 3, 1, 2])), 'ERR_RNNKIT_VALUE', /seq2seq: target 4 at index 2 is not a class/, 'a class past the vocabulary');
  model.dispose();
});
