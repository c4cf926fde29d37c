"""Bad config values are refused with a message that names the flag."""

import pytest

from minimoe.config import Config, ConfigError
from minimoe.train import main


@pytest.mark.parametrize("section,field,value,flag", [
    ("moe", "top_k", 5, "--top-k"),  # K > E (E = 4)
    ("moe", "top_k", 0, "--top-k"),
    ("train", "steps", -1, "--steps"),
    ("model", "width", 0, "--width"),
    ("moe", "expert_hidden", 0, "--expert-hidden"),
    ("moe", "gating", "fuzzy", "--gating"),
    ("model", "heads", 5, "--heads"),  # does not divide width 48
    ("model", "moe_start_layer", 3, "--moe-start-layer"),
    ("moe", "aux_alpha", -0.1, "--aux-alpha"),
])
def test_bad_values_are_refused_naming_the_flag(section, field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        Config().replace(**{section: {field: value}})


def test_k_larger_than_e_message_says_why():
    with pytest.raises(ConfigError, match="K must be <= E"):
        Config().replace(moe={"experts": 2, "top_k": 3})


def test_unknown_field_is_refused():
    with pytest.raises(ConfigError, match="unknown moe field"):
        Config().replace(moe={"expertz": 3})


def test_cli_prints_one_line_and_exits_2(capsys):
    assert main(["--experts", "2", "--top-k", "3", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --top-k 3") and err.count("\n") == 1


def test_cli_rejects_unknown_gating_choice(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--gating", "fuzzy"])
    assert e.value.code == 2
    assert "--gating" in capsys.readouterr().err
