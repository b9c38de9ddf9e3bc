import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data.distributed import DistributedSampler

from hashnet.training.distributed import gather_by_index, place_by_index


def test_padded_interleaved_shards_are_placed_by_index():
    size = 7  # odd: DistributedSampler pads rank 1 with a repeat of sample 0
    shards = [list(DistributedSampler(range(size), num_replicas=2, rank=r, shuffle=False)) for r in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5, 0]]
    index = torch.tensor(shards[0] + shards[1])
    values = (index * 10).float().unsqueeze(1)
    placed = place_by_index(values, index, size)
    assert placed.flatten().tolist() == [0, 10, 20, 30, 40, 50, 60]


def test_missing_sample_is_an_error():
    with pytest.raises(RuntimeError, match="1 of 3 samples were never encoded"):
        place_by_index(torch.ones(2, 1), torch.tensor([0, 2]), 3)


def _gather_worker(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)

    def all_gather(tensor):
        parts = [torch.empty_like(tensor) for _ in range(2)]
        dist.all_gather(parts, tensor)
        return torch.stack(parts)

    # Unequal shards (3 and 2 samples) of a 5-sample split, in scrambled order.
    index = torch.tensor([[4, 0, 2], [3, 1]][rank])
    values = torch.stack([index.float(), -index.float()], 1)
    results[rank] = gather_by_index(values, index, 5, all_gather).tolist()
    dist.destroy_process_group()


def test_gather_by_index_across_two_gloo_processes(tmp_path):
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_gather_worker, args=(str(tmp_path / "init"), results), nprocs=2)
    expected = [[float(i), -float(i)] for i in range(5)]
    assert results[0] == expected and results[1] == expected
