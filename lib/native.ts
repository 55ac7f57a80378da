// The one place that loads the compiled addon and describes what it exports. Everything else imports from here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rnnkitError } from './errors';
import type { Tensor } from './tensor';
import type {
  CellType, GateActivation, DeviceName, RecurrentSpec, SequenceBatch, ForwardResult, OutputGradient, InputGradient,
  LossTarget,
} from './network-types';
import type { Seq2SeqSpec, TokenIds, Seq2SeqBatch, DecodeOptions, DecodeResult } from './seq2seq-types';

export type { CellType, GateActivation, DeviceName } from './network-types';

// The functional API's documented types are the addon's argument and result types.
export type NativeNetworkSpec = RecurrentSpec;

export type NativeLayerSpec =
  | { type: 'embedding'; outputDim: number; name?: string }
  | {
      type: 'recurrent'; cell: CellType; hiddenSize: number; numLayers?: number; bidirectional?: boolean;
      resetAfter?: boolean; gateActivation?: GateActivation; merge?: 'concat' | 'sum'; returnSequences?: boolean; goBackwards?: boolean;
      dropout?: number; name?: string;
    }
  | { type: 'dense'; units: number; activation?: 'linear' | 'softmax' | 'sigmoid' | 'tanh' | 'relu'; name?: string }
  | { type: 'dropout'; rate: number; name?: string };

/** A pipeline of layers over dense features or token ids. */
export interface NativeModelSpec {
  inputSize?: number;
  vocabSize?: number;
  layers: NativeLayerSpec[];
  seed?: number;
  device?: DeviceName;
}

export type NativeSequenceInput = SequenceBatch;
export type NativeForwardResult = ForwardResult;
export type NativeOutputGradient = OutputGradient;
export type NativeInputGradient = InputGradient;
export type NativeLossTarget = LossTarget;

/** A loss over a batch: the positions it counted and, for cross-entropy, how many the top score gets right. */
export interface NativeLossStats {
  loss: number;
  counted: number;
  /** Cross-entropy only. */
  correct?: number;
}

export interface NativeTrainStepResult extends NativeLossStats {
  gradNorm: number;
  /** True when the step was not applied (non-finite loss or gradient norm, with nonFinite: 'skip'). */
  skipped: boolean;
}

export interface NativeOptimizerConfig {
  type: 'sgd' | 'adam' | 'adamw' | 'rmsprop';
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
  alpha?: number;
  centered?: boolean;
  maximize?: boolean;
}

export interface NativeTrainStepOptions {
  clipNorm?: number;
  carryState?: boolean;
  /** A step whose loss or gradient norm is not finite is never applied: 'error' (default) rejects, 'skip' resolves. */
  nonFinite?: 'error' | 'skip';
}

/** What every native model handle has (native/addon/model_handle.h). */
export interface NativeModelHandle {
  dispose(): void;
  isDisposed(): boolean;
  paramNames(): string[];
  paramShape(name: string): number[];
  setParam(name: string, value: Float32Array): void;
  zeroGrad(): void;
  setOptimizer(config: NativeOptimizerConfig): void;
}

/** The parameters and gradients of a GraphModel or Seq2Seq handle, as tensors (a Network's are flat). */
export interface NativeTensorParams {
  getParam(name: string): Tensor;
  getGrad(name: string): Tensor;
}

/** Gradient norm, clipping and a bare optimizer step (Network, Seq2Seq). */
export interface NativeGradientSteps {
  gradNorm(): number;
  clipGradNorm(maxNorm: number): number;
  step(): void;
}

export interface NativeNetwork extends NativeModelHandle, NativeGradientSteps {
  spec(): NativeNetworkSpec & { numLayers: number; bidirectional: boolean; headSize: number };
  getParam(name: string): Float32Array;
  getGrad(name: string): Float32Array;
  optimizerInfo(): { type: string; lr: number; steps: number; stateSlots: string[] } | null;
  getOptimizerState(slot: string): Float32Array;
  setOptimizerState(slot: string, value: Float32Array | number): void;
  memoryBytes(): number;
  forward(input: NativeSequenceInput, options?: { train?: boolean }): Promise<NativeForwardResult>;
  forwardSync(input: NativeSequenceInput, options?: { train?: boolean }): NativeForwardResult;
  backward(grad: NativeOutputGradient): Promise<NativeInputGradient>;
  backwardSync(grad: NativeOutputGradient): NativeInputGradient;
  loss(target: NativeLossTarget): Promise<NativeInputGradient & { loss: number }>;
  lossSync(target: NativeLossTarget): NativeInputGradient & { loss: number };
  trainStep(input: NativeSequenceInput, target: NativeLossTarget, options?: NativeTrainStepOptions): Promise<NativeTrainStepResult>;
  trainStepSync(input: NativeSequenceInput, target: NativeLossTarget, options?: NativeTrainStepOptions): NativeTrainStepResult;
  /** The checks a forward applies to its input (shape, types, token ids in range), without running it. */
  checkInput(input: NativeSequenceInput): void;
  evaluate(input: NativeSequenceInput, target: NativeLossTarget): Promise<NativeLossStats>;
  evaluateSync(input: NativeSequenceInput, target: NativeLossTarget): NativeLossStats;
  /** Forget the state carried between `trainStep(..., { carryState: true })` calls. */
  resetState(): void;
  getRandomState(): number[];
  setRandomState(state: Int32Array): void;
  setInferencePrecision(precision: 'float32' | 'int8'): void;
  inferencePrecision(): 'float32' | 'int8';
}

