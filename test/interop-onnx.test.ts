// ONNX out, checked by running the exported graphs in ONNX Runtime (onnxruntime-node, CPU) and comparing with
// rnnkit's own predictions on the same input: PyTorch models loaded with fromTorch, TF.js models loaded with
// fromTfjs, and models from the builder covering each cell, stacking, both merges of a bidirectional layer,
// goBackwards, last-step outputs, packed sequences (`lengths`), initial and final states, embeddings and dense
// heads. Also: what the file declares (opset, shapes, symbolic dimensions), the hardSigmoid gate activation against
// TF.js's, `lengths` on predict against PyTorch's packed sequences, and the errors for what cannot be exported.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as protobuf from 'protobufjs/light';
import * as tf from '@tensorflow/tfjs';
import * as rk from '../lib/index';
import { onnxDescriptor } from '../lib/io/onnx/schema';
import type { LayerConfig } from '../lib/layers';
import { throwsCode, rejectsCode } from './helpers/expect-error';

const TORCH = path.join(__dirname, 'fixtures', 'torch');

// Relative 1e-5, with an absolute floor for values near zero.
function close(t: Test, got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  t.equal(got.length, want.length, `${what}: length`);
  let at = -1;
  for (let i = 0; i < want.length && at < 0; i++)
    if (!(Math.abs(got[i] - want[i]) <= 1e-6 + 1e-5 * Math.abs(want[i]))) at = i;
  t.ok(at < 0, `${what}: within 1e-5 relative + 1e-6${at >= 0 ? ` (index ${at}: ${got[at]} vs ${want[at]})` : ''}`);
}

// A comparison with outputs near zero everywhere would pass whatever the weights: make sure there is signal.
function hasSignal(t: Test, data: ArrayLike<number>, what: string): void {
  let max = 0;
  for (let i = 0; i < data.length; i++) max = Math.max(max, Math.abs(data[i]));
  t.ok(max > 0.05, `${what}: outputs are not all near zero (max |y| = ${max.toFixed(3)})`);
}

function features(B: number, T: number, F: number, seed: number): rk.Tensor {
  return { data: Float32Array.from({ length: B * T * F }, (_, i) => Math.sin(seed + 0.7 * i) * 1.5), shape: [B, T, F] };
}

function tokens(B: number, T: number, V: number, seed: number): rk.IntTensor {
  return { data: Int32Array.from({ length: B * T }, (_, i) => (seed + 5 * i + ((i * i) % 3)) % V), shape: [B, T] };
}

function ortTensor(x: rk.ModelInput): ort.Tensor {
  return x.data instanceof Float32Array ? new ort.Tensor('float32', x.data, x.shape) : new ort.Tensor('int32', Int32Array.from(x.data), x.shape);
}

