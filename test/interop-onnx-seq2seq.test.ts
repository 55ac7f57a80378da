// The encoder-decoder's ONNX export (Seq2Seq.toOnnx: an encoder graph and a one-step decoder graph), checked by
// running both in ONNX Runtime (onnxruntime-node, CPU) as a server would: the encoder once, then the step graph in a
// greedy loop that feeds each step's state outputs and argmax back in. The tokens must be exactly rnnkit's greedy
// decode; the logits and attention weights of every step must match rnnkit's stepping decoder (fed the same
// tokens) within 1e-4. Covered: GRU and LSTM, attention none / bahdanau / luong, 1 to 3 layers, padded sources with
// lengths, batch 1, and the trained model of examples/dates-to-iso.js.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import * as rk from '../lib/index';
import { throwsCode, rejectsCode } from './helpers/expect-error';

const TOLERANCE = 1e-4;

interface Decoded {
  /** Per row, the tokens up to and including the end token (or maxLength tokens). */
  rows: number[][];
  /** Per step: logits [B, V] and attention [B, S] (null without attention), for every row. */
  steps: { logits: Float32Array; attention: Float32Array | null; fed: Int32Array }[];
}

/** A greedy decode in ONNX Runtime with the two exported graphs. */
async function ortGreedy(graphs: rk.Seq2SeqOnnx, source: rk.TokenIds, lengths: Int32Array, start: number, end: number | undefined, maxLength: number): Promise<Decoded> {
  const encoder = await ort.InferenceSession.create(graphs.encoder);
  const step = await ort.InferenceSession.create(graphs.decoderStep);
  try {
    const [B] = source.shape;
    const enc = await encoder.run({
      source: new ort.Tensor('int32', Int32Array.from(source.data), source.shape),
      source_lengths: new ort.Tensor('int32', lengths, [B]),
    });
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of step.inputNames) if (enc[name]) feeds[name] = enc[name];
    let token = new Int32Array(B).fill(start);
    const rows: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    const steps: Decoded['steps'] = [];
    for (let s = 0; s < maxLength && done.includes(false); s++) {
      feeds.token = new ort.Tensor('int32', token, [B]);
      const out = await step.run(feeds);
      const logits = out.logits.data as Float32Array;
      const V = out.logits.dims[1];
      steps.push({ logits, attention: out.attention ? (out.attention.data as Float32Array) : null, fed: token });
      const next = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[b * V + v] > logits[b * V + best]) best = v;
        next[b] = best;
        if (!done[b]) {
          rows[b].push(best);
          if (best === end) done[b] = true;
        }
      }
      feeds.state_h = out.state_h_out;
      if (out.state_c_out) feeds.state_c = out.state_c_out;
      token = next;
    }
    return { rows, steps };
  } finally {
    await encoder.release();
    await step.release();
  }
}

/** ORT's greedy decode against rnnkit's: tokens exactly, every step's logits and attention within 1e-4. */
async function compare(t: Test, model: rk.Seq2Seq, source: rk.TokenIds, lengths: Int32Array, options: { start: number; end?: number; maxLength: number }): Promise<void> {
  const graphs = model.toOnnx();
  const ortResult = await ortGreedy(graphs, source, lengths, options.start, options.end, options.maxLength);
  const ours = model.decodeSync(source, { startToken: options.start, endToken: options.end, maxLength: options.maxLength, sourceLengths: lengths });
  const [B, M] = ours.shape;
  const oursRows = Array.from({ length: B }, (_, b) => Array.from(ours.tokens.subarray(b * M, b * M + ours.lengths[b])));
  t.same(ortResult.rows, oursRows, 'ONNX Runtime greedy tokens == rnnkit decode tokens');
  // The same tokens through rnnkit's stepping decoder: logits and attention of every step.
  const dec = model.beginDecode(source, { sourceLengths: lengths });
  try {
    let worstLogits = 0;
    let worstAttention = 0;
    let ok = true;
    for (const st of ortResult.steps) {
      const r = dec.step(st.fed);
      const logitsGap = maxGap(st.logits, r.logits.data);
      worstLogits = Math.max(worstLogits, logitsGap);
      if (st.attention && r.attention) worstAttention = Math.max(worstAttention, maxGap(st.attention, r.attention.data));
      else if (!!st.attention !== !!r.attention) ok = false;
    }
    t.ok(ok, 'attention output present exactly when the model has attention');
    t.ok(worstLogits <= TOLERANCE, `logits of ${ortResult.steps.length} steps within ${TOLERANCE} (worst ${worstLogits.toExponential(2)})`);
    t.ok(worstAttention <= TOLERANCE, `attention weights within ${TOLERANCE} (worst ${worstAttention.toExponential(2)})`);
  } finally {
    dec.dispose();
  }
}

function maxGap(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}