export interface NativeStream {
  step(input: NativeSequenceInput): Promise<{ output: Tensor }>;
  stepSync(input: NativeSequenceInput): { output: Tensor };
  /** One step in the lean form: a dense model's data, then its shape as the shape array's length and its first
   *  three elements, as read from the caller's array (a token model: its ids, the next four undefined), and
   *  optionally the Float32Array the output is written into; gives the output's Float32Array (shaped as
   *  outputForm() says). */
  stepData(data: unknown, rank: unknown, d0: unknown, d1: unknown, d2: unknown, output?: Float32Array): Promise<Float32Array>;
  stepDataSync(data: unknown, rank: unknown, d0: unknown, d1: unknown, d2: unknown, output?: Float32Array): Float32Array;
  /** What a lean step's output holds per row: `features` per step, and whether it keeps the time axis
   *  (`[batch, time, features]`) or not (`[batch, features]`: a recurrent layer returns only its last step). */
  outputForm(): { features: number; sequence: boolean };
  reset(): void;
  dispose(): void;
}

export interface BackendInfo {
  device: 'cpu';
  /** What does the matrix work: "builtin-<simd>" (the default where the built-in GEMM has AVX-512 or AVX2 kernels)
   *  or a system BLAS ("openblas", "blis", "mkl", ...: RNNKIT_BLAS, or the default on other CPUs when installed). */
  gemm: string;
  /** The system BLAS loaded, or "none". */
  blas: string;
  /** The file loaded, or why none was (not looked for by default, disabled, not found, could not be used). */
  blasDetail: string;
  builtinKernel: string;
  /** The kernel of int8 inference (setInferencePrecision): "avx512vnni", "avx2" or "scalar". */
  int8Kernel: string;
  /** The kernel of a float32 stream step of one row: "avx512", "avx2" or "scalar". */
  stepKernel: string;
  threads: number;
  hardwareThreads: number;
}

/** A device this process can run networks on (rnnkit.devices()). */
export type DeviceInfo =
  | { type: 'cpu'; name: 'cpu'; threads: number; gemm: string }
  | {
      type: 'cuda'; index: number; name: string;
      /** Total device memory in bytes. */
      memory: number;
      /** "major.minor", e.g. "9.0" for an H100. */
      computeCapability: string;
    };

// The Seq2Seq API's documented types (seq2seq-types.ts) are the addon's.
export type NativeSeq2SeqSpec = Seq2SeqSpec;
export type NativeIds = TokenIds;
export type NativeSeq2SeqBatch = Seq2SeqBatch;
export type NativeDecodeOptions = DecodeOptions;
export type NativeDecodeResult = DecodeResult;

export interface NativeDecoder {
  step(tokens: Int32Array | number[]): { logits: Tensor; attention: Tensor | null };
  rows(): number;
  dispose(): void;
}

export interface NativeSeq2Seq extends NativeModelHandle, NativeTensorParams, NativeGradientSteps {
  spec(): Required<Omit<NativeSeq2SeqSpec, 'seed' | 'device'>>;
  forward(batch: NativeSeq2SeqBatch, options?: { train?: boolean }): Promise<{ logits: Tensor; attention: Tensor | null }>;
  forwardSync(batch: NativeSeq2SeqBatch, options?: { train?: boolean }): { logits: Tensor; attention: Tensor | null };
  lossSync(): number;
  evaluate(batch: NativeSeq2SeqBatch): Promise<{ loss: number; counted: number }>;
  evaluateSync(batch: NativeSeq2SeqBatch): { loss: number; counted: number };
  trainStep(batch: NativeSeq2SeqBatch, options?: { clipNorm?: number }): Promise<{ loss: number }>;
  trainStepSync(batch: NativeSeq2SeqBatch, options?: { clipNorm?: number }): { loss: number };
  decode(source: NativeIds, options: NativeDecodeOptions): Promise<NativeDecodeResult>;
  decodeSync(source: NativeIds, options: NativeDecodeOptions): NativeDecodeResult;
  beginDecode(source: NativeIds, options?: { sourceLengths?: Int32Array | number[] }): NativeDecoder;
}

