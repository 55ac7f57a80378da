// Gradient checks by finite differences, independent of the golden files: the analytic gradients of the native
// backpropagation through time (forwardSync({train:true}) + backwardSync / lossSync) against central differences of
// a scalar objective evaluated in float64 from the float32 forward. Plus forward checks of the GRU variants and LSTM
// against a plain-JS reference, and the accumulation / zeroGrad contract of parameter gradients.
import t, { type Test } from 'tap';
import {
  RecurrentNetwork,
  backendInfo,
  type CellType,
  type GateActivation,
  type RecurrentSpec,
  type SequenceBatch,
} from '../lib';
import {
  Lcg,
  stratifiedProbes,
  centralDifference,
  compareProbes,
  referenceForward,
  maxExcess,
  type Derivative,
} from './helpers/finite-difference';

// ---------------------------------------------------------------------------------------------------------------
// Tolerances. The network computes in float32; the objective is accumulated in float64 in JS.

const EPS = 1e-2; // smooth cells
const EPS_RELU = 2e-3; // piecewise-linear cell: estimates at eps and eps/2 are compared to detect kinks
const ATOL = 3e-4;
const RTOL = 1e-2;
/** A probed tensor must carry a gradient: otherwise the comparison would be vacuous. */
const MIN_SIGNAL = 10 * ATOL;
/**
 * Hard-sigmoid gates: the least distance of every gate pre-activation from the kinks at -2.5 and 2.5. A probe moves
 * one value by at most EPS, which shifts a pre-activation by far less than this, so no central difference straddles
 * a kink and the derivative there is never at stake.
 */
const KINK_MARGIN = 0.05;

t.comment(`gemm: ${backendInfo().gemm}`);

// ---------------------------------------------------------------------------------------------------------------
// Case description and set-up.

type Objective = 'linear' | 'crossEntropy' | 'mse';

interface GradCase {
  name: string;
  cell: CellType;
  resetAfter?: boolean;
  gateActivation?: GateActivation;
  inputSize?: number;
  vocabSize?: number;
  hidden: number;
  layers?: number;
  bidirectional?: boolean;
  head?: number;
  T: number;
  B: number;
  lengths?: number[];
  h0?: boolean;
  c0?: boolean;
  batchFirst?: boolean;
  objective: Objective;
  /** Cross-entropy: class ids at these flat positions are -1 (ignored). */
  ignored?: number[];
  /** Linear objective: which upstream gradients are given (default all: dOutput, dhn and, for LSTM, dcn). */
  upstream?: ('output' | 'hn' | 'cn')[];
  /** Before the check, run a training forward + backward on a larger batch with lengths and h0 (buffer reuse). */
  warmup?: boolean;
  seed: number;
}

interface Setup {
  net: RecurrentNetwork;
  input: SequenceBatch;
  x?: Float32Array;
  h0?: Float32Array;
  c0?: Float32Array;
  params: Record<string, Float32Array>;
  L: number;
  D: number;
  H: number;
  N: number;
  F: number;
}

function specOf(c: GradCase): RecurrentSpec {
  return {
    cell: c.cell,
    resetAfter: c.resetAfter,
    gateActivation: c.gateActivation,
    inputSize: c.inputSize,
    vocabSize: c.vocabSize,
    hiddenSize: c.hidden,
    numLayers: c.layers ?? 1,
    bidirectional: c.bidirectional ?? false,
    headSize: c.head ?? 0,
    seed: 1234,
  };
}

/** Parameters drawn from the test's own LCG (independent of the native initialisation). */
function randomParams(
  net: RecurrentNetwork,
  cell: CellType,
  H: number,
  rng: Lcg,
  gates: GateActivation = 'sigmoid',
): Record<string, Float32Array> {
  const params: Record<string, Float32Array> = {};
  for (const name of net.paramNames()) {
    const shape = net.paramShape(name);
    const size = shape.reduce((a, b) => a * b, 1);
    let v: Float32Array;
    if (gates === 'hard_sigmoid' && !name.startsWith('head.')) {
      v = hardSigmoidParams(name, size, H, rng);
    } else if (cell === 'rnn_relu' && name.startsWith('bias_ih')) {
      // Keep most pre-activations away from the kink at 0: half the units clearly on, half clearly off (for the
      // first steps), with a little noise.
      v = new Float32Array(size);
      for (let i = 0; i < size; ++i) v[i] = (i % H) % 2 === 0 ? rng.uniform(0.7, 1.1) : rng.uniform(-1.1, -0.7);
    } else if (cell === 'rnn_relu' && !name.startsWith('head.')) {
      v = rng.floats(size, -0.3, 0.3);
    } else {
      v = rng.floats(size, -0.6, 0.6);
    }
    net.setParam(name, v);
    params[name] = v;
  }
  return params;
}

