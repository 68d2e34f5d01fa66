"""A data-parallel test task: one DDP step of a linear model, on every rank of a torchrun launch.

Each rank feeds different data (rank-dependent inputs), so the replicas agree after the step only
if DDP all-reduced the gradients. It records the world size, the all-reduced sum of (rank + 1)
and whether the replicas' weights agree afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.base import Method, Metric, RunContext, Task


@dataclass(frozen=True)
class DdpCheckConfig:
    features: int


class DdpCheckTask(Task):
    name = "ddp-check"
    description = "One DDP step; records the world size and an all-reduced sum (tests only)."
    config_type = DdpCheckConfig
    reference_methods = ("plain",)
    supports_cuda = False
    supports_data_parallel = True
    metrics = (
        Metric("world_size", "processes", True, "processes in the group"),
        Metric("rank_sum", "count", True, "all-reduced sum of rank + 1 over ranks"),
        Metric("replicas_agree", "bool", True, "1 when every rank holds the same weights"),
    )
    interface_module = "ddp_check_interface"

    def run(self, ctx: RunContext, method: Method) -> None:
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        if not dist.is_initialized():
            raise RuntimeError("ddp-check runs under torchrun only (--nproc-per-node 2)")
        rank, world_size = dist.get_rank(), dist.get_world_size()
        model = DistributedDataParallel(torch.nn.Linear(ctx.config.features, 1))
        rate = method.module.learning_rate(method.new_run(ctx.seed, ctx.device))
        optimizer = torch.optim.SGD(model.parameters(), lr=rate)
        inputs = torch.full((8, ctx.config.features), float(rank + 1))
        with ctx.clock.timed():
            loss = model(inputs).square().mean()
            loss.backward()
            optimizer.step()
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.empty_like(weights) for _ in range(world_size)]
        dist.all_gather(gathered, weights)
        rank_sum = torch.tensor([float(rank + 1)])
        dist.all_reduce(rank_sum)
        ctx.record("world_size", world_size)
        ctx.record("rank_sum", rank_sum.item())
        ctx.record("replicas_agree", float(all(torch.equal(g, weights) for g in gathered)))
