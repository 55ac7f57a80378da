// The functional model graph, as Keras's and TF.js's functional API: symbolic inputs, layers applied to symbolic
// tensors, a recurrent layer's final state as an output (`returnState`) and as another's `initialState`, attention,
// concatenation; `model({ inputs, outputs })` compiles the graph into a native pipeline. The TypeScript side only
// describes and checks; it never computes.
//
// What compiles today (every other graph is refused with ERR_RNNKIT_ARGUMENT naming the layer it cannot place):
// - a chain (one input, each layer applied to the previous one's output): the native layer pipeline, i.e. exactly
//   the model `sequential()` builds from the same layers;
// - the encoder-decoder: input(ids) -> embedding -> recurrent (returnState) as the encoder; input(ids) -> embedding
//   -> recurrent (initialState: the encoder's states) as the decoder, optionally with Bahdanau attention inside its
//   recurrence (`attention: 'bahdanau'` on the layer and `attendTo: encoderOutputs` when applying it), or Luong's
//   after it (`layers.attention({ score: 'dot' })` on [decoderOutputs, encoderOutputs], `concatenate` of
//   [context, decoderOutputs], `dense({ activation: 'tanh' })`); then a dense layer giving the logits. It runs as
//   the native encoder-decoder (lib/seq2seq.ts), with greedy and beam decoding.
import { rnnkitError } from './errors';
import { checkOptions } from './options';
import { layers as baseLayers, type LayerConfig } from './layers';
import { Sequential } from './model';
import { Seq2Seq, type AttentionKind, type DecodeOptions, type DecodeResult, type Seq2SeqBatch } from './seq2seq';
import type { NativeOptimizerConfig, DeviceName } from './native';
import type { Tensor } from './tensor';
import { readModelFile, writeFileAtomic } from './io/files';
import { graphFileBuffer, graphFromJSON, graphToJSON, readGraphFile, type GraphJSON } from './io/graph-file';
import type { NamedTensor } from './io/safetensors';
import type { Seq2SeqOnnx } from './io/onnx/seq2seq';

type TensorKind = 'tokens' | 'features' | 'sequence' | 'vector' | 'state' | 'attention';

/** A symbolic tensor: what a layer will produce, before any data flows. */
export class SymbolicTensor {
  /** @internal */
  constructor(
    readonly name: string,
    readonly kind: TensorKind,
    /** Features per step (or per row); vocabulary size for token ids. */
    readonly size: number,
    /** @internal */ readonly node: GraphNode,
    /** @internal */ readonly index: number,
  ) {}
}

/** @internal */
export interface GraphNode {
  layer: GraphLayerConfig | null;  // null: an input
  name: string;
  inputs: SymbolicTensor[];
  initialState: SymbolicTensor[];
  attendTo: SymbolicTensor | null;
  outputs: SymbolicTensor[];
}

export interface InputOptions {
  name?: string;
  /** 'int32': token ids over `vocabSize` symbols; 'float32' (default): `features` values per step. */
  dtype?: 'int32' | 'float32';
  vocabSize?: number;
  features?: number;
}

let counter = 0;
const uniqueName = (base: string): string => `${base}_${++counter}`;

function graphError(message: string): Error {
  return rnnkitError('ERR_RNNKIT_ARGUMENT', `graph: ${message}`);
}

/** A symbolic input of a graph model: token ids (`dtype: 'int32', vocabSize`) or features per step. */
export function input(options: InputOptions): SymbolicTensor {
  if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'input() takes an options object');
  const ids = options.dtype === 'int32';
  const size = ids ? options.vocabSize : options.features;
  if (!Number.isSafeInteger(size) || (size as number) < 1)
    throw graphError(ids ? 'an int32 input needs vocabSize (a positive integer)' : 'a float32 input needs features (a positive integer)');
  const node: GraphNode = { layer: null, name: options.name ?? uniqueName('input'), inputs: [], initialState: [], attendTo: null, outputs: [] };
  const t = new SymbolicTensor(node.name, ids ? 'tokens' : 'features', size as number, node, 0);
  node.outputs.push(t);
  return t;
}