async function runOnnx(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

const modelType = protobuf.Root.fromJSON(onnxDescriptor).lookupType('onnx.ModelProto');
interface DecodedModel {
  ir_version: number;
  metadata_props?: { key: string; value: string }[];
  opset_import: { domain?: string; version: number }[];
  graph: {
    node: { op_type: string; input: string[]; output: string[]; attribute: { name: string; i?: number; s?: string; strings?: string[]; floats?: number[] }[] }[];
    input: { name: string; type: { tensor_type: { elem_type: number; shape: { dim: { dim_value?: number; dim_param?: string }[] } } } }[];
    output: DecodedModel['graph']['input'];
  };
}
function decode(bytes: Uint8Array): DecodedModel {
  return modelType.toObject(modelType.decode(bytes), { longs: Number, bytes: String, defaults: false }) as unknown as DecodedModel;
}
const dims = (v: DecodedModel['graph']['input'][number]): (number | string)[] =>
  v.type.tensor_type.shape.dim.map((d) => d.dim_param ?? Number(d.dim_value));

/** Export, run in ONNX Runtime, compare with rnnkit's predict (with the same lengths when given). */
async function checkAgainstOrt(t: Test, model: rk.Sequential, x: rk.ModelInput, lengths?: number[]): Promise<void> {
  const want = await model.predict(x, lengths ? { lengths } : undefined);
  const feeds: Record<string, ort.Tensor> = { [x.data instanceof Float32Array ? 'input' : 'tokens']: ortTensor(x) };
  if (lengths) feeds.lengths = new ort.Tensor('int32', Int32Array.from(lengths), [lengths.length]);
  const out = await runOnnx(model.toOnnx({ lengths: !!lengths }), feeds);
  t.same(out.output.dims, want.shape, 'ONNX output shape = predict output shape');
  close(t, out.output.data as Float32Array, want.data, 'ONNX Runtime vs predict');
  hasSignal(t, want.data, 'predict');
}

function build(options: rk.ModelOptions): rk.Sequential {
  const m = rk.sequential({ seed: 11, ...options });
  t.teardown(() => m.dispose());
  return m;
}

// --- PyTorch models (fromTorch) --------------------------------------------------------------------------------

interface Json { shape: number[]; data: number[] }
interface TorchCase { spec: rk.TorchSpec; input: { x?: Json; tokens?: Json }; lengths?: number[]; expected: { output: Json } }

function torchCase(name: string): TorchCase {
  return JSON.parse(fs.readFileSync(path.join(TORCH, `${name}.json`), 'utf8')) as TorchCase;
}
function torchInput(c: TorchCase): rk.ModelInput {
  if (c.input.tokens) return { data: Int32Array.from(c.input.tokens.data), shape: c.input.tokens.shape };
  return { data: Float32Array.from((c.input.x as Json).data), shape: (c.input.x as Json).shape };
}

for (const name of ['lstm_1layer', 'gru_2layer_bi_head', 'rnn_tanh_emb_head_softmax', 'rnn_relu_nobias', 'lstm_bi_emb_packed', 'gru_onehot']) {
  for (const returnSequences of [true, false]) {
    t.test(`PyTorch ${name} (fromTorch, returnSequences ${returnSequences}): ONNX Runtime = rnnkit`, async (t) => {
      const c = torchCase(name);
      const model = await rk.fromTorch(path.join(TORCH, `${name}.safetensors`), { ...c.spec, returnSequences });
      t.teardown(() => model.dispose());
      const x = torchInput(c);
      await checkAgainstOrt(t, model, x, c.lengths);
      // Every PyTorch model again as packed sequences of different lengths per row (batch-first input: [B, T, ...]).
      const [B, T] = x.shape;
      if (!c.lengths && B > 1 && T > 1) await checkAgainstOrt(t, model, x, Array.from({ length: B }, (_, b) => T - (b % T)));
    });
  }
}

t.test("predict's lengths give PyTorch's packed-sequence outputs (pack_padded_sequence, padded steps included)", async (t) => {
  const c = torchCase('lstm_bi_emb_packed');
  const model = await rk.fromTorch(path.join(TORCH, 'lstm_bi_emb_packed.safetensors'), c.spec);
  t.teardown(() => model.dispose());
  const x = torchInput(c);
  const lengths = c.lengths as number[];
  t.ok(new Set(lengths).size > 1, 'the rows have different lengths');
  const got = await model.predict(x, { lengths });
  close(t, got.data, c.expected.output.data, 'predict with lengths vs PyTorch');
  close(t, model.predictSync(x, { lengths: Int32Array.from(lengths) }).data, got.data, 'predictSync with lengths');
  const unpacked = await model.predict(x);
  t.ok(unpacked.data.some((v, i) => Math.abs(v - got.data[i]) > 1e-3), 'without lengths the padded rows give other outputs');
  const withState = await model.predictWithState(x, undefined, { lengths });
  close(t, withState.output.data, got.data, 'predictWithState with lengths');
});

t.test("predict's lengths are checked", async (t) => {
  const m = build({ inputSize: 2, layers: [rk.layers.gru({ units: 3 })] });
  const x = features(2, 4, 2, 1);
  throwsCode(t, () => m.predictSync(x, { lengths: [4] }), 'ERR_RNNKIT_SHAPE', /lengths has 1 entries, expected one per batch row \(2\)/, 'too few');
  throwsCode(t, () => m.predictSync(x, { lengths: [4, 0] }), 'ERR_RNNKIT_VALUE', /lengths\[1\] = 0 is outside \[1, 4\]/, 'zero');
  throwsCode(t, () => m.predictSync(x, { lengths: [5, 1] }), 'ERR_RNNKIT_VALUE', /lengths\[0\] = 5 is outside \[1, 4\]/, 'past the end');
  throwsCode(t, () => m.predictSync(x, { lengths: [1.5, 1] }), 'ERR_RNNKIT_TYPE', /lengths\[0\] is not an integer/, 'fraction');
  throwsCode(t, () => m.predictSync(x, { lengths: new Float32Array([1, 1]) as never }), 'ERR_RNNKIT_TYPE', /Int32Array or an array of integers/, 'Float32Array');
  throwsCode(t, () => m.predictSync(x, 3 as never), 'ERR_RNNKIT_TYPE', /options must be an object/, 'options not an object');
  await rejectsCode(t, () => m.predict(x, { lengths: [2, 9] }), 'ERR_RNNKIT_VALUE', /lengths\[1\] = 9/, 'predict rejects');
});

// --- Builder models --------------------------------------------------------------------------------------------

const CELLS: [string, (o: { units: number } & Record<string, unknown>) => LayerConfig][] = [
  ['rnn tanh', (o) => rk.layers.simpleRNN(o)],
  ['rnn relu', (o) => rk.layers.simpleRNN({ ...o, activation: 'relu' })],
  ['lstm', (o) => rk.layers.lstm(o)],
  ['gru reset-after', (o) => rk.layers.gru(o)],
  ['gru reset-before', (o) => rk.layers.gru({ ...o, resetAfter: false })],
];

for (const [label, cell] of CELLS) {
  t.test(`${label}: one layer, stacked, bidirectional (concat, sum), last step, goBackwards, lengths`, async (t) => {
    const x = features(3, 6, 4, 2);
    const lengths = [6, 2, 4];
    const variants: [string, Record<string, unknown>][] = [
      ['sequences', { returnSequences: true }],
      ['last step', { returnSequences: false }],
      ['2 stacked', { numLayers: 2, returnSequences: true }],
      ['bidirectional concat, 2 stacked', { bidirectional: true, numLayers: 2, returnSequences: true }],
      ['bidirectional sum', { bidirectional: { mergeMode: 'sum' }, returnSequences: true }],
      ['bidirectional concat, last step', { bidirectional: true, returnSequences: false }],
      ['bidirectional sum, last step, 2 stacked', { bidirectional: { mergeMode: 'sum' }, numLayers: 2, returnSequences: false }],
      ['goBackwards', { goBackwards: true, returnSequences: true }],
      ['goBackwards, last step, 2 stacked', { goBackwards: true, numLayers: 2, returnSequences: false }],
    ];
    for (const [what, o] of variants) {
      const m = build({ inputSize: 4, layers: [cell({ units: 5, ...o })] });
      await t.test(what, (t) => checkAgainstOrt(t, m, x));
      await t.test(`${what}, lengths ${lengths}`, (t) => checkAgainstOrt(t, m, x, lengths));
    }
  });
}

t.test('embedding + GRU + dropout + LSTM (last step) + dense softmax, token ids in', async (t) => {
  const m = build({
    vocabSize: 9,
    layers: [
      rk.layers.embedding({ outputDim: 4 }),
      rk.layers.gru({ units: 6, returnSequences: true, dropout: 0.2, stackDropout: 0.1, numLayers: 2 }),
      rk.layers.dropout({ rate: 0.5 }),
      rk.layers.lstm({ units: 5, bidirectional: true }),
      rk.layers.dense({ units: 9, activation: 'softmax' }),
    ],
  });
  const x = tokens(3, 7, 9, 4);
  await checkAgainstOrt(t, m, x);
  await checkAgainstOrt(t, m, x, [7, 1, 5]);
  const probs = (await m.predict(x)).data;
  close(t, [probs.slice(0, 9).reduce((a, b) => a + b, 0)], [1], 'softmax rows sum to 1');
});

t.test('dense heads: every activation, on sequences and on the last step', async (t) => {
  for (const activation of ['linear', 'softmax', 'sigmoid', 'tanh', 'relu'] as const) {
    const m = build({
      inputSize: 3,
      layers: [rk.layers.lstm({ units: 4, returnSequences: true }), rk.layers.dense({ units: 3, activation }), rk.layers.gru({ units: 4 }), rk.layers.dense({ units: 2, activation })],
    });
    await t.test(activation, (t) => checkAgainstOrt(t, m, features(2, 5, 3, 7)));
  }
});

t.test('states: initial states in, final states out, as predictWithState', async (t) => {
  const m = build({
    inputSize: 3,
    layers: [rk.layers.lstm({ units: 4, numLayers: 2, bidirectional: true, returnSequences: true }), rk.layers.gru({ units: 3, returnSequences: false })],
  });
  const B = 2;
  const x = features(B, 5, 3, 3);
  const lstmH = Float32Array.from({ length: 4 * B * 4 }, (_, i) => Math.cos(i) * 0.5);
  const lstmC = Float32Array.from({ length: 4 * B * 4 }, (_, i) => Math.sin(i) * 0.5);
  const gruH = Float32Array.from({ length: B * 3 }, (_, i) => 0.3 - 0.1 * i);
  const h = new Float32Array([...lstmH, ...gruH]);
  const lengths = [5, 3];
  const want = await m.predictWithState(x, { h, c: lstmC }, { lengths });
  const bytes = m.toOnnx({ states: true, lengths: true });
  const model = decode(bytes);
  t.same(model.graph.input.map((i) => i.name).sort(), ['gru_1_h0', 'input', 'lengths', 'lstm_1_c0', 'lstm_1_h0']);
  t.same(model.graph.output.map((o) => o.name).sort(), ['gru_1_hn', 'lstm_1_cn', 'lstm_1_hn', 'output']);
  t.same(dims(model.graph.input.find((i) => i.name === 'lstm_1_h0')!), [4, 'batch', 4], 'lstm_1_h0 is [layers * directions, batch, units]');
  const out = await runOnnx(bytes, {
    input: ortTensor(x),
    lengths: new ort.Tensor('int32', Int32Array.from(lengths), [B]),
    lstm_1_h0: new ort.Tensor('float32', lstmH, [4, B, 4]),
    lstm_1_c0: new ort.Tensor('float32', lstmC, [4, B, 4]),
    gru_1_h0: new ort.Tensor('float32', gruH, [1, B, 3]),
  });
  close(t, out.output.data as Float32Array, want.output.data, 'output');
  close(t, [...(out.lstm_1_hn.data as Float32Array), ...(out.gru_1_hn.data as Float32Array)], want.h, 'final h');
  close(t, out.lstm_1_cn.data as Float32Array, want.c as Float32Array, 'final c');
  const zero = await m.predictWithState(x, undefined, { lengths });
  t.ok(zero.output.data.some((v, i) => Math.abs(v - want.output.data[i]) > 1e-3), 'the initial states change the output');
});

// --- TF.js models (fromTfjs) -----------------------------------------------------------------------------------

async function tfjsArtifacts(m: tf.LayersModel): Promise<rk.TfjsArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await m.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const a = saved as tf.io.ModelArtifacts;
  return {
    modelJson: JSON.stringify({ modelTopology: a.modelTopology, format: a.format, weightsManifest: [{ paths: ['w.bin'], weights: a.weightSpecs }] }),
    weightData: a.weightData as ArrayBuffer,
  };
}

