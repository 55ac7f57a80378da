// The batch runner (`rnnkit predict`, lib/batch/): predictions equal to the model run directly, in input order,
// malformed lines reported by number (or fatal with --strict), and runs killed (SIGKILL) or interrupted (SIGINT)
// mid-way resumed into an output that has every line exactly once, in order.
// The CLI runs and the worker threads load the compiled package from dist/ (run `npx tsc -p .` first).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as rk from '../lib/index';
import { CharVocabulary } from '../lib/data/text';
import { runBatch } from '../lib/batch/runner';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const skip = fs.existsSync(path.join(__dirname, '..', 'dist', 'batch', 'runner.js')) ? false : 'dist/batch/runner.js is missing: run `npx tsc -p .` first';

const TEXT = 'the quick brown fox jumps over the lazy dog.\nTHE END, or is it?\n';
const vocab = CharVocabulary.fromText(TEXT);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-batch-'));
const modelFile = path.join(dir, 'model.safetensors');
let model: rk.Sequential;

t.before(async () => {
  const m = rk.sequential({
    vocabSize: vocab.size,
    seed: 11,
    layers: [rk.layers.lstm({ units: 32, numLayers: 2, returnSequences: true }), rk.layers.dense({ units: vocab.size, activation: 'softmax' })],
  });
  m.metadata = { vocabulary: vocab.toJSON() };
  await m.save(modelFile);
  m.dispose();
  model = await rk.load(modelFile);
});