export interface ApplyOptions {
  /** A recurrent layer's initial state: the state tensors another recurrent layer returned (`returnState`). */
  initialState?: SymbolicTensor | SymbolicTensor[];
  /** A recurrent layer with `attention: 'bahdanau'`: the encoder outputs it attends to at every step. */
  attendTo?: SymbolicTensor;
}

export type GraphLayerConfig =
  | (LayerConfig & { attention?: 'bahdanau'; returnAttention?: boolean })
  | { kind: 'attention'; score: 'dot'; name?: string }
  | { kind: 'concatenate'; name?: string };

/** A layer of the functional API: its description plus `apply`. */
export type GraphLayer<C extends GraphLayerConfig = GraphLayerConfig> = C & {
  apply(inputs: SymbolicTensor | SymbolicTensor[], options?: ApplyOptions): SymbolicTensor | SymbolicTensor[];
};

function layerLabel(c: GraphLayerConfig, fallback: string): string {
  return c.name ?? fallback;
}

function applyLayer(config: GraphLayerConfig, inputsArg: SymbolicTensor | SymbolicTensor[], options: ApplyOptions = {}): SymbolicTensor | SymbolicTensor[] {
  const inputs = Array.isArray(inputsArg) ? inputsArg : [inputsArg];
  const name = layerLabel(config, uniqueName(config.kind === 'recurrent' ? config.cell : config.kind));
  for (const t of inputs)
    if (!(t instanceof SymbolicTensor)) throw rnnkitError('ERR_RNNKIT_TYPE', `graph: layer '${name}' must be applied to symbolic tensors (input() or a layer's output)`);
  const initialState = options.initialState === undefined ? [] : Array.isArray(options.initialState) ? options.initialState : [options.initialState];
  const node: GraphNode = { layer: config, name, inputs, initialState, attendTo: options.attendTo ?? null, outputs: [] };
  const out = (kind: TensorKind, size: number, suffix = ''): SymbolicTensor => {
    const t = new SymbolicTensor(`${name}${suffix}`, kind, size, node, node.outputs.length);
    node.outputs.push(t);
    return t;
  };
  const one = (): SymbolicTensor => {
    if (inputs.length !== 1) throw graphError(`layer '${name}' takes one input, got ${inputs.length}`);
    return inputs[0];
  };
  switch (config.kind) {
    case 'embedding': {
      const x = one();
      if (x.kind !== 'tokens') throw graphError(`embedding '${name}' reads token ids (an int32 input), got ${x.kind}`);
      if (config.inputDim !== undefined && config.inputDim !== x.size)
        throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: embedding '${name}' has inputDim ${config.inputDim}, its input has a vocabulary of ${x.size}`);
      return out('sequence', config.outputDim);
    }
    case 'recurrent': {
      const x = one();
      if (x.kind !== 'sequence' && x.kind !== 'features' && x.kind !== 'tokens')
        throw graphError(`recurrent layer '${name}' reads a sequence, got ${x.kind}`);
      const states = config.cell === 'lstm' ? 2 : 1;
      if (initialState.length && initialState.length !== states)
        throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: recurrent layer '${name}' (${config.cell}) takes ${states} initial state tensor(s), got ${initialState.length}`);
      for (const s of initialState) {
        if (!(s instanceof SymbolicTensor) || s.kind !== 'state')
          throw graphError(`the initial state of '${name}' must be states returned by a recurrent layer (returnState: true)`);
        if (s.size !== config.units)
          throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: the initial state of '${name}' has ${s.size} units (from '${s.node.name}'), the layer has ${config.units}`);
        const from = s.node.layer;
        if (from && from.kind === 'recurrent' && (from.numLayers ?? 1) !== (config.numLayers ?? 1))
          throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: the initial state of '${name}' comes from '${s.node.name}' with ${from.numLayers ?? 1} stacked layers, '${name}' has ${config.numLayers ?? 1}`);
      }
      if (config.attention !== undefined && config.attention !== 'bahdanau')
        throw graphError(`recurrent layer '${name}': attention must be 'bahdanau' (Luong's is the attention layer after it)`);
      if (config.attention && !options.attendTo) throw graphError(`recurrent layer '${name}' has attention: apply it with { attendTo: encoderOutputs }`);
      if (!config.attention && options.attendTo) throw graphError(`recurrent layer '${name}' was given attendTo but has no attention: set attention: 'bahdanau'`);
      if (options.attendTo && options.attendTo.size !== config.units)
        throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: '${name}' attends to ${options.attendTo.size}-wide keys, it has ${config.units} units`);
      const outputs = [out(config.returnSequences ? 'sequence' : 'vector', config.units)];
      if (config.returnState) for (let i = 0; i < states; ++i) outputs.push(out('state', config.units, i ? '/c' : '/h'));
      if (config.returnAttention) outputs.push(out('attention', 0, '/attention'));
      return outputs.length === 1 ? outputs[0] : outputs;
    }
    case 'attention': {
      if (inputs.length !== 2) throw graphError(`attention '${name}' takes [query, keys], got ${inputs.length} tensors`);
      const [q, k] = inputs;
      if (q.size !== k.size) throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: attention '${name}': the query has ${q.size} features, the keys ${k.size}`);
      return [out('sequence', q.size, '/context'), out('attention', 0, '/weights')];
    }
    case 'concatenate': {
      if (inputs.length < 2) throw graphError(`concatenate '${name}' takes at least two tensors`);
      return out('sequence', inputs.reduce((a, t) => a + t.size, 0));
    }
    case 'dense': {
      const x = one();
      return out(x.kind === 'vector' ? 'vector' : 'sequence', config.units);
    }
    case 'dropout':
      return out(one().kind, one().size);
  }
  throw graphError(`unknown layer kind '${(config as { kind: string }).kind}'`);
}

