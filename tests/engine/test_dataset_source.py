"""The dataset source protocol and the modality-generic sections (U and C as views), with
closed forms: a model linear in each modality plus one bilinear cross term."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import Modality, TorchModuleAdapter, atoms_per_element
from viz_engine.bundles import modality_stages
from viz_engine.bundles.dataset_source import (
    DatasetSource,
    SourceModality,
    atom_scores,
    check_source,
    is_protocol_source,
    query_modality,
)
from viz_engine.bundles.format import BundleError
from viz_engine.bundles.sources import FusionSource, ShapesVQASource, load_dataset

T, F, N_FIELDS = 3, 2, 4


class Bilinear(nn.Module):
    """logits = head([s, t, s ⊗ t]): ∂logit_c/∂s and ∂²logit_c/∂t[a]∂s are read off head's weights."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(T * F + N_FIELDS + T * F * N_FIELDS, 2)

    def forward(self, series, fields):
        s = series.flatten(1)
        return self.head(torch.cat([s, fields, (s[:, :, None] * fields[:, None, :]).flatten(1)], dim=1))


class ToySource:
    name = "toy"
    splits = ("train", "test")
    class_names = ("no", "yes")
    modalities = (SourceModality("series", "timeseries", "step × channel", row=F),
                  SourceModality("fields", "tabular", "field"))

    def examples(self, split, n=None):
        rng = np.random.default_rng(0 if split == "train" else 1)
        data = [{"series": rng.normal(size=(T, F)), "fields": rng.normal(size=N_FIELDS)} for _ in range(40)]
        return data if n is None else data[:n]

    def label(self, example):
        return "yes"

    def make_batch(self, adapter, examples):
        return adapter.make_batch(torch.tensor(np.stack([e["series"] for e in examples])),
                                  torch.tensor(np.stack([e["fields"] for e in examples])),
                                  atom_labels={"fields": [[f"f{k}" for k in range(N_FIELDS)]] * len(examples)})

    def datapoint(self, example):
        return [{"name": "series", "kind": "timeseries", "values": example["series"].tolist(),
                 "feature_names": ["a", "b"]},
                {"name": "fields", "kind": "tabular",
                 "fields": [{"name": f"f{k}", "value": float(v)} for k, v in enumerate(example["fields"])]}]


def _toy():
    adapter = TorchModuleAdapter(Bilinear(), class_names=("no", "yes"),
                                 modalities=[Modality("series", "time_step", (T, F), "series_heatmap"),
                                             Modality("fields", "field", (N_FIELDS,), "bar")],
                                 atom_fns={"series": atoms_per_element})
    return ToySource(), adapter


def test_sources_with_the_protocols_members_are_protocol_sources_and_shapes_vqa_keeps_its_own():
    assert isinstance(ToySource(), DatasetSource) and is_protocol_source(ToySource())
    assert is_protocol_source(FusionSource()) and is_protocol_source(load_dataset("fusion"))
    assert not is_protocol_source(ShapesVQASource())


def test_check_source_names_what_a_source_lacks_or_where_it_disagrees_with_the_model():
    source, adapter = _toy()
    check_source(source, adapter)
    with pytest.raises(BundleError, match="lacks datapoint"):
        check_source(type("NoDatapoint", (), {k: getattr(ToySource, k) for k in
                                              ("name", "splits", "class_names", "modalities", "examples",
                                               "label", "make_batch")})())
    wrong = ToySource()
    wrong.class_names = ("a", "b")
    with pytest.raises(BundleError, match="classes"):
        check_source(wrong, adapter)
    wrong = ToySource()
    wrong.modalities = (SourceModality("series", "timeseries", "x", row=F), SourceModality("other", "tabular", "f"))
    with pytest.raises(BundleError, match="not the model's"):
        check_source(wrong, adapter)


def test_source_modality_refuses_an_unknown_kind_and_a_series_without_rows():
    with pytest.raises(BundleError, match="kind"):
        SourceModality("x", "smell", "sniff")
    with pytest.raises(BundleError, match="needs row"):
        SourceModality("x", "timeseries", "step")


def test_atom_scores_take_the_contracts_shape_per_kind_and_drop_padding():
    ts = SourceModality("s", "timeseries", "step", row=2)
    assert atom_scores(ts, np.arange(6.0)) == [[0, 1], [2, 3], [4, 5]]
    assert atom_scores(SourceModality("w", "text", "word"), [1.0, 2.0, np.nan, np.nan]) == [1.0, 2.0]
    assert atom_scores(SourceModality("i", "image", "patch", row=2), np.ones(4)) == {"grid": [[1, 1], [1, 1]]}
    with pytest.raises(BundleError, match="rows of 2"):
        atom_scores(ts, np.arange(5.0))


