// The functional graph: a chain compiles to the same native pipeline as sequential(); the encoder-decoder graphs
// (Bahdanau inside the recurrence, Luong after it, the plain state hand-off) compile to the native encoder-decoder
// and reproduce PyTorch on the golden cases; graph errors are coded and name the layer.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as rk from '../lib';

const { layers, input, model } = rk;

t.test('a chain compiles to the same pipeline as sequential()', async (t) => {
  const x = input({ dtype: 'int32', vocabSize: 11, name: 'tokens' });
  const e = layers.embedding({ outputDim: 4 }).apply(x) as rk.SymbolicTensor;
  const h = layers.lstm({ units: 6, returnSequences: true }).apply(e) as rk.SymbolicTensor;
  const y = layers.dense({ units: 11 }).apply(h) as rk.SymbolicTensor;
  const m = model({ inputs: x, outputs: y, seed: 3 });
  t.ok(m instanceof rk.Sequential, 'a Sequential');
  const s = rk.sequential({ vocabSize: 11, seed: 3, layers: [rk.layers.embedding({ outputDim: 4 }), rk.layers.lstm({ units: 6, returnSequences: true }), rk.layers.dense({ units: 11 })] });
  const tokens = { data: Int32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
  const a = await (m as rk.Sequential).predict(tokens);
  const b = await s.predict(tokens);
  t.same(Array.from(a.data), Array.from(b.data), 'same outputs for the same seed');
});

interface Case {
  kind: string; cell: 'gru' | 'lstm'; attention: 'none' | 'bahdanau' | 'luong'; src_vocab: number; tgt_vocab: number;
  embed_size: number; hidden_size: number; num_layers: number; batch: number; src_len: number; tgt_len: number;
  src: number[][]; src_lengths: number[] | null; tgt_in: number[][]; targets: number[][];
  params: Record<string, { shape: number[]; data: number[] }>; logits: { data: number[] }; loss: number;
}

function buildGraph(c: Case): rk.GraphSeq2Seq {
  const rnn = c.cell === 'gru' ? layers.gru : layers.lstm;
  const src = input({ dtype: 'int32', vocabSize: c.src_vocab, name: 'source' });
  const tgt = input({ dtype: 'int32', vocabSize: c.tgt_vocab, name: 'target_in' });
  const [keys, ...state] = rnn({ units: c.hidden_size, numLayers: c.num_layers, returnSequences: true, returnState: true, name: 'encoder' })
    .apply(layers.embedding({ outputDim: c.embed_size }).apply(src) as rk.SymbolicTensor) as rk.SymbolicTensor[];
  const decEmb = layers.embedding({ outputDim: c.embed_size }).apply(tgt) as rk.SymbolicTensor;
  let top: rk.SymbolicTensor;
  const outputs: rk.SymbolicTensor[] = [];
  if (c.attention === 'bahdanau') {
    const [h, weights] = rnn({ units: c.hidden_size, numLayers: c.num_layers, returnSequences: true, attention: 'bahdanau', returnAttention: true, name: 'decoder' })
      .apply(decEmb, { initialState: state, attendTo: keys }) as rk.SymbolicTensor[];
    top = h;
    outputs.push(weights);
  } else {
    const h = rnn({ units: c.hidden_size, numLayers: c.num_layers, returnSequences: true, name: 'decoder' })
      .apply(decEmb, { initialState: state }) as rk.SymbolicTensor;
    top = h;
    if (c.attention === 'luong') {
      const [context, weights] = layers.attention({ score: 'dot' }).apply([h, keys]) as rk.SymbolicTensor[];
      top = layers.dense({ units: c.hidden_size, activation: 'tanh' }).apply(layers.concatenate().apply([context, h]) as rk.SymbolicTensor) as rk.SymbolicTensor;
      outputs.push(weights);
    }
  }
  const logits = layers.dense({ units: c.tgt_vocab }).apply(top) as rk.SymbolicTensor;
  const m = model({ inputs: [src, tgt], outputs: [logits, ...outputs], seed: 1 });
  if (!(m instanceof rk.GraphSeq2Seq)) throw new Error('expected an encoder-decoder');
  return m;
}

t.test('encoder-decoder graphs compile to the native encoder-decoder and reproduce PyTorch', async (t) => {
  const dir = path.join(__dirname, 'fixtures', 'golden');
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('s2s_') && f.endsWith('.json'));
  let n = 0;
  for (const f of files) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Case;
    if (c.kind !== 'seq2seq') continue;
    n++;
    const m = buildGraph(c);
    t.equal(m.seq2seq.spec.attention, c.attention, `${f}: attention`);
    t.equal(m.seq2seq.spec.numLayers, c.num_layers, `${f}: depth`);
    for (const [name, v] of Object.entries(c.params)) m.seq2seq.setParam(name, Float32Array.from(v.data));
    const B = c.batch;
    const x = {
      source: { data: Int32Array.from(c.src.flat()), shape: [B, c.src_len] },
      target_in: { data: Int32Array.from(c.tgt_in.flat()), shape: [B, c.tgt_len] },
    };
    const lengths = c.src_lengths ? { sourceLengths: c.src_lengths } : {};
    const out = await m.predict(x, lengths);
    let worst = 0;
    c.logits.data.forEach((want, i) => { worst = Math.max(worst, Math.abs(out.logits.data[i] - want) / (1e-5 + 1e-4 * Math.abs(want))); });
    t.ok(worst <= 1, `${f}: logits match (worst ${worst.toFixed(3)})`);
    const ev = await m.evaluate(x, c.targets.flat(), lengths);
    t.ok(Math.abs(ev.loss - c.loss) <= 1e-5 + 1e-4 * c.loss, `${f}: loss ${ev.loss} vs ${c.loss}`);
    t.match(m.summary(), /encoder/);
    m.compile({ optimizer: { type: 'adam', lr: 0.02 }, clipNorm: 1 });
    if (n === 1) {
      // Misspelt option names of the graph model's methods: coded errors suggesting the name meant, nothing run.
      const bad = { source_lengths: [1] } as unknown as { sourceLengths: number[] };
      await t.rejects(m.predict(x, bad), { code: 'ERR_RNNKIT_ARGUMENT', message: /unknown option 'source_lengths' in predict options: did you mean 'sourceLengths'/ });
      await t.rejects(m.trainOnBatch(x, c.targets.flat(), bad), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'sourceLengths'/ });
      await t.rejects(m.fit(x, c.targets.flat(), { epoch: 2 } as unknown as { epochs: number }), { code: 'ERR_RNNKIT_ARGUMENT', message: /in fit options: did you mean 'epochs'/ });
      t.throws(() => m.compile({ optimizer: { type: 'adam', lr: 0.02 }, clip_norm: 1 } as unknown as { optimizer: { type: 'adam'; lr: number } }), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'clipNorm'/ });
    }
    const h = await m.fit(x, c.targets.flat(), { epochs: 15, batchSize: B, ...lengths });
    t.ok(h.loss[14] < h.loss[0], `${f}: fit lowers the loss ${h.loss[0].toFixed(3)} -> ${h.loss[14].toFixed(3)}`);
    m.dispose();
  }
  t.ok(n >= 4);
});