/**
 * Parameters for hard-sigmoid gates that exercise both of its pieces yet keep every gate pre-activation away from the
 * kinks: by (unit + gate) % 4 a gate unit sits on the slope (0, 2: bias near 0), clipped at 1 (1: bias about +4.2) or
 * clipped at 0 (3: about -4.2); inputs and states move a pre-activation by much less than the 1.7 to a kink.
 * The candidate rows (LSTM g, GRU n: the third gate block) keep ordinary biases.
 */
function hardSigmoidParams(name: string, size: number, H: number, rng: Lcg): Float32Array {
  if (!name.startsWith('bias_ih')) {
    const bound = name.startsWith('bias') ? 0.2 : 0.5;
    return rng.floats(size, -bound, bound);
  }
  const v = new Float32Array(size);
  for (let i = 0; i < size; ++i) {
    const gate = Math.floor(i / H);
    const kind = gate === 2 ? 0 : ((i % H) + gate) % 4;
    v[i] = kind === 1 ? rng.uniform(4.0, 4.4) : kind === 3 ? rng.uniform(-4.4, -4.0) : rng.uniform(-0.3, 0.3);
  }
  return v;
}

function setUp(c: GradCase, rng: Lcg): Setup {
  const net = new RecurrentNetwork(specOf(c));
  const L = c.layers ?? 1;
  const D = c.bidirectional ? 2 : 1;
  const H = c.hidden;
  const N = c.T * c.B;
  const F = c.head ? c.head : D * H;
  const params = randomParams(net, c.cell, H, rng, c.gateActivation);
  const input: SequenceBatch = { batchFirst: c.batchFirst ?? false };
  let x: Float32Array | undefined;
  if (c.vocabSize) {
    // Every symbol occurs, so every column of weight_ih_l0 gets a gradient.
    const tokens = new Int32Array(N);
    for (let i = 0; i < N; ++i) tokens[i] = i < c.vocabSize ? i : rng.int(c.vocabSize);
    for (let i = N - 1; i > 0; --i) {
      const j = rng.int(i + 1);
      [tokens[i], tokens[j]] = [tokens[j], tokens[i]];
    }
    input.tokens = { data: tokens, shape: c.batchFirst ? [c.B, c.T] : [c.T, c.B] };
  } else {
    x = rng.floats(N * c.inputSize!, -1, 1);
    input.x = { data: x, shape: c.batchFirst ? [c.B, c.T, c.inputSize!] : [c.T, c.B, c.inputSize!] };
  }
  if (c.lengths) input.lengths = c.lengths;
  let h0: Float32Array | undefined;
  let c0: Float32Array | undefined;
  if (c.h0) input.h0 = h0 = rng.floats(L * D * c.B * H, -0.8, 0.8);
  if (c.c0) input.c0 = c0 = rng.floats(L * D * c.B * H, -0.8, 0.8);
  return { net, input, x, h0, c0, params, L, D, H, N, F };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; ++i) s += a[i] * b[i];
  return s;
}

/** Flat index of (t, b) in a sequence tensor's row order. */
function rowIndex(t: number, b: number, T: number, B: number, batchFirst: boolean): number {
  return batchFirst ? b * T + t : t * B + b;
}

// ---------------------------------------------------------------------------------------------------------------
// The gradient check of one case.

/**
 * Hard-sigmoid cases (dense, time-major input): the float64 reference, fed the same values, computes the network's
 * final state; its gate pre-activations keep KINK_MARGIN from the kinks and fall on both sides of them, so the
 * clipped pieces (gradient 0) and the slope (0.2) are both checked.
 */
function checkHardSigmoidRegions(tt: Test, c: GradCase, s: Setup, out: ReturnType<RecurrentNetwork['forwardSync']>) {
  const pre: number[] = [];
  const spec = {
    cell: c.cell, resetAfter: c.resetAfter, gateActivation: c.gateActivation, inputSize: c.inputSize!,
    hiddenSize: c.hidden, numLayers: s.L, bidirectional: c.bidirectional,
  };
  const input = { x: s.x!, T: c.T, B: c.B, lengths: c.lengths, h0: s.h0, c0: s.c0 };
  const ref = referenceForward(spec, s.params, input, (v) => pre.push(v));
  const hn = maxExcess(out.hn, ref.hn, 1e-5, 1e-5);
  tt.ok(hn.ok, `hn equals the float64 reference's (max |diff| ${hn.maxAbsDiff.toExponential(2)})`);
  const withSigmoid = referenceForward({ ...spec, gateActivation: 'sigmoid' }, s.params, input);
  const apart = maxExcess(out.hn, withSigmoid.hn, 0, 0).maxAbsDiff;
  tt.ok(apart > 1e-2, `and differs from sigmoid gates' (max |diff| ${apart.toFixed(4)})`);
  const nearest = Math.min(...pre.map((v) => Math.abs(Math.abs(v) - 2.5)));
  const clipped = pre.filter((v) => Math.abs(v) > 2.5).length;
  tt.ok(nearest >= KINK_MARGIN, `no gate pre-activation within ${KINK_MARGIN} of a kink (nearest ${nearest.toFixed(3)})`);
  tt.ok(clipped > pre.length / 10 && pre.length - clipped > pre.length / 10,
    `gates on both pieces: ${clipped} of ${pre.length} pre-activations clipped`);
}

