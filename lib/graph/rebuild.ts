// A stored graph (lib/io/graph-file.ts's GraphJSON) rebuilt through the layer constructors and input(), so that a
// loaded graph passes every check a graph built by hand does.
import { rnnkitError } from '../errors';
import { graphFromJSON, readGraphFile, type GraphFile, type GraphJSON } from '../io/graph-file';
import { layers, type GraphLayer } from './layers';
import { input, isChain, topoSort, SymbolicTensor, type GraphNode } from './symbolic';

/** The layer a stored description (a GraphLayerConfig, as `graphToJSON` keeps it) stands for, built by its constructor. */
export function layerFromConfig(config: Record<string, unknown>): GraphLayer {
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
    case 'repeatVector': return layers.repeatVector(o as Options<'repeatVector'>);
    case 'recurrent':
      if (cell === 'lstm') return layers.lstm(o as Options<'lstm'>);
      if (cell === 'gru') return layers.gru(o as Options<'gru'>);
      if (cell === 'rnn_tanh' || cell === 'rnn_relu') return layers.simpleRNN({ ...rest, activation: cell === 'rnn_relu' ? 'relu' : 'tanh' } as unknown as Options<'simpleRNN'>);
  }
  throw rnnkitError('ERR_RNNKIT_FORMAT', `graph: no layer of kind ${JSON.stringify(kind)}${cell !== undefined ? ` and cell ${JSON.stringify(cell)}` : ''}`);
}

/** A stored graph rebuilt with its names: its symbolic inputs and outputs. */
export function rebuildGraph(graph: GraphJSON): { inputs: SymbolicTensor[]; outputs: SymbolicTensor[] } {
  return graphFromJSON<SymbolicTensor>(graph, {
    input: (o) => input(o),
    apply: (config, ins, o) => layerFromConfig(config).apply(ins, o),
  });
}

/**
 * A graph model file read for `load`: the checked file, its graph rebuilt and compiled by `compile` (which builds
 * the model). `kind` is what the caller loads ('graph' or 'seq2seq', as the file's `compiled` says), `other` the
 * loader of the other kind, for the hint. A stored chain (saved as a sequential model, never as a graph) and a graph
 * that does not compile are ERR_RNNKIT_FORMAT.
 */
export function compileGraphFile<T>(buf: Uint8Array, kind: 'graph' | 'seq2seq', other: string,
  compile: (inputs: SymbolicTensor[], outputs: SymbolicTensor[], order: GraphNode[], graph: GraphJSON) => T): { file: GraphFile; model: T } {
  const file = readGraphFile(buf);
  if (file.metadata.compiled !== undefined && file.metadata.compiled !== kind)
    throw rnnkitError('ERR_RNNKIT_FORMAT', `graph file: it holds ${file.metadata.compiled === 'seq2seq' ? 'an encoder-decoder graph' : 'a general graph model'}: load it with rnnkit.${other}.load`);
  try {
    const { inputs, outputs } = rebuildGraph(file.graph);
    const order = topoSort(inputs, outputs);
    // A chain is a Sequential (rnnkit.load), except as a GraphModel made by graphModel(), which runs any graph.
    if (kind === 'seq2seq' && isChain(inputs, outputs, order))
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'graph file: the stored graph is a chain of layers, which is saved and loaded as a sequential model (rnnkit.load)');
    return { file, model: compile(inputs, outputs, order, file.graph) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_RNNKIT_ARGUMENT' || code === 'ERR_RNNKIT_SHAPE' || code === 'ERR_RNNKIT_TYPE')
      throw rnnkitError('ERR_RNNKIT_FORMAT', `graph file: the stored graph does not compile: ${(e as Error).message} (${code})`);
    throw e;
  }
}