function withApply<C extends GraphLayerConfig>(config: C): GraphLayer<C> {
  Object.defineProperty(config, 'apply', {
    value: (inputs: SymbolicTensor | SymbolicTensor[], options?: ApplyOptions) => applyLayer(config, inputs, options),
    enumerable: false,
  });
  return config as GraphLayer<C>;
}

/** The functional graph's options of a recurrent layer, beside the layer's own. */
export interface GraphRecurrentOptions {
  /** Bahdanau attention inside the recurrence (apply the layer with `{ attendTo: encoderOutputs }`). */
  attention?: 'bahdanau';
  /** Also output the attention weights (after the states). */
  returnAttention?: boolean;
}

// The layer checks its own options; the graph's are taken off first and put back on the description.
function recurrentWithAttention<O extends object>(make: (o: O) => LayerConfig, o: O & GraphRecurrentOptions): GraphLayer<LayerConfig & GraphRecurrentOptions> {
  if (typeof o !== 'object' || o === null) return withApply(make(o) as LayerConfig & GraphRecurrentOptions);
  const { attention, returnAttention, ...own } = o;
  return withApply(Object.assign(make(own as O), attention !== undefined ? { attention } : {},
    returnAttention !== undefined ? { returnAttention } : {}) as LayerConfig & GraphRecurrentOptions);
}

/** The layer constructors, each with `apply` for the functional API (and usable in `sequential` as before). */
export const layers = {
  embedding: (o: Parameters<typeof baseLayers.embedding>[0]) => withApply(baseLayers.embedding(o)),
  simpleRNN: (o: Parameters<typeof baseLayers.simpleRNN>[0]) => withApply(baseLayers.simpleRNN(o)),
  lstm: (o: Parameters<typeof baseLayers.lstm>[0] & GraphRecurrentOptions) => recurrentWithAttention(baseLayers.lstm, o),
  gru: (o: Parameters<typeof baseLayers.gru>[0] & GraphRecurrentOptions) => recurrentWithAttention(baseLayers.gru, o),
  dense: (o: Parameters<typeof baseLayers.dense>[0]) => withApply(baseLayers.dense(o)),
  dropout: (o: Parameters<typeof baseLayers.dropout>[0]) => withApply(baseLayers.dropout(o)),
  /** Luong's dot attention over [query, keys]: returns [context, weights] (Keras's `Attention`). */
  attention: (o: { score?: 'dot'; name?: string } = {}) => {
    if (o.score !== undefined && o.score !== 'dot') throw graphError(`attention score must be 'dot', got ${JSON.stringify(o.score)}`);
    return withApply({ kind: 'attention' as const, score: 'dot' as const, ...(o.name ? { name: o.name } : {}) });
  },
  concatenate: (o: { name?: string } = {}) => withApply({ kind: 'concatenate' as const, ...(o.name ? { name: o.name } : {}) }),
};

