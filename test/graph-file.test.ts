// Graph model files (lib/io/graph-file.ts): an encoder-decoder graph saved and loaded comes back as the same graph
// (same input and layer names, same edges) with the same weights: the same teacher-forced outputs and greedy
// decodes. A header that lies (unknown layer kind, cycle, dangling reference, sizes the tensors do not back,
// damaged JSON, random mutations) is refused with a coded error, never a crash or a huge allocation.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import * as rk from '../lib/index';
import { isRnnkitError } from '../lib/errors';
import { parseGraphJSON, type GraphJSON } from '../lib/io/graph-file';
import { rejectsCode, throwsCode } from './helpers/expect-error';

const { layers, input, model } = rk;
type Sym = rk.SymbolicTensor;

interface Shape { cell: 'gru' | 'lstm'; attention: 'none' | 'bahdanau' | 'luong'; numLayers: number }

function buildGraph(c: Shape, V = 7, E = 4, H = 6): rk.GraphSeq2Seq {
  const rnn = c.cell === 'gru' ? layers.gru : layers.lstm;
  const src = input({ dtype: 'int32', vocabSize: V, name: 'question' });
  const tgt = input({ dtype: 'int32', vocabSize: V, name: 'answer_in' });
  const [keys, ...state] = rnn({ units: H, numLayers: c.numLayers, returnSequences: true, returnState: true, name: 'reader' })
    .apply(layers.embedding({ outputDim: E, name: 'question_embedding' }).apply(src) as Sym) as Sym[];
  const decEmb = layers.embedding({ outputDim: E }).apply(tgt) as Sym; // an automatic name, kept by the file
  const outputs: Sym[] = [];
  let top: Sym;
  if (c.attention === 'bahdanau') {
    const [h, weights] = rnn({ units: H, numLayers: c.numLayers, returnSequences: true, attention: 'bahdanau', returnAttention: true, name: 'writer' })
      .apply(decEmb, { initialState: state, attendTo: keys }) as Sym[];
    top = h;
    outputs.push(weights);
  } else {
    top = rnn({ units: H, numLayers: c.numLayers, returnSequences: true, name: 'writer' }).apply(decEmb, { initialState: state }) as Sym;
    if (c.attention === 'luong') {
      const [context, weights] = layers.attention({ score: 'dot', name: 'look' }).apply([top, keys]) as Sym[];
      top = layers.dense({ units: H, activation: 'tanh', name: 'mix' }).apply(layers.concatenate({ name: 'join' }).apply([context, top]) as Sym) as Sym;
      outputs.push(weights);
    }
  }
  const logits = layers.dense({ units: V, name: 'logits' }).apply(top) as Sym;
  const m = model({ inputs: [src, tgt], outputs: [logits, ...outputs], seed: 4 });
  if (!(m instanceof rk.GraphSeq2Seq)) throw new Error('expected an encoder-decoder');
  return m;
}

const B = 3, S = 5, T = 4;
const x = {
  question: { data: Int32Array.from({ length: B * S }, (_, i) => 2 + ((i * 5) % 5)), shape: [B, S] },
  answer_in: { data: Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 0 : 2 + (i % 5))), shape: [B, T] },
};
const y = Int32Array.from({ length: B * T }, (_, i) => (i % T === T - 1 ? 1 : 2 + ((i + 1) % 5)));
const sourceLengths = Int32Array.of(5, 3, 1);

/** The header of a safetensors buffer, and the buffer rebuilt with a changed header (same tensor bytes). */
function header(buf: Uint8Array): Record<string, unknown> & { __metadata__: Record<string, string> } {
  const n = Number(Buffer.from(buf).readBigUInt64LE(0));
  return JSON.parse(Buffer.from(buf).subarray(8, 8 + n).toString('utf8'));
}
function withHeader(buf: Uint8Array, h: object): Buffer {
  const n = Number(Buffer.from(buf).readBigUInt64LE(0));
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.alloc(8 + json.length + (buf.length - 8 - n));
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  Buffer.from(buf).copy(out, 8 + json.length, 8 + n);
  return out;
}
function withGraph(buf: Uint8Array, edit: (g: GraphJSON) => unknown): Buffer {
  const h = header(buf);
  const g = JSON.parse(h.__metadata__.graph) as GraphJSON;
  const edited = edit(g) ?? g;
  return withHeader(buf, { ...h, __metadata__: { ...h.__metadata__, graph: typeof edited === 'string' ? edited : JSON.stringify(edited) } });
}

