// Keras / TF.js in: a model saved by TF.js's `model.save('file://dir')` (model.json + weights.bin) or converted from
// Keras by tensorflowjs_converter (a Sequential of Embedding, SimpleRNN, LSTM, GRU, Bidirectional, Dense,
// TimeDistributed(Dense), Dropout, InputLayer) becomes a Sequential model with the same outputs.
//
// Conversions (Keras stores kernels [in, gates * units], rnnkit rows [gates * units, in]):
//   Dense / SimpleRNN / LSTM: transpose; LSTM gates i,f,c,o are rnnkit's i,f,g,o; one bias -> bias_ih, bias_hh = 0.
//   GRU: gates z,r,h -> r,z,n; reset_after true (bias [2, 3u]: input and recurrent) -> rnnkit's reset-after GRU,
//   reset_after false (TF.js, bias [3u]) -> bias_ih and rnnkit's resetAfter: false.
//   LSTM / GRU recurrent_activation: 'sigmoid', or 'hardSigmoid' / 'hard_sigmoid' (TF.js's default, also when the
//   config has none) -> recurrentActivation 'hardSigmoid', TF.js's clip(0.2 x + 0.5, 0, 1). (Keras 3 redefined its
//   hard_sigmoid as clip(x / 6 + 0.5, 0, 1); TF.js, and so rnnkit, compute such a model with 0.2 x + 0.5.)
// Rejected with a clear error: any other recurrent_activation, go_backwards with return_sequences (Keras returns those outputs in reverse time order), return_state, masking,
// merge modes other than concat and sum, quantized or non-float32 weights.
//
// model.json is untrusted input: every weight's dtype, shape and byte range is checked against the weight files
// before anything is allocated, names must be unique, and weight paths may not leave the model's directory.
import * as path from 'node:path';
import { rnnkitError } from '../../errors';
import { readRegularFile } from '../files';
import { Sequential } from '../../model';
import type { LayerConfig, Activation, RecurrentActivation } from '../../layers';

export interface TfjsArtifacts {
  /** The parsed model.json (or its text); `weightSpecs` (as in TF.js ModelArtifacts) may replace `weightsManifest`. */
  modelJson: unknown;
  /** All weight files' bytes, concatenated in manifest order. */
  weightData: ArrayBuffer | Uint8Array;
}

interface WeightSpec { name: string; shape: number[]; offset: number; count: number }

const MAX_JSON_BYTES = 64 * 1024 * 1024;

function fmt(message: string): Error {
  return rnnkitError('ERR_RNNKIT_FORMAT', `fromTfjs: ${message}`);
}
function unsupported(message: string): Error {
  return rnnkitError('ERR_RNNKIT_ARGUMENT', `fromTfjs: ${message}`);
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface Manifest { groups: { paths: string[]; weights: unknown[] }[] }

function readManifest(json: Record<string, unknown>): Manifest {
  if (json.weightsManifest === undefined && Array.isArray(json.weightSpecs)) return { groups: [{ paths: [], weights: json.weightSpecs }] };
  const m = json.weightsManifest;
  if (!Array.isArray(m)) throw fmt('model.json has no weightsManifest array');
  return {
    groups: m.map((g, i) => {
      if (!isObject(g) || !Array.isArray(g.weights)) throw fmt(`weightsManifest[${i}] has no weights array`);
      const paths = g.paths ?? [];
      if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) throw fmt(`weightsManifest[${i}].paths must be an array of strings`);
      return { paths: paths as string[], weights: g.weights };
    }),
  };
}

