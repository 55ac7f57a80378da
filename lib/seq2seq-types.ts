// The data types of the encoder-decoder (seq2seq.ts): its spec, batches and decoding options and results, which the
// addon takes and returns. Types only, importing nothing of the library but other types, so that the addon's loader
// (native.ts) and the Seq2Seq class depend on them without depending on each other.
import type { CellType, DeviceName } from './network-types';
import type { Tensor } from './tensor';

/** How the decoder looks at the encoder's outputs. */
export type AttentionKind = 'none' | 'bahdanau' | 'luong';

/**
 * An encoder-decoder in the shape of PyTorch's seq2seq tutorial:
 * - encoder: `encoder.embedding` [srcVocab, embedSize], `encoder.rnn` (numLayers layers of `cell`);
 * - decoder: `decoder.embedding` [tgtVocab, embedSize], `decoder.rnn` started from the encoder's final state (every
 *   layer; h and c for LSTM, taken at each row's last valid source step), `decoder.out` [tgtVocab, hiddenSize];
 * - attention over the encoder's outputs, masked to each row's valid source steps:
 *   `'bahdanau'` (additive, inside the recurrence: the context from h_top(t-1) is concatenated after the embedding
 *   as the decoder's input; `decoder.attention.{Wa,Ua,Va}`), `'luong'` (dot score on h_top(t), then
 *   o_t = tanh(Wc [context, h_top(t)]); `decoder.attention.Wc`) or `'none'` (the state hand-off alone).
 * Parameter names are PyTorch's (`fromTorch`-compatible).
 */
export interface Seq2SeqSpec {
  /** 'gru' (default), 'lstm', 'rnn_tanh' or 'rnn_relu', for both stacks. */
  cell?: CellType;
  /** Default 'bahdanau'. */
  attention?: AttentionKind;
  srcVocab: number;
  tgtVocab: number;
  embedSize: number;
  hiddenSize: number;
  /** Layers of each stack (default 1). */
  numLayers?: number;
  /** Seed of the initial weights (PyTorch's initialisers); random when absent. */
  seed?: number;
  device?: DeviceName;
}

/** Token ids, batch-first: `{ data, shape: [batch, steps] }`. */
export interface TokenIds {
  data: Int32Array | number[];
  shape: number[];
}

/**
 * A teacher-forced batch: `source` [batch, srcSteps], optional `sourceLengths` (each row's valid source steps; the
 * encoder then uses packed-sequence semantics and the attention ignores the padding), `decoderInput`
 * [batch, tgtSteps] (usually the start token followed by the targets shifted right) and `targets` [batch, tgtSteps]
 * (flat, row-major) where **a negative id (-1 by convention) marks a position left out of the loss**.
 */
export interface Seq2SeqBatch {
  source: TokenIds;
  sourceLengths?: Int32Array | number[];
  decoderInput: TokenIds;
  targets?: Int32Array | number[];
}

export interface DecodeOptions {
  /** The token the decoder starts from. */
  startToken: number;
  /** The token that ends a row (included in the output). Without it every row runs to maxLength. */
  endToken?: number;
  /**
   * At most this many tokens per row. Required without an endToken; with one, defaults to 2 * srcSteps + 10.
   * Neither given: ERR_RNNKIT_ARGUMENT.
   */
  maxLength?: number;
  /** 1 (default): greedy. A beam of 1 gives exactly greedy's tokens. */
  beamWidth?: number;
  /** Beam scores are the summed log-probabilities divided by length^lengthPenalty (default 0: no division). */
  lengthPenalty?: number;
  sourceLengths?: Int32Array | number[];
  /** Return the attention weights (default true, when the model has attention). */
  attention?: boolean;
}

export interface DecodeResult {
  /** [batch, maxLength] row-major: each row's tokens, the end token included, then -1. */
  tokens: Int32Array;
  shape: [number, number];
  /** Tokens produced per row (end token included). */
  lengths: Int32Array;
  /** Per row: the summed log-probability of its tokens (beam: divided by the length penalty). */
  scores: Float32Array;
  /** [batch, maxLength, srcSteps] attention weights of each produced token (0 after the row's end), or null. */
  attention: Tensor | null;
}
