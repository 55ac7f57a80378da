// PyTorch in: a safetensors file of a PyTorch state_dict (nn.RNN / nn.LSTM / nn.GRU, optionally an nn.Embedding
// before and an nn.Linear head after) becomes a Sequential model whose outputs equal PyTorch's for batch-first input.
//
// Shapes are inferred from the tensors (hidden size, layers, directions, input size) and every tensor is checked
// before use. Tensors outside the prefixes named in the spec are ignored, so a whole model's state_dict can be given.
//
// Mapping back: the model's layers are named after the prefixes ('rnn.' -> layer 'rnn', 'encoder.rnn.' ->
// 'encoder_rnn'; an empty prefix gives 'rnn', 'embedding', 'head'), so `model.save(path)` writes
// `<layer>.weight_ih_l0`, `<layer>.bias_hh_l1_reverse`, `<layer>.weight`, ... with PyTorch's layouts and gate orders.
// Rename `<layer>.` to the original prefix (dots instead of '_' where the prefix had them) and
// `torch.nn.Module.load_state_dict` takes the tensors unchanged (nn.RNN/LSTM/GRU with batch_first=True for the
// same input layout; for GRUs built here resetAfter is true, as PyTorch's).
import { rnnkitError } from '../../errors';
import { readRegularFile } from '../files';
import { Sequential } from '../../model';
import type { LayerConfig, Activation } from '../../layers';
import { parseSafetensors, type NamedTensor } from '../safetensors';

export type TorchCell = 'rnn' | 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface TorchSpec {
  /** The recurrent module: nn.LSTM ('lstm'), nn.GRU ('gru'), nn.RNN ('rnn_tanh' or 'rnn', 'rnn_relu'). */
  cell: TorchCell;
  /** Prefix of the recurrent module's tensors in the state_dict, e.g. 'rnn.' ('' for a bare module's state_dict). */
  rnnPrefix?: string;
  /** Prefix of an nn.Embedding before the recurrent module (its weight gives vocabSize). */
  embeddingPrefix?: string;
  /** Prefix of an nn.Linear head applied to every step's output. */
  headPrefix?: string;
  /** Activation after the head (default 'linear'). */
  headActivation?: Activation;
  /** Token-id input over this many symbols: checked against the embedding, or one-hot input to the RNN. */
  vocabSize?: number;
  /** Dense input features: checked against the tensors (inferred when absent). */
  inputSize?: number;
  /** Output every step (default true, as PyTorch's `output`) or only the last step. */
  returnSequences?: boolean;
}

const CELLS: Record<TorchCell, { cell: 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru'; gates: number; module: string }> = {
  rnn: { cell: 'rnn_tanh', gates: 1, module: 'nn.RNN' },
  rnn_tanh: { cell: 'rnn_tanh', gates: 1, module: 'nn.RNN' },
  rnn_relu: { cell: 'rnn_relu', gates: 1, module: 'nn.RNN' },
  lstm: { cell: 'lstm', gates: 4, module: 'nn.LSTM' },
  gru: { cell: 'gru', gates: 3, module: 'nn.GRU' },
};

const ACTIVATIONS = new Set(['linear', 'softmax', 'sigmoid', 'tanh', 'relu']);

function fmt(message: string): Error {
  return rnnkitError('ERR_RNNKIT_FORMAT', `fromTorch: ${message}`);
}
function arg(message: string): Error {
  return rnnkitError('ERR_RNNKIT_ARGUMENT', `fromTorch: ${message}`);
}

function positiveInt(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) <= 0) throw arg(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function prefixOf(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw arg(`${what} must be a string`);
  return v;
}

/** Layer name for a prefix: 'encoder.rnn.' -> 'encoder_rnn'. */
function layerName(prefix: string, fallback: string, taken: Set<string>): string {
  let name = prefix.replace(/\.$/, '').replace(/[^A-Za-z0-9_-]/g, '_') || fallback;
  while (taken.has(name)) name += '_';
  taken.add(name);
  return name;
}

function shapeEq(t: NamedTensor, want: number[]): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
    throw fmt(`tensor '${t.name}' has shape [${t.shape}], expected [${want}]`);
}

/**
 * Build a Sequential model from a PyTorch state_dict saved as safetensors (a path or the file's bytes). The model
 * takes batch-first input: token ids `[batch, time]` with an embedding or `vocabSize`, features otherwise.
 */
export async function fromTorch(file: string | Uint8Array, spec: TorchSpec): Promise<Sequential> {
  const buf = file instanceof Uint8Array ? file : await readRegularFile(file, { what: 'state_dict file' });
  return fromTorchSync(buf, spec);
}