const SHAPES: Shape[] = [
  { cell: 'gru', attention: 'bahdanau', numLayers: 1 }, { cell: 'lstm', attention: 'luong', numLayers: 2 },
  { cell: 'lstm', attention: 'none', numLayers: 1 }, { cell: 'gru', attention: 'luong', numLayers: 1 },
  { cell: 'lstm', attention: 'bahdanau', numLayers: 2 },
];

for (const c of SHAPES) {
  t.test(`${c.cell}, attention ${c.attention}, ${c.numLayers} layer(s): save and load give back the same graph and weights`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-graph-file-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const m = buildGraph(c);
    m.compile({ optimizer: { type: 'adam', lr: 1e-2 } });
    for (let i = 0; i < 3; i++) await m.trainOnBatch(x, y, { sourceLengths });
    const file = path.join(dir, 'graph.safetensors');
    await m.save(file);

    const h = header(fs.readFileSync(file));
    t.equal(h.__metadata__.kind, 'graph', 'the header says it is a graph model');
    const g = JSON.parse(h.__metadata__.graph) as GraphJSON;
    t.same(g.inputs.map((i) => i.name), ['question', 'answer_in'], 'the inputs by name');
    t.ok(g.layers.some((l) => l.name === 'reader' && l.config.returnState === true), 'the encoder with returnState');
    const writer = g.layers.find((l) => l.name === 'writer')!;
    t.same(writer.initialState?.map((r) => r[0]), c.cell === 'lstm' ? ['reader', 'reader'] : ['reader'], 'the decoder starts from the encoder\'s states');
    if (c.attention === 'bahdanau') t.same(writer.attendTo, ['reader', 0], 'and attends to its outputs');
    t.same(Object.keys(h).filter((k) => k !== '__metadata__').sort(), m.seq2seq.paramNames().sort(), 'the tensors under the PyTorch names');

    const back = await rk.GraphSeq2Seq.load(file);
    t.teardown(() => back.dispose());
    t.equal(back.summary(), m.summary(), 'the same summary: same layer names, kinds and outputs');
    const differ = m.seq2seq.paramNames().filter((name) =>
      Buffer.compare(Buffer.from(back.seq2seq.getParam(name).data.buffer), Buffer.from(m.seq2seq.getParam(name).data.buffer)) !== 0);
    t.same(differ, [], `all ${m.seq2seq.paramNames().length} weights restored bit for bit`);
    const a = await m.predict(x, { sourceLengths });
    const b = await back.predict(x, { sourceLengths });
    t.same(Array.from(b.logits.data), Array.from(a.logits.data), 'the same logits, from inputs addressed by the same names');
    const src = { data: x.question.data, shape: x.question.shape };
    const da = await m.decode(src, { startToken: 0, endToken: 1, maxLength: 6, sourceLengths });
    const db = await back.decode(src, { startToken: 0, endToken: 1, maxLength: 6, sourceLengths });
    t.same(Array.from(db.tokens), Array.from(da.tokens), 'the same greedy decode');
    t.same(Buffer.from(back.toBuffer()), Buffer.from(m.toBuffer()), 'saving the loaded model writes the same bytes');
    await rejectsCode(t, () => back.predict({ source: x.question, target_in: x.answer_in } as never), 'ERR_RNNKIT_ARGUMENT', /'question' and 'answer_in'/, 'the old names are the only names');
    m.dispose();
  });
}

