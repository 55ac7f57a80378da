#!/usr/bin/env node
// An HTTP inference server for a model trained with `rnnkit train` (node:http only, no framework).
//
//   node examples/server/server.js MODEL [--port 8080] [--host 127.0.0.1] [--engine batch|stream] ...
//
// Endpoints (README.md beside this file has the details):
//   POST /predict            {"text": "..."} or {"tokens": [...]}: next-symbol distribution after the sequence
//   GET|POST /generate       generation over Server-Sent Events, one token per event
//   GET /health              status, model, uptime, requests in flight, open streams, memory
// Errors are JSON: { "error": { "code": "...", "message": "..." } } with a 4xx (or 5xx) status.
// SIGTERM / SIGINT drain: stop accepting, finish the requests and streams in flight, exit 0.
'use strict';

const http = require('node:http');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.join(__dirname, '..', '..');
const rnnkit = require(root); // dist/index.js (run `npm install` or `npx tsc -p .` first)
const { native } = require(path.join(root, 'dist', 'native'));
const { CharVocabulary } = require(path.join(root, 'dist', 'data', 'text'));
const { BatchEngine, StreamEngine, CancelledError } = require('./engine');

const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  engine: 'batch',
  bodyLimit: 64 * 1024, // bytes of a request body
  maxTokens: 4096, // symbols of a /predict sequence or a prompt
  maxLength: 2000, // tokens one /generate may ask for
  maxStreams: 4096, // sessions (requests using a model state) at once
  maxQueue: 8192, // requests waiting for the model before 503
  maxBatch: 256, // rows of one forward
  models: 2, // model instances of the batch engine (forwards at once)
  drainTimeout: 30000, // ms a SIGTERM waits for streams before cutting them
};

