"""Training under torchrun: this process's place in the launch, and metric sums reduced over
every process."""
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from ..runtime import UserError, select_device


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun launch (one process when WORLD_SIZE is unset)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> "Distributed":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self, device_name: str) -> torch.device:
        """The device of this process; joins the process group (nccl on CUDA, gloo on CPU)."""
        device = select_device(device_name)
        if self.world_size == 1:
            return device
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise UserError(f"process {self.local_rank} of this machine has no GPU of its "
                                f"own ({torch.cuda.device_count()} visible): start at most that "
                                "many processes per machine (torchrun --nproc_per_node)")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise UserError(f"multi-process training runs on cuda or cpu, not {device.type}")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def gather(self, value: object) -> list:
        """`value` of every process, in rank order."""
        if self.world_size == 1:
            return [value]
        values = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


@dataclass
class MetricSums:
    """Running sums of named values and how many items they cover."""

    sums: dict[str, float] = field(default_factory=dict)
    count: float = 0

    def add(self, values: dict[str, float], count: float = 1) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += count

    def scaled(self, factor: float) -> "MetricSums":
        """The same means, from sums and count multiplied by `factor`."""
        return MetricSums({name: value * factor for name, value in self.sums.items()},
                          self.count * factor)

    def merged(self, distributed: Distributed) -> "MetricSums":
        """The sums of every process together."""
        total = MetricSums()
        for part in distributed.gather(self):
            total.add(part.sums, part.count)
        return total

    def means(self, distributed: Distributed) -> dict[str, float]:
        """Means over the items of every process."""
        total = self.merged(distributed)
        return {name: value / max(total.count, 1) for name, value in total.sums.items()}
