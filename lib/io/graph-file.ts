// The file of a functional graph model: safetensors whose header holds the graph (its inputs; its layers with their
// configs, names and edges, initial states and attention included; its outputs) beside the weights under their
// PyTorch-style names, so that loading rebuilds the same graph (same input and layer names) through the layer
// constructors and `model()`, then sets the weights.
//
// The header is untrusted: the native reader has checked the safetensors frame (header size cap, offsets, dtypes,
// shapes, byte counts) before anything here runs; this module then checks the graph description itself (known
// layer kinds, unique names, references that resolve, no cycle, bounded counts) and, before the caller builds
// anything, that the parameters the graph describes are about as many as the file holds: a small file cannot make
// rnnkit allocate the model it merely describes. Every refusal is ERR_RNNKIT_FORMAT naming what is wrong.
//
// This module does not import lib/graph.ts (which imports it to save): it reads graph nodes through the structural
// views below and rebuilds through the builders the caller passes in.
import { rnnkitError } from '../errors';
import { parseSafetensors, serializeSafetensors, type NamedTensor } from './safetensors';

/** `__metadata__.kind` of a graph model file. */
export const GRAPH_FILE_KIND = 'graph';
/** The version of the graph description; a file of a later version is refused, not misread. */
export const GRAPH_FORMAT_VERSION = 1;

/** An edge: the `output`-th output of the node (input or layer) named `node`. */
export type TensorRef = [node: string, output: number];

export interface GraphInputJSON {
  name: string;
  dtype: 'int32' | 'float32';
  /** int32 inputs: the vocabulary. */
  vocabSize?: number;
  /** float32 inputs: features per step. */
  features?: number;
  /** float32 inputs: false for one vector per row (`[batch, features]`); absent for a sequence. */
  sequence?: false;
}

export interface GraphLayerJSON {
  /** The layer's name (unique in the graph; also its config's `name`). */
  name: string;
  /** The layer's description as its constructor returned it (`kind`, and `cell` for a recurrent layer). */
  config: Record<string, unknown>;
  inputs: TensorRef[];
  initialState?: TensorRef[];
  attendTo?: TensorRef;
}

/** The graph as the header stores it: layers in an order where every edge points backwards. */
export interface GraphJSON {
  version: number;
  inputs: GraphInputJSON[];
  layers: GraphLayerJSON[];
  outputs: TensorRef[];
}

/** What this module reads of lib/graph.ts's symbolic tensors and nodes. */
export interface TensorView {
  readonly kind: string;
  readonly size: number;
  readonly node: NodeView;
  readonly index: number;
}
export interface NodeView {
  readonly name: string;
  readonly layer: object | null;
  readonly inputs: readonly TensorView[];
  readonly initialState: readonly TensorView[];
  readonly attendTo: TensorView | null;
}

/** The layer constructors and input() of lib/graph.ts, through which a graph is rebuilt. */
export interface GraphBuilders<T> {
  input(options: { name: string; dtype: 'int32' | 'float32'; vocabSize?: number; features?: number; sequence?: boolean }): T;
  /** Build the layer that `config` describes (the kind and cell pick the constructor) and apply it. */
  apply(config: Record<string, unknown>, inputs: T[], options: { initialState?: T[]; attendTo?: T }): T | T[];
}

// Bounds on a description, far above any real model and far below what could exhaust memory while it is read.
const MAX_NODES = 4096;
const MAX_EDGES = 256;
const MAX_NAME = 256;
const LAYER_KINDS = new Set(['embedding', 'recurrent', 'dense', 'dropout', 'attention', 'concatenate', 'repeatVector']);
const CELLS = new Set(['lstm', 'gru', 'rnn_tanh', 'rnn_relu']);

function formatError(message: string): Error {
  return rnnkitError('ERR_RNNKIT_FORMAT', `graph file: ${message}`);
}

const ref = (t: TensorView): TensorRef => [t.node.name, t.index];

