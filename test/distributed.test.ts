// Distributed batch predictions on BullMQ (lib/batch/distributed/): a real redis-server on loopback, worker processes and
// the CLI producer. The merged output must equal the single-machine `rnnkit predict` byte for byte, through a worker
// killed mid-chunk, a Redis restart and a producer killed and started again; a chunk that keeps killing workers must
// fail after a bounded number of attempts and be reported, then succeed when the same command runs again; a model
// file that changed, a job naming another file and a wrong password must be refused.
// Needs redis-server (Debian's redis-server package; .ci/run installs it): missing, the test fails in CI (CI=true) and
// is skipped elsewhere. Needs dist/ (npx tsc -p .).
import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as rk from '../lib/index';
import { CharVocabulary } from '../lib/data/text';
import { RedisServer, freePort, redisBinary } from './helpers/redis-server';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const workerScript = path.join(__dirname, 'helpers', 'dist-worker.js');
const inCI = process.env.CI === 'true' || process.env.CI === '1';
let skip: string | false = false;
if (!fs.existsSync(path.join(root, 'dist', 'batch', 'distributed', 'worker.js'))) skip = 'dist/ is missing: run `npx tsc -p .` first';
else if (!redisBinary) {
  if (inCI) t.fail('redis-server is not installed: CI must install it (.ci/run, system packages: redis-server)');
  skip = 'redis-server is not installed (apt-get install redis-server): the distributed tests need a real Redis';
}
// Plain node for the children: without tap's loaders they start faster.
const env = { ...process.env, NODE_OPTIONS: '' };

const TEXT = 'the quick brown fox jumps over the lazy dog.\nTHE END, or is it?\n';
const vocab = CharVocabulary.fromText(TEXT);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-dist-'));
const modelFile = path.join(dir, 'model.safetensors');
let redis: RedisServer;
const children: ChildProcess[] = [];

async function saveModel(file: string, seed: number): Promise<void> {
  const m = rk.sequential({
    vocabSize: vocab.size, seed,
    layers: [rk.layers.lstm({ units: 32, numLayers: 2, returnSequences: true }), rk.layers.dense({ units: vocab.size, activation: 'softmax' })],
  });
  m.metadata = { vocabulary: vocab.toJSON() };
  await m.save(file);
  m.dispose();
}

/** n lines of texts of 20 to 199 characters, with malformed and blank lines among them. */
function writeInput(file: string, n: number): void {
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, text: TEXT.repeat(5).slice(i % 40, (i % 40) + 20 + ((i * 7919) % 180)) }));
  lines[3] = '{"id": "bad", "text": ';
  lines[40] = '';
  lines[41] = '   ';
  lines[300] = JSON.stringify({ id: 'unknown', text: 'héllo' });
  lines[n - 2] = '[1, 2]';
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/** The single-machine run's output bytes and its messages about skipped lines. */
function reference(input: string, output: string): { bytes: Buffer; skipped: string[] } {
  const r = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', output, '--chunk', '32'], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`reference run failed: ${r.stderr}`);
  return { bytes: fs.readFileSync(output), skipped: r.stderr.split('\n').filter((l) => / \(skipped\)$/.test(l)) };
}

interface Proc {
  child: ChildProcess;
  out: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpMatchArray>;
}

function start(args: string[], extraEnv: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out: string[] = [];
  let err = '';
  let partial = '';
  const waiters: (() => void)[] = [];
  child.stdout?.on('data', (d) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() as string;
    out.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr?.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => {
    waiters.splice(0).forEach((w) => w());
    resolve({ code, signal });
  }));
  const waitFor = async (re: RegExp, ms = 20000): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const l of out) {
        const m = l.match(re);
        if (m) return m;
      }
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before printing ${re}: ${err}`);
      if (Date.now() > deadline) throw new Error(`no ${re} within ${ms} ms: ${err}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  return { child, out, stderr: () => err, exited, waitFor };
}

const worker = (queueName: string, role: string, delay = 0, maxStalls = 5): Proc =>
  start([workerScript, redis.url, queueName, role], { DELAY: String(delay), MAX_STALLS: String(maxStalls) });
const producer = (input: string, output: string, queueName: string, model = modelFile): Proc =>
  start([cli, 'predict', model, '--input', input, '--output', output, '--chunk', '32', '--queue', redis.url, '--queue-name', queueName]);

async function kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  await p.exited;
}

const parts = (output: string): number => {
  try {
    return fs.readdirSync(`${output}.parts`).filter((f) => f.endsWith('.part')).length;
  } catch {
    return 0;
  }
};

