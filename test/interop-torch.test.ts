import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as rk from '../lib/index';
import { fromTorch, fromTorchSync, type TorchSpec } from '../lib/io/interop/torch';
import { serializeSafetensors, parseSafetensors } from '../lib/io/safetensors';

const DIR = path.join(__dirname, 'fixtures', 'torch');
const CASES = ['lstm_1layer', 'gru_2layer_bi_head', 'rnn_tanh_emb_head_softmax', 'rnn_relu_nobias', 'lstm_bi_emb_packed', 'gru_onehot'];

interface Json { shape: number[]; data: number[] }
interface Case {
  name: string;
  spec: TorchSpec;
  input: { x?: Json; tokens?: Json };
  lengths?: number[];
  expected: { output: Json; h_n: Json; c_n?: Json };
}

function close(t: Test, got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  t.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (1e-5 + 1e-4 * Math.abs(want[i]));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  }
  t.ok(at < 0, `${what}: within 1e-5 abs + 1e-4 rel${at >= 0 ? ` (index ${at}: ${got[at]} vs ${want[at]})` : ''}`);
}

function input(c: Case): rk.ModelInput {
  if (c.input.tokens) return { data: Int32Array.from(c.input.tokens.data), shape: c.input.tokens.shape };
  const x = c.input.x as Json;
  return { data: Float32Array.from(x.data), shape: x.shape };
}

/** Rows [b] of a batch-first tensor, the first `len` steps. */
function slice(x: rk.ModelInput, b: number, len: number): rk.ModelInput {
  const [, T] = x.shape;
  const per = x.shape.slice(2).reduce((a, v) => a * v, 1);
  const data = x.data.slice(b * T * per, (b * T + len) * per);
  return { data, shape: [1, len, ...x.shape.slice(2)] } as rk.ModelInput;
}

for (const name of CASES) {
  t.test(`PyTorch ${name}: outputs and final states equal PyTorch's`, async (t) => {
    const c = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), 'utf8')) as Case;
    const model = await rk.fromTorch(path.join(DIR, `${name}.safetensors`), c.spec);
    t.teardown(() => model.dispose());
    const x = input(c);
    const exp = c.expected;
    if (!c.lengths) {
      const r = await model.predictWithState(x);
      t.same(r.output.shape, exp.output.shape, 'output shape');
      close(t, r.output.data, exp.output.data, 'output');
      close(t, r.h, exp.h_n.data, 'h_n');
      if (exp.c_n) close(t, r.c as Float32Array, exp.c_n.data, 'c_n');
      return;
    }
    // pack_padded_sequence: each row runs over its own length; compare the valid steps and the final states.
    const [B, T] = x.shape;
    const F = exp.output.shape[2];
    const [S, , Hd] = exp.h_n.shape;
    for (let b = 0; b < B; b++) {
      const len = c.lengths[b];
      const r = await model.predictWithState(slice(x, b, len));
      close(t, r.output.data, exp.output.data.slice(b * T * F, (b * T + len) * F), `row ${b} (length ${len}) output`);
      const pick = (j: Json): number[] => Array.from({ length: S }, (_, s) => j.data.slice((s * B + b) * Hd, (s * B + b + 1) * Hd)).flat();
      close(t, r.h, pick(exp.h_n), `row ${b} h_n`);
      if (exp.c_n) close(t, r.c as Float32Array, pick(exp.c_n), `row ${b} c_n`);
    }
  });
}

t.test('fromTorch names layers after the prefixes; save writes PyTorch names back', async (t) => {
  const file = path.join(DIR, 'lstm_bi_emb_packed.safetensors');
  const model = await fromTorch(fs.readFileSync(file), { cell: 'lstm', rnnPrefix: 'rnn.', embeddingPrefix: 'emb.', headPrefix: 'fc.' });
  t.teardown(() => model.dispose());
  const src = parseSafetensors(fs.readFileSync(file));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-torch-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'm.safetensors');
  await model.save(out);
  const saved = parseSafetensors(fs.readFileSync(out));
  t.same([...saved.tensors.keys()].sort(), [...src.tensors.keys()].sort(), 'same tensor names as the state_dict');
  for (const [k, v] of src.tensors) t.same(Array.from(saved.tensors.get(k)!.data), Array.from(v.data), k);
  const back = await rk.load(out);
  t.teardown(() => back.dispose());
  const x = { data: Int32Array.from([1, 2, 3, 4]), shape: [1, 4] };
  t.same(Array.from((await back.predict(x)).data), Array.from((await model.predict(x)).data), 'reloaded model predicts the same');
});