/** The graph of `outputs` (given in an order where each node follows the nodes it reads) as the header stores it. */
export function graphToJSON(inputs: readonly TensorView[], outputs: readonly TensorView[], order: readonly NodeView[]): GraphJSON {
  return {
    version: GRAPH_FORMAT_VERSION,
    inputs: inputs.map((t) => (t.kind === 'tokens'
      ? { name: t.node.name, dtype: 'int32' as const, vocabSize: t.size }
      : { name: t.node.name, dtype: 'float32' as const, features: t.size, ...(t.kind === 'vector' ? { sequence: false as const } : {}) })),
    layers: order.filter((n) => n.layer).map((n) => ({
      name: n.name,
      // The description's own fields (apply is not enumerable), named as the node is so that loading keeps the name.
      config: { ...JSON.parse(JSON.stringify(n.layer)), name: n.name },
      inputs: n.inputs.map(ref),
      ...(n.initialState.length ? { initialState: n.initialState.map(ref) } : {}),
      ...(n.attendTo ? { attendTo: ref(n.attendTo) } : {}),
    })),
    outputs: outputs.map(ref),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkName(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NAME)
    throw formatError(`${what} must be a name of 1 to ${MAX_NAME} characters`);
  return v;
}

function checkSize(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw formatError(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function checkRefs(v: unknown, what: string, optional = false): TensorRef[] {
  if (v === undefined && optional) return [];
  if (!Array.isArray(v) || v.length > MAX_EDGES) throw formatError(`${what} must be a list of at most ${MAX_EDGES} [name, output] pairs`);
  return v.map((r, i) => {
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || !Number.isSafeInteger(r[1]) || r[1] < 0 || r[1] > MAX_EDGES)
      throw formatError(`${what}[${i}] must be a [name, output] pair, got ${JSON.stringify(r)?.slice(0, 80)}`);
    return [r[0], r[1]] as TensorRef;
  });
}

/**
 * The graph description of a header, checked: its shape, known layer kinds and cells, unique names, references to
 * nodes that exist, and no cycle. Layers come back in an order where every edge points backwards.
 */
export function parseGraphJSON(text: string): GraphJSON {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw formatError('the graph description in the header is not JSON');
  }
  if (!isObject(raw)) throw formatError('the graph description must be an object');
  if (raw.version !== GRAPH_FORMAT_VERSION)
    throw formatError(`graph description version ${JSON.stringify(raw.version)} is not one this rnnkit reads (${GRAPH_FORMAT_VERSION})`);
  if (!Array.isArray(raw.inputs) || raw.inputs.length < 1 || raw.inputs.length > MAX_EDGES)
    throw formatError(`inputs must be a list of 1 to ${MAX_EDGES} inputs`);
  if (!Array.isArray(raw.layers) || raw.layers.length > MAX_NODES) throw formatError(`layers must be a list of at most ${MAX_NODES} layers`);
  const names = new Set<string>();
  const unique = (name: string): string => {
    if (names.has(name)) throw formatError(`the name '${name}' is used twice`);
    names.add(name);
    return name;
  };
  const inputs: GraphInputJSON[] = raw.inputs.map((i: unknown, k: number) => {
    if (!isObject(i)) throw formatError(`inputs[${k}] must be an object`);
    const name = unique(checkName(i.name, `inputs[${k}].name`));
    if (i.dtype === 'int32') return { name, dtype: 'int32', vocabSize: checkSize(i.vocabSize, `input '${name}' vocabSize`) };
    if (i.dtype === 'float32') {
      if (i.sequence !== undefined && i.sequence !== false) throw formatError(`input '${name}' has sequence ${JSON.stringify(i.sequence)?.slice(0, 40)}: false or absent`);
      return { name, dtype: 'float32', features: checkSize(i.features, `input '${name}' features`), ...(i.sequence === false ? { sequence: false as const } : {}) };
    }
    throw formatError(`input '${name}' has dtype ${JSON.stringify(i.dtype)}: 'int32' or 'float32'`);
  });
  const layers: GraphLayerJSON[] = raw.layers.map((l: unknown, k: number) => {
    if (!isObject(l)) throw formatError(`layers[${k}] must be an object`);
    const name = unique(checkName(l.name, `layers[${k}].name`));
    const config = l.config;
    if (!isObject(config)) throw formatError(`layer '${name}' has no config object`);
    if (typeof config.kind !== 'string' || !LAYER_KINDS.has(config.kind))
      throw formatError(`layer '${name}' is of an unknown kind ${JSON.stringify(config.kind)?.slice(0, 40)} (known: ${[...LAYER_KINDS].join(', ')})`);
    if (config.kind === 'recurrent' && (typeof config.cell !== 'string' || !CELLS.has(config.cell)))
      throw formatError(`recurrent layer '${name}' has an unknown cell ${JSON.stringify(config.cell)?.slice(0, 40)} (known: ${[...CELLS].join(', ')})`);
    if (config.name !== undefined && config.name !== name) throw formatError(`layer '${name}' has the config name ${JSON.stringify(config.name)?.slice(0, 80)}`);
    const attendTo = l.attendTo === undefined ? undefined : checkRefs([l.attendTo], `layer '${name}' attendTo`)[0];
    return {
      name, config: { ...config, name }, inputs: checkRefs(l.inputs, `layer '${name}' inputs`),
      ...(l.initialState !== undefined ? { initialState: checkRefs(l.initialState, `layer '${name}' initialState`) } : {}),
      ...(attendTo ? { attendTo } : {}),
    };
  });
  const outputs = checkRefs(raw.outputs, 'outputs');
  if (!outputs.length) throw formatError('the graph has no output');

  // Every reference names a node; the layers in dependency order (a cycle is named).
  const byName = new Map(layers.map((l) => [l.name, l]));
  const resolve = (r: TensorRef, what: string): void => {
    if (!names.has(r[0])) throw formatError(`${what} refers to '${r[0].slice(0, MAX_NAME)}', which is no input or layer of the graph`);
  };
  for (const l of layers)
    for (const r of [...l.inputs, ...(l.initialState ?? []), ...(l.attendTo ? [l.attendTo] : [])]) resolve(r, `layer '${l.name}'`);
  for (const r of outputs) resolve(r, 'an output');
  const order: GraphLayerJSON[] = [];
  const state = new Map<string, 'open' | 'done'>();
  // Iterative depth-first walk: a hostile file's long chain cannot overflow the stack.
  for (const start of layers) {
    if (state.has(start.name)) continue;
    const stack: { layer: GraphLayerJSON; next: number; deps: string[] }[] = [];
    const push = (l: GraphLayerJSON): void => {
      state.set(l.name, 'open');
      const deps = [...l.inputs, ...(l.initialState ?? []), ...(l.attendTo ? [l.attendTo] : [])].map((r) => r[0]).filter((n) => byName.has(n));
      stack.push({ layer: l, next: 0, deps });
    };
    push(start);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.next < top.deps.length) {
        const dep = top.deps[top.next++];
        const s = state.get(dep);
        if (s === 'open') throw formatError(`the graph has a cycle through '${dep}'`);
        if (s === undefined) push(byName.get(dep)!);
      } else {
        state.set(top.layer.name, 'done');
        order.push(top.layer);
        stack.pop();
      }
    }
  }
  return { version: GRAPH_FORMAT_VERSION, inputs, layers: order, outputs };
}

