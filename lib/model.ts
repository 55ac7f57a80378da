// The sequential model builder: Keras/TF.js-style layers compiled into one native pipeline, trained off the main
// thread, saved as safetensors with the architecture in the header.
import { native, type NativeNetwork, type NativeLayerSpec, type NativeModelSpec, type NativeSequenceInput,
  type NativeLossTarget, type NativeStream } from './native';
import { rnnkitError } from './errors';
import { checkOptions, integerOption, booleanOption, functionOption, choiceOption, numberOption } from './options';
import type { LayerConfig, Activation } from './layers';
import { layers as layerFactory, nativeStages } from './layers';
import type { OptimizerConfig } from './optimizers';
import { SeededRandom } from './random';
import { readModelFile, writeFileAtomic } from './io/files';
import { parseSafetensors, serializeSafetensors, type NamedTensor } from './io/safetensors';
import type { Tensor, IntTensor } from './tensor';
import type { OnnxExportOptions, ExportLayer } from './io/onnx/export';

export type LossName = 'softmaxCrossEntropy' | 'mse';

/** The arithmetic of inference calls: see Sequential.setInferencePrecision. */
export type InferencePrecision = 'float32' | 'int8';

export interface ModelOptions {
  /** Token-id input over this many symbols (an embedding or a recurrent layer reads them one-hot). */
  vocabSize?: number;
  /** Dense input with this many features per step. */
  inputSize?: number;
  layers?: LayerConfig[];
  /** Seed of the initial weights and of dropout. */
  seed?: number;
}

/** Metrics that `compile` can add to the training logs, `evaluate`'s result and the history. */
export type MetricName = 'accuracy';

export interface CompileOptions {
  loss: LossName;
  optimizer: OptimizerConfig;
  /** Clip the global gradient norm to this value at every step (0 or absent: no clipping). */
  clipNorm?: number;
  /**
   * `['accuracy']` (softmaxCrossEntropy only): the share of counted target positions whose largest output is the
   * target class, in the step and epoch logs, `evaluate`'s result and the history. Positions left out of the loss
   * (ignore index, past a row's length) are left out of the accuracy too.
   */
  metrics?: MetricName[];
  /**
   * softmaxCrossEntropy: the class id that marks a target position as padding, left out of the loss and the metrics
   * (default -1, as PyTorch's `ignore_index`). Every other target must be a class of the output.
   */
  ignoreIndex?: number;
}

/** Model input: token ids `[batch, time]` or features `[batch, time, features]`, batch-first. */
export type ModelInput = IntTensor | Tensor;
/** Targets: class ids (`[batch, time]` or `[batch]`) or values shaped like the output. */
export type ModelTarget = IntTensor | Tensor;

export interface StepLogs {
  step: number;
  epoch: number;
  loss: number;
  /** With `metrics: ['accuracy']`. */
  accuracy?: number;
  gradNorm: number;
  /** Input steps (tokens) per second over this step. */
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export interface EpochLogs {
  epoch: number;
  step: number;
  /** Mean over every target position counted in the epoch. */
  loss: number;
  valLoss?: number;
  /** With `metrics: ['accuracy']`. */
  accuracy?: number;
  valAccuracy?: number;
  elapsedSeconds: number;
}

export interface Callbacks {
  onTrainBegin?: () => void | Promise<void>;
  onStepEnd?: (logs: StepLogs) => void | Promise<void>;
  onEpochEnd?: (logs: EpochLogs) => void | Promise<void>;
  onTrainEnd?: (history: History) => void | Promise<void>;
}

export interface History {
  /** Mean training loss per epoch (or per evaluation interval for fitDataset). */
  loss: number[];
  valLoss: number[];
  steps: { step: number; loss: number; accuracy?: number }[];
  /** With `metrics: ['accuracy']`: per epoch (interval), as `loss`. */
  accuracy?: number[];
  valAccuracy?: number[];
  /** Steps not applied because their loss or gradient norm was not finite (with `nonFinite: 'skip'`). */
  skippedSteps: number;
}

/**
 * What training does with a batch whose loss or gradient norm is not finite (an Infinity or NaN in the data, or a
 * learning rate too high). Such a step is never applied; 'error' (default) rejects with ERR_RNNKIT_NON_FINITE
 * naming the batch, 'skip' goes on and counts it in `history.skippedSteps`.
 */
export type NonFinitePolicy = 'error' | 'skip';

/** What `evaluate` measures: the mean loss over the counted target positions, and the compiled metrics. */
export interface EvaluateResult {
  loss: number;
  /** With `metrics: ['accuracy']`. */
  accuracy?: number;
}

/** Per batch row, its valid steps (see PredictOptions.lengths). */
export type Lengths = Int32Array | number[];

export interface FitOptions {
  /**
   * Valid steps of each row of x, each in [1, time] (packed-sequence semantics, as `predict`'s): the recurrent
   * layers stop at a row's length, and target positions past it are left out of the loss and the metrics.
   */
  lengths?: Lengths;
  epochs?: number;
  /** See NonFinitePolicy (default 'error'). */
  nonFinite?: NonFinitePolicy;
  /** Stop after this many steps in total (this call), whatever the epochs. */
  steps?: number;
  batchSize?: number;
  shuffle?: boolean;
  validationData?: { x: ModelInput; y: ModelTarget; lengths?: Lengths };
  callbacks?: Callbacks;
  signal?: AbortSignal;
  seed?: number;
  /**
   * Truncated backpropagation through time: x holds long sequences, cut into chunks of `chunkLength` steps whose
   * final state seeds the next chunk; the state resets at each epoch. The batch is all rows of x.
   */
  stateful?: boolean;
  chunkLength?: number;
  checkpoint?: CheckpointOptions;
}

export interface CheckpointOptions {
  /** File written (atomically) every `every` steps, optimizer state included. */
  path: string;
  every: number;
  /** Extra metadata to store (for example a data source's state); called at each checkpoint. */
  extra?: () => Record<string, unknown>;
}

/** A source of training batches for fitDataset: random windows, a streaming reader, ... */
export interface BatchSource {
  nextBatch(): { x: ModelInput; y: ModelTarget; first?: boolean; lengths?: Lengths };
}

export interface TrainOnBatchOptions {
  /** Start from the final state of the previous carried batch (truncated BPTT). */
  carryState?: boolean;
  /** Valid steps of each row (see FitOptions.lengths). */
  lengths?: Lengths;
  /** See NonFinitePolicy (default 'error'). */
  nonFinite?: NonFinitePolicy;
}

export interface TrainOnBatchResult {
  /** Mean loss over the counted target positions. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  /** With `metrics: ['accuracy']`. */
  accuracy?: number;
  /** Target positions the loss counted (see CompileOptions.ignoreIndex and FitOptions.lengths). */
  counted: number;
  /** The step was not applied (non-finite loss or gradient norm, with nonFinite: 'skip'). */
  skipped: boolean;
}

export interface EvaluateOptions {
  batchSize?: number;
  /** Valid steps of each row of x (see FitOptions.lengths). */
  lengths?: Lengths;
}

export interface FitDatasetOptions {
  steps: number;
  /** See NonFinitePolicy (default 'error'). */
  nonFinite?: NonFinitePolicy;
  callbacks?: Callbacks;
  signal?: AbortSignal;
  /** Evaluate every `every` steps on `batches` batches from `source` (and at the end). */
  validation?: { source: BatchSource; batches: number; every: number };
  /** Carry the recurrent state between batches (reset where a batch says `first`). */
  stateful?: boolean;
  checkpoint?: CheckpointOptions;
}

export interface PredictOptions {
  /**
   * Valid steps of each batch row, each in [1, time] (packed-sequence semantics, as PyTorch's
   * `pack_padded_sequence`): a row's steps past its length output zeros from the recurrent layers and leave their
   * state alone, a reverse direction starts at the row's last valid step, and a layer with returnSequences false
   * returns the state at the row's last valid step.
   */
  lengths?: Lengths;
}

export interface GenerateOptions {
  /** Token ids to start from (at least one). */
  prompt: ArrayLike<number>;
  /** Number of tokens to generate. */
  length: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Seed of the sampling draws: the same seed and model give the same sample. */
  seed?: number;
}

export interface LayerSummary {
  name: string;
  type: string;
  /** null = any batch or time. */
  outputShape: (number | null)[];
  /** Parameters of the layer (of its whole stack for a recurrent layer with numLayers > 1). */
  params: number;
  /** A recurrent layer with numLayers > 1: one entry per stacked layer, `<name>.l<k>`, bottom first. */
  stacked?: LayerSummary[];
}

const CALLBACK_NAMES = ['onTrainBegin', 'onStepEnd', 'onEpochEnd', 'onTrainEnd'];

function checkCallbacks(callbacks: Callbacks | undefined): void {
  const cb = checkOptions(callbacks, 'callbacks', CALLBACK_NAMES);
  for (const name of CALLBACK_NAMES) functionOption((cb as Record<string, unknown>)[name], `callbacks.${name}`);
}

function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw rnnkitError('ERR_RNNKIT_TYPE', 'signal must be an AbortSignal');
}

