// `rnnkit train`: a character-level language model trained on a text, with checkpoints, a log and a loss chart.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { lossChartSvg } from './loss-chart';
import { rnnkitError } from '../errors';
import { layers } from '../layers';
import { load, sequential, type Sequential } from '../model';
import { optimizers } from '../optimizers';
import { CharVocabulary, SequenceDataset, splitText } from '../data/text';
import { defaultCorpus } from '../data/corpus';
import { readTextFileSync, writeFileAtomicSync } from '../io/files';
import { modelVocabulary } from '../io/model-vocabulary';
import { UsageError, int, num } from './args';

export const help = `usage: rnnkit train [options]

Trains a character-level recurrent language model (one-hot input, recurrent stack, dense softmax head) on random
windows of a text, and writes into --out:
  model.safetensors  the model (with its vocabulary)
  checkpoint.safetensors  the latest checkpoint (optimizer state included; --resume continues from it)
  log.json           one record per evaluation: step, loss, valLoss, tokensPerSecond, elapsedSeconds
                     (every file is written atomically: a crash leaves the previous version whole)
  loss.svg           training and validation loss against steps

options:
  --data FILE          UTF-8 text to learn (default: a corpus shipped with rnnkit, its own docs and sources)
  --cell lstm|gru|rnn  recurrent cell (default lstm)
  --layers N           stacked recurrent layers (default 2)
  --units N            units per layer (default 128)
  --seq N              time steps per window (default 64)
  --batch N            windows per batch (default 32)
  --steps N            optimizer steps (default 600)
  --lr X               Adam learning rate (default 0.002)
  --clip X             global gradient-norm clip, 0 for none (default 5)
  --skip-non-finite    skip (and count) steps whose loss or gradient norm is not finite; by default such a step
                       stops training with ERR_RNNKIT_NON_FINITE (it is never applied; a checkpoint of the last
                       good state is written)
  --seed N             seed of weights and batches (default 1)
  --eval-every N       evaluate validation loss every N steps (default 100)
  --val-batches N      validation batches per evaluation (default 20)
  --val-fraction X     share of the text held out for validation (default 0.1)
  --checkpoint-every N write a checkpoint every N steps (default 250)
  --resume             continue the run in --out from its checkpoint.safetensors (written every
                       --checkpoint-every steps, on ^C and at the end): give the same --data; the other
                       flags of the run come from the checkpoint (different ones are refused), and a
                       larger --steps trains further
  --overwrite          start a new run in an --out that already holds one, replacing its files (without
                       --resume or --overwrite, such an --out is refused: nothing is lost by mistake)
  --threads N          native threads (default: all cores)
  --out DIR            output directory (default ./rnnkit-model)
  --quiet              no progress output
`;

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** A one-line progress display on a terminal; plain log lines otherwise. */
class Progress {
  #last = 0;
  constructor(private readonly total: number, private readonly tty: boolean, private readonly quiet: boolean) {}
  update(step: number, loss: number, tokensPerSecond: number, elapsed: number, startStep: number): void {
    if (this.quiet || !this.tty) return;
    const now = Date.now();
    if (now - this.#last < 100 && step < this.total) return;
    this.#last = now;
    const width = 24;
    const done = Math.round((step / this.total) * width);
    const eta = ((this.total - step) * elapsed) / Math.max(1, step - startStep);
    process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${step}/${this.total}  loss ${loss.toFixed(3)}  ${(tokensPerSecond / 1000).toFixed(1)}k tok/s  ETA ${formatDuration(eta)}  `);
  }
  log(line: string): void {
    if (this.quiet) return;
    if (this.tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(line + '\n');
  }
}

interface LogRecord {
  step: number;
  loss: number;
  valLoss: number | null;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

/**
 * The flags that shape a training run, kept in its checkpoints. A resumed run is the same run: it takes these from
 * the checkpoint, refuses different ones (they would not apply to the model and data streams it restores), and
 * only --steps may grow. The architecture is also read from the restored model itself.
 */
interface RunFlags {
  cell: string;
  layers: number;
  units: number;
  seq: number;
  batch: number;
  seed: number;
  lr: number;
  clip: number;
  'val-fraction': number;
  steps: number;
}

const RUN_DEFAULTS: RunFlags = { cell: 'lstm', layers: 2, units: 128, seq: 64, batch: 32, seed: 1, lr: 2e-3, clip: 5, 'val-fraction': 0.1, steps: 600 };

/** The command line that continues a run, with the flags that cannot be taken from its checkpoint. */
function resumeHint(out: string, data: string | undefined): string {
  const q = (s: string): string => (/^[\w./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return `rnnkit train --resume --out ${q(out)}${data !== undefined ? ` --data ${q(data)}` : ''}`;
}

/** The run flags a checkpoint's model and stored flags give (older checkpoints stored none: the model says enough). */
function checkpointFlags(model: Sequential): Partial<RunFlags> {
  const stored = (model.trainingExtra as { flags?: Partial<RunFlags> }).flags ?? {};
  const recurrent = model.layers.find((l) => l.kind === 'recurrent') as { cell: string; units: number; numLayers?: number } | undefined;
  if (!recurrent) return stored;
  const cell = recurrent.cell === 'rnn_tanh' || recurrent.cell === 'rnn_relu' ? 'rnn' : recurrent.cell;
  return { ...stored, cell, units: recurrent.units, layers: recurrent.numLayers ?? 1 };
}

/** The training log of an earlier run, or a coded error that says how to go on when it is damaged. */
function readLog(logPath: string): LogRecord[] {
  if (!fs.existsSync(logPath)) return [];
  const text = readTextFileSync(logPath, 'training log');
  let records: unknown;
  try {
    records = JSON.parse(text);
  } catch (e) {
    throw rnnkitError('ERR_RNNKIT_FORMAT', `${logPath} is not valid JSON (${(e as Error).message}; cut short by a crash?): move it away to resume without the earlier records`);
  }
  if (!Array.isArray(records) || records.some((r) => typeof r !== 'object' || r === null || !Number.isInteger((r as LogRecord).step)))
    throw rnnkitError('ERR_RNNKIT_FORMAT', `${logPath} is not a training log (an array of records with a step): move it away to resume without the earlier records`);
  return records as LogRecord[];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' }, cell: { type: 'string' }, layers: { type: 'string' }, units: { type: 'string' },
      seq: { type: 'string' }, batch: { type: 'string' }, steps: { type: 'string' }, lr: { type: 'string' },
      clip: { type: 'string' }, seed: { type: 'string' }, 'eval-every': { type: 'string' }, 'val-batches': { type: 'string' },
      'val-fraction': { type: 'string' }, 'checkpoint-every': { type: 'string' }, resume: { type: 'boolean' }, overwrite: { type: 'boolean' },
      threads: { type: 'string' }, out: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      'skip-non-finite': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  // The flags as given (undefined: not given).
  if (values.cell !== undefined && values.cell !== 'lstm' && values.cell !== 'gru' && values.cell !== 'rnn')
    throw new UsageError(`--cell must be lstm, gru or rnn, got '${values.cell}'`);
  const given: Partial<RunFlags> = {
    cell: values.cell,
    layers: values.layers === undefined ? undefined : int(values.layers, 'layers', 0),
    units: values.units === undefined ? undefined : int(values.units, 'units', 0),
    seq: values.seq === undefined ? undefined : int(values.seq, 'seq', 0),
    batch: values.batch === undefined ? undefined : int(values.batch, 'batch', 0),
    seed: values.seed === undefined ? undefined : int(values.seed, 'seed', 0, 0) >>> 0,
    lr: values.lr === undefined ? undefined : num(values.lr, 'lr', 0),
    clip: values.clip === undefined ? undefined : num(values.clip, 'clip', 0),
    'val-fraction': values['val-fraction'] === undefined ? undefined : num(values['val-fraction'], 'val-fraction', 0),
    steps: values.steps === undefined ? undefined : int(values.steps, 'steps', 0, 0),
  };
  const evalEvery = int(values['eval-every'], 'eval-every', 100);
  const valBatches = int(values['val-batches'], 'val-batches', 20);
  const checkpointEvery = int(values['checkpoint-every'], 'checkpoint-every', 250);
  const out = values.out ?? 'rnnkit-model';
  const quiet = values.quiet ?? false;
  if (values.threads !== undefined) (await import('../index')).setThreads(int(values.threads, 'threads', 1));
  const checkpointPath = path.join(out, 'checkpoint.safetensors');
  const modelPath = path.join(out, 'model.safetensors');
  const logPath = path.join(out, 'log.json');
  const chartPath = path.join(out, 'loss.svg');
  // The files of a run; a new run in a folder that holds one replaces them only when asked to.
  const runFiles = [checkpointPath, modelPath, logPath, chartPath];
  if (values.resume && values.overwrite) throw new UsageError('--resume continues the run in --out and --overwrite replaces it: give one of them');

  // A resumed run: its checkpoint, or a refusal that says why and what to do, before anything is written.
  let resumed: Sequential | undefined;
  let flags: RunFlags;
  if (values.resume) {
    if (!fs.existsSync(checkpointPath))
      throw rnnkitError('ERR_RNNKIT_FILE', `nothing to resume: ${checkpointPath} does not exist` +
        (fs.existsSync(modelPath) ? ` (${modelPath} is there, from a run that kept no checkpoint); start a new run with --overwrite instead of --resume (it replaces that model), or in another --out`
          : '; run without --resume to start a new run'));
    resumed = await load(checkpointPath);
    const saved = checkpointFlags(resumed);
    const changed = (Object.keys(given) as (keyof RunFlags)[])
      .filter((k) => k !== 'steps' && given[k] !== undefined && saved[k] !== undefined && given[k] !== saved[k])
      .map((k) => `--${k} ${given[k]} (the run has ${saved[k]})`);
    if (changed.length) {
      resumed.dispose();
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `--resume continues the run in ${out} as it was started; it cannot change ${changed.join(', ')}: ` +
        'leave these flags out, or start a new run in another --out');
    }
    flags = { ...RUN_DEFAULTS, ...saved, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  } else {
    const previous = runFiles.filter((f) => fs.existsSync(f));
    if (previous.length && !values.overwrite)
      throw rnnkitError('ERR_RNNKIT_FILE', `${out} already holds a run (${previous.map((f) => path.basename(f)).join(', ')}): ` +
        `'${resumeHint(out, values.data)}' continues it, --overwrite starts a new run in its place, or choose another --out`);
    flags = { ...RUN_DEFAULTS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  }
  const { cell, layers: numLayers, units, seq: seqLength, batch: batchSize, seed, lr, clip, steps } = flags;
  const valFraction = flags['val-fraction'];

  let text: string;
  try {
    text = values.data !== undefined ? readTextFileSync(values.data, 'training text') : defaultCorpus();
  } catch (e) {
    resumed?.dispose();
    throw e;
  }
  const vocab = CharVocabulary.fromText(text);
  if (resumed) {
    const theirs = modelVocabulary(resumed, checkpointPath, true) as CharVocabulary;
    if (theirs.chars.join('') !== vocab.chars.join('') || theirs.unknown !== vocab.unknown) {
      resumed.dispose();
      const corpus = (resumed.metadata as { corpus?: unknown }).corpus;
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `the vocabulary of ${values.data !== undefined ? `--data ${values.data}` : 'the default text'} ` +
        `(${vocab.size} characters) differs from the one the run in ${out} was trained with (${theirs.size} characters` +
        `${typeof corpus === 'string' ? `, from ${corpus}` : ''}): resume with the same --data, or start a new run in another --out`);
    }
    if (resumed.step >= flags.steps) {
      process.stderr.write(`rnnkit: the run in ${out} is complete (step ${resumed.step} of --steps ${flags.steps}); give a larger --steps to train further\n`);
      resumed.dispose();
      return 0;
    }
  }
  const progress = new Progress(steps, process.stderr.isTTY === true, quiet);
  fs.mkdirSync(out, { recursive: true });

  const split = splitText(text, valFraction);
  const trainIds = vocab.encode(split.train);
  const valIds = vocab.encode(split.validation);
  if (valIds.length < seqLength + 1) throw new UsageError(`the validation part of the text is too short for --seq ${seqLength}`);
  const trainData = new SequenceDataset(trainIds, { seqLength, batchSize, seed });
  const valData = new SequenceDataset(valIds, { seqLength, batchSize, seed: (seed + 1) >>> 0 });
  const asBatch = (d: SequenceDataset) => ({
    nextBatch: () => {
      const b = d.randomBatch();
      return { x: b.inputs, y: b.targets };
    },
  });
  const checkpointExtra = () => ({ trainData: trainData.getState(), valData: valData.getState(), flags });

  // Every check has passed: a new run with --overwrite removes the previous run's files, so that no checkpoint of
  // it is left for a later --resume to mistake for this run's.
  if (values.overwrite) for (const f of runFiles) fs.rmSync(f, { force: true });
  let model: Sequential;
  let records: LogRecord[] = [];
  if (resumed) {
    model = resumed;
    const extra = model.trainingExtra as { trainData?: number[]; valData?: number[] };
    if (extra.trainData) trainData.setState(extra.trainData);
    if (extra.valData) valData.setState(extra.valData);
    try {
      records = readLog(logPath).filter((r) => r.step <= model.step);
    } catch (e) {
      model.dispose();
      throw e;
    }
    progress.log(`resuming from step ${model.step}`);
  } else {
    const cellLayer = cell === 'lstm' ? layers.lstm : cell === 'gru' ? layers.gru : layers.simpleRNN;
    model = sequential({
      vocabSize: vocab.size,
      seed,
      layers: [cellLayer({ units, numLayers, returnSequences: true }), layers.dense({ units: vocab.size, activation: 'softmax' })],
    });
    model.metadata = { vocabulary: vocab.toJSON(), corpus: values.data ? path.basename(values.data) : 'rnnkit documentation and sources' };
    model.compile({ loss: 'softmaxCrossEntropy', optimizer: optimizers.adam({ lr }), clipNorm: clip });
  }
  const startStep = model.step;
  const remaining = Math.max(0, steps - startStep);
  progress.log(`${cell} ${numLayers}x${units}, vocabulary ${vocab.size}, ${trainIds.length} training characters; ${remaining} steps of ${batchSize}x${seqLength}`);
  if (!quiet) progress.log(model.summary());

  const writeLog = (): void => {
    writeFileAtomicSync(logPath, JSON.stringify(records, null, 2) + '\n');
    writeFileAtomicSync(chartPath, lossChartSvg(records.map((r) => ({ step: r.step, loss: r.loss, valLoss: r.valLoss ?? undefined })), 'rnnkit train'));
  };
  let tokensSince = 0;
  let secondsSince = 0;
  const elapsedBase = records.length ? records[records.length - 1].elapsedSeconds : 0;
  const started = Date.now();
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  let skipped = 0;
  try {
    const history = await model.fitDataset(asBatch(trainData), {
      steps: remaining,
      nonFinite: values['skip-non-finite'] ? 'skip' : 'error',
      signal: controller.signal,
      validation: { source: asBatch(valData), batches: valBatches, every: evalEvery },
      checkpoint: { path: checkpointPath, every: checkpointEvery, extra: checkpointExtra },
      callbacks: {
        onStepEnd: (l) => {
          tokensSince += batchSize * seqLength;
          secondsSince += (batchSize * seqLength) / l.tokensPerSecond;
          progress.update(l.step, l.loss, l.tokensPerSecond, (Date.now() - started) / 1000, startStep);
        },
        onEpochEnd: (l) => {
          const rec: LogRecord = {
            step: l.step,
            loss: l.loss,
            valLoss: l.valLoss ?? null,
            tokensPerSecond: secondsSince > 0 ? tokensSince / secondsSince : 0,
            elapsedSeconds: elapsedBase + (Date.now() - started) / 1000,
          };
          tokensSince = 0;
          secondsSince = 0;
          records.push(rec);
          progress.log(`step ${rec.step}: loss ${rec.loss.toFixed(4)}  val ${rec.valLoss?.toFixed(4) ?? '-'}  ${Math.round(rec.tokensPerSecond)} tok/s  ${rec.elapsedSeconds.toFixed(1)} s`);
          writeLog();
        },
      },
    });
    skipped = history.skippedSteps;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_RNNKIT_NON_FINITE') {
      // The step was not applied: the model is as good as after the last step; keep it for --resume.
      await model.save(checkpointPath, { includeOptimizer: true, extra: checkpointExtra() });
      process.stderr.write(`rnnkit: stopped after step ${model.step}: a checkpoint of the last good state is in ` +
        `${checkpointPath} ('${resumeHint(out, values.data)}' continues from it); lower --lr or --clip, or pass --skip-non-finite\n`);
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
  if (skipped > 0) process.stderr.write(`rnnkit: ${skipped} steps skipped: their loss or gradient norm was not finite\n`);
  await model.save(modelPath);
  // The last step's checkpoint too, so that --resume knows where the run ended (and neither repeats steps nor
  // starts over) and a larger --steps continues from here.
  await model.save(checkpointPath, { includeOptimizer: true, extra: checkpointExtra() });
  writeLog();
  if (controller.signal.aborted) {
    progress.log(`interrupted at step ${model.step}; '${resumeHint(out, values.data)}' continues`);
    model.dispose();
    return 130;
  }
  progress.log(`wrote ${modelPath}, log.json and loss.svg; '${resumeHint(out, values.data)} --steps N' trains further`);
  model.dispose();
  return 0;
}
