"""Data-parallel training of a Fashion-MNIST CNN with DistributedDataParallel.

Launch with torchrun, one process per device (on a CPU: one per core):

    torchrun --standalone --nproc_per_node=2 scripts/ddp_train.py --epochs 2

Every process holds a replica of the model and reads its own shard of every
global batch (DistributedSampler).  During backward() DDP all-reduces
(averages) the gradients, so every replica takes the same step.  Rank 0 alone
evaluates, saves the checkpoint and writes the log.  The same script runs on
several GPUs (NCCL, one process per GPU) and on several machines
(``torchrun --nnodes=...``) without a change.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import (
    allreduce_hook,
)
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import d2lmini as d2l


def make_model() -> nn.Module:
    """LeNet-sized CNN with ReLU and max pooling.  No batch norm: each
    replica would normalise with its own shard's statistics, and the run
    would no longer equal a single-process run (nn.SyncBatchNorm fixes that).
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def groups_of(batches, k: int):
    """Consecutive batches in groups of k (the last group may be shorter):
    the micro-batches of one optimizer step."""
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == k:
            yield group
            group = []
    if group:
        yield group


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256,
                   help="global batch size: all processes, all micro-batches")
    p.add_argument("--accum", type=int, default=1,
                   help="micro-batches accumulated per optimizer step")
    p.add_argument("--sync-every-micro-batch", action="store_true",
                   help="accumulate without no_sync() (all-reduce each time)")
    p.add_argument("--drop-last", action="store_true",
                   help="DistributedSampler drops the tail instead of padding")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (default: all; smoke mode: 2000)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=d2l.data_root() / "ddp")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)

    # 1. Join the process group.  torchrun gives every process RANK,
    #    LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
    use_cuda = torch.cuda.is_available() and dist.is_nccl_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        device = torch.device("cuda", local_rank)  # one GPU per process
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    micro = args.batch_size // (world * args.accum)
    if micro * world * args.accum != args.batch_size:
        raise ValueError(
            f"a global batch of {args.batch_size} does not split into "
            f"{world} processes x {args.accum} micro-batches")

    # 2. Data: one process per machine prepares it, the others wait at a
    #    barrier; then every rank reads its own shard.
    if local_rank == 0:
        d2l.fashion_mnist_tensors(train=True)
    dist.barrier()
    X, y = d2l.fashion_mnist_tensors(train=True)
    n = args.n_train or d2l.by_mode(len(X), 2000)
    data = TensorDataset(X[:n].unsqueeze(1).float() / 255, y[:n])
    sampler = DistributedSampler(data, shuffle=True, seed=args.seed,
                                 drop_last=args.drop_last)
    loader = DataLoader(data, batch_size=micro, sampler=sampler)

    # 3. The model: the same initial weights everywhere (DDP also
    #    broadcasts rank 0's weights), wrapped in DDP.
    torch.manual_seed(args.seed)
    model = DDP(make_model().to(device),
                device_ids=[local_rank] if use_cuda else None)
    allreduces = [0]

    def count_allreduce(state, bucket):  # called once per gradient bucket
        allreduces[0] += 1
        return allreduce_hook(None, bucket)  # what DDP does by default

    model.register_comm_hook(None, count_allreduce)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    # 4. Train: a new shuffle each epoch (set_epoch); with --accum, the
    #    micro-batches before an optimizer step skip the all-reduce.
    log = {"loss": [], "test_accuracy": [], "time": [], "step_loss": []}
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # the same new order on every rank
        model.train()
        steps = -(-len(loader) // args.accum)
        step_loss = torch.zeros(steps, 2, device=device)
        dist.barrier()
        start = time.perf_counter()
        for step, group in enumerate(groups_of(loader, args.accum)):
            n_step = sum(len(yb) for _, yb in group)
            opt.zero_grad()
            for i, (xb, yb) in enumerate(group):
                xb, yb = xb.to(device), yb.to(device)
                last = i == len(group) - 1
                skip = not last and not args.sync_every_micro_batch
                with model.no_sync() if skip else nullcontext():
                    loss = loss_fn(model(xb), yb)
                    (loss * len(yb) / n_step).backward()
                step_loss[step] += torch.stack(
                    [loss.detach() * len(yb),
                     torch.tensor(float(len(yb)), device=device)])
            opt.step()
        seconds = time.perf_counter() - start
        dist.all_reduce(step_loss)  # every rank's shard, for the log

        # 5. Rank 0 alone evaluates and saves, through model.module (the
        #    plain model inside DDP); the others wait at the barrier.
        if rank == 0:
            Xt, yt = d2l.fashion_mnist_tensors(train=False)
            k = d2l.by_mode(len(Xt), 1000)
            test = d2l.TensorLoader(Xt[:k], yt[:k], 1000)
            acc = d2l.evaluate(model.module, test)["accuracy"]
            per_step = (step_loss[:, 0] / step_loss[:, 1]).tolist()
            total = step_loss.sum(0)
            log["loss"].append((total[0] / total[1]).item())
            log["test_accuracy"].append(acc)
            log["time"].append(seconds)
            log["step_loss"] += per_step
            d2l.save_checkpoint(args.out / f"ddp_world{world}.pt",
                                model.module, opt, epoch=epoch + 1)
            print(f"epoch {epoch + 1}/{args.epochs}  "
                  f"loss {log['loss'][-1]:.4f}  test accuracy {acc:.4f}  "
                  f"({seconds:.1f} s, {steps} steps)", flush=True)
        dist.barrier()  # nobody goes on before the checkpoint is written

    # 6. Check that the replicas are identical: gather every rank's
    #    weights on every rank and compare them.
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        diff = max((g - gathered[0]).abs().max().item() for g in gathered)
        result = {
            "world_size": world, "backend": dist.get_backend(),
            "threads_per_process": args.threads, "n_train": n,
            "samples_per_rank": len(sampler),
            "padded": max(0, len(sampler) * world - n),
            "dropped": max(0, n - len(sampler) * world),
            "micro_batch": micro, "accum": args.accum,
            "steps_per_epoch": steps,
            "allreduces_per_rank": allreduces[0],
            "replica_max_abs_diff": diff, **log}
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"ddp_world{world}.json"
        path.write_text(json.dumps(result, indent=1))
        print(f"world size {world}: replicas identical: {diff == 0.0}, "
              f"{allreduces[0]} all-reduces per rank", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