t.test('TF.js model (fromTfjs): reset-before GRU and goBackwards LSTM', async (t) => {
  await tf.setBackend('cpu');
  const tm = tf.sequential({
    layers: [
      tf.layers.gru({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid', inputShape: [null, 3] } as never),
      tf.layers.lstm({ units: 3, goBackwards: true, recurrentActivation: 'sigmoid' } as never),
      tf.layers.dense({ units: 2, activation: 'tanh' }),
    ],
  });
  // TF.js's initial weights give outputs too small to tell a wrong graph from a right one.
  tm.setWeights(tm.getWeights().map((w, k) => tf.tensor(Float32Array.from({ length: w.size }, (_, i) => Math.sin(3 * k + 1.3 * i) * 0.8), w.shape)));
  const m = rk.fromTfjsArtifacts(await tfjsArtifacts(tm));
  t.teardown(() => m.dispose());
  await checkAgainstOrt(t, m, features(2, 5, 3, 9));
});

// TF.js's hardSigmoid gates (clip(0.2 x + 0.5, 0, 1)): the exported graph, and rnnkit itself, must compute what TF.js
// computes. The weights are copied into a TF.js model of
// the same shape (Keras layouts: kernels transposed, one bias; LSTM gates i,f,c,o as PyTorch's; GRU z,r,h).
t.test('recurrentActivation hardSigmoid exports as ONNX HardSigmoid (alpha 0.2, beta 0.5) and matches TF.js', async (t) => {
  await tf.setBackend('cpu');
  const F = 3;
  const H = 4;
  const x = features(2, 6, F, 5);
  const transpose = (w: rk.Tensor): tf.Tensor => tf.tensor2d(w.data, w.shape as [number, number]).transpose();
  for (const cell of ['lstm', 'gru'] as const) {
    const layer = { kind: 'recurrent', cell, units: H, returnSequences: true, recurrentActivation: 'hardSigmoid', ...(cell === 'gru' ? { resetAfter: false } : {}) } as LayerConfig;
    const m = build({ inputSize: F, layers: [layer] });
    const w = m.getWeights();
    const name = cell === 'lstm' ? 'lstm_1' : 'gru_1';
    const bytes = m.toOnnx();
    const node = decode(bytes).graph.node.find((n) => n.op_type === cell.toUpperCase())!;
    const attr = (k: string) => node.attribute.find((a) => a.name === k);
    t.same(attr('activations')?.strings?.map((s) => Buffer.from(s, 'base64').toString()), cell === 'lstm' ? ['HardSigmoid', 'Tanh', 'Tanh'] : ['HardSigmoid', 'Tanh'], `${cell}: activations`);
    close(t, attr('activation_alpha')?.floats ?? [], [0.2], `${cell}: alpha`);
    close(t, attr('activation_beta')?.floats ?? [], [0.5], `${cell}: beta`);

    let kernel = transpose(w[`${name}.weight_ih_l0`]);
    let recurrent = transpose(w[`${name}.weight_hh_l0`]);
    let bias: tf.Tensor;
    if (cell === 'lstm') {
      bias = tf.add(tf.tensor1d(w[`${name}.bias_ih_l0`].data), tf.tensor1d(w[`${name}.bias_hh_l0`].data));
    } else {
      // Reset-before with one bias: rnnkit's recurrent bias set to zero, then r,z,n -> z,r,h.
      m.setWeights({ [`${name}.bias_hh_l0`]: new Float32Array(3 * H) });
      const zrh = (k: tf.Tensor): tf.Tensor => { const [r, z, n] = tf.split(k, 3, -1); return tf.concat([z, r, n], -1); };
      kernel = zrh(kernel);
      recurrent = zrh(recurrent);
      bias = zrh(tf.tensor1d(w[`${name}.bias_ih_l0`].data));
    }
    const options = { units: H, returnSequences: true, recurrentActivation: 'hardSigmoid', inputShape: [null, F] };
    const tm = tf.sequential({ layers: [cell === 'lstm' ? tf.layers.lstm(options as never) : tf.layers.gru(options as never)] });
    tm.setWeights([kernel, recurrent, bias]);
    const want = (tm.predict(tf.tensor3d(x.data, x.shape as [number, number, number])) as tf.Tensor).dataSync();
    const out = await runOnnx(cell === 'lstm' ? bytes : m.toOnnx(), { input: ortTensor(x) });
    close(t, out.output.data as Float32Array, want, `${cell}: ONNX Runtime vs TF.js`);
    close(t, (await m.predict(x)).data, want, `${cell}: rnnkit's own hard-sigmoid gates vs TF.js`);
    hasSignal(t, want, `${cell}: TF.js`);
  }
});

// --- The file --------------------------------------------------------------------------------------------------

t.test('the file: opset 14, batch-first inputs and outputs with symbolic batch and time, ONNX operators', async (t) => {
  const m = build({ vocabSize: 6, layers: [rk.layers.embedding({ outputDim: 3 }), rk.layers.gru({ units: 4, returnSequences: true }), rk.layers.dense({ units: 6, activation: 'softmax' })] });
  const model = decode(m.toOnnx({ lengths: true }));
  t.same(model.opset_import.map((o) => [o.domain ?? '', Number(o.version)]), [['', 14]], 'default domain, opset 14');
  t.equal(Number(model.ir_version), 7);
  const input = model.graph.input.find((i) => i.name === 'tokens')!;
  t.equal(input.type.tensor_type.elem_type, 6, 'token ids are int32');
  t.same(dims(input), ['batch', 'time']);
  t.same(dims(model.graph.input.find((i) => i.name === 'lengths')!), ['batch']);
  t.same(dims(model.graph.output[0]), ['batch', 'time', 6]);
  const ops = model.graph.node.map((n) => n.op_type);
  for (const op of ['Gather', 'GRU', 'MatMul', 'Add', 'Softmax']) t.ok(ops.includes(op), `uses ${op}`);
  t.notOk(ops.includes('Dropout'), 'no dropout');
  const gru = model.graph.node.find((n) => n.op_type === 'GRU')!;
  t.equal(Number(gru.attribute.find((a) => a.name === 'linear_before_reset')?.i), 1, 'reset-after GRU: linear_before_reset 1');
  t.equal(gru.input[4], 'lengths', 'lengths is the GRU sequence_lens');
  t.notOk(model.metadata_props?.length, 'no metadata properties without metadata');
  m.metadata = { vocabulary: 'abcdef' };
  t.same(decode(m.toOnnx()).metadata_props, [{ key: 'rnnkit.metadata', value: '{"vocabulary":"abcdef"}' }], 'the model metadata travels as rnnkit.metadata');

  const dense = build({ inputSize: 5, layers: [rk.layers.gru({ units: 2, resetAfter: false }), rk.layers.dense({ units: 1 })] });
  const d = decode(dense.toOnnx());
  t.same(dims(d.graph.input[0]), ['batch', 'time', 5]);
  t.same(dims(d.graph.output[0]), ['batch', 1], 'last step: [batch, units]');
  t.notOk(Number(d.graph.node.find((n) => n.op_type === 'GRU')!.attribute.find((a) => a.name === 'linear_before_reset')?.i ?? 0), 'reset-before GRU: linear_before_reset 0');
});

t.test('exportOnnx writes the same bytes as toOnnx, atomically', async (t) => {
  const m = build({ inputSize: 2, layers: [rk.layers.lstm({ units: 3 })] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-onnx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'model.onnx');
  await m.exportOnnx(file, { lengths: true });
  t.same(fs.readFileSync(file), Buffer.from(m.toOnnx({ lengths: true })));
  t.same(fs.readdirSync(dir), ['model.onnx'], 'no temporary file left behind');
  const session = await ort.InferenceSession.create(file);
  t.same([...session.inputNames].sort(), ['input', 'lengths']);
  await session.release();
});

// --- What cannot be exported -----------------------------------------------------------------------------------

t.test('layers ONNX cannot express are refused with ERR_RNNKIT_ARGUMENT naming the layer', async (t) => {
  const lstm = (extra: Record<string, unknown>) => ({ kind: 'recurrent', cell: 'lstm', units: 3, name: 'enc', ...extra }) as LayerConfig;
  // Gate activations the engine itself refuses never reach the exporter: the model's network cannot be built.
  const unbuildable: [string, LayerConfig, RegExp][] = [
    ['unknown gate activation', lstm({ recurrentActivation: 'relu' }), /recurrentActivation must be 'sigmoid' or 'hardSigmoid', got "relu"/],
    ['gate activation on a simple RNN', { kind: 'recurrent', cell: 'rnn_tanh', units: 3, name: 'plain', recurrentActivation: 'hardSigmoid' } as LayerConfig, /gate activation is for lstm and gru cells, not rnn_tanh/],
  ];
  for (const [what, layer, message] of unbuildable)
    throwsCode(t, () => build({ inputSize: 2, layers: [layer] }).toOnnx(), 'ERR_RNNKIT_ARGUMENT', message, `${what} (refused by the builder)`);
  const cases: [string, LayerConfig, RegExp][] = [
    ['cell activation other than tanh', lstm({ activation: 'relu' }), /layer 'enc' cannot be exported.*activation "relu"/],
  ];
  for (const [what, layer, message] of cases) {
    const m = build({ inputSize: 2, layers: [layer] });
    throwsCode(t, () => m.toOnnx(), 'ERR_RNNKIT_ARGUMENT', message, what);
    await rejectsCode(t, () => m.exportOnnx(path.join(os.tmpdir(), 'never-written.onnx')), 'ERR_RNNKIT_ARGUMENT', message, `${what} (exportOnnx)`);
  }
  const onlyEmbedding = build({ vocabSize: 4, layers: [rk.layers.embedding({ outputDim: 2 })] });
  t.ok(onlyEmbedding.toOnnx().byteLength > 0, 'an embedding alone exports');
  const m = build({ inputSize: 2, layers: [rk.layers.gru({ units: 2 })] });
  throwsCode(t, () => m.toOnnx({ lengths: 'yes' } as never), 'ERR_RNNKIT_TYPE', /options\.lengths must be a boolean/, 'lengths option not a boolean');
  throwsCode(t, () => m.toOnnx(null as never), 'ERR_RNNKIT_TYPE', /toOnnx\(\) takes an options object/, 'options null');
});
