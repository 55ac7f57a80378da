// The encoder-decoder, independent of the golden files: analytic gradients against central differences (every
// parameter, so every edge: attention, keys, the initial-state hand-off into the encoder, embeddings) over cells,
// attention kinds, depths, batch 1 and packed source lengths; the teacher-forced forward against the step-by-step
// decoder; beam search against exhaustive search; beam 1 against greedy; Promise twins; bad input; save and load.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Seq2Seq, type Seq2SeqBatch, type Seq2SeqSpec, type AttentionKind } from '../lib/seq2seq';
import { Lcg, centralDifference, compareProbes, type Derivative } from './helpers/finite-difference';
import { logSoftmax } from './helpers/log-softmax';

type Cell = 'gru' | 'lstm';

interface Config {
  cell: Cell;
  attention: AttentionKind;
  layers: number;
  batch: number;
  lengths: boolean;
}

function makeModel(c: Config, seed: number): Seq2Seq {
  const spec: Seq2SeqSpec = {
    cell: c.cell, attention: c.attention, srcVocab: 7, tgtVocab: 6, embedSize: 3, hiddenSize: 4, numLayers: c.layers, seed,
  };
  return new Seq2Seq(spec);
}

function makeBatch(c: Config, rng: Lcg, S = 5, T = 4): Seq2SeqBatch {
  const B = c.batch;
  const ids = (n: number, v: number): Int32Array => Int32Array.from({ length: n }, () => rng.int(v));
  const targets = ids(B * T, 6);
  // Padding in the targets: each row after the first ends early (ignored positions).
  for (let b = 1; b < B; ++b) for (let t = T - b; t < T; ++t) if (t > 0) targets[b * T + t] = -1;
  const batch: Seq2SeqBatch = {
    source: { data: ids(B * S, 7), shape: [B, S] },
    decoderInput: { data: ids(B * T, 6), shape: [B, T] },
    targets,
  };
  if (c.lengths) batch.sourceLengths = Int32Array.from({ length: B }, (_, b) => Math.max(1, S - 2 * b));
  return batch;
}

const CONFIGS: Config[] = [];
for (const cell of ['gru', 'lstm'] as Cell[])
  for (const attention of ['none', 'bahdanau', 'luong'] as AttentionKind[])
    CONFIGS.push({ cell, attention, layers: attention === 'luong' ? 3 : 2, batch: 3, lengths: true });
CONFIGS.push({ cell: 'gru', attention: 'bahdanau', layers: 1, batch: 1, lengths: false });
CONFIGS.push({ cell: 'lstm', attention: 'luong', layers: 1, batch: 1, lengths: true });

const label = (c: Config): string => `${c.cell}/${c.attention}/L${c.layers}/B${c.batch}${c.lengths ? '/lengths' : ''}`;

for (const [ci, c] of CONFIGS.entries()) {
  t.test(`${label(c)}: analytic gradients of every parameter match central differences`, async (t) => {
    const rng = new Lcg(100 + ci);
    const model = makeModel(c, 7 + ci);
    const batch = makeBatch(c, rng);
    model.zeroGrad();
    model.forwardSync(batch, { train: true });
    model.lossSync();
    const probes: { index: number; analytic: number; numeric: Derivative }[] = [];
    const names: string[] = [];
    for (const name of model.paramNames()) {
      const analytic = model.getGrad(name).data;
      const values = Float32Array.from(model.getParam(name).data);
      const picks = rng.distinct(0, values.length, 3);
      // The largest gradient entry too, so that a parameter whose gradient is mostly small is still tested.
      let big = 0;
      for (let i = 1; i < analytic.length; ++i) if (Math.abs(analytic[i]) > Math.abs(analytic[big])) big = i;
      if (!picks.includes(big)) picks.push(big);
      for (const i of picks) {
        const numeric = centralDifference(values, i, 1e-2, () => model.evaluateSync(batch).loss, () => model.setParam(name, values));
        probes.push({ index: probes.length, analytic: analytic[i], numeric });
        names.push(`${name}[${i}]`);
      }
    }
    const cmp = compareProbes(probes, 1e-5, 2e-2);
    t.ok(cmp.ok, `worst ${cmp.worst ? `${names[cmp.worst.index]}: analytic ${cmp.worst.analytic}, numeric ${cmp.worst.numeric}` : '-'}`);
    t.ok(cmp.checked >= model.paramNames().length * 3, `${cmp.checked} probes`);
    // The encoder's parameters reach the loss only through the decoder's initial state (and the keys): their
    // gradients must not be zero.
    t.ok(model.getGrad('encoder.rnn.weight_hh_l0').data.some((v) => v !== 0), 'gradient reaches the encoder');
    model.dispose();
  });
}