/** One loss of a graph model's output (none: the output has no loss). */
export interface NativeGraphLoss {
  kind: 'crossEntropy' | 'mse' | 'none';
  ignoreIndex?: number;
  weight?: number;
  /** Cross-entropy: also count the positions whose largest logit is the target class (stats.correct). */
  accuracy?: boolean;
}

export interface NativeGraphInput {
  data: Float32Array | Int32Array | number[];
  shape: number[];
  lengths?: Int32Array | number[];
}

export interface NativeGraphStats {
  loss: number;
  gradNorm: number;
  outputLosses: number[];
  counted: number[];
  correct: number[];
}

/** Per output: its loss's targets (class ids or values), null for an output without a loss. */
export type NativeGraphTargets = (Float32Array | Int32Array | number[] | null)[];

/** A model graph (native/core/graph_network.h), made from a plan (lib/graph/compile.ts). */
export interface NativeGraph extends NativeModelHandle, NativeTensorParams {
  tensors(): { name: string; kind: string; features: number; stateSlots: number }[];
  forward(inputs: NativeGraphInput[], options?: { train?: boolean }): Promise<Tensor[]>;
  forwardSync(inputs: NativeGraphInput[], options?: { train?: boolean }): Tensor[];
  evaluate(inputs: NativeGraphInput[], losses: NativeGraphLoss[], targets: NativeGraphTargets): Promise<NativeGraphStats>;
  evaluateSync(inputs: NativeGraphInput[], losses: NativeGraphLoss[], targets: NativeGraphTargets): NativeGraphStats;
  trainStep(inputs: NativeGraphInput[], losses: NativeGraphLoss[], targets: NativeGraphTargets, options?: { clipNorm?: number }): Promise<NativeGraphStats>;
  trainStepSync(inputs: NativeGraphInput[], losses: NativeGraphLoss[], targets: NativeGraphTargets, options?: { clipNorm?: number }): NativeGraphStats;
  /** After forwardSync(inputs, { train: true }): the losses backpropagated, gradients accumulated. */
  lossBackwardSync(losses: NativeGraphLoss[], targets: NativeGraphTargets): NativeGraphStats;
}

interface NativeModule {
  Network: new (spec: NativeNetworkSpec | NativeModelSpec) => NativeNetwork;
  Graph: new (plan: unknown) => NativeGraph;
  Seq2Seq: new (spec: NativeSeq2SeqSpec) => NativeSeq2Seq;
  Stream: new (network: NativeNetwork) => NativeStream;
  sampleIndex(scores: Float32Array, options: { temperature?: number; topK?: number; topP?: number; probabilities?: boolean }, u: number): number;
  backendInfo(): BackendInfo;
  devices(): DeviceInfo[];
  setThreads(n: number): void;
  errorCodes: string[];
  /** The one check of option names (unknown names throw ERR_RNNKIT_ARGUMENT with the closest known name). */
  checkOptionNames(options: object, what: string, known: string[]): void;
  /** A tensor checked by the native converter (types, integers, data length against shape) and copied. */
  copyTensor(value: unknown, what: string, dtype: 'float32' | 'int32'): { data: Float32Array | Int32Array; shape: number[] };
  /** The safetensors reader (lib/io/safetensors.ts wraps it): tensors in file order, converted to float32. */
  parseSafetensors(bytes: Uint8Array, options?: { only?: string[] }): { tensors: { name: string; shape: number[]; data: Float32Array }[]; metadata: Record<string, string> };
  /** The parameters a Network of this pipeline spec would have, found without building it. */
  modelParameters(spec: NativeModelSpec): { name: string; shape: number[] }[];
}

interface GypBuild {
  (dir: string): unknown;
  resolve(dir: string): string;
}

const BUILD_FROM_SOURCE =
  'Build it from source with `npm rebuild rnnkit` (where install scripts are blocked: `npx node-gyp rebuild` in ' +
  "rnnkit's folder; in a checkout: `npm run build`), which needs Python 3, make and a C++17 compiler " +
  '(README, "Install").';

