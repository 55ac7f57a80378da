// The layers of the functional graph, as Keras's and TF.js's functional API: each constructor returns the layer's
// description with `apply(inputs, { initialState, attendTo })`, which checks what the layer reads (kinds, widths,
// state counts) and returns the symbolic tensors it will produce. Errors name the layer. Nothing is computed here.
import { rnnkitError } from '../errors';
import { layers as baseLayers, type LayerConfig } from '../layers';
import { SymbolicTensor, graphError, shapeError, uniqueName, type GraphLayerConfig, type GraphNode, type TensorKind } from './symbolic';

export interface ApplyOptions {
  /**
   * A recurrent layer's initial state: `[h]` (or `[h, c]` for an LSTM), each the state another recurrent layer
   * returned (`returnState: true`, same units and stacked layers) or any vector of `units` features per row (a
   * dense layer's output: one-to-many from a vector).
   */
  initialState?: SymbolicTensor | SymbolicTensor[];
  /** A recurrent layer with `attention: 'bahdanau'`: the encoder outputs it attends to at every step. */
  attendTo?: SymbolicTensor;
}

export type { GraphLayerConfig };

/** A layer of the functional API: its description plus `apply`. */
export type GraphLayer<C extends GraphLayerConfig = GraphLayerConfig> = C & {
  apply(inputs: SymbolicTensor | SymbolicTensor[], options?: ApplyOptions): SymbolicTensor | SymbolicTensor[];
};

const vectorLike = (t: SymbolicTensor): boolean => t.kind === 'vector' || (t.kind === 'state' && t.slots === 1);
const isSequence = (t: SymbolicTensor): boolean => t.kind === 'sequence' || t.kind === 'features';

function describe(t: SymbolicTensor): string {
  switch (t.kind) {
    case 'tokens': return `token ids over ${t.size} symbols`;
    case 'state': return t.slots === 1 ? `a state of ${t.size} units` : `the state of a stack (${t.slots} x ${t.size} units)`;
    case 'attention': return 'attention weights';
    case 'vector': return `a vector of ${t.size}`;
    default: return `a sequence of ${t.size} features`;
  }
}

