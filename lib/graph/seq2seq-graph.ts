// The encoder-decoder graphs that compile to the native Seq2Seq (lib/seq2seq.ts), which has greedy and beam decoding:
// input(ids) -> embedding -> recurrent (returnState) as the encoder; input(ids) -> embedding -> recurrent
// (initialState: the encoder's states) as the decoder, optionally with Bahdanau attention inside its recurrence
// (`attention: 'bahdanau'` on the layer and `attendTo: encoderOutputs` when applying it), or Luong's after it
// (`layers.attention()` on [decoderOutputs, encoderOutputs], `concatenate` of [context, decoderOutputs],
// `dense({ activation: 'tanh' })`); then a linear dense layer giving the logits. A graph that does not have this
// shape compiles to the general graph executor instead (lib/graph/graph-model.ts), except a Bahdanau decoder, which
// only the native Seq2Seq runs.
import { rnnkitError } from '../errors';
import { checkOptions } from '../options';
import type { LayerConfig } from '../layers';
import { Seq2Seq, type AttentionKind, type DecodeOptions, type DecodeResult, type Seq2SeqBatch } from '../seq2seq';
import type { NativeOptimizerConfig, DeviceName } from '../native';
import type { Tensor } from '../tensor';
import { readModelFile, writeFileAtomic } from '../io/files';
import { graphFileBuffer, graphToJSON, type GraphJSON } from '../io/graph-file';
import type { NamedTensor } from '../io/safetensors';
import type { Seq2SeqOnnx } from '../io/onnx/seq2seq';
import { graphError, type GraphNode, type SymbolicTensor } from './symbolic';
import { compileGraphFile } from './rebuild';

const isLayer = (n: GraphNode, kind: string): boolean => n.layer?.kind === kind;

/** @internal Compiles the encoder-decoder shapes above; throws ERR_RNNKIT_ARGUMENT / SHAPE for any other graph. */
export function compileSeq2Seq(inputs: SymbolicTensor[], outputs: SymbolicTensor[], order: GraphNode[],
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
  const used = new Set<GraphNode>([encEmb, decEmb, encoder, decoder]);
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
    used.add(n).add(cat).add(wc);
    top = wc.outputs[0];
    n = next(top);
  }
  const head = n;
  const headLayer = head?.layer as (LayerConfig & { kind: 'dense' }) | undefined;
  if (!head || headLayer?.kind !== 'dense' || (headLayer.activation ?? 'linear') !== 'linear')
    throw unsupported(`the decoder ends with a linear dense layer giving the logits (softmax is part of the loss)`);
  const logits = head.outputs[0];
  used.add(head);
  for (const x of order) if (x.layer && !used.has(x)) throw unsupported(`layer '${x.name}' is not part of the encoder-decoder`);
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
  /** A graph model saved by `save`: the graph rebuilt by its layer constructors and compiled again, then its weights. */
  static async load(file: string | URL | Uint8Array, options: { device?: DeviceName } = {}): Promise<GraphSeq2Seq> {
    const buf = file instanceof Uint8Array ? file : await readModelFile(file);
    return GraphSeq2Seq.fromBuffer(buf, options);
  }
  static fromBuffer(buf: Uint8Array, options: { device?: DeviceName } = {}): GraphSeq2Seq {
    checkOptions(options, 'GraphSeq2Seq.load options', ['device']);
    const { file, model: built } = compileGraphFile(buf, 'seq2seq', 'GraphModel', (inputs, outputs, order) =>
      compileSeq2Seq(inputs, outputs, order, options.device ? { device: options.device } : {}));
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