t.test('fromTorch: a bare module state_dict (empty prefix), returnSequences false', async (t) => {
  const src = parseSafetensors(fs.readFileSync(path.join(DIR, 'lstm_1layer.safetensors')));
  const bare = serializeSafetensors([...src.tensors.values()].map((v) => ({ ...v, name: v.name.replace(/^rnn\./, '') })));
  const c = JSON.parse(fs.readFileSync(path.join(DIR, 'lstm_1layer.json'), 'utf8')) as Case;
  const model = fromTorchSync(bare, { cell: 'lstm', returnSequences: false });
  t.teardown(() => model.dispose());
  const r = await model.predict(input(c));
  const [B, T, H] = c.expected.output.shape;
  t.same(r.shape, [B, H]);
  const last = Array.from({ length: B }, (_, b) => c.expected.output.data.slice((b * T + T - 1) * H, (b * T + T) * H)).flat();
  close(t, r.data, last, 'last step');
});

function withTensors(file: string, edit: (m: Map<string, { name: string; shape: number[]; data: Float32Array }>) => void): Buffer {
  const src = parseSafetensors(fs.readFileSync(path.join(DIR, file)));
  edit(src.tensors);
  return serializeSafetensors([...src.tensors.values()]);
}

t.test('fromTorch rejects mismatched specs and tensors, naming the tensor', async (t) => {
  const lstm = fs.readFileSync(path.join(DIR, 'lstm_1layer.safetensors'));
  const err = (code: string, re: RegExp) => ({ code, message: re });
  t.throws(() => fromTorchSync(lstm, { cell: 'gru', rnnPrefix: 'rnn.' }), err('ERR_RNNKIT_FORMAT', /rnn\.weight_hh_l0.*4 gates/));
  t.throws(() => fromTorchSync(lstm, { cell: 'lstm', rnnPrefix: 'enc.' }), err('ERR_RNNKIT_FORMAT', /no nn\.LSTM tensors under the prefix 'enc\.'/));
  t.throws(() => fromTorchSync(lstm, { cell: 'lstm', rnnPrefix: 'rnn.', inputSize: 4 }), err('ERR_RNNKIT_ARGUMENT', /inputSize is 4 .*rnn\.weight_ih_l0/));
  t.throws(() => fromTorchSync(lstm, { cell: 'lstm', rnnPrefix: 'rnn.', headPrefix: 'fc.' }), err('ERR_RNNKIT_FORMAT', /no tensor 'fc\.weight'/));
  t.throws(() => fromTorchSync(lstm, { cell: 'cnn' as never }), err('ERR_RNNKIT_ARGUMENT', /spec\.cell/));
  t.throws(() => fromTorchSync(lstm, null as never), { code: 'ERR_RNNKIT_TYPE' });
  t.throws(() => fromTorchSync(lstm, { cell: 'lstm', rnnPrefix: 'rnn.', headActivation: 'softmax' }), err('ERR_RNNKIT_ARGUMENT', /headPrefix/));
  const missing = withTensors('lstm_1layer.safetensors', (m) => m.delete('rnn.bias_hh_l0'));
  t.throws(() => fromTorchSync(missing, { cell: 'lstm', rnnPrefix: 'rnn.' }), err('ERR_RNNKIT_FORMAT', /no tensor 'rnn\.bias_hh_l0'/));
  const badShape = withTensors('lstm_1layer.safetensors', (m) => {
    m.set('rnn.bias_ih_l0', { name: 'rnn.bias_ih_l0', shape: [15], data: new Float32Array(15) });
  });
  t.throws(() => fromTorchSync(badShape, { cell: 'lstm', rnnPrefix: 'rnn.' }), err('ERR_RNNKIT_FORMAT', /'rnn\.bias_ih_l0' has shape \[15\], expected \[16\]/));
  const proj = withTensors('lstm_1layer.safetensors', (m) => {
    m.set('rnn.weight_hr_l0', { name: 'rnn.weight_hr_l0', shape: [2, 4], data: new Float32Array(8) });
  });
  t.throws(() => fromTorchSync(proj, { cell: 'lstm', rnnPrefix: 'rnn.' }), err('ERR_RNNKIT_FORMAT', /weight_hr_l0.*proj_size/));
  const gap = withTensors('gru_2layer_bi_head.safetensors', (m) => {
    for (const k of [...m.keys()]) if (k.includes('_l0')) m.delete(k);
  });
  t.throws(() => fromTorchSync(gap, { cell: 'gru', rnnPrefix: 'rnn.' }), err('ERR_RNNKIT_FORMAT', /rnn\.weight_hh_l0/));
  const emb = fs.readFileSync(path.join(DIR, 'rnn_tanh_emb_head_softmax.safetensors'));
  t.throws(() => fromTorchSync(emb, { cell: 'rnn', rnnPrefix: 'rnn.', embeddingPrefix: 'emb.', vocabSize: 8 }), err('ERR_RNNKIT_ARGUMENT', /vocabSize is 8 .*emb\.weight/));
  const headBad = withTensors('gru_2layer_bi_head.safetensors', (m) => {
    m.set('fc.weight', { name: 'fc.weight', shape: [2, 4], data: new Float32Array(8) });
  });
  t.throws(() => fromTorchSync(headBad, { cell: 'gru', rnnPrefix: 'rnn.', headPrefix: 'fc.' }), err('ERR_RNNKIT_FORMAT', /'fc\.weight' reads 4 features .* outputs 8/));
});