/** The layer a stored description (a GraphLayerConfig, as `graphToJSON` keeps it) stands for, built by its constructor. */
function layerFromConfig(config: Record<string, unknown>): GraphLayer {
  const { kind, cell, ...rest } = config;
  const o: unknown = rest;
  // The constructor checks the options it is given (names and values), as for a layer built by hand.
  type Options<K extends keyof typeof layers> = Parameters<(typeof layers)[K]>[0];
  switch (kind) {
    case 'embedding': return layers.embedding(o as Options<'embedding'>);
    case 'dense': return layers.dense(o as Options<'dense'>);
    case 'dropout': return layers.dropout(o as Options<'dropout'>);
    case 'attention': return layers.attention(o as Options<'attention'>);
    case 'concatenate': return layers.concatenate(o as Options<'concatenate'>);
    case 'recurrent':
      if (cell === 'lstm') return layers.lstm(o as Options<'lstm'>);
      if (cell === 'gru') return layers.gru(o as Options<'gru'>);
      if (cell === 'rnn_tanh' || cell === 'rnn_relu') return layers.simpleRNN({ ...rest, activation: cell === 'rnn_relu' ? 'relu' : 'tanh' } as unknown as Options<'simpleRNN'>);
  }
  throw rnnkitError('ERR_RNNKIT_FORMAT', `graph: no layer of kind ${JSON.stringify(kind)}${cell !== undefined ? ` and cell ${JSON.stringify(cell)}` : ''}`);
}

/** A stored graph rebuilt with its names: its symbolic inputs and outputs. */
function rebuildGraph(graph: GraphJSON): { inputs: SymbolicTensor[]; outputs: SymbolicTensor[] } {
  return graphFromJSON<SymbolicTensor>(graph, {
    input: (o) => input(o),
    apply: (config, ins, o) => layerFromConfig(config).apply(ins, o),
  });
}

/** Every node the outputs depend on, inputs first; checks that each output reaches an input and every input is used. */
function topoSort(inputs: SymbolicTensor[], outputs: SymbolicTensor[]): GraphNode[] {
  const order: GraphNode[] = [];
  const state = new Map<GraphNode, 'visiting' | 'done'>();
  const visit = (n: GraphNode): void => {
    const s = state.get(n);
    if (s === 'done') return;
    if (s === 'visiting') throw graphError(`the graph has a cycle through '${n.name}'`);
    state.set(n, 'visiting');
    for (const t of [...n.inputs, ...n.initialState, ...(n.attendTo ? [n.attendTo] : [])]) visit(t.node);
    if (!n.layer && !inputs.some((i) => i.node === n))
      throw graphError(`output depends on input '${n.name}', which is not among the model's inputs`);
    state.set(n, 'done');
    order.push(n);
  };
  for (const o of outputs) {
    if (!(o instanceof SymbolicTensor)) throw rnnkitError('ERR_RNNKIT_TYPE', 'graph: outputs must be symbolic tensors');
    visit(o.node);
  }
  for (const i of inputs) if (!state.has(i.node)) throw graphError(`input '${i.name}' is not connected to any output`);
  return order;
}

const isLayer = (n: GraphNode, kind: string): boolean => n.layer?.kind === kind;

/**
 * Build a model from symbolic inputs and outputs. A chain compiles to the native layer pipeline (a `Sequential`);
 * an encoder-decoder to a `GraphSeq2Seq`. Graphs of other shapes are refused with a coded error naming the layer.
 */
