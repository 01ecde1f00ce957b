"""Tests of config overrides."""

import dataclasses

import pytest

from defects_jax import config as config_lib


@dataclasses.dataclass(frozen=True)
class C:
  steps: int = 10
  lr: float = 1e-3
  name: str = "a"
  flag: bool = False
  widths: tuple = (8, 16)


def test_overrides_parse_by_field_type():
  c = config_lib.override(C(), ["steps=20", "lr=0.5", "name=b", "flag=true", "widths=4,8,12"])
  assert c == C(steps=20, lr=0.5, name="b", flag=True, widths=(4, 8, 12))
  assert config_lib.to_dict(c)["widths"] == [4, 8, 12]


@pytest.mark.parametrize("bad, msg", [("steps", "expected field=value"),
                                      ("nope=1", "unknown field 'nope'"),
                                      ("steps=abc", "invalid literal"),
                                      ("flag=maybe", "expected a boolean")])
def test_bad_overrides(bad, msg):
  with pytest.raises(ValueError, match=msg):
    config_lib.override(C(), [bad])


@dataclasses.dataclass(frozen=True)
class P(config_lib.Base):
  DATASETS = ("synthetic", "neu")
  steps: int = config_lib.field(100, paper="section 4: 100 steps")
  lr: float = config_lib.field(0.1, doc="learning rate")
  widths: tuple = config_lib.field((8, 16), paper="Table 1")


def test_presets_are_stamped_and_unknown_presets_list_the_names():
  table = config_lib.presets(paper=P(), smoke=P(steps=3))
  assert table["smoke"].preset == "smoke" and table["paper"].preset == "paper"
  assert config_lib.get_preset(table, "smoke").steps == 3
  with pytest.raises(config_lib.ConfigError, match="unknown preset 'x'; presets: paper, smoke"):
    config_lib.get_preset(table, "x")
  with pytest.raises(config_lib.ConfigError, match="choose a preset with --preset"):
    config_lib.override(table["smoke"], ["preset=paper"])


def test_differs_from_paper_lists_marked_fields_only():
  paper = P()
  assert config_lib.differs_from_paper(paper, paper) == []
  got = config_lib.differs_from_paper(P(steps=3, lr=0.5, widths=(4,), seed=2), paper)
  assert got == ["steps 3 (paper: 100; section 4: 100 steps)",
                 "widths 4 (paper: 8, 16; Table 1)"]  # lr and seed carry no paper= mark


def test_describe_prints_each_field_with_its_doc_and_source():
  text = config_lib.describe(P())
  assert "steps = 100" in text and "# paper: section 4: 100 steps" in text
  assert "lr = 0.1" in text and "# learning rate" in text
  assert "widths = 8, 16" in text and "{" not in text and "[" not in text


def test_from_dict_round_trip_and_unknown_fields():
  cfg = P(widths=(1, 2, 3))
  assert config_lib.from_dict(P, {"experiment": "x", **config_lib.to_dict(cfg)}) == cfg
  with pytest.raises(config_lib.ConfigError, match=r"fields \['bogus'\]"):
    config_lib.from_dict(P, {"bogus": 1})


@pytest.mark.parametrize("changes, message", [
    ({"dataset": "kolektor"}, "unknown dataset 'kolektor'"),
    ({"seed": -1}, "seed"), ({"log_every": 0}, "log_every"),
    ({"on_error": "ignore"}, "on_error"), ({"worker_count": -1}, "worker_count")])
def test_base_validation_names_the_field(changes, message):
  with pytest.raises(config_lib.ConfigError, match=message) as e:
    dataclasses.replace(P(), **changes).validate()
  assert "--set" in e.value.hint