async function checkCase(tt: Test, c: GradCase): Promise<void> {
  const rng = new Lcg(c.seed);
  const s = setUp(c, rng);
  const { net, input, L, D, H, N, F } = s;
  const lstm = c.cell === 'lstm';
  const relu = c.cell === 'rnn_relu';
  const stateSize = L * D * c.B * H;

  // Whether output row i (the input's layout) lies past its row's length: the losses leave it out.
  const past = (i: number): boolean => {
    if (!c.lengths) return false;
    const b = c.batchFirst ? Math.floor(i / c.T) : i % c.B;
    const t = c.batchFirst ? i % c.T : Math.floor(i / c.B);
    return t >= c.lengths[b];
  };

  // The objective and its upstream gradients.
  let objective: (out: ReturnType<RecurrentNetwork['forwardSync']>) => number;
  let analytic: () => { dx?: Float32Array; dh0: Float32Array; dc0?: Float32Array; loss?: number };
  let scale = 1; // compare scale*gradient: the objectives that are means are compared as sums
  if (c.objective === 'linear') {
    const upstream = c.upstream ?? ['output', 'hn', 'cn'];
    const R = upstream.includes('output') ? rng.floats(N * F, -1, 1) : undefined;
    const Rh = upstream.includes('hn') ? rng.floats(stateSize, -1, 1) : undefined;
    const Rc = lstm && upstream.includes('cn') ? rng.floats(stateSize, -1, 1) : undefined;
    objective = (out) =>
      (R ? dot(out.output.data, R) : 0) + (Rh ? dot(out.hn, Rh) : 0) + (Rc ? dot(out.cn!, Rc) : 0);
    analytic = () => net.backwardSync({ dOutput: R, dhn: Rh, dcn: Rc });
  } else if (c.objective === 'crossEntropy') {
    const classes = new Int32Array(N);
    for (let i = 0; i < N; ++i) classes[i] = rng.int(F);
    for (const i of c.ignored ?? []) classes[i] = -1;
    // Positions past a row's length are out of the loss whatever their target (an invalid class there is not read).
    for (let i = 0; i < N; ++i) if (past(i)) classes[i] = i % 2 ? F + 7 : -3;
    const counts = (i: number): boolean => classes[i] >= 0 && classes[i] < F && !past(i);
    let counted = 0;
    for (let i = 0; i < N; ++i) counted += counts(i) ? 1 : 0;
    scale = counted;
    objective = (out) => {
      let total = 0;
      const z = out.output.data;
      for (let i = 0; i < N; ++i) {
        if (!counts(i)) continue;
        let m = -Infinity;
        for (let k = 0; k < F; ++k) m = Math.max(m, z[i * F + k]);
        let sum = 0;
        for (let k = 0; k < F; ++k) sum += Math.exp(z[i * F + k] - m);
        total += Math.log(sum) + m - z[i * F + classes[i]];
      }
      return total / counted;
    };
    analytic = () =>
      net.lossSync({ classes: { data: classes, shape: c.batchFirst ? [c.B, c.T] : [c.T, c.B] } });
  } else {
    const values = rng.floats(N * F, -1, 1);
    let counted = 0;
    for (let i = 0; i < N; ++i) counted += past(i) ? 0 : F;
    scale = counted;
    objective = (out) => {
      let total = 0;
      const y = out.output.data;
      for (let i = 0; i < y.length; ++i) if (!past(Math.floor(i / F))) total += (y[i] - values[i]) ** 2;
      return total / counted;
    };
    const shape = c.batchFirst ? [c.B, c.T, F] : [c.T, c.B, F];
    analytic = () => net.lossSync({ kind: 'mse', values: { data: values, shape } });
  }

  const evaluate = (): number => objective(net.forwardSync(input, { train: true }));

  if (c.warmup) {
    // A larger batch with lengths and an initial state first: the check below must not see anything of it.
    const T2 = c.T + 2;
    const B2 = c.B + 1;
    const big: SequenceBatch = {
      batchFirst: !(c.batchFirst ?? false),
      lengths: Array.from({ length: B2 }, (_, b) => 1 + ((b * 3) % T2)),
      h0: rng.floats(L * D * B2 * H, -1, 1),
      c0: lstm ? rng.floats(L * D * B2 * H, -1, 1) : undefined,
    };
    if (c.vocabSize) {
      big.tokens = { data: Int32Array.from({ length: T2 * B2 }, () => rng.int(c.vocabSize!)), shape: [T2, B2] };
    } else big.x = { data: rng.floats(T2 * B2 * c.inputSize!, -2, 2), shape: [T2, B2, c.inputSize!] };
    if (big.batchFirst) {
      const shape = (big.x ?? big.tokens)!.shape;
      [shape[0], shape[1]] = [shape[1], shape[0]];
    }
    const o = net.forwardSync(big, { train: true });
    net.backwardSync({ dOutput: rng.floats(o.output.data.length, -1, 1), dhn: rng.floats(o.hn.length, -1, 1) });
  }

  // Analytic gradients.
  net.zeroGrad();
  const out = net.forwardSync(input, { train: true });
  if (c.gateActivation === 'hard_sigmoid') checkHardSigmoidRegions(tt, c, s, out);
  const L0 = objective(out);
  const grads = analytic();
  const paramGrads: Record<string, Float32Array> = {};
  for (const name of net.paramNames()) paramGrads[name] = net.getGrad(name).data;

  tt.ok(Number.isFinite(L0) && Math.abs(L0) > 1e-3, `objective is finite and non-trivial (${L0.toFixed(5)})`);
  if (grads.loss !== undefined) {
    tt.ok(
      Math.abs(grads.loss - L0) <= 1e-5 * Math.max(1, Math.abs(L0)),
      `lossSync returns the loss (${grads.loss} vs ${L0} computed in JS)`,
    );
  }
  // The inference path computes the same function.
  const inferred = net.forwardSync(input, { train: false });
  const infDiff = maxExcess(inferred.output.data, out.output.data, 1e-6, 0);
  const infHn = maxExcess(inferred.hn, out.hn, 1e-6, 0);
  const infMax = Math.max(infDiff.maxAbsDiff, infHn.maxAbsDiff);
  tt.ok(infDiff.ok && infHn.ok, `inference forward equals the training forward (max diff ${infMax})`);

  let skippedTotal = 0;
  let probedTotal = 0;
  const eps = relu ? EPS_RELU : EPS;
  const report = (what: string, probes: { index: number; analytic: number; numeric: Derivative }[]) => {
    const scaled = probes.map((p) => ({
      index: p.index,
      analytic: p.analytic * scale,
      numeric: { value: p.numeric.value * scale, stable: p.numeric.stable },
    }));
    const cmp = compareProbes(scaled, ATOL, RTOL);
    skippedTotal += cmp.skipped;
    probedTotal += probes.length;
    const w = cmp.worst;
    const detail =
      `${cmp.checked} entries` +
      (cmp.skipped ? ` (${cmp.skipped} skipped at relu kinks)` : '') +
      (w ? `, worst [${w.index}] analytic ${w.analytic.toPrecision(6)} numeric ${w.numeric.toPrecision(6)}` : '') +
      `, rel. error norm ${cmp.relErrorNorm.toExponential(2)}`;
    tt.ok(cmp.ok && cmp.checked > 0 && cmp.maxNumeric > MIN_SIGNAL, `${what}: ${detail}`, {
      maxNumeric: cmp.maxNumeric,
    });
  };

  // Every parameter tensor, gate by gate. Clipped hard-sigmoid gates leave about half the rows without a gradient:
  // twice the probes there keep every tensor's check from being vacuous.
  const probesPerTensor = c.gateActivation === 'hard_sigmoid' ? 16 : 8;
  for (const name of net.paramNames()) {
    const value = s.params[name];
    const recurrent = !name.startsWith('head.');
    const G = recurrent ? net.paramShape(name)[0] / H : 1;
    const idx = recurrent
      ? stratifiedProbes(rng, value.length, G, Math.max(2, Math.ceil(probesPerTensor / G)))
      : rng.distinct(0, value.length, 8);
    const commit = () => net.setParam(name, value);
    report(
      `d ${name}`,
      idx.map((i) => ({
        index: i,
        analytic: paramGrads[name][i],
        numeric: centralDifference(value, i, eps, evaluate, commit, relu),
      })),
    );
  }

  // Input gradients: the arrays in `input` are perturbed in place.
  const probeInput = (what: string, value: Float32Array, grad: Float32Array, idx: number[]) =>
    report(
      what,
      idx.map((i) => ({ index: i, analytic: grad[i], numeric: centralDifference(value, i, eps, evaluate, undefined, relu) })),
    );
  const perSlot = Math.max(2, Math.ceil(8 / (L * D)));
  if (s.x) {
    tt.ok(grads.dx !== undefined && grads.dx.length === s.x.length, 'dx has the shape of x');
    probeInput('dx', s.x, grads.dx!, rng.distinct(0, s.x.length, 10));
  } else {
    tt.equal(grads.dx, undefined, 'token input has no dx');
  }
  if (s.h0) probeInput('dh0', s.h0, grads.dh0, stratifiedProbes(rng, stateSize, L * D, perSlot));
  if (s.c0) probeInput('dc0', s.c0, grads.dc0!, stratifiedProbes(rng, stateSize, L * D, perSlot));

  // Packed sequences: outputs and input gradients past a row's length are exactly zero.
  if (c.lengths) {
    const bf = c.batchFirst ?? false;
    let outPad = 0;
    let dxPad = 0;
    let padded = 0;
    for (let b = 0; b < c.B; ++b)
      for (let tIdx = c.lengths[b]; tIdx < c.T; ++tIdx) {
        const r = rowIndex(tIdx, b, c.T, c.B, bf);
        ++padded;
        if (!c.head) for (let f = 0; f < F; ++f) outPad = Math.max(outPad, Math.abs(out.output.data[r * F + f]));
        if (s.x && grads.dx)
          for (let i = 0; i < c.inputSize!; ++i) dxPad = Math.max(dxPad, Math.abs(grads.dx[r * c.inputSize! + i]));
      }
    tt.ok(
      padded > 0 && outPad === 0 && dxPad === 0,
      `past each row's length: output${c.head ? '' : ' and dx'} are 0 (${padded} padded steps)`,
    );
  }

  if (relu) tt.ok(skippedTotal <= probedTotal / 5, `few probes skipped at relu kinks (${skippedTotal}/${probedTotal})`);
  net.dispose();
}

