// The functional-graph example (examples/wave-from-vector.js: one-to-many from a vector, a dense projection into
// the GRU's initial state and repeatVector) in its tiny mode: it runs to the end and reports sane figures in its last
// line, a JSON object. The full run's quality is measured by hand and stated in the README.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';

t.test('one-to-many from a vector: examples/wave-from-vector.js --tiny', async (t) => {
  const script = path.join(__dirname, '..', 'examples', 'wave-from-vector.js');
  const r = spawnSync(process.execPath, [script, '--tiny'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `exits 0${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
  const lines = (r.stdout ?? '').trim().split('\n');
  const report = JSON.parse(lines[lines.length - 1]);
  t.equal(report.example, 'wave-from-vector');
  t.equal(report.tiny, true);
  t.equal(report.trainLoss.length, report.epochs, 'one training loss per epoch');
  t.ok(report.trainLoss[report.epochs - 1] < report.trainLoss[0], `the training loss fell (${report.trainLoss.map((l: number) => l.toFixed(4)).join(' -> ')})`);
  t.ok(Number.isFinite(report.heldOutMse) && report.heldOutMse > 0, `held-out mse ${report.heldOutMse}`);
  t.ok(report.heldOutMse < report.baselineMse, `better than the mean wave (${report.heldOutMse} < ${report.baselineMse})`);
  t.match(r.stdout, /to_state \(dense\)/, 'the summary shows the projection into the state');
  t.match(r.stdout, /every_step \(repeatVector\)/, 'and the repeated vector');
  t.match(r.stdout, /Total params: \d+/, 'and the parameter count');
});