function checkCheckpoint(c: CheckpointOptions | undefined): void {
  if (c === undefined) return;
  checkOptions(c, 'checkpoint', ['path', 'every', 'extra']);
  if (typeof c.path !== 'string' || c.path === '') throw rnnkitError('ERR_RNNKIT_TYPE', 'checkpoint.path must be a file path');
  integerOption(c.every, 'checkpoint.every', 1, 0);
  if (c.every === undefined) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'checkpoint.every is required');
  functionOption(c.extra, 'checkpoint.extra');
}

function checkFitOptions(o: FitOptions): void {
  checkOptions(o, 'fit options', ['lengths', 'epochs', 'steps', 'batchSize', 'shuffle', 'validationData', 'callbacks',
    'signal', 'seed', 'stateful', 'chunkLength', 'checkpoint', 'nonFinite']);
  integerOption(o.epochs, 'epochs', 0, 1);
  integerOption(o.steps, 'steps', 0, 0);
  integerOption(o.batchSize, 'batchSize', 1, 32);
  booleanOption(o.shuffle, 'shuffle', true);
  integerOption(o.seed, 'seed', 0, 0);
  const stateful = booleanOption(o.stateful, 'stateful', false);
  integerOption(o.chunkLength, 'chunkLength', 1, 1);
  if (o.chunkLength !== undefined && !stateful)
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'chunkLength is used only with stateful: true');
  if (o.batchSize !== undefined && stateful)
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'batchSize is not used with stateful: true (the batch is all rows of x)');
  choiceOption(o.nonFinite, 'nonFinite', ['error', 'skip'], 'error');
  checkCallbacks(o.callbacks);
  checkSignal(o.signal);
  checkCheckpoint(o.checkpoint);
}

function checkFitDatasetOptions(o: FitDatasetOptions): void {
  if (typeof o !== 'object' || o === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'fitDataset options must be an object { steps, ... }');
  checkOptions(o, 'fitDataset options', ['steps', 'callbacks', 'signal', 'validation', 'stateful', 'checkpoint', 'nonFinite']);
  if (o.steps === undefined) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'fitDataset options.steps is required');
  integerOption(o.steps, 'steps', 0, 0);
  booleanOption(o.stateful, 'stateful', false);
  choiceOption(o.nonFinite, 'nonFinite', ['error', 'skip'], 'error');
  checkCallbacks(o.callbacks);
  checkSignal(o.signal);
  checkCheckpoint(o.checkpoint);
  if (o.validation !== undefined) {
    const v = checkOptions(o.validation, 'validation', ['source', 'batches', 'every']);
    if (!v.source || typeof v.source.nextBatch !== 'function') throw rnnkitError('ERR_RNNKIT_TYPE', 'validation.source needs nextBatch()');
    integerOption(v.batches, 'validation.batches', 1, 1);
    integerOption(v.every, 'validation.every', 1, 1);
    if (v.batches === undefined || v.every === undefined)
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'validation needs { source, batches, every }');
  }
}


function checkTensor(t: unknown, what: string): asserts t is { data: ArrayLike<number>; shape: number[] } {
  if (typeof t !== 'object' || t === null || !('data' in t) || !('shape' in t) || !Array.isArray((t as Tensor).shape))
    throw rnnkitError('ERR_RNNKIT_TYPE', `${what} must be a tensor { data, shape }`);
}

/** Copy the rows `rows` of a batch-first tensor (rows along its first dimension). */
function takeRows<T extends { data: ArrayLike<number>; shape: number[] }>(t: T, rows: ArrayLike<number>): T {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const Ctor = t.data instanceof Float32Array ? Float32Array : Int32Array;
  const out = new Ctor(rows.length * per);
  const src = t.data;
  for (let i = 0; i < rows.length; i++) {
    const start = rows[i] * per;
    if (src instanceof Float32Array || src instanceof Int32Array) out.set(src.subarray(start, start + per), i * per);
    else for (let j = 0; j < per; j++) out[i * per + j] = src[start + j];
  }
  return { data: out, shape: [rows.length, ...t.shape.slice(1)] } as unknown as T;
}

/** Copy time steps [t0, t1) of a batch-first sequence tensor. */
function takeSteps<T extends { data: ArrayLike<number>; shape: number[] }>(t: T, t0: number, t1: number): T {
  const [B, T] = t.shape;
  const per = t.shape.slice(2).reduce((a, b) => a * b, 1);
  const Ctor = t.data instanceof Float32Array ? Float32Array : Int32Array;
  const out = new Ctor(B * (t1 - t0) * per);
  for (let b = 0; b < B; b++)
    for (let s = t0; s < t1; s++)
      for (let j = 0; j < per; j++) out[(b * (t1 - t0) + (s - t0)) * per + j] = t.data[(b * T + s) * per + j];
  return { data: out, shape: [B, t1 - t0, ...t.shape.slice(2)] } as unknown as T;
}

/** A `lengths` option, checked against a batch-first input's shape and copied to an Int32Array. */
function checkLengths(lengths: unknown, shape: number[]): Int32Array {
  if (!(lengths instanceof Int32Array) && !Array.isArray(lengths))
    throw rnnkitError('ERR_RNNKIT_TYPE', 'lengths must be an Int32Array or an array of integers');
  const [B, T] = shape;
  if (lengths.length !== B)
    throw rnnkitError('ERR_RNNKIT_SHAPE', `lengths has ${lengths.length} entries, expected one per batch row (${B})`);
  for (let b = 0; b < lengths.length; b++) {
    const n: unknown = lengths[b];
    if (typeof n !== 'number' || !Number.isInteger(n)) throw rnnkitError('ERR_RNNKIT_TYPE', `lengths[${b}] is not an integer`);
    if (n < 1 || n > T) throw rnnkitError('ERR_RNNKIT_VALUE', `lengths[${b}] = ${n} is outside [1, ${T}]`);
  }
  return Int32Array.from(lengths);
}