/** fromTorch on a buffer, synchronously. */
export function fromTorchSync(buf: Uint8Array, spec: TorchSpec): Sequential {
  if (typeof spec !== 'object' || spec === null) throw rnnkitError('ERR_RNNKIT_TYPE', 'fromTorch: spec must be an object { cell, rnnPrefix, ... }');
  const cellInfo = CELLS[spec.cell as TorchCell];
  if (!cellInfo || !Object.prototype.hasOwnProperty.call(CELLS, spec.cell))
    throw arg(`spec.cell must be one of ${Object.keys(CELLS).join(', ')}, got ${JSON.stringify(spec.cell)}`);
  const rnnPrefix = prefixOf(spec.rnnPrefix, 'spec.rnnPrefix') ?? '';
  const embPrefix = prefixOf(spec.embeddingPrefix, 'spec.embeddingPrefix');
  const headPrefix = prefixOf(spec.headPrefix, 'spec.headPrefix');
  const headActivation = spec.headActivation ?? 'linear';
  if (!ACTIVATIONS.has(headActivation)) throw arg(`spec.headActivation must be one of ${[...ACTIVATIONS].join(', ')}, got ${JSON.stringify(headActivation)}`);
  if (spec.headActivation !== undefined && headPrefix === undefined) throw arg('spec.headActivation needs spec.headPrefix');
  const specVocab = positiveInt(spec.vocabSize, 'spec.vocabSize');
  const specInput = positiveInt(spec.inputSize, 'spec.inputSize');
  if (specVocab !== undefined && specInput !== undefined) throw arg('give spec.vocabSize or spec.inputSize, not both');
  if (embPrefix !== undefined && specInput !== undefined) throw arg('an embedding reads token ids: give spec.vocabSize (or nothing), not spec.inputSize');
  const returnSequences = spec.returnSequences ?? true;
  if (typeof returnSequences !== 'boolean') throw arg('spec.returnSequences must be a boolean');

  const RNN_PARAM = /^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l\d+(_reverse)?$/;
  const ours = (name: string): boolean =>
    (name.startsWith(rnnPrefix) && (rnnPrefix !== '' || RNN_PARAM.test(name))) ||
    [embPrefix, headPrefix].some((p) => p !== undefined && name.startsWith(p));
  // Other modules' tensors (an int64 num_batches_tracked, say) are checked but neither converted nor dtype-checked.
  const file = parseSafetensors(buf, ours);
  const tensors = file.tensors;
  const get = (name: string): NamedTensor => {
    const t = tensors.get(name);
    if (!t) throw fmt(`the file has no tensor '${name}'`);
    return t;
  };

  // The recurrent module: weight_ih_l{k}[_reverse], weight_hh_..., bias_ih_..., bias_hh_...
  const G = cellInfo.gates;
  const pattern = /^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$/;
  const own = [...tensors.keys()].filter((n) => n.startsWith(rnnPrefix) && (rnnPrefix !== '' || pattern.test(n) || /^weight_hr_l\d+/.test(n)));
  let numLayers = 0;
  let reverse = false;
  let hasBias = false;
  for (const name of own) {
    const rest = name.slice(rnnPrefix.length);
    if (embPrefix !== undefined && name.startsWith(embPrefix) && embPrefix.length > rnnPrefix.length) continue;
    if (headPrefix !== undefined && name.startsWith(headPrefix) && headPrefix.length > rnnPrefix.length) continue;
    if (/^weight_hr_l\d+/.test(rest)) throw fmt(`tensor '${name}': LSTM projections (proj_size) are not supported`);
    const m = pattern.exec(rest);
    if (!m) throw fmt(`tensor '${name}' is not a parameter of ${cellInfo.module} (expected weight_ih_l0, bias_hh_l0_reverse, ...)`);
    const k = Number(m[2]);
    if (!Number.isSafeInteger(k) || k > 1024) throw fmt(`tensor '${name}' names layer ${m[2]}, out of range`);
    numLayers = Math.max(numLayers, k + 1);
    if (m[3]) reverse = true;
    if (m[1].startsWith('bias')) hasBias = true;
  }
  if (numLayers === 0) throw fmt(`the file has no ${cellInfo.module} tensors under the prefix '${rnnPrefix}' (expected '${rnnPrefix}weight_ih_l0')`);
  const whh0 = get(`${rnnPrefix}weight_hh_l0`);
  if (whh0.shape.length !== 2 || whh0.shape[0] % G !== 0 || whh0.shape[0] !== G * whh0.shape[1] || whh0.shape[1] === 0)
    throw fmt(`tensor '${whh0.name}' has shape [${whh0.shape}]; ${cellInfo.module} needs [${G} * hidden, hidden]` +
      (whh0.shape.length === 2 && whh0.shape[1] > 0 && whh0.shape[0] % whh0.shape[1] === 0 ? ` (its ${whh0.shape[0] / whh0.shape[1]} gates suggest another cell than '${spec.cell}')` : ''));
  const H = whh0.shape[1];
  const wih0 = get(`${rnnPrefix}weight_ih_l0`);
  if (wih0.shape.length !== 2 || wih0.shape[0] !== G * H || wih0.shape[1] === 0)
    throw fmt(`tensor '${wih0.name}' has shape [${wih0.shape}], expected [${G * H}, input size]`);
  const rnnInput = wih0.shape[1];
  const dirs = reverse ? 2 : 1;
  const weights: Record<string, Float32Array> = {};
  const rnnName = layerName(rnnPrefix, 'rnn', new Set());
  const taken = new Set([rnnName]);
  for (let k = 0; k < numLayers; k++)
    for (const suffix of reverse ? ['', '_reverse'] : ['']) {
      const inK = k === 0 ? rnnInput : H * dirs;
      const expect: [string, number[]][] = [
        [`weight_ih_l${k}${suffix}`, [G * H, inK]],
        [`weight_hh_l${k}${suffix}`, [G * H, H]],
        [`bias_ih_l${k}${suffix}`, [G * H]],
        [`bias_hh_l${k}${suffix}`, [G * H]],
      ];
      for (const [p, want] of expect) {
        const full = `${rnnPrefix}${p}`;
        if (!hasBias && p.startsWith('bias')) {
          weights[`${rnnName}.${p}`] = new Float32Array(G * H); // bias=False: zero biases
          continue;
        }
        const t = get(full);
        shapeEq(t, want);
        weights[`${rnnName}.${p}`] = t.data;
      }
    }

  const layers: LayerConfig[] = [];
  let vocabSize: number | undefined;
  let inputSize: number | undefined;
  if (embPrefix !== undefined) {
    const w = get(`${embPrefix}weight`);
    if (w.shape.length !== 2 || w.shape[0] === 0 || w.shape[1] === 0) throw fmt(`tensor '${w.name}' has shape [${w.shape}], expected [vocab, dim]`);
    if (specVocab !== undefined && specVocab !== w.shape[0])
      throw arg(`spec.vocabSize is ${specVocab} but '${w.name}' has ${w.shape[0]} rows`);
    if (w.shape[1] !== rnnInput) throw fmt(`tensor '${w.name}' gives vectors of ${w.shape[1]} but '${wih0.name}' reads ${rnnInput} features`);
    vocabSize = w.shape[0];
    const name = layerName(embPrefix, 'embedding', taken);
    layers.push({ kind: 'embedding', outputDim: w.shape[1], name });
    weights[`${name}.weight`] = w.data;
  } else if (specVocab !== undefined) {
    if (specVocab !== rnnInput) throw arg(`spec.vocabSize is ${specVocab} but '${wih0.name}' reads ${rnnInput} features (one-hot input needs them equal)`);
    vocabSize = specVocab;
  } else {
    if (specInput !== undefined && specInput !== rnnInput) throw arg(`spec.inputSize is ${specInput} but '${wih0.name}' reads ${rnnInput} features`);
    inputSize = rnnInput;
  }
  const rnnLayer: LayerConfig = {
    kind: 'recurrent', cell: cellInfo.cell, units: H, numLayers, bidirectional: reverse, returnSequences, name: rnnName,
  };
  if (cellInfo.cell === 'gru') rnnLayer.resetAfter = true;
  layers.push(rnnLayer);
  if (headPrefix !== undefined) {
    const w = get(`${headPrefix}weight`);
    if (w.shape.length !== 2 || w.shape[0] === 0) throw fmt(`tensor '${w.name}' has shape [${w.shape}], expected [out, in]`);
    if (w.shape[1] !== H * dirs) throw fmt(`tensor '${w.name}' reads ${w.shape[1]} features but the recurrent module outputs ${H * dirs}`);
    const units = w.shape[0];
    const b = tensors.get(`${headPrefix}bias`);
    if (b) shapeEq(b, [units]);
    const name = layerName(headPrefix, 'head', taken);
    layers.push({ kind: 'dense', units, activation: headActivation, name });
    weights[`${name}.weight`] = w.data;
    weights[`${name}.bias`] = b ? b.data : new Float32Array(units);
  }
  const model = new Sequential({ ...(vocabSize !== undefined ? { vocabSize } : { inputSize }), layers });
  try {
    model.build();
    model.setWeights(weights);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
