"""GraphSAINT's normalized mini-batches train a GCN as well as full-batch training.

A 2-layer GCN on Amazon Computers (seeded random 60/20/20 split), trained with the
random-walk sampler (roots: the training nodes; ``edge_norm`` times the full graph's
symmetric normalization as edge weight; ``node_norm`` in the loss), must come within
1.5 points of test accuracy of the same GCN trained full-batch. Both report the test
accuracy at their best validation accuracy.
"""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.utils import degree

from conftest import needs_datasets, val_test_accuracy
from graphbatch import GraphSAINTRandomWalkSampler
from graphbatch.datasets import load, random_split

pytestmark = needs_datasets


class GCN(torch.nn.Module):
    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        # The weights are normalized outside: the subgraph's own degrees would be wrong.
        self.conv1 = GCNConv(in_channels, hidden, normalize=False)
        self.conv2 = GCNConv(hidden, out_channels, normalize=False)

    def forward(self, x, edge_index, edge_weight):
        x = F.dropout(x, 0.5, self.training)
        x = F.relu(self.conv1(x, edge_index, edge_weight))
        x = F.dropout(x, 0.5, self.training)
        return self.conv2(x, edge_index, edge_weight)


def with_self_loops(edge_index, edge_weight, loop_weight):
    loop = torch.arange(loop_weight.numel())
    return (torch.cat([edge_index, torch.stack([loop, loop])], 1),
            torch.cat([edge_weight, loop_weight]))


@pytest.mark.slow
def test_graphsaint_random_walk_matches_full_batch_gcn(tmp_path):
    data = load("Computers", root=tmp_path)
    n = data.num_nodes
    masks = random_split(n, seed=0)
    data.train_mask, data.val_mask, data.test_mask = masks
    row, col = data.edge_index
    deg = degree(col, n) + 1  # with the self-loop
    weight = deg[row].rsqrt() * deg[col].rsqrt()
    full_ei, full_w = with_self_loops(data.edge_index, weight, 1.0 / deg)
    num_classes = int(data.y.max()) + 1

    def test_at_best_val(model) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            pred = model(data.x, full_ei, full_w).argmax(-1)
        return val_test_accuracy(pred, data.y, masks)

    torch.manual_seed(0)
    model = GCN(data.num_features, 128, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    full = (0.0, 0.0)
    for epoch in range(200):
        model.train()
        opt.zero_grad()
        out = model(data.x, full_ei, full_w)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        if epoch % 10 == 9:
            full = max(full, test_at_best_val(model))

    torch.manual_seed(0)
    loader = GraphSAINTRandomWalkSampler(data, batch_size=2000, walk_length=2, num_steps=5,
                                         sample_coverage=50, roots=data.train_mask, log=False)
    model = GCN(data.num_features, 128, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    saint = (0.0, 0.0)
    for epoch in range(80):
        model.train()
        for batch in loader:
            opt.zero_grad()
            ei, w = with_self_loops(batch.edge_index, batch.edge_norm * weight[batch.e_id],
                                    1.0 / deg[batch.n_id])
            loss = F.cross_entropy(model(batch.x, ei, w), batch.y, reduction="none")
            (loss * batch.node_norm)[batch.train_mask].sum().backward()
            opt.step()
        if epoch % 5 == 4:
            saint = max(saint, test_at_best_val(model))

    print(f"Computers GCN test accuracy: full batch {full[1]:.4f}, GraphSAINT-RW {saint[1]:.4f}")
    assert saint[1] >= full[1] - 0.015, (
        f"GraphSAINT-RW {saint[1]:.4f} is more than 1.5 points below full batch {full[1]:.4f}")
