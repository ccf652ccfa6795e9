"""The search record: arch.json and pareto.json are its dicts, an arch.json reads back as the same
record (this one's and one written before the record, schema 1), and a file that is not one is
refused naming it."""

import dataclasses
import json

import pytest

from nas.search.record import SearchRecord
from nas.search.run import search_device
from nas.search.settings import SearchError, SearchSettings
from search_spaces.arch_spec import ArchSpec


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A short search with the default (ImageNet) estimator: a mapping, its error and the
    published comparison, so every part of the record is filled."""
    out = tmp_path_factory.mktemp("search") / "pixel4"
    return search_device(SearchSettings(target="pixel4", population=16, generations=4), out), out


def test_arch_json_and_pareto_json_are_the_record_and_read_back_as_it(searched):
    record, out = searched
    arch = json.loads((out / "arch.json").read_text())
    assert arch == record.to_dict() and json.loads((out / "pareto.json").read_text()) == record.pareto_dict()
    again = SearchRecord.load(out / "arch.json")
    assert again.to_dict() == arch  # every key, nothing lost or added
    assert again == dataclasses.replace(record, front=(), published=())  # arch.json holds neither
    assert record.accuracy.mapped is not None and record.comparison is not None and record.front and record.published
    assert ArchSpec.load(out / "arch.json").content_hash() == again.choice.spec_hash


def schema_1(arch: dict) -> dict:
    """An arch.json as written before the estimators declared their scope (schema 1): no form, no
    mapping, no published comparison, the estimator's file, hash, data and summary only."""
    added = ("form", "published_comparison", "footprint", "size_budgets", "binding")  # in schema 2 or 3
    old = {k: v for k, v in arch.items() if k not in added and not k.startswith("mapped")}
    old["target"] = {k: v for k, v in arch["target"].items() if k != "integer_io"}
    estimator = arch["estimator"]
    old["estimator"] = {"file": estimator["file"], "sha256": estimator["sha256"], "data": "fashion-mnist"}
    old["estimator"]["summary"] = estimator["summary"]
    return {**old, "schema_version": 1}


def test_an_arch_json_of_schema_1_still_reads_saying_none_where_it_did_not_say(searched, tmp_path):
    record, out = searched
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(schema_1(record.to_dict()), indent=2))
    old = SearchRecord.load(path)
    assert (old.accuracy.form, old.accuracy.estimated_top1_is, old.accuracy.mapped) == (None, None, None)
    assert (old.estimator.name, old.estimator.scores, old.comparison) == (None, None, None)
    assert (old.choice, old.costs, old.budgets, old.seed, old.target) == (
        record.choice,
        dataclasses.replace(record.costs, footprints=()),  # no footprint before schema 3
        dataclasses.replace(record.budgets, binding=None),
        record.seed,
        record.target,
    )
    assert ArchSpec.load(path).content_hash() == record.choice.spec_hash  # and still reads as its spec


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: {**d, "kind": "platform-nas/pareto-front"}, "not a search result (kind"),
        (lambda d: {**d, "schema_version": 4}, "schema_version 4, this program reads (1, 2, 3)"),
        (lambda d: {**d, "footprint": [{"precision": "int4"}]}, "malformed (ValueError: footprint"),
        (lambda d: {**d, "target": {**d["target"], "integer_io": "yes"}}, "integer_io: expected true or false"),
        (lambda d: {k: v for k, v in d.items() if k != "budget_ms"}, "malformed (KeyError: 'budget_ms')"),
        (lambda d: {**d, "macs": "many"}, "malformed (ValueError"),
        (lambda d: {**d, "spec": {**d["spec"], "layers": 7}}, "layers"),
    ],
)
def test_a_file_that_is_no_search_result_is_refused_naming_it(searched, tmp_path, edit, message):
    record, _ = searched
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(edit(record.to_dict())))
    with pytest.raises(SearchError, match=str(path)) as exc:
        SearchRecord.load(path)
    assert message in str(exc.value)
