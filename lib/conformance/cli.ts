#!/usr/bin/env node
// npm run conformance -- DIR: one line per case, then "N passed, M failed"; exit status 0 only when M is 0.
import * as fs from 'node:fs';
import { conformanceDevice, runDirectory } from './runner';

function main(argv: string[]): number {
  const dir = argv[0];
  if (!dir || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: npm run conformance -- DIR\n  Runs every *.json conformance case in DIR.\n' +
      '  RNNKIT_CONFORMANCE_DEVICE=cuda (or cuda:N) runs them on a GPU (a build with npm run build:cuda).\n');
    return dir ? 0 : 2;
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    process.stderr.write(`conformance: ${dir} is not a directory\n`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const device = conformanceDevice();
  if (device) process.stdout.write(`device: ${device} (RNNKIT_CONFORMANCE_DEVICE)\n`);
  runDirectory(dir, (r) => {
    if (r.passed) passed++;
    else failed++;
    process.stdout.write(`${r.passed ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}\n`);
  });
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
