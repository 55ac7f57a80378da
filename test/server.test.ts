// The example inference server (examples/server), run as a child process on 127.0.0.1: every endpoint, validation
// errors as 4xx JSON, SSE framing, answers equal to the model run in-process (also under concurrent, batched load),
// a client that disconnects mid-stream frees its state, and SIGTERM drains the streams in flight and exits 0.
// The server loads the compiled package from dist/ (run `npx tsc -p .` first).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import * as rk from '../lib/index';
import { CharVocabulary } from '../lib/data/text';

const serverPath = path.join(__dirname, '..', 'examples', 'server', 'server.js');
const distBuilt = fs.existsSync(path.join(__dirname, '..', 'dist', 'index.js'));
const skip = distBuilt ? false : 'dist/index.js is missing: run `npx tsc -p .` first';

const TEXT = 'the quick brown fox jumps over the lazy dog.\nTHE END, or is it?\n';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-server-'));
const modelFile = path.join(dir, 'model.safetensors');
const vocab = CharVocabulary.fromText(TEXT);

async function makeModel(): Promise<void> {
  const m = rk.sequential({
    vocabSize: vocab.size,
    seed: 7,
    layers: [rk.layers.lstm({ units: 24, numLayers: 2, returnSequences: true }), rk.layers.dense({ units: vocab.size, activation: 'softmax' })],
  });
  m.metadata = { vocabulary: vocab.toJSON() };
  await m.save(modelFile);
  m.dispose();
}

interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  stderr: () => string;
}

