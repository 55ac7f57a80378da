// The encoder-decoder examples in their tiny mode (a few seconds each): each runs to the end and reports sane
// figures in its last line, a JSON object. The full runs' quality is measured by hand and stated in the README.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';

/** Run examples/<name>.js --tiny with extra arguments; check it exits 0 and names itself; return its JSON report. */
function runTiny(t: Test, name: string, args: string[]): Record<string, any> {
  const script = path.join(__dirname, '..', 'examples', `${name}.js`);
  const r = spawnSync(process.execPath, [script, '--tiny', ...args], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `exits 0${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
  const lines = (r.stdout ?? '').trim().split('\n');
  const report = JSON.parse(lines[lines.length - 1]);
  t.equal(report.example, name);
  t.equal(report.tiny, true);
  return { ...report, stdout: r.stdout };
}

t.test('encoder-decoder with attention: examples/dates-to-iso.js --tiny', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-dates-tiny-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const report = runTiny(t, 'dates-to-iso', ['--out', dir]);
  for (const key of ['greedyExact', 'beamExact'])
    t.ok(report[key] >= 0 && report[key] <= 1, `${key} ${report[key]} in [0, 1]`);
  t.ok(Number.isFinite(report.heldOutLoss) && report.heldOutLoss > 0, `held-out loss ${report.heldOutLoss} finite and > 0`);
  t.ok(report.trainLoss.length >= 2 && report.trainLoss[report.trainLoss.length - 1] < report.trainLoss[0],
    `the training loss fell (${report.trainLoss.map((l: number) => l.toFixed(3)).join(' -> ')})`);
  t.equal(report.reloadedSame, true, 'the saved model decodes the same tokens');
  t.equal(report.attentionRowsSumToOne, true, 'each drawn attention row sums to 1 over the valid source steps');
  t.ok(fs.statSync(path.join(dir, 'model.safetensors')).size > 1000, 'model saved');
  const svg = fs.readFileSync(path.join(dir, 'attention.svg'), 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/, 'an SVG heatmap');
  t.ok((svg.match(/<rect /g) ?? []).length > 50, 'with a cell per attention weight');
  t.match(report.stdout, /exact match greedy \d+\.\d+%, beam 4 \d+\.\d+%/, 'printed exact match');
});

t.test('one-to-many: examples/digit-strokes.js --tiny', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-strokes-tiny-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const svgFile = path.join(dir, 'strokes.svg');
  const report = runTiny(t, 'digit-strokes', ['--svg', svgFile]);
  t.ok(Number.isInteger(report.greedyRight) && report.greedyRight >= 0 && report.greedyRight <= 10, `greedy digits right ${report.greedyRight} of 10`);
  for (const key of ['sampledRight', 'bigramBaseline'])
    t.ok(report[key] >= 0 && report[key] <= 1, `${key} ${report[key]} in [0, 1]`);
  t.ok(report.bigramBaseline < 0.2, `a bigram model of the moves rarely draws the digit (${report.bigramBaseline})`);
  t.ok(Number.isFinite(report.heldOutLoss) && report.heldOutLoss > 0, `held-out loss ${report.heldOutLoss} finite and > 0`);
  t.ok(report.trainLoss[report.trainLoss.length - 1] < report.trainLoss[0], `the training loss fell (${report.trainLoss.map((l: number) => l.toFixed(3)).join(' -> ')})`);
  t.ok((fs.readFileSync(svgFile, 'utf8').match(/<polyline /g) ?? []).length === 80, 'the SVG draws 8 samples of each digit');
});