t.test('a hostile or damaged header is a coded error, never a crash or a huge allocation', async (t) => {
  const m = buildGraph({ cell: 'lstm', attention: 'luong', numLayers: 1 });
  const good = m.toBuffer();
  m.dispose();
  const refuse = (buf: Uint8Array, code: string, re: RegExp, what: string): void => throwsCode(t, () => rk.GraphSeq2Seq.fromBuffer(buf), code, re, what);
  const layer = (g: GraphJSON, name: string) => g.layers.find((l) => l.name === name)!;

  refuse(withGraph(good, (g) => { layer(g, 'join').config.kind = 'transformer'; }), 'ERR_RNNKIT_FORMAT', /unknown kind "transformer"/, 'an unknown layer kind');
  refuse(withGraph(good, (g) => { layer(g, 'reader').config.cell = 'mamba'; }), 'ERR_RNNKIT_FORMAT', /unknown cell "mamba"/, 'an unknown cell');
  refuse(withGraph(good, (g) => { layer(g, 'reader').inputs = [['mix', 0]]; }), 'ERR_RNNKIT_FORMAT', /cycle through/, 'a cycle');
  refuse(withGraph(good, (g) => { layer(g, 'mix').inputs = [['mix', 0]]; }), 'ERR_RNNKIT_FORMAT', /cycle through 'mix'/, 'a layer reading itself');
  refuse(withGraph(good, (g) => { layer(g, 'logits').inputs = [['nowhere', 0]]; }), 'ERR_RNNKIT_FORMAT', /'nowhere', which is no input or layer/, 'a dangling reference');
  refuse(withGraph(good, (g) => { g.outputs = [['logits', 7]]; }), 'ERR_RNNKIT_FORMAT', /output 7 of 'logits'/, 'an output index past the layer\'s outputs');
  refuse(withGraph(good, (g) => { layer(g, 'reader').config.units = 1e9; layer(g, 'writer').config.units = 1e9; }), 'ERR_RNNKIT_FORMAT', /describes about \d+ parameters, the file holds \d+/, 'huge units');
  refuse(withGraph(good, (g) => { g.inputs[0].vocabSize = 2 ** 40; }), 'ERR_RNNKIT_FORMAT', /parameters, the file holds/, 'a huge vocabulary');
  refuse(withGraph(good, (g) => { layer(g, 'question_embedding').config.outputDim = 'big'; }), 'ERR_RNNKIT_FORMAT', /question_embedding/, 'a size that is not a number');
  refuse(withGraph(good, (g) => { g.layers.push({ ...layer(g, 'mix') }); }), 'ERR_RNNKIT_FORMAT', /'mix' is used twice/, 'a duplicate name');
  refuse(withGraph(good, (g) => { g.version = 2; }), 'ERR_RNNKIT_FORMAT', /version 2/, 'a later version');
  refuse(withGraph(good, () => '{"version": 1, "inputs": ['), 'ERR_RNNKIT_FORMAT', /not JSON/, 'cut JSON');
  refuse(withGraph(good, () => '[]'), 'ERR_RNNKIT_FORMAT', /must be an object/, 'not an object');
  refuse(withGraph(good, (g) => { g.inputs = []; }), 'ERR_RNNKIT_FORMAT', /inputs must be a list of 1/, 'no input');
  refuse(withGraph(good, (g) => { g.layers = Array.from({ length: 5000 }, (_, i) => ({ name: `d${i}`, config: { kind: 'dropout', rate: 0.1 }, inputs: [[i ? `d${i - 1}` : 'question', 0]] })); }), 'ERR_RNNKIT_FORMAT', /at most 4096 layers/, 'too many layers');
  refuse(withGraph(good, (g) => { layer(g, 'mix').config.activation = 'relu'; }), 'ERR_RNNKIT_FORMAT', /does not compile/, 'a graph of another shape');
  refuse(withGraph(good, (g) => { layer(g, 'mix').config.unitz = 3; }), 'ERR_RNNKIT_FORMAT', /unitz.*units/, 'an unknown option name, with the suggestion');
  // A deep chain (no recursion that a long file could overflow): refused as a chain, after being read whole.
  refuse(withGraph(good, (g) => {
    g.layers = Array.from({ length: 4000 }, (_, i) => ({ name: `d${i}`, config: i ? { kind: 'dropout', rate: 0.1 } : { kind: 'embedding', outputDim: 2 }, inputs: [[i ? `d${i - 1}` : 'question', 0]] }));
    g.inputs = [g.inputs[0]];
    g.outputs = [['d3999', 0]];
  }), 'ERR_RNNKIT_FORMAT', /chain of layers/, 'a 4000-layer chain');
  // The tensors against the graph, by the native checks: a missing one, a wrong shape.
  const h = header(good);
  const tensorsOnly = (drop: string) => {
    const { [drop]: _gone, ...rest } = h;
    return withHeader(good, rest);
  };
  // The last tensor of the data section (a middle one would leave a hole, which the native reader refuses first).
  const last = Object.entries(h).filter(([k]) => k !== '__metadata__')
    .sort(([, p], [, q]) => (q as { data_offsets: number[] }).data_offsets[1] - (p as { data_offsets: number[] }).data_offsets[1])[0][0];
  const cut = tensorsOnly(last);
  refuse(cut.subarray(0, cut.length - 4 * (h[last] as { shape: number[] }).shape.reduce((p, q) => p * q, 1)), 'ERR_RNNKIT_FORMAT', new RegExp(`no value for ${last}`), 'a missing tensor');
  refuse(withGraph(good, (g) => { g.inputs[0].vocabSize = 8; }), 'ERR_RNNKIT_SHAPE', /encoder.embedding.weight/, 'a vocabulary the tensors do not have');
  // Not a graph file at all.
  const s2s = rk.seq2seq({ srcVocab: 5, tgtVocab: 5, embedSize: 3, hiddenSize: 4, seed: 1 });
  refuse(s2s.toBuffer(), 'ERR_RNNKIT_FORMAT', /not a graph model file.*Seq2Seq\.load/, 'an encoder-decoder file');
  s2s.dispose();
  refuse(Buffer.from('not a file at all'), 'ERR_RNNKIT_FORMAT', /./, 'garbage');
  throwsCode(t, () => rk.Seq2Seq.fromBuffer(good), 'ERR_RNNKIT_FORMAT', /graph model.*GraphSeq2Seq\.load/, 'Seq2Seq.load on a graph file says which load to use');
  await rejectsCode(t, () => rk.load(good), 'ERR_RNNKIT_FORMAT', /graph model.*GraphSeq2Seq\.load/, 'rk.load on a graph file says which load to use');
  await rejectsCode(t, () => rk.GraphSeq2Seq.load(path.join(os.tmpdir(), 'rnnkit-no-such-graph.safetensors')), 'ERR_RNNKIT_FILE', /does not exist/, 'a missing file');
  throwsCode(t, () => rk.GraphSeq2Seq.fromBuffer(good, { devise: 'cpu' } as never), 'ERR_RNNKIT_ARGUMENT', /devise.*device/, 'an unknown load option');
});

