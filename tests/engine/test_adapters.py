"""The adapter protocol: one path reads every representation, and its error names the layer."""

import pytest
import torch
from torch import nn

import viz_engine.adapters as adapters
from viz_engine.adapters import AdapterError, Feature, Modality, TorchModuleAdapter
from viz_engine.methods.gradient_x_input import gradient_x_input

NOT_REACHED = "layer='spare' was not reached by the forward pass"


class WithASpareLayer(nn.Module):
    """A model that builds a layer its forward pass never runs."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 5), nn.GELU())
        self.spare = nn.Linear(5, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, a, b):
        return self.head(self.body(torch.cat([a, b], dim=1)))


@pytest.fixture
def adapter_and_batch():
    torch.manual_seed(0)
    adapter = TorchModuleAdapter(
        WithASpareLayer(),
        modalities=[Modality("a", "field", (3,), "bar"), Modality("b", "field", (3,), "bar")],
        class_names=["x", "y", "z"],
    )
    return adapter, adapter.make_batch(torch.randn(4, 3), torch.randn(4, 3))


def test_a_layer_the_forward_pass_never_reaches_is_an_adapter_error_naming_it(adapter_and_batch):
    adapter, batch = adapter_and_batch
    assert "spare" in adapter.layer_names()
    with pytest.raises(AdapterError, match=NOT_REACHED):
        adapter.representation(batch, "spare")
    with pytest.raises(AdapterError, match=NOT_REACHED):
        adapter.logits_and_representation(batch, "spare")


def test_explaining_a_feature_of_an_unreached_layer_is_the_same_adapter_error(adapter_and_batch):
    adapter, batch = adapter_and_batch
    with pytest.raises(AdapterError, match=NOT_REACHED):
        gradient_x_input(adapter, batch, Feature(0, "spare"), "a")


def test_representation_and_logits_and_representation_read_the_same_features(adapter_and_batch):
    adapter, batch = adapter_and_batch
    for layer in (None, "body", "body.0"):
        logits, features = adapter.logits_and_representation(batch, layer)
        torch.testing.assert_close(features, adapter.representation(batch, layer))
        torch.testing.assert_close(logits, adapter.logits(batch))
    penultimate = adapter.module.body(torch.cat([batch.inputs["a"], batch.inputs["b"]], 1))
    torch.testing.assert_close(adapter.representation(batch), penultimate)


def test_an_unknown_layer_lists_the_layers_there_are(adapter_and_batch):
    adapter, batch = adapter_and_batch
    with pytest.raises(AdapterError, match=r"layer='nowhere' is unknown; layers: \['penultimate', 'body'"):
        adapter.logits_and_representation(batch, "nowhere")


def test_every_public_name_of_the_adapters_package_imports_from_it():
    for name in adapters.__all__:
        assert getattr(adapters, name) is not None, name
