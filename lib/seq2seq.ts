// The encoder-decoder (sequence to sequence, with or without attention) as one native model: the TypeScript side
// only checks and forwards; the forward pass, backpropagation through every edge, the loss, the optimizer and the
// decoding (greedy, beam search, one step at a time) are native (native/core/seq2seq.cc).
import { rnnkitError } from './errors';
import { native, type DeviceName, type NativeSeq2Seq, type NativeDecoder, type NativeOptimizerConfig } from './native';
import type { AttentionKind, Seq2SeqSpec, TokenIds, Seq2SeqBatch, DecodeOptions, DecodeResult } from './seq2seq-types';
import { readModelFile, writeFileAtomic } from './io/files';
import { checkOptions } from './options';
import { parseSafetensors, serializeSafetensors, type NamedTensor } from './io/safetensors';
import type { Tensor } from './tensor';
import type { Seq2SeqOnnx } from './io/onnx/seq2seq';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type { AttentionKind, Seq2SeqSpec, TokenIds, Seq2SeqBatch, DecodeOptions, DecodeResult } from './seq2seq-types';

/** One decoding session (a server's request): the state stays native between steps. */
export class Seq2SeqDecoder {
  readonly #d: NativeDecoder;
  constructor(d: NativeDecoder) {
    this.#d = d;
  }
  /** Feed one token per row; returns the next-token logits [rows, tgtVocab] and attention weights [rows, srcSteps]. */
  step(tokens: Int32Array | number[]): { logits: Tensor; attention: Tensor | null } {
    return this.#d.step(tokens);
  }
  get rows(): number {
    return this.#d.rows();
  }
  dispose(): void {
    this.#d.dispose();
  }
}

const FORMAT_KIND = 'seq2seq';

export class Seq2Seq {
  readonly #n: NativeSeq2Seq;
  readonly #spec: Seq2SeqSpec;
  #clipNorm = 0;

  constructor(spec: Seq2SeqSpec) {
    if (typeof spec !== 'object' || spec === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'seq2seq: spec must be an object');
    this.#n = new native.Seq2Seq(spec);
    this.#spec = { ...spec };
  }

  /** The architecture, as given (with the defaults filled in). */
  get spec(): Seq2SeqSpec {
    const s = this.#n.spec();
    return { ...s, ...(this.#spec.seed !== undefined ? { seed: this.#spec.seed } : {}), ...(this.#spec.device ? { device: this.#spec.device } : {}) } as Seq2SeqSpec;
  }

  paramNames(): string[] {
    return this.#n.paramNames();
  }
  paramShape(name: string): number[] {
    return this.#n.paramShape(name);
  }
  getParam(name: string): Tensor {
    return this.#n.getParam(name);
  }
  setParam(name: string, data: Float32Array): void {
    this.#n.setParam(name, data);
  }
  /** The gradient accumulated by the last `lossSync` / training step. */
  getGrad(name: string): Tensor {
    return this.#n.getGrad(name);
  }
  zeroGrad(): void {
    this.#n.zeroGrad();
  }

  /** Choose the optimizer (PyTorch's update rules) and, optionally, gradient clipping for `trainStep`/`fit`. */
  compile(options: { optimizer: NativeOptimizerConfig; clipNorm?: number }): void {
    if (options === undefined) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'compile needs { optimizer }');
    checkOptions(options, 'compile options', ['optimizer', 'clipNorm']);
    this.#n.setOptimizer(options.optimizer);
    this.#clipNorm = options.clipNorm ?? 0;
  }

  /** Teacher-forced forward: logits [batch, tgtSteps, tgtVocab] and attention weights [batch, tgtSteps, srcSteps]. */
  predictSync(batch: Seq2SeqBatch): { logits: Tensor; attention: Tensor | null } {
    return this.#n.forwardSync(batch);
  }
  predict(batch: Seq2SeqBatch): Promise<{ logits: Tensor; attention: Tensor | null }> {
    return this.#n.forward(batch);
  }

  /** Training forward (keeps what backward needs); then `lossSync()` backpropagates. */
  forwardSync(batch: Seq2SeqBatch, options: { train?: boolean } = {}): { logits: Tensor; attention: Tensor | null } {
    return this.#n.forwardSync(batch, options);
  }
  /** The mean cross-entropy of the last training forward over its non-ignored targets, backpropagated (accumulating). */
  lossSync(): number {
    return this.#n.lossSync();
  }

  /** One optimizer step on a batch (zero gradients, forward, loss, backward, clipping, update). */
  trainOnBatchSync(batch: Seq2SeqBatch): { loss: number } {
    return this.#n.trainStepSync(batch, { clipNorm: this.#clipNorm });
  }
  trainOnBatch(batch: Seq2SeqBatch): Promise<{ loss: number }> {
    return this.#n.trainStep(batch, { clipNorm: this.#clipNorm });
  }

  /** The loss over the non-ignored targets, without gradients; `counted` positions took part. */
  evaluateSync(batch: Seq2SeqBatch): { loss: number; counted: number } {
    return this.#n.evaluateSync(batch);
  }
  evaluate(batch: Seq2SeqBatch): Promise<{ loss: number; counted: number }> {
    return this.#n.evaluate(batch);
  }

  /** Greedy or beam-search decoding, carrying the decoder's state from step to step. */
  decodeSync(source: TokenIds, options: DecodeOptions): DecodeResult {
    return this.#n.decodeSync(source, options);
  }
  decode(source: TokenIds, options: DecodeOptions): Promise<DecodeResult> {
    return this.#n.decode(source, options);
  }

  /** Encode a source batch and return a decoder to step one token per row at a time (several may be open at once). */
  beginDecode(source: TokenIds, options: { sourceLengths?: Int32Array | number[] } = {}): Seq2SeqDecoder {
    return new Seq2SeqDecoder(this.#n.beginDecode(source, options));
  }

  /** Save the weights (PyTorch names) with the architecture in the header, atomically. */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toBuffer());
  }

