// `rnnkit train --resume` continues the same run or refuses, saying why and what to do: another text's vocabulary,
// changed architecture or data flags, no checkpoint, a finished run, a damaged log. And `rnnkit sample` and
// `rnnkit predict` refuse a model whose vocabulary does not match it, naming the cause.
// The CLI runs from dist/ (run `npx tsc -p .` first).
import tap from 'tap';
const t = tap;
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as rk from '../lib/index';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const skip = fs.existsSync(path.join(root, 'dist', 'io', 'model-vocabulary.js')) ? false : 'dist/ is not built: run `npx tsc -p .` first';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-cli-train-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const TEXT = 'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n'.repeat(40);
const textA = path.join(dir, 'a.txt');
const textB = path.join(dir, 'b.txt');
fs.writeFileSync(textA, TEXT);
fs.writeFileSync(textB, TEXT.replace(/a/g, 'A').replace(/e/g, 'E') + 'xyz');
const SMALL = ['--units', '8', '--layers', '1', '--seq', '8', '--batch', '4', '--eval-every', '2', '--val-batches', '1', '--checkpoint-every', '3'];

function run(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

const oneCodedLine = (t: typeof tap, stderr: string, code: string, message: RegExp, label: string): void => {
  t.match(stderr, new RegExp(`^rnnkit: .*\\(${code}\\)\\n$`), `${label}: one line with ${code}`);
  t.match(stderr, message, `${label}: says why and what to do`);
  t.notMatch(stderr, /\n\s+at /, `${label}: no stack trace`);
};

t.test('resume refuses what does not match the run, and leaves its files alone', { skip }, async (t) => {
  const out = path.join(dir, 'run1');
  const first = run(['train', '--data', textA, '--out', out, '--steps', '4', ...SMALL]);
  t.equal(first.status, 0, `a first run of 4 steps (${first.stderr.slice(-300)})`);
  t.match(first.stderr, /'rnnkit train --resume --out \S+run1 --data \S+a\.txt --steps N' trains further/, 'the hint names --data');
  const model = fs.readFileSync(path.join(out, 'model.safetensors'));
  const unchanged = (label: string) => t.ok(fs.readFileSync(path.join(out, 'model.safetensors')).equals(model), `${label}: model.safetensors unchanged`);

  const done = run(['train', '--resume', '--data', textA, '--out', out, ...SMALL]);
  t.equal(done.status, 0, 'resuming a finished run: nothing to do');
  t.match(done.stderr, /the run in \S+ is complete \(step 4 of --steps 4\); give a larger --steps/, 'says it is complete');
  unchanged('a finished run');

  const other = run(['train', '--resume', '--data', textB, '--out', out, '--steps', '6', ...SMALL]);
  t.equal(other.status, 1, 'another text: refused');
  oneCodedLine(t, other.stderr, 'ERR_RNNKIT_ARGUMENT', /the vocabulary of --data \S+b\.txt \(\d+ characters\) differs from the one the run .* was trained with \(\d+ characters, from a\.txt\): resume with the same --data/, 'another vocabulary');
  unchanged('another vocabulary');

  const noData = run(['train', '--resume', '--out', out, '--steps', '6', ...SMALL]);
  t.equal(noData.status, 1, 'no --data (the default text): refused');
  t.match(noData.stderr, /the vocabulary of the default text .* differs/);

  const arch = run(['train', '--resume', '--data', textA, '--out', out, '--steps', '6', ...SMALL, '--cell', 'gru', '--units', '16']);
  t.equal(arch.status, 1, 'changed architecture flags: refused');
  oneCodedLine(t, arch.stderr, 'ERR_RNNKIT_ARGUMENT', /cannot change --cell gru \(the run has lstm\), --units 16 \(the run has 8\): leave these flags out/, 'architecture flags');
  const stream = run(['train', '--resume', '--data', textA, '--out', out, '--steps', '6', ...SMALL, '--seq', '16', '--lr', '0.1']);
  t.equal(stream.status, 1, 'changed data and optimizer flags: refused');
  t.match(stream.stderr, /--seq 16 \(the run has 8\), --lr 0\.1 \(the run has 0\.002\)/);
  unchanged('refused flags');

  const more = run(['train', '--resume', '--data', textA, '--out', out, '--steps', '6', '--checkpoint-every', '3', '--eval-every', '2', '--val-batches', '1']);
  t.equal(more.status, 0, 'a larger --steps continues; the other flags come from the checkpoint');
  t.match(more.stderr, /resuming from step 4/);
  t.match(more.stderr, /lstm 1x8, vocabulary \d+, \d+ training characters; 2 steps of 4x8/, 'prints the run\'s own architecture and shapes');
  const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8')) as { step: number }[];
  t.same(log.map((r) => r.step), [2, 4, 6], 'each step once in the log');
  const back = await rk.load(path.join(out, 'checkpoint.safetensors'));
  t.equal(back.step, 6, 'the checkpoint has 6 steps');
  back.dispose();
  t.same(fs.readdirSync(out).filter((f) => f.endsWith('.rnnkit-tmp')), [], 'no temporary file left');
});

t.test('resume without a checkpoint refuses instead of starting over', { skip }, async (t) => {
  const out = path.join(dir, 'run2');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'model.safetensors'), 'precious');
  const r = run(['train', '--resume', '--data', textA, '--out', out, '--steps', '2', ...SMALL]);
  t.equal(r.status, 1);
  oneCodedLine(t, r.stderr, 'ERR_RNNKIT_FILE', /nothing to resume: \S+checkpoint\.safetensors does not exist \(\S+model\.safetensors is there.*start a new run with --overwrite instead of --resume/, 'no checkpoint');
  t.equal(fs.readFileSync(path.join(out, 'model.safetensors'), 'utf8'), 'precious', 'model.safetensors untouched');
  t.same(fs.readdirSync(out), ['model.safetensors'], 'nothing written');
});

