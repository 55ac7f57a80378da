#!/usr/bin/env node
// Distributed batch predictions (rnnkit predict --queue, rnnkit worker) against the single-process runner on the same
// input and model, on this machine: one Redis on loopback (appendonly, fsync every second, as a production queue
// would run), workers started once and kept warm (as a fleet is), runs alternated A/B/C so that a change in the
// machine's load hits every mode alike. For each distributed run: wall time of the producer (cut, queue, wait,
// merge), Redis commands by name and Redis CPU time (INFO commandstats and INFO cpu, before and after), and a byte
// comparison of the merged output with the single-process one. Needs redis-server, bullmq and dist/ (npx tsc -p .).
//
//   node bench/distributed.js [--lines 20000] [--rounds 3] [--chunk 256] [--units 128] [--json FILE]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const IORedis = require('ioredis');
const rk = require('../dist');
const { CharVocabulary } = require('../dist/data/text');

const { values } = parseArgs({ options: { lines: { type: 'string' }, rounds: { type: 'string' }, chunk: { type: 'string' }, units: { type: 'string' }, json: { type: 'string' } } });
const LINES = Number(values.lines ?? 20000);
const ROUNDS = Number(values.rounds ?? 3);
const CHUNK = Number(values.chunk ?? 256);
const UNITS = Number(values.units ?? 128);
const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-dist-bench-'));
const env = { ...process.env, NODE_OPTIONS: '' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${args.join(' ')}: ${code}: ${err}`));
      const merge = err.match(/\(merge ([\d.]+) s\)/);
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, mergeSeconds: merge ? Number(merge[1]) : null });
    });
  });
}

function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const m = line.match(/^cmdstat_([^:]+):calls=(\d+)/);
    if (m) out[`cmd:${m[1]}`] = Number(m[2]);
    const c = line.match(/^(used_cpu_sys|used_cpu_user):([\d.]+)/);
    if (c) out[c[1]] = Number(c[2]);
  }
  return out;
}

async function main() {
  // Model: the shape `rnnkit train` makes by default (2 x LSTM 128, softmax head), over a small character set.
  const text = 'the quick brown fox jumps over the lazy dog. THE END, or is it? 0123456789\n';
  const vocab = CharVocabulary.fromText(text);
  const model = path.join(dir, 'model.safetensors');
  const m = rk.sequential({ vocabSize: vocab.size, seed: 3, layers: [rk.layers.lstm({ units: UNITS, numLayers: 2, returnSequences: true }), rk.layers.dense({ units: vocab.size, activation: 'softmax' })] });
  m.metadata = { vocabulary: vocab.toJSON() };
  await m.save(model);
  m.dispose();
  const input = path.join(dir, 'in.jsonl');
  const long = text.repeat(8);
  fs.writeFileSync(input, Array.from({ length: LINES }, (_, i) => JSON.stringify({ id: i, text: long.slice(i % 50, (i % 50) + 20 + ((i * 7919) % 180)) })).join('\n') + '\n');

  const port = await freePort();
  const redisDir = path.join(dir, 'redis');
  fs.mkdirSync(redisDir);
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const client = new IORedis({ host: '127.0.0.1', port, maxRetriesPerRequest: 3, retryStrategy: (n) => (n > 50 ? null : 100) });
  client.on('error', () => undefined); // Redis is stopped at the end
  await client.ping();
  const info = async () => parseInfo((await client.info('commandstats')) + (await client.info('cpu')));

  const workers = [];
  const startWorker = async (queueName, threads) => {
    const w = spawn(process.execPath, [cli, 'worker', '--queue', url, '--queue-name', queueName, '--workers', String(threads)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    workers.push(w);
    await new Promise((resolve) => w.stderr.on('data', (d) => String(d).includes('taking chunks') && resolve()));
  };
  await startWorker('w1', 2); // one machine's worker with both cores
  await startWorker('w2', 1); // two workers of one core each: the same cores as two 1-core machines
  await startWorker('w2', 1);
  await sleep(1000);
  // The workers' background traffic while idle (blocking waits, stalled-job checks), to take off the runs' counts.
  const idle0 = await info();
  await sleep(10000);
  const idle1 = await info();
  let idleCommands = 0;
  for (const k of Object.keys(idle1)) if (k.startsWith('cmd:')) idleCommands += idle1[k] - (idle0[k] ?? 0);
  const idlePerSecond = (idleCommands - 2) / 10; // less the two INFO calls
  process.stderr.write(`idle: ${idlePerSecond.toFixed(1)} Redis commands/s from 3 idle workers\n`);

  const modes = {
    single: (out) => run([cli, 'predict', model, '--input', input, '--output', out, '--chunk', String(CHUNK), '--quiet']),
    '1 worker x 2 threads': (out) => run([cli, 'predict', model, '--input', input, '--output', out, '--chunk', String(CHUNK), '--queue', url, '--queue-name', 'w1']),
    '2 workers x 1 thread': (out) => run([cli, 'predict', model, '--input', input, '--output', out, '--chunk', String(CHUNK), '--queue', url, '--queue-name', 'w2']),
  };
  const results = [];
  const chunks = Math.ceil(LINES / CHUNK);
  let reference;
  for (let r = 0; r < ROUNDS; r++) {
    const order = Object.keys(modes);
    for (let k = 0; k < r % order.length; k++) order.push(order.shift()); // rotate the order each round
    for (const name of order) {
      const out = path.join(dir, `out-${r}-${name.replace(/\W+/g, '_')}.jsonl`);
      const before = await info();
      const load = os.loadavg()[0];
      const { seconds, mergeSeconds } = await modes[name](out);
      const after = await info();
      const bytes = fs.readFileSync(out);
      if (name === 'single') reference ??= bytes;
      const ops = {};
      let total = 0;
      for (const k of Object.keys(after)) if (k.startsWith('cmd:')) {
        const d = after[k] - (before[k] ?? 0);
        if (d > 0) {
          ops[k.slice(4)] = d;
          total += d;
        }
      }
      const cpu = after.used_cpu_sys + after.used_cpu_user - before.used_cpu_sys - before.used_cpu_user;
      const scripts = ops.evalsha ?? 0;
      const rec = { round: r, mode: name, seconds, mergeSeconds, linesPerSecond: LINES / seconds, load1: load, load1After: os.loadavg()[0], redisCommands: total, redisCommandsLessIdle: total - idlePerSecond * seconds, scriptCalls: scripts, redisCpuSeconds: cpu, ops, identical: reference ? bytes.equals(reference) : null };
      results.push(rec);
      process.stderr.write(`round ${r} ${name.padEnd(22)} ${seconds.toFixed(2)} s  ${(LINES / seconds).toFixed(0)} lines/s  load ${load.toFixed(1)}  redis ${total} cmds (${(rec.redisCommandsLessIdle / chunks).toFixed(1)}/chunk less idle, ${(scripts / chunks).toFixed(1)} scripts/chunk), ${(cpu * 1000).toFixed(0)} ms cpu  ${mergeSeconds !== null ? `merge ${mergeSeconds.toFixed(2)} s` : ''}  ${rec.identical === false ? 'DIFFERENT BYTES' : ''}\n`);
      fs.rmSync(out);
    }
  }
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r() : w.once('exit', r)))));
  client.disconnect();
  redis.kill('SIGTERM');
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = {};
  for (const name of Object.keys(modes)) {
    const rs = results.filter((x) => x.mode === name);
    summary[name] = {
      medianSeconds: median(rs.map((x) => x.seconds)), medianLinesPerSecond: median(rs.map((x) => x.linesPerSecond)),
      redisCommandsPerChunk: median(rs.map((x) => x.redisCommandsLessIdle)) / chunks, scriptCallsPerChunk: median(rs.map((x) => x.scriptCalls)) / chunks, redisCpuMsPerChunk: (median(rs.map((x) => x.redisCpuSeconds)) * 1000) / chunks,
      allIdentical: rs.every((x) => x.identical !== false),
    };
  }
  const report = { idleCommandsPerSecond: idlePerSecond, lines: LINES, chunkLines: CHUNK, chunks, units: UNITS, cores: os.cpus().length, node: process.version, date: new Date().toISOString(), summary, runs: results };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (values.json) fs.writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