/** Rebuild a checked graph through `builders`: its inputs and outputs, with every name as stored. */
export function graphFromJSON<T extends TensorView>(graph: GraphJSON, builders: GraphBuilders<T>): { inputs: T[]; outputs: T[] } {
  const produced = new Map<string, T[]>();
  const inputs = graph.inputs.map((i) => {
    const t = builders.input({ name: i.name, dtype: i.dtype, ...(i.dtype === 'int32' ? { vocabSize: i.vocabSize } : { features: i.features, ...(i.sequence === false ? { sequence: false } : {}) }) });
    produced.set(i.name, [t]);
    return t;
  });
  const get = (r: TensorRef, what: string): T => {
    const t = produced.get(r[0])?.[r[1]];
    if (!t) throw formatError(`${what} refers to output ${r[1]} of '${r[0]}', which has ${produced.get(r[0])?.length ?? 0}`);
    return t;
  };
  for (const l of graph.layers) {
    const what = `layer '${l.name}'`;
    let out: T | T[];
    try {
      out = builders.apply(l.config, l.inputs.map((r) => get(r, what)), {
        ...(l.initialState ? { initialState: l.initialState.map((r) => get(r, what)) } : {}),
        ...(l.attendTo ? { attendTo: get(l.attendTo, what) } : {}),
      });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_RNNKIT_FORMAT') throw e;
      throw formatError(`${what} cannot be rebuilt: ${(e as Error).message}${code ? ` (${code})` : ''}`);
    }
    produced.set(l.name, Array.isArray(out) ? out : [out]);
  }
  return { inputs, outputs: graph.outputs.map((r) => get(r, 'an output')) };
}