t.test('random mutations of the graph description: a model or a coded error, every time', async (t) => {
  const m = buildGraph({ cell: 'gru', attention: 'bahdanau', numLayers: 1 });
  const good = m.toBuffer();
  m.dispose();
  const base = JSON.parse(header(good).__metadata__.graph) as GraphJSON;
  const names = [...base.inputs.map((i) => i.name), ...base.layers.map((l) => l.name), 'ghost'];
  const values = fc.oneof(fc.constantFrom<unknown>(0, -1, 1, 2, 1e9, 2 ** 53, NaN, null, true, 'x', [], {}, 'lstm', 'gru', 'dense', 'recurrent'),
    fc.tuple(fc.constantFrom(...names), fc.integer({ min: -1, max: 5 })));
  let loaded = 0;
  let refused = 0;
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(), fc.nat(), values), { minLength: 1, maxLength: 4 }), (edits) => {
    const g = JSON.parse(JSON.stringify(base)) as GraphJSON;
    for (const [i, k, v] of edits) {
      const l = g.layers[i % g.layers.length] as unknown as Record<string, unknown>;
      const target = k % 3 === 0 ? l : k % 3 === 1 ? (l.config as Record<string, unknown>) : (g.inputs[i % g.inputs.length] as unknown as Record<string, unknown>);
      const keys = Object.keys(target);
      target[keys[k % keys.length]] = v;
    }
    try {
      rk.GraphSeq2Seq.fromBuffer(withGraph(good, () => g)).dispose();
      loaded++;
    } catch (e) {
      if (!isRnnkitError(e)) throw e;
      refused++;
    }
  }), { numRuns: 300, seed: 7 });
  t.ok(refused > 0, `${refused} mutated files refused with a coded error, ${loaded} loaded`);
  t.ok(parseGraphJSON(header(good).__metadata__.graph).layers.length === base.layers.length, 'the untouched description parses');
});

// ---- general graphs (GraphModel over the native graph executor) ----

function rows(n: number, per: number, seed: number, below?: number): Float32Array | Int32Array {
  let s = seed;
  const next = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  return below === undefined ? Float32Array.from({ length: n * per }, () => next() * 2 - 1) : Int32Array.from({ length: n * per }, () => Math.floor(next() * below));
}