const METRICS: readonly MetricName[] = ['accuracy'];

function checkMetrics(metrics: unknown, loss: LossName): void {
  if (metrics === undefined) return;
  if (!Array.isArray(metrics)) throw rnnkitError('ERR_RNNKIT_TYPE', `metrics must be an array of metric names (${METRICS.join(', ')})`);
  for (const m of metrics) {
    if (!METRICS.includes(m as MetricName))
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `unknown metric ${JSON.stringify(m)}; known metrics: ${METRICS.join(', ')}`);
    if (m === 'accuracy' && loss !== 'softmaxCrossEntropy')
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', "the 'accuracy' metric needs the softmaxCrossEntropy loss (class targets)");
  }
}

/**
 * Sums over batches of what the native loss counted, so that an epoch's (or an evaluation's) loss and accuracy are
 * the means over all its counted target positions, whatever the batch sizes and masks.
 */
class MetricTotals {
  batches = 0;
  #lossSum = 0;
  #counted = 0;
  #correct = 0;
  #plainSum = 0;
  add(r: { loss: number; counted: number; correct?: number }, accuracy?: number): void {
    this.batches++;
    this.#lossSum += r.loss * r.counted;
    this.#plainSum += r.loss;
    this.#counted += r.counted;
    this.#correct += r.correct ?? (r.counted && accuracy !== undefined ? accuracy * r.counted : 0);
  }
  result(withAccuracy: boolean): EvaluateResult {
    // No counted position at all: the loss is 0 by the native rule (NaN when there was no batch).
    const loss = this.#counted ? this.#lossSum / this.#counted : this.batches ? this.#plainSum / this.batches : NaN;
    const out: EvaluateResult = { loss };
    if (withAccuracy) out.accuracy = this.#counted ? this.#correct / this.#counted : NaN;
    return out;
  }
}

function newHistory(accuracy: boolean): History {
  return accuracy
    ? { loss: [], valLoss: [], steps: [], accuracy: [], valAccuracy: [], skippedSteps: 0 }
    : { loss: [], valLoss: [], steps: [], skippedSteps: 0 };
}

function metricsOf(r: TrainOnBatchResult): { loss: number; accuracy?: number } {
  return r.accuracy === undefined ? { loss: r.loss } : { loss: r.loss, accuracy: r.accuracy };
}

function stepEntry(step: number, r: TrainOnBatchResult): History['steps'][number] {
  return { step, ...metricsOf(r) };
}

function pushEpoch(history: History, logs: EpochLogs): void {
  history.loss.push(logs.loss);
  if (logs.valLoss !== undefined) history.valLoss.push(logs.valLoss);
  if (logs.accuracy !== undefined) history.accuracy?.push(logs.accuracy);
  if (logs.valAccuracy !== undefined) history.valAccuracy?.push(logs.valAccuracy);
}

/**
 * A stack of layers run as one native pipeline. Build it with `sequential({ vocabSize | inputSize, layers })`,
 * `compile`, then `fit` / `predict`. Tensors are batch-first.
 */
export class Sequential {
  readonly #layers: LayerConfig[] = [];
  readonly #vocabSize: number;
  readonly #inputSize: number;
  readonly #seed: number | undefined;
  #net: NativeNetwork | undefined;
  #compiled: CompileOptions | undefined;
  #names: string[] = [];
  #step = 0;
  /** Free-form metadata saved with the model (for example a vocabulary). */
  metadata: Record<string, unknown> = {};

  constructor(options: ModelOptions) {
    if (typeof options !== 'object' || options === null)
      throw rnnkitError('ERR_RNNKIT_TYPE', 'sequential() takes an options object { vocabSize | inputSize, layers }');
    checkOptions(options, 'sequential() options', ['vocabSize', 'inputSize', 'layers', 'seed']);
    if (options.layers !== undefined && !Array.isArray(options.layers))
      throw rnnkitError('ERR_RNNKIT_TYPE', 'layers must be an Array of layers from rnnkit.layers');
    this.#vocabSize = options.vocabSize ?? 0;
    this.#inputSize = options.inputSize ?? 0;
    this.#seed = options.seed;
    for (const l of options.layers ?? []) this.add(l);
  }

