#!/usr/bin/python3
"""PyTorch side of bench/generator: the reference generator (the same
architecture as scripts/make_generator_fixture.py, cnum 16) in eval mode on
the CPU, median seconds per 256x256 slice at the given batch sizes.

    /usr/bin/python3 scripts/bench_generator_torch.py THREADS REPS BATCH...

Prints one line per batch size: "torch batch B seconds_per_slice S".
Needs Debian's python3-torch; bench/generator runs it when present.
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_generator_fixture as fx  # noqa: E402


def main():
    threads, reps = int(sys.argv[1]), int(sys.argv[2])
    batches = [int(b) for b in sys.argv[3:]] or [1]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    g = fx.Generator(16)
    with torch.no_grad():
        g.train()
        for _ in range(3):
            g(*fx.make_inputs(1, 64, 64, 1))
    g.eval()
    for b in batches:
        x, m, c, r = fx.make_inputs(b, 256, 256, 2) if b <= 2 else \
            [t.repeat(b // 2 + 1, 1, 1, 1)[:b] for t in fx.make_inputs(2, 256, 256, 2)]
        times = []
        with torch.no_grad():
            g(x, m, c, r)  # warm-up
            for _ in range(reps):
                t0 = time.perf_counter()
                g(x, m, c, r)
                times.append((time.perf_counter() - t0) / b)
        print("torch batch %d seconds_per_slice %.5f" % (b, statistics.median(times)), flush=True)


if __name__ == "__main__":
    main()