async function until(what: string, ok: () => boolean, ms = 30000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.before(async () => {
  if (skip) return;
  await saveModel(modelFile, 11);
  redis = new RedisServer(path.join(dir, 'redis'), await freePort(), `pw ${crypto.randomBytes(4).toString('hex')}/:@`);
  await redis.start();
});

t.teardown(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

t.test('three workers, one killed mid-chunk, Redis restarted, the producer killed and started again: the single-machine bytes', { skip }, async (t) => {
  const input = path.join(dir, 'main.jsonl');
  writeInput(input, 1000);
  const ref = reference(input, path.join(dir, 'main.ref.jsonl'));
  const output = path.join(dir, 'out', 'main.jsonl');
  fs.mkdirSync(path.dirname(output));
  const held = worker('main', 'hold-first');
  const w2 = worker('main', 'normal', 100);
  const w3 = worker('main', 'normal', 100);
  const p1 = producer(input, output, 'main');

  const hold = await held.waitFor(/^hold (\d+)$/);
  await kill(held); // mid-chunk: it took the chunk and was predicting it
  t.pass(`worker killed in the middle of chunk ${hold[1]}`);

  await until('6 chunks stored', () => parts(output) >= 6);
  await redis.stop();
  await new Promise((r) => setTimeout(r, 300));
  await redis.start();
  t.pass(`Redis restarted after ${parts(output)} chunks`);

  await until('14 chunks stored', () => parts(output) >= 14);
  await kill(p1);
  t.equal((await p1.exited).signal, 'SIGKILL', 'the producer was killed mid-run');
  t.notOk(fs.existsSync(output), 'no output yet');

  const p2 = producer(input, output, 'main');
  const end = await p2.exited;
  t.equal(end.code, 0, `the restarted producer finishes (${p2.stderr()})`);
  const resumed = p2.stderr().match(/resuming run [0-9a-f]+: (\d+) of (\d+) chunks done/);
  t.ok(resumed && Number(resumed[1]) >= 14, `it resumed the run: ${resumed?.[0]}`);
  const bytes = fs.readFileSync(output);
  t.equal(bytes.length, ref.bytes.length, 'as many bytes as the single-machine run');
  t.ok(bytes.equals(ref.bytes), 'byte for byte the single-machine output');
  t.same(p2.stderr().split('\n').filter((l) => / \(skipped\)$/.test(l)), ref.skipped, 'the same malformed lines reported, in order');
  t.notOk(fs.existsSync(`${output}.parts`), 'chunk store removed after the merge');
  t.notOk(fs.existsSync(`${output}.lock`), 'lock released');

  // Every chunk was taken; the killed worker's chunk again by another worker; little else was done twice.
  const chunks = Number(resumed?.[2]);
  const taken = [...w2.out, ...w3.out].filter((l) => l.startsWith('chunk ')).map((l) => Number(l.split(' ')[2]));
  t.ok(taken.includes(Number(hold[1])), `chunk ${hold[1]} was taken again by another worker`);
  t.same([...new Set([...taken, Number(hold[1])])].sort((a, b) => a - b), Array.from({ length: chunks }, (_, i) => i), 'every chunk was taken');
  t.ok(taken.length <= chunks + 3, `${taken.length} chunk predictions for ${chunks} chunks`);
  await Promise.all([kill(w2, 'SIGTERM'), kill(w3, 'SIGTERM')]);
  t.equal(w2.child.exitCode, 0, 'a worker stops cleanly on SIGTERM');
});

t.test('a chunk that keeps killing workers fails after a bounded number of stalls, is reported, and is retried by the same command', { skip }, async (t) => {
  const input = path.join(dir, 'poison.jsonl');
  writeInput(input, 160);
  const ref = reference(input, path.join(dir, 'poison.ref.jsonl'));
  const output = path.join(dir, 'poison.out.jsonl');
  // A supervisor that restarts dead workers, as systemd would.
  let supervising = true;
  let deaths = 0;
  const keep = (): Proc => {
    const w = worker('poison', 'die-on=2', 0, 1);
    void w.exited.then(() => {
      if (!supervising) return;
      deaths++;
      keep();
    });
    return w;
  };
  const ws = [keep(), keep()];
  const p = producer(input, output, 'poison');
  const r = await p.exited;
  supervising = false;
  t.equal(r.code, 1, 'the producer exits with status 1');
  t.match(p.stderr(), /chunk 2 \(lines 6[0-9]-9[0-9]\) failed: .*stalled more than allowable limit/, 'the failed chunk is reported with its lines and error');
  // A worker holds two chunks per thread, so a chunk that shares a dying worker with chunk 2 stalls too, and may fail
  // with it: such chunks are reported the same way and retried by the next run.
  const failedCount = Number(p.stderr().match(/(\d) of 5 chunk\(s\) failed; nothing merged/)?.[1]);
  t.ok(failedCount >= 1 && failedCount <= 3, `${failedCount} of 5 chunks failed (chunk 2, and any that died with it twice)`);
  t.ok(deaths >= 2 && deaths <= 4, `the chunk killed ${deaths} workers before it was failed (max stalls 1)`);
  t.notOk(fs.existsSync(output), 'no output');
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  void ws;

  const healthy = worker('poison', 'normal');
  const again = producer(input, output, 'poison');
  const r2 = await again.exited;
  t.equal(r2.code, 0, `the same command again finishes (${again.stderr()})`);
  t.match(again.stderr(), new RegExp(`resuming run [0-9a-f]+: ${5 - failedCount} of 5 chunks done, ${failedCount} failed chunk\\(s\\) retried`));
  t.ok(fs.readFileSync(output).equals(ref.bytes), 'byte for byte the single-machine output');
  await kill(healthy, 'SIGTERM');
});

t.test('refused: a model file that changed after the run was made, jobs naming other files or carrying other fields, a wrong password', { skip }, async (t) => {
  const { Queue } = await import('bullmq');
  const input = path.join(dir, 'guard.jsonl');
  writeInput(input, 40);
  // The model changes between the producer's checksum and the workers' load.
  const model2 = path.join(dir, 'model2.safetensors');
  fs.copyFileSync(modelFile, model2);
  const run = rk.runDistributedBatch({ model: model2, input, output: path.join(dir, 'guard.out.jsonl'), queue: redis.url, queueName: 'guard', chunkLines: 32, log: () => undefined });
  const queue = new Queue('guard', { connection: { host: '127.0.0.1', port: redis.port, password: redis.password } });
  for (let i = 0; i < 200 && (await queue.getWaitingCount()) < 2; i++) await new Promise((r) => setTimeout(r, 50));
  await saveModel(model2, 12);
  const w = worker('guard', 'normal');
  const s = await run;
  t.equal(s.failedChunks.length, 2, 'both chunks failed');
  t.match(s.failedChunks[0].error, /model2\.safetensors on this machine has SHA-256 .* the run was made with .*ERR_RNNKIT_MODEL_MISMATCH/, 'the worker refused the changed model');

  // Jobs written into the queue by someone else: a file outside the run, code in an extra field.
  const client = await queue.client;
  const recordKey = (await client.keys('bull:guard:rnnkit-run:*'))[0];
  t.ok(recordKey, 'the run record is in Redis');
  const runId = recordKey.split(':').pop() as string;
  const rogue = await queue.add('chunk', { run: runId, index: 0, input: '/etc/passwd', start: 0, end: 100, firstLine: 1 });
  const extra = await queue.add('chunk', { run: runId, index: 0, input, start: 0, end: 100, firstLine: 1, code: 'process.exit(3)' });
  const outside = await queue.add('chunk', { run: runId, index: 0, input, start: 0, end: 10 ** 9, firstLine: 1 });
  for (const j of [rogue, extra, outside]) {
    let state = '';
    for (let i = 0; i < 200 && state !== 'failed'; i++) {
      state = await j.getState();
      await new Promise((r) => setTimeout(r, 50));
    }
    const failed = await queue.getJob(j.id as string);
    t.equal(state, 'failed', `job ${j.id} failed`);
    t.match(failed?.failedReason, /ERR_RNNKIT_REFUSED/, `refused: ${failed?.failedReason}`);
    t.equal(failed?.attemptsMade, 1, 'without retries');
  }
  t.equal(w.child.exitCode, null, 'the worker is still running');
  await kill(w, 'SIGTERM');
  await queue.close();

  const wrong = spawnSync(process.execPath, [cli, 'worker', '--queue', `redis://:not-the-password@127.0.0.1:${redis.port}`], { encoding: 'utf8', env, timeout: 20000 });
  t.equal(wrong.status, 1, 'a wrong password: exit status 1');
  t.match(wrong.stderr, /WRONGPASS.*ERR_RNNKIT_CONNECTION/);
  t.notMatch(wrong.stderr, /not-the-password/, 'the password is not printed');
});

t.test('a worker of two threads given two chunks at once loads one model and exits on SIGTERM', { skip }, async (t) => {
  const input = path.join(dir, 'two.jsonl');
  writeInput(input, 64);
  const ref = reference(input, path.join(dir, 'two.ref.jsonl'));
  const w = start([cli, 'worker', '--queue', redis.url, '--queue-name', 'two', '--workers', '2']);
  const output = path.join(dir, 'two.out.jsonl');
  const p = producer(input, output, 'two');
  t.equal((await p.exited).code, 0, 'the run finishes');
  t.ok(fs.readFileSync(output).equals(ref.bytes), 'byte for byte the single-machine output');
  w.child.kill('SIGTERM');
  const timer = setTimeout(() => w.child.kill('SIGKILL'), 15000);
  const end = await w.exited;
  clearTimeout(timer);
  t.equal(end.code, 0, `it exits with status 0, nothing left running (${end.signal ?? ''})`);
  t.match(w.stderr(), /stopped; 2 chunk\(s\) done \(63 lines\), 0 failed/, w.stderr());
});

t.test('--strict: the merge stops at the first malformed line, as the single-machine run does', { skip }, async (t) => {
  const input = path.join(dir, 'strict.jsonl');
  writeInput(input, 100); // line 4 is malformed
  const single = path.join(dir, 'strict.ref.jsonl');
  const r = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', input, '--output', single, '--chunk', '32', '--strict'], { encoding: 'utf8', env });
  t.equal(r.status, 1, 'the single-machine run stops');
  const w = worker('strict', 'normal');
  const output = path.join(dir, 'strict.out.jsonl');
  const p = start([cli, 'predict', modelFile, '--input', input, '--output', output, '--chunk', '32', '--queue', redis.url, '--queue-name', 'strict', '--strict']);
  const end = await p.exited;
  t.equal(end.code, 1, 'the distributed run stops with status 1');
  t.match(p.stderr(), /line 4: not valid JSON.*--strict: stopped; lines before it are written/);
  t.ok(fs.readFileSync(output).equals(fs.readFileSync(single)), 'the same lines before it, byte for byte');
  await kill(w, 'SIGTERM');
});

const openssl = spawnSync('sh', ['-c', 'command -v openssl']).status === 0;

t.test('TLS: rediss:// with a private CA (NODE_EXTRA_CA_CERTS) runs a batch; an unknown certificate is refused at once', { skip: skip || (!openssl && 'openssl is not installed') }, async (t) => {
  const tdir = path.join(dir, 'tls');
  fs.mkdirSync(tdir);
  const sh = (cmd: string): void => {
    const r = spawnSync('sh', ['-c', cmd], { cwd: tdir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  fs.writeFileSync(path.join(tdir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=rnnkit-test-ca');
  sh('openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1');
  sh('openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext');
  const port = await freePort();
  const server = spawn(redisBinary as string, [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', tdir, '--save', '', '--appendonly', 'no',
    '--tls-cert-file', 'server.pem', '--tls-key-file', 'server.key', '--tls-ca-cert-file', 'ca.pem', '--tls-auth-clients', 'no',
    '--requirepass', 'tls-secret',
  ], { cwd: tdir, stdio: 'ignore' });
  children.push(server);
  const listening = (): Promise<boolean> => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  for (let i = 0; i < 100 && !(await listening()); i++) await new Promise((r) => setTimeout(r, 100));
  const url = `rediss://:tls-secret@127.0.0.1:${port}`;
  const caEnv = { NODE_EXTRA_CA_CERTS: path.join(tdir, 'ca.pem') };

  const input = path.join(dir, 'tls.jsonl');
  writeInput(input, 64);
  const ref = reference(input, path.join(dir, 'tls.ref.jsonl'));
  const output = path.join(dir, 'tls.out.jsonl');
  const w = start([cli, 'worker', '--queue', url, '--queue-name', 'tls', '--workers', '1'], caEnv);
  const p = start([cli, 'predict', modelFile, '--input', input, '--output', output, '--chunk', '32', '--queue', url, '--queue-name', 'tls'], caEnv);
  const end = await p.exited;
  t.equal(end.code, 0, `a run over TLS finishes (${p.stderr()})`);
  t.notMatch(p.stderr() + w.stderr(), /Warning/, 'no warnings');
  t.ok(fs.existsSync(output) && fs.readFileSync(output).equals(ref.bytes), 'byte for byte the single-machine output');
  await kill(w, 'SIGTERM');

  const untrusted = spawnSync(process.execPath, [cli, 'worker', '--queue', url], { encoding: 'utf8', env, timeout: 20000 });
  t.equal(untrusted.status, 1, 'without the CA: exit status 1, no endless retry');
  t.match(untrusted.stderr, /certificate.*ERR_RNNKIT_CONNECTION/);
  const gone = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  await gone;
});

t.test('usage: --workers belongs to the worker; a worker needs --queue; a bad URL', { skip }, async (t) => {
  const a = spawnSync(process.execPath, [cli, 'predict', modelFile, '--input', 'x', '--output', 'y', '--queue', redis.url, '--workers', '2'], { encoding: 'utf8', env });
  t.equal(a.status, 2);
  t.match(a.stderr, /with --queue, give it to 'rnnkit worker'/);
  const b = spawnSync(process.execPath, [cli, 'worker'], { encoding: 'utf8', env });
  t.equal(b.status, 2);
  t.match(b.stderr, /--queue/);
  const c = spawnSync(process.execPath, [cli, 'worker', '--queue', 'http://x:1'], { encoding: 'utf8', env });
  t.equal(c.status, 2);
  t.match(c.stderr, /redis:\/\/ or rediss:\/\//);
});
