import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as rk from '../lib/index';
import { fromTfjs, fromTfjsArtifacts } from '../lib/io/interop/tfjs';

// The pure-JS CPU backend: no tfjs-node.
const ready = tf.setBackend('cpu');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomizeWeights(m: tf.LayersModel, seed: number): void {
  const r = rng(seed);
  m.setWeights(m.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => (r() * 2 - 1) * 0.8), w.shape)));
}

interface Saved { dir: string; modelJson: Record<string, unknown>; weightData: Uint8Array }

async function saveModel(m: tf.LayersModel): Promise<Saved> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await m.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const a = artifacts as tf.io.ModelArtifacts;
  const wd = a.weightData as ArrayBuffer;
  const weightData = new Uint8Array(wd);
  // What tfjs-node's file:// handler writes: model.json with a weightsManifest, and weights.bin.
  const modelJson = {
    modelTopology: a.modelTopology, format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy ?? null,
    weightsManifest: [{ paths: ['./weights.bin'], weights: a.weightSpecs }],
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-tfjs-'));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
  fs.writeFileSync(path.join(dir, 'weights.bin'), weightData);
  return { dir, modelJson, weightData };
}

function close(t: Test, got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  t.equal(got.length, want.length, `${what}: length`);
  let bad = -1;
  for (let i = 0; i < want.length && bad < 0; i++) if (!(Math.abs(got[i] - want[i]) <= 1e-5 + 1e-4 * Math.abs(want[i]))) bad = i;
  t.ok(bad < 0, `${what}: within 1e-5 abs + 1e-4 rel${bad >= 0 ? ` (index ${bad}: ${got[bad]} vs ${want[bad]})` : ''}`);
}

const B = 3;
const T = 5;

function features(F: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: B * T * F }, () => r() * 2 - 1);
}

/**
 * Dense input is uniform in [-scale, scale] (default 1); `inspect` sees the model, with its weights set, and that input.
 */
async function compare(
  t: Test,
  build: () => tf.Sequential,
  input: { F?: number; vocab?: number; scale?: number },
  inspect?: (m: tf.Sequential, x: Float32Array) => void,
): Promise<void> {
  await ready;
  const m = build();
  randomizeWeights(m, 7);
  const saved = await saveModel(m);
  t.teardown(() => fs.rmSync(saved.dir, { recursive: true, force: true }));
  let x: rk.ModelInput;
  let tx: tf.Tensor;
  if (input.vocab) {
    const r = rng(3);
    const ids = Int32Array.from({ length: B * T }, () => Math.floor(r() * (input.vocab as number)));
    x = { data: ids, shape: [B, T] };
    tx = tf.tensor2d(Float32Array.from(ids), [B, T]);
  } else {
    const data = features(input.F as number, 5).map((v) => v * (input.scale ?? 1));
    inspect?.(m, data);
    x = { data, shape: [B, T, input.F as number] };
    tx = tf.tensor3d(data, [B, T, input.F as number]);
  }
  const want = m.predict(tx) as tf.Tensor;
  const fromFile = await fromTfjs(path.join(saved.dir, 'model.json'));
  t.teardown(() => fromFile.dispose());
  const got = await fromFile.predict(x);
  t.same(got.shape, want.shape, 'output shape');
  close(t, got.data, want.dataSync(), 'model.json + weights.bin');
  const fromMemory = fromTfjsArtifacts({ modelJson: JSON.stringify(saved.modelJson), weightData: saved.weightData.buffer as ArrayBuffer });
  t.teardown(() => fromMemory.dispose());
  close(t, (await fromMemory.predict(x)).data, want.dataSync(), '{ modelJson, weightData }');
}

const lstm = (o: Record<string, unknown>) => tf.layers.lstm({ recurrentActivation: 'sigmoid', ...o } as never);
const gru = (o: Record<string, unknown>) => tf.layers.gru({ recurrentActivation: 'sigmoid', ...o } as never);