function applyLayer(config: GraphLayerConfig, inputsArg: SymbolicTensor | SymbolicTensor[], options: ApplyOptions = {}): SymbolicTensor | SymbolicTensor[] {
  const inputs = Array.isArray(inputsArg) ? inputsArg : [inputsArg];
  if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'apply options must be an object');
  const name = config.name ?? uniqueName(config.kind === 'recurrent' ? config.cell : config.kind);
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw graphError(`layer name '${name}' may only use letters, digits, '_' and '-'`);
  for (const t of inputs)
    if (!(t instanceof SymbolicTensor)) throw rnnkitError('ERR_RNNKIT_TYPE', `graph: layer '${name}' must be applied to symbolic tensors (input() or a layer's output)`);
  for (const t of inputs)
    if (t.kind === 'attention') throw graphError(`layer '${name}' reads the attention weights '${t.name}', which are an output only`);
  const initialState = options.initialState === undefined ? [] : Array.isArray(options.initialState) ? options.initialState : [options.initialState];
  const node: GraphNode = { layer: config, name, inputs, initialState, attendTo: options.attendTo ?? null, outputs: [] };
  const out = (kind: TensorKind, size: number, suffix = '', slots = 1): SymbolicTensor => {
    const t = new SymbolicTensor(`${name}${suffix}`, kind, size, node, node.outputs.length, slots);
    node.outputs.push(t);
    return t;
  };
  const one = (): SymbolicTensor => {
    if (inputs.length !== 1) throw graphError(`layer '${name}' takes one input, got ${inputs.length}`);
    return inputs[0];
  };
  if (config.kind !== 'recurrent' && (initialState.length || options.attendTo))
    throw graphError(`layer '${name}' (${config.kind}) takes no initialState or attendTo; only a recurrent layer does`);
  switch (config.kind) {
    case 'embedding': {
      const x = one();
      if (x.kind !== 'tokens') throw graphError(`embedding '${name}' reads token ids (an int32 input), got ${describe(x)}`);
      if (config.inputDim !== undefined && config.inputDim !== x.size)
        throw shapeError(`embedding '${name}' has inputDim ${config.inputDim}, its input has a vocabulary of ${x.size}`);
      return out('sequence', config.outputDim);
    }
    case 'recurrent': {
      const x = one();
      if (!isSequence(x) && x.kind !== 'tokens')
        throw shapeError(`recurrent layer '${name}' reads a sequence, got ${describe(x)} from '${x.name}' (repeatVector turns a vector into a sequence)`);
      const states = config.cell === 'lstm' ? 2 : 1;
      const slots = (config.numLayers ?? 1) * (config.bidirectional ? 2 : 1);
      if (initialState.length && initialState.length !== states)
        throw shapeError(`recurrent layer '${name}' (${config.cell}) takes ${states} initial state tensor(s)${states === 2 ? ' [h, c]' : ''}, got ${initialState.length}`);
      for (const s of initialState) {
        if (!(s instanceof SymbolicTensor)) throw rnnkitError('ERR_RNNKIT_TYPE', `graph: the initial state of '${name}' must be symbolic tensors`);
        if (s.kind !== 'state' && s.kind !== 'vector')
          throw graphError(`the initial state of '${name}' must be a state returned by a recurrent layer (returnState: true) or a vector (a dense layer's output), got ${describe(s)} from '${s.name}'`);
        if (s.size !== config.units)
          throw shapeError(`the initial state of '${name}' has ${s.size} units (from '${s.node.name}'), the layer has ${config.units}`);
        if (s.slots !== slots)
          throw shapeError(`the initial state of '${name}' comes from '${s.node.name}' with ${s.slots} stacked layer(s) x directions, '${name}' has ${slots}`);
      }
      if (config.attention !== undefined && config.attention !== 'bahdanau')
        throw graphError(`recurrent layer '${name}': attention must be 'bahdanau' (Luong's is the attention layer after it)`);
      if (config.attention && !options.attendTo) throw graphError(`recurrent layer '${name}' has attention: apply it with { attendTo: encoderOutputs }`);
      if (!config.attention && options.attendTo) throw graphError(`recurrent layer '${name}' was given attendTo but has no attention: set attention: 'bahdanau'`);
      if (options.attendTo && options.attendTo.size !== config.units)
        throw shapeError(`'${name}' attends to ${options.attendTo.size}-wide keys, it has ${config.units} units`);
      const width = config.bidirectional && (typeof config.bidirectional !== 'object' || config.bidirectional.mergeMode !== 'sum') ? 2 * config.units : config.units;
      const outputs = [out(config.returnSequences ? 'sequence' : 'vector', width)];
      if (config.returnState) for (let i = 0; i < states; ++i) outputs.push(out('state', config.units, i ? '/c' : '/h', slots));
      if (config.returnAttention) outputs.push(out('attention', 0, '/attention'));
      return outputs.length === 1 ? outputs[0] : outputs;
    }
    case 'attention': {
      if (inputs.length !== 2) throw graphError(`attention '${name}' takes [query, keys], got ${inputs.length} tensors`);
      const [q, k] = inputs;
      if (!isSequence(q) || !isSequence(k)) throw shapeError(`attention '${name}' takes [query, keys], both sequences; got ${describe(q)} and ${describe(k)}`);
      if (q.size !== k.size) throw shapeError(`attention '${name}': the query has ${q.size} features, the keys ${k.size}`);
      return [out('sequence', q.size, '/context'), out('attention', 0, '/weights')];
    }
    case 'concatenate': {
      if (inputs.length < 2) throw graphError(`concatenate '${name}' takes at least two tensors`);
      const seq = isSequence(inputs[0]);
      for (const t of inputs)
        if (seq ? !isSequence(t) : !vectorLike(t))
          throw shapeError(`concatenate '${name}' joins tensors of one kind (all sequences or all vectors): '${t.name}' is ${describe(t)}, '${inputs[0].name}' ${describe(inputs[0])}`);
      return out(seq ? 'sequence' : 'vector', inputs.reduce((a, t) => a + t.size, 0));
    }
    case 'repeatVector': {
      const x = one();
      if (!vectorLike(x)) throw shapeError(`repeatVector '${name}' repeats a vector, got ${describe(x)} from '${x.name}'`);
      return out('sequence', x.size);
    }
    case 'dense':
    case 'dropout': {
      const x = one();
      if (x.kind === 'tokens') throw shapeError(`${config.kind} '${name}' cannot read token ids; add an embedding first`);
      if (x.kind === 'state' && x.slots !== 1)
        throw shapeError(`${config.kind} '${name}' reads ${describe(x)} from '${x.name}'; only a single layer's state is a vector`);
      return out(isSequence(x) ? 'sequence' : 'vector', config.kind === 'dense' ? config.units : x.size);
    }
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

function nameOption(o: { name?: unknown }, what: string): { name?: string } {
  if (o.name === undefined) return {};
  if (typeof o.name !== 'string') throw rnnkitError('ERR_RNNKIT_TYPE', `${what} name must be a string`);
  return { name: o.name };
}

/** The layer constructors, each with `apply` for the functional API (and usable in `sequential` as before). */
export const layers = {
  embedding: (o: Parameters<typeof baseLayers.embedding>[0]) => withApply(baseLayers.embedding(o)),
  simpleRNN: (o: Parameters<typeof baseLayers.simpleRNN>[0]) => withApply(baseLayers.simpleRNN(o)),
  lstm: (o: Parameters<typeof baseLayers.lstm>[0] & GraphRecurrentOptions) => recurrentWithAttention(baseLayers.lstm, o),
  gru: (o: Parameters<typeof baseLayers.gru>[0] & GraphRecurrentOptions) => recurrentWithAttention(baseLayers.gru, o),
  dense: (o: Parameters<typeof baseLayers.dense>[0]) => withApply(baseLayers.dense(o)),
  dropout: (o: Parameters<typeof baseLayers.dropout>[0]) => withApply(baseLayers.dropout(o)),
  /**
   * Luong's dot attention over [query, keys] (Keras's `Attention`): returns [context, weights]. The weights are a
   * softmax over each row's valid key steps (the keys' input lengths); the context has the query's steps.
   */
  attention: (o: { score?: 'dot'; name?: string } = {}) => {
    if (typeof o !== 'object' || o === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'layers.attention() takes an options object');
    if (o.score !== undefined && o.score !== 'dot') throw graphError(`attention score must be 'dot', got ${JSON.stringify(o.score)}`);
    return withApply({ kind: 'attention' as const, score: 'dot' as const, ...nameOption(o, 'attention') });
  },
  /** Joins sequences (same steps) or vectors along the feature axis, in the order given. */
  concatenate: (o: { name?: string } = {}) => {
    if (typeof o !== 'object' || o === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'layers.concatenate() takes an options object');
    return withApply({ kind: 'concatenate' as const, ...nameOption(o, 'concatenate') });
  },
  /** Repeats a vector `n` times: `[batch, features]` -> `[batch, n, features]` (Keras's `RepeatVector`). */
  repeatVector: (o: { n: number; name?: string }) => {
    if (typeof o !== 'object' || o === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'layers.repeatVector() takes { n }');
    if (!Number.isSafeInteger(o.n) || o.n < 1 || o.n > 1 << 20) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `repeatVector n must be an integer in [1, ${1 << 20}], got ${JSON.stringify(o.n)}`);
    return withApply({ kind: 'repeatVector' as const, n: o.n, ...nameOption(o, 'repeatVector') });
  },
};
