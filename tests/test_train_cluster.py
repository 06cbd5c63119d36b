"""Cluster-GCN batches train a GCN about as well as full-batch training.

A 2-layer GCN on Coauthor CS (seeded random 60/20/20 split), trained on batches of 10
of 40 METIS clusters (edges between the chosen clusters restored; ``GCNConv``
normalizing within the batch, as in the paper), must come within 1.5 points of test
accuracy of the same GCN trained full-batch. Both report the test accuracy at their
best validation accuracy.
"""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from conftest import needs_datasets, val_test_accuracy
from graphbatch import ClusterData, ClusterLoader
from graphbatch.datasets import load, random_split

pytestmark = needs_datasets


class GCN(torch.nn.Module):
    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, out_channels)

    def forward(self, x, edge_index):
        x = F.dropout(x, 0.5, self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, 0.5, self.training)
        return self.conv2(x, edge_index)


@pytest.mark.slow
def test_cluster_gcn_matches_full_batch_gcn(tmp_path):
    data = load("CS", root=tmp_path)
    n = data.num_nodes
    masks = random_split(n, seed=0)
    data.train_mask, data.val_mask, data.test_mask = masks
    num_classes = int(data.y.max()) + 1

    def test_at_best_val(model) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        return val_test_accuracy(pred, data.y, masks)

    def new_model():
        model = GCN(data.num_features, 64, num_classes)
        return model, torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)

    torch.manual_seed(0)
    model, opt = new_model()
    full = (0.0, 0.0)
    for epoch in range(100):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        if epoch % 10 == 9:
            full = max(full, test_at_best_val(model))

    torch.manual_seed(0)
    loader = ClusterLoader(ClusterData(data, 40, log=False), batch_size=10, shuffle=True)
    model, opt = new_model()
    cluster = (0.0, 0.0)
    for epoch in range(50):
        model.train()
        for batch in loader:
            opt.zero_grad()
            out = model(batch.x, batch.edge_index)
            F.cross_entropy(out[batch.train_mask], batch.y[batch.train_mask]).backward()
            opt.step()
        if epoch % 5 == 4:
            cluster = max(cluster, test_at_best_val(model))

    print(f"CS GCN test accuracy: full batch {full[1]:.4f}, Cluster-GCN {cluster[1]:.4f}")
    assert cluster[1] >= full[1] - 0.015, (
        f"Cluster-GCN {cluster[1]:.4f} is more than 1.5 points below full batch {full[1]:.4f}")