t.test('the teacher-forced forward equals the step-by-step decoder fed the same tokens', async (t) => {
  for (const [ci, c] of CONFIGS.entries()) {
    const rng = new Lcg(300 + ci);
    const model = makeModel(c, 11 + ci);
    const batch = makeBatch(c, rng);
    const { logits, attention } = model.predictSync(batch);
    const [B, T] = batch.decoderInput.shape;
    const V = 6;
    const S = batch.source.shape[1];
    const dec = model.beginDecode(batch.source, { sourceLengths: batch.sourceLengths });
    let worst = 0;
    let worstAttention = 0;
    for (let step = 0; step < T; ++step) {
      const tokens = Int32Array.from({ length: B }, (_, b) => (batch.decoderInput.data as Int32Array)[b * T + step]);
      const out = dec.step(tokens);
      for (let b = 0; b < B; ++b) {
        for (let v = 0; v < V; ++v)
          worst = Math.max(worst, Math.abs(out.logits.data[b * V + v] - logits.data[(b * T + step) * V + v]));
        if (attention && out.attention)
          for (let s = 0; s < S; ++s)
            worstAttention = Math.max(worstAttention, Math.abs(out.attention.data[b * S + s] - attention.data[(b * T + step) * S + s]));
      }
    }
    dec.dispose();
    t.ok(worst < 1e-5, `${label(c)}: logits differ by ${worst}`);
    t.ok(worstAttention < 1e-6, `${label(c)}: attention differs by ${worstAttention}`);
    if (attention && batch.sourceLengths) {
      // Masked: no weight past a row's length, and each row sums to 1.
      let past = 0;
      let sumErr = 0;
      for (let b = 0; b < B; ++b)
        for (let step = 0; step < T; ++step) {
          let sum = 0;
          for (let s = 0; s < S; ++s) {
            const w = attention.data[(b * T + step) * S + s];
            sum += w;
            if (s >= (batch.sourceLengths as Int32Array)[b]) past = Math.max(past, Math.abs(w));
          }
          sumErr = Math.max(sumErr, Math.abs(sum - 1));
        }
      t.equal(past, 0, `${label(c)}: no attention past the source length`);
      t.ok(sumErr < 1e-5, `${label(c)}: attention rows sum to 1`);
    }
    model.dispose();
  }
});

