#!/usr/bin/env node
// Load test of the example server (examples/server): single-step generation requests on 127.0.0.1 with autocannon.
//
//   npm run loadtest -- [--model FILE] [--duration S] [--connections N] [--soak] [--json] ...
//
// Without --model it trains a throw-away 2x256 LSTM character model with the CLI (a few steps: the weights do not
// matter for throughput). It starts the server as a child process, checks one response, warms up, then drives
// GET /generate?length=1 (one token over SSE per request) for --duration seconds and reports requests/s, latency
// percentiles, errors and non-2xx responses, the server's RSS before and after and the CPU time of both processes.
// --soak runs 10 minutes, samples the server's RSS every 10 s and checks that it stays within 10% of its value at the
// end of the warm-up, with zero errors (exit status 1 otherwise).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn, spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');
const autocannon = require('autocannon');

const root = path.join(__dirname, '..');

const USAGE = `usage: npm run loadtest -- [options]

options:
  --model FILE        model to serve (default: train a 2x256 LSTM character model in a temporary directory)
  --duration S        seconds of the measured run (default 20; 600 with --soak)
  --warmup S          seconds of load before measuring (default 3; 60 with --soak)
  --connections N     concurrent keep-alive connections (default 32)
  --path URL          request path (default /generate?length=1&prompt=a)
  --engine NAME       server engine: batch (default) or stream
  --threads N         native threads of the server (default: the server's default)
  --models N          model instances of the server's batch engine (default 1)
  --sample S          RSS sampling interval of --soak, seconds (default 10)
  --soak              10-minute soak: RSS over time, checked within 10% of its post-warm-up value, zero errors
  --json              print one JSON object instead of text
`;

function readRss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function readCpu(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); // pid may be "pid/task/tid"
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const hz = 100; // USER_HZ
    return (Number(fields[11]) + Number(fields[12])) / hz;
  } catch {
    return null;
  }
}

/** CPU seconds of each thread of a process: the main thread (the event loop) and the others, busiest first. */
function readThreadCpu(pid) {
  const out = new Map();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const t = readCpu(`${pid}/task/${tid}`);
      if (t !== null) out.set(Number(tid), t);
    }
  } catch {
    // not Linux
  }
  return out;
}

function threadCores(pid, before, after, seconds) {
  const main = ((after.get(pid) ?? 0) - (before.get(pid) ?? 0)) / seconds;
  const others = [...after]
    .filter(([tid]) => tid !== pid)
    .map(([tid, t]) => (t - (before.get(tid) ?? 0)) / seconds)
    .filter((c) => c >= 0.005)
    .sort((a, b) => b - a);
  return { mainThread: main, otherThreads: others.reduce((a, b) => a + b, 0), busiestOtherThreads: others.slice(0, 6).map((c) => Math.round(c * 100) / 100) };
}

/** CPU seconds all processes of the machine have used (every core), from /proc/stat. */
function readMachineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
  } catch {
    return null;
  }
}

function getJson(port, p) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, headers: res.headers, body, json: res.headers['content-type']?.startsWith('application/json') ? JSON.parse(body) : undefined });
          } catch (e) {
            reject(e);
          }
        });
      })
      .on('error', reject);
  });
}

function trainModel(dir, log) {
  log(`training a throw-away 2x256 LSTM character model in ${dir} ...`);
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'train', '--units', '256', '--layers', '2', '--steps', '3',
    '--batch', '4', '--seq', '32', '--eval-every', '3', '--val-batches', '1', '--out', dir, '--quiet'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`rnnkit train failed with status ${r.status}`);
  return path.join(dir, 'model.safetensors');
}

