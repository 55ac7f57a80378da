// The symbolic side of the functional graph (Keras's KerasTensor / TF.js's SymbolicTensor): what an input or a layer
// will produce, before any data flows, and the nodes that connect them. Plain data plus references: a graph is
// rebuilt from its description (GraphConfig, lib/graph/config.ts) by applying the same layers again.
import { rnnkitError } from '../errors';
import type { LayerConfig } from '../layers';

/** What a graph node applies: a layer of lib/layers.ts (with the graph's attention options) or a graph-only layer. */
export type GraphLayerConfig =
  | (LayerConfig & { attention?: 'bahdanau'; returnAttention?: boolean })
  | { kind: 'attention'; score: 'dot'; name?: string }
  | { kind: 'concatenate'; name?: string }
  | { kind: 'repeatVector'; n: number; name?: string };

/**
 * What a symbolic tensor holds per batch row: token ids (`tokens`), a sequence of feature vectors (`features` for an
 * input, `sequence` after a layer), one vector (`vector`), a recurrent layer's final state (`state`: `slots`
 * blocks of `size` units, one per stacked layer and direction; a single layer's state is a vector), or attention
 * weights (`attention`, an output only).
 */
export type TensorKind = 'tokens' | 'features' | 'sequence' | 'vector' | 'state' | 'attention';

/** A symbolic tensor: what a layer will produce, before any data flows. */
export class SymbolicTensor {
  /** @internal */
  constructor(
    readonly name: string,
    readonly kind: TensorKind,
    /** Features per step (or per row); vocabulary size for token ids; units for a state. */
    readonly size: number,
    /** @internal */ readonly node: GraphNode,
    /** @internal */ readonly index: number,
    /** A state: layers x directions of the recurrent layer that returned it (1 for any other tensor). */
    readonly slots: number = 1,
  ) {}
}

/** @internal A layer applied to symbolic tensors (or an input: layer null). */
export interface GraphNode {
  layer: GraphLayerConfig | null;  // null: an input
  name: string;
  inputs: SymbolicTensor[];
  initialState: SymbolicTensor[];
  attendTo: SymbolicTensor | null;
  outputs: SymbolicTensor[];
  /** An input's description (dtype, sequence). */
  input?: InputOptions;
}

export interface InputOptions {
  name?: string;
  /** 'int32': token ids over `vocabSize` symbols; 'float32' (default): `features` values per step. */
  dtype?: 'int32' | 'float32';
  vocabSize?: number;
  features?: number;
  /**
   * float32 only: a sequence of `features`-wide steps, `[batch, steps, features]` (true, the default), or one vector
   * per row, `[batch, features]` (false), e.g. what a one-to-many model starts from.
   */
  sequence?: boolean;
}

let counter = 0;
/** @internal */
export const uniqueName = (base: string): string => `${base}_${++counter}`;

/** @internal */
export function graphError(message: string): Error {
  return rnnkitError('ERR_RNNKIT_ARGUMENT', `graph: ${message}`);
}

/** @internal */
export function shapeError(message: string): Error {
  return rnnkitError('ERR_RNNKIT_SHAPE', `graph: ${message}`);
}

/** A symbolic input of a graph model: token ids (`dtype: 'int32', vocabSize`), or features per step or per row. */
export function input(options: InputOptions): SymbolicTensor {
  if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'input() takes an options object');
  const ids = options.dtype === 'int32';
  if (options.dtype !== undefined && options.dtype !== 'int32' && options.dtype !== 'float32')
    throw graphError(`input dtype must be 'int32' or 'float32', got ${JSON.stringify(options.dtype)}`);
  const size = ids ? options.vocabSize : options.features;
  if (!Number.isSafeInteger(size) || (size as number) < 1)
    throw graphError(ids ? 'an int32 input needs vocabSize (a positive integer)' : 'a float32 input needs features (a positive integer)');
  if (options.sequence !== undefined && typeof options.sequence !== 'boolean') throw rnnkitError('ERR_RNNKIT_TYPE', 'input sequence must be a boolean');
  if (ids && options.sequence === false) throw graphError('token ids are always a sequence (sequence: false is for float32 inputs)');
  const name = options.name ?? uniqueName('input');
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw graphError(`input name '${name}' may only use letters, digits, '_' and '-'`);
  const description: InputOptions = ids ? { name, dtype: 'int32', vocabSize: size } : { name, dtype: 'float32', features: size, sequence: options.sequence ?? true };
  const node: GraphNode = { layer: null, name, inputs: [], initialState: [], attendTo: null, outputs: [], input: description };
  const kind = ids ? 'tokens' : options.sequence === false ? 'vector' : 'features';
  const t = new SymbolicTensor(node.name, kind, size as number, node, 0);
  node.outputs.push(t);
  return t;
}

/** The tensors a node reads: its inputs, initial states and attended keys. */
export function nodeSources(n: GraphNode): SymbolicTensor[] {
  return [...n.inputs, ...n.initialState, ...(n.attendTo ? [n.attendTo] : [])];
}

/**
 * Every node the outputs depend on, inputs first; checks that there is no cycle, that each output reaches only the
 * model's inputs and that every input is used. Errors name the layer or input.
 */
export function topoSort(inputs: SymbolicTensor[], outputs: SymbolicTensor[]): GraphNode[] {
  const order: GraphNode[] = [];
  const state = new Map<GraphNode, 'visiting' | 'done'>();
  const visit = (n: GraphNode, from: string): void => {
    const s = state.get(n);
    if (s === 'done') return;
    if (s === 'visiting') throw graphError(`the graph has a cycle through layer '${n.name}' (reached again from '${from}')`);
    state.set(n, 'visiting');
    for (const t of nodeSources(n)) {
      if (!(t instanceof SymbolicTensor)) throw rnnkitError('ERR_RNNKIT_TYPE', `graph: layer '${n.name}' reads something that is not a symbolic tensor`);
      visit(t.node, n.name);
    }
    if (!n.layer && !inputs.some((i) => i.node === n))
      throw graphError(`layer '${from}' depends on input '${n.name}', which is not among the model's inputs (the output is disconnected from them)`);
    state.set(n, 'done');
    order.push(n);
  };
  for (const o of outputs) {
    if (!(o instanceof SymbolicTensor)) throw rnnkitError('ERR_RNNKIT_TYPE', 'graph: outputs must be symbolic tensors');
    visit(o.node, o.name);
  }
  for (const i of inputs) if (!state.has(i.node)) throw graphError(`input '${i.name}' is not connected to any output`);
  return order;
}

const STAGE_KINDS = new Set(['embedding', 'recurrent', 'dense', 'dropout']);

/**
 * Whether a checked graph is a chain: one input (a sequence or token ids), one output, every layer a pipeline stage
 * (embedding, recurrent, dense, dropout) reading the previous one's first output, no state edges. A chain compiles
 * to the native layer pipeline, as `sequential` builds it.
 */
export function isChain(inputs: SymbolicTensor[], outputs: SymbolicTensor[], order: GraphNode[]): boolean {
  if (inputs.length !== 1 || outputs.length !== 1 || inputs[0].kind === 'vector') return false;
  const chain = order.filter((n) => n.layer);
  return chain.length > 0 && chain.every((n, i) => n.inputs.length === 1 && n.inputs[0] === (i === 0 ? inputs[0] : chain[i - 1].outputs[0]) &&
    !n.initialState.length && !n.attendTo && STAGE_KINDS.has(n.layer!.kind) && !(n.layer as { returnAttention?: boolean }).returnAttention) &&
    outputs[0] === chain[chain.length - 1].outputs[0];
}
