#!/usr/bin/env python3
"""PyTorch CPU peer of the rnnkit benchmark harness (lib/bench.ts runs it in a child process, one workload per process).

usage: pytorch_bench.py '<task JSON>'
  task = { "name": str, "workload": {...one entry of bench/workloads.json, already scaled by the harness...},
           "threads": int, "min_seconds": float, "repetitions": int, "max_seconds": float }
prints one JSON object: the figures of the workload's "report" (tokens_per_s, s_per_step, s_per_call, us_per_step,
peak_rss_mb) plus repetitions, library and version. Exit status 0 on success.

How it measures (as bench/workloads.json and ../shared/bench/reference.md describe): nn.LSTM / nn.GRU time-major
([T, B, I]), an nn.Linear head over every time step, CrossEntropyLoss (mean over T*B), clip_grad_norm_(5), Adam;
one-hot inputs are float one-hot tensors (what nn.LSTM takes); inference under torch.inference_mode(); the
encoder-decoder workloads run the seq2seq tutorial's model (seq2seq_bench);
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


def seq2seq_bench(w, torch, nn, reps, min_s, max_s):
    """The encoder-decoder of PyTorch's seq2seq tutorial (EncoderRNN; AttnDecoderRNN with BahdanauAttention, the
    context concatenated after the embedding), batch-first, its decoder stepped in a Python loop as the tutorial
    does. Training: teacher forcing over tgt_len steps, CrossEntropyLoss over every step, clip 5, Adam. Decoding
    from token 0 to max_len without an end token: greedy, or beam search keeping `beam` hypotheses by summed
    log-probability (the rows' states reordered by index_select)."""
    F = nn.functional
    H, E, B = w["hidden"], w["embed"], w["batch"]
    L = w.get("layers", 1)
    S, V_src, V = w["src_len"], w["src_vocab"], w["tgt_vocab"]
    attention = w.get("attention", "bahdanau")
    rnn_cls = nn.LSTM if w["cell"] == "lstm" else nn.GRU
    g = torch.Generator().manual_seed(7)

    class Bahdanau(nn.Module):
        def __init__(self):
            super().__init__()
            self.Wa = nn.Linear(H, H)
            self.Ua = nn.Linear(H, H)
            self.Va = nn.Linear(H, 1)

        def forward(self, query, keys):  # query [B, 1, H], keys [B, S, H]
            scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys))).squeeze(2).unsqueeze(1)
            weights = F.softmax(scores, dim=-1)
            return torch.bmm(weights, keys), weights

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc_emb = nn.Embedding(V_src, E)
            self.enc = rnn_cls(E, H, num_layers=L, batch_first=True)
            self.dec_emb = nn.Embedding(V, E)
            self.attention = Bahdanau() if attention == "bahdanau" else None
            self.dec = rnn_cls(E + (H if self.attention else 0), H, num_layers=L, batch_first=True)
            self.out = nn.Linear(H, V)

        def encode(self, src):
            return self.enc(self.enc_emb(src))

        def step(self, tokens, state, keys):  # tokens [R, 1]
            x = self.dec_emb(tokens)
            if self.attention is not None:
                h = state[0] if isinstance(state, tuple) else state
                context, _ = self.attention(h[-1:].permute(1, 0, 2), keys)
                x = torch.cat((x, context), dim=2)
            o, state = self.dec(x, state)
            return self.out(o), state

    model = Model()
    src = torch.randint(0, V_src, (B, S), generator=g)
    out = {"library": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads()}
    if w["kind"] == "train_seq2seq":
        T = w["tgt_len"]
        tgt_in = torch.randint(0, V, (B, T), generator=g)
        targets = torch.randint(0, V, (B, T), generator=g)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def train_step():
            opt.zero_grad(set_to_none=True)
            keys, state = model.encode(src)
            logits = []
            for t in range(T):
                o, state = model.step(tgt_in[:, t:t + 1], state, keys)
                logits.append(o)
            loss = loss_fn(torch.cat(logits, dim=1).reshape(B * T, V), targets.reshape(B * T))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()

        model.train()
        s, n = timed(train_step, reps, min_s, max_s)
        out.update(tokens_per_s=B * T / s, s_per_step=s)
        return out, n

    M = w["max_len"]
    K = w.get("beam", 1)
    model.eval()

    def reorder(state, index):
        if isinstance(state, tuple):
            return tuple(x.index_select(1, index) for x in state)
        return state.index_select(1, index)

    def decode():
        with torch.inference_mode():
            keys, state = model.encode(src)
            if K == 1:
                tokens = torch.zeros(B, 1, dtype=torch.long)
                result = []
                for _ in range(M):
                    o, state = model.step(tokens, state, keys)
                    tokens = o.argmax(dim=-1)
                    result.append(tokens)
                return torch.cat(result, dim=1)
            rows = torch.arange(B).repeat_interleave(K)
            keys = keys.index_select(0, rows)
            state = reorder(state, rows)
            scores = torch.full((B, K), float("-inf"))
            scores[:, 0] = 0
            tokens = torch.zeros(B * K, 1, dtype=torch.long)
            history = torch.zeros(B * K, 0, dtype=torch.long)
            for _ in range(M):
                o, state = model.step(tokens, state, keys)
                logp = F.log_softmax(o.squeeze(1), dim=-1).view(B, K, V)
                cand = (scores.unsqueeze(2) + logp).view(B, K * V)
                scores, index = cand.topk(K, dim=1)
                parent = (index // V) + torch.arange(B).unsqueeze(1) * K
                tokens = (index % V).view(B * K, 1)
                parent = parent.view(B * K)
                state = reorder(state, parent)
                history = torch.cat((history.index_select(0, parent), tokens), dim=1)
            return history.view(B, K, M)[:, 0]

    s, n = timed(decode, reps, min_s, max_s)
    out.update(tokens_per_s=B * M / s, s_per_call=s)
    return out, n


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

    if w["kind"] in ("train_seq2seq", "decode_seq2seq"):
        out, n = seq2seq_bench(w, torch, nn, reps, min_s, max_s)
        out["repetitions"] = n
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(out))
        return

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
