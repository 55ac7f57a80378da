// Runs conformance cases (recurrent layers computed by a reference framework in float64; format in
// docs/conformance.md) against rnnkit. Every size, depth and option is read from the case, so the runner works on
// cases it has never seen; a case it cannot interpret fails with the reason.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RecurrentNetwork, type RecurrentSpec, type CellType, type OptimizerOptions } from '../recurrent';
import type { DeviceName } from '../native';
import { Seq2Seq, type Seq2SeqBatch, type AttentionKind } from '../seq2seq';

interface CaseTensor {
  shape: number[];
  data: number[];
}

type CaseFile = Record<string, unknown> & { kind?: string; name?: string };

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface CaseResult {
  name: string;
  file: string;
  passed: boolean;
  /** What was compared (tensors and scalars), or why the case could not run. */
  detail: string;
  checked: number;
}

const SEQUENCE_TOLERANCE: Tolerance = { atol: 1e-5, rtol: 1e-4 };
const TRAIN_TOLERANCE: Tolerance = { atol: 1e-4, rtol: 1e-3 };
const CELLS: readonly CellType[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru'];

class CaseError extends Error {}

function isTensor(v: unknown): v is CaseTensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as CaseTensor).shape) &&
    Array.isArray((v as CaseTensor).data);
}

function field<T>(c: CaseFile, key: string, check: (v: unknown) => boolean, what: string): T {
  const v = c[key];
  if (!check(v)) throw new CaseError(`field '${key}' must be ${what}`);
  return v as T;
}

const isInt = (v: unknown): boolean => Number.isInteger(v);
const isBool = (v: unknown): boolean => typeof v === 'boolean';

function tensorField(c: CaseFile, key: string): CaseTensor {
  return field<CaseTensor>(c, key, isTensor, 'a tensor {shape, data}');
}

function optionalTensor(c: CaseFile, key: string): CaseTensor | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (!isTensor(v)) throw new CaseError(`field '${key}' must be a tensor {shape, data}`);
  return v;
}

function f32(t: CaseTensor): Float32Array {
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) throw new CaseError(`a tensor of shape [${t.shape}] has ${t.data.length} values`);
  return Float32Array.from(t.data);
}

/** Compares got against want elementwise; returns a description of the worst offender or null. */
export function compare(name: string, got: ArrayLike<number> | undefined, want: ArrayLike<number>,
  tol: Tolerance): string | null {
  if (!got) return `${name}: missing from rnnkit's result`;
  if (got.length !== want.length) return `${name}: ${got.length} values, expected ${want.length}`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const bound = tol.atol + tol.rtol * Math.abs(want[i]);
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= bound)) {
      const excess = Number.isNaN(err) ? Infinity : err / bound;
      if (excess > worstExcess || worst < 0) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (worst < 0) return null;
  return `${name}[${worst}]: got ${got[worst]}, want ${want[worst]} (|diff| ${Math.abs(got[worst] - want[worst]).toExponential(2)})`;
}

class Checker {
  failures: string[] = [];
  checked = 0;
  constructor(private readonly tol: Tolerance) {}
  tensor(name: string, got: ArrayLike<number> | undefined, want: CaseTensor | undefined): void {
    if (!want) return;
    this.checked++;
    const problem = compare(name, got, want.data, this.tol);
    if (problem) this.failures.push(problem);
  }
  scalar(name: string, got: number, want: unknown): void {
    if (typeof want !== 'number') throw new CaseError(`field '${name}' must be a number`);
    this.checked++;
    const problem = compare(name, [got], [want], this.tol);
    if (problem) this.failures.push(problem);
  }
}

function cellOf(c: CaseFile): CellType {
  const cell = c.cell;
  if (typeof cell !== 'string' || !CELLS.includes(cell as CellType))
    throw new CaseError(`unknown cell '${String(cell)}' (known: ${CELLS.join(', ')})`);
  return cell as CellType;
}

/**
 * The device the cases run on: RNNKIT_CONFORMANCE_DEVICE ('cpu', 'cuda' or 'cuda:N'), else the CPU. Read at each
 * case, so a test may set it around a run.
 */
export function conformanceDevice(): DeviceName | undefined {
  const device = process.env.RNNKIT_CONFORMANCE_DEVICE;
  return device ? (device as DeviceName) : undefined;
}