t.test('TF.js LSTM (sequences) + Dense', (t) => compare(t, () => tf.sequential({
  layers: [lstm({ units: 4, returnSequences: true, inputShape: [T, 3] }), tf.layers.dense({ units: 2 })],
}), { F: 3 }));

t.test('TF.js Embedding + Bidirectional LSTM (concat) + TimeDistributed(Dense softmax)', (t) => compare(t, () => tf.sequential({
  layers: [
    tf.layers.embedding({ inputDim: 7, outputDim: 3, inputLength: T }),
    tf.layers.bidirectional({ layer: lstm({ units: 4, returnSequences: true }) as never, mergeMode: 'concat' }),
    tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 7, activation: 'softmax' }) }),
  ],
}), { vocab: 7 }));

t.test('TF.js stacked GRUs (reset-before), dropout, last step + Dense softmax', (t) => compare(t, () => tf.sequential({
  layers: [
    gru({ units: 3, returnSequences: true, inputShape: [T, 2] }),
    tf.layers.dropout({ rate: 0.3 }),
    gru({ units: 4 }),
    tf.layers.dense({ units: 3, activation: 'softmax' }),
  ],
}), { F: 2 }));

t.test('TF.js SimpleRNN relu + Bidirectional GRU (sum, last step) + Dense tanh', (t) => compare(t, () => tf.sequential({
  layers: [
    tf.layers.simpleRNN({ units: 4, activation: 'relu', returnSequences: true, inputShape: [T, 3] }),
    tf.layers.bidirectional({ layer: gru({ units: 3 }) as never, mergeMode: 'sum' }),
    tf.layers.dense({ units: 2, activation: 'tanh' }),
  ],
}), { F: 3 }));

t.test('TF.js LSTM goBackwards (last step) and Bidirectional SimpleRNN (last step)', async (t) => {
  await compare(t, () => tf.sequential({
    layers: [lstm({ units: 4, goBackwards: true, inputShape: [T, 3] }), tf.layers.dense({ units: 2, activation: 'sigmoid' })],
  }), { F: 3 });
  await compare(t, () => tf.sequential({
    layers: [tf.layers.bidirectional({ layer: tf.layers.simpleRNN({ units: 3 }) as never, inputShape: [T, 2] } as never)],
  }), { F: 2 });
});

// TF.js's default recurrentActivation, hardSigmoid: clip(0.2 x + 0.5, 0, 1), with kinks at x = -2.5 and 2.5.

/**
 * Gate pre-activations (Keras gate blocks `gates` of the first layer, which reads x) that lie outside the kinks
 * (clipped) or between them (slope) whatever the recurrent state: the input part x W + b is computed exactly, the
 * recurrent part h U is at most the sum of |U| over the unit's column, as |h| < 1 (h0 = 0).
 */
function hardSigmoidPieces(m: tf.Sequential, x: Float32Array, gates: number[]): { clipped: number; slope: number; total: number } {
  const [kernel, recurrent, bias] = m.layers[0].getWeights().map((w) => w.dataSync());
  const F = m.layers[0].getWeights()[0].shape[0];
  const cols = bias.length;
  const units = recurrent.length / cols;
  let clipped = 0, slope = 0, total = 0;
  for (let row = 0; row < B * T; row++)
    for (const g of gates)
      for (let u = 0; u < units; u++) {
        const col = g * units + u;
        let pre = bias[col], reach = 0;
        for (let i = 0; i < F; i++) pre += x[row * F + i] * kernel[i * cols + col];
        for (let k = 0; k < units; k++) reach += Math.abs(recurrent[k * cols + col]);
        if (Math.abs(pre) - reach > 2.5) clipped++;
        else if (Math.abs(pre) + reach < 2.5) slope++;
        total++;
      }
  return { clipped, slope, total };
}

