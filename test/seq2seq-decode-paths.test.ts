// A whole decode (greedy and beam search) takes shortcuts the step-by-step decoder does not: layer 0's embedding
// projection looked up in a per-token table (when the vocabulary is small against rows x steps), a beam's hypotheses
// reading their source row's keys in place, and (Bahdanau, beam) the keys projected through W_ih once per decode so
// that the attention weights sum them straight into the gates. Every returned row is re-scored here by the stepping
// decoder, which takes none of them: the summed log-probabilities, each token's attention weights, and (greedy) each
// token being the argmax, on both sides of the table's size rule.
import t from 'tap';
import { Seq2Seq, type AttentionKind } from '../lib/seq2seq';
import { Lcg } from './helpers/finite-difference';
import { logSoftmax } from './helpers/log-softmax';

interface Case {
  cell: 'gru' | 'lstm';
  attention: AttentionKind;
  layers: number;
  batch: number;
  tgtVocab: number;
  maxLength: number;
}

const CASES: Case[] = [
  { cell: 'gru', attention: 'bahdanau', layers: 1, batch: 3, tgtVocab: 6, maxLength: 5 },
  { cell: 'lstm', attention: 'bahdanau', layers: 2, batch: 2, tgtVocab: 6, maxLength: 4 },
  { cell: 'gru', attention: 'none', layers: 1, batch: 3, tgtVocab: 6, maxLength: 4 },
  { cell: 'lstm', attention: 'luong', layers: 2, batch: 2, tgtVocab: 6, maxLength: 4 },
  // A vocabulary larger than rows x steps: no table.
  { cell: 'gru', attention: 'bahdanau', layers: 1, batch: 1, tgtVocab: 40, maxLength: 3 },
];

for (const [ci, c] of CASES.entries()) {
  const label = `${c.cell}/${c.attention}/L${c.layers}/B${c.batch}/V${c.tgtVocab}`;
  t.test(`${label}: greedy and beam results re-scored by the stepping decoder`, async (t) => {
    const rng = new Lcg(900 + ci);
    const S = 5;
    const V = c.tgtVocab;
    const model = new Seq2Seq({
      cell: c.cell, attention: c.attention, srcVocab: 7, tgtVocab: V, embedSize: 5, hiddenSize: 8, numLayers: c.layers,
      seed: 40 + ci,
    });
    const B = c.batch;
    const source = { data: Int32Array.from({ length: B * S }, () => rng.int(7)), shape: [B, S] };
    const sourceLengths = Int32Array.from({ length: B }, (_, b) => Math.max(1, S - 2 * b));
    for (const beamWidth of [1, 3]) {
      const M = c.maxLength;
      const r = model.decodeSync(source, { startToken: 0, endToken: 1, maxLength: M, beamWidth, sourceLengths });
      let worstScore = 0;
      let worstAttention = 0;
      let notArgmax = 0;
      for (let b = 0; b < B; ++b) {
        const row = { data: (source.data as Int32Array).slice(b * S, (b + 1) * S), shape: [1, S] };
        const dec = model.beginDecode(row, { sourceLengths: [sourceLengths[b]] });
        let token = 0;
        let score = 0;
        for (let step = 0; step < r.lengths[b]; ++step) {
          const out = dec.step([token]);
          const next = r.tokens[b * M + step];
          const lp = logSoftmax(out.logits.data, 0, V);
          score += lp[next];
          if (beamWidth === 1 && lp.some((x) => x > lp[next] + 1e-6)) ++notArgmax;
          if (r.attention && out.attention)
            for (let s = 0; s < S; ++s)
              worstAttention = Math.max(worstAttention, Math.abs(r.attention.data[(b * M + step) * S + s] - out.attention.data[s]));
          token = next;
        }
        dec.dispose();
        worstScore = Math.max(worstScore, Math.abs(score - r.scores[b]));
      }
      t.ok(r.lengths.every((n) => n >= 1), `beam ${beamWidth}: every row produced tokens`);
      t.ok(worstScore < 1e-4, `beam ${beamWidth}: scores agree (worst ${worstScore})`);
      if (c.attention !== 'none') t.ok(worstAttention < 1e-5, `beam ${beamWidth}: attention agrees (worst ${worstAttention})`);
      else t.equal(r.attention, null, 'no attention without an attention layer');
      if (beamWidth === 1) t.equal(notArgmax, 0, 'greedy took the argmax at every step');
    }
    model.dispose();
  });
}

// The model keeps a decode's packed step weights and embedding table for the next decode of the same shape: a weight
// changed in between (setParam, a training step) must reach the next decode.
t.test('a decode after the weights change reads the new weights', async (t) => {
  const spec = { cell: 'gru', attention: 'bahdanau', srcVocab: 7, tgtVocab: 6, embedSize: 5, hiddenSize: 8, numLayers: 1 } as const;
  const rng = new Lcg(77);
  const B = 3, S = 5, T = 4;
  const source = { data: Int32Array.from({ length: B * S }, () => rng.int(7)), shape: [B, S] };
  const opts = { startToken: 0, maxLength: 6 };
  const copyInto = (from: Seq2Seq, to: Seq2Seq): void => {
    for (const name of from.paramNames()) to.setParam(name, Float32Array.from(from.getParam(name).data));
  };
  const a = new Seq2Seq({ ...spec, seed: 1 });
  for (const beamWidth of [1, 3]) {
    a.decodeSync(source, { ...opts, beamWidth });  // fills what the model keeps
    const w = Float32Array.from(a.getParam('decoder.rnn.weight_ih_l0').data, (x, i) => x + (i % 3 === 0 ? 0.5 : -0.25));
    a.setParam('decoder.rnn.weight_ih_l0', w);
    const e = Float32Array.from(a.getParam('decoder.embedding.weight').data, (x) => -x);
    a.setParam('decoder.embedding.weight', e);
    const fresh = new Seq2Seq({ ...spec, seed: 2 });
    copyInto(a, fresh);
    const got = a.decodeSync(source, { ...opts, beamWidth });
    const want = fresh.decodeSync(source, { ...opts, beamWidth });
    t.same(Array.from(got.tokens), Array.from(want.tokens), `beam ${beamWidth}: setParam reaches the next decode (tokens)`);
    t.same(Array.from(got.scores), Array.from(want.scores), `beam ${beamWidth}: and its scores`);
    fresh.dispose();
  }
  a.compile({ optimizer: { type: 'adam', lr: 0.05 } });
  const batch = {
    source, decoderInput: { data: Int32Array.from({ length: B * T }, () => rng.int(6)), shape: [B, T] },
    targets: Int32Array.from({ length: B * T }, () => rng.int(6)),
  };
  a.decodeSync(source, opts);
  for (let i = 0; i < 3; ++i) a.trainOnBatchSync(batch);
  const fresh = new Seq2Seq({ ...spec, seed: 3 });
  copyInto(a, fresh);
  t.same(Array.from(a.decodeSync(source, opts).scores), Array.from(fresh.decodeSync(source, opts).scores),
    'a training step reaches the next decode');
  fresh.dispose();
  a.dispose();
});