/** Source ids [B, S] padded past each row's length (pad id 0, which the mask must hide). */
function sources(B: number, S: number, V: number, lengths: number[], seed: number): rk.TokenIds {
  const data = new Int32Array(B * S);
  for (let b = 0; b < B; b++) for (let s = 0; s < lengths[b]; s++) data[b * S + s] = 1 + ((seed * 7 + b * 13 + s * s * 3 + s) % (V - 1));
  return { data, shape: [B, S] };
}

/** A few Adam steps of copying the source reversed, so that the decode follows the input rather than a constant. */
function trainALittle(model: rk.Seq2Seq, V: number, steps: number): void {
  model.compile({ optimizer: { type: 'adam', lr: 1e-2 }, clipNorm: 1 });
  const B = 16, S = 6, T = S + 1;
  const rng = new rk.SeededRandom(5);
  for (let k = 0; k < steps; k++) {
    const src = new Int32Array(B * S);
    const lengths = new Int32Array(B);
    const din = new Int32Array(B * T);
    const tgt = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B; b++) {
      const n = 2 + rng.int(S - 1);
      lengths[b] = n;
      for (let s = 0; s < n; s++) src[b * S + s] = 2 + rng.int(V - 2);
      din[b * T] = 0;
      for (let s = 0; s < n; s++) {
        tgt[b * T + s] = src[b * S + n - 1 - s];
        din[b * T + s + 1] = tgt[b * T + s];
      }
      tgt[b * T + n] = 1;
    }
    model.trainOnBatchSync({ source: { data: src, shape: [B, S] }, sourceLengths: lengths, decoderInput: { data: din, shape: [B, T] }, targets: tgt });
  }
}

const CONFIGS: { cell: rk.CellType; attention: rk.AttentionKind; numLayers: number }[] = [];
for (const cell of ['gru', 'lstm'] as const)
  for (const attention of ['none', 'bahdanau', 'luong'] as const)
    for (const numLayers of [1, 2]) CONFIGS.push({ cell, attention, numLayers });
CONFIGS.push({ cell: 'gru', attention: 'bahdanau', numLayers: 3 }, { cell: 'lstm', attention: 'luong', numLayers: 3 },
  { cell: 'rnn_tanh', attention: 'luong', numLayers: 1 }, { cell: 'rnn_relu', attention: 'bahdanau', numLayers: 2 });

for (const c of CONFIGS) {
  t.test(`${c.cell}, attention ${c.attention}, ${c.numLayers} layer(s): ONNX Runtime reproduces the greedy decode`, async (t) => {
    const V = 9;
    const model = rk.seq2seq({ ...c, srcVocab: V, tgtVocab: V, embedSize: 6, hiddenSize: 10, seed: 11 + c.numLayers });
    try {
      trainALittle(model, V, 30);
      const lengths = Int32Array.of(5, 2, 7, 7, 1);
      await compare(t, model, sources(5, 7, V, Array.from(lengths), 3), lengths, { start: 0, end: 1, maxLength: 12 });
      // Batch 1, no end token: runs to maxLength.
      const one = Int32Array.of(4);
      await compare(t, model, sources(1, 4, V, [4], 9), one, { start: 0, maxLength: 6 });
    } finally {
      model.dispose();
    }
  });
}

t.test('the graphs declare their inputs and outputs; exportOnnx writes both files', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-s2s-onnx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [cell, attention, inputs, outputs] of [
    ['lstm', 'bahdanau', ['token', 'state_h', 'state_c', 'keys', 'keys_proj', 'source_mask'], ['logits', 'state_h_out', 'state_c_out', 'attention']],
    ['gru', 'luong', ['token', 'state_h', 'keys', 'source_mask'], ['logits', 'state_h_out', 'attention']],
    ['gru', 'none', ['token', 'state_h'], ['logits', 'state_h_out']],
  ] as const) {
    const model = rk.seq2seq({ cell, attention, srcVocab: 5, tgtVocab: 4, embedSize: 3, hiddenSize: 4, seed: 1 });
    const files = await model.exportOnnx(path.join(dir, `${cell}-${attention}`));
    const enc = await ort.InferenceSession.create(files.encoder);
    const step = await ort.InferenceSession.create(files.decoderStep);
    t.same(enc.inputNames, ['source', 'source_lengths'], `${cell}/${attention}: encoder inputs`);
    t.same(new Set(enc.outputNames), new Set(['keys', ...(attention === 'bahdanau' ? ['keys_proj'] : []), 'source_mask', 'state_h', ...(cell === 'lstm' ? ['state_c'] : [])]), `${cell}/${attention}: encoder outputs`);
    t.same(step.inputNames, inputs, `${cell}/${attention}: step inputs`);
    t.same(new Set(step.outputNames), new Set(outputs), `${cell}/${attention}: step outputs`);
    await enc.release();
    await step.release();
    model.dispose();
  }
  const model = rk.seq2seq({ srcVocab: 5, tgtVocab: 4, embedSize: 3, hiddenSize: 4, seed: 1 });
  throwsCode(t, () => model.toOnnx(null as never), 'ERR_RNNKIT_TYPE', /options object/, 'toOnnx(null)');
  throwsCode(t, () => model.toOnnx({ metadata: { vocabulary: 5 } } as never), 'ERR_RNNKIT_TYPE', /metadata/, 'a metadata value that is not a string');
  await rejectsCode(t, () => model.exportOnnx('' as never), 'ERR_RNNKIT_TYPE', /folder/, "exportOnnx('')");
  model.dispose();
  throwsCode(t, () => model.toOnnx(), 'ERR_RNNKIT_DISPOSED', /disposed/, 'toOnnx after dispose');
});

