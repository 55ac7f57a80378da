// ONNX out for the encoder-decoder: two graphs (opset 14), so that a runtime can decode as rnnkit does, one step at
// a time, carrying the state between steps.
//
// encoder:      source [batch, src_time] int32, source_lengths [batch] int32
//           ->  keys [batch, src_time, H] (the top encoder layer's outputs, 0 past each row's length),
//               keys_proj [batch, src_time, H] (Bahdanau only: Ua keys + b, computed once per source as rnnkit does),
//               source_mask [batch, src_time] float (1 on each row's valid steps, 0 on its padding),
//               state_h [L, batch, H] (and state_c for LSTM): the decoder's initial state, each layer's final state
//               taken at its row's last valid step.
// decoder_step: token [batch] int32, state_h (state_c), keys, keys_proj, source_mask (the attention inputs only
//               when the model has attention)
//           ->  logits [batch, tgtVocab], state_h_out (state_c_out), attention [batch, src_time] (with attention).
// A greedy decode feeds the encoder's outputs by name into the first step, then each step's state outputs into the
// next step's state inputs (and the argmax of its logits as the next token).
//
// Inside, the recurrent cells are ONNX GRU / LSTM nodes (weights reordered as lib/io/onnx/export.ts does it; the
// encoder gets source_lengths as sequence_lens); the step runs each decoder layer as a one-step node.
import { rnnkitError } from '../../errors';
import type { Tensor } from '../../tensor';
import { GraphBuilder } from './graph';
import { DataType } from './schema';
import { GATE_ORDER, onnxRecurrentWeights, packageVersion } from './export';

export interface Seq2SeqOnnxSource {
  cell: string;
  attention: 'none' | 'bahdanau' | 'luong';
  srcVocab: number;
  tgtVocab: number;
  embedSize: number;
  hiddenSize: number;
  numLayers: number;
  weight: (name: string) => Tensor;
  metadata?: Record<string, string>;
}

export interface Seq2SeqOnnx {
  /** The encoder graph (see lib/io/onnx/seq2seq.ts for its inputs and outputs). */
  encoder: Uint8Array;
  /** One decoder step. */
  decoderStep: Uint8Array;
}

// A big negative score for padded source steps: exp() of it is exactly 0 next to any real score.
const MASKED_SCORE = 1e9;

class Seq2SeqOnnxWriter {
  readonly src: Seq2SeqOnnxSource;
  readonly lstm: boolean;
  readonly op: 'GRU' | 'LSTM' | 'RNN';
  readonly order: number[];