export function model(options: { inputs: SymbolicTensor | SymbolicTensor[]; outputs: SymbolicTensor | SymbolicTensor[]; seed?: number; device?: DeviceName }): Sequential | GraphSeq2Seq {
  if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'model() takes { inputs, outputs }');
  const inputs = Array.isArray(options.inputs) ? options.inputs : [options.inputs];
  const outputs = Array.isArray(options.outputs) ? options.outputs : [options.outputs];
  if (!inputs.length || !outputs.length) throw graphError('a model needs at least one input and one output');
  for (const i of inputs) if (!(i instanceof SymbolicTensor) || i.node.layer) throw graphError(`'${(i as SymbolicTensor)?.name}' is not an input()`);
  const order = topoSort(inputs, outputs);

  if (inputs.length === 1 && outputs.length === 1) {
    // A chain: every layer has one input, the previous node's first output, and no state edges.
    const chain = order.filter((n) => n.layer);
    const ok = chain.every((n, i) => n.inputs.length === 1 && n.inputs[0] === (i === 0 ? inputs[0] : chain[i - 1].outputs[0]) &&
      !n.initialState.length && !n.attendTo && n.layer!.kind !== 'attention' && n.layer!.kind !== 'concatenate');
    if (ok && outputs[0] === (chain.length ? chain[chain.length - 1].outputs[0] : inputs[0])) {
      const x = inputs[0];
      const layerConfigs = chain.map((n) => {
        const { attention: _a, returnAttention: _r, ...config } = n.layer as LayerConfig & { attention?: string; returnAttention?: boolean };
        if (_a) throw graphError(`'${n.name}' attends to nothing in a chain`);
        return { ...config, name: config.name ?? n.name.replace(/[^A-Za-z0-9_-]/g, '_') } as LayerConfig;
      });
      return new Sequential({
        ...(x.kind === 'tokens' ? { vocabSize: x.size } : { inputSize: x.size }),
        layers: layerConfigs,
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
      });
    }
  }
  return compileSeq2Seq(inputs, outputs, order, options);
}

