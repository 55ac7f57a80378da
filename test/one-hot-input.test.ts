// A one-hot input layer looks its input projection up (W_ih's column per token) instead of multiplying: the same
// model fed the equivalent dense one-hot vectors runs the GEMM, whose sums (one 1 and zeros) are the same floats.
// Covered: a whole sequence with more tokens than the vocabulary (the lookup through a transposed copy of W_ih), a
// short one (the column reads in place), repeated and edge token ids, and a stream's single-token steps (to rounding).
import t from 'tap';
import * as rk from '../lib/index';

const { layers, sequential } = rk;

function twins(vocab: number, units: number, cell: 'lstm' | 'gru') {
  const rec = cell === 'lstm' ? layers.lstm : layers.gru;
  const oneHot = sequential({ vocabSize: vocab, layers: [rec({ units, numLayers: 2, returnSequences: true })], seed: 12 });
  const dense = sequential({ inputSize: vocab, layers: [rec({ units, numLayers: 2, returnSequences: true })], seed: 99 });
  dense.setWeights(oneHot.getWeights());
  return { oneHot, dense };
}

function denseOf(tokens: Int32Array, vocab: number): Float32Array {
  const x = new Float32Array(tokens.length * vocab);
  tokens.forEach((tok, i) => { x[i * vocab + tok] = 1; });
  return x;
}

for (const [vocab, units, cell, B, T] of [[65, 40, 'lstm', 9, 11], [7, 33, 'gru', 3, 5], [300, 20, 'lstm', 2, 3]] as const) {
  t.test(`one-hot ${cell}, vocabulary ${vocab}, ${B * T} tokens: the lookup equals the dense product`, async (t) => {
    const { oneHot, dense } = twins(vocab, units, cell);
    const tokens = Int32Array.from({ length: B * T }, (_, i) => (i === 0 ? 0 : i === 1 ? vocab - 1 : (i * 13 + (i >> 2)) % vocab));
    const a = oneHot.predictSync({ data: tokens, shape: [B, T] }).data;
    const b = dense.predictSync({ data: denseOf(tokens, vocab), shape: [B, T, vocab] }).data;
    t.equal(a.length, b.length);
    t.ok(a.every((v, i) => v === b[i]), 'bit for bit');
    // One token at a time (a stream step reads W_ih's columns in place). The dense stream multiplies [x; h] in one
    // chain of sums, so from the second step on the two differ by rounding only.
    const s = oneHot.stream(), d = dense.stream();
    for (let i = 0; i < T; i++) {
      const tok = tokens[i * B] ?? 0;
      const x = new Float32Array(vocab);
      x[tok] = 1;
      const ys = s.stepSync([tok]).data, yd = d.stepSync({ data: x, shape: [1, vocab] }).data;
      const diff = ys.reduce((m, v, j) => Math.max(m, Math.abs(v - yd[j])), 0);
      t.ok(diff <= 1e-5, `step ${i}: within 1e-5 (${diff.toExponential(2)})`);
    }
    s.dispose();
    d.dispose();
    oneHot.dispose();
    dense.dispose();
  });
}