class HttpError extends Error {
  constructor(status, code, message, extra) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

const bad = (code, message, extra) => new HttpError(400, code, message, extra);

/** `"x" (U+0078)`: readable, and unambiguous for invisible or look-alike characters. */
function describeChar(ch) {
  return `${JSON.stringify(ch)} (U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')})`;
}

/** Load a model file (or a `rnnkit train` output directory) and its character vocabulary, if it has one. */
async function loadModel(file) {
  const model = await rnnkit.load(file); // a model file or the folder `rnnkit train` wrote
  if (!model.vocabSize) throw new Error(`${file}: the server needs a model over token ids (vocabSize); this one takes dense input`);
  const vocabJson = model.metadata && model.metadata.vocabulary;
  const vocab = vocabJson ? CharVocabulary.fromJSON(vocabJson) : null;
  if (vocab && vocab.size !== model.vocabSize)
    throw new Error(`${file}: the vocabulary has ${vocab.size} symbols, the model ${model.vocabSize}`);
  return { model, vocab, file: path.resolve(file) };
}

/**
 * The server for a loaded model (`models`: optional instances of it for the batch engine, which runs one forward
 * on each at once). Returns { server, engine, drain(timeoutMs) }: `server` is a node:http Server,
 * not listening yet; `drain` stops accepting, lets the requests in flight finish and resolves to true (or false
 * when it had to cut streams after timeoutMs).
 */
function createApp({ model, models, vocab, file }, options = {}) {
  const o = { ...DEFAULTS, ...options };
  const engine = o.engine === 'stream' ? new StreamEngine(model, o) : new BatchEngine(models ?? model, o);
  const V = model.vocabSize;
  const probabilities = model.outputActivation === 'softmax';
  const started = Date.now();
  const modelInfo = {
    file,
    vocabSize: V,
    characters: vocab !== null,
    outputActivation: model.outputActivation,
    streamable: engine.streamable,
    layers: model.layerSummaries(),
  };
  modelInfo.params = modelInfo.layers.reduce((a, l) => a + l.params, 0);
  // The SSE event of each symbol, made once.
  const tokenEvents = Array.from({ length: V }, (_, id) => `data: ${JSON.stringify({ token: vocab ? vocab.charOf(id) : id })}\n\n`);
  const symbol = (id) => (vocab ? vocab.charOf(id) : id);

  let inFlight = 0;
  let draining = false;
  let drainDone = null;
  const live = new Set(); // responses in flight, to cut on a drain timeout
  const counters = { requests: 0, errors4xx: 0, errors5xx: 0, streamsAborted: 0 };

  function sendJson(res, status, body, headers) {
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    if (headers) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    if (draining) res.setHeader('Connection', 'close');
    res.end(text);
  }

  function sendError(res, e) {
    if (!(e instanceof HttpError)) {
      process.stderr.write(`server: internal error: ${(e && e.stack) || e}\n`);
      e = new HttpError(500, 'internal', 'internal error');
    }
    if (e.status >= 500) counters.errors5xx++;
    else counters.errors4xx++;
    if (res.headersSent) {
      // An SSE stream that has started: report on the stream.
      res.end(`event: error\ndata: ${JSON.stringify({ error: { code: e.code, message: e.message } })}\n\n`);
      return;
    }
    const headers = e.status === 405 ? { Allow: e.extra.allow } : e.status === 503 ? { 'Retry-After': '1' }
      // A body left unread (too large) must not be taken for the next request on this connection.
      : e.status === 413 ? { Connection: 'close' } : undefined;
    const extra = e.status === 405 ? undefined : e.extra;
    sendJson(res, e.status, { error: { code: e.code, message: e.message, ...extra } }, headers);
  }

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length']);
      if (declared > o.bodyLimit) {
        reject(new HttpError(413, 'payload_too_large', `the body is ${declared} bytes; the limit is ${o.bodyLimit}`));
        return;
      }
      const chunks = [];
      let size = 0;
      let failed = false;
      req.on('data', (c) => {
        if (failed) return;
        size += c.length;
        if (size > o.bodyLimit) {
          failed = true;
          reject(new HttpError(413, 'payload_too_large', `the body is over the limit of ${o.bodyLimit} bytes`));
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (!failed) resolve(Buffer.concat(chunks, size));
      });
      req.on('error', (err) => {
        if (!failed) reject(err);
      });
    });
  }

  async function readJson(req) {
    const body = await readBody(req);
    let value;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw bad('invalid_json', `the body is not valid JSON: ${e.message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw bad('invalid_request', 'the body must be a JSON object');
    return value;
  }

  function checkFields(obj, allowed, where) {
    for (const k of Object.keys(obj))
      if (!allowed.includes(k)) throw bad('invalid_request', `unknown ${where} '${k}' (allowed: ${allowed.join(', ')})`);
  }

  /** Token ids of a text (character model) or an id list; `name` is the field, for messages. */
  function encode(text, tokens, name) {
    if (text !== undefined && tokens !== undefined) throw bad('invalid_request', `give '${name}' or 'tokens', not both`);
    let ids;
    if (text !== undefined) {
      if (typeof text !== 'string') throw bad('invalid_request', `'${name}' must be a string`);
      if (!vocab) throw bad('invalid_request', `this model has no character vocabulary: send 'tokens' (ids below ${V})`);
      if (text.length > o.maxTokens * 2) throw bad('too_long', `'${name}' is longer than ${o.maxTokens} characters`);
      ids = new Int32Array(text.length);
      let n = 0;
      let position = 0;
      for (const ch of text) {
        const id = vocab.idOf(ch);
        if (id !== undefined) ids[n++] = id;
        else if (vocab.unknown === 'replace') ids[n++] = vocab.idOf(vocab.replacement);
        else if (vocab.unknown === 'error')
          throw bad('unknown_character', `character ${describeChar(ch)} at position ${position} is not in the model's vocabulary`, { character: ch, position });
        position++;
      }
      ids = ids.slice(0, n);
    } else if (tokens !== undefined) {
      if (!Array.isArray(tokens)) throw bad('invalid_request', "'tokens' must be an array of integers");
      if (tokens.length > o.maxTokens) throw bad('too_long', `'tokens' has more than ${o.maxTokens} ids`);
      ids = new Int32Array(tokens.length);
      for (let i = 0; i < tokens.length; i++) {
        const t = tokens[i];
        if (!Number.isInteger(t) || t < 0 || t >= V)
          throw bad('invalid_token', `tokens[${i}] = ${JSON.stringify(t)} is not a token id (integers 0 to ${V - 1})`, { index: i });
        ids[i] = t;
      }
    } else {
      throw bad('invalid_request', `give '${name}' (a string) or 'tokens' (an array of ids)`);
    }
    if (ids.length === 0) throw bad('invalid_request', `the ${text !== undefined ? name : 'tokens'} must have at least one symbol`);
    if (ids.length > o.maxTokens) throw bad('too_long', `the sequence has ${ids.length} symbols; the limit is ${o.maxTokens}`);
    return ids;
  }

  function intParam(v, name, min, max, fallback) {
    if (v === undefined) return fallback;
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
      throw bad('invalid_parameter', `'${name}' must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`, { parameter: name });
    return n;
  }
  function numParam(v, name, min, max, fallback, openMin = false) {
    if (v === undefined) return fallback;
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < min || (openMin && n === min) || n > max)
      throw bad('invalid_parameter', `'${name}' must be a number ${openMin ? 'above' : 'from'} ${min} ${openMin ? 'up ' : ''}to ${max}, got ${JSON.stringify(v)}`, { parameter: name });
    return n;
  }

  function probs(scores) {
    if (probabilities) return scores;
    let max = -Infinity;
    for (const s of scores) if (s > max) max = s;
    const p = new Float32Array(scores.length);
    let sum = 0;
    for (let i = 0; i < scores.length; i++) sum += p[i] = Math.exp(scores[i] - max);
    for (let i = 0; i < p.length; i++) p[i] /= sum;
    return p;
  }

  /** The k most likely symbols, most likely first (insertion into a sorted list of k: k is small). */
  function topOf(scores, k) {
    const p = probs(scores);
    const top = [];
    for (let i = 0; i < p.length; i++) {
      if (top.length === k && p[i] <= p[top[k - 1]]) continue;
      let j = top.length < k ? top.length : k - 1;
      while (j > 0 && p[top[j - 1]] < p[i]) j--;
      top.splice(j, 0, i);
      if (top.length > k) top.pop();
    }
    return top.map((id) => ({ token: symbol(id), id, p: p[id] }));
  }

  function admit() {
    if (draining) throw new HttpError(503, 'shutting_down', 'the server is shutting down');
    if (engine.overloaded || engine.sessions >= o.maxStreams)
      throw new HttpError(503, 'overloaded', 'too many requests in progress; retry later');
  }

  async function predict(req, res) {
    const body = await readJson(req);
    checkFields(body, ['text', 'tokens', 'topK', 'perStep'], 'field');
    const ids = encode(body.text, body.tokens, 'text');
    const k = intParam(body.topK, 'topK', 1, V, Math.min(5, V));
    if (body.perStep !== undefined && typeof body.perStep !== 'boolean') throw bad('invalid_parameter', "'perStep' must be a boolean", { parameter: 'perStep' });
    if (body.perStep && ids.length * k > 65536)
      throw bad('too_long', `perStep answers are limited to 65536 entries (steps x topK); this asks for ${ids.length} x ${k}`);
    admit();
    const session = engine.open();
    res.on('close', () => session.close());
    const out = await session.feed(ids, { all: body.perStep === true, keep: false });
    session.close();
    if (out.length % V !== 0) throw new HttpError(500, 'internal', `the model's output does not have ${V} values per step`);
    const last = out.subarray(out.length - V);
    const top = topOf(last, k);
    const result = { length: ids.length, next: top[0], top };
    if (body.perStep) {
      if (out.length === V) result.steps = null; // the model outputs only its last step
      else result.steps = Array.from({ length: ids.length }, (_, t) => ({ input: symbol(ids[t]), top: topOf(out.subarray(t * V, (t + 1) * V), k) }));
    }
    sendJson(res, 200, result);
  }

  function waitWritable(res) {
    return new Promise((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  async function generate(req, res, method) {
    let p;
    if (method === 'POST') {
      p = await readJson(req);
    } else {
      p = {};
      const q = req.url.indexOf('?');
      if (q >= 0)
        for (const [k, v] of new URLSearchParams(req.url.slice(q + 1))) {
          if (k in p) throw bad('invalid_request', `parameter '${k}' is given twice`);
          p[k] = v;
        }
      if (typeof p.tokens === 'string') p.tokens = p.tokens === '' ? [] : p.tokens.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : s));
    }
    checkFields(p, ['prompt', 'tokens', 'length', 'temperature', 'topK', 'topP', 'seed'], 'parameter');
    if (!engine.streamable) throw bad('not_streamable', 'this model reads whole sequences (bidirectional or backwards layers): it cannot generate');
    const length = intParam(p.length, 'length', 1, o.maxLength, 100);
    const temperature = numParam(p.temperature, 'temperature', 0, 100, 1);
    const topK = intParam(p.topK, 'topK', 0, V, 0);
    const topP = numParam(p.topP, 'topP', 0, 1, 1, true);
    const seed = intParam(p.seed, 'seed', 0, 0xffffffff, undefined);
    let prompt = p.prompt;
    if (prompt === undefined && p.tokens === undefined) {
      if (!vocab) throw bad('invalid_request', "give the prompt as 'tokens' (ids)");
      prompt = vocab.idOf('\n') !== undefined ? '\n' : vocab.charOf(0);
    }
    const ids = encode(prompt, p.tokens, 'prompt');
    admit();
    const rng = new rnnkit.SeededRandom(seed);
    const sampling = { temperature, topK, topP, probabilities };
    const session = engine.open();
    let finished = false;
    res.on('close', () => {
      if (!finished) counters.streamsAborted++;
      session.close();
    });
    try {
      let scores = await session.feed(ids, { keep: length > 1 });
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Accel-Buffering', 'no');
      if (draining) res.setHeader('Connection', 'close');
      for (let i = 0; ; i++) {
        const next = native.sampleIndex(scores, sampling, rng.next());
        if (i + 1 === length) {
          finished = true;
          res.end(`${tokenEvents[next]}event: done\ndata: {"length":${length}}\n\n`);
          return;
        }
        if (!res.write(tokenEvents[next])) await waitWritable(res);
        if (res.destroyed) return;
        scores = await session.feed(Int32Array.of(next), { keep: i + 2 < length });
      }
    } catch (e) {
      if (e instanceof CancelledError) return;
      throw e;
    } finally {
      session.close();
    }
  }

  function health(res) {
    const m = process.memoryUsage();
    const s = engine.stats;
    sendJson(res, 200, {
      status: draining ? 'draining' : 'ok',
      uptimeSeconds: (Date.now() - started) / 1000,
      inFlight,
      streams: engine.sessions,
      queued: engine.queued,
      engine: {
        name: engine.name,
        instances: engine.instances ?? 1,
        busy: engine.busy,
        forwards: s.forwards,
        rows: s.rows,
        meanBatch: s.forwards ? s.rows / s.forwards : 0,
        maxBatch: s.maxBatchSeen,
        modelBusySeconds: s.busyMs / 1000,
      },
      requests: { ...counters },
      memory: { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers },
      model: modelInfo,
      backend: rnnkit.backendInfo(),
    });
  }

  const routes = {
    '/predict': { POST: predict },
    '/generate': { GET: (req, res) => generate(req, res, 'GET'), POST: (req, res) => generate(req, res, 'POST') },
    '/health': { GET: (req, res) => health(res) },
  };

  const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    inFlight++;
    counters.requests++;
    live.add(res);
    res.once('close', () => {
      inFlight--;
      live.delete(res);
      if (draining) checkDrained();
    });
    const q = req.url.indexOf('?');
    const pathname = q >= 0 ? req.url.slice(0, q) : req.url;
    const route = routes[pathname];
    let handler;
    try {
      if (!route) throw new HttpError(404, 'not_found', `no endpoint ${pathname} (endpoints: ${Object.keys(routes).join(', ')})`);
      handler = route[req.method];
      if (!handler) throw new HttpError(405, 'method_not_allowed', `${pathname} takes ${Object.keys(route).join(' or ')}`, { allow: Object.keys(route).join(', ') });
      if (draining && pathname !== '/health') throw new HttpError(503, 'shutting_down', 'the server is shutting down');
    } catch (e) {
      sendError(res, e);
      return;
    }
    let p;
    try {
      p = handler(req, res);
    } catch (e) {
      sendError(res, e);
      return;
    }
    if (p && typeof p.then === 'function')
      p.catch((e) => {
        if (res.destroyed || res.writableEnded) return;
        sendError(res, e);
      });
  });
  server.on('clientError', (err, socket) => {
    if (socket.writable && !socket.destroyed)
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' +
        JSON.stringify({ error: { code: 'bad_http', message: err.code || 'malformed request' } }));
    else socket.destroy();
  });

  function checkDrained() {
    if (drainDone && inFlight === 0) {
      server.closeAllConnections();
      drainDone(true);
    }
  }

  function drain(timeoutMs = o.drainTimeout) {
    if (drainDone) return drainDone.promise;
    draining = true;
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    const timer = setTimeout(() => {
      // Streams still running: tell them, and cut them.
      for (const res of live) {
        if (res.headersSent) res.end('event: error\ndata: {"error":{"code":"shutting_down","message":"the server is shutting down"}}\n\n');
        res.destroy();
      }
      server.closeAllConnections();
      resolve(false);
    }, timeoutMs);
    timer.unref();
    drainDone = (ok) => {
      clearTimeout(timer);
      resolve(ok);
    };
    drainDone.promise = promise;
    server.close();
    server.closeIdleConnections();
    checkDrained();
    return promise.then(async (ok) => {
      await engine.idle();
      return ok;
    });
  }

  return { server, engine, drain, stats: () => ({ inFlight, sessions: engine.sessions }) };
}

