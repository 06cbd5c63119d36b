"""to_hetero(GraphSAGE) trained with graphbatch's heterogeneous NeighborLoader reaches
full-batch accuracy on a heterogeneous graph built from real data.

The graph: DBLP from CitationFull (``../shared/datasets``, the catalog's ``DBLP``:
17,716 computer-science papers in 4 classes (database, data mining, AI, computer
vision), 105,734 directed citation edges, a 1,639-word binary bag of words per paper;
its random 60/20/20 split, seed 0). Each word becomes a node of type ``term``:

- ``paper``: 17,716 nodes, ``y`` the class; ``x`` the paper's bag of words projected
  to 64 dimensions by a fixed Gaussian code per word (the sum of its words' codes).
- ``term``: 1,639 nodes, ``x`` the word's 64-dimensional code.
- ``(paper, cites, paper)``: the 105,734 citations; ``(paper, has, term)``: 92,192
  edges, one per word a paper holds; ``(term, in, paper)``: their reverses.

Both models are ``to_hetero(GraphSAGE(64 hidden, 2 layers, dropout 0.5), aggr="sum")``
with Adam (lr 0.01, weight decay 5e-4), torch seed 0: full-batch for 100 epochs, and
with ``NeighborLoader(data, [10, 10], input_nodes=("paper", train_mask),
batch_size=1024, shuffle=True)`` for 15 epochs. Both are tested on the whole graph.
Run alone: ``.venv/bin/pytest -q tests/test_train_hetero.py``.
"""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData
from torch_geometric.nn import GraphSAGE, to_hetero

from conftest import needs_datasets
from graphbatch import NeighborLoader
from graphbatch.datasets import load

pytestmark = needs_datasets

CODE_DIM = 64


def dblp_papers_and_terms(root) -> HeteroData:
    """DBLP as papers and terms (see the module docstring)."""
    d = load("DBLP", root=root)
    code = torch.randn(d.x.size(1), CODE_DIM, generator=torch.Generator().manual_seed(0))
    code /= CODE_DIM ** 0.5
    h = HeteroData()
    h["paper"].x = d.x @ code
    h["paper"].y = d.y
    for key in ("train_mask", "val_mask", "test_mask"):
        h["paper"][key] = d[key]
    h["term"].x = code
    h["paper", "cites", "paper"].edge_index = d.edge_index
    has = d.x.nonzero().t().contiguous()
    h["paper", "has", "term"].edge_index = has
    h["term", "in", "paper"].edge_index = has.flip(0)
    return h


def new_model(data: HeteroData) -> torch.nn.Module:
    torch.manual_seed(0)
    model = to_hetero(GraphSAGE((-1, -1), 64, 2, out_channels=4, dropout=0.5), data.metadata(),
                      aggr="sum")
    with torch.no_grad():  # lazy parameters made before the optimizer sees them
        model(data.x_dict, data.edge_index_dict)
    return model


def full_graph_logits(model, data: HeteroData) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(data.x_dict, data.edge_index_dict)["paper"]


def accuracy_on_test(logits, data: HeteroData) -> float:
    mask = data["paper"].test_mask
    return (logits[mask].argmax(-1) == data["paper"].y[mask]).float().mean().item()


@pytest.fixture
def one_torch_thread():
    """torch on one thread: its idle OpenMP threads spin against the loader's prefetch
    threads on 2 cores (the README's OMP_WAIT_POLICY note), and 64 channels need no more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_to_hetero_graphsage_with_loader_reaches_full_batch_accuracy(tmp_path, one_torch_thread):
    data = dblp_papers_and_terms(tmp_path)
    paper = data["paper"]

    full = new_model(data)
    opt = torch.optim.Adam(full.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(100):
        full.train()
        opt.zero_grad()
        out = full(data.x_dict, data.edge_index_dict)["paper"]
        F.cross_entropy(out[paper.train_mask], paper.y[paper.train_mask]).backward()
        opt.step()
    full_acc = accuracy_on_test(full_graph_logits(full, data), data)

    sampled = new_model(data)
    opt = torch.optim.Adam(sampled.parameters(), lr=0.01, weight_decay=5e-4)
    train = NeighborLoader(data, [10, 10], input_nodes=("paper", paper.train_mask),
                           batch_size=1024, shuffle=True)
    for _ in range(15):
        sampled.train()
        for batch in train:
            opt.zero_grad()
            size = batch["paper"].batch_size
            out = sampled(batch.x_dict, batch.edge_index_dict)["paper"][:size]
            F.cross_entropy(out, batch["paper"].y[:size]).backward()
            opt.step()
    logits = full_graph_logits(sampled, data)
    loader_acc = accuracy_on_test(logits, data)
    print(f"full-batch {full_acc:.4f}, NeighborLoader {loader_acc:.4f}")
    assert full_acc >= 0.78, f"full-batch training reached {full_acc:.3f}"
    assert loader_acc >= full_acc - 0.015, (
        f"NeighborLoader training reached {loader_acc:.4f}, full-batch {full_acc:.4f}")

    # Every neighbor of every edge type over 2 hops is the whole receptive field: the
    # loader's batches give the seeds the logits of the whole graph.
    test = NeighborLoader(data, [-1, -1], input_nodes=("paper", paper.test_mask), batch_size=2048)
    sampled.eval()
    with torch.no_grad():
        for batch in test:
            size = batch["paper"].batch_size
            got = sampled(batch.x_dict, batch.edge_index_dict)["paper"][:size]
            want = logits[batch["paper"].n_id[:size]]
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
