// CI smoke test of the benchmark harness: `npm run bench -- --json --tiny` in a child process prints one JSON object
// with every workload of bench/workloads.json. Only the structure is checked (names present, figures finite and
// positive), never a timing. Peers are skipped in a --tiny run.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.join(__dirname, '..');
const skip = fs.existsSync(path.join(root, 'dist', 'bench.js')) ? false : 'dist/bench.js is missing: run `npx tsc -p .` first';

function npm(args: string[]) {
  // Under `npm test` npm_execpath is npm's own script; otherwise the npm on PATH.
  const execpath = process.env.npm_execpath;
  return execpath && /\.c?js$/.test(execpath)
    ? spawnSync(process.execPath, [execpath, ...args], { cwd: root, encoding: 'utf8', timeout: 180000 })
    : spawnSync('npm', args, { cwd: root, encoding: 'utf8', timeout: 180000, shell: process.platform === 'win32' });
}

t.test('npm run bench -- --json --tiny prints one JSON object covering every workload', { skip, timeout: 240000 }, async (t) => {
  const r = npm(['run', 'bench', '--', '--json', '--tiny']);
  t.equal(r.status, 0, `exit status (stderr: ${(r.stderr ?? '').slice(-2000)})`);
  let report: { workloads: Record<string, Record<string, unknown>>; machine: Record<string, unknown>; peers?: Record<string, { available: boolean }> };
  try {
    report = JSON.parse(r.stdout);
  } catch (e) {
    t.fail(`stdout is not one JSON object: ${(e as Error).message}\n${r.stdout.slice(0, 500)}`);
    return;
  }
  t.type(report.workloads, 'object');
  t.type(report.machine, 'object');
  t.equal(report.machine.tiny, true);

  const spec = JSON.parse(fs.readFileSync(path.join(root, 'bench', 'workloads.json'), 'utf8')) as {
    workloads: Record<string, { report: string[] }>;
  };
  t.same(Object.keys(report.workloads).sort(), Object.keys(spec.workloads).sort(), 'exactly the workloads of bench/workloads.json');
  const finitePositive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  for (const [name, w] of Object.entries(spec.workloads)) {
    const got = report.workloads[name];
    if (!got) continue;
    t.notOk('error' in got, `${name} ran`);
    for (const figure of [...w.report, 'gflops']) t.ok(finitePositive(got[figure]), `${name}.${figure} is a finite positive number (${got[figure]})`);
    for (const [k, v] of Object.entries(got)) if (typeof v === 'number') t.ok(finitePositive(v), `${name}.${k} finite and positive`);
    t.notOk('peers' in got, `${name}: no peer ran in the smoke run`);
  }
  for (const [p, s] of Object.entries(report.peers ?? {})) t.equal(s.available, false, `peer ${p} skipped`);
  // The step's floors: a matrix-vector product over its weights, and a plain read of as many bytes.
  const floors = report.machine.step_weight_read as Record<string, { bytes: number; us: number; read_us: number }>;
  for (const name of Object.keys(spec.workloads).filter((n) => n.startsWith('step_'))) {
    const f = floors?.[name];
    t.ok(f && finitePositive(f.bytes) && finitePositive(f.us) && finitePositive(f.read_us), `${name}: both floors measured`);
  }
});

t.test('benchRead times a read of the bytes it is given and rejects what is not a size', async (t) => {
  const native = require(path.join(root, 'dist', 'native.js')).native as {
    benchRead: (bytes: unknown, reps: unknown) => { bestSeconds: number; medianSeconds: number; gbPerSecond: number; threads: number };
  };
  const r = native.benchRead(1 << 16, 5);
  t.ok(r.bestSeconds > 0 && r.bestSeconds <= r.medianSeconds, 'best <= median, both positive');
  t.ok(r.gbPerSecond > 0 && r.threads >= 1);
  for (const [bytes, reps] of [[-1, 1], [1.5, 1], ['64', 1], [1 << 16, 0], [1 << 16, NaN], [2 ** 31, 1], [undefined, undefined]])
    t.throws(() => native.benchRead(bytes, reps), { code: 'ERR_RNNKIT_VALUE' }, `benchRead(${String(bytes)}, ${String(reps)})`);
});