// ---------------------------------------------------------------------------------------------------------------
// The cases.

const CELLS: { label: string; cell: CellType; resetAfter?: boolean }[] = [
  { label: 'rnn_tanh', cell: 'rnn_tanh' },
  { label: 'rnn_relu', cell: 'rnn_relu' },
  { label: 'lstm', cell: 'lstm' },
  { label: 'gru (reset-after)', cell: 'gru', resetAfter: true },
  { label: 'gru (reset-before)', cell: 'gru', resetAfter: false },
];

type Layout = Omit<GradCase, 'name' | 'cell' | 'resetAfter' | 'seed' | 'objective'> & { label: string };

const T = 5;
const LAYOUTS: Layout[] = [
  { label: 'single layer, zero initial state', inputSize: 3, hidden: 4, T, B: 2 },
  { label: 'single layer, given h0/c0', inputSize: 3, hidden: 4, T, B: 3, h0: true, c0: true },
  { label: 'stacked (3 layers), given h0/c0', inputSize: 3, hidden: 3, layers: 3, T: 4, B: 2, h0: true, c0: true },
  { label: 'bidirectional, given h0/c0', inputSize: 3, hidden: 4, bidirectional: true, T, B: 2, h0: true, c0: true },
  {
    label: 'stacked (2 layers) + bidirectional',
    inputSize: 3, hidden: 3, layers: 2, bidirectional: true, T: 4, B: 2, h0: true, c0: true,
  },
  {
    label: 'lengths [T, 1, T-2], stacked + bidirectional',
    inputSize: 3, hidden: 3, layers: 2, bidirectional: true, T, B: 3, lengths: [T, 1, T - 2], h0: true, c0: true,
  },
  {
    label: 'lengths [T-2, T, 1], unidirectional, zero state',
    inputSize: 2, hidden: 4, T, B: 3, lengths: [T - 2, T, 1],
  },
  {
    label: 'batchFirst, bidirectional, lengths [2, T, 1], given h0/c0',
    inputSize: 3, hidden: 4, bidirectional: true, T, B: 3, lengths: [2, T, 1], h0: true, c0: true, batchFirst: true,
  },
  {
    label: 'dense input + head (linear objective)',
    inputSize: 3, hidden: 4, layers: 2, head: 3, T: 4, B: 2, h0: true, c0: true,
  },
  {
    label: 'upstream gradient through hn/cn only (no dOutput), stacked + bidirectional, lengths',
    inputSize: 3, hidden: 3, layers: 2, bidirectional: true, T: 4, B: 3, lengths: [2, 4, 1], h0: true, c0: true,
    upstream: ['hn', 'cn'],
  },
  {
    // Batches this wide run the recurrent products from weights packed once per pass (forward and backward), where
    // the narrow batches above read them in place.
    label: 'a batch of 33, bidirectional, lengths, given h0/c0',
    inputSize: 3, hidden: 3, bidirectional: true, T: 3, B: 33,
    lengths: Array.from({ length: 33 }, (_, i) => 1 + (i % 3)), h0: true, c0: true,
  },
  {
    label: 'upstream gradient through the output only, after a larger batch with lengths and h0',
    inputSize: 3, hidden: 4, bidirectional: true, head: 2, T: 4, B: 2, upstream: ['output'], warmup: true,
  },
];

