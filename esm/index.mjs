// The ES module entry of rnnkit (package.json "exports" -> "import"). It re-exports the CommonJS build in dist/, so
// `import` and `require` share one instance of the package and of its native addon (no dual-package hazard); Node
// finds the names of the CommonJS exports by reading dist/index.js, so every export of lib/index.ts is here too.
import './preload.mjs';
export * from '../dist/index.js';
export { default } from '../dist/index.js';