  /** Append a layer (before the model is first used). */
  add(layer: LayerConfig): this {
    if (this.#net) throw rnnkitError('ERR_RNNKIT_STATE', 'layers can only be added before the model is built');
    if (typeof layer !== 'object' || layer === null || !('kind' in layer))
      throw rnnkitError('ERR_RNNKIT_TYPE', 'add() takes a layer from rnnkit.layers');
    this.#layers.push(layer);
    return this;
  }

  /** Training steps taken so far (kept in checkpoints). */
  get step(): number {
    return this.#step;
  }

  get vocabSize(): number {
    return this.#vocabSize;
  }

  get layers(): readonly LayerConfig[] {
    return this.#layers;
  }

  /** The native pipeline spec (built lazily). */
  #spec(): NativeModelSpec {
    const counts: Record<string, number> = {};
    const taken = new Set<string>();
    const uniqueName = (base: string, given?: string): string => {
      if (given !== undefined) {
        if (!/^[A-Za-z0-9_-]+$/.test(given))
          throw rnnkitError('ERR_RNNKIT_ARGUMENT', `layer name '${given}' may only use letters, digits, '_' and '-'`);
        if (taken.has(given)) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `two layers are named '${given}'`);
        taken.add(given);
        return given;
      }
      let name: string;
      do name = `${base}_${(counts[base] = (counts[base] ?? 0) + 1)}`; while (taken.has(name));
      taken.add(name);
      return name;
    };
    const out: NativeLayerSpec[] = [];
    this.#names = [];
    for (const l of this.#layers) {
      if (l.kind === 'embedding' && l.inputDim !== undefined && l.inputDim !== this.#vocabSize)
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `embedding inputDim ${l.inputDim} differs from the model's vocabSize ${this.#vocabSize}`);
      if (typeof l !== 'object' || l === null || !['embedding', 'recurrent', 'dense', 'dropout'].includes(l.kind))
        throw rnnkitError('ERR_RNNKIT_TYPE', 'unknown layer; use rnnkit.layers');
      const base = l.kind === 'recurrent' ? (l.cell === 'lstm' ? 'lstm' : l.cell === 'gru' ? 'gru' : 'simple_rnn') : l.kind;
      out.push(...nativeStages(l, uniqueName(base, l.name)));
      this.#names.push(out[out.length - 1].name as string);
    }
    const spec: NativeModelSpec = { layers: out };
    if (this.#vocabSize) spec.vocabSize = this.#vocabSize;
    if (this.#inputSize) spec.inputSize = this.#inputSize;
    if (this.#seed !== undefined) spec.seed = this.#seed;
    return spec;
  }

  /** Create the native model now (it is otherwise built on first use). */
  build(): this {
    if (!this.#net) this.#net = new native.Network(this.#spec());
    return this;
  }

  get #n(): NativeNetwork {
    return this.build().#net as NativeNetwork;
  }

  /**
   * The precision of inference (`predict`, `predictWithState`, `evaluate`'s forward pass, streams, `generate`):
   * `'float32'` (the default) or `'int8'`, dynamic quantization as ONNX Runtime's DynamicQuantizeLSTM and PyTorch's
   * quantized dynamic LSTM do it: the recurrent layers' weights quantized to int8 per output row (scale max|w|/127),
   * their inputs and states quantized per row at every product, int32 accumulation; embeddings, one-hot inputs and
   * dense layers stay float32. The float32 weights are kept and untouched: training, `save`, `getWeights` and a
   * switch back to `'float32'` see them as they were; after any change of the weights the int8 copy is remade on the
   * next inference call. Saved with the model (`save`/`load`). CPU only: ERR_RNNKIT_DEVICE on a GPU.
   */
  setInferencePrecision(precision: InferencePrecision): this {
    if (precision !== 'float32' && precision !== 'int8')
      throw rnnkitError('ERR_RNNKIT_VALUE', `the inference precision must be 'float32' or 'int8', not ${JSON.stringify(precision)}`);
    this.#n.setInferencePrecision(precision);
    return this;
  }

  /** See setInferencePrecision. */
  get inferencePrecision(): InferencePrecision {
    return this.#net && !this.#net.isDisposed() ? this.#net.inferencePrecision() : 'float32';
  }

  /** Layer table: names, output shapes (null = any batch or time) and parameter counts. */
  /** Layer table: names, output shapes (null = any batch or time) and parameter counts, stacked layers indented. */
  summary(): string {
    const rows = this.layerSummaries();
    const total = rows.reduce((a, r) => a + r.params, 0);
    const line = (r: LayerSummary, indent: string): string => {
      const label = `${indent}${r.name} (${r.type})`;
      return `${label.length < 42 ? label.padEnd(42) : `${label} `}${JSON.stringify(r.outputShape).padEnd(22)}${String(r.params).padStart(8)}`;
    };
    const lines = [
      `${'Layer (type)'.padEnd(42)}${'Output shape'.padEnd(22)}${'Params'.padStart(8)}`,
      '─'.repeat(72),
      ...rows.flatMap((r) => [line(r, ''), ...(r.stacked ?? []).map((k) => line(k, '  '))]),
      '─'.repeat(72),
      `Total params: ${total}`,
    ];
    return lines.join('\n');
  }

  layerSummaries(): LayerSummary[] {
    const net = this.#n;
    const params = net.paramNames();
    const size = (p: string): number => net.paramShape(p).reduce((x, y) => x * y, 1);
    const count = (prefix: string): number => params.filter((p) => p.startsWith(`${prefix}.`)).reduce((a, p) => a + size(p), 0);
    // Parameters of stacked layer k of a recurrent layer: PyTorch's names end in _l<k> or _l<k>_reverse.
    const countLayer = (prefix: string, k: number): number =>
      params.filter((p) => p.startsWith(`${prefix}.`) && new RegExp(`_l${k}(_reverse)?$`).test(p)).reduce((a, p) => a + size(p), 0);
    const spec = net.spec() as unknown as NativeModelSpec & { layers: (NativeLayerSpec & { name: string })[] };
    let shape: (number | null)[] = this.#vocabSize ? [null, null] : [null, null, this.#inputSize];
    return spec.layers.map((l): LayerSummary => {
      const name = l.name ?? '';
      switch (l.type) {
        case 'embedding': shape = [null, null, l.outputDim]; break;
        case 'recurrent': {
          const f = l.merge === 'sum' || !l.bidirectional ? l.hiddenSize : 2 * l.hiddenSize;
          shape = l.returnSequences ? [null, null, f] : [null, f];
          break;
        }
        case 'dense': shape = [...shape.slice(0, -1), l.units]; break;
        case 'dropout': break;
      }
      if (l.type !== 'recurrent') return { name, type: l.type, outputShape: [...shape], params: count(name) };
      // Only the non-default gate activation is named, so the common rows stay short.
      const gates = l.gateActivation === 'hard_sigmoid' ? ', hardSigmoid' : '';
      const cell = `${l.bidirectional ? 'bidirectional ' : ''}${l.cell}${gates}`;
      const L = l.numLayers ?? 1;
      const row: LayerSummary = { name, type: cell, outputShape: [...shape], params: count(name) };
      if (L > 1) {
        row.type = `${cell}, ${L} stacked${l.dropout ? `, dropout ${Number(l.dropout.toPrecision(6))} between` : ''}`;
        // Below the top, each stacked layer outputs every step with both directions side by side (PyTorch's stack).
        const inner = [null, null, (l.bidirectional ? 2 : 1) * l.hiddenSize];
        row.stacked = Array.from({ length: L }, (_, k) => ({
          name: `${name}.l${k}`, type: cell, outputShape: k === L - 1 ? [...shape] : inner, params: countLayer(name, k),
        }));
      }
      return row;
    });
  }

  compile(options: CompileOptions): this {
    if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'compile() takes { loss, optimizer, clipNorm?, metrics?, ignoreIndex? }');
    checkOptions(options, 'compile options', ['loss', 'optimizer', 'clipNorm', 'metrics', 'ignoreIndex']);
    const loss = choiceOption(options.loss, 'loss', ['softmaxCrossEntropy', 'mse'] as const, 'softmaxCrossEntropy');
    if (options.loss === undefined) throw rnnkitError('ERR_RNNKIT_ARGUMENT', "compile() needs a loss: 'softmaxCrossEntropy' or 'mse'");
    const clipNorm = numberOption(options.clipNorm, 'clipNorm', 0, 0);
    checkMetrics(options.metrics, loss);
    if (options.ignoreIndex !== undefined) {
      if (loss !== 'softmaxCrossEntropy')
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'ignoreIndex is for the softmaxCrossEntropy loss');
      if (!Number.isInteger(options.ignoreIndex) || Math.abs(options.ignoreIndex) > 2 ** 31 - 1)
        throw rnnkitError('ERR_RNNKIT_VALUE', `ignoreIndex must be an integer, got ${String(options.ignoreIndex)}`);
    }
    const optimizer = options.optimizer;
    this.#n.setOptimizer(optimizer);
    // Kept as read once (a getter is not read again at each step), and saved in checkpoints.
    this.#compiled = {
      loss, optimizer: { ...optimizer },
      ...(options.clipNorm !== undefined ? { clipNorm } : {}),
      ...(options.metrics !== undefined ? { metrics: [...options.metrics] } : {}),
      ...(options.ignoreIndex !== undefined ? { ignoreIndex: options.ignoreIndex } : {}),
    };
    return this;
  }

  #requireCompiled(): CompileOptions {
    if (!this.#compiled) throw rnnkitError('ERR_RNNKIT_STATE', 'compile the model before training or evaluating it');
    return this.#compiled;
  }

  // The model's kind of input (token ids or features) decides the field; the native converter checks the value
  // itself (types, integers, length against shape), as for RecurrentNetwork.
  #input(x: ModelInput): NativeSequenceInput {
    return this.#vocabSize ? { tokens: x as IntTensor, batchFirst: true } : { x: x as Tensor, batchFirst: true };
  }

  /** The native input of a training or evaluation batch, with its rows' lengths when given. */
  #batchInput(x: ModelInput, lengths: Lengths | undefined): NativeSequenceInput {
    const input = this.#input(x);
    if (lengths === undefined) return input;
    checkTensor(x, 'x');
    return { ...input, lengths: checkLengths(lengths, x.shape) };
  }

  #predictInput(x: ModelInput, options: PredictOptions | undefined): NativeSequenceInput {
    const input = this.#input(x);
    if (options === undefined) return input;
    checkOptions(options, 'predict options', ['lengths']);
    if (options.lengths === undefined) return input;
    checkTensor(x, 'x');
    return { ...input, lengths: checkLengths(options.lengths, x.shape) };
  }

  #target(y: ModelTarget): NativeLossTarget {
    checkTensor(y, 'y');
    const loss = this.#requireCompiled().loss;
    if (loss === 'mse') return { kind: 'mse', values: y as Tensor };
    const { ignoreIndex } = this.#requireCompiled();
    return ignoreIndex === undefined ? { classes: y.data as Int32Array | number[] } : { classes: y.data as Int32Array | number[], ignoreIndex };
  }

  get #accuracy(): boolean {
    return this.#compiled?.metrics?.includes('accuracy') ?? false;
  }

  /**
   * One optimizer step on a batch (runs on the thread pool; the arrays are copied when the call is made, and calls
   * run in call order). With `lengths`, the recurrent layers stop at each row's length and target positions past it
   * are left out of the loss. A batch whose loss or gradient norm is not finite is not applied: it rejects with
   * ERR_RNNKIT_NON_FINITE, or with `nonFinite: 'skip'` resolves with `skipped: true`.
   */
  trainOnBatch(x: ModelInput, y: ModelTarget, options: TrainOnBatchOptions = {}): Promise<TrainOnBatchResult> {
    try {
      const clipNorm = this.#requireCompiled().clipNorm ?? 0;
      if (typeof options !== 'object' || options === null)
        throw rnnkitError('ERR_RNNKIT_TYPE', 'trainOnBatch options must be an object { carryState?, lengths?, nonFinite? }');
      checkOptions(options, 'trainOnBatch options', ['carryState', 'lengths', 'nonFinite']);
      const accuracy = this.#accuracy;
      const call = this.#n.trainStep(this.#batchInput(x, options.lengths), this.#target(y), {
        clipNorm, carryState: options.carryState ?? false, nonFinite: options.nonFinite ?? 'error',
      });
      return call.then((r) => {
        if (!r.skipped) this.#step++;
        const out: TrainOnBatchResult = { loss: r.loss, gradNorm: r.gradNorm, counted: r.counted, skipped: r.skipped };
        if (accuracy) out.accuracy = r.counted ? (r.correct ?? 0) / r.counted : NaN;
        return out;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The mean loss over every counted target position of the data (no gradients, no dropout), and the compiled
   * metrics. With `lengths`, positions past a row's length are left out.
   */
  async evaluate(x: ModelInput, y: ModelTarget, options: EvaluateOptions = {}): Promise<EvaluateResult> {
    this.#requireCompiled();
    checkTensor(x, 'x');
    checkTensor(y, 'y');
    if (typeof options !== 'object' || options === null)
      throw rnnkitError('ERR_RNNKIT_TYPE', 'evaluate options must be an object { batchSize?, lengths? }');
    checkOptions(options, 'evaluate options', ['batchSize', 'lengths']);
    const n = x.shape[0];
    if (y.shape[0] !== n) throw rnnkitError('ERR_RNNKIT_SHAPE', `x has ${n} rows but y has ${y.shape[0]}`);
    const lengths = options.lengths === undefined ? undefined : checkLengths(options.lengths, x.shape);
    const batch = integerOption(options.batchSize, 'batchSize', 1, Math.max(n, 1));
    const totals = new MetricTotals();
    for (let i = 0; i < n; i += batch) {
      const rows = Array.from({ length: Math.min(batch, n - i) }, (_, k) => i + k);
      const whole = rows.length === n;
      const input = this.#batchInput(whole ? x : takeRows(x, rows), lengths && (whole ? lengths : rows.map((r) => lengths[r])));
      const target = this.#target(whole ? y : takeRows(y, rows));
      totals.add(await this.#n.evaluate(input, target));
    }
    return totals.result(this.#accuracy);
  }

  /**
   * Outputs for a batch (after the last layer's activation), without blocking the event loop. `options.lengths`
   * gives each row's valid steps, for batches of sequences of different lengths padded to one.
   */
  predict(x: ModelInput, options?: PredictOptions): Promise<Tensor> {
    let input: NativeSequenceInput;
    try {
      input = this.#predictInput(x, options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#n.forward(input).then((r) => r.output);
  }

  /** `predict`, synchronously. */
  predictSync(x: ModelInput, options?: PredictOptions): Tensor {
    return this.#n.forwardSync(this.#predictInput(x, options)).output;
  }

  /** Outputs and final recurrent states (each recurrent layer's [layers * directions, batch, units], concatenated). */
  async predictWithState(x: ModelInput, initialState?: { h?: Float32Array; c?: Float32Array }, options?: PredictOptions): Promise<{ output: Tensor; h: Float32Array; c?: Float32Array }> {
    const input = { ...this.#predictInput(x, options), h0: initialState?.h, c0: initialState?.c };
    const r = await this.#n.forward(input);
    return { output: r.output, h: r.hn, c: r.cn };
  }

  // fit's data, checked whole before the first step (so that a bad value anywhere loses no training) and copied
  // (the caller may change its arrays while fit runs): the native converter checks types, integers and lengths
  // against shapes, and the network checks the input as a forward would (token ids in the vocabulary, features).
  #fitData(x: ModelInput, y: ModelTarget, options: FitOptions): { x: ModelInput; y: ModelTarget } {
    const { loss } = this.#requireCompiled();
    checkFitOptions(options);
    const xc = native.copyTensor(x, 'x', this.#vocabSize ? 'int32' : 'float32') as ModelInput;
    const yc = native.copyTensor(y, 'y', loss === 'mse' ? 'float32' : 'int32') as ModelTarget;
    this.#n.checkInput(this.#input(xc));
    if (yc.shape[0] !== xc.shape[0]) throw rnnkitError('ERR_RNNKIT_SHAPE', `x has ${xc.shape[0]} rows but y has ${yc.shape[0]}`);
    if (options.validationData !== undefined) {
      const v = options.validationData;
      if (typeof v !== 'object' || v === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'validationData must be { x, y, lengths? }');
      checkOptions(v, 'validationData', ['x', 'y', 'lengths']);
      this.#n.checkInput(this.#input(v.x));
    }
    return { x: xc, y: yc };
  }

  // One training step of fit / fitDataset: a non-finite step rejects with where it happened.
  async #fitStep(x: ModelInput, y: ModelTarget, options: TrainOnBatchOptions, where: string): Promise<TrainOnBatchResult> {
    try {
      return await this.trainOnBatch(x, y, options);
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err?.code === 'ERR_RNNKIT_NON_FINITE') {
        throw rnnkitError('ERR_RNNKIT_NON_FINITE', `${where} (training step ${this.#step + 1}): ${err.message}; ` +
          "pass nonFinite: 'skip' to skip such batches and count them in history.skippedSteps");
      }
      throw e;
    }
  }

  /** Train over (x, y) for some epochs; runs every step on the thread pool. */
  async fit(xGiven: ModelInput, yGiven: ModelTarget, options: FitOptions = {}): Promise<History> {
    const { x, y } = this.#fitData(xGiven, yGiven, options);
    const n = x.shape[0];
    const lengths = options.lengths === undefined ? undefined : checkLengths(options.lengths, x.shape);
    if (lengths && options.stateful)
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'lengths cannot be combined with stateful (chunks of a row would have no valid step)');
    const accuracy = this.#accuracy;
    const epochs = integerOption(options.epochs, 'epochs', 0, 1);
    const batchSize = options.stateful ? n : Math.min(integerOption(options.batchSize, 'batchSize', 1, 32), n);
    const rng = new SeededRandom(options.seed ?? 0x5eed);
    const nonFinite = options.nonFinite ?? 'error';
    const history = newHistory(accuracy);
    const cb = options.callbacks ?? {};
    const started = performance.now();
    let taken = 0;
    await cb.onTrainBegin?.();
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      const batches: { x: ModelInput; y: ModelTarget; lengths?: Int32Array; carry: boolean; tokens: number }[] = [];
      if (options.stateful) {
        const T = x.shape[1];
        const chunk = integerOption(options.chunkLength, 'chunkLength', 1, T);
        this.#n.resetState();
        for (let t0 = 0; t0 < T; t0 += chunk) {
          const t1 = Math.min(T, t0 + chunk);
          batches.push({ x: takeSteps(x, t0, t1), y: y.shape.length >= 2 ? takeSteps(y, t0, t1) : y, carry: true, tokens: n * (t1 - t0) });
        }
      } else {
        const order = Array.from({ length: n }, (_, i) => i);
        if (options.shuffle ?? true)
          for (let i = n - 1; i > 0; i--) {
            const j = rng.int(i + 1);
            [order[i], order[j]] = [order[j], order[i]];
          }
        for (let i = 0; i < n; i += batchSize) {
          const rows = order.slice(i, i + batchSize);
          const rowLengths = lengths && Int32Array.from(rows, (r) => lengths[r]);
          const tokens = rowLengths ? rowLengths.reduce((a, b) => a + b, 0) : rows.length * (x.shape[1] ?? 1);
          batches.push({ x: takeRows(x, rows), y: takeRows(y, rows), lengths: rowLengths, carry: false, tokens });
        }
      }
      const totals = new MetricTotals();
      let batchIndex = 0;
      for (const b of batches) {
        if (options.signal?.aborted) break outer;
        if (options.steps !== undefined && taken >= options.steps) break outer;
        const t0 = performance.now();
        const r = await this.#fitStep(b.x, b.y, { carryState: b.carry, lengths: b.lengths, nonFinite }, `epoch ${epoch}, batch ${batchIndex}`);
        batchIndex++;
        taken++;
        if (r.skipped) {
          history.skippedSteps++;
          continue;
        }
        totals.add(r, r.accuracy);
        history.steps.push(stepEntry(this.#step, r));
        const seconds = (performance.now() - t0) / 1000;
        await cb.onStepEnd?.({ step: this.#step, epoch, ...metricsOf(r), gradNorm: r.gradNorm, tokensPerSecond: b.tokens / seconds, elapsedSeconds: (performance.now() - started) / 1000 });
        await this.#maybeCheckpoint(options.checkpoint);
      }
      const logs: EpochLogs = { epoch, step: this.#step, ...totals.result(accuracy), elapsedSeconds: (performance.now() - started) / 1000 };
      if (options.validationData) {
        const v = options.validationData;
        const val = await this.evaluate(v.x, v.y, { batchSize, lengths: v.lengths });
        logs.valLoss = val.loss;
        if (accuracy) logs.valAccuracy = val.accuracy;
      }
      pushEpoch(history, logs);
      await cb.onEpochEnd?.(logs);
    }
    await cb.onTrainEnd?.(history);
    return history;
  }

  /** Train for a number of steps on batches drawn from a source (random windows of a corpus, a stream, ...). */
  async fitDataset(source: BatchSource, options: FitDatasetOptions): Promise<History> {
    this.#requireCompiled();
    if (!source || typeof source.nextBatch !== 'function') throw rnnkitError('ERR_RNNKIT_TYPE', 'fitDataset needs a source with nextBatch()');
    checkFitDatasetOptions(options);
    const cb = options.callbacks ?? {};
    const nonFinite = options.nonFinite ?? 'error';
    const accuracy = this.#accuracy;
    const history = newHistory(accuracy);
    const started = performance.now();
    let totals = new MetricTotals();
    await cb.onTrainBegin?.();
    const validate = async (): Promise<void> => {
      const v = options.validation;
      const logs: EpochLogs = { epoch: history.loss.length, step: this.#step, ...totals.result(accuracy), elapsedSeconds: (performance.now() - started) / 1000 };
      if (v) {
        const val = new MetricTotals();
        for (let i = 0; i < v.batches; i++) {
          const b = v.source.nextBatch();
          const input = this.#batchInput(b.x, b.lengths);
          const target = this.#target(b.y);
          val.add(await this.#n.evaluate(input, target));
        }
        const r = val.result(accuracy);
        logs.valLoss = r.loss;
        if (accuracy) logs.valAccuracy = r.accuracy;
      }
      pushEpoch(history, logs);
      totals = new MetricTotals();
      await cb.onEpochEnd?.(logs);
    };
    for (let i = 0; i < options.steps; i++) {
      if (options.signal?.aborted) break;
      const b = source.nextBatch();
      if (options.stateful && b.first) this.#n.resetState();
      const t0 = performance.now();
      const r = await this.#fitStep(b.x, b.y, { carryState: options.stateful ?? false, lengths: b.lengths, nonFinite }, `step ${i}`);
      if (r.skipped) {
        history.skippedSteps++;
        continue;
      }
      totals.add(r, r.accuracy);
      history.steps.push(stepEntry(this.#step, r));
      const tokens = b.lengths ? Array.from(b.lengths).reduce((a, c) => a + c, 0) : b.x.shape[0] * (b.x.shape[1] ?? 1);
      const seconds = (performance.now() - t0) / 1000;
      await cb.onStepEnd?.({ step: this.#step, epoch: history.loss.length, ...metricsOf(r), gradNorm: r.gradNorm, tokensPerSecond: tokens / seconds, elapsedSeconds: (performance.now() - started) / 1000 });
      await this.#maybeCheckpoint(options.checkpoint);
      if (options.validation && this.#step % options.validation.every === 0) await validate();
    }
    if (totals.batches > 0) await validate();
    await cb.onTrainEnd?.(history);
    return history;
  }

  async #maybeCheckpoint(c: CheckpointOptions | undefined): Promise<void> {
    if (!c) return;
    if (!(c.every > 0)) throw rnnkitError('ERR_RNNKIT_VALUE', 'checkpoint.every must be > 0');
    if (this.#step % c.every === 0) await this.save(c.path, { includeOptimizer: true, extra: c.extra?.() });
  }

  /** A stateful stream for step-at-a-time inference (state kept natively between calls). */
  stream(): ModelStream {
    return new ModelStream(new native.Stream(this.#n), this.#vocabSize > 0);
  }

  /** The last layer's activation (generation samples from probabilities after a softmax, from logits otherwise). */
  get outputActivation(): Activation {
    const last = this.#layers[this.#layers.length - 1];
    return last?.kind === 'dense' ? last.activation ?? 'linear' : 'linear';
  }

  /** Generate token ids after a prompt, one step at a time; a seed reproduces the sample. */
  async generate(options: GenerateOptions): Promise<Int32Array> {
    if (!this.#vocabSize) throw rnnkitError('ERR_RNNKIT_STATE', 'generate() needs a model over token ids (vocabSize)');
    if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'generate() takes { prompt, length, ... }');
    checkOptions(options, 'generate options', ['prompt', 'length', 'temperature', 'topK', 'topP', 'seed']);
    const given = options.prompt;
    if (typeof given !== 'object' || given === null || typeof given.length !== 'number')
      throw rnnkitError('ERR_RNNKIT_TYPE', 'prompt must be an array of token ids');
    // Copied now; the token ids are checked natively at the first step.
    const prompt = Array.from(given);
    if (prompt.length === 0) throw rnnkitError('ERR_RNNKIT_VALUE', 'generate() needs a prompt of at least one token');
    if (options.length === undefined) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'generate() needs a length');
    const length = integerOption(options.length, 'length', 0, 0, 2 ** 31 - 1);
    const rng = new SeededRandom(integerOption(options.seed, 'seed', 0, Date.now()));
    const sampling = { temperature: options.temperature ?? 1, topK: options.topK ?? 0, topP: options.topP ?? 1, probabilities: this.outputActivation === 'softmax' };
    native.sampleIndex(new Float32Array(1), sampling, 0.5); // the sampling options' checks, before any work
    const stream = this.stream();
    const out = new Int32Array(length);
    try {
      let scores = await stream.step(prompt);
      for (let i = 0; i < length; i++) {
        const V = scores.shape[scores.shape.length - 1];
        const last = scores.data.subarray(scores.data.length - V);
        const next = native.sampleIndex(last, sampling, rng.next());
        out[i] = next;
        if (i + 1 < length) scores = await stream.step([next]);
      }
    } finally {
      stream.dispose();
    }
    return out;
  }

  getWeights(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const name of this.#n.paramNames()) out[name] = { data: this.#n.getParam(name), shape: this.#n.paramShape(name) };
    return out;
  }

  setWeights(weights: Record<string, Float32Array | Tensor>): void {
    for (const [name, w] of Object.entries(weights)) this.#n.setParam(name, w instanceof Float32Array ? w : w.data);
  }

  /** The builder description (layers and input), as saved in model files. */
  toJSON(): { vocabSize?: number; inputSize?: number; seed?: number; layers: LayerConfig[]; inferencePrecision?: InferencePrecision } {
    return {
      ...(this.#vocabSize ? { vocabSize: this.#vocabSize } : { inputSize: this.#inputSize }),
      ...(this.#seed !== undefined ? { seed: this.#seed } : {}),
      layers: this.#layers.map((l) => ({ ...l })),
      ...(this.inferencePrecision !== 'float32' ? { inferencePrecision: this.inferencePrecision } : {}),
    };
  }

  /** Save weights (PyTorch-style names), architecture and, optionally, the optimizer state, atomically. */
  async save(file: string, options: { includeOptimizer?: boolean; extra?: Record<string, unknown> } = {}): Promise<void> {
    checkOptions(options, 'save options', ['includeOptimizer', 'extra']);
    booleanOption(options.includeOptimizer, 'includeOptimizer', false);
    const net = this.#n;
    const tensors: NamedTensor[] = net.paramNames().map((name) => ({ name, shape: net.paramShape(name), data: net.getParam(name) }));
    const metadata: Record<string, string> = {
      format: 'rnnkit',
      formatVersion: '1',
      model: JSON.stringify(this.toJSON()),
      user: JSON.stringify(this.metadata),
    };
    if (options.includeOptimizer && this.#compiled) {
      const info = net.optimizerInfo();
      if (info) {
        for (const slot of info.stateSlots) {
          const data = net.getOptimizerState(slot);
          tensors.push({ name: `__optimizer__.${slot}`, shape: [data.length], data });
        }
        metadata.training = JSON.stringify({
          compile: this.#compiled,
          optimizerSteps: info.steps,
          step: this.#step,
          random: net.getRandomState(),
          extra: options.extra ?? {},
        });
      }
    }
    await writeFileAtomic(file, serializeSafetensors(tensors, metadata));
  }

  /**
   * The model as an ONNX file (opset 14): an inference graph with the inputs and outputs of `predict` (batch-first
   * int32 token ids `tokens` or float `input`; `output`; symbolic `batch` and `time`), the ONNX RNN, LSTM and GRU
   * operators for the recurrent layers, Gather for an embedding, MatMul and Add for a dense layer, and no dropout.
   * `lengths: true` adds an int32 input `lengths` [batch] (as predict's option); `states: true` adds each
   * recurrent layer's initial states as inputs and final states as outputs (as predictWithState). `metadata`, when
   * not empty, is stored as JSON under the model property 'rnnkit.metadata'. The tests check every supported layer
   * against ONNX Runtime. A layer ONNX cannot express throws ERR_RNNKIT_ARGUMENT naming it.
   */
  toOnnx(options: OnnxExportOptions = {}): Uint8Array {
    const net = this.#n;
    const configs = new Map(this.#names.map((name, i) => [name, this.#layers[i]]));
    const specs = (net.spec() as unknown as { layers: ExportLayer['spec'][] }).layers;
    const layers: ExportLayer[] = specs.map((spec) => ({ spec, config: configs.get(spec.name) }));
    // The exporter (and protobufjs) load on first use: most programs never export.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { exportOnnx } = require('./io/onnx/export') as typeof import('./io/onnx/export');
    const metadata: Record<string, string> = Object.keys(this.metadata).length ? { 'rnnkit.metadata': JSON.stringify(this.metadata) } : {};
    return exportOnnx({ vocabSize: this.#vocabSize, inputSize: this.#inputSize, layers, weights: this.getWeights(), metadata }, options);
  }

  /** Write `toOnnx(options)` to a file, atomically (see `save`). */
  async exportOnnx(file: string, options: OnnxExportOptions = {}): Promise<void> {
    await writeFileAtomic(file, this.toOnnx(options));
  }

  /** Free the native memory now. */
  dispose(): void {
    this.#net?.dispose();
  }

  /** Restore from a parsed model file (see `load`). */
  static fromFile(buf: Uint8Array): Sequential {
    const file = parseSafetensors(buf);
    if (file.metadata.kind === 'graph')
      throw rnnkitError('ERR_RNNKIT_FORMAT', `this file holds a graph model: load it with rnnkit.${file.metadata.compiled === 'seq2seq' ? 'GraphSeq2Seq' : 'GraphModel'}.load`);
    if (file.metadata.format !== 'rnnkit' || typeof file.metadata.model !== 'string')
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'not an rnnkit model file (no model description in __metadata__)');
    if (file.metadata.kind === 'seq2seq')
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'this file holds an encoder-decoder: load it with rnnkit.Seq2Seq.load');
    let desc: ReturnType<Sequential['toJSON']>;
    try {
      desc = JSON.parse(file.metadata.model);
    } catch {
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'the model description in __metadata__ is not valid JSON');
    }
    if (typeof desc !== 'object' || desc === null || !Array.isArray(desc.layers))
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'the model description has no layer list');
    const known = new Set(['embedding', 'recurrent', 'dense', 'dropout']);
    for (const l of desc.layers)
      if (typeof l !== 'object' || l === null || !known.has((l as { kind: string }).kind))
        throw rnnkitError('ERR_RNNKIT_FORMAT', 'the model description has an unknown layer');
    let model: Sequential;
    let declared: { name: string; shape: number[] }[];
    try {
      model = new Sequential({ vocabSize: desc.vocabSize, inputSize: desc.inputSize, seed: desc.seed, layers: desc.layers });
      declared = native.modelParameters(model.#spec());
    } catch (e) {
      throw rnnkitError('ERR_RNNKIT_FORMAT', `the model description is invalid: ${(e as Error).message}`);
    }
    // The description against the tensors present, before anything is built: a small file cannot make us allocate
    // the model it merely describes.
    checkFileTensors(declared, file.tensors);
    model.build();
    const net = model.#n;
    for (const { name } of declared) net.setParam(name, (file.tensors.get(name) as NamedTensor).data);
    if (desc.inferencePrecision !== undefined) {
      if (desc.inferencePrecision !== 'float32' && desc.inferencePrecision !== 'int8')
        throw rnnkitError('ERR_RNNKIT_FORMAT', `the model description has an unknown inference precision ${JSON.stringify(desc.inferencePrecision)}`);
      model.setInferencePrecision(desc.inferencePrecision);
    }
    try {
      model.metadata = file.metadata.user ? JSON.parse(file.metadata.user) : {};
    } catch {
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'the user metadata is not valid JSON');
    }
    if (file.metadata.training) {
      let t: { compile: CompileOptions; optimizerSteps: number; step: number; random: number[]; extra: Record<string, unknown> };
      try {
        t = JSON.parse(file.metadata.training);
      } catch {
        throw rnnkitError('ERR_RNNKIT_FORMAT', 'the training state is not valid JSON');
      }
      model.compile(t.compile);
      const info = net.optimizerInfo();
      for (const slot of info?.stateSlots ?? []) {
        const s = file.tensors.get(`__optimizer__.${slot}`);
        if (!s) throw rnnkitError('ERR_RNNKIT_FORMAT', `the optimizer state '${slot}' is missing`);
        net.setOptimizerState(slot, s.data);
      }
      net.setOptimizerState('steps', t.optimizerSteps);
      if (Array.isArray(t.random)) net.setRandomState(Int32Array.from(t.random));
      model.#step = t.step ?? 0;
      model.trainingExtra = t.extra ?? {};
    }
    return model;
  }

  /** What a checkpoint stored through `checkpoint.extra` (empty for other files). */
  trainingExtra: Record<string, unknown> = {};
}

const OPTIMIZER_PREFIX = '__optimizer__.';

/**
 * A model file's tensors against the parameters its description declares: each one present with the declared
 * shape (the reader has already matched every shape with its byte count), and no tensor that belongs to neither the
 * model nor its optimizer state (one float per parameter slot, as the model's parameters need).
 */
function checkFileTensors(declared: { name: string; shape: number[] }[], tensors: Map<string, NamedTensor>): void {
  const names = new Set<string>();
  let floats = 0;
  for (const { name, shape } of declared) {
    names.add(name);
    const t = tensors.get(name);
    if (!t) throw rnnkitError('ERR_RNNKIT_FORMAT', `the model description declares a tensor '${name}' [${shape}] that the file does not have`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw rnnkitError('ERR_RNNKIT_FORMAT', `tensor '${name}' has shape [${t.shape}], the model description declares [${shape}]`);
    floats += t.data.length;
  }
  for (const [name, t] of tensors) {
    if (names.has(name)) continue;
    if (!name.startsWith(OPTIMIZER_PREFIX))
      throw rnnkitError('ERR_RNNKIT_FORMAT', `the file has a tensor '${name}' that the model description does not declare`);
    // The optimizer keeps one value per parameter (in the parameters' padded layout: at least `floats`).
    if (t.shape.length !== 1 || t.data.length < floats || t.data.length > floats + 16 * declared.length)
      throw rnnkitError('ERR_RNNKIT_FORMAT', `the optimizer state '${name.slice(OPTIMIZER_PREFIX.length)}' has shape [${t.shape}], which does not fit the model's ${floats} parameters`);
  }
}

/** Options of a stream step. */
export interface StreamStepOptions {
  /**
   * A Float32Array of exactly the step's output length to write the output into, instead of a new array per step
   * (a server stepping many times reuses one). The returned tensor's `data` is this array. It must not share memory
   * with the input (ERR_RNNKIT_ARGUMENT) nor be detached (ERR_RNNKIT_STATE). An awaited step writes it when it
   * settles; an array detached before then makes its Promise reject with ERR_RNNKIT_STATE (the step itself ran, so
   * the stream's state has moved on).
   */
  output?: Float32Array;
}

const STEP_OPTIONS = ['output'];

/** Step-at-a-time inference with the recurrent state kept natively. */
export class ModelStream {
  readonly #stream: NativeStream;
  readonly #tokens: boolean;
  readonly #form: { features: number; sequence: boolean };
  constructor(stream: NativeStream, tokens: boolean) {
    this.#stream = stream;
    this.#tokens = tokens;
    this.#form = stream.outputForm();
  }
  // A token step's ids, given to the native converter as they are (no coercion here): 'abc', 1.7, NaN or 2**32 + 5
  // are refused there, as by every other entry point. One row, any number of steps.
  #ids(x: ArrayLike<number> | Tensor): ArrayLike<number> {
    if (!Array.isArray(x) && !ArrayBuffer.isView(x))
      throw rnnkitError('ERR_RNNKIT_TYPE', 'a token stream step takes an Array or Int32Array of token ids');
    return x as ArrayLike<number>;
  }
  // The tensor around a step's output (the native step checked `rows`: a positive integer).
  #tensor(data: Float32Array, rows: number): Tensor {
    const { features, sequence } = this.#form;
    return { data, shape: sequence ? [rows, data.length / (rows * features), features] : [rows, features] };
  }
  #output(options: StreamStepOptions | undefined): Float32Array | undefined {
    if (options === undefined) return undefined;
    // The common { output } alone skips the full check (the native one, with its suggestions), which a server
    // stepping in a loop would otherwise pay for at every step.
    if (typeof options === 'object' && options !== null && !Array.isArray(options)) {
      let onlyOutput = true;
      for (const name in options) if (name !== 'output') onlyOutput = false;
      if (onlyOutput) return options.output;
    }
    return checkOptions(options, 'stream step options', STEP_OPTIONS).output;
  }
  // The native lean form takes the data, the shape's length and dimensions as read here once (it checks their types
  // and values, token ids included) and the output array, and gives the output's Float32Array.
  /** Feed token ids (one row) or features `[batch, features]` / `[batch, time, features]`; resolves to the outputs. */
  step(x: ArrayLike<number> | Tensor, options?: StreamStepOptions): Promise<Tensor> {
    // Not an async function: an argument error becomes a rejection as an async function would make it, without a
    // second Promise around the native one.
    try {
      if (this.#tokens) {
        return this.#stream.stepData(this.#ids(x), undefined, undefined, undefined, undefined, this.#output(options))
          .then((data) => this.#tensor(data, 1));
      }
      checkTensor(x, 'x');
      const shape = x.shape, rows = shape[0];
      return this.#stream.stepData(x.data, shape.length, rows, shape[1], shape[2], this.#output(options))
        .then((data) => this.#tensor(data, rows));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  stepSync(x: ArrayLike<number> | Tensor, options?: StreamStepOptions): Tensor {
    if (this.#tokens)
      return this.#tensor(this.#stream.stepDataSync(this.#ids(x), undefined, undefined, undefined, undefined, this.#output(options)), 1);
    checkTensor(x, 'x');
    const shape = x.shape, rows = shape[0];
    return this.#tensor(this.#stream.stepDataSync(x.data, shape.length, rows, shape[1], shape[2], this.#output(options)), rows);
  }
  reset(): void {
    this.#stream.reset();
  }
  dispose(): void {
    this.#stream.dispose();
  }
}

export function sequential(options: ModelOptions): Sequential {
  return new Sequential(options);
}

/**
 * Load a model saved by `model.save` (weights, architecture, and the optimizer state of a checkpoint): a file or a
 * folder holding `model.safetensors` (as `rnnkit train` writes), as a path or a file: URL, or the file's bytes.
 * Only regular files are read (ERR_RNNKIT_FILE otherwise, and for a missing file).
 */
export async function load(file: string | URL | Uint8Array): Promise<Sequential> {
  const buf = file instanceof Uint8Array ? file : await readModelFile(file);
  return Sequential.fromFile(buf);
}

export { layerFactory as layers };