t.test('graph errors are coded and name the layer', async (t) => {
  const src = input({ dtype: 'int32', vocabSize: 5, name: 'source' });
  const tgt = input({ dtype: 'int32', vocabSize: 6, name: 'target_in' });
  const [keys, state] = layers.gru({ units: 4, returnSequences: true, returnState: true, name: 'enc' })
    .apply(layers.embedding({ outputDim: 3 }).apply(src) as rk.SymbolicTensor) as rk.SymbolicTensor[];
  const decEmb = layers.embedding({ outputDim: 3 }).apply(tgt) as rk.SymbolicTensor;
  t.throws(() => layers.gru({ units: 5, name: 'dec' }).apply(decEmb, { initialState: state }),
    { code: 'ERR_RNNKIT_SHAPE', message: /'dec' has 4 units \(from 'enc'\), the layer has 5/ });
  t.throws(() => layers.lstm({ units: 4, name: 'dec2' }).apply(decEmb, { initialState: state }),
    { code: 'ERR_RNNKIT_SHAPE', message: /dec2/ });
  t.throws(() => layers.gru({ units: 4, attention: 'bahdanau', name: 'dec3' }).apply(decEmb, { initialState: state }),
    { code: 'ERR_RNNKIT_ARGUMENT', message: /dec3.*attendTo/ });
  t.throws(() => layers.embedding({ outputDim: 3, name: 'emb' }).apply(decEmb), { code: 'ERR_RNNKIT_ARGUMENT', message: /emb/ });
  const h = layers.gru({ units: 4, returnSequences: true, name: 'dec' }).apply(decEmb, { initialState: state }) as rk.SymbolicTensor;
  const logits = layers.dense({ units: 6 }).apply(h) as rk.SymbolicTensor;
  const other = input({ dtype: 'int32', vocabSize: 5, name: 'unused' });
  t.throws(() => model({ inputs: [src, tgt, other], outputs: logits }), { code: 'ERR_RNNKIT_ARGUMENT', message: /input 'unused' is not connected/ });
  t.throws(() => model({ inputs: [tgt], outputs: logits }), { code: 'ERR_RNNKIT_ARGUMENT', message: /input 'source'/ });
  const [context] = layers.attention().apply([h, keys]) as rk.SymbolicTensor[];
  const wrongOrder = layers.concatenate().apply([h, context]) as rk.SymbolicTensor;
  const bad = layers.dense({ units: 6 }).apply(layers.dense({ units: 4, activation: 'tanh' }).apply(wrongOrder) as rk.SymbolicTensor) as rk.SymbolicTensor;
  // Not the native encoder-decoder's Luong shape (context second): the general graph executor runs it instead.
  const general = model({ inputs: [src, tgt], outputs: bad });
  t.ok(general instanceof rk.GraphModel, 'a GraphModel');
  (general as rk.GraphModel).dispose();
  const ok = model({ inputs: [src, tgt], outputs: logits });
  t.ok(ok instanceof rk.GraphSeq2Seq);
  (ok as rk.GraphSeq2Seq).dispose();
});