function expectBothPieces(t: Test, gates: number[]): (m: tf.Sequential, x: Float32Array) => void {
  return (m, x) => {
    const p = hardSigmoidPieces(m, x, gates);
    t.ok(p.clipped > 0 && p.slope > 0,
      `gate pre-activations on both pieces of the hard sigmoid: ${p.clipped} surely clipped, ${p.slope} surely on the slope, of ${p.total}`);
  };
}

const X_SCALE = 4; // inputs in [-4, 4]: many gates clip

t.test('TF.js LSTM with the default recurrentActivation (hardSigmoid), clipping, + Dense', (t) => compare(t, () => tf.sequential({
  layers: [tf.layers.lstm({ units: 4, returnSequences: true, inputShape: [T, 3] }), tf.layers.dense({ units: 2 })],
}), { F: 3, scale: X_SCALE }, expectBothPieces(t, [0, 1, 3])));

t.test('TF.js stacked GRUs (reset-before) with the default recurrentActivation (hardSigmoid), clipping', (t) => compare(t, () => tf.sequential({
  layers: [
    tf.layers.gru({ units: 4, returnSequences: true, inputShape: [T, 3] }),
    tf.layers.gru({ units: 3, returnSequences: true }),
  ],
}), { F: 3, scale: X_SCALE }, expectBothPieces(t, [0, 1])));

t.test('hardSigmoid models differ clearly from the same weights with sigmoid gates', async (t) => {
  // Otherwise the comparisons above could not tell the two apart.
  await ready;
  const x = tf.tensor3d(features(3, 5).map((v) => v * X_SCALE), [B, T, 3]);
  for (const layer of [tf.layers.lstm, tf.layers.gru]) {
    const hard = tf.sequential({ layers: [layer({ units: 4, returnSequences: true, inputShape: [T, 3] })] });
    randomizeWeights(hard, 7);
    const soft = tf.sequential({ layers: [layer({ units: 4, returnSequences: true, inputShape: [T, 3], recurrentActivation: 'sigmoid' })] });
    soft.setWeights(hard.getWeights());
    const d = tf.max(tf.abs(tf.sub(hard.predict(x) as tf.Tensor, soft.predict(x) as tf.Tensor))).dataSync()[0];
    t.ok(d > 1e-2, `${hard.layers[0].getClassName()}: max |difference| ${d.toFixed(4)}`);
  }
});

/** A Keras (Python) GRU with reset_after=True, converted by tensorflowjs_converter: bias [2, 3u]. */
t.test('Keras GRU reset_after=True (bias [2, 3u]) equals a reference GRU', (t) => kerasResetAfterGru(t, 'sigmoid', 1));

/** TF.js cannot build a reset-after GRU; Keras's, with TF.js's hard sigmoid, against the same reference. */
t.test('Keras GRU reset_after=True with recurrent_activation hard_sigmoid equals a reference GRU', (t) =>
  kerasResetAfterGru(t, 'hard_sigmoid', X_SCALE));

