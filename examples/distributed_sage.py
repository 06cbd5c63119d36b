"""GraphSAGE trained by several processes with DistributedDataParallel: graphbatch's
version of PyG's ``examples/multi_gpu/distributed_sampling.py``, started by torchrun.

    torchrun --nproc_per_node 2 examples/distributed_sage.py              # synthetic, 3 epochs
    torchrun --nproc_per_node 4 examples/distributed_sage.py --dataset Computers

One process per GPU (nccl) or, without GPUs, per group of cores (gloo). What differs
from PyG's example, and why:

* torchrun starts the processes and tells each its rank; PyG's example spawns them
  itself (``mp.spawn``). A rank that fails or is killed makes torchrun stop the others.
* ``shared_graph``: local rank 0 loads the dataset and writes it once to
  ``--cache``; every process maps those files, so the graph and its features are in
  memory once per machine, not once per process.
* ``distributed=True`` instead of ``train_idx.split(train_idx.size(0) // world_size)
  [rank]``: every rank gets an equal share (PyG's split leaves the last rank a
  different count when the size does not divide, and a rank with one batch more
  waits forever in DDP's all-reduce), reshuffled every epoch from one seed.
* Evaluation is shared too: each rank scores every ``world_size``-th validation and
  test node and the counts are summed (PyG's evaluates on rank 0 while the others wait).
"""
import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.nn import SAGEConv

import graphbatch
from graphbatch import NeighborLoader
from graphbatch.datasets import load

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument('--dataset', default='synthetic',
                    help='catalog name (graphbatch datasets) or path of a graph')
parser.add_argument('--epochs', type=int, default=3)
parser.add_argument('--batch-size', type=int, default=1024, help='seeds per rank and batch')
parser.add_argument('--cache', default=None,
                    help='where the shared copy of the graph goes (default: a folder '
                         'of the data root; /dev/shm/... keeps it in memory)')
args = parser.parse_args()


class SAGE(torch.nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.convs = torch.nn.ModuleList([SAGEConv(in_channels, hidden_channels),
                                          SAGEConv(hidden_channels, out_channels)])

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = F.dropout(x.relu(), p=0.5, training=self.training)
        return x


def main():
    use_cuda = torch.cuda.is_available()
    dist.init_process_group('nccl' if use_cuda else 'gloo')
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{os.environ['LOCAL_RANK']}" if use_cuda else 'cpu')
    if use_cuda:
        torch.cuda.set_device(device)

    cache = Path(args.cache or graphbatch.datasets.data_root() / 'shared' / args.dataset)
    shared = graphbatch.distributed.shared_graph(lambda: load(args.dataset), cache)
    data = shared.data
    num_classes = int(data.y.max()) + 1

    torch.manual_seed(12345)  # the same initial model on every rank (DDP checks)
    kwargs = {'batch_size': args.batch_size, 'device': device, **shared.loader_args()}
    train_loader = NeighborLoader(data, input_nodes=data.train_mask, num_neighbors=[25, 10],
                                  shuffle=True, distributed=True, **kwargs)
    eval_loaders = [NeighborLoader(data, input_nodes=mask.nonzero().view(-1)[rank::world_size],
                                   num_neighbors=[25, 10], **kwargs)
                    for mask in (data.val_mask, data.test_mask)]

    model = SAGE(data.num_features, 256, num_classes).to(device)
    model = DistributedDataParallel(model, device_ids=[device] if use_cuda else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for epoch in range(1, args.epochs + 1):
        model.train()
        total = torch.zeros(2, device=device)
        for batch in train_loader:
            optimizer.zero_grad()
            out = model(batch.x, batch.edge_index)[:batch.batch_size]
            loss = F.cross_entropy(out, batch.y[:batch.batch_size])
            loss.backward()
            optimizer.step()
            total += torch.tensor([loss.item() * batch.batch_size, batch.batch_size],
                                  device=device)
        dist.all_reduce(total)

        model.eval()
        counts = torch.zeros(4, device=device)  # correct and seen, validation then test
        with torch.no_grad():
            for i, loader in enumerate(eval_loaders):
                for batch in loader:
                    pred = model.module(batch.x, batch.edge_index)[:batch.batch_size].argmax(-1)
                    counts[2 * i] += int((pred == batch.y[:batch.batch_size]).sum())
                    counts[2 * i + 1] += batch.batch_size
        dist.all_reduce(counts)
        if rank == 0:
            print(f'Epoch: {epoch:02d}, Loss: {float(total[0] / total[1]):.4f}, '
                  f'Val: {float(counts[0] / counts[1]):.4f}, '
                  f'Test: {float(counts[2] / counts[3]):.4f}')
    # Every rank past its last collective before any leaves: a rank tearing its
    # process group down while a peer's is still in use can leave that peer stuck.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
