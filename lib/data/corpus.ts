// The text `rnnkit train` learns when no --data is given: rnnkit's own documentation and TypeScript sources,
// which ship in the package and which the project may redistribute.
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

function filesUnder(dir: string, ext: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p, ext);
    return e.name.endsWith(ext) ? [p] : [];
  }).sort();
}

export function defaultCorpus(): string {
  const files = [path.join(ROOT, 'README.md'), ...filesUnder(path.join(ROOT, 'docs'), '.md'), ...filesUnder(path.join(ROOT, 'lib'), '.ts')];
  const text = files.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).join('\n\n');
  if (text.length < 10000) throw new Error('the default corpus is missing from this installation; pass --data FILE');
  return text;
}