let seed = 1;
for (const cell of CELLS) {
  t.test(`${cell.label}: analytic gradients match central differences`, async (tc) => {
    for (const layout of LAYOUTS) {
      const { label, ...rest } = layout;
      const c: GradCase = {
        ...rest,
        name: label,
        cell: cell.cell,
        resetAfter: cell.resetAfter,
        c0: rest.c0 && cell.cell === 'lstm',
        objective: 'linear',
        seed: seed++ * 7919,
      };
      await tc.test(label, (tt) => checkCase(tt, c));
    }
  });
}

t.test('losses through lossSync, and other upstream gradients: gradients match central differences', async (tc) => {
  const lossCases: GradCase[] = [];
  for (const cell of CELLS) {
    lossCases.push({
      name: `${cell.label}: tokens + head, softmax cross-entropy`,
      cell: cell.cell, resetAfter: cell.resetAfter,
      vocabSize: 5, hidden: 4, head: 5, T: 5, B: 3, objective: 'crossEntropy', seed: seed++ * 7919,
    });
  }
  lossCases.push(
    {
      name: 'lstm: upstream gradient through cn only, 2 layers bidirectional, lengths',
      cell: 'lstm', inputSize: 3, hidden: 3, layers: 2, bidirectional: true, T: 4, B: 3, lengths: [4, 1, 3], h0: true,
      c0: true, upstream: ['cn'], objective: 'linear', seed: seed++ * 7919,
    },
    {
      name: 'gru (reset-before): tokens + head, after a larger batch with lengths and h0, cross-entropy',
      cell: 'gru', resetAfter: false, vocabSize: 5, hidden: 4, layers: 2, head: 5, T: 4, B: 2, warmup: true,
      objective: 'crossEntropy', seed: seed++ * 7919,
    },
    {
      name: 'lstm: tokens + head, 2 layers bidirectional, lengths, h0/c0, ignored targets (-1), cross-entropy',
      cell: 'lstm', vocabSize: 6, hidden: 4, layers: 2, bidirectional: true, head: 4, T: 5, B: 3,
      lengths: [5, 2, 4], h0: true, c0: true, ignored: [1, 7], objective: 'crossEntropy', seed: seed++ * 7919,
    },
    {
      name: 'gru: tokens + head, batchFirst, lengths (invalid targets past them), ignored targets (-1), cross-entropy',
      cell: 'gru', vocabSize: 5, hidden: 4, head: 3, T: 5, B: 3, lengths: [2, 5, 3], batchFirst: true,
      ignored: [6], objective: 'crossEntropy', seed: seed++ * 7919,
    },
    {
      name: 'gru (reset-before): tokens + head, batchFirst, h0, cross-entropy',
      cell: 'gru', resetAfter: false, vocabSize: 4, hidden: 4, head: 3, T: 4, B: 3, h0: true, batchFirst: true,
      objective: 'crossEntropy', seed: seed++ * 7919,
    },
    {
      name: 'gru (reset-after): dense input + head, mse',
      cell: 'gru', inputSize: 3, hidden: 4, head: 2, T: 5, B: 2, h0: true, objective: 'mse', seed: seed++ * 7919,
    },
    {
      name: 'lstm: dense input, no head (output = top layer), 2 layers bidirectional, mse',
      cell: 'lstm', inputSize: 3, hidden: 3, layers: 2, bidirectional: true, T: 4, B: 2, h0: true, c0: true,
      objective: 'mse', seed: seed++ * 7919,
    },
    {
      name: 'rnn_tanh: dense input + head, batchFirst, lengths, mse',
      cell: 'rnn_tanh', inputSize: 2, hidden: 4, head: 3, T: 4, B: 3, lengths: [4, 1, 2], batchFirst: true,
      h0: true, objective: 'mse', seed: seed++ * 7919,
    },
    {
      name: 'gru (reset-before): dense input, no head, lengths, mse',
      cell: 'gru', resetAfter: false, inputSize: 3, hidden: 4, bidirectional: true, T: 5, B: 3, lengths: [5, 1, 3],
      h0: true, objective: 'mse', seed: seed++ * 7919,
    },
  );
  for (const c of lossCases) await tc.test(c.name, (tt) => checkCase(tt, c));
});

