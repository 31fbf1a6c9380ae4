import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import config_from_dict
from pixforge.infer.translator import Translator
from pixforge.nn.build import build_generator
from pixforge.runtime.device import cpu_has_native_bf16
from pixforge.runtime.scale import pad_to_multiple


def make_translator(input_nc: int = 3, output_nc: int = 3, dropout: bool = True, **kwargs) -> Translator:
    torch.manual_seed(0)
    cfg = config_from_dict({"model": {"generator": "unet_64", "ngf": 8, "dropout": dropout},
                            "data": {"input_nc": input_nc, "output_nc": output_nc}})
    generator = build_generator(cfg)
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        generator.train()(torch.randn(4, input_nc, 64, 64))
    return Translator(generator, cfg, **{"device": "cpu", "precision": "fp32", **kwargs})


def test_any_size_is_padded_translated_and_cropped_back():
    t = make_translator()
    for h, w in ((32, 32), (50, 70), (7, 100), (1, 1)):
        out = t.forward(torch.rand(2, 3, h, w) * 2 - 1)
        assert out.shape == (2, 3, h, w)


def test_padding_mirrors_where_it_can():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 4)
    assert torch.equal(padded[0, 0, 3], x[0, 0, 1])  # reflection of row 1 about row 2


def test_result_has_the_kind_of_the_input():
    t = make_translator()
    pil = Image.new("RGB", (40, 24), (200, 10, 10))
    assert isinstance(t.predict(pil), Image.Image) and t.predict(pil).size == (40, 24)
    arr = np.zeros((24, 40, 3), np.uint8)
    assert t.predict(arr).dtype == np.uint8 and t.predict(arr).shape == (24, 40, 3)
    deep = np.full((24, 40, 3), 40000, np.uint16)
    assert t.predict(deep).dtype == np.uint16
    ten = torch.zeros(3, 24, 40)
    assert t.predict(ten).shape == (3, 24, 40)
    assert t.predict(torch.zeros(2, 3, 24, 40)).shape == (2, 3, 24, 40)


def test_grey_and_alpha_inputs_are_converted_to_the_model_channels():
    t = make_translator(input_nc=1, output_nc=1)
    assert t.predict(Image.new("RGBA", (33, 17))).mode == "L"
    assert t.predict(np.zeros((17, 33), np.uint8)).shape == (17, 33)


def test_batch_prediction_equals_one_by_one():
    t = make_translator()
    images = [np.random.default_rng(i).integers(0, 256, (64 + 8 * (i % 2), 40, 3), np.uint8) for i in range(5)]
    batch = t.predict_batch(images, batch_size=2)
    for image, out in zip(images, batch, strict=True):
        assert np.array_equal(out, t.predict(image))


def test_eval_mode_is_deterministic_and_paper_mode_is_stochastic():
    x = torch.rand(1, 3, 64, 64)
    t = make_translator()
    assert torch.equal(t.forward(x), t.forward(x))
    paper = make_translator(paper_test_mode=True)
    assert not torch.equal(paper.forward(x), paper.forward(x))  # dropout stays on, as in the paper
    assert not paper.generator.training  # the switch is scoped to the call


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match=r"expected a batch of shape \(B, 3, H, W\)"):
        make_translator().forward(torch.zeros(1, 4, 8, 8))


def test_paper_mode_normalises_each_image_by_itself_whatever_its_batch():
    t = make_translator(dropout=False, paper_test_mode=True)  # no dropout: the output is deterministic
    batch = torch.rand(4, 3, 64, 64) * 2 - 1
    together = t.forward(batch)
    for i in range(4):  # as the paper's test.py at batch 1: batch-mates change nothing
        assert torch.allclose(together[i], t.forward(batch[i:i + 1])[0], atol=1e-6)
    assert not torch.allclose(together, make_translator(dropout=False).forward(batch), atol=1e-3)


def test_paper_mode_leaves_the_generator_state_bitwise_unchanged():
    t = make_translator(paper_test_mode=True)
    before = {k: v.clone() for k, v in t.generator.state_dict().items()}
    t.forward(torch.rand(3, 3, 64, 64) * 2 - 1)
    t.predict_batch([np.zeros((40, 50, 3), np.uint8)] * 2)
    after = t.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "running statistics moved"
    assert not t.generator.training


def test_precision_and_layout_default_to_the_fast_path_where_the_cpu_has_bf16():
    t = make_translator(precision="auto")
    expected = "bf16" if cpu_has_native_bf16() else "fp32"
    assert t.precision == expected and t.channels_last  # NHWC on the CPU in bf16 and in fp32 alike
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert (t.forward(x) - make_translator().forward(x)).abs().max() < 0.05  # bf16 tracks fp32


def test_bf16_runs_a_folded_bf16_copy_with_autocasts_outputs_and_leaves_the_generator_as_loaded():
    from pixforge.runtime.scale import apply_generator

    t = make_translator(precision="bf16")
    before = {k: v.clone() for k, v in t.generator.state_dict().items()}
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    unfolded = apply_generator(t.generator, x, multiple=t.size_multiple, size=None, device=t.device,
                               precision="bf16", memory_format=t.memory_format)
    assert (t.forward(x) - unfolded).abs().max() < 0.02  # bf16 rounding of the folded weights, no more
    fast = t._fast_generator()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # every BN followed a conv
    assert torch.bfloat16 in {p.dtype for p in fast.parameters()}
    after = t.generator.state_dict()  # exports, hashes and paper mode see the weights as loaded
    assert all(torch.equal(before[k], after[k]) for k in before)
    fp32 = make_translator(precision="fp32")
    assert fp32._fast_generator() is fp32.generator  # fp32 runs the model itself: the reference's numbers


def test_bad_options_are_named_before_anything_runs():
    with pytest.raises(ValueError, match="precision: 'fp64' is not one of auto, fp32, bf16, fp16"):
        make_translator(precision="fp64")
    with pytest.raises(ValueError, match="scale: 'huge' is not one of auto, trained, native, reference"):
        make_translator(scale="huge")
    with pytest.raises(ValueError, match="device: 'cuda' requested but CUDA is not available"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        make_translator(device="cuda")


def test_save_writes_a_marked_file_and_the_filter_withholds_a_flagged_one(tmp_path):
    from pixforge.provenance import Finding, SafetyFilter, UnsafeImageError, verify_file

    t = make_translator()
    photo = t.predict(Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)))
    path = t.save(photo, tmp_path / "out.png")
    report = verify_file(path)
    assert report.marked and report.watermark.model_hash_prefix == t.model_hash[:6]
    with pytest.raises(FileExistsError, match="out.png: already exists"):
        t.save(photo, path)
    flagging = SafetyFilter(detector=lambda image: [Finding("ANUS_EXPOSED", 0.9, (0, 0, 4, 4))])  # injected
    with pytest.raises(UnsafeImageError, match="flagged.jpg: the safety filter flagged explicit content"):
        t.save(photo, tmp_path / "flagged.jpg", safety=flagging)
    assert not (tmp_path / "flagged.jpg").exists()
    assert verify_file(t.save(t.forward(torch.rand(1, 3, 256, 256) * 2 - 1), tmp_path / "t.webp")).marked
