// fromTorch / fromTfjs on damaged or hostile files: every failure is ERR_RNNKIT_FORMAT naming what is wrong, and
// forged sizes fail fast, before anything of that size is allocated.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fromTorchSync } from '../lib/io/interop/torch';
import { fromTfjs, fromTfjsArtifacts } from '../lib/io/interop/tfjs';

const TORCH = fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'lstm_1layer.safetensors'));
const SPEC = { cell: 'lstm' as const, rnnPrefix: 'rnn.' };

/** A safetensors file with the given header object and data bytes. */
function safetensors(header: unknown, data: Uint8Array | number = 0, rawHeader?: string): Buffer {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return Buffer.concat([out, typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data)]);
}

const fmt = (re: RegExp) => ({ code: 'ERR_RNNKIT_FORMAT', message: re });

t.test('fromTorch: damaged safetensors files', async (t) => {
  t.throws(() => fromTorchSync(TORCH.subarray(0, 5), SPEC), fmt(/too short/));
  t.throws(() => fromTorchSync(TORCH.subarray(0, TORCH.length - 3), SPEC), fmt(/rnn\.\w+.*outside the data section/), 'truncated data');
  const huge = Buffer.from(TORCH);
  huge.writeBigUInt64LE(2n ** 63n, 0);
  t.throws(() => fromTorchSync(huge, SPEC), fmt(/header length .* runs past the end/));
  t.throws(() => fromTorchSync(safetensors(null, 0, '{"rnn.weight_ih_l0": [garbage'), SPEC), fmt(/not valid JSON/));
  t.throws(() => fromTorchSync(safetensors([1, 2]), SPEC), fmt(/not a JSON object/));
  t.throws(() => fromTorchSync(safetensors({ 'rnn.weight_ih_l0': { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16), SPEC),
    fmt(/'rnn\.weight_ih_l0' has dtype "I64"/));
  t.throws(() => fromTorchSync(safetensors({ 'rnn.weight_ih_l0': { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8), SPEC),
    fmt(/'rnn\.weight_ih_l0' has an invalid shape/));
  t.throws(() => fromTorchSync(safetensors({ 'rnn.weight_ih_l0': { dtype: 'F32', shape: [4], data_offsets: [0, 8] } }, 8), SPEC),
    fmt(/'rnn\.weight_ih_l0' of shape \[4\].*needs 16 bytes, its offsets give 8/));
  t.throws(() => fromTorchSync(safetensors({
    'rnn.bias_ih_l0': { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    'rnn.bias_hh_l0': { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
  }, 24), SPEC), fmt(/'rnn\.bias_ih_l0' and 'rnn\.bias_hh_l0' overlap/));
  t.throws(() => fromTorchSync(safetensors({ 'rnn.weight_hh_l0': { dtype: 'F32', shape: [4], data_offsets: [16, 8] } }, 16), SPEC),
    fmt(/'rnn\.weight_hh_l0' spans bytes \[16, 8\)/));
  const started = Date.now();
  t.throws(() => fromTorchSync(safetensors({ 'rnn.weight_ih_l0': { dtype: 'F32', shape: [1e9, 1e9], data_offsets: [0, 16] } }, 16), SPEC),
    fmt(/'rnn\.weight_ih_l0' of shape \[1000000000,1000000000\]/));
  t.throws(() => fromTorchSync(safetensors({ 'rnn.weight_ih_l0': { dtype: 'F32', shape: [1e9, 1e9], data_offsets: [0, 4e18] } }, 16), SPEC),
    fmt(/'rnn\.weight_ih_l0' has invalid data_offsets/));
  t.ok(Date.now() - started < 1000, 'oversized shapes fail fast');
});

/** A small valid TF.js model: Dense(2) on 3 features. */
function tfjsModel(weights: unknown[], layers?: unknown[]): Record<string, unknown> {
  return {
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers: layers ?? [
      { class_name: 'SimpleRNN', config: { name: 'rnn', units: 2, activation: 'tanh', return_sequences: true, batch_input_shape: [null, 4, 3] } },
    ] } },
    format: 'layers-model',
    weightsManifest: [{ paths: ['weights.bin'], weights }],
  };
}
const GOOD = [
  { name: 'rnn/kernel', shape: [3, 2], dtype: 'float32' },
  { name: 'rnn/recurrent_kernel', shape: [2, 2], dtype: 'float32' },
  { name: 'rnn/bias', shape: [2], dtype: 'float32' },
];
const GOOD_BYTES = (6 + 4 + 2) * 4;

t.test('fromTfjs: a valid small model loads (the baseline of the checks below)', async (t) => {
  const m = fromTfjsArtifacts({ modelJson: tfjsModel(GOOD), weightData: new Uint8Array(GOOD_BYTES) });
  t.same((await m.predict({ data: new Float32Array(12), shape: [1, 4, 3] })).shape, [1, 4, 2]);
  m.dispose();
});

t.test('fromTfjs: damaged model.json and weights', async (t) => {
  const load = (modelJson: unknown, bytes = GOOD_BYTES) => () => fromTfjsArtifacts({ modelJson, weightData: new Uint8Array(bytes) });
  t.throws(load('{"modelTopology": {'), fmt(/not valid JSON/));
  t.throws(load('[1, 2]'), fmt(/not a JSON object/));
  t.throws(load({ modelTopology: tfjsModel(GOOD).modelTopology }), fmt(/no weightsManifest/));
  t.throws(load({ ...tfjsModel(GOOD), modelTopology: 7 }), fmt(/no modelTopology/));
  t.throws(load(tfjsModel(GOOD), GOOD_BYTES - 4), fmt(/'rnn\/bias' of shape \[2\] needs more bytes than the weight data holds/), 'truncated weights');
  t.throws(load(tfjsModel(GOOD), GOOD_BYTES + 4), fmt(/describes 48 bytes of weights but the weight data has 52/), 'trailing bytes');
  t.throws(load(tfjsModel([{ ...GOOD[0], dtype: 'int32' }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel' has dtype "int32"; only float32/));
  t.throws(load(tfjsModel([{ ...GOOD[0], quantization: { dtype: 'uint8', scale: 1, min: 0 } }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel' is quantized/));
  t.throws(load(tfjsModel([GOOD[0], GOOD[0], GOOD[1]])), fmt(/'rnn\/kernel' is listed twice/));
  t.throws(load(tfjsModel([{ ...GOOD[0], shape: [3, -2] }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel' has an invalid shape/));
  t.throws(load(tfjsModel([{ ...GOOD[0], shape: '3x2' }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel' has an invalid shape/));
  t.throws(load(tfjsModel([{ shape: [2] }])), fmt(/weights\[0\] has no name/));
  const started = Date.now();
  t.throws(load(tfjsModel([{ ...GOOD[0], shape: [1e9, 1e9] }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel' of shape \[1000000000,1000000000\] needs more bytes/));
  t.throws(load(tfjsModel([{ ...GOOD[0], shape: [2 ** 52, 2 ** 52, 0] }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel'/));
  t.ok(Date.now() - started < 1000, 'oversized shapes fail fast');
  // Consistent bytes, but shapes that do not fit the layer's configuration.
  t.throws(load(tfjsModel([{ ...GOOD[0], shape: [2, 3] }, GOOD[1], GOOD[2]])), fmt(/'rnn\/kernel' has shape \[2,3\], expected \[3,2\]/));
  t.throws(load(tfjsModel([...GOOD, { name: 'stray/kernel', shape: [1], dtype: 'float32' }]), GOOD_BYTES + 4), fmt(/not used by any layer: stray\/kernel/));
  t.throws(load(tfjsModel(GOOD.slice(0, 2)), GOOD_BYTES - 8), fmt(/layer 'rnn' \(SimpleRNN\) has no weight 'rnn\/bias'/));
  t.throws(load(tfjsModel(GOOD, [{ class_name: 'SimpleRNN', config: { name: 'rnn', units: 'two', batch_input_shape: [null, 4, 3] } }])), fmt(/layer 'rnn' \(SimpleRNN\) units must be a positive integer/));
  t.throws(load(tfjsModel(GOOD, [{ class_name: 'SimpleRNN' }])), fmt(/modelTopology layer 0 is not a layer/));
  t.throws(() => fromTfjsArtifacts({ modelJson: tfjsModel(GOOD), weightData: 'abc' as never }), { code: 'ERR_RNNKIT_TYPE' });
});

t.test('fromTfjs from a directory: file sizes checked, no paths outside the directory', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-untrusted-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (json: unknown, bytes: number) => {
    fs.writeFileSync(path.join(dir, 'model.json'), typeof json === 'string' ? json : JSON.stringify(json));
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.alloc(bytes));
    return path.join(dir, 'model.json');
  };
  const ok = await fromTfjs(write(tfjsModel(GOOD), GOOD_BYTES));
  ok.dispose();
  await t.rejects(fromTfjs(write(tfjsModel(GOOD), GOOD_BYTES - 1)), fmt(/needs more bytes|describes/));
  await t.rejects(fromTfjs(write('garbage', GOOD_BYTES)), fmt(/not valid JSON/));
  const escape = { ...tfjsModel(GOOD), weightsManifest: [{ paths: ['../weights.bin'], weights: GOOD }] };
  await t.rejects(fromTfjs(write(escape, GOOD_BYTES)), fmt(/"\.\.\/weights\.bin" outside the model's directory/));
  const absolute = { ...tfjsModel(GOOD), weightsManifest: [{ paths: ['/etc/passwd'], weights: GOOD }] };
  await t.rejects(fromTfjs(write(absolute, GOOD_BYTES)), fmt(/outside the model's directory/));
  const missing = { ...tfjsModel(GOOD), weightsManifest: [{ paths: ['nope.bin'], weights: GOOD }] };
  await t.rejects(fromTfjs(write(missing, GOOD_BYTES)), { code: 'ERR_RNNKIT_FILE', message: /weight file .*nope\.bin does not exist/ });
  const twoGroups = { ...tfjsModel(GOOD), weightsManifest: [{ paths: ['weights.bin'], weights: GOOD.slice(0, 1) }, { paths: ['weights.bin'], weights: GOOD.slice(1) }] };
  await t.rejects(fromTfjs(write(twoGroups, GOOD_BYTES)), fmt(/weightsManifest\[0\] describes 24 bytes but its files hold 48/));
});
