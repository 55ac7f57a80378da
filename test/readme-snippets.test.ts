// The README's programs run as written: every code block whose info string marks it runnable (```js runnable,
// ```ts runnable) is a whole program; each runs in a temporary folder where `rnnkit` resolves to this checkout
// (node_modules/rnnkit -> the repository), as a CommonJS or ES module as its syntax says (TypeScript transpiled
// first), and must exit 0 with nothing on stderr. The other blocks are fragments or shell lines, not run here.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import * as ts from 'typescript';

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const skip = fs.existsSync(path.join(root, 'dist', 'index.js')) ? false : 'dist/ is not built: run `npx tsc -p .` first';

interface Block { line: number; lang: string; code: string }

const blocks: Block[] = [];
for (const m of readme.matchAll(/^```(\w+)([^\n]*)\n([\s\S]*?)^```$/gm)) {
  if (!/\brunnable\b/.test(m[2])) continue;
  blocks.push({ line: readme.slice(0, m.index).split('\n').length, lang: m[1], code: m[3] });
}

t.test('the runnable blocks are there', async (t) => {
  t.ok(blocks.length >= 5, `${blocks.length} runnable blocks`);
  t.same(blocks.filter((b) => !['js', 'ts'].includes(b.lang)).map((b) => b.line), [], 'only js and ts blocks are marked runnable');
  t.ok(blocks.some((b) => b.code.includes('rk.sequential(')), 'the model builder program is one of them');
  t.ok(blocks.some((b) => b.code.includes('rk.model(')), 'the functional graph program is one of them');
});

t.test('every runnable block of README.md runs as written', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-readme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'rnnkit'), 'dir');
  for (const b of blocks) {
    const esm = /^\s*import\s.+\sfrom\s/m.test(b.code) && b.lang === 'js';
    const code = b.lang === 'ts'
      ? ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2021, esModuleInterop: true } }).outputText
      : b.code;
    const file = path.join(dir, `readme-line-${b.line}.${esm ? 'mjs' : 'cjs'}`);
    // An unhandled rejection already ends Node with status 1; a snippet's own output goes to the report on failure.
    fs.writeFileSync(file, code);
    const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '' } });
    t.equal(r.status, 0, `the ${b.lang} block at README.md line ${b.line} exits 0${r.status !== 0 ? `\n${r.stdout}\n${r.stderr}${r.error ?? ''}` : ''}`);
    t.equal(r.stderr, '', `the block at line ${b.line} writes nothing on stderr`);
  }
  // The TypeScript blocks also type-check against the package's own declarations (strict), as a user's would.
  const tsFiles = blocks.filter((b) => b.lang === 'ts').map((b) => {
    const file = path.join(dir, `readme-line-${b.line}.ts`);
    fs.writeFileSync(file, b.code);
    return file;
  });
  const program = ts.createProgram(tsFiles, {
    noEmit: true, strict: true, target: ts.ScriptTarget.ES2021, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
  });
  const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  t.same(problems, [], `the ${tsFiles.length} TypeScript block(s) type-check against the package's declarations`);
  t.ok(fs.existsSync(path.join(dir, 'model.safetensors')), 'the model builder program saved its model');
  t.ok(fs.existsSync(path.join(dir, 'reverse.safetensors')), 'the graph program saved its model');
});
