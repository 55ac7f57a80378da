// The functional model graph: symbolic tensors (symbolic.ts), layers with apply (layers.ts), the compiler into the
// native plan (compile.ts), the model classes (graph-model.ts, seq2seq-graph.ts) and model() that picks one (model.ts).
export { SymbolicTensor, input, topoSort } from './symbolic';
export type { InputOptions, TensorKind, GraphNode } from './symbolic';
export { layers } from './layers';
export type { ApplyOptions, GraphLayer, GraphLayerConfig, GraphRecurrentOptions } from './layers';
export { model, graphModel } from './model';
export type { ModelGraphOptions } from './model';
export { GraphModel } from './graph-model';
export type { GraphCompileOptions, GraphData, GraphTargets, GraphLengths, GraphLengthsOption, GraphLogs, GraphFitOptions, GraphHistory, GraphLayerSummary, GraphLossName } from './graph-model';
export { GraphSeq2Seq } from './seq2seq-graph';
export type { GraphInputs } from './seq2seq-graph';
export { compilePlan } from './compile';
export type { GraphPlan, PlanNode } from './compile';
