// PyTorch in, for an encoder-decoder: a safetensors file of a state_dict of PyTorch's seq2seq tutorial model becomes
// a Seq2Seq whose outputs equal PyTorch's. Sizes, depth, cell and attention kind are inferred from the tensors and
// every tensor is checked (names and shapes) before use.
//
// Names: rnnkit's own (`encoder.embedding.weight`, `encoder.rnn.weight_ih_l0`, `decoder.attention.Wa.weight`,
// `decoder.out.weight`, ...) are read as they are. Other module trees map onto them with `spec.rename`: pairs of
// prefixes, rnnkit's on the left, the file's on the right. The tutorial's `EncoderRNN` (embedding, gru) and
// `AttnDecoderRNN` (embedding, attention.{Wa,Ua,Va}, gru, out) saved under `encoder.` and `decoder.` need
// `{ 'encoder.rnn.': 'encoder.gru.', 'decoder.rnn.': 'decoder.gru.' }`; that mapping is `TUTORIAL_NAMES`.
import { rnnkitError } from '../../errors';
import { readRegularFile } from '../files';
import { parseSafetensors, type NamedTensor } from '../safetensors';
import { Seq2Seq, type AttentionKind } from '../../seq2seq';
import type { DeviceName } from '../../native';

export interface TorchSeq2SeqSpec {
  /** rnnkit's prefix -> the file's prefix. */
  rename?: Record<string, string>;
  /** Checked against the tensors when given (inferred otherwise). */
  cell?: 'gru' | 'lstm' | 'rnn_tanh' | 'rnn_relu';
  attention?: AttentionKind;
  device?: DeviceName;
}

/** The names of PyTorch's seq2seq tutorial (EncoderRNN / AttnDecoderRNN with nn.GRU members named `gru`). */
export const TUTORIAL_NAMES: Readonly<Record<string, string>> = Object.freeze({
  'encoder.rnn.': 'encoder.gru.',
  'decoder.rnn.': 'decoder.gru.',
});

function fmt(message: string): Error {
  return rnnkitError('ERR_RNNKIT_FORMAT', `fromTorchSeq2Seq: ${message}`);
}
function arg(message: string): Error {
  return rnnkitError('ERR_RNNKIT_ARGUMENT', `fromTorchSeq2Seq: ${message}`);
}

export async function fromTorchSeq2Seq(file: string | Uint8Array, spec: TorchSeq2SeqSpec = {}): Promise<Seq2Seq> {
  const buf = file instanceof Uint8Array ? file : await readRegularFile(file, { what: 'state_dict file' });
  return fromTorchSeq2SeqSync(buf, spec);
}

export function fromTorchSeq2SeqSync(buf: Uint8Array, spec: TorchSeq2SeqSpec = {}): Seq2Seq {
  if (typeof spec !== 'object' || spec === null) throw arg('spec must be an object');
  const rename = spec.rename ?? {};
  if (typeof rename !== 'object' || rename === null || Object.values(rename).some((v) => typeof v !== 'string'))
    throw arg('spec.rename must map prefixes to prefixes (strings)');
  const fileName = (ours: string): string => {
    let best = '';
    for (const prefix of Object.keys(rename)) if (ours.startsWith(prefix) && prefix.length > best.length) best = prefix;
    return best ? rename[best] + ours.slice(best.length) : ours;
  };
  const file = parseSafetensors(buf);
  const get = (ours: string): NamedTensor | undefined => file.tensors.get(fileName(ours));
  const need = (ours: string): NamedTensor => {
    const t = get(ours);
    if (!t) throw fmt(`the file has no tensor '${fileName(ours)}' (rnnkit's ${ours})`);
    return t;
  };
  const encEmb = need('encoder.embedding.weight');
  const decEmb = need('decoder.embedding.weight');
  const whh = need('encoder.rnn.weight_hh_l0');
  if (encEmb.shape.length !== 2 || decEmb.shape.length !== 2 || whh.shape.length !== 2)
    throw fmt('the embeddings and recurrent weights must be matrices');
  const H = whh.shape[1];
  const gates = H > 0 ? whh.shape[0] / H : 0;
  const inferred = gates === 3 ? 'gru' : gates === 4 ? 'lstm' : gates === 1 ? 'rnn_tanh' : undefined;
  if (!inferred) throw fmt(`'${whh.name}' has shape [${whh.shape}], which is no GRU, LSTM or RNN weight`);
  const cell = spec.cell ?? inferred;
  if ((cell === 'rnn_relu' ? 'rnn_tanh' : cell) !== inferred) throw arg(`spec.cell is '${cell}' but the tensors hold a ${inferred}`);
  let layers = 0;
  while (get(`encoder.rnn.weight_ih_l${layers}`)) layers++;
  const attention: AttentionKind = spec.attention ??
    (get('decoder.attention.Wa.weight') ? 'bahdanau' : get('decoder.attention.Wc.weight') ? 'luong' : 'none');
  const model = new Seq2Seq({
    cell, attention, srcVocab: encEmb.shape[0], tgtVocab: decEmb.shape[0], embedSize: encEmb.shape[1], hiddenSize: H,
    numLayers: layers, ...(spec.device ? { device: spec.device } : {}),
  });
  try {
    const tensors = new Map<string, NamedTensor>();
    for (const name of model.paramNames()) tensors.set(name, need(name));
    // A decoder of a different depth or an encoder of a different width than the other stack shows up as a
    // missing tensor or a shape mismatch here.
    model.loadTensors(tensors);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}