t.test('greedy and beam search', async (t) => {
  for (const [ci, c] of CONFIGS.entries()) {
    const rng = new Lcg(500 + ci);
    const model = makeModel(c, 21 + ci);
    const batch = makeBatch(c, rng);
    const opts = { startToken: 0, endToken: 1, maxLength: 5, sourceLengths: batch.sourceLengths };
    const greedy = model.decodeSync(batch.source, opts);
    const beam1 = model.decodeSync(batch.source, { ...opts, beamWidth: 1 });
    t.same(Array.from(beam1.tokens), Array.from(greedy.tokens), `${label(c)}: beam 1 gives greedy's tokens`);
    const asyncGreedy = await model.decode(batch.source, opts);
    t.same(Array.from(asyncGreedy.tokens), Array.from(greedy.tokens), `${label(c)}: the Promise form agrees`);

    // Greedy against the stepping decoder, feeding back its argmax.
    const B = c.batch;
    const dec = model.beginDecode(batch.source, { sourceLengths: batch.sourceLengths });
    let tokens = new Int32Array(B);
    const done = new Array<boolean>(B).fill(false);
    const want = new Int32Array(B * 5).fill(-1);
    for (let step = 0; step < 5; ++step) {
      const { logits } = dec.step(tokens);
      tokens = Int32Array.from({ length: B }, (_, b) => {
        let best = 0;
        for (let v = 1; v < 6; ++v) if (logits.data[b * 6 + v] > logits.data[b * 6 + best]) best = v;
        return best;
      });
      for (let b = 0; b < B; ++b) {
        if (done[b]) continue;
        want[b * 5 + step] = tokens[b];
        if (tokens[b] === 1) done[b] = true;
      }
    }
    dec.dispose();
    t.same(Array.from(greedy.tokens), Array.from(want), `${label(c)}: greedy equals argmax stepping`);

    // A beam wide enough to keep every prefix (6 tokens, 3 steps: 36 prefixes) finds the exhaustive optimum.
    const exact = model.decodeSync(batch.source, { ...opts, maxLength: 3, beamWidth: 36 });
    for (let b = 0; b < B; ++b) {
      const src = { data: (batch.source.data as Int32Array).slice(b * 5, b * 5 + 5), shape: [1, 5] };
      const lengths = batch.sourceLengths ? [(batch.sourceLengths as Int32Array)[b]] : undefined;
      let best = -Infinity;
      let bestSeq: number[] = [];
      const search = (prefix: number[], score: number): void => {
        const d = model.beginDecode(src, { sourceLengths: lengths });
        let out = d.step([0]);
        for (const tok of prefix) out = d.step([tok]);
        d.dispose();
        const lp = logSoftmax(out.logits.data, 0, 6);
        for (let v = 0; v < 6; ++v) {
          const s = score + lp[v];
          const seq = [...prefix, v];
          if (v === 1 || seq.length === 3) {
            if (s > best + 1e-9) {
              best = s;
              bestSeq = seq;
            }
          } else {
            search(seq, s);
          }
        }
      };
      search([], 0);
      const got = Array.from(exact.tokens.slice(b * 3, b * 3 + exact.lengths[b]));
      t.same(got, bestSeq, `${label(c)} row ${b}: beam search finds the best sequence`);
      t.ok(Math.abs(exact.scores[b] - best) < 1e-4, `${label(c)} row ${b}: score ${exact.scores[b]} vs ${best}`);
    }
    const wide = model.decodeSync(batch.source, { ...opts, beamWidth: 4, lengthPenalty: 1 });
    t.equal(wide.tokens.length, B * 5);
    if (c.attention !== 'none') t.same(wide.attention?.shape, [B, 5, batch.source.shape[1]]);
    else t.equal(wide.attention, null);
    model.dispose();
  }
});

t.test('training lowers the loss, and the Promise twins agree with the sync forms', async (t) => {
  const c: Config = { cell: 'gru', attention: 'bahdanau', layers: 1, batch: 3, lengths: true };
  const model = makeModel(c, 5);
  const batch = makeBatch(c, new Lcg(9));
  model.compile({ optimizer: { type: 'adam', lr: 0.05 }, clipNorm: 1 });
  const first = model.evaluateSync(batch).loss;
  for (let i = 0; i < 30; ++i) await model.trainOnBatch(batch);
  const after = (await model.evaluate(batch)).loss;
  t.ok(after < first * 0.5, `loss ${first} -> ${after}`);
  t.equal(model.evaluateSync(batch).counted, 3 * 4 - 1 - 2);
  const a = model.predictSync(batch);
  const b = await model.predict(batch);
  t.same(Array.from(a.logits.data), Array.from(b.logits.data));
  // A synchronous call while a Promise call runs is refused, nothing is lost.
  const running = model.decode(batch.source, { startToken: 0, endToken: 1, maxLength: 4 });
  t.throws(() => model.predictSync(batch), { code: 'ERR_RNNKIT_BUSY' });
  await running;
  model.dispose();
});

