"""One registry class serves networks, recipes and pipeline steps."""

from __future__ import annotations

import pytest

from pixforge.nn.registry import GENERATORS
from pixforge.pipeline.steps import STEPS
from pixforge.registry import Registry, UnknownNameError
from pixforge.train.recipe import RECIPES, create_recipe


def test_a_name_registered_twice_is_an_error():
    things: Registry = Registry("thing")
    things.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        things.register("a")(lambda: 2)
    things.register("big_<n>")(lambda n: n)
    with pytest.raises(ValueError, match="registered twice"):
        things.register("big_<n>")(lambda n: n)


def test_families_capture_their_number_and_unknown_names_list_the_known_ones():
    things: Registry = Registry("thing")
    things.register("unet_<size>")(lambda size, ngf=1: (size, ngf))
    assert things.get("unet_128")(ngf=4) == (128, 4)
    assert "unet_7" in things and "resnet" not in things
    with pytest.raises(UnknownNameError, match=r"unknown thing 'resnet'; known: unet_<size>"):
        things.get("resnet")


def test_recipes_networks_and_steps_share_the_class():
    import torch

    from pixforge.config import config_from_dict

    create_recipe(config_from_dict({"model": {"generator": "unet_32", "ngf": 4, "ndf": 4}}), torch.device("cpu"))
    assert {"pix2pix", "pix2pixhd", "spade", "cyclegan", "cut", "cgan"} <= set(RECIPES.names())
    for registry in (RECIPES, GENERATORS, STEPS):
        assert isinstance(registry, Registry)
    with pytest.raises(UnknownNameError, match="unknown model.kind 'stylegan'; known: cgan, cut, cyclegan, pix2pix"):
        create_recipe(config_from_dict({"model": {"kind": "stylegan"}}), torch.device("cpu"))
