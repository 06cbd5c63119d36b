"""A standard PyG model trains on a real graph with graphbatch's NeighborLoader."""
import pytest
import torch
import torch.nn.functional as F
import torch_geometric.transforms as T

from conftest import needs_datasets
from graphbatch import NeighborLoader
from graphbatch.cli.harness.models import SAGE
from graphbatch.datasets import load

pytestmark = needs_datasets


@pytest.mark.slow
def test_graphsage_on_cora_reaches_published_accuracy(tmp_path):
    data = T.NormalizeFeatures()(load("Cora", root=tmp_path))
    torch.manual_seed(0)
    train = NeighborLoader(data, [10, 10], input_nodes=data.train_mask, batch_size=32, shuffle=True)
    test = NeighborLoader(data, [10, 10], input_nodes=data.test_mask, batch_size=1000)
    model = SAGE(data.num_features, 64, int(data.y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(50):
        model.train()
        for batch in train:
            opt.zero_grad()
            out = model(batch.x, batch.edge_index)[: batch.batch_size]
            F.cross_entropy(out, batch.y[: batch.batch_size]).backward()
            opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in test:
            pred = model(batch.x, batch.edge_index)[: batch.batch_size].argmax(-1)
            correct += int((pred == batch.y[: batch.batch_size]).sum())
    accuracy = correct / int(data.test_mask.sum())
    assert accuracy >= 0.78, f"GraphSAGE on Cora reached {accuracy:.3f} test accuracy"