  toBuffer(): Buffer {
    const tensors: NamedTensor[] = this.paramNames().map((name) => {
      const t = this.getParam(name);
      return { name, shape: t.shape, data: t.data };
    });
    const { device: _device, ...spec } = this.spec;
    return serializeSafetensors(tensors, { format: 'rnnkit', formatVersion: '1', kind: FORMAT_KIND, model: JSON.stringify(spec) });
  }

  /** A model saved by `save` (or any safetensors file whose header holds a seq2seq spec). */
  static fromBuffer(buf: Uint8Array, options: { device?: DeviceName } = {}): Seq2Seq {
    const file = parseSafetensors(buf);
    if (file.metadata.kind === 'graph')
      throw rnnkitError('ERR_RNNKIT_FORMAT', `seq2seq: this file holds a graph model: load it with rnnkit.${file.metadata.compiled === 'seq2seq' ? 'GraphSeq2Seq' : 'GraphModel'}.load`);
    if (file.metadata.kind !== FORMAT_KIND || typeof file.metadata.model !== 'string')
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'seq2seq: this file holds no encoder-decoder (no seq2seq spec in its header)');
    let spec: Seq2SeqSpec;
    try {
      spec = JSON.parse(file.metadata.model) as Seq2SeqSpec;
    } catch {
      throw rnnkitError('ERR_RNNKIT_FORMAT', 'seq2seq: the spec in the header is not JSON');
    }
    checkSpecAgainstFile(spec, file.tensors);
    const model = new Seq2Seq({ ...spec, ...(options.device ? { device: options.device } : {}) });
    try {
      model.loadTensors(file.tensors);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  static async load(file: string | Uint8Array, options: { device?: DeviceName } = {}): Promise<Seq2Seq> {
    const buf = typeof file === 'string' ? await readModelFile(file) : file;
    return Seq2Seq.fromBuffer(buf, options);
  }

  /** Set every parameter from named tensors (shapes checked); names the model lacks or leaves unset are errors. */
  loadTensors(tensors: Map<string, NamedTensor>): void {
    const missing = new Set(this.paramNames());
    for (const [name, t] of tensors) {
      if (!missing.has(name)) throw rnnkitError('ERR_RNNKIT_UNKNOWN_PARAM', `seq2seq: the model has no parameter '${name}'`);
      const shape = this.paramShape(name);
      if (shape.join(',') !== t.shape.join(','))
        throw rnnkitError('ERR_RNNKIT_SHAPE', `seq2seq: ${name} has shape [${t.shape}], the model's is [${shape}]`);
      this.setParam(name, t.data);
      missing.delete(name);
    }
    if (missing.size) throw rnnkitError('ERR_RNNKIT_FORMAT', `seq2seq: no value for ${[...missing].join(', ')}`);
  }

  /**
   * The model as two ONNX graphs (opset 14): `encoder` (source ids and lengths in; keys, the source mask and the
   * decoder's initial state out) and `decoderStep` (one token per row, the state, keys and mask in; logits, the new
   * state and the attention weights out). Feeding each step's argmax back reproduces `decode`'s greedy tokens.
   * Inputs and outputs are described in docs/seq2seq.md.
   */
  toOnnx(options: { metadata?: Record<string, string> } = {}): Seq2SeqOnnx {
    if (typeof options !== 'object' || options === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'toOnnx() takes an options object');
    const metadata = options.metadata ?? {};
    if (typeof metadata !== 'object' || metadata === null || Object.values(metadata).some((v) => typeof v !== 'string'))
      throw rnnkitError('ERR_RNNKIT_TYPE', 'toOnnx: options.metadata must map names to strings');
    const spec = this.spec;
    // Loaded lazily: protobufjs is only needed by those who export.
    const { exportSeq2SeqOnnx } = require('./io/onnx/seq2seq') as typeof import('./io/onnx/seq2seq');
    return exportSeq2SeqOnnx({
      cell: spec.cell ?? 'gru', attention: spec.attention ?? 'bahdanau', srcVocab: spec.srcVocab, tgtVocab: spec.tgtVocab,
      embedSize: spec.embedSize, hiddenSize: spec.hiddenSize, numLayers: spec.numLayers ?? 1,
      weight: (name) => this.getParam(name),
      metadata: { 'rnnkit.kind': FORMAT_KIND, 'rnnkit.spec': JSON.stringify({ ...spec, device: undefined }), ...metadata },
    });
  }

  /** Write `toOnnx()` into a folder as `encoder.onnx` and `decoder_step.onnx` (each atomically); returns their paths. */
  async exportOnnx(dir: string, options: { metadata?: Record<string, string> } = {}): Promise<{ encoder: string; decoderStep: string }> {
    if (typeof dir !== 'string' || dir === '') throw rnnkitError('ERR_RNNKIT_TYPE', 'exportOnnx: the folder must be a non-empty string');
    const graphs = this.toOnnx(options);
    await fs.promises.mkdir(dir, { recursive: true });
    const files = { encoder: path.join(dir, 'encoder.onnx'), decoderStep: path.join(dir, 'decoder_step.onnx') };
    await writeFileAtomic(files.encoder, graphs.encoder);
    await writeFileAtomic(files.decoderStep, graphs.decoderStep);
    return files;
  }

  dispose(): void {
    this.#n.dispose();
  }
  get disposed(): boolean {
    return this.#n.isDisposed();
  }
}

/**
 * Before a model is built from a file's header: the weight matrices its spec implies (embeddings, the recurrent
 * stacks' input and recurrent weights, the output layer; biases left out, so this undercounts) may not exceed the
 * values the file holds. A small file cannot make rnnkit allocate the model it merely describes; the exact names and
 * shapes are compared once it is built (loadTensors).
 */
function checkSpecAgainstFile(spec: Seq2SeqSpec, tensors: Map<string, NamedTensor>): void {
  if (typeof spec !== 'object' || spec === null) throw rnnkitError('ERR_RNNKIT_FORMAT', 'seq2seq: the spec in the header is not an object');
  const n = (v: unknown): number => (typeof v === 'number' && v > 0 ? v : 0);
  const G = spec.cell === 'lstm' ? 4 : spec.cell === 'rnn_tanh' || spec.cell === 'rnn_relu' ? 1 : 3;
  const E = n(spec.embedSize), H = n(spec.hiddenSize), L = Math.max(1, n(spec.numLayers));
  const described = E * (n(spec.srcVocab) + n(spec.tgtVocab)) + 2 * G * H * (E + H) + 2 * (L - 1) * G * H * 2 * H + n(spec.tgtVocab) * H;
  let held = 0;
  for (const t of tensors.values()) held += t.data.length;
  if (!(described <= held))
    throw rnnkitError('ERR_RNNKIT_FORMAT', `seq2seq: the spec in the header describes at least ${described} parameters, the file holds ${held} values`);
}

/** Build an encoder-decoder (see Seq2SeqSpec). */
export function seq2seq(spec: Seq2SeqSpec): Seq2Seq {
  return new Seq2Seq(spec);
}
