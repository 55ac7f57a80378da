// The README's model-builder programs run as written: every ```js block of the "The model builder" section that is a
// whole program (it requires rnnkit; the other blocks are fragments that continue one), with require('rnnkit')
// pointing at this checkout, in a temporary folder (they write model files), must exit 0.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) return '';
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

t.test('every js snippet of the model builder section runs', async (t) => {
  const blocks = [...section('The model builder').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
    .filter((code) => code.includes("require('rnnkit')"));
  t.ok(blocks.length >= 1, `${blocks.length} js programs`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-readme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  blocks.forEach((code, i) => {
    const file = path.join(dir, `snippet-${i}.js`);
    // The snippets end in main(); the harness makes an unhandled rejection fail the run.
    fs.writeFileSync(file, `process.on('unhandledRejection', (e) => { console.error(e); process.exit(1); });\n${code.replace(/require\('rnnkit'\)/g, `require(${JSON.stringify(root)})`)}`);
    const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    t.equal(r.status, 0, `snippet ${i} exits 0${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
    t.match(r.stdout, /Total params: \d+/, `snippet ${i} printed its summary`);
  });
  t.ok(fs.existsSync(path.join(dir, 'model.safetensors')), 'the snippet saved its model');
});
