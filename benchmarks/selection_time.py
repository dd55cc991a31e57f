"""Wall-clock and CPU time of the cold-start selectors on a synthetic pool (MMCSAL chapter).

The issue's target: selection over a 10k-sample pool with 128-d embeddings per modality in at
most 10 s on CPU. The pool is random unit vectors with one thread (clustered data would not
change the amount of work: every selector's cost depends on N, d and B only).

    python benchmarks/selection_time.py                              # N=10000, d=128, B=100 and 1000
    python benchmarks/selection_time.py --selectors mmcsal kcenter --budgets 1000
    python benchmarks/selection_time.py --pool 2000 --dim 32 --selectors "mmcsal:swaps=0"
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

import mmlib as mm


def pool(n: int, dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two modalities of ``n`` correlated unit vectors (pairs are somewhat aligned, as after Stage 1)."""
    g = torch.Generator().manual_seed(seed)
    u = F.normalize(torch.randn(n, dim, generator=g), dim=1)
    w = F.normalize(u + torch.randn(n, dim, generator=g), dim=1)
    return {"a": u, "b": w}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--selectors", nargs="+", default=["random", "kcenter", "mmcsal", "single-modality:modality=a",
                                                      "kmeans"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    emb = pool(args.pool, args.dim)
    print(f"pool={args.pool} dim={args.dim} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'selector':<30}{'budget':>8}{'wall (s)':>10}{'cpu (s)':>10}")
    for spec in args.selectors:
        sel = mm.active.make_selector(spec)
        for b in args.budgets:
            wall, cpu = time.perf_counter(), time.process_time()
            idx = sel.select(emb, b, seed=0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert len(torch.unique(idx)) == b
            print(f"{spec:<30}{b:>8}{wall:>10.2f}{cpu:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
