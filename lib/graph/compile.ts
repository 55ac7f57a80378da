// The graph compiler: a checked symbolic graph (topologically ordered nodes) becomes the native plan that
// native/core/graph_network.cc runs, a JSON-like description whose tensors are numbered: the model's inputs first,
// then every native node's outputs in node order (a recurrent layer: its output, then h and c with returnState; an
// attention layer: the context, then the weights). Each layer becomes one native node, or two for a recurrent layer
// with input dropout, through the same translation `sequential` uses (nativeStages, lib/layers.ts).
import { nativeStages, type LayerConfig } from '../layers';
import type { NativeLayerSpec, DeviceName } from '../native';
import { graphError, type GraphNode, type SymbolicTensor } from './symbolic';

/** One node of the native plan. */
export interface PlanNode {
  op: 'embedding' | 'recurrent' | 'dense' | 'dropout' | 'repeatVector' | 'concatenate' | 'attention';
  name: string;
  inputs: number[];
  initialState?: number[];
  returnState?: boolean;
  n?: number;
  layer?: NativeLayerSpec;
}

/** The native plan of a graph model: plain data (JSON), what the native Graph is made from. */
export interface GraphPlan {
  inputs: { name: string; dtype: 'int32' | 'float32'; size: number; sequence: boolean }[];
  nodes: PlanNode[];
  outputs: number[];
  seed?: number;
  device?: DeviceName;
}

export function compilePlan(inputs: SymbolicTensor[], outputs: SymbolicTensor[], order: GraphNode[],
  options: { seed?: number; device?: DeviceName }): GraphPlan {
  const ids = new Map<SymbolicTensor, number>();
  const names = new Set<string>();
  const plan: GraphPlan = { inputs: [], nodes: [], outputs: [] };
  for (const i of inputs) {
    if (names.has(i.name)) throw graphError(`two inputs are named '${i.name}'`);
    names.add(i.name);
    ids.set(i, plan.inputs.length);
    plan.inputs.push({ name: i.name, dtype: i.kind === 'tokens' ? 'int32' : 'float32', size: i.size, sequence: i.kind !== 'vector' });
  }
  let next = inputs.length;
  const idOf = (t: SymbolicTensor, reader: GraphNode): number => {
    const id = ids.get(t);
    if (id === undefined) throw graphError(`layer '${reader.name}' reads '${t.name}', which is not computed before it`);
    return id;
  };
  for (const n of order) {
    if (!n.layer) continue;
    if (names.has(n.name)) throw graphError(`two layers (or a layer and an input) are named '${n.name}'`);
    names.add(n.name);
    const l = n.layer;
    const inIds = n.inputs.map((t) => idOf(t, n));
    const emit = (node: PlanNode, outputs: number): number => {
      plan.nodes.push(node);
      const first = next;
      next += outputs;
      return first;
    };
    switch (l.kind) {
      case 'attention': {
        const first = emit({ op: 'attention', name: n.name, inputs: inIds }, 2);
        n.outputs.forEach((t, k) => ids.set(t, first + k));
        break;
      }
      case 'concatenate':
      case 'repeatVector': {
        const node: PlanNode = { op: l.kind, name: n.name, inputs: inIds };
        if (l.kind === 'repeatVector') node.n = l.n;
        ids.set(n.outputs[0], emit(node, 1));
        break;
      }
      default: {
        const config = l as LayerConfig & { attention?: string; returnAttention?: boolean };
        if (config.attention || config.returnAttention)
          throw graphError(`layer '${n.name}' has Bahdanau attention, which compiles only as the decoder of an encoder-decoder (input ids -> embedding -> encoder with returnState; decoder input ids -> embedding -> this layer started from the encoder's state, attending to its outputs, -> a linear dense layer); use layers.attention() (Luong's) anywhere else`);
        const { attention: _a, returnAttention: _r, ...own } = config;
        const stages = nativeStages(own as LayerConfig, n.name);
        let x = inIds;
        for (const s of stages) {
          const op = s.type;
          const node: PlanNode = { op, name: s.name as string, inputs: x, layer: s };
          const isMain = s === stages[stages.length - 1];
          if (isMain && op === 'recurrent') {
            if (n.initialState.length) node.initialState = n.initialState.map((t) => idOf(t, n));
            if (config.kind === 'recurrent' && config.returnState) node.returnState = true;
          }
          const count = isMain && op === 'recurrent' && node.returnState ? 1 + (config.kind === 'recurrent' && config.cell === 'lstm' ? 2 : 1) : 1;
          const first = emit(node, count);
          x = [first];
          if (isMain) n.outputs.forEach((t, k) => ids.set(t, first + k));
          else names.add(s.name as string);
        }
      }
    }
  }
  plan.outputs = outputs.map((o) => {
    const id = ids.get(o);
    if (id === undefined) throw graphError(`output '${o.name}' is not computed by the graph`);
    return id;
  });
  if (options.seed !== undefined) plan.seed = options.seed;
  if (options.device !== undefined) plan.device = options.device;
  return plan;
}
