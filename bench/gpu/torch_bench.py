#!/usr/bin/env python3
"""Times the workloads of bench/gpu/workloads.json with PyTorch (nn.LSTM / nn.GRU on cuDNN) and prints one JSON object.

    python3 bench/gpu/torch_bench.py [--device cuda] [--tf32] [--min-time S] [--only NAME,...]

Two figures per workload and mode:
  resident_ms: tensors already on the GPU, timed with CUDA events (the compute floor cuDNN reaches);
  host_io_ms:  inputs copied from host memory and results copied back each call, timed on the host (what
               rnnkit's synchronous calls measure: Float32Arrays in, Float32Arrays out).
Median over the repetitions after 3 warm-up calls. FP32 unless --tf32 (cuDNN and cuBLAS then use TF32 tensor
cores; compare with rnnkit under RNNKIT_CUDA_TF32=1).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--tf32", action="store_true")
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--only", default="")
    return p.parse_args()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_ms(fn):
    """One call on the host clock, in milliseconds."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def event_ms(fn):
    """One call timed with CUDA events, in milliseconds."""
    a = torch.cuda.Event(enable_timing=True)
    b = torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b)


def timed(fn, device, min_time, one_call):
    """(median ms, min ms, calls) of fn after 3 warm-up calls: at least 10 calls, at most 1000, for min_time s."""
    for _ in range(3):
        fn()
    sync(device)
    samples = []
    start = time.perf_counter()
    while len(samples) < 10 or (len(samples) < 1000 and time.perf_counter() - start < min_time):
        samples.append(one_call(fn))
    return statistics.median(samples), min(samples), len(samples)


def time_events(fn, device, min_time):
    """Per-call milliseconds with CUDA events (host timing on the CPU)."""
    return timed(fn, device, min_time, event_ms if device.type == "cuda" else host_ms)


def time_host(fn, device, min_time):
    """Per-call milliseconds on the host clock; fn must end with a copy to the host (which waits for the GPU)."""
    return timed(fn, device, min_time, host_ms)


def run_workload(w, device, min_time):
    torch.manual_seed(1)
    T, B, I, H, L = w["seq"], w["batch"], w["input"], w["hidden"], w["layers"]
    cls = nn.LSTM if w["cell"] == "lstm" else nn.GRU
    rnn = cls(I, H, num_layers=L).to(device)
    head = nn.Linear(H, w["head"]).to(device) if w.get("head") else None
    out = {}
    x_host = torch.randn(T, B, I)
    x_dev = x_host.to(device)
    for mode in w["modes"]:
        r = {}
        if mode == "infer":
            def resident():
                with torch.no_grad():
                    rnn(x_dev)

            def host_io():
                with torch.no_grad():
                    y, _ = rnn(x_host.to(device))
                    y.cpu()
        elif mode == "train":
            dy_host = torch.randn(T, B, H)
            dy_dev = dy_host.to(device)
            x_req = x_dev.clone().requires_grad_(True)

            def resident():
                y, _ = rnn(x_req)
                y.backward(dy_dev)

            def host_io():
                x = x_host.to(device).requires_grad_(True)
                y, _ = rnn(x)
                y.cpu()
                y.backward(dy_host.to(device))
                x.grad.cpu()
        elif mode == "train_step":
            params = list(rnn.parameters()) + list(head.parameters())
            opt = torch.optim.Adam(params, lr=1e-3)
            loss_fn = nn.CrossEntropyLoss()
            classes_host = (torch.arange(T * B) * 7919) % w["head"]
            classes_dev = classes_host.to(device)

            def step(x, classes):
                opt.zero_grad(set_to_none=False)
                y, _ = rnn(x)
                loss = loss_fn(head(y).reshape(T * B, -1), classes)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                return loss

            def resident():
                step(x_dev, classes_dev)

            def host_io():
                step(x_host.to(device), classes_host.to(device)).item()
        elif mode == "step":
            one_host = torch.randn(1, 1, I)
            one_dev = one_host.to(device)
            state = {"s": None}

            def resident():
                with torch.no_grad():
                    y, state["s"] = rnn(one_dev, state["s"])
                    if head is not None:
                        head(y)

            def host_io():
                with torch.no_grad():
                    y, state["s"] = rnn(one_host.to(device), state["s"])
                    if head is not None:
                        y = head(y)
                    y.cpu()
        else:
            raise ValueError(f"unknown mode {mode}")
        ms, mn, reps = time_events(resident, device, min_time)
        r.update(resident_ms=ms, resident_min_ms=mn, resident_reps=reps)
        ms, mn, reps = time_host(host_io, device, min_time)
        r.update(host_io_ms=ms, host_io_min_ms=mn, host_io_reps=reps, tokens_per_s=T * B / (ms / 1e3))
        out[mode] = r
        print(f"{w['name']} {mode}: resident {r['resident_ms']:.3f} ms, host io {r['host_io_ms']:.3f} ms",
              file=sys.stderr)
    return out


def main():
    args = parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    with open(os.path.join(HERE, "workloads.json")) as f:
        spec = json.load(f)
    only = [s for s in args.only.split(",") if s]
    results = {}
    for w in spec["workloads"]:
        if only and w["name"] not in only:
            continue
        try:
            results[w["name"]] = run_workload(w, device, args.min_time)
        except Exception as e:  # report and go on with the next workload
            results[w["name"]] = {"error": repr(e)}
            print(f"{w['name']}: {e!r}", file=sys.stderr)
    info = {
        "library": "pytorch",
        "torch": torch.__version__,
        "device": str(device),
        "tf32": args.tf32,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "results": results,
    }
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
