#!/usr/bin/env python3
"""Merges the JSON of rnnkit_bench.js and torch_bench.py into a Markdown table.

    python3 bench/gpu/compare.py RNNKIT.json TORCH.json [TITLE] > summary.md

rnnkit's figure is a synchronous call with host arrays in and out; compare it with PyTorch's host_io figure (the
same work, the same transfers). PyTorch's resident figure (tensors kept on the GPU) is the compute floor.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # a run that failed still gets a table
        return {"error": repr(e), "results": {}}


def fmt(v):
    return "-" if v is None else (f"{v:.3f}" if v < 100 else f"{v:.1f}")


def main():
    ours, torch = load(sys.argv[1]), load(sys.argv[2])
    title = sys.argv[3] if len(sys.argv) > 3 else "rnnkit (CUDA) vs PyTorch (cuDNN)"
    print(f"## {title}\n")
    print(f"- rnnkit: device {ours.get('device')}, tf32 {ours.get('tf32')}"
          + (f", error: {ours['error']}" if "error" in ours else ""))
    print(f"- PyTorch {torch.get('torch')}, cuDNN {torch.get('cudnn')}, {torch.get('gpu')}, tf32 {torch.get('tf32')}"
          + (f", error: {torch['error']}" if "error" in torch else ""))
    print()
    print("| workload | mode | rnnkit ms | PyTorch host-io ms | PyTorch resident ms | rnnkit / PyTorch host-io |")
    print("|---|---|---:|---:|---:|---:|")
    names = list(dict.fromkeys(list(ours.get("results", {})) + list(torch.get("results", {}))))
    for name in names:
        a = ours.get("results", {}).get(name, {})
        b = torch.get("results", {}).get(name, {})
        modes = [m for m in dict.fromkeys(list(a) + list(b)) if m != "error"]
        if "error" in a or "error" in b:
            print(f"| {name} | error | {a.get('error', '')} | {b.get('error', '')} | | |")
        for mode in modes:
            ms = a.get(mode, {}).get("ms")
            host = b.get(mode, {}).get("host_io_ms")
            resident = b.get(mode, {}).get("resident_ms")
            ratio = f"{ms / host:.2f}x" if ms and host else "-"
            print(f"| {name} | {mode} | {fmt(ms)} | {fmt(host)} | {fmt(resident)} | {ratio} |")


if __name__ == "__main__":
    main()
