// ONNX out: a Sequential model becomes an inference graph (opset 14) whose inputs and outputs have the shapes and
// layout of `model.predict`: batch-first, `[batch, time]` int32 token ids or `[batch, time, features]` floats in,
// the last layer's output out, with `batch` and `time` left symbolic.
//
// Inside, the graph is time-major, because ONNX Runtime's recurrent kernels only take `layout = 0`: one Transpose
// after the input and one before the output. Each recurrent layer becomes one ONNX RNN / LSTM / GRU node per stacked
// layer, with the weights reordered from PyTorch's gate order (LSTM i,f,g,o; GRU r,z,n) to ONNX's (LSTM i,o,f,c;
// GRU z,r,h), and the two biases side by side as ONNX's B = [Wb, Rb]. A reset-after GRU (PyTorch's, rnnkit's
// default) is `linear_before_reset = 1`; reset-before is 0. goBackwards is `direction = reverse`, whose outputs stay
// aligned with their input steps and whose final state is the one after step 0, as in rnnkit. Dropout is left out:
// it does nothing at inference.
//
// Packed sequences: with `lengths: true` the graph takes an int32 `lengths` input `[batch]` and gives it to every
// recurrent node as `sequence_lens`; ONNX then treats each row as rnnkit does (steps past a row's length output
// zeros and leave the state alone; the reverse direction starts at the row's last valid step).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rnnkitError } from '../../errors';
import type { NativeLayerSpec } from '../../native';
import type { LayerConfig } from '../../layers';
import type { Tensor } from '../../tensor';
import { GraphBuilder, type Dim } from './graph';
import { DataType } from './schema';

export interface OnnxExportOptions {
  /**
   * Add an int32 graph input `lengths` of shape `[batch]`: the valid steps of each row, as `predict`'s `lengths`
   * option (default false: every row runs over all steps).
   */
  lengths?: boolean;
  /**
   * Add, for every recurrent layer, graph inputs `<layer>_h0` (and `<layer>_c0` for an LSTM) of shape
   * `[numLayers * directions, batch, units]` and outputs `<layer>_hn` (and `<layer>_cn`), as `predictWithState`'s
   * initial and final states (default false: zero initial states, no state outputs).
   */
  states?: boolean;
  /** The graph's name (default 'rnnkit'). */
  graphName?: string;
}

/** One layer as the exporter sees it: the native pipeline's normalized spec, plus the builder config it came from. */
export interface ExportLayer {
  spec: NativeLayerSpec & { name: string };
  config?: LayerConfig;
}

export interface ExportSource {
  vocabSize: number;
  inputSize: number;
  layers: ExportLayer[];
  weights: Record<string, Tensor>;
  /** Stored as the model's metadata_props (a vocabulary, say, travels with the graph). */
  metadata?: Record<string, string>;
}

/**
 * ONNX's W [D, G*H, I], R [D, G*H, H] and B [D, 2*G*H] of stacked layer k of the PyTorch-named recurrent layer
 * `layer` (`<layer>.weight_ih_l<k>[_reverse]`, ...), gates reordered as `order` says (GATE_ORDER), as initializers.
 */
export function onnxRecurrentWeights(
  g: GraphBuilder, weight: (name: string) => Tensor, layer: string, k: number, D: number, G: number, H: number,
  inputSize: number, order: number[],
): { W: string; R: string; B: string } {
  const W = new Float32Array(D * G * H * inputSize);
  const R = new Float32Array(D * G * H * H);
  const B = new Float32Array(D * 2 * G * H);
  for (let d = 0; d < D; d++) {
    const suffix = `_l${k}${d === 1 ? '_reverse' : ''}`;
    const wih = weight(`${layer}.weight_ih${suffix}`).data;
    const whh = weight(`${layer}.weight_hh${suffix}`).data;
    const bih = weight(`${layer}.bias_ih${suffix}`).data;
    const bhh = weight(`${layer}.bias_hh${suffix}`).data;
    if (wih.length !== G * H * inputSize)
      throw rnnkitError('ERR_RNNKIT_INTERNAL', `toOnnx: '${layer}.weight_ih${suffix}' has ${wih.length} values, expected ${G * H * inputSize}`);
    order.forEach((from, to) => {
      const block = (src: Float32Array, width: number): Float32Array => src.subarray(from * H * width, (from + 1) * H * width);
      W.set(block(wih, inputSize), (d * G + to) * H * inputSize);
      R.set(block(whh, H), (d * G + to) * H * H);
      B.set(block(bih, 1), d * 2 * G * H + to * H);
      B.set(block(bhh, 1), d * 2 * G * H + (G + to) * H);
    });
  }
  return {
    W: g.floats(`${layer}.W_l${k}`, [D, G * H, inputSize], W),
    R: g.floats(`${layer}.R_l${k}`, [D, G * H, H], R),
    B: g.floats(`${layer}.B_l${k}`, [D, 2 * G * H], B),
  };
}