/** A vector input projected into a GRU's initial state, repeatVector into a simple RNN, a vector concatenation, two outputs. */
function oneToMany(): rk.GraphModel {
  const v = input({ dtype: 'float32', features: 3, sequence: false, name: 'v' });
  const x = input({ dtype: 'float32', features: 2, name: 'x' });
  const start = layers.dense({ units: 5, activation: 'tanh' }).apply(v) as Sym; // an automatic name, kept by the file
  const steps = layers.gru({ units: 5, returnSequences: true, name: 'decoder' }).apply(x, { initialState: start }) as Sym;
  const hum = layers.simpleRNN({ units: 3, name: 'hum' }).apply(layers.repeatVector({ n: 4, name: 'echo' }).apply(v) as Sym) as Sym;
  const pooled = layers.concatenate({ name: 'pool' }).apply([hum, start]) as Sym;
  return model({
    inputs: [v, x],
    outputs: [layers.dense({ units: 5, name: 'a' }).apply(steps) as Sym, layers.dense({ units: 2, activation: 'sigmoid', name: 'b' }).apply(pooled) as Sym],
    seed: 3,
  }) as rk.GraphModel;
}

/** Token inputs, an LSTM's [h, c] handed on, Luong attention in an order the native encoder-decoder does not take, fan-out. */
function attentionGraph(): rk.GraphModel {
  const question = input({ dtype: 'int32', vocabSize: 6, name: 'src' });
  const prefix = input({ dtype: 'int32', vocabSize: 5, name: 'tgt' });
  const embedded = layers.embedding({ outputDim: 3, name: 'src_emb' }).apply(question) as Sym;
  const [memory, lastH, lastC] = layers.lstm({ units: 4, returnSequences: true, returnState: true, name: 'reader' }).apply(embedded) as Sym[];
  const written = layers.lstm({ units: 4, returnSequences: true, name: 'writer' })
    .apply(layers.embedding({ outputDim: 2, name: 'tgt_emb' }).apply(prefix) as Sym, { initialState: [lastH, lastC] }) as Sym;
  const [glimpse, focus] = layers.attention({ name: 'look' }).apply([written, memory]) as Sym[];
  const mixed = layers.dense({ units: 3, activation: 'relu', name: 'mix' }).apply(layers.concatenate({ name: 'both' }).apply([written, glimpse]) as Sym) as Sym;
  const logits = layers.dense({ units: 5, name: 'out' }).apply(mixed) as Sym;
  const side = layers.dense({ units: 2, name: 'aux' }).apply(lastC) as Sym;
  return model({ inputs: [question, prefix], outputs: [logits, side, focus], seed: 5 }) as rk.GraphModel;
}

const GENERAL: { name: string; build: () => rk.GraphModel; x: rk.GraphData; y: rk.GraphTargets; loss: rk.GraphCompileOptions['loss']; lengths?: rk.GraphLengthsOption }[] = [
  {
    name: 'one-to-many from a vector (dense into an initial state, repeatVector, concatenate)', build: oneToMany,
    x: { v: { data: rows(3, 3, 1) as Float32Array, shape: [3, 3] }, x: { data: rows(3, 8, 2) as Float32Array, shape: [3, 4, 2] } },
    y: { a: { data: rows(3, 4, 3, 5) as Int32Array, shape: [3, 4] }, b: { data: rows(3, 2, 4) as Float32Array, shape: [3, 2] } },
    loss: ['softmaxCrossEntropy', 'mse'], lengths: { x: [4, 2, 3] },
  },
  {
    name: 'Luong attention, an LSTM state handed on, three outputs', build: attentionGraph,
    x: [{ data: rows(3, 5, 5, 6) as Int32Array, shape: [3, 5] }, { data: rows(3, 4, 6, 5) as Int32Array, shape: [3, 4] }],
    y: [{ data: rows(3, 4, 7, 5) as Int32Array, shape: [3, 4] }, { data: rows(3, 2, 8) as Float32Array, shape: [3, 2] }, null],
    loss: { out: 'softmaxCrossEntropy', aux: 'mse' }, lengths: { src: [5, 2, 3] },
  },
];