t.test('a damaged log.json: a coded error that says what to do', { skip }, async (t) => {
  const out = path.join(dir, 'run3');
  t.equal(run(['train', '--data', textA, '--out', out, '--steps', '2', ...SMALL]).status, 0);
  const logPath = path.join(out, 'log.json');
  const whole = fs.readFileSync(logPath, 'utf8');
  fs.writeFileSync(logPath, whole.slice(0, whole.length >> 1));
  const r = run(['train', '--resume', '--data', textA, '--out', out, '--steps', '4', ...SMALL]);
  t.equal(r.status, 1);
  oneCodedLine(t, r.stderr, 'ERR_RNNKIT_FORMAT', /log\.json is not valid JSON .*cut short by a crash\?\): move it away to resume without the earlier records/, 'truncated log');
  fs.rmSync(logPath);
  t.equal(run(['train', '--resume', '--data', textA, '--out', out, '--steps', '4', ...SMALL]).status, 0, 'without it the run resumes');
});

t.test('^C: the hint to resume names --data, and resuming repeats no step', { skip }, async (t) => {
  const out = path.join(dir, 'run4');
  const child = spawn(process.execPath, [cli, 'train', '--data', textA, '--out', out, '--steps', '100000', ...SMALL, '--eval-every', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let sent = false;
  child.stderr.setEncoding('utf8');
  const status = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d: string) => {
      stderr += d;
      if (!sent && /step 5:/.test(stderr)) sent = child.kill('SIGINT'); // once: a second ^C stops at once
    });
    child.on('exit', (code) => resolve(code));
  });
  t.equal(status, 130, 'interrupted');
  const hint = /interrupted at step (\d+); '(rnnkit train --resume --out \S+ --data \S+)' continues/.exec(stderr);
  t.ok(hint, `the hint names --data (${stderr.split('\n').filter((l) => l.includes('interrupted')).join('')})`);
  if (!hint) return;
  const at = Number(hint[1]);
  const more = run(['train', '--resume', '--data', textA, '--out', out, '--steps', String(at + 2), '--eval-every', '1', '--val-batches', '1']);
  t.equal(more.status, 0, more.stderr.slice(-300));
  t.match(more.stderr, new RegExp(`resuming from step ${at}\\b`), 'from the step where it stopped');
  const steps = (JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8')) as { step: number }[]).map((r) => r.step);
  t.same(steps, [...new Set(steps)].sort((a, b) => a - b), 'no step twice in the log');
  t.equal(steps[steps.length - 1], at + 2);
});