t.test('the date example\'s trained model (tiny run): ONNX Runtime reproduces its greedy decode of held-out dates', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-dates-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = path.join(__dirname, '..', 'examples', 'dates-to-iso.js');
  const r = spawnSync(process.execPath, [script, '--tiny', '--out', dir], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `the example ran${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
  const model = await rk.Seq2Seq.load(path.join(dir, 'model.safetensors'));
  // The graphs the example wrote are the ones toOnnx makes from the saved model.
  const graphs = model.toOnnx();
  t.same(fs.readFileSync(path.join(dir, 'onnx', 'encoder.onnx')), Buffer.from(graphs.encoder), 'the example wrote the encoder graph');
  t.same(fs.readFileSync(path.join(dir, 'onnx', 'decoder_step.onnx')), Buffer.from(graphs.decoderStep), 'the example wrote the decoder step graph');
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocabulary.json'), 'utf8')) as { source: string[]; start: number; end: number };
  const id = new Map(vocab.source.map((c, i) => [c, i]));
  const texts = ['3rd of March 1987', '03/04/87', 'Tuesday, March 3, 1987', '1987-3-3', 'mar 3 87', '12.10.2031', 'the 21st of july, 1969'];
  const S = Math.max(...texts.map((s) => s.length));
  const data = new Int32Array(texts.length * S);
  texts.forEach((s, b) => [...s].forEach((c, k) => { data[b * S + k] = id.get(c) as number; }));
  const lengths = Int32Array.from(texts.map((s) => s.length));
  await compare(t, model, { data, shape: [texts.length, S] }, lengths, { start: vocab.start, end: vocab.end, maxLength: 11 });
  model.dispose();
});

t.test('a graph encoder-decoder (GraphSeq2Seq): toOnnx and exportOnnx, also after save and load; ONNX Runtime reproduces its greedy decode', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-graph-onnx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const V = 9;
  const src = rk.input({ dtype: 'int32', vocabSize: V, name: 'source_ids' });
  const tgt = rk.input({ dtype: 'int32', vocabSize: V, name: 'target_ids' });
  const [keys, h, c] = rk.layers.lstm({ units: 10, returnSequences: true, returnState: true, name: 'encoder' })
    .apply(rk.layers.embedding({ outputDim: 6 }).apply(src) as rk.SymbolicTensor) as rk.SymbolicTensor[];
  const [out, weights] = rk.layers.lstm({ units: 10, returnSequences: true, attention: 'bahdanau', returnAttention: true, name: 'decoder' })
    .apply(rk.layers.embedding({ outputDim: 6 }).apply(tgt) as rk.SymbolicTensor, { initialState: [h, c], attendTo: keys }) as rk.SymbolicTensor[];
  const logits = rk.layers.dense({ units: V }).apply(out) as rk.SymbolicTensor;
  const graph = rk.model({ inputs: [src, tgt], outputs: [logits, weights], seed: 21 });
  if (!(graph instanceof rk.GraphSeq2Seq)) throw new Error('expected a GraphSeq2Seq');
  trainALittle(graph.seq2seq, V, 30);
  const lengths = Int32Array.of(5, 2, 7, 7, 1);
  const source = sources(5, 7, V, Array.from(lengths), 3);
  const greedyRows = async (m: rk.GraphSeq2Seq): Promise<number[][]> => {
    const r = await m.decode(source, { startToken: 0, endToken: 1, maxLength: 12, sourceLengths: lengths });
    const [B, M] = r.shape;
    return Array.from({ length: B }, (_, b) => Array.from(r.tokens.subarray(b * M, b * M + r.lengths[b])));
  };
  const ours = await greedyRows(graph);
  const viaOrt = await ortGreedy(graph.toOnnx(), source, lengths, 0, 1, 12);
  t.same(viaOrt.rows, ours, 'ONNX Runtime greedy tokens == the graph model\'s decode');
  t.ok(ours.some((row) => row.length > 1), 'the decode is not empty');
  const file = path.join(dir, 'graph.safetensors');
  await graph.save(file);
  const back = await rk.GraphSeq2Seq.load(file);
  const files = await back.exportOnnx(path.join(dir, 'onnx'));
  const fromFiles = await ortGreedy({ encoder: fs.readFileSync(files.encoder), decoderStep: fs.readFileSync(files.decoderStep) }, source, lengths, 0, 1, 12);
  t.same(fromFiles.rows, ours, 'the graphs exported by the loaded model decode the same tokens');
  graph.dispose();
  back.dispose();
});
