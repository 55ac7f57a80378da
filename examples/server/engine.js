// Inference engines of the example server: they turn many clients' requests ("feed these tokens to my state, give me
// the scores") into calls on one model, which runs one native call at a time.
//
// BatchEngine (the default) keeps each client's recurrent state in JavaScript (Float32Arrays of a few KiB) and runs
// the pending work of all clients as one batched forward: single steps of every generating client together (batch B,
// time 1), prompts and whole sequences together (batch B, time T, every row feeding T tokens). The state of row b
// is gathered into h0/c0 before the call and scattered back from hn/cn after it (`model.predictWithState`). While one
// forward runs on the thread pool, the main thread answers the previous batch and queues the next one, so the model is
// never idle while work is waiting, and a batch takes whatever arrived during the previous one (continuous batching,
// no added delay).
//
// StreamEngine is the simple baseline: one native `model.stream()` per client and a FIFO of single calls.
'use strict';

class CancelledError extends Error {
  constructor() {
    super('the request was cancelled');
    this.code = 'cancelled';
  }
}

/** The recurrent stages of a model: what its state looks like, and whether it can be fed step by step. */
function describeState(model) {
  const blocks = []; // per stage: rows per batch row (layers * directions), hidden size, has a cell state
  let streamable = true;
  for (const l of model.layers) {
    if (l.kind !== 'recurrent') continue;
    const directions = l.bidirectional ? 2 : 1;
    blocks.push({ ld: (l.numLayers ?? 1) * directions, hidden: l.units, cell: l.cell === 'lstm' });
    if (l.bidirectional || l.goBackwards) streamable = false;
  }
  const hPerRow = blocks.reduce((a, b) => a + b.ld * b.hidden, 0);
  const cPerRow = blocks.filter((b) => b.cell).reduce((a, b) => a + b.ld * b.hidden, 0);
  return { blocks, hPerRow, cPerRow, streamable };
}

/**
 * Copy between one row's state (its stages' [ld, H] blocks, one after another) and row `b` of a batch state (each
 * stage's [ld, B, H], one after another). `toBatch` gathers, otherwise scatters.
 */
function copyRowState(blocks, cellOnly, row, batch, b, B, toBatch) {
  let rowOff = 0;
  let batchOff = 0;
  for (const blk of blocks) {
    if (cellOnly && !blk.cell) continue;
    const H = blk.hidden;
    for (let k = 0; k < blk.ld; k++) {
      const src = rowOff + k * H;
      const dst = batchOff + (k * B + b) * H;
      if (toBatch) batch.set(row.subarray(src, src + H), dst);
      else row.set(batch.subarray(dst, dst + H), src);
    }
    rowOff += blk.ld * H;
    batchOff += blk.ld * B * H;
  }
}

class BatchEngine {
  #idleModels; // model instances not running a forward
  #models;
  #state;
  #maxBatch;
  #maxRowSteps;
  #chunk;
  #maxQueue;
  #decode = []; // rows with one token left: single steps
  #prefill = []; // rows with more: prompts and whole sequences
  #running = 0; // forwards in flight (one per model instance at most)
  #scheduled = false;
  #preferDecode = true;
  #sessions = 0;
  #idleWaiters = [];
  stats = { forwards: 0, rows: 0, rowSteps: 0, maxBatchSeen: 0, busyMs: 0 };

  /**
   * @param models a loaded Sequential over token ids, or several instances of the same model (loaded from the same
   *   file): each runs its own forward, concurrently with the others
   * @param options maxBatch: rows per forward (256); maxRowSteps: batch x time of a prompt pass (4096);
   *   chunk: longest time span of one pass for streamable models (128); maxQueue: waiting requests before refusing (8192)
   */
  constructor(models, options = {}) {
    this.#models = Array.isArray(models) ? models : [models];
    this.#idleModels = [...this.#models];
    this.#state = describeState(this.#models[0]);
    this.#maxBatch = options.maxBatch ?? 256;
    this.#maxRowSteps = options.maxRowSteps ?? 4096;
    this.#chunk = options.chunk ?? 128;
    this.#maxQueue = options.maxQueue ?? 8192;
  }

  get name() {
    return 'batch';
  }
  get streamable() {
    return this.#state.streamable;
  }
  /** Open sessions (client states). */
  get sessions() {
    return this.#sessions;
  }
  /** Requests waiting for a forward. */
  get queued() {
    return this.#decode.length + this.#prefill.length;
  }
  get busy() {
    return this.#running > 0;
  }
  get overloaded() {
    return this.queued >= this.#maxQueue;
  }
  get instances() {
    return this.#models.length;
  }

  open() {
    this.#sessions++;
    return new BatchSession(this);
  }

