// The data types of the network calls: the specs, inputs, outputs, gradients and loss targets that the addon takes
// and returns, which the functional API (recurrent.ts) documents. Types only, importing nothing of the library, so
// that the addon's loader (native.ts) and the classes over it depend on them without depending on each other.
import type { Tensor, IntTensor } from './tensor';

export type CellType = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

/**
 * The activation of the LSTM and GRU gates (LSTM i, f, o; GRU r, z): `'sigmoid'` (PyTorch's, the default) or
 * `'hard_sigmoid'`, clip(0.2 x + 0.5, 0, 1) (TF.js's default recurrentActivation). The candidate and the cell
 * output always use tanh.
 */
export type GateActivation = 'sigmoid' | 'hard_sigmoid';

/**
 * Where a network runs: the CPU (default), or a CUDA GPU (`'cuda'` is device 0, `'cuda:N'` device N). CUDA needs a
 * build with `npm run build:cuda`, an NVIDIA driver and cuBLAS; otherwise the constructor throws ERR_RNNKIT_DEVICE.
 */
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}`;

export interface RecurrentSpec {
  /** `rnn_tanh`, `rnn_relu`, `lstm` or `gru` (PyTorch's equations and gate orders). */
  cell: CellType;
  /** Features of a dense input. Give this or `vocabSize`. */
  inputSize?: number;
  /** One-hot input over this many symbols, fed as token ids. Give this or `inputSize`. */
  vocabSize?: number;
  hiddenSize: number;
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** Run each layer in both directions and concatenate (default false). */
  bidirectional?: boolean;
  /** GRU only: true (default) is PyTorch/cuDNN's reset-after; false is Keras/TF.js's reset-before. */
  resetAfter?: boolean;
  /** LSTM and GRU only: `'sigmoid'` (default) or TF.js's `'hard_sigmoid'` on the gates (see GateActivation). */
  gateActivation?: GateActivation;
  /** A dense head of this many outputs on top of every time step (default 0: none). */
  headSize?: number;
  /** Seed of the initial weights (PyTorch's default initialisation). */
  seed?: number;
  /** 'cpu' (default) or 'cuda' / 'cuda:N' (see devices()). */
  device?: DeviceName;
}

export interface SequenceBatch {
  /** Dense input, `[time, batch, features]` (or `[batch, time, features]` with batchFirst). */
  x?: Tensor;
  /** Token ids for a network with `vocabSize`, `[time, batch]` (or `[batch, time]`). */
  tokens?: IntTensor;
  /** Per batch row, the number of valid steps (packed-sequence semantics). */
  lengths?: Int32Array | number[];
  /** Initial hidden state `[numLayers * directions, batch, hidden]`; zero when absent. */
  h0?: Float32Array | Tensor;
  /** Initial cell state (LSTM), like h0. */
  c0?: Float32Array | Tensor;
  /** Sequence tensors are `[batch, time, ...]` (default false: time-major as PyTorch). */
  batchFirst?: boolean;
}

export interface ForwardResult {
  /** The head's logits, or the top layer's outputs when there is no head. */
  output: Tensor;
  hn: Float32Array;
  cn?: Float32Array;
}

export interface OutputGradient {
  dOutput?: Float32Array | Tensor;
  dhn?: Float32Array | Tensor;
  dcn?: Float32Array | Tensor;
}

export interface InputGradient {
  dx?: Float32Array;
  dh0: Float32Array;
  dc0?: Float32Array;
}

/**
 * What a loss compares the last output with. Positions left out of a loss (neither its value nor its gradient):
 * a cross-entropy target equal to `ignoreIndex` (default -1, as PyTorch's `ignore_index`); and, when the forward had
 * `lengths`, every position of a sequence output past its row's length (its target is not read). Any other class id
 * must be a class of the output (ERR_RNNKIT_VALUE otherwise). The loss is the mean over the counted positions (mse:
 * over their values), 0 when none is counted.
 */
export type LossTarget =
  | { kind?: 'softmaxCrossEntropy'; classes: Int32Array | number[] | IntTensor; ignoreIndex?: number }
  | { kind: 'mse'; values: Float32Array | Tensor };