/** Check every weight description against the bytes available; nothing is allocated here. */
function layoutWeights(manifest: Manifest, groupBytes: number[] | undefined, totalBytes: number): Map<string, WeightSpec> {
  const out = new Map<string, WeightSpec>();
  let offset = 0;
  manifest.groups.forEach((g, gi) => {
    const start = offset;
    for (const [wi, w] of g.weights.entries()) {
      if (!isObject(w) || typeof w.name !== 'string' || w.name === '') throw fmt(`weightsManifest[${gi}].weights[${wi}] has no name`);
      const name = w.name;
      if (out.has(name)) throw fmt(`weight '${name}' is listed twice`);
      if (w.dtype !== undefined && w.dtype !== 'float32') throw fmt(`weight '${name}' has dtype ${JSON.stringify(w.dtype)}; only float32 is supported`);
      if (w.quantization !== undefined) throw fmt(`weight '${name}' is quantized; only float32 weights are supported`);
      const shape = w.shape;
      if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw fmt(`weight '${name}' has an invalid shape ${JSON.stringify(shape)}`);
      let count = 1;
      for (const d of shape as number[]) {
        count *= d;
        if (count * 4 > totalBytes - offset)
          throw fmt(`weight '${name}' of shape [${shape}] needs more bytes than the weight data holds (${totalBytes - offset} left of ${totalBytes})`);
      }
      out.set(name, { name, shape: [...(shape as number[])], offset, count });
      offset += count * 4;
    }
    if (groupBytes && offset - start !== groupBytes[gi])
      throw fmt(`weightsManifest[${gi}] describes ${offset - start} bytes but its files hold ${groupBytes[gi]}`);
  });
  if (offset !== totalBytes) throw fmt(`the manifest describes ${offset} bytes of weights but the weight data has ${totalBytes}`);
  return out;
}

type Config = Record<string, unknown>;
interface LayerJson { className: string; config: Config }

function layerJson(v: unknown, where: string): LayerJson {
  if (!isObject(v) || typeof v.class_name !== 'string' || !isObject(v.config)) throw fmt(`${where} is not a layer ({ class_name, config })`);
  return { className: v.class_name, config: v.config };
}

function topologyLayers(json: Record<string, unknown>): LayerJson[] {
  let topo = json.modelTopology;
  if (isObject(topo) && isObject(topo.model_config)) topo = topo.model_config;
  if (!isObject(topo)) throw fmt('model.json has no modelTopology object');
  if (topo.class_name !== 'Sequential')
    throw unsupported(`only Sequential models are supported, this one is ${JSON.stringify(topo.class_name)}`);
  const cfg = topo.config;
  const list = Array.isArray(cfg) ? cfg : isObject(cfg) ? cfg.layers : undefined;
  if (!Array.isArray(list)) throw fmt('modelTopology.config has no layers array');
  if (list.length > 10000) throw fmt('modelTopology lists too many layers');
  return list.map((l, i) => layerJson(l, `modelTopology layer ${i}`));
}

function layerLabel(l: LayerJson): string {
  return `layer '${typeof l.config.name === 'string' ? l.config.name : '?'}' (${l.className})`;
}

