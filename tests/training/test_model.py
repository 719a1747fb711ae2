"""GPT: shapes, named sizes, FLOP formula, document masking, and that it learns."""

from __future__ import annotations

import math

import pytest
import torch

from training.trainer.model import CONFIGS, GPT, GPTConfig, model_config


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP spinning makes two threads ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(model_config("tiny", vocab_size=97, block_size=32, **kw))


def test_forward_shapes_and_initial_loss_near_uniform():
    model = _tiny()
    x, y = torch.randint(0, 97, (3, 16)), torch.randint(0, 97, (3, 16))
    logits, loss = model(x, y)
    assert logits.shape == (3, 16, 97)
    assert abs(loss.item() - math.log(97)) < 0.3
    assert model(x)[1] is None
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_named_sizes_match_published_parameter_counts():
    with torch.device("meta"):  # no memory, no init cost
        gpt2 = GPT(model_config("gpt2-124m", vocab_size=50257))
    assert abs(gpt2.num_params(non_embedding=False) - 124.4e6) < 0.2e6  # GPT-2 small, tied embeddings
    sizes = []
    for name in CONFIGS:
        with torch.device("meta"):
            sizes.append(GPT(model_config(name)).num_params())
    assert sizes == sorted(sizes)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_layer=1, n_head=3, n_embd=64)
    with pytest.raises(ValueError, match="unknown model config"):
        model_config("huge")


def test_flops_per_token_is_6n_plus_attention():
    model = _tiny()
    n = model.num_params()
    assert model.flops_per_token(32) == 6 * n + 12 * 2 * 2 * 32 * 32


def test_document_mask_isolates_documents():
    model = _tiny().eval()
    x = torch.randint(0, 97, (1, 20))
    doc = torch.tensor([[0] * 8 + [1] * 12])
    pos = torch.tensor([list(range(8)) + list(range(12))])
    y = x.clone()
    y[0, :8] = torch.randint(0, 97, (8,))  # change only the first document
    a, _ = model(x, position_ids=pos, doc_ids=doc)
    b, _ = model(y, position_ids=pos, doc_ids=doc)
    assert torch.allclose(a[0, 8:], b[0, 8:], atol=1e-5)  # the second document never saw the first
    c, _ = model(y)
    assert not torch.allclose(a[0, 8:], c[0, 8:], atol=1e-5)  # without the mask it does


def test_tiny_model_overfits_a_batch():
    model = _tiny()
    opt = model.configure_optimizer(lr=3e-3, weight_decay=0.0, betas=(0.9, 0.95), fused=False)
    x = torch.randint(0, 97, (4, 32))
    first = None
    for _ in range(60):
        _, loss = model(x[:, :-1], x[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2
    assert model.generate(x[:, :4], 5).shape == (4, 9)
