export { RecurrentNetwork } from './recurrent';
export type {
  RecurrentSpec,
  SequenceBatch,
  ForwardResult,
  OutputGradient,
  InputGradient,
  LossTarget,
  OptimizerOptions,
  TrainStepResult,
  CellType,
  GateActivation,
} from './recurrent';
export { tensor, shapeSize } from './tensor';
export type { Tensor, IntTensor } from './tensor';
export { isRnnkitError } from './errors';
export type { RnnkitError, RnnkitErrorCode } from './errors';
export type { BackendInfo, DeviceInfo, DeviceName } from './native';

import { native, type BackendInfo, type DeviceInfo } from './native';

/** What computes: the GEMM in use (a system BLAS or the built-in kernel) and the thread count. */
export function backendInfo(): BackendInfo {
  return native.backendInfo();
}

/**
 * The devices networks can run on: always the CPU, then every CUDA GPU that this build can use (a build with
 * `npm run build:cuda`, an NVIDIA driver that sees the GPU, and cuBLAS). Pick one with `device` in a spec.
 */
export function devices(): DeviceInfo[] {
  return native.devices();
}

/** Set the number of threads of the native pool (also RNNKIT_THREADS at start-up). */
export function setThreads(n: number): void {
  native.setThreads(n);
}

export { Sequential, ModelStream, sequential, load } from './model';
export type { StreamStepOptions } from './model';
export type {
  ModelOptions, CompileOptions, ModelInput, ModelTarget, StepLogs, EpochLogs, Callbacks, History, FitOptions,
  FitDatasetOptions, BatchSource, CheckpointOptions, GenerateOptions, LossName, PredictOptions, InferencePrecision,
  MetricName, EvaluateResult, EvaluateOptions, TrainOnBatchOptions, TrainOnBatchResult, Lengths, LayerSummary,
} from './model';
export type { OnnxExportOptions } from './io/onnx/export';
// The layer constructors, each with `apply` for the functional graph (and usable in `sequential` as plain layers).
export { layers, input, model, graphModel, SymbolicTensor, GraphSeq2Seq, GraphModel } from './graph';
export type {
  InputOptions, ApplyOptions, GraphLayer, GraphLayerConfig, GraphInputs, GraphRecurrentOptions, TensorKind, ModelGraphOptions,
  GraphCompileOptions, GraphData, GraphTargets, GraphLengths, GraphLengthsOption, GraphLogs, GraphFitOptions, GraphHistory,
  GraphLayerSummary, GraphLossName, GraphPlan, PlanNode,
} from './graph';
export type { GraphJSON, GraphInputJSON, GraphLayerJSON, TensorRef } from './io/graph-file';
export type { LayerConfig, Activation, RecurrentOptions, SimpleRnnOptions, GatedRecurrentOptions, RecurrentActivation, GruOptions, DenseOptions, DropoutOptions, EmbeddingOptions } from './layers';
export { optimizers } from './optimizers';
export type { OptimizerConfig } from './optimizers';
export { SeededRandom } from './random';
export { CharVocabulary, SequenceDataset, splitText } from './data/text';
export type { UnknownPolicy, CharVocabularyOptions, CharVocabularyJSON, SequenceDatasetOptions, TextBatch, SequentialTextBatch } from './data/text';
export { fromTorch, fromTorchSync } from './io/interop/torch';
export type { TorchSpec, TorchCell } from './io/interop/torch';
export { fromTfjs, fromTfjsArtifacts } from './io/interop/tfjs';
export type { TfjsArtifacts } from './io/interop/tfjs';
export { Seq2Seq, Seq2SeqDecoder, seq2seq } from './seq2seq';
export type { Seq2SeqSpec, Seq2SeqBatch, AttentionKind, TokenIds, DecodeOptions, DecodeResult } from './seq2seq';
export type { Seq2SeqOnnx } from './io/onnx/seq2seq';
export { fromTorchSeq2Seq, fromTorchSeq2SeqSync, TUTORIAL_NAMES } from './io/interop/torch-seq2seq';
export type { TorchSeq2SeqSpec } from './io/interop/torch-seq2seq';
export { runDistributedBatch } from './batch/distributed/producer';
export type { DistributedBatchOptions, DistributedBatchSummary, FailedChunk } from './batch/distributed/producer';
export { runWorker } from './batch/distributed/worker';
export type { WorkerOptions, WorkerSummary } from './batch/distributed/worker';
export { DirectoryStore } from './batch/distributed/store';
export type { ChunkStore, StoreSpec } from './batch/distributed/store';
