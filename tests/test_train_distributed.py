"""Training on another device and across processes (torchrun, DistributedDataParallel on the CPU with gloo)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from dexgen.model.checkpoint import load_model
from dexgen.model.train import TrainError, TrainModelConfig, train_model
from model_helpers import SAMPLE_DATASET, TINY


def _flags(tmp_path, dataset, **kw):
    cfg = dict(dataset=dataset, out=tmp_path / "runs", name="ddp", steps=20, batch_size=32, lr=3e-3, warmup_steps=2,
               ema_decay=0.9, val_every=10, val_windows=256, threads=1)  # fmt: skip
    cfg.update(kw)
    words = [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}" for k, v in cfg.items()]
    words += [f"--model.{k.replace('_', '-')}={v}" for k, v in TINY.to_dict().items()
              if k not in ("obs_dim",) and not isinstance(v, bool)]  # fmt: skip
    return words + ["--no-progress", "--json"]


def _torchrun(tmp_path, dataset, processes=2, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           "-m", "dexgen.cli", "train", *_flags(tmp_path, dataset, **kw)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def dataset(tmp_path):
    p = tmp_path / "sample.h5"
    p.write_bytes(SAMPLE_DATASET.read_bytes())
    return p


def test_device_is_checked_before_any_work(tmp_path, dataset):
    with pytest.raises(TrainError, match="--device must be cpu, cuda or cuda:N"):
        TrainModelConfig(dataset=str(dataset), device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="sees no CUDA device"):
            train_model(TrainModelConfig(dataset=str(dataset), out=str(tmp_path), device="cuda", model=TINY))
        assert not (tmp_path / "dexgen").exists()


def test_two_processes_share_each_batch_and_resume_only_as_two(tmp_path, dataset):
    done = _torchrun(tmp_path, dataset)
    assert done.returncode == 0, [line for line in done.stderr.splitlines() if "error" in line][:3]
    summary = json.loads(done.stdout.strip().splitlines()[-1])  # printed once, by process 0
    assert summary["processes"] == 2 and summary["step"] == 20
    log = [json.loads(line) for line in (tmp_path / "runs/ddp/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20]  # one line per validation: only process 0 writes
    model = load_model(summary["model"])
    assert model.record["training"]["history"][0]["processes"] == 2
    ckpt = torch.load(tmp_path / "runs/ddp/last.pt", weights_only=False)
    assert ckpt["world_size"] == 2
    assert not torch.equal(ckpt["torch_gens"][0], ckpt["torch_gens"][1])  # each process draws its own noise

    with pytest.raises(TrainError, match="trained by 2 processes, not 1"):
        train_model(TrainModelConfig(dataset=str(dataset), out=str(tmp_path / "runs"), name="ddp", steps=30,
                                     batch_size=32, lr=3e-3, warmup_steps=2, ema_decay=0.9, val_every=10,
                                     val_windows=256, model=TINY, resume=True, progress=False))  # fmt: skip
    more = _torchrun(tmp_path, dataset, steps=30, resume=True)
    assert more.returncode == 0, [line for line in more.stderr.splitlines() if "error" in line][:3]
    assert json.loads(more.stdout.strip().splitlines()[-1])["step"] == 30


def test_a_batch_that_does_not_split_is_refused(tmp_path, dataset):
    done = _torchrun(tmp_path, dataset, batch_size=33)
    assert done.returncode != 0  # each process exits 2 with the line; torchrun then exits 1
    assert "dexgen train: error: --batch-size 33 does not split evenly among 2 processes" in done.stderr
    assert not (tmp_path / "runs").exists()