function startServer(args: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [serverPath, modelFile, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, port: JSON.parse(out.slice(0, nl)).port, exited, stderr: () => err });
    });
    exited.then((code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function request(port: number, method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        const ct = res.headers['content-type'] ?? '';
        resolve({ status: res.statusCode as number, headers: res.headers, body: text, json: ct.startsWith('application/json') ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const post = (port: number, p: string, body: unknown): Promise<Reply> => request(port, 'POST', p, typeof body === 'string' ? body : JSON.stringify(body), { 'Content-Type': 'application/json' });

/** SSE events of a body: [{event, data}]; throws on a framing error. */
function events(body: string): { event: string; data: any }[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (!body.endsWith('\n\n')) throw new Error(`the stream does not end with a blank line: ${JSON.stringify(body.slice(-40))}`);
  return body
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
        else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
      }
      return { event, data: JSON.parse(data) };
    });
}

/** The tokens of a generation stream: data events of {"token"}, then one 'done' event with the length. */
function tokensOf(body: string): string[] {
  const ev = events(body);
  const done = ev.pop();
  if (done?.event !== 'done' || done.data.length !== ev.length) throw new Error(`no done event with the length at the end: ${JSON.stringify(done)}`);
  for (const e of ev)
    if (e.event !== 'message' || Object.keys(e.data).join() !== 'token') throw new Error(`not a token event: ${JSON.stringify(e)}`);
  return ev.map((e) => e.data.token);
}

let model: rk.Sequential;
let server: Server;

t.before(async () => {
  if (skip) return;
  await makeModel();
  model = await rk.load(modelFile);
  server = await startServer(['--max-length', '100000']);
});

t.teardown(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The model's next-symbol probabilities after `text`, computed in this process. */
function lastProbs(text: string): Float32Array {
  const ids = vocab.encode(text);
  const out = model.predictSync({ data: ids, shape: [1, ids.length] });
  return out.data.slice(out.data.length - vocab.size);
}

t.test('GET /health: status, model, uptime, in-flight requests, streams, memory', { skip }, async (t) => {
  const r = await request(server.port, 'GET', '/health');
  t.equal(r.status, 200);
  t.equal(r.json.status, 'ok');
  t.equal(r.json.model.vocabSize, vocab.size);
  t.equal(r.json.model.characters, true);
  t.ok(r.json.uptimeSeconds >= 0);
  t.equal(r.json.inFlight, 1, 'this request is in flight');
  t.equal(r.json.streams, 0);
  t.ok(r.json.memory.rssBytes > 1e6);
});

t.test('POST /predict: the final-step distribution, per-step distributions, tokens input', { skip }, async (t) => {
  const r = await post(server.port, '/predict', { text: 'the lazy' });
  t.equal(r.status, 200);
  t.equal(r.json.length, 8);
  t.equal(r.json.top.length, 5);
  t.same(r.json.next, r.json.top[0]);
  const p = lastProbs('the lazy');
  const argmax = p.indexOf(Math.max(...p));
  t.equal(r.json.next.id, argmax, 'the most likely next symbol');
  t.equal(r.json.next.token, vocab.charOf(argmax));
  for (const e of r.json.top) t.ok(Math.abs(e.p - p[e.id]) < 1e-5, `p(${JSON.stringify(e.token)}) as in-process`);
  for (let i = 1; i < 5; i++) t.ok(r.json.top[i - 1].p >= r.json.top[i].p, 'sorted');

  const steps = await post(server.port, '/predict', { text: 'fox', perStep: true, topK: 2 });
  t.equal(steps.status, 200);
  t.equal(steps.json.steps.length, 3);
  t.same(steps.json.steps.map((s: { input: string }) => s.input), ['f', 'o', 'x']);
  t.equal(steps.json.steps[0].top.length, 2);
  const p1 = lastProbs('f');
  t.ok(Math.abs(steps.json.steps[0].top[0].p - Math.max(...p1)) < 1e-5, 'step 0 is the distribution after "f"');
  t.same(steps.json.steps[2].top, steps.json.top, 'the last step is the final distribution');

  const tok = await post(server.port, '/predict', { tokens: Array.from(vocab.encode('the lazy')) });
  t.equal(tok.status, 200);
  t.same(tok.json.top, r.json.top, 'tokens give what the text gives');
});

t.test('concurrent /predict requests are batched and each gets its own answer', { skip }, async (t) => {
  // Lengths from 1 to 300 (longer than one 128-step pass of the batch engine, so the state is carried over passes).
  const texts = Array.from({ length: 24 }, (_, i) => TEXT.repeat(6).slice(i, i + 1 + ((i * 37) % 300)));
  // Whether requests share a forward depends on how their bytes arrive in the event loop's turns: on a loaded
  // machine one burst can be read a request per turn. A few bursts make at least one shared forward all but certain;
  // every answer of every burst is checked.
  let h: Reply | undefined;
  for (let burst = 0; burst < 4 && !(h && h.json.engine.maxBatch > 1); burst++) {
    const replies = await Promise.all(texts.map((text) => post(server.port, '/predict', { text, topK: 3 })));
    replies.forEach((r, i) => {
      t.equal(r.status, 200);
      const p = lastProbs(texts[i]);
      for (const e of r.json.top) t.ok(Math.abs(e.p - p[e.id]) < 1e-4, `text ${i}: p(${JSON.stringify(e.token)}) ${e.p} vs ${p[e.id]}`);
    });
    h = await request(server.port, 'GET', '/health');
  }
  t.ok(h!.json.engine.maxBatch > 1, `batches of several rows ran (max ${h!.json.engine.maxBatch})`);
});

t.test('validation: 4xx with a JSON error, the server keeps serving', { skip }, async (t) => {
  const cases: [string, () => Promise<Reply>, number, string][] = [
    ['unknown character', () => post(server.port, '/predict', { text: 'héllo' }), 400, 'unknown_character'],
    ['invalid JSON', () => post(server.port, '/predict', '{"text": '), 400, 'invalid_json'],
    ['not an object', () => post(server.port, '/predict', '[1,2]'), 400, 'invalid_request'],
    ['no text', () => post(server.port, '/predict', {}), 400, 'invalid_request'],
    ['text and tokens', () => post(server.port, '/predict', { text: 'a', tokens: [1] }), 400, 'invalid_request'],
    ['empty text', () => post(server.port, '/predict', { text: '' }), 400, 'invalid_request'],
    ['text not a string', () => post(server.port, '/predict', { text: 5 }), 400, 'invalid_request'],
    ['token out of range', () => post(server.port, '/predict', { tokens: [0, vocab.size] }), 400, 'invalid_token'],
    ['token not an integer', () => post(server.port, '/predict', { tokens: [0.5] }), 400, 'invalid_token'],
    ['unknown field', () => post(server.port, '/predict', { text: 'a', top: 3 }), 400, 'invalid_request'],
    ['bad topK', () => post(server.port, '/predict', { text: 'a', topK: 0 }), 400, 'invalid_parameter'],
    ['body over 64 KiB', () => post(server.port, '/predict', { text: 'a'.repeat(70000) }), 413, 'payload_too_large'],
    ['unknown path', () => request(server.port, 'GET', '/nope'), 404, 'not_found'],
    ['wrong method', () => request(server.port, 'GET', '/predict'), 405, 'method_not_allowed'],
    ['length 0', () => request(server.port, 'GET', '/generate?length=0'), 400, 'invalid_parameter'],
    ['length not a number', () => request(server.port, 'GET', '/generate?length=ten'), 400, 'invalid_parameter'],
    ['length over the limit', () => request(server.port, 'GET', '/generate?length=100001'), 400, 'invalid_parameter'],
    ['negative temperature', () => request(server.port, 'GET', '/generate?temperature=-1'), 400, 'invalid_parameter'],
    ['topK past the vocabulary', () => request(server.port, 'GET', `/generate?topK=${vocab.size + 1}`), 400, 'invalid_parameter'],
    ['topP 0', () => request(server.port, 'GET', '/generate?topP=0'), 400, 'invalid_parameter'],
    ['seed negative', () => request(server.port, 'GET', '/generate?seed=-1'), 400, 'invalid_parameter'],
    ['unknown parameter', () => request(server.port, 'GET', '/generate?lenght=5'), 400, 'invalid_request'],
    ['parameter twice', () => request(server.port, 'GET', '/generate?length=5&length=6'), 400, 'invalid_request'],
    ['unknown prompt character', () => request(server.port, 'GET', `/generate?prompt=${encodeURIComponent('tschüss')}`), 400, 'unknown_character'],
    ['POST /generate bad body', () => post(server.port, '/generate', { length: 'x' }), 400, 'invalid_parameter'],
  ];
  for (const [name, call, status, code] of cases) {
    const r = await call();
    t.equal(r.status, status, `${name}: status ${status}`);
    t.equal(r.json?.error?.code, code, `${name}: code ${code}`);
    t.type(r.json?.error?.message, 'string', `${name}: a message`);
  }
  const u = await post(server.port, '/predict', { text: 'oh→' });
  t.equal(u.json.error.character, '→', 'the unknown character is named');
  t.match(u.json.error.message, /U\+2192/);
  t.equal(u.json.error.position, 2);
  const h = await request(server.port, 'GET', '/health');
  t.equal(h.status, 200, 'still serving');
});

t.test('GET /generate: one SSE event per token, seeded, equal to in-process generation', { skip }, async (t) => {
  const r = await request(server.port, 'GET', '/generate?length=40&prompt=the%20&seed=5&temperature=0.9&topK=10');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/event-stream/);
  const tokens = tokensOf(r.body);
  t.equal(tokens.length, 40, 'length events');
  t.ok(tokens.every((tok) => vocab.idOf(tok) !== undefined), 'each token is one symbol of the vocabulary');
  const again = await request(server.port, 'GET', '/generate?length=40&prompt=the%20&seed=5&temperature=0.9&topK=10');
  t.same(tokensOf(again.body), tokens, 'the same seed gives the same tokens');

  const greedy = await request(server.port, 'GET', '/generate?length=60&prompt=the%20quick&temperature=0');
  const expected = await model.generate({ prompt: vocab.encode('the quick'), length: 60, temperature: 0 });
  t.equal(tokensOf(greedy.body).join(''), vocab.decode(expected), 'greedy generation equals model.generate');

  const p = await post(server.port, '/generate', { tokens: Array.from(vocab.encode('the quick')), length: 60, temperature: 0 });
  t.equal(tokensOf(p.body).join(''), vocab.decode(expected), 'POST with tokens: the same');
});

t.test('concurrent generations are batched, each with its own state', { skip }, async (t) => {
  const urls = Array.from({ length: 16 }, (_, i) => `/generate?length=${20 + i * 7}&prompt=${encodeURIComponent(TEXT.slice(i, i + 1 + i * 3))}&seed=${i}`);
  const one = [];
  for (const u of urls) one.push(tokensOf((await request(server.port, 'GET', u)).body));
  const all = await Promise.all(urls.map((u) => request(server.port, 'GET', u)));
  all.forEach((r, i) => t.same(tokensOf(r.body), one[i], `stream ${i}: the same tokens alone and among others`));
  const h = await request(server.port, 'GET', '/health');
  t.equal(h.json.streams, 0, 'no stream state left');
});

t.test('a client that disconnects mid-stream frees its state', { skip }, async (t) => {
  const before = (await request(server.port, 'GET', '/health')).json.requests.streamsAborted;
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: server.port, path: '/generate?length=100000&prompt=a', agent: false }, (res) => {
      res.once('data', async () => {
        const h = await request(server.port, 'GET', '/health');
        t.equal(h.json.streams, 1, 'the stream holds a state');
        req.destroy();
        resolve();
      });
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
  let h: Reply | undefined;
  for (let i = 0; i < 100; i++) {
    h = await request(server.port, 'GET', '/health');
    if (h.json.streams === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(h?.json.streams, 0, 'the state is freed');
  t.equal(h?.json.requests.streamsAborted, before + 1, 'counted as aborted');
  t.equal(h?.json.inFlight, 1, 'only the health request is in flight');
});

t.test('--engine stream (one native stream per client) gives the same answers', { skip }, async (t) => {
  const s = await startServer(['--engine', 'stream']);
  const prompts = ['the ', 'fox', 'THE END', 'is it', 'lazy dog.'];
  const gens = await Promise.all(prompts.map((p) => request(s.port, 'GET', `/generate?length=30&temperature=0&prompt=${encodeURIComponent(p)}`)));
  for (let i = 0; i < prompts.length; i++) {
    const expected = await model.generate({ prompt: vocab.encode(prompts[i]), length: 30, temperature: 0 });
    t.equal(tokensOf(gens[i].body).join(''), vocab.decode(expected), `greedy generation after ${JSON.stringify(prompts[i])}`);
  }
  const preds = await Promise.all(prompts.map((text) => post(s.port, '/predict', { text })));
  preds.forEach((r, i) => {
    const p = lastProbs(prompts[i]);
    t.ok(r.json.top.every((e: { id: number; p: number }) => Math.abs(e.p - p[e.id]) < 1e-5), `predict ${JSON.stringify(prompts[i])}`);
  });
  const h = await request(s.port, 'GET', '/health');
  t.equal(h.json.engine.name, 'stream');
  t.equal(h.json.streams, 0, 'every stream disposed');
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
});

t.test('SIGTERM drains: streams in flight finish, new connections are refused, exit 0', { skip }, async (t) => {
  const s = await startServer(['--max-length', '100000']);
  const length = 3000;
  let probe: Promise<void> = Promise.resolve();
  const body = await new Promise<string>((resolve, reject) => {
    let text = '';
    let signalled = false;
    const req = http.get({ host: '127.0.0.1', port: s.port, path: `/generate?length=${length}&prompt=a&seed=1`, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c) => {
        text += c;
        if (signalled) return;
        signalled = true;
        s.child.kill('SIGTERM');
        // Once the listening socket is closed, a new connection is refused (one that got in first sees 'draining').
        probe = new Promise<void>((r) => setTimeout(r, 100)).then(() =>
          request(s.port, 'GET', '/health').then(
            (r) => t.equal(r.json?.status, 'draining', 'a request that still got through sees the drain'),
            (e) => t.equal(e.code, 'ECONNREFUSED', 'new connections are refused'),
          ),
        );
      });
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
  });
  await probe;
  t.equal(tokensOf(body).length, length, 'the stream in flight ran to its end');
  t.equal(await s.exited, 0, 'exit status 0');
  t.match(s.stderr(), /drained/);
});

t.test('SIGTERM with nothing in flight exits at once with 0', { skip }, async (t) => {
  const s = await startServer();
  t.equal((await request(s.port, 'GET', '/health')).status, 200);
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
});
