// The one place that loads the compiled addon and describes what it exports. Everything else imports from here.
import * as path from 'node:path';
import type { Tensor, IntTensor } from './tensor';

export type CellType = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface NativeNetworkSpec {
  cell: CellType;
  inputSize?: number;
  vocabSize?: number;
  hiddenSize: number;
  numLayers?: number;
  bidirectional?: boolean;
  resetAfter?: boolean;
  headSize?: number;
  seed?: number;
}

export type NativeLayerSpec =
  | { type: 'embedding'; outputDim: number; name?: string }
  | {
      type: 'recurrent'; cell: CellType; hiddenSize: number; numLayers?: number; bidirectional?: boolean;
      resetAfter?: boolean; merge?: 'concat' | 'sum'; returnSequences?: boolean; goBackwards?: boolean;
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
}

export interface NativeSequenceInput {
  x?: Tensor;
  tokens?: IntTensor;
  lengths?: Int32Array | number[];
  h0?: Float32Array | Tensor;
  c0?: Float32Array | Tensor;
  batchFirst?: boolean;
}

export interface NativeForwardResult {
  output: Tensor;
  hn: Float32Array;
  cn?: Float32Array;
}

export interface NativeOutputGradient {
  dOutput?: Float32Array | Tensor;
  dhn?: Float32Array | Tensor;
  dcn?: Float32Array | Tensor;
}

export interface NativeInputGradient {
  dx?: Float32Array;
  dh0: Float32Array;
  dc0?: Float32Array;
}

export type NativeLossTarget =
  | { kind?: 'softmaxCrossEntropy'; classes: Int32Array | number[] | IntTensor }
  | { kind: 'mse'; values: Float32Array | Tensor };

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

export interface NativeNetwork {
  dispose(): void;
  isDisposed(): boolean;
  spec(): NativeNetworkSpec & { numLayers: number; bidirectional: boolean; headSize: number };
  paramNames(): string[];
  paramShape(name: string): number[];
  getParam(name: string): Float32Array;
  setParam(name: string, value: Float32Array): void;
  getGrad(name: string): Float32Array;
  zeroGrad(): void;
  gradNorm(): number;
  clipGradNorm(maxNorm: number): number;
  setOptimizer(config: NativeOptimizerConfig): void;
  optimizerInfo(): { type: string; lr: number; steps: number; stateSlots: string[] } | null;
  step(): void;
  getOptimizerState(slot: string): Float32Array;
  setOptimizerState(slot: string, value: Float32Array | number): void;
  memoryBytes(): number;
  forward(input: NativeSequenceInput, options?: { train?: boolean }): Promise<NativeForwardResult>;
  forwardSync(input: NativeSequenceInput, options?: { train?: boolean }): NativeForwardResult;
  backward(grad: NativeOutputGradient): Promise<NativeInputGradient>;
  backwardSync(grad: NativeOutputGradient): NativeInputGradient;
  loss(target: NativeLossTarget): Promise<NativeInputGradient & { loss: number }>;
  lossSync(target: NativeLossTarget): NativeInputGradient & { loss: number };
  trainStep(input: NativeSequenceInput, target: NativeLossTarget, options?: { clipNorm?: number; carryState?: boolean }): Promise<{ loss: number; gradNorm: number }>;
  trainStepSync(input: NativeSequenceInput, target: NativeLossTarget, options?: { clipNorm?: number; carryState?: boolean }): { loss: number; gradNorm: number };
  evaluate(input: NativeSequenceInput, target: NativeLossTarget): Promise<number>;
  evaluateSync(input: NativeSequenceInput, target: NativeLossTarget): number;
  /** Forget the state carried between `trainStep(..., { carryState: true })` calls. */
  resetState(): void;
  getRandomState(): number[];
  setRandomState(state: Int32Array): void;
}

export interface NativeStream {
  step(input: NativeSequenceInput): Promise<{ output: Tensor }>;
  stepSync(input: NativeSequenceInput): { output: Tensor };
  reset(): void;
  dispose(): void;
}

export interface BackendInfo {
  device: 'cpu';
  /** What does the matrix work: a system BLAS ("openblas", "blis", "mkl", ...) or "builtin-<simd>". */
  gemm: string;
  blas: string;
  blasDetail: string;
  builtinKernel: string;
  threads: number;
  hardwareThreads: number;
}

interface NativeModule {
  Network: new (spec: NativeNetworkSpec | NativeModelSpec) => NativeNetwork;
  Stream: new (network: NativeNetwork) => NativeStream;
  sampleIndex(scores: Float32Array, options: { temperature?: number; topK?: number; topP?: number; probabilities?: boolean }, u: number): number;
  backendInfo(): BackendInfo;
  setThreads(n: number): void;
  errorCodes: string[];
}

function load(): NativeModule {
  // node-gyp-build finds a prebuilt binary for this platform, or the one `npm install` compiled.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const gypBuild = require('node-gyp-build') as (dir: string) => NativeModule;
  return gypBuild(path.join(__dirname, '..'));
}

export const native: NativeModule = load();