t.test('bad input gives coded errors that name the decoder or the field', async (t) => {
  const c: Config = { cell: 'lstm', attention: 'luong', layers: 1, batch: 2, lengths: false };
  const model = makeModel(c, 3);
  const batch = makeBatch(c, new Lcg(1));
  const src = batch.source;
  t.throws(() => model.decodeSync(src, { startToken: 0, endToken: 1, maxLength: 4, beamWidth: 0 }), { code: 'ERR_RNNKIT_VALUE', message: /decoder: beamWidth/ });
  t.throws(() => model.decodeSync(src, { startToken: 0, beamWidth: 3 }), { code: 'ERR_RNNKIT_ARGUMENT', message: /decoder: give options.endToken/ });
  t.equal(model.decodeSync(src, { startToken: 0, endToken: 1 }).shape[1], 2 * 5 + 10, 'default maxLength');
  const noEnd = model.decodeSync(src, { startToken: 0, maxLength: 6, beamWidth: 3 });
  t.same(Array.from(noEnd.lengths), [6, 6], 'without an end token, beam search runs to maxLength');
  t.throws(() => model.decodeSync(src, { startToken: 9, maxLength: 4 }), { code: 'ERR_RNNKIT_VALUE', message: /startToken/ });
  t.throws(() => model.decodeSync(src, { startToken: 0, maxLength: 0 }), { code: 'ERR_RNNKIT_VALUE', message: /maxLength/ });
  await t.rejects(model.decode(src, { startToken: 0, endToken: 1, maxLength: 4, beamWidth: 0 }), { code: 'ERR_RNNKIT_VALUE' });
  t.throws(() => model.decodeSync({ data: [1, 2, 3], shape: [2, 5] }, { startToken: 0, maxLength: 4 }), { code: 'ERR_RNNKIT_SHAPE' });
  t.throws(() => model.predictSync({ ...batch, sourceLengths: [5, 6] }), { code: 'ERR_RNNKIT_VALUE', message: /sourceLengths\[1\]/ });
  t.throws(() => model.predictSync({ ...batch, sourceLengths: [5] }), { code: 'ERR_RNNKIT_SHAPE' });
  t.throws(() => model.predictSync({ ...batch, source: { data: Int32Array.from({ length: 10 }, () => 7), shape: [2, 5] } }), { code: 'ERR_RNNKIT_VALUE', message: /source\[0\] = 7/ });
  t.throws(() => model.predictSync({ ...batch, decoderInput: { data: [0, 0], shape: [1, 2] } }), { code: 'ERR_RNNKIT_SHAPE' });
  t.throws(() => model.trainOnBatchSync(batch), { code: 'ERR_RNNKIT_STATE' });
  t.throws(() => model.lossSync(), { code: 'ERR_RNNKIT_STATE' });
  t.throws(() => new Seq2Seq({ srcVocab: 0, tgtVocab: 3, embedSize: 2, hiddenSize: 2 }), { code: 'ERR_RNNKIT_ARGUMENT', message: /srcVocab/ });
  t.throws(() => new Seq2Seq({ srcVocab: 3, tgtVocab: 3, embedSize: 2, hiddenSize: 2, attention: 'dot' as AttentionKind }), { code: 'ERR_RNNKIT_ARGUMENT', message: /attention/ });
  const dec = model.beginDecode(src);
  t.throws(() => dec.step([0]), { code: 'ERR_RNNKIT_SHAPE' });
  t.throws(() => dec.step([0, 6]), { code: 'ERR_RNNKIT_VALUE' });
  dec.dispose();
  t.throws(() => dec.step([0, 0]), { code: 'ERR_RNNKIT_DISPOSED' });
  const dec2 = model.beginDecode(src);
  model.dispose();
  t.throws(() => dec2.step([0, 0]), { code: 'ERR_RNNKIT_DISPOSED' });
  t.throws(() => model.predictSync(batch), { code: 'ERR_RNNKIT_DISPOSED' });
});

