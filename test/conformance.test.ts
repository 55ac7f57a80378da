import t from 'tap';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runDirectory } from '../lib/conformance/runner';

const golden = path.join(__dirname, 'fixtures', 'golden');

t.test('every golden case passes', async (t) => {
  const results = runDirectory(golden);
  t.ok(results.length >= 28, `found ${results.length} cases`);
  for (const r of results) t.ok(r.passed, `${r.name}: ${r.detail}`);
});

t.test('the conformance command prints one line per case and the summary', async (t) => {
  const cli = path.join(__dirname, '..', 'dist', 'conformance', 'cli.js');
  const run = spawnSync(process.execPath, [cli, golden], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.match(lines[lines.length - 1], /^\d+ passed, 0 failed$/);
});

t.test('a case that cannot run counts as failed', async (t) => {
  const { runCase } = await import('../lib/conformance/runner');
  t.notOk(runCase({ kind: 'sequence', cell: 'lstm' }).passed);
  t.notOk(runCase({ kind: 'mystery' }).passed);
  t.notOk(runCase({ kind: 'sequence', cell: 'peephole', hidden_size: 2 }).passed);
});