function posInt(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) <= 0) throw fmt(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

class Converter {
  readonly layers: LayerConfig[] = [];
  readonly weights: Record<string, Float32Array> = {};
  readonly #taken = new Set<string>();
  readonly #used = new Set<string>();
  vocabSize = 0;
  inputSize = 0;
  /** Features per step flowing into the next layer (0: unknown yet). */
  #features = 0;
  #sequence = true;

  constructor(readonly specs: Map<string, WeightSpec>, readonly data: DataView) {}

  #name(raw: unknown, fallback: string): string {
    let name = (typeof raw === 'string' ? raw : fallback).replace(/[^A-Za-z0-9_-]/g, '_') || fallback;
    while (this.#taken.has(name)) name += '_';
    this.#taken.add(name);
    return name;
  }

  /** The weight of a Keras layer named `<scope>/.../<leaf>`, optionally within a sub-scope (forward_..., backward_...). */
  #find(l: LayerJson, scope: string, leaf: string, sub?: 'forward' | 'backward'): WeightSpec | null {
    const hits = [...this.specs.values()].filter((w) => {
      if (this.#used.has(w.name) || !w.name.startsWith(`${scope}/`)) return false;
      const parts = w.name.split('/');
      if (parts[parts.length - 1].replace(/:\d+$/, '') !== leaf) return false;
      return sub === undefined || parts.slice(1, -1).some((p) => p.startsWith(`${sub}_`));
    });
    if (hits.length > 1) throw fmt(`${layerLabel(l)} has several weights matching '${leaf}': ${hits.map((h) => h.name).join(', ')}`);
    return hits[0] ?? null;
  }

  #weight(l: LayerJson, scope: string, leaf: string, shape: number[], sub?: 'forward' | 'backward'): Float32Array {
    const w = this.#find(l, scope, leaf, sub);
    if (!w) throw fmt(`${layerLabel(l)} has no weight '${scope}/${sub ? `${sub}_.../` : ''}${leaf}' in the manifest`);
    return this.#read(w, shape);
  }

  #read(w: WeightSpec, shape: number[]): Float32Array {
    this.#used.add(w.name);
    if ( (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])))
      throw fmt(`weight '${w.name}' has shape [${w.shape}], expected [${shape}]`);
    const out = new Float32Array(w.count);
    for (let i = 0; i < w.count; i++) out[i] = this.data.getFloat32(w.offset + 4 * i, true);
    return out;
  }

  #need(l: LayerJson, v: unknown, what: string): unknown {
    if (v === undefined) throw fmt(`${layerLabel(l)} has no ${what}`);
    return v;
  }

  /** Shape of the model's input, from batch_input_shape / batch_shape of the first layer or an InputLayer. */
  #input(cfg: Config): void {
    const s = cfg.batch_input_shape ?? cfg.batch_shape;
    if (Array.isArray(s) && s.length === 3 && Number.isSafeInteger(s[2]) && s[2] > 0 && !this.#features) this.#features = s[2];
  }

  add(l: LayerJson, first: boolean): void {
    const c = l.config;
    if (first) this.#input(c);
    switch (l.className) {
      case 'InputLayer':
        return;
      case 'Dropout': {
        const rate = typeof c.rate === 'number' && c.rate >= 0 && c.rate < 1 ? c.rate : 0;
        if (rate > 0) this.layers.push({ kind: 'dropout', rate, name: this.#name(c.name, 'dropout') });
        return;
      }
      case 'Embedding':
        return this.#embedding(l, first);
      case 'Dense':
        return this.#dense(l, String(c.name ?? 'dense'), c);
      case 'TimeDistributed': {
        const inner = layerJson(c.layer, `${layerLabel(l)}'s layer`);
        if (inner.className !== 'Dense') throw unsupported(`${layerLabel(l)} wraps a ${inner.className}; only Dense is supported`);
        if (!this.#sequence) throw unsupported(`${layerLabel(l)} needs a sequence input`);
        return this.#dense(inner, String(c.name ?? 'time_distributed'), inner.config, c.name);
      }
      case 'SimpleRNN': case 'LSTM': case 'GRU':
        return this.#recurrent(l, l, false, 'concat');
      case 'Bidirectional': {
        const inner = layerJson(c.layer, `${layerLabel(l)}'s layer`);
        const merge = c.merge_mode ?? 'concat';
        if (merge !== 'concat' && merge !== 'sum') throw unsupported(`${layerLabel(l)}: merge_mode ${JSON.stringify(merge)} is not supported (concat, sum)`);
        if (!['SimpleRNN', 'LSTM', 'GRU'].includes(inner.className)) throw unsupported(`${layerLabel(l)} wraps a ${inner.className}`);
        return this.#recurrent(inner, l, true, merge);
      }
      default:
        throw unsupported(`${layerLabel(l)} is not supported (Embedding, SimpleRNN, LSTM, GRU, Bidirectional, Dense, TimeDistributed(Dense), Dropout, InputLayer)`);
    }
  }

  #embedding(l: LayerJson, first: boolean): void {
    const c = l.config;
    if (!first) throw unsupported(`${layerLabel(l)} must be the first layer`);
    if (c.mask_zero === true) throw unsupported(`${layerLabel(l)} uses mask_zero (masking is not supported)`);
    const V = posInt(c.input_dim, `${layerLabel(l)} input_dim`);
    const D = posInt(c.output_dim, `${layerLabel(l)} output_dim`);
    const scope = String(c.name);
    const name = this.#name(c.name, 'embedding');
    this.weights[`${name}.weight`] = this.#weight(l, scope, 'embeddings', [V, D]);
    this.layers.push({ kind: 'embedding', outputDim: D, name });
    this.vocabSize = V;
    this.#features = D;
  }

  #dense(l: LayerJson, scope: string, c: Config, outerName?: unknown): void {
    const units = posInt(c.units, `${layerLabel(l)} units`);
    const act = (c.activation ?? 'linear') as string;
    if (!['linear', 'softmax', 'sigmoid', 'tanh', 'relu'].includes(act)) throw unsupported(`${layerLabel(l)}: activation ${JSON.stringify(act)} is not supported`);
    const spec = this.#find(l, scope, 'kernel');
    if (!spec) throw fmt(`${layerLabel(l)} has no weight '${scope}/kernel' in the manifest`);
    if (spec.shape.length !== 2 || spec.shape[1] !== units || spec.shape[0] === 0)
      throw fmt(`weight '${spec.name}' has shape [${spec.shape}], expected [input, ${units}]`);
    const I = spec.shape[0];
    const kernel = this.#read(spec, [I, units]);
    if (this.#features && I !== this.#features) throw fmt(`weight '${spec.name}' reads ${I} features, the layer before gives ${this.#features}`);
    if (!this.#features) { this.#features = I; this.inputSize = I; }
    const bias = c.use_bias === false ? new Float32Array(units) : this.#weight(l, scope, 'bias', [units]);
    const name = this.#name(outerName ?? c.name, 'dense');
    this.weights[`${name}.weight`] = transpose(kernel, I, units);
    this.weights[`${name}.bias`] = bias;
    this.layers.push({ kind: 'dense', units, activation: act as Activation, name });
    this.#features = units;
  }

  #recurrent(l: LayerJson, outer: LayerJson, bidirectional: boolean, merge: 'concat' | 'sum'): void {
    const c = l.config;
    const label = layerLabel(outer);
    if (!this.#sequence) throw unsupported(`${label} needs a sequence input (the layer before has return_sequences false)`);
    const units = posInt(c.units, `${label} units`);
    const cls = l.className;
    const act = c.activation ?? 'tanh';
    let recurrentActivation: RecurrentActivation | undefined;
    if (cls === 'SimpleRNN') {
      if (act !== 'tanh' && act !== 'relu') throw unsupported(`${label}: activation ${JSON.stringify(act)} is not supported (tanh, relu)`);
    } else {
      if (act !== 'tanh') throw unsupported(`${label}: activation ${JSON.stringify(act)} is not supported (tanh)`);
      const ra = c.recurrent_activation ?? 'hardSigmoid';
      if (ra === 'hardSigmoid' || ra === 'hard_sigmoid') recurrentActivation = 'hardSigmoid';
      else if (ra !== 'sigmoid')
        throw unsupported(`${label}: recurrent_activation ${JSON.stringify(ra)} is not supported (sigmoid, hardSigmoid)`);
    }
    if (c.return_state === true) throw unsupported(`${label} uses return_state`);
    const returnSequences = c.return_sequences === true;
    const goBackwards = c.go_backwards === true;
    if (goBackwards && bidirectional) throw unsupported(`${label}: go_backwards inside Bidirectional is not supported`);
    if (goBackwards && returnSequences)
      throw unsupported(`${label}: go_backwards with return_sequences (Keras returns the outputs in reverse time order, rnnkit keeps them aligned with the inputs)`);
    const I = this.#features;
    if (!I) throw fmt(`${label}: the input size is unknown (no batch_input_shape)`);
    const G = cls === 'LSTM' ? 4 : cls === 'GRU' ? 3 : 1;
    const useBias = c.use_bias !== false;
    let resetAfter = false;
    if (cls === 'GRU') {
      if (typeof c.reset_after === 'boolean') resetAfter = c.reset_after;
      else if (useBias) {
        // Not in the config: the bias shape says which GRU this is.
        const b = [...this.specs.values()].find((w) => w.name.startsWith(`${String(outer.config.name)}/`) && /(^|\/)bias(:\d+)?$/.test(w.name));
        resetAfter = b?.shape.length === 2;
      }
    }
    const scope = String(outer.config.name);
    const name = this.#name(outer.config.name, cls === 'LSTM' ? 'lstm' : cls === 'GRU' ? 'gru' : 'simple_rnn');
    for (const dir of bidirectional ? (['forward', 'backward'] as const) : [undefined]) {
      const suffix = dir === 'backward' ? '_reverse' : '';
      const k = this.#weight(outer, scope, 'kernel', [I, G * units], dir);
      const rk = this.#weight(outer, scope, 'recurrent_kernel', [units, G * units], dir);
      let bIh: Float32Array = new Float32Array(G * units);
      let bHh: Float32Array = new Float32Array(G * units);
      if (useBias) {
        const b = this.#weight(outer, scope, 'bias', resetAfter ? [2, G * units] : [G * units], dir);
        if (resetAfter) {
          bIh = b.slice(0, G * units);
          bHh = b.slice(G * units);
        } else bIh = b;
      }
      const reorder = cls === 'GRU' ? gruOrder(units) : null;
      this.weights[`${name}.weight_ih_l0${suffix}`] = rows(transpose(k, I, G * units), I, reorder);
      this.weights[`${name}.weight_hh_l0${suffix}`] = rows(transpose(rk, units, G * units), units, reorder);
      this.weights[`${name}.bias_ih_l0${suffix}`] = rows(bIh, 1, reorder);
      this.weights[`${name}.bias_hh_l0${suffix}`] = rows(bHh, 1, reorder);
    }
    const cell = cls === 'LSTM' ? 'lstm' : cls === 'GRU' ? 'gru' : act === 'relu' ? 'rnn_relu' : 'rnn_tanh';
    const layer: LayerConfig = {
      kind: 'recurrent', cell, units, returnSequences, name,
      bidirectional: bidirectional ? (merge === 'sum' ? { mergeMode: 'sum' } : true) : false,
      ...(goBackwards ? { goBackwards } : {}),
    };
    if (cls === 'GRU') layer.resetAfter = resetAfter;
    if (recurrentActivation) layer.recurrentActivation = recurrentActivation;
    this.layers.push(layer);
    this.#features = bidirectional && merge === 'concat' ? 2 * units : units;
    this.#sequence = returnSequences;
  }

  finish(): void {
    const unused = [...this.specs.keys()].filter((n) => !this.#used.has(n));
    if (unused.length) throw fmt(`weights not used by any layer: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}`);
    if (!this.vocabSize && !this.inputSize) {
      // inputSize came from batch_input_shape
      const first = this.layers.find((x) => x.kind !== 'dropout');
      if (first?.kind === 'recurrent') this.inputSize = this.weights[`${first.name}.weight_ih_l0`].length / ((first.cell === 'lstm' ? 4 : first.cell === 'gru' ? 3 : 1) * first.units);
    }
  }
}

/** The [gates*units] row order Keras z,r,h -> rnnkit r,z,n (null: same order). */
function gruOrder(u: number): number[] {
  return [...Array(u).keys()].map((i) => u + i).concat([...Array(u).keys()], [...Array(u).keys()].map((i) => 2 * u + i));
}

/** Keras [r, c] -> [c, r]. */
function transpose(a: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
  return out;
}

/** Rows of width w taken in the given order (null: unchanged). */
function rows(a: Float32Array, w: number, order: number[] | null): Float32Array {
  if (!order) return a;
  const out = new Float32Array(a.length);
  order.forEach((src, dst) => out.set(a.subarray(src * w, (src + 1) * w), dst * w));
  return out;
}

function parseJson(v: unknown): Record<string, unknown> {
  let json = v;
  if (typeof v === 'string' || v instanceof Uint8Array) {
    const text = typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
    if (text.length > MAX_JSON_BYTES) throw fmt('model.json is too large');
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw fmt(`model.json is not valid JSON (${(e as Error).message})`);
    }
  }
  if (!isObject(json)) throw fmt('model.json is not a JSON object');
  return json;
}

function build(json: Record<string, unknown>, data: Uint8Array, groupBytes?: number[]): Sequential {
  const layers = topologyLayers(json);
  const specs = layoutWeights(readManifest(json), groupBytes, data.byteLength);
  const conv = new Converter(specs, new DataView(data.buffer, data.byteOffset, data.byteLength));
  layers.forEach((l, i) => conv.add(l, i === 0 || (i === 1 && layers[0].className === 'InputLayer')));
  conv.finish();
  if (!conv.layers.some((l) => l.kind !== 'dropout')) throw unsupported('the model has no layers rnnkit can run');
  const model = new Sequential({ ...(conv.vocabSize ? { vocabSize: conv.vocabSize } : { inputSize: conv.inputSize }), layers: conv.layers });
  try {
    model.build();
    model.setWeights(conv.weights);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Build a model from TF.js artifacts in memory (model.json's content and the weight bytes). */
export function fromTfjsArtifacts(artifacts: TfjsArtifacts): Sequential {
  if (!isObject(artifacts)) throw rnnkitError('ERR_RNNKIT_TYPE', 'fromTfjs: expected a model.json path or { modelJson, weightData }');
  const wd = artifacts.weightData;
  const data = wd instanceof Uint8Array ? wd : wd instanceof ArrayBuffer ? new Uint8Array(wd) : null;
  if (!data) throw rnnkitError('ERR_RNNKIT_TYPE', 'fromTfjs: weightData must be an ArrayBuffer or Uint8Array');
  return build(parseJson(artifacts.modelJson), data);
}

/**
 * Load a Keras / TF.js layers model: the path of its model.json (weight files beside it, as the manifest names
 * them) or `{ modelJson, weightData }`. Input is batch-first: token ids `[batch, time]` after an Embedding,
 * features `[batch, time, features]` otherwise.
 */
export async function fromTfjs(source: string | TfjsArtifacts): Promise<Sequential> {
  if (typeof source !== 'string') return fromTfjsArtifacts(source);
  const json = parseJson((await readRegularFile(source, { what: 'model.json', maxBytes: MAX_JSON_BYTES })).toString('utf8'));
  const dir = path.dirname(path.resolve(source));
  const manifest = readManifest(json);
  const files: string[][] = manifest.groups.map((g, gi) =>
    g.paths.map((p) => {
      const full = path.resolve(dir, p);
      if (path.isAbsolute(p) || p.split(/[\\/]/).includes('..') || path.relative(dir, full).startsWith('..'))
        throw fmt(`weightsManifest[${gi}] names the file ${JSON.stringify(p)} outside the model's directory`);
      return full;
    }));
  // Each weight file is read whole at its measured size (regular files only), so a manifest cannot make us read or
  // allocate more than its files hold.
  const groupBytes: number[] = [];
  const parts: Buffer[] = [];
  for (const g of files) {
    let n = 0;
    for (const f of g) {
      const b = await readRegularFile(f, { what: 'weight file' });
      parts.push(b);
      n += b.byteLength;
    }
    groupBytes.push(n);
  }
  const data = Buffer.concat(parts);
  return build(json, data, groupBytes);
}