async function kerasResetAfterGru(t: Test, recurrentActivation: 'sigmoid' | 'hard_sigmoid', scale: number): Promise<void> {
  const I = 2, U = 3;
  const r = rng(11);
  const rand = (n: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * 0.8);
  const kernel = rand(I * 3 * U), rec = rand(U * 3 * U), bias = rand(2 * 3 * U);
  const modelJson = {
    modelTopology: {
      keras_version: '2.15.0', backend: 'tensorflow',
      model_config: { class_name: 'Sequential', config: { name: 'sequential', layers: [
        { class_name: 'InputLayer', config: { batch_input_shape: [null, T, I], dtype: 'float32', name: 'input_1' } },
        { class_name: 'GRU', config: { name: 'gru', units: U, activation: 'tanh', recurrent_activation: recurrentActivation, use_bias: true, reset_after: true, return_sequences: true } },
      ] } },
    },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [
      { name: 'gru/gru_cell/kernel', shape: [I, 3 * U], dtype: 'float32' },
      { name: 'gru/gru_cell/recurrent_kernel', shape: [U, 3 * U], dtype: 'float32' },
      { name: 'gru/gru_cell/bias', shape: [2, 3 * U], dtype: 'float32' },
    ] }],
  };
  const weightData = Buffer.concat([kernel, rec, bias].map((a) => Buffer.from(a.buffer)));
  const model = fromTfjsArtifacts({ modelJson, weightData });
  t.teardown(() => model.dispose());
  const x = features(I, 9).map((v) => v * scale);
  const got = await model.predict({ data: x, shape: [B, T, I] });
  // Keras's GRU, reset_after=True: gates z, r, h in the kernels' columns.
  const want: number[] = [];
  let clipped = 0, gates = 0;
  const sig = (v: number) => {
    gates++;
    if (recurrentActivation === 'sigmoid') return 1 / (1 + Math.exp(-v));
    if (Math.abs(v) > 2.5) clipped++;
    return Math.min(1, Math.max(0, 0.2 * v + 0.5));
  };
  for (let b = 0; b < B; b++) {
    let h = new Array(U).fill(0);
    for (let s = 0; s < T; s++) {
      const xp = new Array(3 * U).fill(0), hp = new Array(3 * U).fill(0);
      for (let j = 0; j < 3 * U; j++) {
        xp[j] = bias[j];
        hp[j] = bias[3 * U + j];
        for (let i = 0; i < I; i++) xp[j] += x[(b * T + s) * I + i] * kernel[i * 3 * U + j];
        for (let i = 0; i < U; i++) hp[j] += h[i] * rec[i * 3 * U + j];
      }
      h = h.map((hv, u) => {
        const z = sig(xp[u] + hp[u]), rr = sig(xp[U + u] + hp[U + u]);
        const n = Math.tanh(xp[2 * U + u] + rr * hp[2 * U + u]);
        return z * hv + (1 - z) * n;
      });
      want.push(...h);
    }
  }
  close(t, got.data, want, 'output');
  if (recurrentActivation === 'hard_sigmoid')
    t.ok(clipped > 0 && clipped < gates, `${clipped} of ${gates} gate pre-activations clipped`);
}

t.test('fromTfjs rejects what rnnkit cannot compute, naming the layer', async (t) => {
  await ready;
  const reject = async (m: tf.Sequential, re: RegExp) => {
    const s = await saveModel(m);
    t.teardown(() => fs.rmSync(s.dir, { recursive: true, force: true }));
    await t.rejects(fromTfjs(path.join(s.dir, 'model.json')), { code: 'ERR_RNNKIT_ARGUMENT', message: re });
  };
  await reject(tf.sequential({ layers: [tf.layers.lstm({ units: 2, inputShape: [T, 3], name: 'ra', recurrentActivation: 'tanh' })] }), /layer 'ra' \(LSTM\): recurrent_activation "tanh" is not supported \(sigmoid, hardSigmoid\)/);
  await reject(tf.sequential({ layers: [tf.layers.gru({ units: 2, inputShape: [T, 3], name: 'rg', recurrentActivation: 'relu6' } as never)] }), /layer 'rg' \(GRU\): recurrent_activation "relu6"/);
  await reject(tf.sequential({ layers: [lstm({ units: 2, inputShape: [T, 3], goBackwards: true, returnSequences: true, name: 'back' })] }), /layer 'back'.*go_backwards with return_sequences/);
  await reject(tf.sequential({ layers: [tf.layers.bidirectional({ layer: gru({ units: 2 }) as never, mergeMode: 'ave', inputShape: [T, 3], name: 'bi' } as never)] }), /layer 'bi'.*merge_mode "ave"/);
  await reject(tf.sequential({ layers: [tf.layers.flatten({ inputShape: [T, 3], name: 'flat' }), tf.layers.dense({ units: 1 })] }), /layer 'flat' \(Flatten\) is not supported/);
});