type RecurrentSpec = Extract<NativeLayerSpec, { type: 'recurrent' }> & { name: string };

// Where PyTorch's gate block k goes in ONNX's order: ONNX block j takes PyTorch block ORDER[j].
export const GATE_ORDER: Record<string, number[]> = {
  rnn_tanh: [0],
  rnn_relu: [0],
  lstm: [0, 3, 1, 2], // i, o, f, c  <-  i, f, g, o
  gru: [1, 0, 2], // z, r, h  <-  r, z, n
};

const DENSE_ACTIVATIONS: Record<string, string | null> = {
  linear: null, softmax: 'Softmax', sigmoid: 'Sigmoid', tanh: 'Tanh', relu: 'Relu',
};

// TF.js's hardSigmoid is clip(0.2 x + 0.5, 0, 1): ONNX's HardSigmoid with these parameters.
const HARD_SIGMOID_ALPHA = 0.2;
const HARD_SIGMOID_BETA = 0.5;

function notExportable(layer: string, why: string): Error {
  return rnnkitError('ERR_RNNKIT_ARGUMENT', `toOnnx: layer '${layer}' cannot be exported to ONNX: ${why}`);
}

/** The current value of the graph: its name, whether it is time-major, and its rank. */
interface Flow {
  value: string;
  timeMajor: boolean;
  /** 'ids': [B, T] token ids; 'sequence': [B|T, T|B, F]; 'vector': [B, F] (a recurrent layer's last step). */
  kind: 'ids' | 'sequence' | 'vector';
  features: number;
}

class OnnxWriter {
  readonly g = new GraphBuilder();
  readonly #src: ExportSource;
  readonly #options: OnnxExportOptions;
  readonly #lengths: string;

  constructor(src: ExportSource, options: OnnxExportOptions) {
    this.#src = src;
    this.#options = options;
    this.#lengths = options.lengths ? this.g.input('lengths', DataType.INT32, ['batch']) : '';
  }

