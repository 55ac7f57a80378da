// A model over any acyclic graph of layers (several inputs and outputs, fan-out, concatenation, states handed from
// layer to layer, dense projections into initial states, Luong attention, repeat-vector), run by the native graph
// executor (native/core/graph_network.cc): forward, backward through every edge, the losses and the optimizer are
// native. This class names things and checks what the user passes; it computes nothing. Inputs and targets are
// Keras-style: one tensor, an array in the model's order, or an object by name; tensors are batch-first.
import { rnnkitError } from '../errors';
import { checkOptions, integerOption, booleanOption, functionOption, choiceOption } from '../options';
import { native, type NativeGraph, type NativeGraphInput, type NativeGraphLoss, type NativeGraphStats } from '../native';
import type { OptimizerConfig } from '../optimizers';
import { SeededRandom } from '../random';
import type { Tensor, IntTensor } from '../tensor';
import { readModelFile, writeFileAtomic } from '../io/files';
import { graphFileBuffer, type GraphJSON } from '../io/graph-file';
import type { NamedTensor } from '../io/safetensors';
import type { DeviceName } from '../native';
import { compilePlan, type GraphPlan } from './compile';
import { compileGraphFile } from './rebuild';

export type GraphLossName = 'softmaxCrossEntropy' | 'mse';
/** Per-row lengths of a sequence input (packed-sequence semantics): each in [1, steps]. */
export type GraphLengths = Int32Array | number[];
/** One tensor (a one-input model), an array in the model's input order, or an object by input name. */
export type GraphData = Tensor | IntTensor | (Tensor | IntTensor)[] | Record<string, Tensor | IntTensor>;
/** Targets: one per output with a loss (null or absent for the others), in order or by output name. */
export type GraphTargets = Tensor | IntTensor | (Tensor | IntTensor | null)[] | Record<string, Tensor | IntTensor | null>;
/** Lengths of the sequence inputs: in input order or by input name (absent: every row full). */
export type GraphLengthsOption = GraphLengths | (GraphLengths | null | undefined)[] | Record<string, GraphLengths>;

export interface GraphCompileOptions {
  optimizer: OptimizerConfig;
  /**
   * The loss of each output: one name for every output, an array in output order or an object by output name; null
   * (or absent from the object) for an output without a loss. softmaxCrossEntropy reads logits (a linear or softmax
   * dense layer) and class ids; target positions equal to `ignoreIndex` and positions past a row's length are left
   * out. The model's loss is the sum over outputs, weighted by lossWeights.
   */
  loss: GraphLossName | (GraphLossName | null)[] | Record<string, GraphLossName | null>;
  lossWeights?: number[] | Record<string, number>;
  /** 'accuracy': the share of counted positions whose largest logit is the target class, over cross-entropy outputs. */
  metrics?: 'accuracy'[];
  /** Scale the gradients so that their global L2 norm is at most this (PyTorch's clip_grad_norm_). */
  clipNorm?: number;
  /** The class id that marks a padding target (default -1). */
  ignoreIndex?: number;
}

export interface GraphLogs {
  loss: number;
  /** Each output's own loss (unweighted), by output name. */
  losses: Record<string, number>;
  accuracy?: number;
}

export interface GraphFitOptions {
  epochs?: number;
  batchSize?: number;
  /** Shuffle the rows every epoch (default true), from `seed` when given. */
  shuffle?: boolean;
  seed?: number;
  lengths?: GraphLengthsOption;
  validationData?: { x: GraphData; y: GraphTargets; lengths?: GraphLengthsOption };
  callbacks?: {
    onEpochEnd?: (epoch: number, logs: GraphLogs & { valLoss?: number; valAccuracy?: number }) => void | Promise<void>;
    onStepEnd?: (step: number, logs: GraphLogs) => void | Promise<void>;
  };
  signal?: AbortSignal;
  /**
   * A batch whose loss or gradient norm is not finite is never applied (the weights and the optimizer state stay as
   * they were): 'error' (default) rejects with ERR_RNNKIT_NON_FINITE, 'skip' goes on and counts it.
   */
  nonFinite?: 'error' | 'skip';
}

export interface GraphHistory {
  /** Steps not applied because their loss or gradient norm was not finite (with `nonFinite: 'skip'`). */
  skippedSteps: number;
  loss: number[];
  accuracy?: number[];
  valLoss: number[];
  valAccuracy?: number[];
}

