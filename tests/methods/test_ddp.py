"""Two gloo processes on CPU: OGM-GE and OPM must modulate identically on every rank.

Each rank sees different samples, so its local scores differ; only because the scores are
all-reduced before rho is computed do both ranks apply the same k (and q), and so keep
identical parameters after DDP's gradient averaging. Likewise the re-sampling methods value
different samples on each rank; the all-reduced contributions give every rank the same copies.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import mmlib as mm
from mmlib.methods.ogm_ge import OGMGE
from mmlib.methods.opm import OPM
from mmlib.methods.resampling import ModalityResampling, SampleResampling
from tests.helpers import make_tiny_data

METHODS = {"ogm-ge": lambda: OGMGE(alpha=0.5), "opm": lambda: OPM(p_exe=1.0),
           "sample-resampling": lambda: SampleResampling(warmup=1),
           "sample-resampling-eval": lambda: SampleResampling(warmup=1, features="eval"),
           "modality-resampling": lambda: ModalityResampling(warmup=1, ratio=0.5, features="eval")}
# AdamW at 1e-3 leaves both modalities alike after one epoch, so modality-level would plan no copy
FIT = {"modality-resampling": {"optimizer": "sgd", "lr": 0.05}}


def tiny_data():
    """Modality "a" is strongly informative (dominant), "b" weakly."""
    return make_tiny_data(("a", "b"), n=80, strengths={"a": 3.0, "b": 0.3})


def _worker(rank, world, port, outdir):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = tiny_data()
        out = {}
        for name, make in METHODS.items():
            torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
            res = mm.fit(mm.build_model(data), data, make(), num_epochs=2, batch_size=8, seed=0, **FIT.get(name, {}))
            out[name] = {"params": [p.detach().clone() for p in res.model.parameters()], "records": res.records}
        torch.save(out, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(outdir)), nprocs=2, join=True)
    return [torch.load(outdir / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("name, coef", [("ogm-ge", "k/"), ("opm", "q/")])
def test_ranks_keep_identical_parameters_and_coefficients(ranks, name, coef):
    r0, r1 = ranks[0][name], ranks[1][name]
    for p0, p1 in zip(r0["params"], r1["params"]):
        assert torch.equal(p0, p1)
    logged = [[(r["step"], r["name"], r["value"]) for r in rank["records"]] for rank in (r0, r1)]
    assert logged[0] == logged[1]
    values = [v for _, n, v in logged[0] if n.startswith(coef)]
    assert values and any(0 < v < 1 for v in values)  # modulation really happened


@pytest.mark.parametrize("name", ["sample-resampling", "sample-resampling-eval", "modality-resampling"])
def test_ranks_re_sample_the_same_copies(ranks, name):
    r0, r1 = ranks[0][name], ranks[1][name]
    for p0, p1 in zip(r0["params"], r1["params"]):
        assert torch.equal(p0, p1)
    logged = [[(r["step"], r["name"], r["value"]) for r in rank["records"]] for rank in (r0, r1)]
    assert logged[0] == logged[1]
    assert any(n == "epoch_size" and v > 48 for _, n, v in logged[0])  # copies were trained (48 originals)