t.test('save and load keep the architecture and every weight', async (t) => {
  const c: Config = { cell: 'lstm', attention: 'bahdanau', layers: 2, batch: 2, lengths: true };
  const model = makeModel(c, 17);
  const batch = makeBatch(c, new Lcg(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-s2s-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'model.safetensors');
  await model.save(file);
  const loaded = await Seq2Seq.load(file);
  t.same(loaded.spec, model.spec);
  t.same(Array.from(loaded.predictSync(batch).logits.data), Array.from(model.predictSync(batch).logits.data));
  t.throws(() => Seq2Seq.fromBuffer(Buffer.from('nonsense')), { code: 'ERR_RNNKIT_FORMAT' });
  // A header whose spec the tensors do not back is refused before the model is built (this one would need 800 MB).
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  header.__metadata__.model = JSON.stringify({ ...JSON.parse(header.__metadata__.model), hiddenSize: 4096, numLayers: 1 });
  const json = Buffer.from(JSON.stringify(header));
  const lying = Buffer.concat([Buffer.alloc(8), json, buf.subarray(8 + n)]);
  lying.writeBigUInt64LE(BigInt(json.length), 0);
  t.throws(() => Seq2Seq.fromBuffer(lying), { code: 'ERR_RNNKIT_FORMAT', message: /describes at least \d+ parameters, the file holds \d+/ }, 'a spec the tensors do not back');
  const { load } = await import('../lib/model');
  await t.rejects(load(file), { code: 'ERR_RNNKIT_FORMAT', message: /Seq2Seq.load/ }, 'rnnkit.load says where an encoder-decoder file goes');
  model.dispose();
  loaded.dispose();
});

t.test('fromTorchSeq2Seq: a state_dict of every golden case (rnnkit names and the tutorial\'s) reproduces PyTorch', async (t) => {
  const { fromTorchSeq2Seq, TUTORIAL_NAMES } = await import('../lib/io/interop/torch-seq2seq');
  const { serializeSafetensors } = await import('../lib/io/safetensors');
  const dir = path.join(__dirname, 'fixtures', 'golden');
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('s2s_') && f.endsWith('.json'));
  t.ok(files.length >= 5);
  for (const f of files) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    if (c.kind !== 'seq2seq') continue;
    for (const tutorial of [false, true]) {
      const rename = (n: string): string => n.replace(/^(encoder|decoder)\.rnn\./, '$1.gru.');
      const tensors = Object.entries(c.params as Record<string, { shape: number[]; data: number[] }>).map(([name, v]) => ({
        name: tutorial ? rename(name) : name, shape: v.shape, data: Float32Array.from(v.data),
      }));
      const model = await fromTorchSeq2Seq(serializeSafetensors(tensors), tutorial ? { rename: { ...TUTORIAL_NAMES } } : {});
      t.equal(model.spec.attention, c.attention, `${f}: attention inferred`);
      t.equal(model.spec.cell, c.cell, `${f}: cell inferred`);
      t.equal(model.spec.numLayers, c.num_layers, `${f}: depth inferred`);
      const B = c.batch;
      const out = model.predictSync({
        source: { data: Int32Array.from(c.src.flat()), shape: [B, c.src_len] },
        sourceLengths: c.src_lengths ?? undefined,
        decoderInput: { data: Int32Array.from(c.tgt_in.flat()), shape: [B, c.tgt_len] },
      });
      let worst = 0;
      c.logits.data.forEach((want: number, i: number) => {
        worst = Math.max(worst, Math.abs(out.logits.data[i] - want) / (1e-5 + 1e-4 * Math.abs(want)));
      });
      t.ok(worst <= 1, `${f}${tutorial ? ' (tutorial names)' : ''}: logits within tolerance (worst ${worst.toFixed(3)})`);
      model.dispose();
    }
  }
  const { fromTorchSeq2SeqSync } = await import('../lib/io/interop/torch-seq2seq');
  t.throws(() => fromTorchSeq2SeqSync(serializeSafetensors([{ name: 'x', shape: [1], data: new Float32Array(1) }])), { code: 'ERR_RNNKIT_FORMAT', message: /encoder.embedding.weight/ });
});

t.test('PyTorch cases of shapes the shared set lacks (3 layers, batch 1, LSTM + Luong, lengths everywhere, Luong training) pass the conformance runner', async (t) => {
  const { runDirectory } = await import('../lib/conformance/runner');
  const results = runDirectory(path.join(__dirname, 'fixtures', 'seq2seq'));
  t.equal(results.length, 5);
  for (const r of results) t.ok(r.passed, `${r.name}: ${r.detail}`);
});

