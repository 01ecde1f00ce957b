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
