// Shared helpers for gradient checks by finite differences: a seeded random source, probe selection, central
// differences of a float32 slot, and a plain-JS (float64) reference of the recurrent stack.

/** A 32-bit linear congruential generator (Numerical Recipes constants): reproducible across runs and platforms. */
export class Lcg {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
    for (let i = 0; i < 4; ++i) this.next();
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (Math.imul(this.#state, 1664525) + 1013904223) >>> 0;
    return this.#state / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }
  floats(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; ++i) out[i] = this.uniform(lo, hi);
    return out;
  }
  /** k distinct indices of [lo, hi), in increasing order (all of them when the range has at most k). */
  distinct(lo: number, hi: number, k: number): number[] {
    const all: number[] = [];
    for (let i = lo; i < hi; ++i) all.push(i);
    for (let i = all.length - 1; i > 0; --i) {
      const j = this.int(i + 1);
      [all[i], all[j]] = [all[j], all[i]];
    }
    return all.slice(0, Math.min(k, all.length)).sort((a, b) => a - b);
  }
}

/**
 * Probe indices of a tensor stored row-major with `rows` rows: `perBlock` entries from each of `blocks` equal
 * row blocks (the gates of a recurrent weight, or the layer/direction slots of an initial state), so every gate
 * (slot) is checked.
 */
export function stratifiedProbes(rng: Lcg, size: number, blocks: number, perBlock: number): number[] {
  const blockSize = size / blocks;
  if (!Number.isInteger(blockSize)) throw new Error(`size ${size} is not a multiple of ${blocks} blocks`);
  const out: number[] = [];
  for (let g = 0; g < blocks; ++g) out.push(...rng.distinct(g * blockSize, (g + 1) * blockSize, perBlock));
  return out;
}

export interface Derivative {
  /** The finite-difference estimate of dL/dslot. */
  value: number;
  /** False when the estimates at eps and eps/2 disagree (a kink of relu inside the interval): skip the entry. */
  stable: boolean;
}

/**
 * Central difference of `evaluate()` (which returns the objective in float64) with respect to `arr[i]`, a float32
 * slot. `commit` pushes the modified array where it is read (e.g. setParam); the slot is restored afterwards. The
 * step is divided by the float32 values actually taken, not by 2*eps. Takes eps and eps/2: for a smooth function
 * returns their Richardson extrapolation (error O(eps^4)); with `checkKinks` (piecewise-linear cells) returns the
 * eps estimate (the less noisy one) and reports whether both agree (they do not when a relu kink lies inside).
 */
export function centralDifference(
  arr: Float32Array,
  i: number,
  eps: number,
  evaluate: () => number,
  commit: () => void = () => undefined,
  checkKinks = false,
): Derivative {
  const x0 = arr[i];
  const at = (e: number): number => {
    const xp = Math.fround(x0 + e);
    const xm = Math.fround(x0 - e);
    arr[i] = xp;
    commit();
    const lp = evaluate();
    arr[i] = xm;
    commit();
    const lm = evaluate();
    return (lp - lm) / (xp - xm);
  };
  try {
    const full = at(eps);
    const half = at(eps / 2);
    // Smooth: Richardson extrapolation cancels the eps^2 term of the central difference's error.
    if (!checkKinks) return { value: (4 * half - full) / 3, stable: true };
    return { value: full, stable: Math.abs(full - half) <= 3e-4 + 1e-2 * Math.abs(half) };
  } finally {
    arr[i] = x0;
    commit();
  }
}

export interface Comparison {
  ok: boolean;
  checked: number;
  skipped: number;
  worst: { index: number; analytic: number; numeric: number; excess: number } | null;
  maxNumeric: number;
  relErrorNorm: number;
}

/** Per entry |a - n| <= atol + rtol*|n| over the probes that are stable. */
export function compareProbes(
  probes: { index: number; analytic: number; numeric: Derivative }[],
  atol: number,
  rtol: number,
): Comparison {
  let ok = true;
  let checked = 0;
  let skipped = 0;
  let worst: Comparison['worst'] = null;
  let maxNumeric = 0;
  let diff2 = 0;
  let num2 = 0;
  for (const p of probes) {
    if (!p.numeric.stable) {
      ++skipped;
      continue;
    }
    ++checked;
    const n = p.numeric.value;
    const a = p.analytic;
    const err = Math.abs(a - n);
    const excess = err - (atol + rtol * Math.abs(n));
    if (!(excess <= 0)) ok = false;
    if (!worst || excess > worst.excess || Number.isNaN(excess)) {
      worst = { index: p.index, analytic: a, numeric: n, excess };
    }
    maxNumeric = Math.max(maxNumeric, Math.abs(n));
    diff2 += err * err;
    num2 += n * n;
  }
  return { ok, checked, skipped, worst, maxNumeric, relErrorNorm: Math.sqrt(diff2) / Math.max(Math.sqrt(num2), 1e-12) };
}

// ---------------------------------------------------------------------------------------------------------------
// A plain-JS float64 reference of the recurrent stack (PyTorch's equations), written independently of the native
// code: for forward checks.

export type RefCell = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';
export type RefGateActivation = 'sigmoid' | 'hard_sigmoid';

export interface RefSpec {
  cell: RefCell;
  resetAfter?: boolean;
  /** LSTM and GRU gates (default sigmoid). */
  gateActivation?: RefGateActivation;
  inputSize: number;
  hiddenSize: number;
  numLayers?: number;
  bidirectional?: boolean;
}

export interface RefInput {
  /** Time-major [T, B, I]. */
  x: ArrayLike<number>;
  T: number;
  B: number;
  lengths?: number[];
  h0?: ArrayLike<number>;
  c0?: ArrayLike<number>;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
// TF.js's hardSigmoid.
const hardSigmoid = (v: number): number => Math.min(1, Math.max(0, 0.2 * v + 0.5));

/** Receives every gate pre-activation (LSTM i, f, o; GRU r, z) a reference forward computes. */
export type GateObserver = (preActivation: number) => void;

/** W [rows, cols] row-major, rows r0..r0+n-1, times v. */
function matvec(W: ArrayLike<number>, cols: number, r0: number, n: number, v: ArrayLike<number>): number[] {
  const out = new Array<number>(n).fill(0);
  for (let r = 0; r < n; ++r) {
    let s = 0;
    for (let c = 0; c < cols; ++c) s += W[(r0 + r) * cols + c] * v[c];
    out[r] = s;
  }
  return out;
}

/** One step of one cell for one batch row. */
export function referenceCell(
  spec: { cell: RefCell; resetAfter?: boolean; gateActivation?: RefGateActivation },
  p: { wih: ArrayLike<number>; whh: ArrayLike<number>; bih: ArrayLike<number>; bhh: ArrayLike<number> },
  I: number,
  H: number,
  x: ArrayLike<number>,
  h: number[],
  c: number[],
  observe?: GateObserver,
): { h: number[]; c: number[] } {
  const lin = (W: ArrayLike<number>, cols: number, b: ArrayLike<number>, gate: number, v: ArrayLike<number>) =>
    matvec(W, cols, gate * H, H, v).map((s, j) => s + b[gate * H + j]);
  const gateFn = spec.gateActivation === 'hard_sigmoid' ? hardSigmoid : sigmoid;
  const gateOf = (pre: number): number => {
    observe?.(pre);
    return gateFn(pre);
  };
  switch (spec.cell) {
    case 'rnn_tanh':
    case 'rnn_relu': {
      const xi = lin(p.wih, I, p.bih, 0, x);
      const hh = lin(p.whh, H, p.bhh, 0, h);
      const act = spec.cell === 'rnn_tanh' ? Math.tanh : (v: number) => Math.max(0, v);
      return { h: xi.map((v, j) => act(v + hh[j])), c };
    }
    case 'lstm': {
      const gate = (g: number) => {
        const a = lin(p.wih, I, p.bih, g, x);
        const b = lin(p.whh, H, p.bhh, g, h);
        return a.map((v, j) => v + b[j]);
      };
      const i = gate(0).map(gateOf);
      const f = gate(1).map(gateOf);
      const g = gate(2).map(Math.tanh);
      const o = gate(3).map(gateOf);
      const cNext = c.map((cj, j) => f[j] * cj + i[j] * g[j]);
      return { h: cNext.map((cj, j) => o[j] * Math.tanh(cj)), c: cNext };
    }
    case 'gru': {
      const xr = lin(p.wih, I, p.bih, 0, x);
      const hr = lin(p.whh, H, p.bhh, 0, h);
      const xz = lin(p.wih, I, p.bih, 1, x);
      const hz = lin(p.whh, H, p.bhh, 1, h);
      const r = xr.map((v, j) => gateOf(v + hr[j]));
      const z = xz.map((v, j) => gateOf(v + hz[j]));
      const xn = lin(p.wih, I, p.bih, 2, x);
      let n: number[];
      if (spec.resetAfter ?? true) {
        // n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        const hn = lin(p.whh, H, p.bhh, 2, h);
        n = xn.map((v, j) => Math.tanh(v + r[j] * hn[j]));
      } else {
        // n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
        const rh = h.map((hj, j) => r[j] * hj);
        const hn = lin(p.whh, H, p.bhh, 2, rh);
        n = xn.map((v, j) => Math.tanh(v + hn[j]));
      }
      return { h: n.map((nj, j) => (1 - z[j]) * nj + z[j] * h[j]), c };
    }
  }
}

/** The whole stack with packed-sequence semantics: y [T, B, D*H] (0 past a row's length), hn/cn [L*D, B, H]. */
export function referenceForward(
  spec: RefSpec,
  params: Record<string, ArrayLike<number>>,
  input: RefInput,
  observe?: GateObserver,
): { y: Float64Array; hn: Float64Array; cn: Float64Array } {
  const H = spec.hiddenSize;
  const L = spec.numLayers ?? 1;
  const D = spec.bidirectional ? 2 : 1;
  const { T, B } = input;
  const hn = new Float64Array(L * D * B * H);
  const cn = new Float64Array(L * D * B * H);
  let layerIn: ArrayLike<number> = input.x;
  let I = spec.inputSize;
  let y = new Float64Array(0);
  for (let k = 0; k < L; ++k) {
    y = new Float64Array(T * B * D * H);
    for (let d = 0; d < D; ++d) {
      const sfx = `_l${k}${d === 1 ? '_reverse' : ''}`;
      const p = {
        wih: params[`weight_ih${sfx}`],
        whh: params[`weight_hh${sfx}`],
        bih: params[`bias_ih${sfx}`],
        bhh: params[`bias_hh${sfx}`],
      };
      const slot = k * D + d;
      for (let b = 0; b < B; ++b) {
        const len = input.lengths ? input.lengths[b] : T;
        const base = (slot * B + b) * H;
        let h = Array.from({ length: H }, (_, j) => (input.h0 ? input.h0[base + j] : 0));
        let c = Array.from({ length: H }, (_, j) => (input.c0 ? input.c0[base + j] : 0));
        for (let s = 0; s < len; ++s) {
          const t = d === 1 ? len - 1 - s : s;
          const xt = Array.from({ length: I }, (_, i) => layerIn[(t * B + b) * I + i]);
          ({ h, c } = referenceCell(spec, p, I, H, xt, h, c, observe));
          for (let j = 0; j < H; ++j) y[(t * B + b) * D * H + d * H + j] = h[j];
        }
        for (let j = 0; j < H; ++j) {
          hn[base + j] = h[j];
          cn[base + j] = c[j];
        }
      }
    }
    layerIn = y;
    I = D * H;
  }
  return { y, hn, cn };
}

/** Whether |a_i - b_i| <= atol + rtol*|b_i| everywhere (and the lengths agree): the worst excess, its index, max |a-b|. */
export function maxExcess(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number) {
  let worst = -Infinity;
  let at = -1;
  let maxAbsDiff = 0;
  if (a.length !== b.length) return { ok: false, worst: Infinity, at: -1, maxAbsDiff: Infinity };
  for (let i = 0; i < a.length; ++i) {
    const diff = Math.abs(a[i] - b[i]);
    const excess = diff - (atol + rtol * Math.abs(b[i]));
    if (excess > worst || Number.isNaN(excess)) {
      worst = excess;
      at = i;
    }
    maxAbsDiff = Math.max(maxAbsDiff, diff);
  }
  return { ok: a.length > 0 && worst <= 0, worst, at, maxAbsDiff };
}
