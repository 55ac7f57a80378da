// `model({ inputs, outputs })`: checks the graph (cycles, disconnected outputs, unused inputs, names) and picks what
// runs it: a chain of one input and one output is a `Sequential` (the native layer pipeline, with streams,
// generation, int8, ONNX export and save/load); the encoder-decoder shapes of lib/graph/seq2seq-graph.ts are a
// `GraphSeq2Seq` (the native encoder-decoder, with greedy and beam decoding); every other acyclic graph is a
// `GraphModel` over the native graph executor.
import { rnnkitError } from '../errors';
import { checkOptions } from '../options';
import { Sequential } from '../model';
import type { LayerConfig } from '../layers';
import type { DeviceName } from '../native';
import { SymbolicTensor, graphError, isChain, topoSort } from './symbolic';
import { compilePlan } from './compile';
import { graphToJSON } from '../io/graph-file';
import { GraphModel } from './graph-model';
import { compileSeq2Seq, GraphSeq2Seq } from './seq2seq-graph';

export interface ModelGraphOptions {
  inputs: SymbolicTensor | SymbolicTensor[];
  outputs: SymbolicTensor | SymbolicTensor[];
  seed?: number;
  device?: DeviceName;
}

/** The inputs, outputs and ordered nodes of a graph, checked (cycles, disconnected outputs, unused inputs). */
function checkGraph(options: ModelGraphOptions): { inputs: SymbolicTensor[]; outputs: SymbolicTensor[]; order: ReturnType<typeof topoSort> } {
  if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'model() takes { inputs, outputs }');
  checkOptions(options, 'model() options', ['inputs', 'outputs', 'seed', 'device']);
  const inputs = Array.isArray(options.inputs) ? options.inputs : [options.inputs];
  const outputs = Array.isArray(options.outputs) ? options.outputs : [options.outputs];
  if (!inputs.length || !outputs.length) throw graphError('a model needs at least one input and one output');
  for (const i of inputs) if (!(i instanceof SymbolicTensor) || i.node.layer) throw graphError(`'${(i as SymbolicTensor)?.name}' is not an input()`);
  if (new Set(inputs).size !== inputs.length) throw graphError('an input is listed twice');
  return { inputs, outputs, order: topoSort(inputs, outputs) };
}

/**
 * Like `model()`, but always the native graph executor: a `GraphModel` (one class, with save/load) for any acyclic
 * graph of these layers, a chain or an encoder-decoder included; only Bahdanau attention, which lives inside the
 * native encoder-decoder, is refused.
 */
export function graphModel(options: ModelGraphOptions): GraphModel {
  const { inputs, outputs, order } = checkGraph(options);
  return new GraphModel(compilePlan(inputs, outputs, order, options), outputs.map((o) => o.name), graphToJSON(inputs, outputs, order));
}

/**
 * Build a model from symbolic inputs and outputs: a `Sequential` for a chain, a `GraphSeq2Seq` for an
 * encoder-decoder, a `GraphModel` for any other acyclic graph. Errors are coded and name the layer.
 */
export function model(options: ModelGraphOptions): Sequential | GraphSeq2Seq | GraphModel {
  const { inputs, outputs, order } = checkGraph(options);
  if (isChain(inputs, outputs, order)) {
    const x = inputs[0];
    const layerConfigs = order.filter((n) => n.layer).map((n) => {
      const { attention: _a, returnAttention: _r, ...config } = n.layer as LayerConfig & { attention?: string; returnAttention?: boolean };
      if (_a) throw graphError(`'${n.name}' attends to nothing in a chain`);
      return { ...config, name: config.name ?? n.name } as LayerConfig;
    });
    return new Sequential({
      ...(x.kind === 'tokens' ? { vocabSize: x.size } : { inputSize: x.size }),
      layers: layerConfigs,
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    });
  }
  const bahdanau = order.some((n) => n.layer?.kind === 'recurrent' && (n.layer as { attention?: string }).attention);
  if (bahdanau) return compileSeq2Seq(inputs, outputs, order, options);
  try {
    return compileSeq2Seq(inputs, outputs, order, options);
  } catch (e) {
    // Not an encoder-decoder of the native Seq2Seq's shape: the general executor runs it.
    if ((e as { code?: string }).code !== 'ERR_RNNKIT_ARGUMENT' && (e as { code?: string }).code !== 'ERR_RNNKIT_SHAPE') throw e;
  }
  return new GraphModel(compilePlan(inputs, outputs, order, options), outputs.map((o) => o.name), graphToJSON(inputs, outputs, order));
}