  #weight(name: string): Tensor {
    const w = this.#src.weights[name];
    if (!w) throw rnnkitError('ERR_RNNKIT_INTERNAL', `toOnnx: the model has no parameter '${name}'`);
    return w;
  }

  #timeMajor(flow: Flow): Flow {
    if (flow.timeMajor || flow.kind === 'vector') return flow;
    const perm = flow.kind === 'ids' ? [1, 0] : [1, 0, 2];
    return { ...flow, value: this.g.op('Transpose', [flow.value], 'time_major', { perm }), timeMajor: true };
  }

  batchFirst(flow: Flow): Flow {
    if (!flow.timeMajor || flow.kind === 'vector') return flow;
    return { ...flow, value: this.g.op('Transpose', [flow.value], 'batch_first', { perm: [1, 0, 2] }), timeMajor: false };
  }

  embedding(spec: Extract<NativeLayerSpec, { type: 'embedding' }> & { name: string }, flow: Flow): Flow {
    if (flow.kind !== 'ids') throw notExportable(spec.name, 'an embedding must read the token ids');
    const w = this.#weight(`${spec.name}.weight`);
    const table = this.g.floats(`${spec.name}.weight`, w.shape, w.data);
    // Transposing the ids first is cheaper than transposing the vectors afterwards.
    const ids = this.#timeMajor(flow);
    return { value: this.g.op('Gather', [table, ids.value], spec.name, { axis: 0 }), timeMajor: true, kind: 'sequence', features: w.shape[1] };
  }

  dense(spec: Extract<NativeLayerSpec, { type: 'dense' }> & { name: string }, flow: Flow): Flow {
    const act = spec.activation ?? 'linear';
    if (!(act in DENSE_ACTIVATIONS)) throw notExportable(spec.name, `activation '${act}' has no ONNX equivalent here`);
    if (flow.kind === 'ids') throw notExportable(spec.name, 'a dense layer cannot read token ids; put an embedding first');
    const w = this.#weight(`${spec.name}.weight`);
    const b = this.#weight(`${spec.name}.bias`);
    // PyTorch's [out, in] layout is kept in the file; the graph transposes it (folded into a constant by runtimes).
    const wt = this.g.op('Transpose', [this.g.floats(`${spec.name}.weight`, w.shape, w.data)], `${spec.name}.weight_t`, { perm: [1, 0] });
    let y = this.g.op('MatMul', [flow.value, wt], `${spec.name}_matmul`);
    y = this.g.op('Add', [y, this.g.floats(`${spec.name}.bias`, b.shape, b.data)], act === 'linear' ? spec.name : `${spec.name}_linear`);
    const onnxAct = DENSE_ACTIVATIONS[act];
    // Softmax over the last axis (opset 13's definition), as rnnkit's dense softmax.
    if (onnxAct) y = this.g.op(onnxAct, [y], spec.name, onnxAct === 'Softmax' ? { axis: -1 } : {});
    return { ...flow, value: y, features: spec.units };
  }

  recurrent(spec: RecurrentSpec, config: LayerConfig | undefined, flow: Flow): Flow {
    const cell = spec.cell;
    const gateOrder = GATE_ORDER[cell];
    if (!gateOrder) throw notExportable(spec.name, `unknown cell '${String(cell)}'`);
    const activations = this.#cellActivations(spec, config);
    const H = spec.hiddenSize;
    const L = spec.numLayers ?? 1;
    const D = spec.bidirectional ? 2 : 1;
    const G = gateOrder.length;
    const direction = spec.bidirectional ? 'bidirectional' : spec.goBackwards ? 'reverse' : 'forward';
    const op = cell === 'lstm' ? 'LSTM' : cell === 'gru' ? 'GRU' : 'RNN';
    const lstm = cell === 'lstm';

    let x: Flow;
    if (flow.kind === 'ids') {
      // A recurrent layer over token ids reads them one-hot.
      const ids = this.#timeMajor(flow);
      const ids64 = this.g.op('Cast', [ids.value], `${spec.name}_ids`, { to: DataType.INT64 });
      const depth = this.g.int64s(`${spec.name}_vocab`, [this.#src.vocabSize]);
      const onOff = this.g.floats(`${spec.name}_one_hot_values`, [2], Float32Array.of(0, 1));
      x = { value: this.g.op('OneHot', [ids64, depth, onOff], `${spec.name}_one_hot`, { axis: -1 }), timeMajor: true, kind: 'sequence', features: this.#src.vocabSize };
    } else if (flow.kind === 'vector') {
      throw notExportable(spec.name, 'it reads the output of a layer with returnSequences false (one vector per row, no time axis)');
    } else {
      x = this.#timeMajor(flow);
    }

    let h0 = '';
    let c0 = '';
    if (this.#options.states) {
      h0 = this.g.input(`${spec.name}_h0`, DataType.FLOAT, [L * D, 'batch', H]);
      if (lstm) c0 = this.g.input(`${spec.name}_c0`, DataType.FLOAT, [L * D, 'batch', H]);
    }
    const sliceLayer = (all: string, k: number, what: string): string => {
      if (!all || L === 1) return all;
      const starts = this.g.int64s(`${spec.name}_l${k}_${what}_start`, [k * D]);
      const ends = this.g.int64s(`${spec.name}_l${k}_${what}_end`, [(k + 1) * D]);
      const axes = this.g.int64s(`${spec.name}_l${k}_${what}_axis`, [0]);
      return this.g.op('Slice', [all, starts, ends, axes], `${spec.name}_l${k}_${what}`);
    };

    const hns: string[] = [];
    const cns: string[] = [];
    let seq = x.value;
    let inputSize = x.features;
    for (let k = 0; k < L; k++) {
      const { W, R, B } = this.#stackedWeights(spec.name, k, D, G, H, inputSize, gateOrder);
      const last = k === L - 1;
      const wantY = !last || (spec.returnSequences ?? false);
      const wantYh = (last && !(spec.returnSequences ?? false)) || !!this.#options.states;
      const wantYc = lstm && !!this.#options.states;
      const inputs = [seq, W, R, B, this.#lengths, sliceLayer(h0, k, 'h0')];
      if (lstm) inputs.push(sliceLayer(c0, k, 'c0'));
      // Trailing absent optional inputs are dropped, as ONNX allows.
      while (inputs[inputs.length - 1] === '') inputs.pop();
      const outs = this.g.node(op, inputs, [
        wantY ? `${spec.name}_l${k}_y` : '',
        wantYh ? `${spec.name}_l${k}_hn` : '',
        ...(lstm ? [wantYc ? `${spec.name}_l${k}_cn` : ''] : []),
      ], {
        hidden_size: H,
        direction,
        ...(cell === 'gru' ? { linear_before_reset: spec.resetAfter === false ? 0 : 1 } : {}),
        ...activations(D),
      });
      while (outs[outs.length - 1] === '') outs.pop();
      hns.push(outs[1]);
      if (wantYc) cns.push(outs[2]);
      if (wantY) seq = last && spec.merge === 'sum' && D === 2 ? this.#sumDirections(outs[0], 1, spec.name) : this.#joinDirections(outs[0], D, `${spec.name}_l${k}_out`);
      inputSize = D * H;
    }
    if (this.#options.states) {
      const hn = L === 1 ? hns[0] : this.g.op('Concat', hns, `${spec.name}_hn_all`, { axis: 0 });
      this.g.output(hn, `${spec.name}_hn`, DataType.FLOAT, [L * D, 'batch', H]);
      if (lstm) {
        const cn = L === 1 ? cns[0] : this.g.op('Concat', cns, `${spec.name}_cn_all`, { axis: 0 });
        this.g.output(cn, `${spec.name}_cn`, DataType.FLOAT, [L * D, 'batch', H]);
      }
    }
    const features = spec.merge === 'sum' || D === 1 ? H : D * H;
    if (spec.returnSequences ?? false) return { value: seq, timeMajor: true, kind: 'sequence', features };
    // The last step's output is each direction's final state of the top layer: Y_h, [D, B, H].
    const top = hns[L - 1];
    let vector: string;
    if (D === 1) vector = this.g.op('Squeeze', [top, this.g.int64s('axis_0', [0])], spec.name);
    else if (spec.merge === 'sum') vector = this.#sumDirections(top, 0, spec.name);
    else {
      const rows = this.g.op('Transpose', [top], `${spec.name}_rows`, { perm: [1, 0, 2] });
      vector = this.g.op('Reshape', [rows, this.g.int64s('shape_keep_flatten', [0, -1])], spec.name);
    }
    return { value: vector, timeMajor: false, kind: 'vector', features };
  }

  /** Y [T, D, B, H] as [T, B, D * H]: the directions side by side, forward first (rnnkit's concat merge). */
  #joinDirections(y: string, D: number, name: string): string {
    if (D === 1) return this.g.op('Squeeze', [y, this.g.int64s('axis_1', [1])], name);
    const steps = this.g.op('Transpose', [y], `${name}_steps`, { perm: [0, 2, 1, 3] });
    return this.g.op('Reshape', [steps, this.g.int64s('shape_keep_keep_flatten', [0, 0, -1])], name);
  }

  #sumDirections(y: string, axis: number, name: string): string {
    return this.g.op('ReduceSum', [y, this.g.int64s(`axis_${axis}`, [axis])], name, { keepdims: 0 });
  }

  #stackedWeights(layer: string, k: number, D: number, G: number, H: number, inputSize: number, order: number[]): { W: string; R: string; B: string } {
    return onnxRecurrentWeights(this.g, (name) => this.#weight(name), layer, k, D, G, H, inputSize, order);
  }

  /** The node's activation attributes for D directions (nothing where ONNX's defaults are rnnkit's). */
  #cellActivations(spec: RecurrentSpec, config: LayerConfig | undefined): (D: number) => Record<string, string[] | { floats: number[] } | undefined> {
    const extra = (config ?? {}) as { recurrentActivation?: unknown; activation?: unknown };
    // The native spec says what the engine computes; the builder config is the fallback for specs without it.
    const gate = spec.gateActivation === 'hard_sigmoid' ? 'hardSigmoid' : extra.recurrentActivation ?? 'sigmoid';
    const repeat = <T>(list: T[], D: number): T[] => Array.from({ length: D }, () => list).flat();
    if (spec.cell === 'rnn_tanh' || spec.cell === 'rnn_relu') {
      if (extra.recurrentActivation !== undefined)
        throw notExportable(spec.name, `a simple RNN has no gates, so recurrentActivation ${JSON.stringify(gate)} means nothing`);
      const f = spec.cell === 'rnn_relu' ? 'Relu' : 'Tanh';
      return (D) => ({ activations: repeat([f], D) });
    }
    if (extra.activation !== undefined && extra.activation !== 'tanh')
      throw notExportable(spec.name, `activation ${JSON.stringify(extra.activation)} is not supported (only 'tanh')`);
    if (gate === 'sigmoid') return () => ({});
    if (gate !== 'hardSigmoid')
      throw notExportable(spec.name, `recurrentActivation ${JSON.stringify(gate)} is not supported (only 'sigmoid' and 'hardSigmoid')`);
    const perDirection = spec.cell === 'lstm' ? ['HardSigmoid', 'Tanh', 'Tanh'] : ['HardSigmoid', 'Tanh'];
    // alpha and beta are consumed only by the activations that take them: one pair per HardSigmoid.
    return (D) => ({
      activations: repeat(perDirection, D),
      activation_alpha: { floats: repeat([HARD_SIGMOID_ALPHA], D) },
      activation_beta: { floats: repeat([HARD_SIGMOID_BETA], D) },
    });
  }
}