function commonSpec(c: CaseFile): RecurrentSpec {
  const device = conformanceDevice();
  const spec: RecurrentSpec = {
    cell: cellOf(c),
    hiddenSize: field<number>(c, 'hidden_size', isInt, 'an integer'),
    numLayers: c.num_layers === undefined ? 1 : field<number>(c, 'num_layers', isInt, 'an integer'),
    bidirectional: c.bidirectional === undefined ? false : field<boolean>(c, 'bidirectional', isBool, 'a boolean'),
    seed: 0,
  };
  if (device) spec.device = device;
  if (c.reset_after !== undefined) spec.resetAfter = field<boolean>(c, 'reset_after', isBool, 'a boolean');
  return spec;
}

function params(c: CaseFile): Record<string, CaseTensor> {
  const p = c.params;
  if (typeof p !== 'object' || p === null) throw new CaseError(`field 'params' must be an object of tensors`);
  for (const [name, t] of Object.entries(p)) if (!isTensor(t)) throw new CaseError(`params.${name} is not a tensor`);
  return p as Record<string, CaseTensor>;
}

function loadParams(net: RecurrentNetwork, p: Record<string, CaseTensor>): void {
  const expected = new Set(net.paramNames());
  for (const [name, t] of Object.entries(p)) {
    const shape = net.paramShape(name);
    if (shape.join(',') !== t.shape.join(','))
      throw new CaseError(`params.${name} has shape [${t.shape}], rnnkit's is [${shape}]`);
    net.setParam(name, f32(t));
    expected.delete(name);
  }
  if (expected.size) throw new CaseError(`the case gives no value for ${[...expected].join(', ')}`);
}

function gradsObject(c: CaseFile, key: string): Record<string, CaseTensor> {
  const g = c[key];
  if (g === undefined) return {};
  if (typeof g !== 'object' || g === null) throw new CaseError(`field '${key}' must be an object of tensors`);
  return g as Record<string, CaseTensor>;
}

function lengthsOf(c: CaseFile, batch: number): Int32Array | undefined {
  const l = c.lengths;
  if (l === undefined || l === null) return undefined;
  if (!Array.isArray(l) || l.length !== batch || !l.every(isInt))
    throw new CaseError(`field 'lengths' must be null or ${batch} integers`);
  return Int32Array.from(l as number[]);
}

function runSequence(c: CaseFile, check: Checker): void {
  const x = tensorField(c, 'x');
  if (x.shape.length !== 3) throw new CaseError(`x must be [T, B, I], got [${x.shape}]`);
  const spec = { ...commonSpec(c), inputSize: c.input_size === undefined ? x.shape[2] : field<number>(c, 'input_size', isInt, 'an integer') };
  const net = new RecurrentNetwork(spec);
  try {
    const p = params(c);
    loadParams(net, p);
    const h0 = optionalTensor(c, 'h0');
    const c0 = optionalTensor(c, 'c0');
    const out = net.forwardSync({
      x: { data: f32(x), shape: x.shape },
      h0: h0 && f32(h0),
      c0: c0 && f32(c0),
      lengths: lengthsOf(c, x.shape[1]),
    }, { train: true });
    check.tensor('y', out.output.data, optionalTensor(c, 'y'));
    check.tensor('hn', out.hn, optionalTensor(c, 'hn'));
    check.tensor('cn', out.cn, optionalTensor(c, 'cn'));
    const dy = optionalTensor(c, 'dy');
    const dhn = optionalTensor(c, 'dhn');
    const dcn = optionalTensor(c, 'dcn');
    const grads = gradsObject(c, 'grads');
    if (Object.keys(grads).length === 0) return;
    const g = net.backwardSync({ dOutput: dy && f32(dy), dhn: dhn && f32(dhn), dcn: dcn && f32(dcn) });
    for (const [name, want] of Object.entries(grads)) {
      if (name === 'x') check.tensor('grad x', g.dx, want);
      else if (name === 'h0') check.tensor('grad h0', g.dh0, want);
      else if (name === 'c0') check.tensor('grad c0', g.dc0, want);
      else if (name in p) check.tensor(`grad ${name}`, net.getGrad(name).data, want);
      else throw new CaseError(`grads.${name} names nothing rnnkit has`);
    }
  } finally {
    net.dispose();
  }
}