t.teardown(() => {
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** n input lines of texts of 20 to 199 characters, ids 0..n-1. */
function writeInput(file: string, n: number): string[] {
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, text: TEXT.repeat(5).slice(i % 40, (i % 40) + 20 + ((i * 7919) % 180)) }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return lines;
}

const readRecords = (file: string): { id?: unknown; line: number; prediction: { next: { token: string; id: number; p: number }; top: { token: string; id: number; p: number }[] } }[] =>
  fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

type Rec = ReturnType<typeof readRecords>[number];

/**
 * Where two outputs differ ('' when they agree): the same records in the same order (line numbers, ids, predicted
 * symbols) with probabilities within 1e-5 (batches of other shapes may round the last float bit differently).
 */
function diffRecords(a: Rec[], b: Rec[]): string {
  if (a.length !== b.length) return `${a.length} records against ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.line !== y.line || JSON.stringify(x.id) !== JSON.stringify(y.id)) return `record ${i}: line/id ${x.line}/${JSON.stringify(x.id)} against ${y.line}/${JSON.stringify(y.id)}`;
    const px = x.prediction.top;
    const py = y.prediction.top;
    if (px.length !== py.length || px.some((e, k) => Math.abs(e.p - py[k].p) > 1e-5 || (e.id !== py[k].id && Math.abs(e.p - py[k].p) > 1e-6)))
      return `record ${i} (line ${x.line}): ${JSON.stringify(px)} against ${JSON.stringify(py)}`;
  }
  return '';
}

function lastProbs(ids: Int32Array): Float32Array {
  const out = model.predictSync({ data: ids, shape: [1, ids.length] });
  return out.data.slice(out.data.length - vocab.size);
}

t.test('a small file: one record per valid line, in order, equal to the model run directly', { skip }, async (t) => {
  const input = path.join(dir, 'small.jsonl');
  const lines = [
    JSON.stringify({ id: 'a', text: 'the lazy dog' }),
    JSON.stringify({ text: 'T' }),
    JSON.stringify({ id: 3, tokens: Array.from(vocab.encode('quick brown')) }),
    '',
    JSON.stringify({ id: { nested: true }, text: TEXT.repeat(4) }),
    '{"id": "bad", "text": ',
    JSON.stringify({ id: 'unknown', text: 'héllo' }),
    JSON.stringify({ id: 'z', text: 'is it?' }),
  ];
  fs.writeFileSync(input, lines.join('\n') + '\n');
  const messages: string[] = [];
  const output = path.join(dir, 'small.out.jsonl');
  const s = await runBatch({ model: modelFile, input, output, workers: 0, chunkLines: 3, log: (m) => messages.push(m) });
  t.equal(s.written, 5);
  t.equal(s.malformed, 2);
  t.equal(s.interrupted, false);
  const recs = readRecords(output);
  t.same(recs.map((r) => r.line), [1, 2, 3, 5, 8], 'input line numbers, in order');
  t.same(recs.map((r) => r.id), ['a', undefined, 3, { nested: true }, 'z'], 'ids kept ("line" only when absent)');
  t.notOk('id' in recs[1], 'no id key for a line without one');
  const texts = ['the lazy dog', 'T', 'quick brown', TEXT.repeat(4), 'is it?'];
  recs.forEach((r, i) => {
    const p = lastProbs(vocab.encode(texts[i]));
    const best = p.indexOf(Math.max(...p));
    t.equal(r.prediction.next.id, best, `line ${r.line}: the most likely next character`);
    t.equal(r.prediction.next.token, vocab.charOf(best));
    t.equal(r.prediction.top.length, 5);
    t.same(r.prediction.top[0], r.prediction.next);
    t.ok(r.prediction.top.every((e) => Math.abs(e.p - p[e.id]) < 1e-5), `line ${r.line}: top-5 probabilities`);
  });
  t.match(messages.join('\n'), /line 6: not valid JSON/, 'a malformed line is reported with its number');
  t.match(messages.join('\n'), /line 7: character "é" \(U\+00E9\) at position 1/, 'an unknown character is named');

  // Worker threads give the same bytes.
  const output2 = path.join(dir, 'small.out2.jsonl');
  await runBatch({ model: modelFile, input, output: output2, workers: 2, chunkLines: 2, log: () => undefined });
  t.equal(diffRecords(readRecords(output2), readRecords(output)), '', 'worker threads: the same output');

  // Running again over a complete output adds nothing.
  const again = await runBatch({ model: modelFile, input, output, workers: 0, log: () => undefined });
  t.equal(again.written, 0);
  t.equal(again.resumedAfter, 8);
  t.equal(readRecords(output).length, 5);
});

t.test('--strict stops at the first malformed line with its number, after writing the lines before it', { skip }, async (t) => {
  const input = path.join(dir, 'strict.jsonl');
  const lines = writeInput(input, 20);
  lines[11] = '{"id": 11, "tokens": [1, 2, 999]}';
  fs.writeFileSync(input, lines.join('\n') + '\n');
  const output = path.join(dir, 'strict.out.jsonl');
  const r = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output, '--strict', '--chunk', '4'], { encoding: 'utf8' });
  t.equal(r.status, 1, 'exit status 1');
  t.match(r.stderr, /line 12: tokens\[2\] = 999 is not a token id/);
  t.same(readRecords(output).map((x) => x.line), Array.from({ length: 11 }, (_, i) => i + 1), 'lines 1 to 11 written');
  const lax = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output, '--chunk', '4'], { encoding: 'utf8' });
  t.equal(lax.status, 0, 'without --strict the run goes on');
  t.match(lax.stderr, /line 12: .*\(skipped\)/);
  t.same(readRecords(output).map((x) => x.line), [...Array.from({ length: 11 }, (_, i) => i + 1), ...Array.from({ length: 8 }, (_, i) => i + 13)]);
});

/** Start `rnnkit predict` and send `signal` once the output holds at least `after` lines; resolves to the exit. */
function interruptedRun(input: string, output: string, signal: NodeJS.Signals, after: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output, '--chunk', '8', '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setInterval(() => {
      let n = 0;
      try {
        n = fs.readFileSync(output, 'utf8').split('\n').length - 1;
      } catch {
        return;
      }
      if (n >= after) {
        clearInterval(timer);
        child.kill(signal);
      }
    }, 5);
    child.once('exit', (code, sig) => {
      clearInterval(timer);
      resolve({ code, signal: sig, stderr });
    });
  });
}

t.test('killed (SIGKILL) or interrupted (SIGINT) mid-run, then resumed: every line exactly once, in order', { skip }, async (t) => {
  const n = 1000;
  const input = path.join(dir, 'big.jsonl');
  writeInput(input, n);
  const reference = path.join(dir, 'big.ref.jsonl');
  await runBatch({ model: modelFile, input, output: reference, workers: 0, log: () => undefined });
  const expected = readRecords(reference);
  t.same(expected.map((r) => r.line), Array.from({ length: n }, (_, i) => i + 1), 'the reference has every line');
  /** The file is whole lines only, every input line at most once, in order, as the reference has it. */
  const check = (file: string, complete: boolean, what: string): number => {
    const text = fs.readFileSync(file, 'utf8');
    t.ok(text.endsWith('\n'), `${what}: whole lines only`);
    const recs = readRecords(file);
    t.equal(diffRecords(recs, expected.slice(0, recs.length)), '', `${what}: the records of one uninterrupted run, in order`);
    if (complete) t.equal(recs.length, n, `${what}: every line exactly once`);
    return recs.length;
  };

  // SIGKILL: no chance to clean up. Then a torn last line, as a crash in the middle of a write would leave.
  const killed = path.join(dir, 'big.killed.jsonl');
  const k = await interruptedRun(input, killed, 'SIGKILL', 40);
  t.equal(k.signal, 'SIGKILL', 'killed');
  const done = check(killed, false, 'after SIGKILL');
  t.ok(done >= 40 && done < n, `killed mid-run (${done} of ${n} lines written)`);
  fs.appendFileSync(killed, '{"id":12345,"line":99999,"predic');
  const resumed = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', killed, '--chunk', '64'], { encoding: 'utf8' });
  t.equal(resumed.status, 0, 'the resumed run succeeds');
  t.match(resumed.stderr, /cutting an incomplete last line/);
  t.match(resumed.stderr, new RegExp(`resuming after input line ${done}\\b`));
  check(killed, true, 'SIGKILL + resume');

  // SIGINT: the chunks in flight are written, exit status 130 and a hint.
  const interrupted = path.join(dir, 'big.int.jsonl');
  const i = await interruptedRun(input, interrupted, 'SIGINT', 40);
  t.equal(i.code, 130, 'exit status 130');
  t.match(i.stderr, /interrupted after input line \d+.*run the same command again to resume/);
  t.notOk(fs.existsSync(`${interrupted}.lock`), 'the lock is released');
  const upTo = check(interrupted, false, 'after SIGINT');
  t.ok(upTo < n, `interrupted mid-run (${upTo} of ${n} lines written)`);
  const r2 = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', interrupted], { encoding: 'utf8' });
  t.equal(r2.status, 0);
  check(interrupted, true, 'SIGINT + resume');
});

t.test('a second run on an output that is being written is refused', { skip }, async (t) => {
  const input = path.join(dir, 'lock.jsonl');
  writeInput(input, 3);
  const output = path.join(dir, 'lock.out.jsonl');
  fs.writeFileSync(`${output}.lock`, String(process.pid)); // this (live) process "holds" it
  const r = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /being written by another 'rnnkit predict'/);
  fs.writeFileSync(`${output}.lock`, '999999999'); // a dead owner's lock is taken over
  const r2 = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output], { encoding: 'utf8' });
  t.equal(r2.status, 0);
  t.equal(readRecords(output).length, 3);
});

t.test('two runs started together after a crash: one takes the stale lock over, every line is written once', { skip }, async (t) => {
  const n = 400;
  const input = path.join(dir, 'race.jsonl');
  writeInput(input, n);
  const reference = path.join(dir, 'race.ref.jsonl');
  await runBatch({ model: modelFile, input, output: reference, workers: 0, log: () => undefined });
  const run = (output: string): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output, '--chunk', '16', '--workers', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (d) => (stderr += d));
      c.once('exit', (code) => resolve({ code, stderr }));
    });
  for (let round = 0; round < 2; round++) {
    const output = path.join(dir, `race.${round}.jsonl`);
    const crash = await interruptedRun(input, output, 'SIGKILL', 16);
    t.equal(crash.signal, 'SIGKILL', `round ${round}: the first run crashed`);
    t.ok(fs.existsSync(`${output}.lock`), `round ${round}: it left its lock`);
    const both = await Promise.all([run(output), run(output)]);
    const ok = both.filter((r) => r.code === 0);
    t.ok(ok.length >= 1, `round ${round}: a run finished (${both.map((r) => r.code).join(', ')})`);
    for (const r of both) if (r.code !== 0) t.match(r.stderr, /being written by another 'rnnkit predict' \(pid \d+; lock .*\(ERR_RNNKIT_LOCKED\)/, `round ${round}: the other is refused`);
    const recs = readRecords(output);
    t.same(recs.map((r) => r.line), Array.from({ length: n }, (_, i) => i + 1), `round ${round}: every input line exactly once, in order`);
    t.equal(diffRecords(recs, readRecords(reference)), '', `round ${round}: the records of one uninterrupted run`);
    t.notOk(fs.existsSync(`${output}.lock`), `round ${round}: the lock is released`);
  }
});

t.test('usage errors exit with status 2', { skip }, async (t) => {
  const r = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', 'x.jsonl'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /--output/);
  const h = spawnSync(process.execPath, [cli, 'predict', '--help'], { encoding: 'utf8' });
  t.equal(h.status, 0);
  t.match(h.stdout, /usage: rnnkit predict MODEL/);
});

t.test('the runners refuse unknown option names, suggesting the known one, before any work', async (t) => {
  const input = path.join(dir, 'names.jsonl');
  fs.writeFileSync(input, '{"text": "the"}\n');
  const output = path.join(dir, 'names.out.jsonl');
  await t.rejects(runBatch({ model: modelFile, input, output, chunk: 3 } as never), { code: 'ERR_RNNKIT_ARGUMENT', message: /unknown option 'chunk' in runBatch options: did you mean 'chunkLines'\?/ }, 'runBatch');
  t.notOk(fs.existsSync(output), 'runBatch wrote nothing');
  await t.rejects(rk.runDistributedBatch({ model: modelFile, input, output, queue: 'redis://127.0.0.1:1', queue_name: 'x' } as never), { code: 'ERR_RNNKIT_ARGUMENT', message: /'queue_name' in runDistributedBatch options: did you mean 'queueName'\?/ }, 'runDistributedBatch');
  await t.rejects(rk.runWorker({ queue: 'redis://127.0.0.1:1', worker: 2 } as never), { code: 'ERR_RNNKIT_ARGUMENT', message: /'worker' in runWorker options: did you mean 'workers'\?/ }, 'runWorker');
});