for (const g of GENERAL) {
  t.test(`GraphModel, ${g.name}: save and load give back the same graph and weights`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-graph-model-file-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const m = g.build();
    t.ok(m instanceof rk.GraphModel, 'a general graph model');
    m.compile({ optimizer: { type: 'adam', lr: 0.01 }, loss: g.loss });
    for (let i = 0; i < 3; i++) await m.trainOnBatch(g.x, g.y, { lengths: g.lengths });
    const file = path.join(dir, 'graph.safetensors');
    await m.save(file);
    const h = header(fs.readFileSync(file));
    t.equal(h.__metadata__.kind, 'graph', 'a graph file');
    t.same(Object.keys(h).filter((k) => k !== '__metadata__').sort(), m.paramNames().sort(), 'the tensors under the model\'s PyTorch-style names');

    const back = await rk.GraphModel.load(file);
    t.teardown(() => back.dispose());
    t.same(back.inputNames, m.inputNames, 'the same input names');
    t.same(back.outputNames, m.outputNames, 'the same output names');
    t.equal(back.summary(), m.summary(), 'the same layers, names, edges and parameter counts');
    const differ = m.paramNames().filter((n) => Buffer.compare(Buffer.from(back.getWeights()[n].data.buffer), Buffer.from(m.getWeights()[n].data.buffer)) !== 0);
    t.same(differ, [], `all ${m.paramNames().length} weights restored bit for bit`);
    const a = (await m.predict(g.x, { lengths: g.lengths })) as rk.Tensor[];
    const b = (await back.predict(g.x, { lengths: g.lengths })) as rk.Tensor[];
    t.same(b.map((o) => Array.from(o.data)), a.map((o) => Array.from(o.data)), 'the same outputs');
    t.same(Buffer.from(back.toBuffer()), Buffer.from(m.toBuffer()), 'saving the loaded model writes the same bytes');
    back.compile({ optimizer: { type: 'adam', lr: 0.01 }, loss: g.loss });
    t.ok(Number.isFinite((await back.trainOnBatch(g.x, g.y, { lengths: g.lengths })).loss), 'the loaded model trains');
    m.dispose();
  });
}

t.test('GraphModel files: hostile headers and the wrong loader are coded errors', async (t) => {
  const m = attentionGraph();
  const good = m.toBuffer();
  m.dispose();
  const refuse = (buf: Uint8Array, code: string, re: RegExp, what: string): void => throwsCode(t, () => rk.GraphModel.fromBuffer(buf), code, re, what);
  const layer = (g: GraphJSON, name: string) => g.layers.find((l) => l.name === name)!;
  refuse(withGraph(good, (g) => { layer(g, 'both').config.kind = 'transformer'; }), 'ERR_RNNKIT_FORMAT', /unknown kind "transformer"/, 'an unknown layer kind');
  refuse(withGraph(good, (g) => { layer(g, 'reader').inputs = [['mix', 0]]; }), 'ERR_RNNKIT_FORMAT', /cycle through/, 'a cycle');
  refuse(withGraph(good, (g) => { layer(g, 'writer').initialState = [['nowhere', 1], ['reader', 2]]; }), 'ERR_RNNKIT_FORMAT', /'nowhere', which is no input or layer/, 'a dangling initial state');
  refuse(withGraph(good, (g) => { layer(g, 'mix').config.units = 2 ** 30; }), 'ERR_RNNKIT_FORMAT', /parameters, the file holds/, 'huge units');
  refuse(withGraph(good, (g) => { layer(g, 'aux').config.units = 3; }), 'ERR_RNNKIT_FORMAT', /'aux\.weight' has shape \[2, 4\], the graph's is \[3, 4\]/, 'a size the tensors do not have');
  refuse(withGraph(good, (g) => { layer(g, 'look').inputs = [['writer', 0]]; }), 'ERR_RNNKIT_FORMAT', /layer 'look' cannot be rebuilt: .*takes \[query, keys\]/, 'an attention with one input');
  throwsCode(t, () => rk.GraphSeq2Seq.fromBuffer(good), 'ERR_RNNKIT_FORMAT', /general graph model.*GraphModel\.load/, 'GraphSeq2Seq.load on a general graph');
  await rejectsCode(t, () => rk.load(good), 'ERR_RNNKIT_FORMAT', /graph model.*GraphModel\.load/, 'rk.load on a general graph');
  const s2s = buildGraph({ cell: 'gru', attention: 'bahdanau', numLayers: 1 });
  throwsCode(t, () => rk.GraphModel.fromBuffer(s2s.toBuffer()), 'ERR_RNNKIT_FORMAT', /encoder-decoder graph.*GraphSeq2Seq\.load/, 'GraphModel.load on an encoder-decoder');
  s2s.dispose();
});
