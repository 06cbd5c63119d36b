"""Cluster-GCN with GraphSAGE layers: graphbatch's version of PyG's
``examples/cluster_gcn_reddit.py``.

    python examples/cluster_gcn.py                        # Amazon Computers, 30 epochs
    python examples/cluster_gcn.py --dataset CS --epochs 10

The structure is PyG's (``diff`` the two files): a METIS partition (``ClusterData``),
batches of 20 random clusters with every edge among them (``ClusterLoader``), a 2-layer
GraphSAGE trained on each batch's training nodes, and evaluation layer by layer over
all edges with a ``NeighborLoader`` of every neighbor (``num_neighbors=[-1]``). What
differs, and why:

* ``from graphbatch import ClusterData, ClusterLoader, NeighborLoader``: PyG's need
  pyg-lib or a torch-sparse built with METIS; graphbatch partitions with ``pymetis``
  (a PyPI wheel) and yields the same batches, plus ``n_id``/``e_id``.
* The graph is a catalog dataset by name (``--dataset``, default Amazon Computers)
  instead of Reddit, which is not in the offline catalog. The partition is scaled to it:
  ``--num-parts`` defaults to one part per 155 nodes, Reddit's 232,965 nodes in 1,500
  parts (89 parts for Computers), 20 parts a batch as in PyG.
* ``--epochs`` (PyG: 30) keeps test runs short; evaluation runs every 5 epochs, as in
  PyG, and after the last one, so that a short run evaluates too.
* The partition is cached under graphbatch's data root (``datasets/`` of the checkout),
  in a folder per dataset and part count, where PyG uses the dataset's
  ``processed_dir``.
* ``num_workers=0`` by default (``--num-workers``) instead of 12: graphbatch makes
  batches in two background threads already (``prefetch=2``).
* Progress bars are off unless ``--progress``.
"""
import argparse

import torch
import torch.nn.functional as F
from torch.nn import ModuleList
from torch_geometric.nn import SAGEConv
from tqdm import tqdm

from graphbatch import ClusterData, ClusterLoader, NeighborLoader
from graphbatch.datasets import data_root, load

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument('--dataset', default='Computers',
                    help='catalog name (graphbatch datasets) or path of a graph')
parser.add_argument('--epochs', type=int, default=30)
parser.add_argument('--num-parts', type=int, default=None,
                    help='METIS parts (default: one per 155 nodes, as Reddit in 1,500)')
parser.add_argument('--num-workers', type=int, default=0)
parser.add_argument('--progress', action='store_true', help='show progress bars')
args = parser.parse_args()

data = load(args.dataset)  # x, y, edge_index and the dataset's standard split
num_classes = int(data.y.max()) + 1
num_parts = args.num_parts or max(2, round(data.num_nodes / 155))

save_dir = data_root() / 'examples' / 'cluster_gcn' / f'{args.dataset}-{num_parts}'
save_dir.mkdir(parents=True, exist_ok=True)
cluster_data = ClusterData(data, num_parts=num_parts, recursive=False,
                           save_dir=str(save_dir), log=False)
train_loader = ClusterLoader(cluster_data, batch_size=20, shuffle=True,
                             num_workers=args.num_workers)

subgraph_loader = NeighborLoader(data, num_neighbors=[-1], batch_size=1024,
                                 shuffle=False, num_workers=args.num_workers)


class Net(torch.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.convs = ModuleList(
            [SAGEConv(in_channels, 128),
             SAGEConv(128, out_channels)])

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i != len(self.convs) - 1:
                x = F.relu(x)
                x = F.dropout(x, p=0.5, training=self.training)
        return F.log_softmax(x, dim=-1)

    def inference(self, x_all):
        pbar = tqdm(total=x_all.size(0) * len(self.convs), disable=not args.progress)
        pbar.set_description('Evaluating')

        # Compute representations of nodes layer by layer, using *all*
        # available edges. This leads to faster computation in contrast to
        # immediately computing the final representations of each batch.
        for i, conv in enumerate(self.convs):
            xs = []
            for batch in subgraph_loader:
                edge_index = batch.edge_index.to(device)
                x = x_all[batch.n_id].to(device)
                batch_size = batch.batch_size
                x_target = x[:batch_size]
                x = conv((x, x_target), edge_index)
                if i != len(self.convs) - 1:
                    x = F.relu(x)
                xs.append(x.cpu())

                pbar.update(batch_size)

            x_all = torch.cat(xs, dim=0)

        pbar.close()

        return x_all


device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
model = Net(data.num_features, num_classes).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=0.005)


def train():
    model.train()

    total_loss = total_nodes = 0
    for batch in train_loader:
        batch = batch.to(device)
        optimizer.zero_grad()
        out = model(batch.x, batch.edge_index)
        loss = F.nll_loss(out[batch.train_mask], batch.y[batch.train_mask])
        loss.backward()
        optimizer.step()

        nodes = batch.train_mask.sum().item()
        total_loss += loss.item() * nodes
        total_nodes += nodes

    return total_loss / total_nodes


@torch.no_grad()
def test():  # Inference should be performed on the full graph.
    model.eval()

    out = model.inference(data.x)
    y_pred = out.argmax(dim=-1)

    accs = []
    for mask in [data.train_mask, data.val_mask, data.test_mask]:
        correct = y_pred[mask].eq(data.y[mask]).sum().item()
        accs.append(correct / mask.sum().item())
    return accs


for epoch in range(1, args.epochs + 1):
    loss = train()
    if epoch % 5 == 0 or epoch == args.epochs:
        train_acc, val_acc, test_acc = test()
        print(f'Epoch: {epoch:02d}, Loss: {loss:.4f}, Train: {train_acc:.4f}, '
              f'Val: {val_acc:.4f}, test: {test_acc:.4f}')
    else:
        print(f'Epoch: {epoch:02d}, Loss: {loss:.4f}')