/**
 * About how many parameters a graph's layers hold (an upper bound for the layers rnnkit builds), from their
 * configs and input sizes alone: the bound the file's own tensors are held to before anything is built.
 */
export function parameterBound(graph: GraphJSON): number {
  const sizes = new Map<string, number[]>();
  for (const i of graph.inputs) sizes.set(i.name, [i.dtype === 'int32' ? i.vocabSize! : i.features!]);
  const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fallback);
  let total = 0;
  for (const l of graph.layers) {
    const c = l.config;
    const ins = l.inputs.map((r) => sizes.get(r[0])?.[Math.min(r[1], (sizes.get(r[0])?.length ?? 1) - 1)] ?? 0);
    const x = ins[0] ?? 0;
    let out = x;
    switch (c.kind) {
      case 'embedding': out = num(c.outputDim); total += num(c.inputDim, x) * out; break;
      case 'recurrent': {
        const H = num(c.units);
        const G = c.cell === 'lstm' ? 4 : c.cell === 'gru' ? 3 : 1;
        const dirs = c.bidirectional ? 2 : 1;
        const L = num(c.numLayers, 1);
        const first = x + (c.attention ? H : 0);
        total += dirs * G * H * (first + H + 2) + (L - 1) * dirs * G * H * (dirs * H + H + 2) + (c.attention ? 2 * H * H + 3 * H + 1 : 0);
        out = c.bidirectional && !(isObject(c.bidirectional) && c.bidirectional.mergeMode === 'sum') ? 2 * H : H;
        break;
      }
      case 'dense': out = num(c.units); total += (x + 1) * out; break;
      case 'concatenate': out = ins.reduce((a, b) => a + b, 0); break;
      default: break;
    }
    // A layer's outputs: the sequence, then states and weights of the same width (enough for the bound).
    sizes.set(l.name, [out, out, out, out]);
  }
  return total;
}

/** A graph model file: the checked graph, the tensors (the native reader's checks applied), the other metadata. */
export interface GraphFile {
  graph: GraphJSON;
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** Serialize a graph model: its graph in the header, its weights under their names, and extra metadata strings. */
export function graphFileBuffer(graph: GraphJSON, tensors: NamedTensor[], metadata: Record<string, string> = {}): Buffer {
  return serializeSafetensors(tensors, { ...metadata, format: 'rnnkit', formatVersion: '1', kind: GRAPH_FILE_KIND, graph: JSON.stringify(graph) });
}

/**
 * Read a graph model file: the frame by the native reader, then the graph description; and, before anything is
 * built, the parameters the graph describes against the floats the file holds.
 */
export function readGraphFile(buf: Uint8Array): GraphFile {
  const file = parseSafetensors(buf);
  const { metadata } = file;
  if (metadata.format !== 'rnnkit' || metadata.kind !== GRAPH_FILE_KIND || typeof metadata.graph !== 'string') {
    const hint = metadata.kind === 'seq2seq' ? ': it holds an encoder-decoder, load it with rnnkit.Seq2Seq.load'
      : metadata.format === 'rnnkit' && typeof metadata.model === 'string' ? ': it holds a sequential model, load it with rnnkit.load' : '';
    throw rnnkitError('ERR_RNNKIT_FORMAT', `not a graph model file (no graph in its header)${hint}`);
  }
  const graph = parseGraphJSON(metadata.graph);
  let held = 0;
  for (const t of file.tensors.values()) held += t.data.length;
  const described = parameterBound(graph);
  // The bound may exceed the exact count a little (biases, attention); it may not exceed what the file holds by more.
  if (described > 2 * held + 4096)
    throw formatError(`the graph describes about ${described} parameters, the file holds ${held} values: the header does not match the tensors`);
  return { graph, tensors: file.tensors, metadata };
}