  /** Resolves when nothing is queued or running. */
  idle() {
    if (this.#running === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  _closed() {
    this.#sessions--;
  }

  _enqueue(row) {
    (row.ids.length - row.pos === 1 ? this.#decode : this.#prefill).push(row);
    this.#kick();
  }

  _cancel(row) {
    for (const q of [this.#decode, this.#prefill]) {
      const i = q.indexOf(row);
      if (i >= 0) {
        q.splice(i, 1);
        return true;
      }
    }
    return false; // running now: its result is dropped when it comes back
  }

  #kick() {
    if (this.#idleModels.length === 0 || this.#scheduled || this.queued === 0) return;
    // Wait for the end of this turn of the event loop, so requests read in the same poll phase share the forward.
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#startNext();
    });
  }

  #take() {
    const useDecode = this.#decode.length > 0 && (this.#preferDecode || this.#prefill.length === 0);
    this.#preferDecode = !useDecode; // alternate when both kinds wait, so neither starves
    if (useDecode) return { rows: this.#decode.splice(0, this.#maxBatch), T: 1 };
    // Every row of a pass feeds the same number of tokens T (no padding): the first waiting row sets T (at most
    // `chunk` tokens of it for a streamable model, all of it otherwise), and the rows behind it that have at least
    // T tokens left (exactly T for a model that must see whole sequences) join. Rows with more left come back.
    const first = this.#prefill[0];
    const firstLeft = first.ids.length - first.pos;
    const streamable = this.#state.streamable;
    const T = streamable ? Math.min(firstLeft, this.#chunk) : firstLeft;
    const limit = Math.max(1, Math.min(this.#maxBatch, Math.floor(this.#maxRowSteps / T)));
    const rows = [];
    const rest = [];
    for (const r of this.#prefill) {
      const left = r.ids.length - r.pos;
      if (rows.length < limit && (streamable ? left >= T : left === T)) rows.push(r);
      else rest.push(r);
    }
    this.#prefill = rest;
    return { rows, T };
  }

  #startNext() {
    if (this.queued === 0 && this.#running === 0) {
      const waiters = this.#idleWaiters.splice(0);
      for (const w of waiters) w();
      return;
    }
    while (this.queued > 0 && this.#idleModels.length > 0) {
      const model = this.#idleModels.pop();
      const { rows, T } = this.#take();
      this.#running++;
      const started = performance.now();
      let call;
      try {
        call = this.#forward(model, rows, T);
      } catch (e) {
        call = Promise.reject(e);
      }
      call.then(
        (r) => this.#finish(model, rows, T, r, started),
        (e) => {
          this.#running--;
          this.#idleModels.push(model);
          this.#startNext();
          for (const row of rows) if (!row.cancelled) row.reject(e);
        },
      );
    }
  }

  #forward(model, rows, T) {
    const B = rows.length;
    const { hPerRow, cPerRow, blocks } = this.#state;
    const tokens = new Int32Array(B * T);
    let h;
    let c;
    for (let b = 0; b < B; b++) {
      const r = rows[b];
      tokens.set(r.ids.subarray(r.pos, r.pos + T), b * T);
      const s = r.session;
      if (s.h) {
        if (!h) {
          h = new Float32Array(hPerRow * B);
          if (cPerRow) c = new Float32Array(cPerRow * B);
        }
        copyRowState(blocks, false, s.h, h, b, B, true);
        if (c) copyRowState(blocks, true, s.c, c, b, B, true);
      }
    }
    return model.predictWithState({ data: tokens, shape: [B, T] }, h ? { h, c } : undefined);
  }

  #finish(model, rows, T, r, started) {
    const B = rows.length;
    this.stats.forwards++;
    this.stats.rows += B;
    this.stats.rowSteps += B * T;
    this.stats.busyMs += performance.now() - started;
    if (B > this.stats.maxBatchSeen) this.stats.maxBatchSeen = B;
    const { output } = r;
    const sequence = output.shape.length === 3;
    const F = output.shape[output.shape.length - 1];
    const { hPerRow, cPerRow, blocks } = this.#state;
    const done = [];
    for (let b = 0; b < B; b++) {
      const row = rows[b];
      if (row.cancelled) continue;
      const n = T;
      if (row.all && !row.out) row.out = new Float32Array((sequence ? row.ids.length : 1) * F);
      if (sequence && row.all) {
        const src = output.data.subarray(b * T * F, (b * T + n) * F);
        row.out.set(src, row.pos * F);
      }
      row.pos += n;
      const finished = row.pos === row.ids.length;
      if (finished && !row.session.keep) {
        row.session.spent = true; // its state is not kept: no feed may follow
      } else {
        const s = row.session;
        if (!s.h) {
          s.h = new Float32Array(hPerRow);
          if (cPerRow) s.c = new Float32Array(cPerRow);
        }
        copyRowState(blocks, false, s.h, r.h, b, B, false);
        if (cPerRow) copyRowState(blocks, true, s.c, r.c, b, B, false);
      }
      if (!finished) {
        (row.ids.length - row.pos === 1 ? this.#decode : this.#prefill).push(row);
        continue;
      }
      if (row.all && !sequence) row.out.set(output.data.subarray(b * F, (b + 1) * F));
      if (!row.all) {
        // The scores of the row's last step (a copy: the batch's output buffer is dropped).
        const off = sequence ? (b * T + n - 1) * F : b * F;
        row.out = output.data.slice(off, off + F);
      }
      done.push(row);
    }
    // Start the next forward before answering this batch: the model computes while this thread writes responses.
    this.#running--;
    this.#idleModels.push(model);
    this.#startNext();
    for (const row of done) row.resolve(row.out);
  }
}

class BatchSession {
  #engine;
  #row = null;
  #closed = false;
  h = null; // this client's recurrent state (null: zero)
  c = null;
  keep = true;
  spent = false;

  constructor(engine) {
    this.#engine = engine;
  }

  /**
   * Feed token ids to this session's state. Resolves to the scores of the last step ([F]) or, with `all`, of every
   * step ([ids.length * F]). `keep: false` says no more feeds follow, so the state after it is not stored.
   */
  feed(ids, { all = false, keep = true } = {}) {
    if (this.#closed) return Promise.reject(new CancelledError());
    if (this.#row) return Promise.reject(new Error('one feed at a time per session'));
    if (this.spent) return Promise.reject(new Error('a feed with keep: false was the last one of this session'));
    if (!(ids instanceof Int32Array) || ids.length === 0) return Promise.reject(new TypeError('feed() takes a non-empty Int32Array'));
    this.keep = keep;
    return new Promise((resolve, reject) => {
      const row = {
        session: this, ids, pos: 0, all, cancelled: false, out: null,
        resolve: (v) => { this.#row = null; resolve(v); },
        reject: (e) => { this.#row = null; reject(e); },
      };
      this.#row = row;
      this.#engine._enqueue(row);
    });
  }

  /** Free the state; a pending feed rejects with a CancelledError. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.h = null;
    this.c = null;
    const row = this.#row;
    if (row) {
      row.cancelled = true;
      this.#engine._cancel(row);
      row.reject(new CancelledError());
    }
    this.#engine._closed();
  }
}

/** One native stream per client, calls in a FIFO (the model runs one call at a time). */
class StreamEngine {
  #model;
  #state;
  #queue = [];
  #running = false;
  #sessions = 0;
  #maxQueue;
  #idleWaiters = [];
  stats = { forwards: 0, rows: 0, rowSteps: 0, maxBatchSeen: 1, busyMs: 0 };

  constructor(model, options = {}) {
    this.#model = model;
    this.#state = describeState(model);
    this.#maxQueue = options.maxQueue ?? 8192;
  }
  get name() {
    return 'stream';
  }
  get streamable() {
    return this.#state.streamable;
  }
  get sessions() {
    return this.#sessions;
  }
  get queued() {
    return this.#queue.length;
  }
  get busy() {
    return this.#running;
  }
  get overloaded() {
    return this.queued >= this.#maxQueue;
  }
  idle() {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
  open() {
    this.#sessions++;
    const engine = this;
    const model = this.#model;
    // Made (and disposed) from the queue: both are refused while the network runs a call.
    let stream = null;
    let closed = false;
    let pending = null;
    return {
      feed(ids, { all = false } = {}) {
        if (closed) return Promise.reject(new CancelledError());
        return new Promise((resolve, reject) => {
          pending = {
            run: () => {
              stream ??= model.stream();
              return stream.step(ids);
            },
            all, resolve, reject, cancelled: false, n: ids.length,
          };
          engine.#push(pending);
        });
      },
      close() {
        if (closed) return;
        closed = true;
        engine.#sessions--;
        if (pending && !pending.cancelled) {
          pending.cancelled = true;
          const i = engine.#queue.indexOf(pending);
          if (i >= 0) engine.#queue.splice(i, 1);
          pending.reject(new CancelledError());
        }
        engine.#push({ run: async () => stream?.dispose(), resolve() {}, reject() {}, cancelled: false, n: 0 });
      },
    };
  }
  #push(job) {
    this.#queue.push(job);
    if (!this.#running) this.#pump();
  }
  async #pump() {
    this.#running = true;
    while (this.#queue.length > 0) {
      const job = this.#queue.shift();
      const started = performance.now();
      try {
        const out = await job.run();
        if (job.n > 0) {
          this.stats.forwards++;
          this.stats.rows++;
          this.stats.rowSteps += job.n;
          this.stats.busyMs += performance.now() - started;
        }
        if (job.cancelled) continue;
        if (!out) {
          job.resolve();
          continue;
        }
        const F = out.shape[out.shape.length - 1];
        job.resolve(job.all ? out.data : out.data.slice(out.data.length - F));
      } catch (e) {
        if (!job.cancelled) job.reject(e);
      }
    }
    this.#running = false;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

module.exports = { BatchEngine, StreamEngine, CancelledError, describeState, copyRowState };