// ---------------------------------------------------------------------------------------------------------------
// Forward against a plain-JS reference.

t.test('forward matches a plain-JS float64 reference', async (tc) => {
  const configs: {
    label: string;
    cell: CellType;
    resetAfter?: boolean;
    layers?: number;
    bidirectional?: boolean;
    lengths?: number[];
    B: number;
    T: number;
  }[] = [
    { label: 'gru reset-before, single layer, h0', cell: 'gru', resetAfter: false, B: 2, T: 5 },
    {
      label: 'gru reset-before, 2 layers bidirectional, lengths, h0',
      cell: 'gru', resetAfter: false, layers: 2, bidirectional: true, lengths: [4, 1, 3], B: 3, T: 4,
    },
    { label: 'gru reset-after, single layer, h0', cell: 'gru', resetAfter: true, B: 2, T: 5 },
    { label: 'lstm, single layer, h0/c0', cell: 'lstm', B: 2, T: 5 },
  ];
  let s = 99;
  for (const cfg of configs) {
    await tc.test(cfg.label, async (tt) => {
      const rng = new Lcg(s++ * 104729);
      const I = 3;
      const H = 4;
      const L = cfg.layers ?? 1;
      const D = cfg.bidirectional ? 2 : 1;
      const spec = {
        cell: cfg.cell,
        resetAfter: cfg.resetAfter,
        inputSize: I,
        hiddenSize: H,
        numLayers: L,
        bidirectional: !!cfg.bidirectional,
      };
      const net = new RecurrentNetwork({ ...spec, seed: 7 });
      const params: Record<string, Float32Array> = {};
      for (const name of net.paramNames()) {
        const v = rng.floats(net.getParam(name).data.length, -0.8, 0.8);
        net.setParam(name, v);
        params[name] = v;
      }
      const x = rng.floats(cfg.T * cfg.B * I, -1.5, 1.5);
      const h0 = rng.floats(L * D * cfg.B * H, -0.9, 0.9);
      const lstm = cfg.cell === 'lstm';
      const c0 = lstm ? rng.floats(L * D * cfg.B * H, -0.9, 0.9) : undefined;
      const out = net.forwardSync({ x: { data: x, shape: [cfg.T, cfg.B, I] }, h0, c0, lengths: cfg.lengths });
      const ref = referenceForward(spec, params, { x, T: cfg.T, B: cfg.B, lengths: cfg.lengths, h0, c0 });
      const y = maxExcess(out.output.data, ref.y, 1e-5, 1e-5);
      const hn = maxExcess(out.hn, ref.hn, 1e-5, 1e-5);
      tt.same(out.output.shape, [cfg.T, cfg.B, D * H], 'output shape');
      tt.ok(y.ok, `y matches (max |diff| ${y.maxAbsDiff.toExponential(2)})`);
      tt.ok(hn.ok, `hn matches (max |diff| ${hn.maxAbsDiff.toExponential(2)})`);
      if (lstm) {
        const cn = maxExcess(out.cn!, ref.cn, 1e-5, 1e-5);
        tt.ok(cn.ok, `cn matches (max |diff| ${cn.maxAbsDiff.toExponential(2)})`);
      }
      // The check tells the variants apart: the other GRU variant (or a GRU for the LSTM) differs clearly.
      const otherSpec = { ...spec, resetAfter: !(cfg.resetAfter ?? true) };
      const other =
        cfg.cell === 'gru' ? referenceForward(otherSpec, params, { x, T: cfg.T, B: cfg.B, lengths: cfg.lengths, h0 }) : null;
      if (other) {
        const d = maxExcess(out.output.data, other.y, 0, 0);
        tt.ok(d.maxAbsDiff > 1e-2, `differs from the other GRU variant (max |diff| ${d.maxAbsDiff.toFixed(4)})`);
      }
      net.dispose();
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Accumulation and zeroGrad.

t.test('parameter gradients accumulate across backward calls and zeroGrad resets them', async (tc) => {
  for (const cell of CELLS) {
    await tc.test(cell.label, async (tt) => {
      const rng = new Lcg(4242);
      const c: GradCase = {
        name: 'accumulate', cell: cell.cell, resetAfter: cell.resetAfter, inputSize: 3, hidden: 4, layers: 2,
        bidirectional: true, head: 3, T: 4, B: 3, lengths: [4, 2, 3], h0: true, c0: cell.cell === 'lstm',
        objective: 'linear', seed: 1,
      };
      const s = setUp(c, rng);
      const { net, input, N, F, L, D, H } = s;
      const R = rng.floats(N * F, -1, 1);
      const Rh = rng.floats(L * D * c.B * H, -1, 1);
      const names = net.paramNames();
      const snapshot = () => names.map((n) => net.getGrad(n).data);
      const norm = (gs: Float32Array[]) => Math.sqrt(gs.reduce((a, g) => a + dot(g, g), 0));

      net.zeroGrad();
      net.forwardSync(input, { train: true });
      const first = net.backwardSync({ dOutput: R, dhn: Rh });
      const g1 = snapshot();
      tt.ok(norm(g1) > 1e-2, `one backward gives non-zero gradients (norm ${norm(g1).toFixed(4)})`);
      tt.ok(g1.every((g) => dot(g, g) > 0), 'every parameter tensor receives a gradient');
      tt.ok(Math.abs(net.gradNorm() - norm(g1)) <= 1e-5 * norm(g1), 'gradNorm() is the L2 norm of the gradients');

      const second = net.backwardSync({ dOutput: R, dhn: Rh });
      const g2 = snapshot();
      let worst = 0;
      for (let k = 0; k < names.length; ++k)
        for (let i = 0; i < g1[k].length; ++i)
          worst = Math.max(worst, Math.abs(g2[k][i] - 2 * g1[k][i]) / (1e-6 + Math.abs(2 * g1[k][i])));
      tt.ok(
        worst <= 1e-5,
        `a second backward doubles every parameter gradient (worst rel. diff ${worst.toExponential(2)})`,
      );
      const dxSame = maxExcess(second.dx!, first.dx!, 0, 0);
      const dh0Same = maxExcess(second.dh0, first.dh0, 0, 0);
      tt.ok(dxSame.ok && dh0Same.ok, 'input gradients are returned, not accumulated (same dx, dh0 both times)');

      net.zeroGrad();
      const z = snapshot();
      tt.ok(z.every((g) => g.every((v) => v === 0)), 'zeroGrad sets every gradient to 0');
      tt.equal(net.gradNorm(), 0, 'gradNorm() is 0 after zeroGrad');

      net.backwardSync({ dOutput: R, dhn: Rh });
      const g3 = snapshot();
      const same = g3.every((g, k) => maxExcess(g, g1[k], 1e-7, 1e-6).ok);
      tt.ok(same, 'after zeroGrad, backward gives the single-call gradients again');

      // The loss path accumulates too.
      net.zeroGrad();
      const classes = Int32Array.from({ length: N }, () => rng.int(F));
      net.forwardSync(input, { train: true });
      const l1 = net.lossSync({ classes });
      const gl1 = snapshot();
      const l2 = net.lossSync({ classes });
      const gl2 = snapshot();
      let worstLoss = 0;
      for (let k = 0; k < names.length; ++k)
        for (let i = 0; i < gl1[k].length; ++i)
          worstLoss = Math.max(worstLoss, Math.abs(gl2[k][i] - 2 * gl1[k][i]) / (1e-6 + Math.abs(2 * gl1[k][i])));
      tt.ok(
        norm(gl1) > 1e-3 && worstLoss <= 1e-5,
        `lossSync twice doubles the gradients (worst rel. diff ${worstLoss.toExponential(2)})`,
      );
      tt.equal(l1.loss, l2.loss, 'the loss is the same both times');
      net.dispose();
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Hard-sigmoid gates (TF.js's default recurrentActivation), with parameters from hardSigmoidParams.

t.test('hard-sigmoid gates: analytic gradients match central differences', async (tc) => {
  const layouts: Layout[] = [
    { label: 'single layer, given h0/c0', inputSize: 3, hidden: 4, T, B: 3, h0: true, c0: true },
    {
      label: 'lengths [T, 1, T-2], stacked + bidirectional, given h0/c0',
      inputSize: 3, hidden: 3, layers: 2, bidirectional: true, T, B: 3, lengths: [T, 1, T - 2], h0: true, c0: true,
    },
    { label: 'dense input + head', inputSize: 3, hidden: 4, layers: 2, head: 3, T: 4, B: 2, h0: true, c0: true },
  ];
  for (const cell of CELLS.filter((x) => x.cell === 'lstm' || x.cell === 'gru')) {
    for (const { label, ...rest } of layouts) {
      const c: GradCase = {
        ...rest,
        name: `${cell.label}, ${label}`,
        cell: cell.cell,
        resetAfter: cell.resetAfter,
        gateActivation: 'hard_sigmoid',
        c0: rest.c0 && cell.cell === 'lstm',
        objective: 'linear',
        seed: seed++ * 7919,
      };
      await tc.test(c.name, (tt) => checkCase(tt, c));
    }
  }
});
