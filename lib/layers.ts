// Layer constructors of the model builder, with the names and options Keras and TF.js users know. Each returns a
// plain description; the model turns the list into one native pipeline.
import { rnnkitError } from './errors';
import { checkOptions } from './options';
import type { GateActivation, NativeLayerSpec } from './native';

export type Activation = 'linear' | 'softmax' | 'sigmoid' | 'tanh' | 'relu';

export interface EmbeddingOptions {
  /** Symbols in the vocabulary (defaults to the model's vocabSize). */
  inputDim?: number;
  /** Size of each vector. */
  outputDim: number;
  name?: string;
}

export interface RecurrentOptions {
  units: number;
  /**
   * Output every step (`[batch, time, units]`, true) or only the last one (`[batch, units]`, false: the default, as
   * in Keras; with `lengths`, each row's last valid step).
   */
  returnSequences?: boolean;
  /** Expose this layer's final state through `model.predictWithState` (default false). */
  returnState?: boolean;
  /** Read the sequence both ways; `true` or the merge of the two outputs. */
  bidirectional?: boolean | { mergeMode: 'concat' | 'sum' };
  /** Read the sequence from its end (outputs stay aligned with their input steps). */
  goBackwards?: boolean;
  /** Dropout on this layer's inputs while training. */
  dropout?: number;
  /** Layers stacked inside this one, PyTorch-style (default 1), with `stackDropout` between them. */
  numLayers?: number;
  stackDropout?: number;
  name?: string;
}

export interface SimpleRnnOptions extends RecurrentOptions {
  activation?: 'tanh' | 'relu';
}

/** TF.js's names for the gate activations: `'sigmoid'` or `'hardSigmoid'`, clip(0.2 x + 0.5, 0, 1). */
export type RecurrentActivation = 'sigmoid' | 'hardSigmoid';

export interface GatedRecurrentOptions extends RecurrentOptions {
  /**
   * The activation of the gates (LSTM i, f, o; GRU r, z): `'sigmoid'` (default, as PyTorch) or `'hardSigmoid'`
   * (TF.js's default). The candidate and the output keep tanh.
   */
  recurrentActivation?: RecurrentActivation;
}

export interface GruOptions extends GatedRecurrentOptions {
  /** true (default): PyTorch/cuDNN's reset-after GRU; false: the reset-before GRU of Keras's reset_after=False. */
  resetAfter?: boolean;
}

export interface DenseOptions {
  units: number;
  activation?: Activation;
  name?: string;
}

export interface DropoutOptions {
  rate: number;
  name?: string;
}

export type LayerConfig =
  | ({ kind: 'embedding' } & EmbeddingOptions)
  | ({ kind: 'recurrent'; cell: 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru' } & GruOptions)
  | ({ kind: 'dense' } & DenseOptions)
  | ({ kind: 'dropout' } & DropoutOptions);

/** The native name of a layer's recurrentActivation (sigmoid when not given); throws on anything else. */
export function gateActivationOf(recurrentActivation: unknown): GateActivation {
  if (recurrentActivation === undefined || recurrentActivation === 'sigmoid') return 'sigmoid';
  if (recurrentActivation === 'hardSigmoid') return 'hard_sigmoid';
  throw rnnkitError('ERR_RNNKIT_ARGUMENT', `recurrentActivation must be 'sigmoid' or 'hardSigmoid', got ${JSON.stringify(recurrentActivation)}`);
}

// The option names of each factory (unknown names are an error that suggests the right one, see checkOptions).
// attention and returnAttention are the functional graph's (lib/graph.ts).
const RECURRENT_NAMES = ['units', 'returnSequences', 'returnState', 'bidirectional', 'goBackwards', 'dropout', 'numLayers',
  'stackDropout', 'name', 'attention', 'returnAttention'];
const OPTION_NAMES: Record<string, readonly string[]> = {
  embedding: ['inputDim', 'outputDim', 'name'],
  simpleRNN: [...RECURRENT_NAMES, 'activation'],
  lstm: [...RECURRENT_NAMES, 'recurrentActivation'],
  gru: [...RECURRENT_NAMES, 'recurrentActivation', 'resetAfter'],
  dense: ['units', 'activation', 'name'],
  dropout: ['rate', 'name'],
};

function gated<T extends GatedRecurrentOptions>(what: string, value: T | undefined): T {
  const o = options(what, value);
  gateActivationOf(o.recurrentActivation);
  return o;
}

// A copy of the options (read once: a getter does not run again when the model is built), with known names only.
function options<T extends object>(what: string, value: T | undefined): T {
  if (typeof value !== 'object' || value === null)
    throw rnnkitError('ERR_RNNKIT_TYPE', `layers.${what}() takes an options object`);
  checkOptions(value, `layers.${what}() options`, OPTION_NAMES[what]);
  return { ...value };
}

export const layers = {
  embedding(o: EmbeddingOptions): LayerConfig {
    return { kind: 'embedding', ...options('embedding', o) };
  },
  simpleRNN(o: SimpleRnnOptions): LayerConfig {
    const { activation = 'tanh', ...rest } = options('simpleRNN', o);
    if (activation !== 'tanh' && activation !== 'relu')
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `simpleRNN activation must be 'tanh' or 'relu', got '${String(activation)}'`);
    return { kind: 'recurrent', cell: activation === 'relu' ? 'rnn_relu' : 'rnn_tanh', ...rest };
  },
  lstm(o: GatedRecurrentOptions): LayerConfig {
    return { kind: 'recurrent', cell: 'lstm', ...gated('lstm', o) };
  },
  gru(o: GruOptions): LayerConfig {
    return { kind: 'recurrent', cell: 'gru', ...gated('gru', o) };
  },
  dense(o: DenseOptions): LayerConfig {
    return { kind: 'dense', ...options('dense', o) };
  },
  dropout(o: DropoutOptions): LayerConfig {
    return { kind: 'dropout', ...options('dropout', o) };
  },
};

/**
 * The native pipeline stages of one layer, named `name` (a recurrent layer with input `dropout` is a dropout stage
 * `<name>_input_dropout` and the recurrent stage). The one translation of a layer description into the native spec,
 * used by `sequential` and by the graph compiler.
 */
export function nativeStages(l: LayerConfig, name: string): NativeLayerSpec[] {
  switch (l.kind) {
    case 'embedding':
      return [{ type: 'embedding', outputDim: l.outputDim, name }];
    case 'recurrent': {
      const bi = l.bidirectional;
      const out: NativeLayerSpec[] = l.dropout ? [{ type: 'dropout', rate: l.dropout, name: `${name}_input_dropout` }] : [];
      out.push({
        type: 'recurrent', cell: l.cell, hiddenSize: l.units, numLayers: l.numLayers ?? 1,
        bidirectional: !!bi, merge: typeof bi === 'object' && bi ? bi.mergeMode : 'concat',
        resetAfter: l.resetAfter ?? true, gateActivation: gateActivationOf(l.recurrentActivation), returnSequences: l.returnSequences ?? false,
        goBackwards: l.goBackwards ?? false, dropout: l.stackDropout ?? 0, name,
      });
      return out;
    }
    case 'dense':
      return [{ type: 'dense', units: l.units, activation: l.activation ?? 'linear', name }];
    case 'dropout':
      return [{ type: 'dropout', rate: l.rate, name }];
  }
  throw rnnkitError('ERR_RNNKIT_TYPE', 'unknown layer; use rnnkit.layers');
}
