// The examples that train with masks (examples/sentiment-classifier.js, examples/pos-tagger.js) in their tiny mode
// (a few seconds each): each runs to the end and reports sane figures in its last line, a JSON object. The full
// runs' quality is measured by hand and stated in the README.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t, { type Test } from 'tap';

/** Run examples/<name>.js --tiny; check what every example reports; return its JSON report. */
function runTiny(t: Test, name: string): Record<string, any> {
  const script = path.join(__dirname, '..', 'examples', `${name}.js`);
  const r = spawnSync(process.execPath, [script, '--tiny'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `exits 0${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
  const lines = (r.stdout ?? '').trim().split('\n');
  let report: Record<string, any> = {};
  try {
    report = JSON.parse(lines[lines.length - 1]);
  } catch {
    t.fail(`the last line is a JSON report: ${lines[lines.length - 1]}`);
  }
  t.equal(report.example, name);
  t.equal(report.tiny, true);
  t.ok(report.heldOutAccuracy >= 0 && report.heldOutAccuracy <= 1, `held-out accuracy ${report.heldOutAccuracy} in [0, 1]`);
  t.ok(Number.isFinite(report.heldOutLoss) && report.heldOutLoss > 0, `held-out loss ${report.heldOutLoss} finite and > 0`);
  t.match(r.stdout, /Total params: \d+/, 'printed the model summary');
  t.match(r.stdout, /epoch 2: loss \d/, 'logged each epoch');
  return report;
}

t.test('many-to-one: examples/sentiment-classifier.js --tiny', async (t) => {
  const report = runTiny(t, 'sentiment-classifier');
  t.equal(report.trainLoss?.length, report.epochs, 'one training loss per epoch');
  t.ok(report.trainLoss?.[1] < report.trainLoss?.[0], `the training loss fell (${report.trainLoss?.map((l: number) => l.toFixed(4)).join(' -> ')})`);
  t.ok(report.bagOfWordsAccuracy > 0.5 && report.bagOfWordsAccuracy < 0.8, `word counting alone is far from enough (${report.bagOfWordsAccuracy})`);
});

t.test('many-to-many: examples/pos-tagger.js --tiny', async (t) => {
  const report = runTiny(t, 'pos-tagger');
  t.ok(report.ambiguousAccuracy >= 0 && report.ambiguousAccuracy <= 1, `ambiguous-word accuracy ${report.ambiguousAccuracy}`);
  t.ok(report.baselineAccuracy > 0.85 && report.baselineAccuracy < 0.97, `the context-free baseline ${report.baselineAccuracy} leaves room`);
});