function compileSeq2Seq(inputs: SymbolicTensor[], outputs: SymbolicTensor[], order: GraphNode[],
  options: { seed?: number; device?: DeviceName }): GraphSeq2Seq {
  const recurrent = order.filter((n) => isLayer(n, 'recurrent'));
  const decoder = recurrent.find((n) => n.initialState.length);
  const unsupported = (why: string): Error => graphError(`this graph does not compile to a native pipeline: ${why}`);
  if (inputs.length !== 2 || !decoder)
    throw unsupported('beside a chain, rnnkit compiles the encoder-decoder (two token inputs, the decoder started from the encoder\'s returned state)');
  const encoder = decoder.initialState[0].node;
  if (!isLayer(encoder, 'recurrent')) throw unsupported(`'${decoder.name}' starts from a state that no recurrent layer returned`);
  const enc = encoder.layer as LayerConfig & { kind: 'recurrent' };
  const dec = decoder.layer as LayerConfig & { kind: 'recurrent'; attention?: 'bahdanau' };
  const embeddingOf = (n: GraphNode): GraphNode => {
    const e = n.inputs[0].node;
    if (!isLayer(e, 'embedding') || e.inputs[0].node.layer) throw unsupported(`'${n.name}' must read an embedding of a token input`);
    return e;
  };
  const encEmb = embeddingOf(encoder);
  const decEmb = embeddingOf(decoder);
  const srcInput = encEmb.inputs[0];
  const tgtInput = decEmb.inputs[0];
  if (enc.cell !== dec.cell) throw unsupported(`'${encoder.name}' is a ${enc.cell}, '${decoder.name}' a ${dec.cell}: both stacks use one cell`);
  if (enc.cell !== 'gru' && enc.cell !== 'lstm') throw unsupported(`the encoder-decoder takes gru or lstm layers, '${encoder.name}' is ${enc.cell}`);
  if (!enc.returnSequences && (dec.attention || order.some((n) => isLayer(n, 'attention'))))
    throw unsupported(`attention reads every step of '${encoder.name}': set returnSequences: true on it`);
  const E = (encEmb.layer as { outputDim: number }).outputDim;
  if ((decEmb.layer as { outputDim: number }).outputDim !== E)
    throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: the embeddings '${encEmb.name}' and '${decEmb.name}' must have the same outputDim (${E})`);
  for (const n of [encoder, decoder]) {
    const l = n.layer as LayerConfig & { kind: 'recurrent' };
    if (l.bidirectional || l.goBackwards || l.dropout || l.stackDropout)
      throw unsupported(`'${n.name}': bidirectional, goBackwards and dropout are not part of the encoder-decoder`);
  }
  let attention: AttentionKind = 'none';
  let top = decoder.outputs[0];
  let weights: SymbolicTensor | null = dec.attention ? decoder.outputs.find((t) => t.kind === 'attention') ?? null : null;
  if (dec.attention) {
    if (decoder.attendTo !== encoder.outputs[0]) throw unsupported(`'${decoder.name}' must attend to '${encoder.name}''s outputs`);
    attention = 'bahdanau';
  }
  const after = order.filter((n) => n.layer && order.indexOf(n) > order.indexOf(decoder) && n !== decoder);
  const next = (t: SymbolicTensor): GraphNode | undefined => after.find((n) => n.inputs.includes(t));
  let n = next(top);
  if (n && isLayer(n, 'attention')) {
    if (attention !== 'none') throw unsupported('one attention per decoder');
    if (n.inputs[0] !== top || n.inputs[1] !== encoder.outputs[0])
      throw unsupported(`attention '${n.name}' must read [decoder outputs, encoder outputs]`);
    const [context, w] = n.outputs;
    weights = w;
    const cat = next(context);
    if (!cat || !isLayer(cat, 'concatenate') || cat.inputs.length !== 2 || cat.inputs[0] !== context || cat.inputs[1] !== top)
      throw unsupported(`Luong attention continues with concatenate([context, decoderOutputs]) (context first)`);
    const wc = next(cat.outputs[0]);
    const wcLayer = wc?.layer as (LayerConfig & { kind: 'dense' }) | undefined;
    if (!wc || wcLayer?.kind !== 'dense' || wcLayer.activation !== 'tanh' || wcLayer.units !== dec.units)
      throw unsupported(`Luong attention continues with dense({ units: ${dec.units}, activation: 'tanh' }) after the concatenation`);
    attention = 'luong';
    top = wc.outputs[0];
    n = next(top);
  }
  const head = n;
  const headLayer = head?.layer as (LayerConfig & { kind: 'dense' }) | undefined;
  if (!head || headLayer?.kind !== 'dense' || (headLayer.activation ?? 'linear') !== 'linear')
    throw unsupported(`the decoder ends with a linear dense layer giving the logits (softmax is part of the loss)`);
  const logits = head.outputs[0];
  for (const o of outputs)
    if (o !== logits && o !== weights && o.kind !== 'state')
      throw unsupported(`output '${o.name}' is none of the logits, the attention weights or a state`);
  if (enc.units !== dec.units) throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: '${encoder.name}' has ${enc.units} units, '${decoder.name}' ${dec.units}`);
  const spec = {
    cell: enc.cell as 'gru' | 'lstm', attention, srcVocab: srcInput.size, tgtVocab: headLayer.units,
    embedSize: E, hiddenSize: enc.units, numLayers: enc.numLayers ?? 1,
    ...(options.seed !== undefined ? { seed: options.seed } : {}), ...(options.device ? { device: options.device } : {}),
  };
  if (tgtInput.size !== spec.tgtVocab)
    throw rnnkitError('ERR_RNNKIT_SHAPE', `graph: the decoder input has a vocabulary of ${tgtInput.size}, the logits layer '${head.name}' has ${spec.tgtVocab} units`);
  return new GraphSeq2Seq(new Seq2Seq(spec), {
    graph: graphToJSON(inputs, outputs, order),
    source: srcInput.name, decoderInput: tgtInput.name, layers: order.filter((x) => x.layer).map((x) => ({ name: x.name, kind: x.layer!.kind })),
    outputs: outputs.map((o) => (o === logits ? 'logits' : o === weights ? 'attention' : 'state')),
  });
}

/** @internal What a compiled encoder-decoder graph keeps of its description. */
interface GraphDescription {
  /** The graph as its file stores it. */
  graph: GraphJSON;
  source: string;
  decoderInput: string;
  layers: { name: string; kind: string }[];
  outputs: string[];
}

/** Named inputs of a graph encoder-decoder: `{ [sourceName]: ids, [decoderInputName]: ids }`. */
export type GraphInputs = Record<string, { data: Int32Array | number[]; shape: number[] }>;

/** A compiled encoder-decoder graph: the native Seq2Seq, addressed by the graph's input names. */
export class GraphSeq2Seq {
  /** The native encoder-decoder the graph compiled to (decode, beginDecode, parameters by PyTorch name). */
  readonly seq2seq: Seq2Seq;
  readonly #desc: GraphDescription;

  /** @internal */
  constructor(s: Seq2Seq, desc: GraphDescription) {
    this.seq2seq = s;
    this.#desc = desc;
  }

  #batch(x: GraphInputs, y?: Int32Array | number[], sourceLengths?: Int32Array | number[]): Seq2SeqBatch {
    if (typeof x !== 'object' || x === null) throw rnnkitError('ERR_RNNKIT_TYPE', `graph model: inputs must be { ${this.#desc.source}, ${this.#desc.decoderInput} }`);
    const source = x[this.#desc.source];
    const decoderInput = x[this.#desc.decoderInput];
    if (!source || !decoderInput) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `graph model: inputs must have '${this.#desc.source}' and '${this.#desc.decoderInput}'`);
    return { source, decoderInput, ...(y ? { targets: y } : {}), ...(sourceLengths ? { sourceLengths } : {}) };
  }

  compile(options: { optimizer: NativeOptimizerConfig; clipNorm?: number }): void {
    this.seq2seq.compile(options);
  }
  /** One optimizer step; targets of -1 are left out of the loss. */
  async trainOnBatch(x: GraphInputs, y: Int32Array | number[], options: { sourceLengths?: Int32Array | number[] } = {}): Promise<{ loss: number }> {
    checkOptions(options, 'trainOnBatch options', ['sourceLengths']);
    return this.seq2seq.trainOnBatch(this.#batch(x, y, options.sourceLengths));
  }
  async evaluate(x: GraphInputs, y: Int32Array | number[], options: { sourceLengths?: Int32Array | number[] } = {}): Promise<{ loss: number; counted: number }> {
    checkOptions(options, 'evaluate options', ['sourceLengths']);
    return this.seq2seq.evaluate(this.#batch(x, y, options.sourceLengths));
  }
  /** Teacher-forced outputs: the logits and (with attention) the weights. */
  async predict(x: GraphInputs, options: { sourceLengths?: Int32Array | number[] } = {}): Promise<{ logits: Tensor; attention: Tensor | null }> {
    checkOptions(options, 'predict options', ['sourceLengths']);
    return this.seq2seq.predict(this.#batch(x, undefined, options.sourceLengths));
  }
  /**
   * Epochs over the rows of x / y in batches (rows in order, or shuffled with `shuffle`); returns the mean loss of
   * each epoch.
   */
  async fit(x: GraphInputs, y: Int32Array | number[], options: { epochs?: number; batchSize?: number; sourceLengths?: Int32Array | number[]; shuffle?: boolean; onEpochEnd?: (epoch: number, loss: number) => void } = {}): Promise<{ loss: number[] }> {
    checkOptions(options, 'fit options', ['epochs', 'batchSize', 'sourceLengths', 'shuffle', 'onEpochEnd']);
    const full = this.#batch(x, y, options.sourceLengths);
    const [B, S] = full.source.shape;
    const T = full.decoderInput.shape[1];
    const epochs = options.epochs ?? 1;
    const size = Math.max(1, Math.min(options.batchSize ?? 32, B));
    if (!Number.isSafeInteger(epochs) || epochs < 1) throw rnnkitError('ERR_RNNKIT_VALUE', 'fit: epochs must be a positive integer');
    const history: number[] = [];
    const rows = Array.from({ length: B }, (_, i) => i);
    const pick = (data: Int32Array | number[], idx: number[], width: number): Int32Array => {
      const out = new Int32Array(idx.length * width);
      idx.forEach((r, i) => out.set(Array.prototype.slice.call(data, r * width, (r + 1) * width), i * width));
      return out;
    };
    for (let e = 0; e < epochs; ++e) {
      if (options.shuffle) for (let i = B - 1; i > 0; --i) { const j = Math.floor(Math.random() * (i + 1)); [rows[i], rows[j]] = [rows[j], rows[i]]; }
      let sum = 0;
      let n = 0;
      for (let start = 0; start < B; start += size) {
        const idx = rows.slice(start, start + size);
        const batch: Seq2SeqBatch = {
          source: { data: pick(full.source.data, idx, S), shape: [idx.length, S] },
          decoderInput: { data: pick(full.decoderInput.data, idx, T), shape: [idx.length, T] },
          targets: pick(full.targets!, idx, T),
          ...(full.sourceLengths ? { sourceLengths: pick(full.sourceLengths, idx, 1) } : {}),
        };
        sum += (await this.seq2seq.trainOnBatch(batch)).loss * idx.length;
        n += idx.length;
      }
      history.push(sum / n);
      options.onEpochEnd?.(e, sum / n);
    }
    return { loss: history };
  }
  decode(source: { data: Int32Array | number[]; shape: number[] }, options: DecodeOptions): Promise<DecodeResult> {
    return this.seq2seq.decode(source, options);
  }
  /** The layers of the graph and what they compiled to, with parameter counts. */
  summary(): string {
    const s = this.seq2seq.spec;
    const total = this.seq2seq.paramNames().reduce((a, name) => a + this.seq2seq.paramShape(name).reduce((x, y) => x * y, 1), 0);
    return [
      `Encoder-decoder graph (native seq2seq: ${s.cell}, attention ${s.attention}, ${s.numLayers} layer(s), hidden ${s.hiddenSize}, embedding ${s.embedSize})`,
      `inputs: ${this.#desc.source} [batch, srcSteps] ids < ${s.srcVocab}; ${this.#desc.decoderInput} [batch, tgtSteps] ids < ${s.tgtVocab}`,
      ...this.#desc.layers.map((l) => `  ${l.name} (${l.kind})`),
      `outputs: ${this.#desc.outputs.join(', ')}`,
      `parameters: ${total}`,
    ].join('\n');
  }
  /**
   * Save as safetensors, atomically: the graph in the header (inputs, layers with their configs and names, edges
   * with initial states and attention, outputs) and the weights under their PyTorch names (the encoder-decoder's,
   * as `seq2seq.paramNames()` lists them). `GraphSeq2Seq.load` rebuilds the same graph, addressed by the same names.
   */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toBuffer());
  }
  toBuffer(): Buffer {
    const s = this.seq2seq;
    const tensors: NamedTensor[] = s.paramNames().map((name) => {
      const t = s.getParam(name);
      return { name, shape: t.shape, data: t.data };
    });
    return graphFileBuffer(this.#desc.graph, tensors, { compiled: 'seq2seq' });
  }
  /** A graph model saved by `save`: the graph rebuilt by its layer constructors and `model()`, then its weights. */
  static async load(file: string | URL | Uint8Array, options: { device?: DeviceName } = {}): Promise<GraphSeq2Seq> {
    const buf = file instanceof Uint8Array ? file : await readModelFile(file);
    return GraphSeq2Seq.fromBuffer(buf, options);
  }
  static fromBuffer(buf: Uint8Array, options: { device?: DeviceName } = {}): GraphSeq2Seq {
    checkOptions(options, 'GraphSeq2Seq.load options', ['device']);
    const file = readGraphFile(buf);
    const { inputs, outputs } = rebuildGraph(file.graph);
    let built: Sequential | GraphSeq2Seq;
    try {
      built = model({ inputs, outputs, ...(options.device ? { device: options.device } : {}) });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_RNNKIT_ARGUMENT' || code === 'ERR_RNNKIT_SHAPE' || code === 'ERR_RNNKIT_TYPE')
        throw rnnkitError('ERR_RNNKIT_FORMAT', `graph file: the stored graph does not compile: ${(e as Error).message} (${code})`);
      throw e;
    }
    if (!(built instanceof GraphSeq2Seq)) {
      built.dispose();
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'graph file: the stored graph is a chain of layers, which is saved and loaded as a sequential model (rnnkit.load)');
    }
    try {
      built.seq2seq.loadTensors(file.tensors);
    } catch (e) {
      built.dispose();
      throw e;
    }
    return built;
  }
  /** The encoder-decoder as two ONNX graphs (the encoder; one decoder step), as `Seq2Seq.toOnnx` describes. */
  toOnnx(options: { metadata?: Record<string, string> } = {}): Seq2SeqOnnx {
    return this.seq2seq.toOnnx(options);
  }
  /** Write `toOnnx()` into a folder as `encoder.onnx` and `decoder_step.onnx`; returns their paths. */
  exportOnnx(dir: string, options: { metadata?: Record<string, string> } = {}): Promise<{ encoder: string; decoderStep: string }> {
    return this.seq2seq.exportOnnx(dir, options);
  }
  dispose(): void {
    this.seq2seq.dispose();
  }
}