t.test('concurrent Promise calls on one model wait in its queue and settle in call order, each as if made alone', async (t) => {
  const c: Config = { cell: 'gru', attention: 'bahdanau', layers: 1, batch: 2, lengths: true };
  const rng = new Lcg(21);
  const sources = Array.from({ length: 10 }, () => makeBatch(c, rng).source);
  const batch = makeBatch(c, rng);
  const opts = { startToken: 0, endToken: 1, maxLength: 6, beamWidth: 2 };
  // The reference: the same calls one at a time on a twin (same seed), in the same order.
  const twin = makeModel(c, 8);
  twin.compile({ optimizer: { type: 'sgd', lr: 0.5 } });
  const alone = sources.slice(0, 5).map((s) => twin.decodeSync(s, opts));
  const loss = twin.trainOnBatchSync(batch).loss;
  alone.push(...sources.slice(5).map((s) => twin.decodeSync(s, opts)));
  const predicted = twin.predictSync(batch);

  const model = makeModel(c, 8);
  model.compile({ optimizer: { type: 'sgd', lr: 0.5 } });
  const order: string[] = [];
  const track = <T>(name: string, p: Promise<T>): Promise<T> => p.then((v) => { order.push(name); return v; });
  const first = sources.slice(0, 5).map((s, i) => track(`decode${i}`, model.decode(s, opts)));
  const trained = track('train', model.trainOnBatch(batch));
  const second = sources.slice(5).map((s, i) => track(`decode${i + 5}`, model.decode(s, opts)));
  const prediction = track('predict', model.predict(batch));
  t.throws(() => model.predictSync(batch), { code: 'ERR_RNNKIT_BUSY' }, 'a synchronous call is still refused while Promise calls run');
  const results = await Promise.all([...first, ...second]);
  t.equal((await trained).loss, loss, 'the training step, between the decodes, saw the weights the sequence gave it');
  t.same(Array.from((await prediction).logits.data), Array.from(predicted.logits.data), 'predict ran after the step');
  t.same(order, ['decode0', 'decode1', 'decode2', 'decode3', 'decode4', 'train', 'decode5', 'decode6', 'decode7', 'decode8', 'decode9', 'predict']);
  results.forEach((r, i) => {
    t.same(Array.from(r.tokens), Array.from(alone[i].tokens), `decode ${i}: tokens`);
    t.same(Array.from(r.scores), Array.from(alone[i].scores), `decode ${i}: scores`);
  });
  // dispose() while calls wait: the running one finishes, the waiting ones are refused with DISPOSED.
  const running = model.decode(sources[0], opts);
  const waiting = model.decode(sources[1], opts);
  model.dispose();
  t.same(Array.from((await running).tokens), Array.from(twin.decodeSync(sources[0], opts).tokens));
  await t.rejects(waiting, { code: 'ERR_RNNKIT_DISPOSED' });
  twin.dispose();
});

t.test('a stepping decoder: its step is refused (BUSY) while a Promise call runs on the model, and survives getters', async (t) => {
  const c: Config = { cell: 'lstm', attention: 'luong', layers: 1, batch: 2, lengths: false };
  const model = makeModel(c, 4);
  const batch = makeBatch(c, new Lcg(3));
  const dec = model.beginDecode(batch.source);
  const running = model.decode(batch.source, { startToken: 0, maxLength: 3 });
  t.throws(() => dec.step([0, 0]), { code: 'ERR_RNNKIT_BUSY' });
  await running;
  const reference = model.beginDecode(batch.source).step([0, 0]);
  t.same(Array.from(dec.step([0, 0]).logits.data), Array.from(reference.logits.data), 'the refused step changed nothing');
  // A getter of the tokens that steps again, disposes the decoder or the model: coded errors, no crash.
  const again = model.beginDecode(batch.source);
  let nested: unknown;
  const tokens = [0, 0];
  Object.defineProperty(tokens, 1, { get() { try { again.step([0, 0]); } catch (e) { nested = e; } return 0; } });
  again.step(tokens);
  t.equal((nested as { code?: string })?.code, 'ERR_RNNKIT_BUSY', 'a step from a getter of a step is BUSY');
  const gone = model.beginDecode(batch.source);
  const disposing = [0, 0];
  Object.defineProperty(disposing, 1, { get() { gone.dispose(); return 0; } });
  t.throws(() => gone.step(disposing), { code: 'ERR_RNNKIT_DISPOSED' });
  const last = model.beginDecode(batch.source);
  const killing = [0, 0];
  Object.defineProperty(killing, 1, { get() { model.dispose(); return 0; } });
  t.throws(() => last.step(killing), { code: 'ERR_RNNKIT_DISPOSED' });
  t.ok(model.disposed);
});