/** rnnkit's version, for the model's producer_version (the package root is three folders up, from lib/io/onnx/ or dist/io/onnx/). */
export function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '';
  }
}

/** Encode a model description as an ONNX ModelProto. */
export function exportOnnx(src: ExportSource, options: OnnxExportOptions = {}): Uint8Array {
  if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'toOnnx() takes an options object');
  for (const key of ['lengths', 'states'] as const)
    if (options[key] !== undefined && typeof options[key] !== 'boolean')
      throw rnnkitError('ERR_RNNKIT_TYPE', `toOnnx: options.${key} must be a boolean`);
  if (options.graphName !== undefined && typeof options.graphName !== 'string')
    throw rnnkitError('ERR_RNNKIT_TYPE', 'toOnnx: options.graphName must be a string');
  const layers = src.layers.filter((l) => l.spec.type !== 'dropout');
  if (layers.length === 0) throw rnnkitError('ERR_RNNKIT_STATE', 'toOnnx: the model has no layers to export');

  const w = new OnnxWriter(src, options);
  const inputDims: Dim[] = src.vocabSize ? ['batch', 'time'] : ['batch', 'time', src.inputSize];
  const inputName = src.vocabSize ? 'tokens' : 'input';
  let flow: Flow = {
    value: w.g.input(inputName, src.vocabSize ? DataType.INT32 : DataType.FLOAT, inputDims),
    timeMajor: false,
    kind: src.vocabSize ? 'ids' : 'sequence',
    features: src.inputSize,
  };
  for (const { spec, config } of layers) {
    switch (spec.type) {
      case 'embedding': flow = w.embedding(spec, flow); break;
      case 'recurrent': flow = w.recurrent(spec, config, flow); break;
      case 'dense': flow = w.dense(spec, flow); break;
      default: throw notExportable((spec as { name: string }).name, `layer type '${(spec as { type: string }).type}' has no ONNX equivalent here`);
    }
  }
  if (flow.kind === 'ids') throw rnnkitError('ERR_RNNKIT_STATE', 'toOnnx: the model outputs its token ids unchanged; nothing to export');
  flow = w.batchFirst(flow);
  w.g.output(flow.value, 'output', DataType.FLOAT, flow.kind === 'vector' ? ['batch', flow.features] : ['batch', 'time', flow.features]);
  return w.g.encode({ graphName: options.graphName ?? 'rnnkit', producerVersion: packageVersion(), metadata: src.metadata });
}
