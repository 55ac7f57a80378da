// One timing loop for every figure of the harness. Several contenders (rnnkit and ONNX Runtime, or rnnkit's
// synchronous and awaited step) are timed alternately in blocks, so that a slow phase of a shared machine falls on
// all of them alike rather than on whichever ran during it.

/** A call to time: synchronous (its time is the call's) or returning a Promise (its time runs to the resolution). */
export type Timed = () => unknown;

export interface TimedFigure {
  /** Median seconds per call. */
  seconds: number;
  /** Best (lowest) seconds per call. */
  best: number;
  /** Timed calls. */
  calls: number;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Two untimed warm-up calls of each contender, then rounds in which each contender runs for one block (at least one
 * call, about minSeconds / 10 of calls), until every contender has at least `reps` timed calls and minSeconds of
 * them. A synchronous call is not awaited: its figure holds no Promise machinery that it does not itself use.
 */
export async function timeAlternating(fns: Timed[], reps: number, minSeconds: number): Promise<TimedFigure[]> {
  const call = async (fn: Timed): Promise<number> => {
    const t0 = performance.now();
    const r = fn();
    if (isThenable(r)) await r;
    return (performance.now() - t0) / 1000;
  };
  for (const fn of fns) {
    await call(fn);
    await call(fn);
  }
  const times = fns.map(() => [] as number[]);
  const spent = fns.map(() => 0);
  const block = minSeconds / 10;
  const maxCalls = 200000;
  for (;;) {
    for (let i = 0; i < fns.length; i++) {
      const start = performance.now();
      do {
        const s = await call(fns[i]);
        times[i].push(s);
        spent[i] += s;
      } while ((performance.now() - start) / 1000 < block && times[i].length < maxCalls);
    }
    const done = times.every((t, i) => (t.length >= reps && spent[i] >= minSeconds) || t.length >= maxCalls);
    if (done) break;
  }
  return times.map((t) => ({ seconds: median(t), best: t.reduce((a, b) => Math.min(a, b), Infinity), calls: t.length }));
}