  constructor(src: Seq2SeqOnnxSource) {
    this.src = src;
    const order = GATE_ORDER[src.cell];
    if (!order) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `toOnnx: cell '${src.cell}' has no ONNX equivalent here`);
    this.order = order;
    this.lstm = src.cell === 'lstm';
    this.op = src.cell === 'lstm' ? 'LSTM' : src.cell === 'gru' ? 'GRU' : 'RNN';
  }

  #cellAttributes(): Record<string, number | string | string[]> {
    const H = this.src.hiddenSize;
    if (this.src.cell === 'gru') return { hidden_size: H, direction: 'forward', linear_before_reset: 1 };
    if (this.src.cell === 'rnn_relu') return { hidden_size: H, direction: 'forward', activations: ['Relu'] };
    return { hidden_size: H, direction: 'forward' };
  }

  /** A dense layer x W^T + b with PyTorch's [out, in] weight. */
  #linear(g: GraphBuilder, x: string, name: string, out: string): string {
    const w = this.src.weight(`${name}.weight`);
    const b = this.src.weight(`${name}.bias`);
    const wt = g.floats(`${name}.weight_t`, [w.shape[1], w.shape[0]], transpose(w));
    return g.op('Add', [g.op('MatMul', [x, wt], `${out}_matmul`), g.floats(`${name}.bias`, b.shape, b.data)], out);
  }

  #stateDims(): (number | string)[] {
    return [this.src.numLayers, 'batch', this.src.hiddenSize];
  }

  encoder(): Uint8Array {
    const { hiddenSize: H, numLayers: L, embedSize: E } = this.src;
    const g = new GraphBuilder();
    const source = g.input('source', DataType.INT32, ['batch', 'src_time']);
    const lengths = g.input('source_lengths', DataType.INT32, ['batch']);
    const emb = this.src.weight('encoder.embedding.weight');
    const ids = g.op('Transpose', [source], 'source_time_major', { perm: [1, 0] });
    let x = g.op('Gather', [g.floats('encoder.embedding.weight', emb.shape, emb.data), ids], 'encoder_embedded', { axis: 0 });
    const G = this.order.length;
    const hs: string[] = [];
    const cs: string[] = [];
    for (let k = 0; k < L; k++) {
      const { W, R, B } = onnxRecurrentWeights(g, this.src.weight, 'encoder.rnn', k, 1, G, H, k === 0 ? E : H, this.order);
      const outs = g.node(this.op, [x, W, R, B, lengths], [`encoder_l${k}_y`, `encoder_l${k}_hn`, ...(this.lstm ? [`encoder_l${k}_cn`] : [])], this.#cellAttributes());
      hs.push(outs[1]);
      if (this.lstm) cs.push(outs[2]);
      // Y [T, 1, B, H] -> [T, B, H], the next layer's input.
      x = g.op('Squeeze', [outs[0], g.int64s('axis_1', [1])], `encoder_l${k}_out`);
    }
    const keys = g.op('Transpose', [x], 'keys_batch_first', { perm: [1, 0, 2] });
    g.output(keys, 'keys', DataType.FLOAT, ['batch', 'src_time', H]);
    if (this.src.attention === 'bahdanau') g.output(this.#linear(g, keys, 'decoder.attention.Ua', 'keys_projected'), 'keys_proj', DataType.FLOAT, ['batch', 'src_time', H]);
    // source_mask[b, s] = s < source_lengths[b].
    const steps = g.op('Gather', [g.op('Shape', [source], 'source_shape'), g.int64s('index_1', [1])], 'source_steps', { axis: 0 });
    const positions = g.op('Range', [g.op('Constant', [], 'zero', { value_int: 0 }), g.op('Squeeze', [steps, g.int64s('axis_0', [0])], 'steps_scalar'), g.op('Constant', [], 'one', { value_int: 1 })], 'positions');
    const lengths64 = g.op('Unsqueeze', [g.op('Cast', [lengths], 'lengths64', { to: DataType.INT64 }), g.int64s('axis_1', [1])], 'lengths_column');
    const mask = g.op('Cast', [g.op('Less', [positions, lengths64], 'valid')], 'mask', { to: DataType.FLOAT });
    g.output(mask, 'source_mask', DataType.FLOAT, ['batch', 'src_time']);
    g.output(L === 1 ? hs[0] : g.op('Concat', hs, 'state_h_all', { axis: 0 }), 'state_h', DataType.FLOAT, this.#stateDims());
    if (this.lstm) g.output(L === 1 ? cs[0] : g.op('Concat', cs, 'state_c_all', { axis: 0 }), 'state_c', DataType.FLOAT, this.#stateDims());
    return g.encode({ graphName: 'rnnkit_seq2seq_encoder', producerVersion: packageVersion(), metadata: this.src.metadata });
  }

  /** Masked softmax over source steps of scores [B, S]; then the context [B, H] = weights · keys. */
  #attend(g: GraphBuilder, scores: string, mask: string, keys: string): { weights: string; context: string } {
    const bias = g.op('Mul', [g.op('Sub', [mask, g.floats('one_f', [], Float32Array.of(1))], 'mask_minus_one'), g.floats('masked_score', [], Float32Array.of(MASKED_SCORE))], 'mask_bias');
    const weights = g.op('Softmax', [g.op('Add', [scores, bias], 'masked_scores')], 'attention_weights', { axis: -1 });
    const ctx = g.op('MatMul', [g.op('Unsqueeze', [weights, g.int64s('axis_1', [1])], 'weights_row'), keys], 'context_row');
    return { weights, context: g.op('Squeeze', [ctx, g.int64s('axis_1', [1])], 'context') };
  }

  decoderStep(): Uint8Array {
    const { hiddenSize: H, numLayers: L, embedSize: E, attention } = this.src;
    const g = new GraphBuilder();
    const token = g.input('token', DataType.INT32, ['batch']);
    const stateH = g.input('state_h', DataType.FLOAT, this.#stateDims());
    const stateC = this.lstm ? g.input('state_c', DataType.FLOAT, this.#stateDims()) : '';
    const keys = attention !== 'none' ? g.input('keys', DataType.FLOAT, ['batch', 'src_time', H]) : '';
    const keysProj = attention === 'bahdanau' ? g.input('keys_proj', DataType.FLOAT, ['batch', 'src_time', H]) : '';
    const mask = attention !== 'none' ? g.input('source_mask', DataType.FLOAT, ['batch', 'src_time']) : '';
    const emb = this.src.weight('decoder.embedding.weight');
    let x = g.op('Gather', [g.floats('decoder.embedding.weight', emb.shape, emb.data), token], 'decoder_embedded', { axis: 0 });
    const layerState = (all: string, k: number, what: string): string =>
      L === 1 ? all : g.op('Slice', [all, g.int64s(`start_${k}`, [k]), g.int64s(`end_${k}`, [k + 1]), g.int64s('axis_0', [0])], `${what}_l${k}`);
    let weights = '';
    if (attention === 'bahdanau') {
      // score_s = Va · tanh(Wa h_top(t-1) + Ua k_s) + bv, before the recurrence; its context joins the embedding.
      const hTop = g.op('Squeeze', [layerState(stateH, L - 1, 'h_prev'), g.int64s('axis_0', [0])], 'h_top_prev');
      const q = g.op('Unsqueeze', [this.#linear(g, hTop, 'decoder.attention.Wa', 'query'), g.int64s('axis_1', [1])], 'query_row');
      const e = g.op('Tanh', [g.op('Add', [q, keysProj], 'energy_in')], 'energy');
      const va = this.src.weight('decoder.attention.Va.weight');
      const vb = this.src.weight('decoder.attention.Va.bias');
      let scores = g.op('MatMul', [e, g.floats('decoder.attention.Va.weight_t', [H, 1], va.data)], 'scores_column');
      scores = g.op('Add', [g.op('Squeeze', [scores, g.int64s('axis_2', [2])], 'scores_raw'), g.floats('decoder.attention.Va.bias', [1], vb.data)], 'scores');
      const a = this.#attend(g, scores, mask, keys);
      weights = a.weights;
      x = g.op('Concat', [x, a.context], 'decoder_input', { axis: 1 });
    }
    // One step of each layer: X [1, B, I].
    let seq = g.op('Unsqueeze', [x, g.int64s('axis_0', [0])], 'decoder_step_input');
    const hs: string[] = [];
    const cs: string[] = [];
    const G = this.order.length;
    for (let k = 0; k < L; k++) {
      const inputSize = k === 0 ? (attention === 'bahdanau' ? E + H : E) : H;
      const { W, R, B } = onnxRecurrentWeights(g, this.src.weight, 'decoder.rnn', k, 1, G, H, inputSize, this.order);
      const inputs = [seq, W, R, B, '', layerState(stateH, k, 'h_prev')];
      if (this.lstm) inputs.push(layerState(stateC, k, 'c_prev'));
      const outs = g.node(this.op, inputs, ['', `decoder_l${k}_h`, ...(this.lstm ? [`decoder_l${k}_c`] : [])], this.#cellAttributes());
      hs.push(outs[1]);
      if (this.lstm) cs.push(outs[2]);
      seq = outs[1]; // Y_h [1, B, H] is the next layer's one-step input.
    }
    const top = g.op('Squeeze', [hs[L - 1], g.int64s('axis_0', [0])], 'h_top');
    let head = top;
    if (attention === 'luong') {
      // score_s = k_s · h_top(t) after the recurrence; o_t = tanh(Wc [context, h_top(t)]).
      const scores = g.op('Squeeze', [g.op('MatMul', [keys, g.op('Unsqueeze', [top, g.int64s('axis_2', [2])], 'h_top_column')], 'scores_column'), g.int64s('axis_2', [2])], 'scores');
      const a = this.#attend(g, scores, mask, keys);
      weights = a.weights;
      head = g.op('Tanh', [this.#linear(g, g.op('Concat', [a.context, top], 'context_and_h', { axis: 1 }), 'decoder.attention.Wc', 'combined')], 'attentional');
    }
    g.output(this.#linear(g, head, 'decoder.out', 'logits_raw'), 'logits', DataType.FLOAT, ['batch', this.src.tgtVocab]);
    g.output(L === 1 ? hs[0] : g.op('Concat', hs, 'state_h_all', { axis: 0 }), 'state_h_out', DataType.FLOAT, this.#stateDims());
    if (this.lstm) g.output(L === 1 ? cs[0] : g.op('Concat', cs, 'state_c_all', { axis: 0 }), 'state_c_out', DataType.FLOAT, this.#stateDims());
    if (weights) g.output(weights, 'attention', DataType.FLOAT, ['batch', 'src_time']);
    return g.encode({ graphName: 'rnnkit_seq2seq_decoder_step', producerVersion: packageVersion(), metadata: this.src.metadata });
  }
}

function transpose(w: Tensor): Float32Array {
  const [rows, cols] = w.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w.data[r * cols + c];
  return out;
}

/** The encoder and one decoder step of an encoder-decoder as two ONNX models. */
export function exportSeq2SeqOnnx(src: Seq2SeqOnnxSource): Seq2SeqOnnx {
  const w = new Seq2SeqOnnxWriter(src);
  return { encoder: w.encoder(), decoderStep: w.decoderStep() };
}
