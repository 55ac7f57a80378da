// Types of the ES module entry (esm/index.mjs): the same API as the CommonJS entry (dist/index.d.ts).
export * from '../dist/index.js';
import * as rnnkit from '../dist/index.js';
export default rnnkit;