/** A layer of the summary: name, kind, output widths and parameter count. */
export interface GraphLayerSummary {
  name: string;
  type: string;
  inputs: string[];
  outputs: { name: string; kind: string; features: number }[];
  params: number;
}

interface Batch {
  inputs: NativeGraphInput[];
  targets: (Float32Array | Int32Array | null)[];
  rows: number;
}

const isTensorLike = (v: unknown): v is { data: ArrayLike<number>; shape: number[] } =>
  typeof v === 'object' && v !== null && 'data' in v && 'shape' in v && Array.isArray((v as Tensor).shape);

function takeRows(data: ArrayLike<number>, per: number, rows: number[], Ctor: Float32ArrayConstructor | Int32ArrayConstructor): Float32Array | Int32Array {
  const out = new Ctor(rows.length * per);
  for (let i = 0; i < rows.length; i++) {
    const start = rows[i] * per;
    if (data instanceof Float32Array || data instanceof Int32Array) out.set(data.subarray(start, start + per), i * per);
    else for (let j = 0; j < per; j++) out[i * per + j] = data[start + j];
  }
  return out;
}

/**
 * A graph model over the native graph executor. What rebuilds one (`save` / `load`): the symbolic graph as
 * lib/io/graph-file.ts stores it (`graph`: inputs, layers with their configs and names, edges, outputs), rebuilt
 * through the layer constructors and compiled again to the same plan, and the weights by PyTorch-style name
 * (`getWeights` / `setWeights`). The optimizer state is not part of it.
 */
export class GraphModel {
  readonly #net: NativeGraph;
  readonly #plan: GraphPlan;
  readonly #inputNames: string[];
  readonly #outputNames: string[];
  readonly #graph: GraphJSON;
  #losses: NativeGraphLoss[] | null = null;
  #compiled: { clipNorm: number; accuracy: boolean } | null = null;

  /** @internal Made by `model()`. */
  constructor(plan: GraphPlan, outputNames: string[], graph: GraphJSON) {
    this.#plan = plan;
    this.#graph = graph;
    this.#net = new native.Graph(plan);
    this.#inputNames = plan.inputs.map((i) => i.name);
    this.#outputNames = outputNames;
  }

