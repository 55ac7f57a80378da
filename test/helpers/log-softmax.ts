// A float64 log-softmax in plain JavaScript: the reference the seq2seq tests score decoded tokens with.

/** log-softmax of the V values of z from `off` on, max-shifted so that large logits do not overflow. */
export function logSoftmax(z: Float32Array, off: number, V: number): number[] {
  let m = -Infinity;
  for (let v = 0; v < V; ++v) m = Math.max(m, z[off + v]);
  let s = 0;
  for (let v = 0; v < V; ++v) s += Math.exp(z[off + v] - m);
  const lse = m + Math.log(s);
  return Array.from({ length: V }, (_, v) => z[off + v] - lse);
}
