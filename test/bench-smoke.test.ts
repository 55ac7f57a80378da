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
});