function symbolNetwork(c: CaseFile): { net: RecurrentNetwork; p: Record<string, CaseTensor>; tokens: Int32Array;
  targets: Int32Array; shape: number[] } {
  const p = params(c);
  const head = p['head.weight'];
  if (!head) throw new CaseError(`an ${String(c.kind)} case needs params['head.weight']`);
  const T = field<number>(c, 'seq_len', isInt, 'an integer');
  const B = field<number>(c, 'batch', isInt, 'an integer');
  const tokens = field<number[]>(c, 'tokens', (v) => Array.isArray(v) && v.every(isInt), 'a list of integers');
  const targets = field<number[]>(c, 'targets', (v) => Array.isArray(v) && v.every(isInt), 'a list of integers');
  const net = new RecurrentNetwork({
    ...commonSpec(c),
    vocabSize: field<number>(c, 'vocab_size', isInt, 'an integer'),
    headSize: head.shape[0],
  });
  try {
    loadParams(net, p);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return { net, p, tokens: Int32Array.from(tokens), targets: Int32Array.from(targets), shape: [T, B] };
}

function runLanguageModel(c: CaseFile, check: Checker): void {
  const { net, p, tokens, targets, shape } = symbolNetwork(c);
  try {
    net.forwardSync({ tokens: { data: tokens, shape } }, { train: true });
    const { loss } = net.lossSync({ classes: targets });
    check.scalar('loss', loss, c.loss);
    for (const [name, want] of Object.entries(gradsObject(c, 'grads'))) {
      if (!(name in p)) throw new CaseError(`grads.${name} names nothing rnnkit has`);
      check.tensor(`grad ${name}`, net.getGrad(name).data, want);
    }
  } finally {
    net.dispose();
  }
}

function optimizerOf(train: Record<string, unknown>): OptimizerOptions {
  const type = train.optimizer;
  const num = (key: string): number | undefined => {
    const v = train[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw new CaseError(`train.${key} must be a number`);
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    const v = train[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new CaseError(`train.${key} must be a boolean`);
    return v;
  };
  if (type !== 'sgd' && type !== 'adam' && type !== 'adamw' && type !== 'rmsprop')
    throw new CaseError(`unknown optimizer '${String(type)}'`);
  const betas = train.betas;
  if (betas !== undefined && (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')))
    throw new CaseError('train.betas must be two numbers');
  const config: OptimizerOptions = {
    type,
    lr: num('lr'),
    momentum: num('momentum'),
    dampening: num('dampening'),
    nesterov: bool('nesterov'),
    weightDecay: num('weight_decay'),
    betas: betas as [number, number] | undefined,
    eps: num('eps'),
    amsgrad: bool('amsgrad'),
    alpha: num('alpha'),
    centered: bool('centered'),
    maximize: bool('maximize'),
  };
  for (const key of Object.keys(config) as (keyof OptimizerOptions)[]) if (config[key] === undefined) delete config[key];
  return config;
}

/** A training case's schedule: `train` (optimizer fields, `steps`, `clip_norm`) and the expected `losses`. */
interface TrainSchedule {
  options: Record<string, unknown>;
  steps: number;
  clipNorm: number;
  losses?: unknown[];
}

function trainSchedule(c: CaseFile): TrainSchedule {
  const train = c.train;
  if (typeof train !== 'object' || train === null) throw new CaseError(`field 'train' must be an object`);
  const options = train as Record<string, unknown>;
  const steps = options.steps;
  if (!Number.isInteger(steps) || (steps as number) < 0) throw new CaseError('train.steps must be an integer');
  const clip = options.clip_norm;
  if (clip !== undefined && clip !== null && typeof clip !== 'number') throw new CaseError('train.clip_norm must be a number');
  const losses = c.losses;
  if (losses !== undefined && !Array.isArray(losses)) throw new CaseError(`field 'losses' must be a list`);
  return { options, steps: steps as number, clipNorm: typeof clip === 'number' ? clip : 0, losses };
}

/** Runs the schedule's steps, comparing each step's loss (taken before its update), then every `params_after`. */
function checkTraining(c: CaseFile, check: Checker, schedule: TrainSchedule, p: Record<string, CaseTensor>,
  trainStep: () => number, paramData: (name: string) => Float32Array): void {
  const { steps, losses } = schedule;
  for (let i = 0; i < steps; i++) {
    const loss = trainStep();
    if (losses && i < losses.length) check.scalar(`losses[${i}]`, loss, losses[i]);
  }
  for (const [name, want] of Object.entries(gradsObject(c, 'params_after'))) {
    if (!(name in p)) throw new CaseError(`params_after.${name} names nothing rnnkit has`);
    check.tensor(`${name} after training`, paramData(name), want);
  }
}

function runTrain(c: CaseFile, check: Checker): void {
  const schedule = trainSchedule(c);
  const { net, p, tokens, targets, shape } = symbolNetwork(c);
  try {
    net.setOptimizer(optimizerOf(schedule.options));
    checkTraining(c, check, schedule, p,
      () => net.trainStepSync({ tokens: { data: tokens, shape } }, { classes: targets }, { clipNorm: schedule.clipNorm }).loss,
      (name) => net.getParam(name).data);
  } finally {
    net.dispose();
  }
}

// ---- seq2seq, seq2seq_train: an encoder-decoder (token tensors are batch-first nested arrays) ----

function idRows(c: CaseFile, key: string, rows: number, steps: number, allowNegative: boolean): number[][] {
  const v = c[key];
  const ok = Array.isArray(v) && v.length === rows && v.every((r) => Array.isArray(r) && r.length === steps &&
    r.every((x) => Number.isInteger(x) && (allowNegative || x >= 0)));
  if (!ok) throw new CaseError(`field '${key}' must be ${rows} rows of ${steps} token ids`);
  return v as number[][];
}

function seq2seqModel(c: CaseFile): { model: Seq2Seq; p: Record<string, CaseTensor>; batch: Seq2SeqBatch; B: number } {
  const int = (key: string): number => field<number>(c, key, isInt, 'an integer');
  const cell = cellOf(c);
  const attention = c.attention === undefined ? 'none' : c.attention;
  if (attention !== 'none' && attention !== 'bahdanau' && attention !== 'luong')
    throw new CaseError(`unknown attention '${String(attention)}' (known: none, bahdanau, luong)`);
  const B = int('batch');
  const S = int('src_len');
  const T = int('tgt_len');
  const src = idRows(c, 'src', B, S, false);
  const tgtIn = idRows(c, 'tgt_in', B, T, false);
  const lengths = c.src_lengths;
  if (lengths !== undefined && lengths !== null && (!Array.isArray(lengths) || lengths.length !== B || !lengths.every(isInt)))
    throw new CaseError(`field 'src_lengths' must be null or ${B} integers`);
  const batch: Seq2SeqBatch = {
    source: { data: Int32Array.from(src.flat()), shape: [B, S] },
    decoderInput: { data: Int32Array.from(tgtIn.flat()), shape: [B, T] },
  };
  if (Array.isArray(lengths)) batch.sourceLengths = Int32Array.from(lengths as number[]);
  if (c.targets !== undefined) batch.targets = Int32Array.from(idRows(c, 'targets', B, T, true).flat());
  const device = conformanceDevice();
  const model = new Seq2Seq({
    cell,
    attention: attention as AttentionKind,
    srcVocab: int('src_vocab'),
    tgtVocab: int('tgt_vocab'),
    embedSize: int('embed_size'),
    hiddenSize: int('hidden_size'),
    numLayers: c.num_layers === undefined ? 1 : int('num_layers'),
    seed: 0,
    ...(device ? { device } : {}),
  });
  const p = params(c);
  try {
    const expected = new Set(model.paramNames());
    for (const [name, t] of Object.entries(p)) {
      if (!expected.has(name)) throw new CaseError(`params.${name} names nothing rnnkit's encoder-decoder has`);
      const shape = model.paramShape(name);
      if (shape.join(',') !== t.shape.join(','))
        throw new CaseError(`params.${name} has shape [${t.shape}], rnnkit's is [${shape}]`);
      model.setParam(name, f32(t));
      expected.delete(name);
    }
    if (expected.size) throw new CaseError(`the case gives no value for ${[...expected].join(', ')}`);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, p, batch, B };
}

function runSeq2Seq(c: CaseFile, check: Checker): void {
  const { model, p, batch, B } = seq2seqModel(c);
  try {
    const out = model.forwardSync(batch, { train: true });
    check.tensor('logits', out.logits.data, optionalTensor(c, 'logits'));
    const wantAttention = optionalTensor(c, 'attention_weights');
    if (wantAttention) check.tensor('attention_weights', out.attention?.data, wantAttention);
    if (c.loss !== undefined) {
      if (!batch.targets) throw new CaseError(`a case with a 'loss' needs 'targets'`);
      check.scalar('loss', model.lossSync(), c.loss);
      for (const [name, want] of Object.entries(gradsObject(c, 'grads'))) {
        if (!(name in p)) throw new CaseError(`grads.${name} names nothing rnnkit has`);
        check.tensor(`grad ${name}`, model.getGrad(name).data, want);
      }
    }
    const greedy = c.greedy;
    if (greedy !== undefined && greedy !== null) {
      if (typeof greedy !== 'object') throw new CaseError(`field 'greedy' must be an object`);
      const g = greedy as Record<string, unknown>;
      if (!isInt(g.sos) || !isInt(g.max_len) || (g.eos !== undefined && g.eos !== null && !isInt(g.eos)))
        throw new CaseError('greedy.sos, greedy.max_len (and greedy.eos) must be integers');
      const maxLen = g.max_len as number;
      const want = g.tokens;
      if (!Array.isArray(want) || want.length !== B || !want.every((r) => Array.isArray(r) && r.length === maxLen && r.every(isInt)))
        throw new CaseError(`greedy.tokens must be ${B} rows of ${maxLen} integers`);
      const r = model.decodeSync(batch.source, {
        startToken: g.sos as number,
        ...(isInt(g.eos) ? { endToken: g.eos as number } : {}),
        maxLength: maxLen,
        ...(batch.sourceLengths ? { sourceLengths: batch.sourceLengths } : {}),
      });
      check.checked++;
      const flat = (want as number[][]).flat();
      const bad = flat.findIndex((v, i) => r.tokens[i] !== v);
      if (bad >= 0)
        check.failures.push(`greedy.tokens row ${Math.floor(bad / maxLen)}: got [${Array.from(r.tokens.subarray(Math.floor(bad / maxLen) * maxLen, (Math.floor(bad / maxLen) + 1) * maxLen))}], want [${(want as number[][])[Math.floor(bad / maxLen)]}]`);
    }
  } finally {
    model.dispose();
  }
}

function runSeq2SeqTrain(c: CaseFile, check: Checker): void {
  const schedule = trainSchedule(c);
  const { model, p, batch } = seq2seqModel(c);
  try {
    if (!batch.targets) throw new CaseError(`a seq2seq_train case needs 'targets'`);
    model.compile({ optimizer: optimizerOf({ optimizer: 'adam', ...schedule.options }), clipNorm: schedule.clipNorm });
    checkTraining(c, check, schedule, p, () => model.trainOnBatchSync(batch).loss, (name) => model.getParam(name).data);
  } finally {
    model.dispose();
  }
}

/** Run one parsed case. */
export function runCase(c: CaseFile, file = ''): CaseResult {
  const name = typeof c.name === 'string' ? c.name : path.basename(file, '.json');
  const kind = c.kind;
  const check = new Checker(kind === 'train' || kind === 'seq2seq_train' ? TRAIN_TOLERANCE : SEQUENCE_TOLERANCE);
  try {
    if (kind === 'sequence') runSequence(c, check);
    else if (kind === 'lm') runLanguageModel(c, check);
    else if (kind === 'train') runTrain(c, check);
    else if (kind === 'seq2seq') runSeq2Seq(c, check);
    else if (kind === 'seq2seq_train') runSeq2SeqTrain(c, check);
    else throw new CaseError(`unknown kind '${String(kind)}' (known: sequence, lm, train, seq2seq, seq2seq_train)`);
  } catch (e) {
    const reason = e instanceof CaseError ? `cannot run: ${e.message}` : `error: ${(e as Error).message ?? String(e)}`;
    return { name, file, passed: false, detail: reason, checked: check.checked };
  }
  if (check.checked === 0) return { name, file, passed: false, detail: 'cannot run: the case expects nothing to compare', checked: 0 };
  const passed = check.failures.length === 0;
  return {
    name,
    file,
    passed,
    checked: check.checked,
    detail: passed ? `${check.checked} tensors and values match` : check.failures.join('; '),
  };
}

/** Run every `*.json` case of a directory (sorted by name); a file that does not parse fails. */
export function runDirectory(dir: string, onResult?: (r: CaseResult) => void): CaseResult[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  const results: CaseResult[] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    let result: CaseResult;
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new CaseError('the file is not a JSON object');
      result = runCase(parsed as CaseFile, file);
    } catch (e) {
      result = { name: path.basename(f, '.json'), file, passed: false, detail: `cannot run: ${(e as Error).message}`, checked: 0 };
    }
    results.push(result);
    onResult?.(result);
  }
  return results;
}