/** The prebuilt binaries a package folder ships, as "linux-x64 (glibc)", ... */
function shippedPrebuilds(root: string): string[] {
  const found: string[] = [];
  try {
    for (const tuple of fs.readdirSync(path.join(root, 'prebuilds')).sort()) {
      const flavours = fs.readdirSync(path.join(root, 'prebuilds', tuple))
        .filter((f) => f.endsWith('.node'))
        .map((f) => f.split('.').slice(1, -1).filter((tag) => tag !== 'napi').join(', '));
      for (const flavour of flavours) found.push(flavour ? `${tuple} (${flavour})` : tuple);
    }
  } catch {
    // no prebuilds/ folder
  }
  return found;
}

/** The builds of this package that `RNNKIT_BINARY` may name instead of a path, and the scripts that make them. */
export const NAMED_BUILDS: Readonly<Record<string, { dir: string; script: string }>> = {
  cuda: { dir: 'build-cuda', script: 'npm run build:cuda' },
  cmake: { dir: 'build-cmake', script: 'npm run build:cmake' },
};

/**
 * Which native binary to load, the one rule (pure: the file system and the default search come in as functions,
 * so that tests can try it with fake paths). `RNNKIT_BINARY` names a build of the package in `root` (`cuda`: the
 * binary `npm run build:cuda` writes, build-cuda/Release/rnnkit.node; `cmake`: build-cmake's) or the path of a
 * rnnkit.node (relative to the working directory); unset or empty, `findDefault` gives the default one (the build of
 * `npm install` in build/Release, else the prebuilt binary for this platform). A binary that RNNKIT_BINARY names and
 * that does not exist is ERR_RNNKIT_NO_BINARY: asking for the CUDA build never quietly gives the CPU one.
 */
export function chooseBinary(
  root: string,
  env: Readonly<Record<string, string | undefined>>,
  isFile: (file: string) => boolean,
  findDefault: () => string,
): string {
  const wanted = env.RNNKIT_BINARY?.trim();
  if (!wanted) return findDefault();
  const named = Object.prototype.hasOwnProperty.call(NAMED_BUILDS, wanted) ? NAMED_BUILDS[wanted] : undefined;
  const file = named ? path.join(root, named.dir, 'Release', 'rnnkit.node') : path.resolve(wanted);
  if (!isFile(file))
    throw rnnkitError(
      'ERR_RNNKIT_NO_BINARY',
      named
        ? `RNNKIT_BINARY=${wanted} asks for ${file}, which does not exist: build it with \`${named.script}\` in rnnkit's folder`
        : `RNNKIT_BINARY names ${file}, which is not a file: give the path of a rnnkit.node, or ` +
          `${Object.keys(NAMED_BUILDS).map((k) => `'${k}'`).join(' or ')} for a build of this package`,
    );
  return file;
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function load(): { module: NativeModule; file: string } {
  // node-gyp-build finds the binary that `npm install` compiled (build/Release), or else a prebuilt one for this
  // platform in prebuilds/.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const gypBuild = require('node-gyp-build') as GypBuild;
  const root = path.join(__dirname, '..');
  const file = chooseBinary(root, process.env, isFile, () => {
    try {
      return gypBuild.resolve(root);
    } catch (cause) {
      const shipped = shippedPrebuilds(root);
      const platform = `${process.platform}-${process.arch}`;
      const err = rnnkitError(
        'ERR_RNNKIT_NO_BINARY',
        `rnnkit has no native binary for this system (${platform}, Node ${process.versions.node}): no prebuilt ` +
          `binary fits it (this package ships ${shipped.length ? shipped.join(', ') : 'none'}) and no build from ` +
          `source exists in ${path.join(root, 'build', 'Release')}. ${BUILD_FROM_SOURCE}`,
      );
      (err as Error & { cause?: unknown }).cause = cause;
      throw err;
    }
  });
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return { module: require(file) as NativeModule, file };
  } catch (cause) {
    const err = rnnkitError(
      'ERR_RNNKIT_NO_BINARY',
      `rnnkit's native binary ${file} cannot be loaded on this system (${process.platform}-${process.arch}, Node ` +
        `${process.versions.node}): ${String((cause as Error)?.message ?? cause).split('\n')[0]}. ${BUILD_FROM_SOURCE}`,
    );
    (err as Error & { cause?: unknown }).cause = cause;
    throw err;
  }
}

/** The environment as the process had it before the addon was loaded: loading it may set variables for the BLAS it
 *  finds (OPENBLAS_THREAD_TIMEOUT), which child processes of other libraries should not inherit. */
export const environmentBeforeLoad: Readonly<NodeJS.ProcessEnv> = { ...process.env };

const loaded = load();

export const native: NativeModule = loaded.module;

/** The path of the native binary this process loaded (see chooseBinary). */
export const nativeBinary: string = loaded.file;
