"""Bad config values are refused with a message that names the flag."""

import pytest

from minimoe.config import Config, ConfigError, build_parser, config_file_in, config_from_args
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


@pytest.mark.parametrize("flag", ["--lr", "--weight-decay", "--z-alpha", "--router-init-std", "--aux-alpha"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_float_that_is_not_finite_is_refused_before_training(flag, value, capsys):
    assert main([f"{flag}={value}", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} ") and "finite" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv,words", [
    (["--batch", "100000000"], ["--batch 100000000", "at most 1,048,576"]),
    (["--seed", str(2**63)], ["--seed", "0 to 2^63 - 1"]),
    (["--seed", "-1"], ["--seed", "0 to 2^63 - 1"]),
])
def test_a_value_out_of_range_is_refused_with_the_range(argv, words, capsys):
    assert main([*argv, "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and all(w in err for w in words)


def test_a_value_of_the_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="--width 'abc': must be a whole number"):
        Config().replace(model={"width": "abc"})
    with pytest.raises(ConfigError, match="--baseline 1: must be true or false"):
        Config().replace(train={"baseline": 1})
    assert Config().replace(train={"lr": 1}).train.lr == 1.0  # a whole number is a fine float


def test_a_config_file_sets_the_defaults_and_flags_win(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("moe:\n  experts: 8\n  top_k: 2\ntrain:\n  steps: 7\n")
    argv = ["--config", str(f), "--top-k", "3"]
    cfg = config_from_args(build_parser(defaults=config_file_in(argv)).parse_args(argv))
    assert (cfg.moe.experts, cfg.moe.top_k, cfg.train.steps, cfg.model.width) == (8, 3, 7, 48)


@pytest.mark.parametrize("text,match", [
    ("moe: [1, 2]\n", "model, moe and train"),
    ("optimizer:\n  lr: 1\n", "model, moe and train"),
    ("moe:\n  expertz: 3\n", "unknown moe field"),
    ("moe: {experts: 2, top_k: 3}\n", "K must be <= E"),
    ("moe: {experts: [unclosed\n", "not a readable YAML"),
])
def test_a_bad_config_file_is_refused_in_one_line(tmp_path, text, match, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["--config", str(f), "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --config {f}") and match in err and err.count("\n") == 1


def test_every_lab_settings_file_is_a_valid_config():
    from minimoe.experiments import LABS, settings_files

    settings = [f for d in sorted(LABS.glob("phase-*")) for f in settings_files(d)]
    assert {f.name for f in settings} >= {"lab.yaml", "super4096.yaml", "gating.yaml", "fair.yaml"}
    for f in settings:
        Config.from_file(f)
