import pytest

from gan.config import GANConfig, get_config, parse_overrides


def test_override_and_round_trip():
    cfg = get_config("tiny", {"model.tau": 0.05, "train.batch_size": 8})
    assert cfg.model.tau == 0.05 and cfg.train.batch_size == 8
    assert GANConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_keys_raise():
    with pytest.raises(KeyError, match="nonsense"):
        get_config("tiny", {"model.nonsense": 1})
    with pytest.raises(KeyError, match="preset"):
        get_config("no-such-preset")
    with pytest.raises(KeyError):
        get_config("tiny", {"tau": 1})


def test_invalid_values_raise():
    with pytest.raises(ValueError, match="resolution"):
        get_config("tiny", {"model.resolution": 48})
    with pytest.raises(ValueError, match="g_channels"):
        get_config("tiny", {"model.g_channels": (8, 8)})
    with pytest.raises(ValueError, match="conditioning"):
        get_config("tiny", {"model.conditioning": "product"})


def test_parse_overrides_types():
    d = parse_overrides(["model.tau=0.02", "train.flip=False", "model.g_channels=(8,8,8,8)", "train.amp=off"])
    assert d == {"model.tau": 0.02, "train.flip": False, "model.g_channels": (8, 8, 8, 8), "train.amp": "off"}
    assert parse_overrides(["train.flip=true", "train.kp_recon_mix=TRUE", "a.b=false"]) == {
        "train.flip": True,
        "train.kp_recon_mix": True,
        "a.b": False,
    }
    with pytest.raises(ValueError):
        parse_overrides(["model.tau"])