def test_query_modality_is_the_sources_choice_else_the_one_with_fewest_atoms():
    source, adapter = _toy()
    batch = source.make_batch(adapter, source.examples("test", 1))
    assert query_modality(source, batch) == "fields"  # 4 fields < 6 series atoms
    source.query_modality = "series"
    assert query_modality(source, batch) == "series"


def _ctx(source, adapter, queries=2):
    return SimpleNamespace(source=source, adapter=adapter,
                           params={"U": {"method": "gradient"}, "C": {"queries": queries}})


def test_u_views_are_the_gradient_of_the_predicted_logit_in_closed_form():
    source, adapter = _toy()
    ex = source.examples("test", 1)[0]
    batch = source.make_batch(adapter, [ex])
    w = adapter.module.head.weight.detach().double().numpy()[1]
    ws, wt, wst = w[:T * F], w[T * F:T * F + N_FIELDS], w[T * F + N_FIELDS:].reshape(T * F, N_FIELDS)
    s, t = ex["series"].ravel(), ex["fields"]
    u = modality_stages.unimodal(_ctx(source, adapter), batch, 1)
    series, fields = u["views"]
    assert series["modality"] == "series" and fields["modality"] == "fields"
    assert np.array(series["scores"]).shape == (T, F)
    np.testing.assert_allclose(np.array(series["scores"]).ravel(), ws + wst @ t, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(fields["scores"], wt + s @ wst, rtol=1e-3, atol=1e-6)


def test_c_views_are_the_cross_term_from_the_fields_with_largest_gradient_one_per_query():
    source, adapter = _toy()
    ex = source.examples("test", 1)[0]
    batch = source.make_batch(adapter, [ex])
    w = adapter.module.head.weight.detach().double().numpy()[1]
    wt = w[T * F:T * F + N_FIELDS]
    wst = w[T * F + N_FIELDS:].reshape(T * F, N_FIELDS)
    u_fields = wt + ex["series"].ravel() @ wst
    c = modality_stages.cross_modal(_ctx(source, adapter, queries=2), batch, 1)
    expected = list(np.argsort(-np.abs(u_fields), kind="stable")[:2])
    assert c["queries"] == expected and c["query_modality"] == "fields"
    assert len(c["views"]) == 2
    for view, a in zip(c["views"], expected):
        assert view["modality"] == "series" and view["query"] == [a] and view["query_modality"] == "fields"
        assert f"f{a}" in view["title"]
        np.testing.assert_allclose(np.array(view["scores"]).ravel(), wst[:, a], rtol=1e-3, atol=1e-6)


def test_fusion_source_datapoint_is_a_timeseries_and_a_table_with_the_atoms_of_the_batch():
    from viz_engine.models.fusion import load_pretrained

    source = FusionSource()
    ex = source.examples("test", n=2)
    assert len(ex) == 2 and source.label(ex[0]) in source.class_names
    series, table = source.datapoint(ex[0])
    assert series["kind"] == "timeseries" and np.array(series["values"]).shape == (24, 5)
    assert series["feature_names"] == ["heart_rate", "resp_rate", "spo2", "temperature", "systolic_bp"]
    assert table["kind"] == "tabular" and [f["name"] for f in table["fields"]][-1] == "on_ventilator"
    adapter = load_pretrained("interaction")
    check_source(source, adapter)
    batch = source.make_batch(adapter, ex)
    assert int(batch.n_atoms("series")[0]) == 24 * 5 and int(batch.n_atoms("static")[0]) == 8


def test_an_item_record_needs_the_old_datapoint_or_the_contracts_modalities():
    from viz_engine.bundles.schema import check_item_record

    base = {"id": "x", "label": "a", "prediction": "a", "correct": True}
    check_item_record({**base, "datapoint": {}}, "item.json")
    check_item_record({**base, "modalities": [{"name": "s", "kind": "tabular", "fields": []}]}, "item.json")
    with pytest.raises(BundleError, match="needs one of 'datapoint', 'modalities'"):
        check_item_record(base, "items/x/item.json")
    with pytest.raises(BundleError, match="kind"):
        check_item_record({**base, "modalities": [{"name": "s", "kind": "smell"}]}, "item.json")
