"""Data-parallel training of a Fashion-MNIST CNN with DistributedDataParallel.

Launch with torchrun (one process per device; on a CPU, one process per core):

    torchrun --nproc_per_node=2 scripts/ddp_train.py --epochs 3 --batch-size 256 --out data/ddp

Every process holds a replica of the model, reads its own shard of every global batch
(DistributedSampler), and after backward() DDP all-reduces (averages) the gradients, so every
replica takes the same step.  Rank 0 alone evaluates, logs and saves.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import d2lmini as d2l


def make_model() -> nn.Module:
    """LeNet-sized CNN with ReLU and max pooling (no batch norm: each replica would normalise
    with its own half-batch statistics, and the run would no longer equal a single-process run)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256, help="global batch size, split over processes")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--n-train", type=int, default=None, help="training images (default: all, smoke: 2000)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=d2l.data_root() / "ddp")
    args = p.parse_args()

    # 1. Join the process group. torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
    use_cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(args.threads)

    # 2. Data: the same dataset everywhere; DistributedSampler gives each rank its own shard.
    X, y = d2l.fashion_mnist_tensors(train=True)
    n = args.n_train or d2l.by_mode(len(X), 2000)
    if args.batch_size % world or n % world:
        raise ValueError(
            f"The global batch size ({args.batch_size}) and the number of training images ({n}) must both "
            f"be divisible by the number of processes ({world}); choose sizes that are."
        )
    data = TensorDataset(X[:n].unsqueeze(1).float() / 255, y[:n])
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(data, batch_size=args.batch_size // world, sampler=sampler)

    # 3. The model: same initial weights everywhere (DDP also broadcasts rank 0's weights at start).
    torch.manual_seed(args.seed)
    model = DDP(make_model().to(device), device_ids=[local_rank] if use_cuda else None)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    log: dict[str, list[float]] = {"loss": [], "test_accuracy": [], "time": []}
    Xt, yt = d2l.fashion_mnist_tensors(train=False)
    test = d2l.TensorLoader(Xt[: d2l.by_mode(len(Xt), 1000)], yt[: d2l.by_mode(len(Xt), 1000)], 1000)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        start, total, count = time.perf_counter(), torch.zeros(2, device=device), 0
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()  # DDP all-reduces the gradients here
            opt.step()
            total += torch.stack([loss.detach() * len(yb), torch.tensor(float(len(yb)), device=device)])
            count += 1
        dist.all_reduce(total)  # sum the loss over all ranks for logging
        seconds = time.perf_counter() - start
        if rank == 0:
            acc = d2l.evaluate(model.module, test)["accuracy"]
            log["loss"].append(total[0].item() / total[1].item())
            log["test_accuracy"].append(acc)
            log["time"].append(seconds)
            print(f"epoch {epoch + 1}/{args.epochs}  loss {log['loss'][-1]:.4f}  "
                  f"test accuracy {acc:.4f}  ({seconds:.1f} s, {count} steps per rank)", flush=True)

    # 4. Check the replicas are identical: gather every rank's flattened weights on every rank.
    flat = torch.cat([p.detach().flatten() for p in model.module.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        max_diff = max((g - gathered[0]).abs().max().item() for g in gathered)
        args.out.mkdir(parents=True, exist_ok=True)
        d2l.save_checkpoint(args.out / f"ddp_world{world}.pt", model.module, opt, epoch=args.epochs)
        result = {"world_size": world, "backend": dist.get_backend(), "threads_per_process": args.threads,
                  "replica_max_abs_diff": max_diff, **log}
        (args.out / f"ddp_world{world}.json").write_text(json.dumps(result, indent=1))
        print(f"world size {world}: replicas identical: {max_diff == 0.0} (max |difference| {max_diff})")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
