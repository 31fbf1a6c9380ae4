import pytest

from pixforge.config import Config, ConfigError, list_presets, load_config


def test_defaults_are_the_papers():
    cfg = Config()
    assert (cfg.model.generator, cfg.model.discriminator, cfg.model.n_layers_d) == ("unet_256", "patchgan", 3)
    assert (cfg.train.lr, cfg.train.beta1, cfg.loss.lambda_l1) == (2e-4, 0.5, 100.0)
    assert (cfg.data.load_size, cfg.data.crop_size, cfg.data.flip) == (286, 256, True)


def test_presets_carry_the_papers_settings_per_dataset():
    assert set(list_presets()) >= {"facades", "maps", "edges2shoes", "demo"}
    assert load_config("facades").data.direction == "BtoA"
    shoes = load_config("preset:edges2shoes")
    assert (shoes.train.batch_size, shoes.data.flip, shoes.data.preprocess) == (4, False, "none")
    assert load_config("maps").train.n_epochs + load_config("maps").train.n_epochs_decay == 200


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = load_config("facades", {"train": {"max_steps": 5}})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path) == cfg


def test_bad_field_is_named_with_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: {batch_size: 0}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: field 'train.batch_size': Input should be greater"):
        load_config(path)
    path.write_text("model: {generatr: unet_256}\n")
    with pytest.raises(ConfigError, match=r"field 'model.generatr': Extra inputs are not permitted"):
        load_config(path)
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_crop_larger_than_the_resize_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {load_size: 200, crop_size: 256}\n")
    with pytest.raises(ConfigError, match="field 'data': Value error, load_size 200 is smaller than crop_size 256"):
        load_config(path)