t.test('fromTorch ignores tensors of other modules, whatever their dtype', async (t) => {
  const src = fs.readFileSync(path.join(DIR, 'lstm_1layer.safetensors'));
  const hl = Number(src.readBigUInt64LE(0));
  const header = JSON.parse(src.subarray(8, 8 + hl).toString('utf8'));
  const data = src.subarray(8 + hl);
  header['bn.num_batches_tracked'] = { dtype: 'I64', shape: [], data_offsets: [data.length, data.length + 8] };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = Buffer.concat([len, json, data, Buffer.alloc(8)]);
  const model = fromTorchSync(file, { cell: 'lstm', rnnPrefix: 'rnn.' });
  t.same(Object.keys(model.getWeights()).length, 4);
  model.dispose();
  t.throws(() => fromTorchSync(file, { cell: 'lstm', rnnPrefix: '', headPrefix: 'bn.' }), { code: 'ERR_RNNKIT_FORMAT', message: /num_batches_tracked.*I64/ },
    'a tensor under a prefix of the spec is checked');
});

t.test("fromTorch checks other modules' tensors too: duplicate names, overlaps, byte counts", async (t) => {
  const src = fs.readFileSync(path.join(DIR, 'lstm_1layer.safetensors'));
  const hl = Number(src.readBigUInt64LE(0));
  const headerText = src.subarray(8, 8 + hl).toString('utf8');
  const data = src.subarray(8 + hl);
  const build = (text: string, extra = 8): Buffer => {
    const json = Buffer.from(text);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, data, Buffer.alloc(extra)]);
  };
  const withEntry = (entry: string): string => headerText.replace(/\}\s*$/, `,${entry}}`);
  const spec = { cell: 'lstm' as const, rnnPrefix: 'rnn.' };
  const bn = (offsets: [number, number], dtype = 'I64') => `"bn.num_batches_tracked":{"dtype":"${dtype}","shape":[],"data_offsets":[${offsets}]}`;
  const ok = fromTorchSync(build(withEntry(bn([data.length, data.length + 8]))), spec);
  t.equal(Object.keys(ok.getWeights()).length, 4, 'a well-placed int64 buffer of another module is fine');
  ok.dispose();
  t.throws(() => fromTorchSync(build(withEntry(`${bn([data.length, data.length + 8])},${bn([data.length, data.length + 8])}`)), spec),
    { code: 'ERR_RNNKIT_FORMAT', message: /"bn\.num_batches_tracked" appears twice/ }, 'a name given twice');
  t.throws(() => fromTorchSync(build(withEntry(bn([0, 8]))), spec), { code: 'ERR_RNNKIT_FORMAT', message: /overlap/ },
    "another module's tensor lying over ours");
  t.throws(() => fromTorchSync(build(withEntry(bn([data.length, data.length + 4]))), spec),
    { code: 'ERR_RNNKIT_FORMAT', message: /dtype I64 needs 8 bytes, its offsets give 4/ }, 'an int64 scalar in 4 bytes');
  t.throws(() => fromTorchSync(build(withEntry(bn([data.length, data.length + 16]))), spec),
    { code: 'ERR_RNNKIT_FORMAT', message: /outside the data section/ }, 'past the end of the data');
});