function startServer(model, opts) {
  const args = [path.join(root, 'examples', 'server', 'server.js'), model, '--host', '127.0.0.1', '--port', '0'];
  if (opts.engine) args.push('--engine', opts.engine);
  if (opts.threads) args.push('--threads', String(opts.threads));
  if (opts.models) args.push('--models', String(opts.models));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.stdout.off('data', onData);
      try {
        const info = JSON.parse(out.slice(0, nl));
        resolve({ child, port: info.port, stderr: () => stderr });
      } catch (e) {
        reject(new Error(`unexpected server output: ${out}`));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before listening: ${stderr}`)));
  });
}

function run(options) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
    if (options.onTick) inst.on('tick', options.onTick);
  });
}

/** One autocannon run, with the CPU time of the server, its threads, this process and the machine over it, written
 *  into `result` (load, serverCpuCores, serverThreads, clientCpuCores, machineBusyCores). Returns autocannon's result. */
async function measuredRun(pid, options, result) {
  const cpu0 = readCpu(pid);
  const threads0 = readThreadCpu(pid);
  const machine0 = readMachineCpu();
  const self0 = process.cpuUsage();
  const r = await run(options);
  result.load = summarize(r, r.duration);
  result.serverCpuCores = (readCpu(pid) - cpu0) / r.duration;
  result.serverThreads = threadCores(pid, threads0, readThreadCpu(pid), r.duration);
  const s = process.cpuUsage(self0);
  result.clientCpuCores = (s.user + s.system) / 1e6 / r.duration;
  result.machineBusyCores = (readMachineCpu() - machine0) / r.duration;
  return r;
}

function summarize(r, seconds) {
  const total = r.requests.total;
  return {
    requests: total,
    seconds,
    requestsPerSecond: total / seconds,
    latencyMs: { mean: r.latency.mean, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    statusCodes: { '1xx': r['1xx'], '2xx': r['2xx'], '3xx': r['3xx'], '4xx': r['4xx'], '5xx': r['5xx'] },
  };
}

const mb = (b) => (b / 1048576).toFixed(1);

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' },
      path: { type: 'string' }, engine: { type: 'string' }, threads: { type: 'string' }, sample: { type: 'string' }, models: { type: 'string' },
      soak: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const soak = values.soak ?? false;
  const num = (v, name, fallback) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number, got '${v}'`);
    return n;
  };
  const duration = num(values.duration, 'duration', soak ? 600 : 20);
  const warmup = num(values.warmup, 'warmup', soak ? 60 : 3);
  const connections = Math.round(num(values.connections, 'connections', 32));
  const sampleEvery = num(values.sample, 'sample', 10);
  const reqPath = values.path ?? '/generate?length=1&prompt=a';
  const json = values.json ?? false;
  const log = (line) => process.stderr.write(line + '\n');

  let tmp;
  let model = values.model;
  if (!model) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-loadtest-'));
    model = trainModel(tmp, log);
  }
  const server = await startServer(model, { engine: values.engine, threads: values.threads, models: values.models });
  const { child, port } = server;
  const url = `http://127.0.0.1:${port}${reqPath}`;
  // The machine's 1-minute load average before and after: other processes compete for the same cores.
  const result = { url: reqPath, connections, durationSeconds: duration, warmupSeconds: warmup, soak, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadAverageBefore: os.loadavg()[0] };
  let failed = false;
  try {
    const health0 = (await getJson(port, '/health')).json;
    result.model = { file: model, layers: health0.model.layers.map((l) => `${l.name} ${l.type} ${JSON.stringify(l.outputShape)}`), params: health0.model.params };
    result.backend = health0.backend;
    result.engine = health0.engine.name;
    // One checked response: an SSE stream with one token event and the done event.
    const probe = await getJson(port, reqPath);
    const events = probe.body.split('\n\n').filter(Boolean);
    if (probe.status !== 200 || !/^text\/event-stream/.test(probe.headers['content-type'] ?? '') || !events[0].startsWith('data: {"token":'))
      throw new Error(`unexpected response to ${reqPath}: ${probe.status} ${probe.body.slice(0, 200)}`);
    result.probe = { status: probe.status, events: events.length, first: events[0] };
    result.rssStartBytes = readRss(child.pid);

    log(`server pid ${child.pid} on port ${port}, engine ${result.engine}, ${result.backend.gemm}, ${result.backend.threads} native thread(s)`);
    log(`warm-up ${warmup} s, ${connections} connections ...`);
    const series = [];
    const t0 = Date.now();
    let windowRequests = 0;
    let lastSample = t0;
    let warm = null;
    const sampler = () => {
      const rss = readRss(child.pid);
      const now = Date.now();
      series.push({ t: Math.round((now - t0) / 1000), rssBytes: rss, requestsPerSecond: windowRequests / Math.max(1e-3, (now - lastSample) / 1000), loadAverage: os.loadavg()[0] });
      windowRequests = 0;
      lastSample = now;
      log(`  t=${String(series[series.length - 1].t).padStart(4)} s  rss ${mb(rss)} MiB  ${Math.round(series[series.length - 1].requestsPerSecond)} req/s  load average ${os.loadavg()[0].toFixed(2)}`);
    };
    const onTick = (c) => (windowRequests += c.counter);
    if (soak) {
      // One autocannon run covers warm-up and measurement, so the load never pauses; RSS is sampled all along.
      const timer = setInterval(sampler, sampleEvery * 1000);
      const r = await measuredRun(child.pid, { url, connections, duration: warmup + duration, pipelining: 1, onTick }, result);
      clearInterval(timer);
      if (Date.now() - lastSample > 1000) sampler();
      warm = series.filter((p) => p.t >= warmup);
      const base = warm[0]?.rssBytes;
      const maxDev = Math.max(...warm.map((p) => Math.abs(p.rssBytes - base) / base));
      result.rssSeries = series;
      result.soakCheck = {
        baselineT: warm[0]?.t,
        baselineRssBytes: base,
        minRssBytes: Math.min(...warm.map((p) => p.rssBytes)),
        maxRssBytes: Math.max(...warm.map((p) => p.rssBytes)),
        endRssBytes: warm[warm.length - 1]?.rssBytes,
        maxDeviation: maxDev,
        rssWithin10Percent: maxDev <= 0.1,
        zeroErrors: r.errors === 0 && r.timeouts === 0 && r.non2xx === 0,
      };
      failed = !(result.soakCheck.rssWithin10Percent && result.soakCheck.zeroErrors);
    } else {
      await run({ url, connections, duration: warmup, pipelining: 1 });
      result.rssBeforeBytes = readRss(child.pid);
      log(`measuring ${duration} s ...`);
      await measuredRun(child.pid, { url, connections, duration, pipelining: 1 }, result);
      result.rssAfterBytes = readRss(child.pid);
    }
    result.loadAverageAfter = os.loadavg()[0];
    const health1 = (await getJson(port, '/health')).json;
    result.serverAfter = { streams: health1.streams, inFlight: health1.inFlight - 1, queued: health1.queued, engine: health1.engine, requests: health1.requests };
    const L = result.load;
    result.targets = {
      requestsPerSecond5000: L.requestsPerSecond >= 5000,
      p99Under20ms: L.latencyMs.p99 < 20,
      zeroErrors: L.errors === 0 && L.timeouts === 0 && L.non2xx === 0,
    };
  } finally {
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
    result.serverExitCode = code;
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }

  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    const L = result.load;
    const lines = [
      `${result.url}  ${connections} connections, ${L.seconds.toFixed(0)} s, engine ${result.engine} x${result.serverAfter.engine.instances}, ${result.backend.gemm} (${result.backend.threads} thread(s)), ${result.cpus} CPU(s) (${result.cpuModel}), load average ${result.loadAverageBefore.toFixed(1)} -> ${result.loadAverageAfter.toFixed(1)}`,
      `requests/s       ${L.requestsPerSecond.toFixed(0)}   (${L.requests} requests)`,
      `latency ms       p50 ${L.latencyMs.p50}   p90 ${L.latencyMs.p90}   p99 ${L.latencyMs.p99}   max ${L.latencyMs.max}`,
      `errors           ${L.errors} errors, ${L.timeouts} timeouts, ${L.non2xx} non-2xx`,
      `cpu (cores)      server ${result.serverCpuCores.toFixed(2)} (main thread ${result.serverThreads.mainThread.toFixed(2)}, other threads ${result.serverThreads.otherThreads.toFixed(2)}: ${result.serverThreads.busiestOtherThreads.join(' ')}), load generator ${result.clientCpuCores.toFixed(2)}; machine busy ${result.machineBusyCores.toFixed(2)} of ${result.cpus} (other processes ${(result.machineBusyCores - result.serverCpuCores - result.clientCpuCores).toFixed(2)})`,
      `batching         mean ${result.serverAfter.engine.meanBatch.toFixed(1)} rows per forward, max ${result.serverAfter.engine.maxBatch}; model busy ${result.serverAfter.engine.modelBusySeconds.toFixed(1)} s in all, ${(1000 * result.serverAfter.engine.modelBusySeconds / result.serverAfter.engine.forwards).toFixed(2)} ms per forward, ${(1e6 * result.serverAfter.engine.modelBusySeconds / result.serverAfter.engine.rows).toFixed(0)} us per row`,
    ];
    if (soak) {
      const c = result.soakCheck;
      lines.push(`rss (MiB)        start ${mb(result.rssStartBytes)}; after warm-up (t=${c.baselineT} s) ${mb(c.baselineRssBytes)}; min ${mb(c.minRssBytes)} max ${mb(c.maxRssBytes)} end ${mb(c.endRssBytes)}; max deviation ${(c.maxDeviation * 100).toFixed(1)}%`);
      lines.push(`soak check       rss within 10%: ${c.rssWithin10Percent ? 'yes' : 'NO'}; zero errors: ${c.zeroErrors ? 'yes' : 'NO'}`);
    } else {
      lines.push(`rss (MiB)        start ${mb(result.rssStartBytes)}, before ${mb(result.rssBeforeBytes)}, after ${mb(result.rssAfterBytes)}`);
    }
    const t = result.targets;
    lines.push(`targets          >=5000 req/s: ${t.requestsPerSecond5000 ? 'yes' : 'no'}; p99 < 20 ms: ${t.p99Under20ms ? 'yes' : 'no'}; zero errors: ${t.zeroErrors ? 'yes' : 'no'}`);
    lines.push(`server           streams open after the run ${result.serverAfter.streams}; exit status after SIGTERM ${result.serverExitCode}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return failed || result.serverExitCode !== 0 ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e) => {
    process.stderr.write(`loadtest: ${e.stack || e}\n`);
    process.exitCode = 1;
  },
);
