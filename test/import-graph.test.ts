// lib/ has no import cycle (type-only imports included): each module can be read, loaded and changed on its own.
// The addon's loader (native.ts) and the data types of network calls (network-types.ts) sit at the bottom.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

const lib = path.join(__dirname, '..', 'lib');

function modules(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? modules(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The lib/ modules a module imports, re-exports or requires by relative path. */
function importsOf(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:\bfrom|\bimport|\brequire\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const base = path.resolve(path.dirname(file), m[1]);
    const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((p) => fs.existsSync(p));
    if (hit) out.push(hit);
  }
  return out;
}

t.test('lib/ has no import cycle', async (t) => {
  const files = modules(lib);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  t.ok(graph.get(path.join(lib, 'native.ts'))!.length > 0, 'the scan sees imports');
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map((p) => path.relative(lib, p)).join(' -> '));
      else if (!state.has(d)) visit(d, stack);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f, []);
  t.same(cycles, [], 'no module imports itself through others');
  const nativeDeps = graph.get(path.join(lib, 'native.ts'))!.map((p) => path.relative(lib, p)).sort();
  t.notOk(nativeDeps.includes('recurrent.ts'), `native.ts imports ${nativeDeps.join(', ')}, not recurrent.ts`);
});

t.test('the command line and the conformance runner stand apart from the library', async (t) => {
  const files = modules(lib);
  const apart = (f: string): string | undefined => ['cli', 'conformance'].find((d) => f.startsWith(path.join(lib, d) + path.sep));
  const wrong: string[] = [];
  for (const f of files) {
    const from = apart(f);
    for (const d of importsOf(f)) {
      const to = apart(d);
      if (to !== undefined && to !== from) wrong.push(`${path.relative(lib, f)} -> ${path.relative(lib, d)}`);
    }
  }
  t.same(wrong, [], 'only lib/cli/ imports lib/cli/, only lib/conformance/ imports lib/conformance/');
  t.ok(fs.existsSync(path.join(lib, 'cli', 'main.ts')), 'the CLI entry is lib/cli/main.ts (package.json bin: dist/cli/main.js)');
  const pkg = JSON.parse(fs.readFileSync(path.join(lib, '..', 'package.json'), 'utf8')) as { bin: Record<string, string> };
  t.equal(pkg.bin.rnnkit, 'dist/cli/main.js', 'the rnnkit bin is the compiled entry');
});