t.test('unknown option names are coded errors that suggest the name meant', async (t) => {
  const c: Config = { cell: 'gru', attention: 'bahdanau', layers: 1, batch: 2, lengths: false };
  const model = makeModel(c, 2);
  const batch = makeBatch(c, new Lcg(4));
  const spec = { srcVocab: 7, tgtVocab: 6, embedSize: 3, hiddenSize: 4 };
  t.throws(() => new Seq2Seq({ ...spec, hidden_size: 4 } as unknown as Seq2SeqSpec), { code: 'ERR_RNNKIT_ARGUMENT', message: /unknown option 'hidden_size' in the seq2seq spec: did you mean 'hiddenSize'/ });
  t.throws(() => new Seq2Seq({ ...spec, numLayer: 2 } as unknown as Seq2SeqSpec), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'numLayers'/ });
  const src = batch.source;
  const bad = { startToken: 0, endToken: 1, maxLength: 4, beam_width: 3 } as unknown as { startToken: number };
  t.throws(() => model.decodeSync(src, bad), { code: 'ERR_RNNKIT_ARGUMENT', message: /unknown option 'beam_width' in decode options: did you mean 'beamWidth'/ });
  await t.rejects(model.decode(src, bad), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'beamWidth'/ });
  t.throws(() => model.beginDecode(src, { sourceLength: [5, 5] } as unknown as { sourceLengths: number[] }), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'sourceLengths'/ });
  t.throws(() => model.compile({ optimizer: { type: 'sgd', lr: 0.1 }, clipnorm: 1 } as unknown as { optimizer: { type: 'sgd'; lr: number } }), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'clipNorm'/ });
  t.throws(() => model.forwardSync(batch, { training: true } as unknown as { train: boolean }), { code: 'ERR_RNNKIT_ARGUMENT', message: /did you mean 'train'/ });
  // The right names still work.
  t.equal(model.decodeSync(src, { startToken: 0, endToken: 1, maxLength: 4, beamWidth: 2 }).shape[0], 2);
  model.dispose();
});

t.test('a training step whose loss or gradient norm is not finite is refused and changes nothing', async (t) => {
  const c: Config = { cell: 'gru', attention: 'bahdanau', layers: 1, batch: 2, lengths: false };
  const model = makeModel(c, 11);
  const batch = makeBatch(c, new Lcg(4));
  model.compile({ optimizer: { type: 'adam', lr: 0.01 }, clipNorm: 1 });
  await model.trainOnBatch(batch);  // the optimizer has state worth keeping
  const names = model.paramNames();
  const poisoned = names.find((n) => n.startsWith('decoder.') && n.includes('weight_ih'))!;
  const bad = model.getParam(poisoned).data.slice();
  bad[0] = Number.NaN;
  model.setParam(poisoned, bad);
  const before = names.map((n) => Array.from(model.getParam(n).data));
  t.throws(() => model.trainOnBatchSync(batch), { code: 'ERR_RNNKIT_NON_FINITE', message: /training step not applied: the (loss|gradient norm) is NaN.*unchanged/ });
  await t.rejects(model.trainOnBatch(batch), { code: 'ERR_RNNKIT_NON_FINITE' });
  names.forEach((n, i) => t.same(Array.from(model.getParam(n).data), before[i], `${n} unchanged`));
  // Once the weight is repaired, training goes on from the same state.
  bad[0] = 0;
  model.setParam(poisoned, bad);
  t.ok(Number.isFinite(model.trainOnBatchSync(batch).loss));
  model.dispose();
});
