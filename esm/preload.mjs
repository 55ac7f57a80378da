// Loaded by esm/index.mjs before anything else: it require()s the CommonJS build, so that an error while loading it
// (ERR_RNNKIT_NO_BINARY where no native binary fits) is thrown from an ES module, where `import()` reports it as a
// rejection and `try { await import('rnnkit') } catch {}` works. (Thrown from a CommonJS module that an ES module
// imports, Node also reports it as an uncaught exception and exits with status 1.)
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/index.js');
