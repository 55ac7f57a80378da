#!/usr/bin/env python3
"""PyTorch CPU peer of the rnnkit benchmark harness (lib/bench.ts runs it in a child process, one workload per process).

usage: pytorch_bench.py '<task JSON>'
  task = { "name": str, "workload": {...one entry of bench/workloads.json, already scaled by the harness...},
           "threads": int, "min_seconds": float, "repetitions": int, "max_seconds": float }
prints one JSON object: the figures of the workload's "report" (tokens_per_s, s_per_step, s_per_call, us_per_step,
peak_rss_mb) plus repetitions, library and version. Exit status 0 on success.

How it measures (as bench/workloads.json and ../shared/bench/reference.md describe): nn.LSTM / nn.GRU time-major
([T, B, I]), an nn.Linear head over every time step, CrossEntropyLoss (mean over T*B), clip_grad_norm_(5), Adam;
one-hot inputs are float one-hot tensors (what nn.LSTM takes); inference under torch.inference_mode();
two warm-up calls, then the median of at least `repetitions` timed calls lasting at least `min_seconds`.
"""
import json
import resource
import statistics
import sys
import time


def timed(fn, reps, min_seconds, max_seconds):
    """(median seconds per call, timed calls). A library so slow that its first (warm-up) call already takes
    max_seconds is not timed further: that call is the figure, with 1 as its count of calls."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first >= max_seconds:
        return first, 1
    if first < 10:  # a second warm-up unless one call already takes very long
        fn()
    times = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if len(times) >= reps and elapsed >= min_seconds:
            break
        if times and elapsed >= max_seconds:
            break
        if len(times) >= 100000:
            break
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def main():
    task = json.loads(sys.argv[1])
    import torch
    from torch import nn

    w = task["workload"]
    threads = int(task.get("threads", 1))
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    reps = int(task.get("repetitions", 5))
    min_s = float(task.get("min_seconds", 2))
    max_s = float(task.get("max_seconds", 120))

    cell = w["cell"]
    H = w["hidden"]
    L = w.get("layers", 1)
    B = w["batch"]
    T = w.get("seq", 1)
    one_hot = w.get("input") == "one-hot"
    I = w["vocab"] if one_hot else w["input_size"]
    rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU if cell == "gru" else nn.RNN
    rnn = rnn_cls(I, H, num_layers=L)  # time-major (batch_first=False)
    g = torch.Generator().manual_seed(7)

    def make_input(steps, batch):
        if one_hot:
            ids = torch.randint(0, I, (steps, batch), generator=g)
            return torch.nn.functional.one_hot(ids, I).float()
        return torch.rand(steps, batch, I, generator=g) * 2 - 1

    out = {"library": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads()}
    if w["kind"] == "train":
        head = nn.Linear(H, w["head"])
        params = list(rnn.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        x = make_input(T, B)
        y = torch.randint(0, w["head"], (T * B,), generator=g)

        def step():
            opt.zero_grad(set_to_none=True)
            h, _ = rnn(x)
            loss = loss_fn(head(h).reshape(T * B, -1), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()

        rnn.train()
        s, n = timed(step, reps, min_s, max_s)
        out.update(tokens_per_s=B * T / s, s_per_step=s)
    elif w["kind"] == "infer":
        x = make_input(T, B)
        rnn.eval()

        def call():
            with torch.inference_mode():
                h, _ = rnn(x)
            return h

        s, n = timed(call, reps, min_s, max_s)
        out.update(tokens_per_s=B * T / s, s_per_call=s)
    else:  # step: one time step of a stateful stream, the state kept between calls
        x = make_input(1, B)
        rnn.eval()
        state = [None]

        def one():
            with torch.inference_mode():
                h, st = rnn(x, state[0])
            state[0] = st
            return h

        s, n = timed(one, max(reps, 200), min_s, max_s)
        out.update(us_per_step=s * 1e6, tokens_per_s=B / s)
    out["repetitions"] = n
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(json.dumps(out))


if __name__ == "__main__":
    main()