const USAGE = `usage: node examples/server/server.js MODEL [options]

MODEL: a model.safetensors written by 'rnnkit train' (or its directory); also RNNKIT_MODEL.

options:
  --host HOST            address to listen on (default 127.0.0.1; HOST)
  --port N               port, 0 for any free one (default 8080; PORT)
  --engine batch|stream  batch: one forward for many clients' steps (default); stream: one native stream each
  --models N             batch engine: instances of the model, each running its own forward (default 2)
  --max-batch N          rows of one batched forward (default ${DEFAULTS.maxBatch})
  --max-streams N        requests holding a model state at once before 503 (default ${DEFAULTS.maxStreams})
  --max-tokens N         symbols of a sequence or prompt (default ${DEFAULTS.maxTokens})
  --max-length N         tokens one /generate may ask for (default ${DEFAULTS.maxLength})
  --body-limit BYTES     request body limit (default ${DEFAULTS.bodyLimit})
  --drain-timeout MS     how long SIGTERM waits for streams (default ${DEFAULTS.drainTimeout})
  --threads N            native thread pool size (default 1, or RNNKIT_THREADS): with small batches and several
                         model instances, forwards side by side on one thread each serve more than one on all cores
`;

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, engine: { type: 'string' },
        'max-batch': { type: 'string' }, models: { type: 'string' }, 'max-streams': { type: 'string' },
        'max-tokens': { type: 'string' }, 'max-length': { type: 'string' }, 'body-limit': { type: 'string' },
        'drain-timeout': { type: 'string' }, threads: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`server: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const file = values.model ?? positionals[0] ?? process.env.RNNKIT_MODEL;
  if (!file || positionals.length > 1) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const int = (v, name, min, fallback) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      process.stderr.write(`server: --${name} must be an integer >= ${min}, got '${v}'\n`);
      process.exit(2);
    }
    return n;
  };
  const engineName = values.engine ?? 'batch';
  if (engineName !== 'batch' && engineName !== 'stream') {
    process.stderr.write(`server: --engine must be batch or stream, got '${engineName}'\n`);
    process.exit(2);
  }
  if (values.threads !== undefined) rnnkit.setThreads(int(values.threads, 'threads', 1));
  else if (process.env.RNNKIT_THREADS === undefined) rnnkit.setThreads(1);
  const options = {
    engine: engineName,
    maxBatch: int(values['max-batch'], 'max-batch', 1, DEFAULTS.maxBatch),
    maxStreams: int(values['max-streams'], 'max-streams', 1, DEFAULTS.maxStreams),
    maxTokens: int(values['max-tokens'], 'max-tokens', 1, DEFAULTS.maxTokens),
    maxLength: int(values['max-length'], 'max-length', 1, DEFAULTS.maxLength),
    bodyLimit: int(values['body-limit'], 'body-limit', 1, DEFAULTS.bodyLimit),
    drainTimeout: int(values['drain-timeout'], 'drain-timeout', 0, DEFAULTS.drainTimeout),
  };
  const host = values.host ?? process.env.HOST ?? DEFAULTS.host;
  const port = int(values.port ?? process.env.PORT, 'port', 0, DEFAULTS.port);

  const instances = int(values.models, 'models', 1, DEFAULTS.models);
  let loaded;
  try {
    loaded = await loadModel(file);
    loaded.models = [loaded.model];
    for (let i = 1; i < instances; i++) loaded.models.push((await loadModel(file)).model);
  } catch (e) {
    process.stderr.write(`server: cannot load ${file}: ${e.message}\n`);
    process.exit(1);
  }
  const app = createApp(loaded, options);
  app.server.listen(port, host, () => {
    const a = app.server.address();
    process.stdout.write(JSON.stringify({ listening: `http://${a.address}:${a.port}`, host: a.address, port: a.port, pid: process.pid, engine: app.engine.name }) + '\n');
  });
  app.server.on('error', (e) => {
    process.stderr.write(`server: ${e.message}\n`);
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`server: ${signal}: draining ${app.stats().inFlight} request(s) in flight\n`);
    app.drain(options.drainTimeout).then((clean) => {
      for (const m of loaded.models) m.dispose();
      process.stderr.write(clean ? 'server: drained, exiting\n' : 'server: drain timed out, streams cut\n');
      process.exit(clean ? 0 : 1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

module.exports = { createApp, loadModel, DEFAULTS };

if (require.main === module) main(process.argv.slice(2));