t.test('sample and predict refuse a vocabulary that does not match the model', { skip }, async (t) => {
  const vocab = rk.CharVocabulary.fromText('abcdef');
  const make = async (name: string, vocabSize: number, outputs: number, vocabulary: unknown) => {
    const m = rk.sequential({ vocabSize, seed: 1, layers: [rk.layers.gru({ units: 4, returnSequences: true }), rk.layers.dense({ units: outputs, activation: 'softmax' })] });
    m.metadata = { vocabulary };
    const file = path.join(dir, name);
    await m.save(file);
    m.dispose();
    return file;
  };
  const good = await make('good.safetensors', 6, 6, vocab.toJSON());
  const fewer = await make('fewer.safetensors', 9, 9, vocab.toJSON());
  const outputs = await make('outputs.safetensors', 6, 4, vocab.toJSON());
  const broken = await make('broken.safetensors', 6, 6, { chars: ['a', 'a'], unknown: 'error' });
  const input = path.join(dir, 'in.jsonl');
  fs.writeFileSync(input, '{"text": "abc"}\n');

  t.equal(run(['sample', good, '--prompt', 'a', '--length', '5', '--seed', '1']).status, 0, 'a matching vocabulary samples');
  for (const [label, file, message] of [
    ['a vocabulary of 6 symbols for 9 token ids', fewer, /the vocabulary in \S+fewer\.safetensors does not match its model: 6 symbols, but the model reads 9 token ids and predicts 9 classes/],
    ['an output of 4 classes', outputs, /does not match its model: 6 symbols, but the model reads 6 token ids and predicts 4 classes/],
    ['a malformed vocabulary', broken, /the vocabulary in \S+broken\.safetensors is malformed: vocabulary\.chars\[1\] "a" .*duplicates/],
  ] as const) {
    const s = run(['sample', file, '--prompt', 'a', '--length', '5']);
    t.equal(s.status, 1, `sample, ${label}: refused`);
    oneCodedLine(t, s.stderr, 'ERR_RNNKIT_FORMAT', message, `sample, ${label}`);
    for (const workers of ['0', '2']) {
      const output = path.join(dir, `out-${workers}-${path.basename(file)}.jsonl`);
      const p = run(['predict', file, '--input', input, '--output', output, '--workers', workers, '--quiet']);
      t.equal(p.status, 1, `predict --workers ${workers}, ${label}: refused`);
      t.match(p.stderr, message, `predict --workers ${workers}, ${label}: names the cause`);
      t.match(p.stderr, /\(ERR_RNNKIT_FORMAT\)\n$/, `predict --workers ${workers}, ${label}: coded`);
    }
  }
});

t.test('a new run into a folder that holds one is refused unless --overwrite; --overwrite replaces the run', { skip }, async (t) => {
  const out = path.join(dir, 'run-overwrite');
  t.equal(run(['train', '--data', textA, '--out', out, '--steps', '3', ...SMALL]).status, 0, 'the first run');
  const before = Object.fromEntries(fs.readdirSync(out).map((f) => [f, fs.readFileSync(path.join(out, f))]));
  const again = run(['train', '--data', textA, '--out', out, '--steps', '2', ...SMALL]);
  t.equal(again.status, 1, 'a second run without --resume is refused');
  oneCodedLine(t, again.stderr, 'ERR_RNNKIT_FILE', /\S+run-overwrite already holds a run \(checkpoint\.safetensors, model\.safetensors, log\.json, loss\.svg\): 'rnnkit train --resume --out \S+ --data \S+a\.txt' continues it, --overwrite starts a new run in its place/, 'refused');
  t.same(Object.fromEntries(fs.readdirSync(out).map((f) => [f, fs.readFileSync(path.join(out, f))])), before, 'every file of the run untouched');
  const both = run(['train', '--data', textA, '--out', out, '--resume', '--overwrite', ...SMALL]);
  t.equal(both.status, 2, '--resume with --overwrite is a usage error');
  t.match(both.stderr, /give one of them/);
  // A bad flag with --overwrite loses nothing either: the checks come before the old run is removed.
  const bad = run(['train', '--data', path.join(dir, 'missing.txt'), '--out', out, '--overwrite', ...SMALL]);
  t.equal(bad.status, 1);
  t.ok(fs.existsSync(path.join(out, 'checkpoint.safetensors')), 'a failed --overwrite run keeps the old run');
  const fresh = run(['train', '--data', textB, '--out', out, '--steps', '2', '--overwrite', '--quiet', ...SMALL]);
  t.equal(fresh.status, 0, `--overwrite starts a new run${fresh.status ? `\n${fresh.stderr}` : ''}`);
  const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8')) as { step: number }[];
  t.equal(log[log.length - 1].step, 2, 'the log is the new run\'s');
  const m = await rk.load(path.join(out, 'checkpoint.safetensors'));
  t.equal(m.step, 2, 'the checkpoint is the new run\'s');
  t.equal((m.metadata as { corpus?: string }).corpus, 'b.txt', 'trained on the new text');
  m.dispose();
});