  /** The input names, in the order arrays of inputs follow. */
  get inputNames(): readonly string[] {
    return this.#inputNames;
  }
  /** The output names (the output tensors' names: `<layer>` or `<layer>/h`, `<layer>/weights`...), in order. */
  get outputNames(): readonly string[] {
    return this.#outputNames;
  }
  /** The symbolic graph as a file stores it (plain JSON): inputs, layers with configs and names, edges, outputs. */
  get graph(): GraphJSON {
    return JSON.parse(JSON.stringify(this.#graph)) as GraphJSON;
  }
  /** The native plan this model runs (plain data: inputs, numbered tensors, nodes with their layer specs). */
  get plan(): GraphPlan {
    return JSON.parse(JSON.stringify(this.#plan)) as GraphPlan;
  }

  // ---- argument checks: one place per concern ----

  #byName<T>(value: unknown, names: readonly string[], what: string, single: (v: unknown) => boolean): (T | undefined)[] {
    if (names.length === 1 && single(value)) return [value as T];
    if (Array.isArray(value)) {
      if (value.length !== names.length)
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `graph model: ${what}: ${value.length} given in an array, the model has ${names.length} (${names.join(', ')}; null for one that takes none)`);
      return value as (T | undefined)[];
    }
    if (typeof value !== 'object' || value === null || single(value))
      throw rnnkitError('ERR_RNNKIT_TYPE', `graph model: ${what} must be an array in order [${names.join(', ')}] or an object by name`);
    for (const key of Object.keys(value))
      if (!names.includes(key))
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `graph model: ${what} has '${key}', which is not one of the model's names (${names.join(', ')})`);
    return names.map((n) => (value as Record<string, T>)[n]);
  }

  #inputs(x: GraphData, lengths: GraphLengthsOption | undefined): NativeGraphInput[] {
    const xs = this.#byName<Tensor | IntTensor>(x, this.#inputNames, 'the inputs', isTensorLike);
    const isLengths = (v: unknown): boolean => v instanceof Int32Array || (Array.isArray(v) && v.every((e) => typeof e === 'number'));
    const ls = lengths === undefined ? [] : this.#byName<GraphLengths>(lengths, this.#inputNames, 'lengths', isLengths);
    return xs.map((t, i) => {
      const name = this.#inputNames[i];
      if (!isTensorLike(t)) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `graph model: input '${name}' is missing (a tensor { data, shape })`);
      const l = ls[i];
      return l === undefined || l === null ? { data: t.data as Float32Array, shape: t.shape } : { data: t.data as Float32Array, shape: t.shape, lengths: l };
    });
  }

  #targets(y: GraphTargets): (Float32Array | Int32Array | null)[] {
    const losses = this.#requireCompiled();
    const ys = this.#byName<Tensor | IntTensor | null>(y, this.#outputNames, 'the targets', isTensorLike);
    return ys.map((t, k) => {
      const loss = losses[k];
      if (loss.kind === 'none') return null;
      const name = this.#outputNames[k];
      if (t === undefined || t === null) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `graph model: output '${name}' has a loss but no target`);
      const data = isTensorLike(t) ? t.data : (t as unknown);
      if (loss.kind === 'crossEntropy') {
        if (data instanceof Int32Array) return data;
        if (Array.isArray(data)) return Int32Array.from(data);
        throw rnnkitError('ERR_RNNKIT_TYPE', `graph model: the target of '${name}' (softmaxCrossEntropy) must hold class ids (Int32Array or number[])`);
      }
      if (data instanceof Float32Array) return data;
      if (Array.isArray(data)) return Float32Array.from(data);
      throw rnnkitError('ERR_RNNKIT_TYPE', `graph model: the target of '${name}' (mse) must be a Float32Array`);
    });
  }

  #requireCompiled(): NativeGraphLoss[] {
    if (!this.#losses) throw rnnkitError('ERR_RNNKIT_STATE', 'graph model: call compile() before training or evaluating');
    return this.#losses;
  }

  #rowsOf(inputs: NativeGraphInput[]): number {
    const rows = inputs[0].shape[0];
    inputs.forEach((t, i) => {
      if (t.shape[0] !== rows)
        throw rnnkitError('ERR_RNNKIT_SHAPE', `graph model: input '${this.#inputNames[i]}' has ${t.shape[0]} rows, '${this.#inputNames[0]}' has ${rows}`);
    });
    return rows;
  }

  #batch(x: GraphData, y: GraphTargets | null, lengths: GraphLengthsOption | undefined): Batch {
    const inputs = this.#inputs(x, lengths);
    return { inputs, targets: y === null ? [] : this.#targets(y), rows: this.#rowsOf(inputs) };
  }

  /** Rows `idx` of a whole batch (every input, its lengths, every target). */
  #slice(b: Batch, idx: number[]): Batch {
    const inputs = b.inputs.map((t) => {
      const per = t.shape.slice(1).reduce((a, c) => a * c, 1);
      const data = takeRows(t.data, per, idx, t.data instanceof Float32Array ? Float32Array : Int32Array);
      const out: NativeGraphInput = { data, shape: [idx.length, ...t.shape.slice(1)] };
      if (t.lengths) out.lengths = takeRows(t.lengths, 1, idx, Int32Array) as Int32Array;
      return out;
    });
    const targets = b.targets.map((t) => (t === null ? null : takeRows(t, t.length / b.rows, idx, t instanceof Float32Array ? Float32Array : Int32Array)));
    return { inputs, targets, rows: idx.length };
  }

  #logs(s: NativeGraphStats): GraphLogs {
    const losses: Record<string, number> = {};
    this.#outputNames.forEach((n, k) => {
      if (this.#losses![k].kind !== 'none') losses[n] = s.outputLosses[k];
    });
    const logs: GraphLogs = { loss: s.loss, losses };
    if (this.#compiled?.accuracy) {
      let counted = 0;
      let correct = 0;
      this.#losses!.forEach((l, k) => {
        if (l.kind === 'crossEntropy') {
          counted += s.counted[k];
          correct += s.correct[k];
        }
      });
      logs.accuracy = counted ? correct / counted : 0;
    }
    return logs;
  }

  // ---- the Keras-style surface ----

  compile(options: GraphCompileOptions): this {
    if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'compile() takes { optimizer, loss, lossWeights?, metrics?, clipNorm?, ignoreIndex? }');
    checkOptions(options, 'compile options', ['optimizer', 'loss', 'lossWeights', 'metrics', 'clipNorm', 'ignoreIndex']);
    if (options.loss === undefined) throw rnnkitError('ERR_RNNKIT_ARGUMENT', "compile() needs a loss: 'softmaxCrossEntropy' or 'mse' (per output: an array or an object by output name)");
    const names = this.#outputNames;
    const isName = (v: unknown): boolean => typeof v === 'string';
    const perOutput = typeof options.loss === 'string' ? names.map(() => options.loss as GraphLossName)
      : this.#byName<GraphLossName | null>(options.loss, names, 'loss', isName);
    const weights = options.lossWeights === undefined ? [] : this.#byName<number>(options.lossWeights, names, 'lossWeights', (v) => typeof v === 'number');
    const ignoreIndex = integerOption(options.ignoreIndex, 'ignoreIndex', -2147483648, -1, 2147483647);
    const losses = perOutput.map((l, k): NativeGraphLoss => {
      const kind = l === null || l === undefined ? 'none' : choiceOption(l, `the loss of '${names[k]}'`, ['softmaxCrossEntropy', 'mse'] as const, 'mse');
      const w = weights[k];
      if (w !== undefined && (typeof w !== 'number' || !Number.isFinite(w) || w < 0))
        throw rnnkitError('ERR_RNNKIT_VALUE', `lossWeights of '${names[k]}' must be a finite number >= 0`);
      return { kind: kind === 'none' ? 'none' : kind === 'mse' ? 'mse' : 'crossEntropy', ignoreIndex, weight: w ?? 1 };
    });
    if (losses.every((l) => l.kind === 'none')) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'compile(): no output has a loss');
    let accuracy = false;
    if (options.metrics !== undefined) {
      if (!Array.isArray(options.metrics)) throw rnnkitError('ERR_RNNKIT_TYPE', "metrics must be an array of metric names ('accuracy')");
      for (const m of options.metrics) if (m !== 'accuracy') throw rnnkitError('ERR_RNNKIT_ARGUMENT', `unknown metric ${JSON.stringify(m)}; known metrics: accuracy`);
      accuracy = options.metrics.length > 0;
      if (accuracy && !losses.some((l) => l.kind === 'crossEntropy'))
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', "the 'accuracy' metric needs an output with the softmaxCrossEntropy loss");
    }
    const clipNorm = options.clipNorm ?? 0;
    if (typeof clipNorm !== 'number' || !(clipNorm >= 0) || !Number.isFinite(clipNorm)) throw rnnkitError('ERR_RNNKIT_VALUE', 'clipNorm must be a finite number >= 0');
    if (accuracy) for (const l of losses) if (l.kind === 'crossEntropy') l.accuracy = true;
    this.#net.setOptimizer(options.optimizer);
    this.#losses = losses;
    this.#compiled = { clipNorm, accuracy };
    return this;
  }

  /** One optimizer step on a batch; returns its loss (and accuracy with metrics: ['accuracy']). */
  async trainOnBatch(x: GraphData, y: GraphTargets, options: { lengths?: GraphLengthsOption } = {}): Promise<GraphLogs> {
    checkOptions(options, 'trainOnBatch options', ['lengths']);
    const losses = this.#requireCompiled();
    const b = this.#batch(x, y, options.lengths);
    return this.#logs(await this.#net.trainStep(b.inputs, losses, b.targets, { clipNorm: this.#compiled!.clipNorm }));
  }

  /** The loss (and metrics) over x / y, in batches, without training. */
  async evaluate(x: GraphData, y: GraphTargets, options: { lengths?: GraphLengthsOption; batchSize?: number } = {}): Promise<GraphLogs> {
    checkOptions(options, 'evaluate options', ['lengths', 'batchSize']);
    this.#requireCompiled();
    return this.#evaluateBatch(this.#batch(x, y, options.lengths), integerOption(options.batchSize, 'batchSize', 1, 256));
  }

  async #evaluateBatch(all: Batch, batchSize: number): Promise<GraphLogs> {
    const losses = this.#requireCompiled();
    const K = losses.length;
    const sum = new Array<number>(K).fill(0);
    const counted = new Array<number>(K).fill(0);
    const correct = new Array<number>(K).fill(0);
    const batches = new Array<number>(K).fill(0);
    for (let start = 0; start < all.rows; start += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, all.rows - start) }, (_, i) => start + i);
      const b = idx.length === all.rows ? all : this.#slice(all, idx);
      const s = await this.#net.evaluate(b.inputs, losses, b.targets);
      for (let k = 0; k < K; k++) {
        // Means over counted positions, combined by their counts (a batch with nothing counted adds nothing).
        sum[k] += s.outputLosses[k] * (s.counted[k] || 0);
        counted[k] += s.counted[k];
        correct[k] += s.correct[k];
        batches[k]++;
      }
    }
    const outputLosses = sum.map((v, k) => (counted[k] ? v / counted[k] : 0));
    const loss = outputLosses.reduce((a, v, k) => a + (losses[k].weight ?? 1) * v, 0);
    return this.#logs({ loss, gradNorm: 0, outputLosses, counted, correct });
  }

  /** The outputs for x: one tensor for a one-output model, else an array in output order. */
  async predict(x: GraphData, options: { lengths?: GraphLengthsOption } = {}): Promise<Tensor | Tensor[]> {
    checkOptions(options, 'predict options', ['lengths']);
    const inputs = this.#inputs(x, options.lengths);
    this.#rowsOf(inputs);
    const out = await this.#net.forward(inputs);
    return out.length === 1 ? out[0] : out;
  }

  /** predict's synchronous twin (blocks the event loop: for small batches). */
  predictSync(x: GraphData, options: { lengths?: GraphLengthsOption } = {}): Tensor | Tensor[] {
    checkOptions(options, 'predict options', ['lengths']);
    const inputs = this.#inputs(x, options.lengths);
    this.#rowsOf(inputs);
    const out = this.#net.forwardSync(inputs);
    return out.length === 1 ? out[0] : out;
  }

  /** Epochs over the rows of x / y in batches; the mean loss of each epoch (weighted by rows) in the history. */
  async fit(x: GraphData, y: GraphTargets, options: GraphFitOptions = {}): Promise<GraphHistory> {
    checkOptions(options, 'fit options', ['epochs', 'batchSize', 'shuffle', 'seed', 'lengths', 'validationData', 'callbacks', 'signal', 'nonFinite']);
    const skip = choiceOption(options.nonFinite, 'nonFinite', ['error', 'skip'] as const, 'error') === 'skip';
    const losses = this.#requireCompiled();
    const epochs = integerOption(options.epochs, 'epochs', 1, 1);
    const batchSize = integerOption(options.batchSize, 'batchSize', 1, 32);
    const shuffle = booleanOption(options.shuffle, 'shuffle', true);
    const cb = checkOptions(options.callbacks, 'callbacks', ['onEpochEnd', 'onStepEnd']) ?? {};
    functionOption(cb.onEpochEnd, 'callbacks.onEpochEnd');
    functionOption(cb.onStepEnd, 'callbacks.onStepEnd');
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw rnnkitError('ERR_RNNKIT_TYPE', 'signal must be an AbortSignal');
    const all = this.#batch(x, y, options.lengths);
    const val = options.validationData === undefined ? null : (() => {
      const v = checkOptions(options.validationData, 'validationData', ['x', 'y', 'lengths']);
      return this.#batch(v.x, v.y, v.lengths);
    })();
    const rng = new SeededRandom(integerOption(options.seed, 'seed', 0, (Math.random() * 0x7fffffff) | 0));
    const rows = Array.from({ length: all.rows }, (_, i) => i);
    const history: GraphHistory = { skippedSteps: 0, loss: [], valLoss: [] };
    if (this.#compiled!.accuracy) {
      history.accuracy = [];
      history.valAccuracy = [];
    }
    let step = 0;
    // An aborted fit stops before its next step and returns the history so far (as Sequential's).
    for (let e = 0; e < epochs && !options.signal?.aborted; e++) {
      if (shuffle)
        for (let i = rows.length - 1; i > 0; i--) {
          const j = Math.floor(rng.next() * (i + 1));
          [rows[i], rows[j]] = [rows[j], rows[i]];
        }
      let lossSum = 0;
      let accSum = 0;
      let seen = 0;
      let skippedRows = 0;
      for (let start = 0; start < all.rows; start += batchSize) {
        if (options.signal?.aborted) break;
        const idx = rows.slice(start, start + batchSize);
        const b = this.#slice(all, idx);
        let stats: NativeGraphStats;
        try {
          stats = await this.#net.trainStep(b.inputs, losses, b.targets, { clipNorm: this.#compiled!.clipNorm });
        } catch (e) {
          if (!skip || (e as { code?: string }).code !== 'ERR_RNNKIT_NON_FINITE') throw e;
          history.skippedSteps++;
          seen += idx.length;
          skippedRows += idx.length;
          continue;
        }
        const logs = this.#logs(stats);
        seen += idx.length;
        lossSum += logs.loss * idx.length;
        accSum += (logs.accuracy ?? 0) * idx.length;
        await cb.onStepEnd?.(step++, logs);
      }
      if (seen < all.rows) break;
      // The mean over the rows of the applied steps (NaN when none was).
      const applied = seen - skippedRows;
      history.loss.push(lossSum / applied);
      if (history.accuracy) history.accuracy.push(accSum / applied);
      const epochLogs: GraphLogs & { valLoss?: number; valAccuracy?: number } = { loss: lossSum / applied, losses: {} };
      if (history.accuracy) epochLogs.accuracy = accSum / applied;
      if (val) {
        const v = await this.#evaluateBatch(val, 256);
        history.valLoss.push(v.loss);
        epochLogs.valLoss = v.loss;
        if (history.valAccuracy && v.accuracy !== undefined) {
          history.valAccuracy.push(v.accuracy);
          epochLogs.valAccuracy = v.accuracy;
        }
      }
      await cb.onEpochEnd?.(e, epochLogs);
    }
    return history;
  }

  /** The parameter names, PyTorch-style: `<layer>.weight_ih_l0`, `<layer>.weight`, ... in the native layout's order. */
  paramNames(): string[] {
    return this.#net.paramNames();
  }

  /** Every parameter by name (copies). */
  getWeights(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const n of this.#net.paramNames()) out[n] = this.#net.getParam(n);
    return out;
  }

  /**
   * Set parameters by name (any subset); every name must be the model's and every size must match. Checked before
   * anything is written, so a bad entry changes nothing.
   */
  setWeights(weights: Record<string, Tensor | Float32Array>): void {
    if (typeof weights !== 'object' || weights === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'setWeights() takes { [name]: tensor }');
    const names = this.#net.paramNames();
    const staged: [string, Float32Array][] = [];
    for (const [name, v] of Object.entries(weights)) {
      if (!names.includes(name)) throw rnnkitError('ERR_RNNKIT_UNKNOWN_PARAM', `setWeights: the model has no parameter '${name}'`);
      const data = v instanceof Float32Array ? v : isTensorLike(v) && v.data instanceof Float32Array ? v.data : null;
      if (!data) throw rnnkitError('ERR_RNNKIT_TYPE', `setWeights: '${name}' must be a Float32Array or a tensor of one`);
      const size = this.#net.paramShape(name).reduce((a, b) => a * b, 1);
      if (data.length !== size) throw rnnkitError('ERR_RNNKIT_SHAPE', `setWeights: '${name}' has ${data.length} values, the model's has ${size} (shape [${this.#net.paramShape(name).join(', ')}])`);
      staged.push([name, data]);
    }
    for (const [name, data] of staged) this.#net.setParam(name, data);
  }

  /** The gradient of a parameter accumulated by the last training step (for tests and inspection). */
  getGrad(name: string): Tensor {
    return this.#net.getGrad(name);
  }

  /** @internal Gradient checks: zeroed gradients, a training forward and the compiled losses backpropagated. */
  lossAndGradients(x: GraphData, y: GraphTargets, options: { lengths?: GraphLengthsOption } = {}): number {
    const losses = this.#requireCompiled();
    const b = this.#batch(x, y, options.lengths);
    this.#net.zeroGrad();
    this.#net.forwardSync(b.inputs, { train: true });
    return this.#net.lossBackwardSync(losses, b.targets).loss;
  }

  /** @internal The compiled loss of x / y without training (synchronous, for gradient checks). */
  lossSync(x: GraphData, y: GraphTargets, options: { lengths?: GraphLengthsOption } = {}): number {
    const losses = this.#requireCompiled();
    const b = this.#batch(x, y, options.lengths);
    return this.#net.evaluateSync(b.inputs, losses, b.targets).loss;
  }

  layerSummaries(): GraphLayerSummary[] {
    const tensors = this.#net.tensors();
    const params = this.#net.paramNames();
    const size = (p: string): number => this.#net.paramShape(p).reduce((a, b) => a * b, 1);
    let next = this.#plan.inputs.length;
    return this.#plan.nodes.map((n) => {
      const count = n.op === 'attention' ? 2 : n.op === 'recurrent' && n.returnState ? (n.layer?.type === 'recurrent' && n.layer.cell === 'lstm' ? 3 : 2) : 1;
      const outputs = tensors.slice(next, next + count).map((t) => ({ name: t.name, kind: t.kind, features: t.features }));
      next += count;
      const type = n.op === 'recurrent' && n.layer?.type === 'recurrent' ? n.layer.cell : n.op;
      return {
        name: n.name, type, inputs: n.inputs.map((i) => tensors[i].name), outputs,
        params: params.filter((p) => p.startsWith(`${n.name}.`)).reduce((a, p) => a + size(p), 0),
      };
    });
  }

  /** A table of the layers: name (type), what each reads and outputs (kind and width), parameter counts. */
  summary(): string {
    const rows = this.layerSummaries();
    const total = rows.reduce((a, r) => a + r.params, 0);
    const lines = [
      `Graph model: inputs ${this.#plan.inputs.map((i) => `${i.name} ${i.dtype === 'int32' ? `[batch, steps] ids < ${i.size}` : i.sequence ? `[batch, steps, ${i.size}]` : `[batch, ${i.size}]`}`).join('; ')}`,
      `${'Layer (type)'.padEnd(34)}${'Output (kind, features)'.padEnd(34)}${'Params'.padStart(8)}  Reads`,
      '─'.repeat(96),
      ...rows.map((r) => `${`${r.name} (${r.type})`.padEnd(34)}${r.outputs.map((o) => (o.kind === 'attention' ? 'attention weights' : `${o.kind} ${o.features}`)).join(', ').padEnd(34)}${String(r.params).padStart(8)}  ${r.inputs.join(', ')}`),
      '─'.repeat(96),
      `outputs: ${this.#outputNames.join(', ')}`,
      `Total params: ${total}`,
    ];
    return lines.join('\n');
  }

  /**
   * Save as safetensors, atomically: the graph in the header (`graph`) and the weights under their PyTorch-style
   * names. `GraphModel.load` rebuilds the same model, addressed by the same input and output names.
   */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toBuffer());
  }
  toBuffer(): Buffer {
    const tensors: NamedTensor[] = this.#net.paramNames().map((name) => {
      const t = this.#net.getParam(name);
      return { name, shape: t.shape, data: t.data };
    });
    return graphFileBuffer(this.#graph, tensors, { compiled: 'graph' });
  }
  /** A graph model saved by `save` (or the bytes of one): the graph rebuilt and compiled again, then its weights. */
  static async load(file: string | URL | Uint8Array, options: { device?: DeviceName } = {}): Promise<GraphModel> {
    const buf = file instanceof Uint8Array ? file : await readModelFile(file);
    return GraphModel.fromBuffer(buf, options);
  }
  static fromBuffer(buf: Uint8Array, options: { device?: DeviceName } = {}): GraphModel {
    checkOptions(options, 'GraphModel.load options', ['device']);
    const { file, model: built } = compileGraphFile(buf, 'graph', 'GraphSeq2Seq', (inputs, outputs, order, graph) =>
      new GraphModel(compilePlan(inputs, outputs, order, options.device ? { device: options.device } : {}), outputs.map((o) => o.name), graph));
    try {
      // Every parameter from the file, with its shape; nothing the model does not have.
      const names = built.paramNames();
      for (const name of file.tensors.keys())
        if (!names.includes(name)) throw rnnkitError('ERR_RNNKIT_FORMAT', `graph file: tensor '${name}' is no parameter of the stored graph`);
      const weights: Record<string, Float32Array> = {};
      for (const name of names) {
        const t = file.tensors.get(name);
        const want = built.#net.paramShape(name);
        if (!t) throw rnnkitError('ERR_RNNKIT_FORMAT', `graph file: the parameter '${name}' is missing`);
        if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
          throw rnnkitError('ERR_RNNKIT_FORMAT', `graph file: '${name}' has shape [${t.shape.join(', ')}], the graph's is [${want.join(', ')}]`);
        weights[name] = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
      }
      built.setWeights(weights);
    } catch (e) {
      built.dispose();
      throw e;
    }
    return built;
  }

  dispose(): void {
    this.#net.dispose();
  }
}
