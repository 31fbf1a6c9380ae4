"""ONNX export of a trained generator (run it with ``Translator.from_onnx``, see ``onnx_generator``).

    export_onnx("runs/facades", "facades.onnx")              # a run directory, checkpoint or Translator
    t = Translator.from_onnx("facades.onnx")                 # same predict()/forward() as from_pretrained

The file is self-describing like a checkpoint: its ``metadata_props`` hold the full pixforge config, the
generator's ``size_multiple`` and a format marker, so nothing else is needed to run it. Batch, height and
width are dynamic axes; height and width must be multiples of ``size_multiple`` (the Translator pads).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch

from pixforge.atomic import write_bytes
from pixforge.config import Config
from pixforge.infer.onnx_generator import (
    FORMAT,
    INPUT,
    LABEL,
    NOISE,
    OUTPUT,
    VERSION,
    OnnxGenerator,
    OnnxModelError,
    optional_import,
)
from pixforge.infer.style import load_style_encoder
from pixforge.infer.translator import Translator
from pixforge.nn.build import bake_parametrizations, size_multiple
from pixforge.runtime.checkpoint import CheckpointError, find_checkpoint, save_checkpoint
from pixforge.runtime.checkpoint import read_config as read_checkpoint_config
from pixforge.runtime.components import generators
from pixforge.runtime.generator import load_generator
from pixforge.version import __version__

MIN_OPSET, MAX_OPSET = 7, 20
"""Opsets the TorchScript exporter supports (torch.onnx._constants); checked before exporting."""
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PARITY_TOLERANCE = 1e-4
"""Max abs difference ONNX Runtime vs PyTorch (fp32, outputs in [-1, 1]) that counts as the same model."""


def native_size(config: Config, multiple: int) -> int:
    """The training crop size rounded up to the generator's multiple (256 for facades' unet_256)."""
    return math.ceil(config.data.crop_size / multiple) * multiple


def export_onnx(source: str | Path | Translator, out: str | Path, opset: int = 17,
                direction: str | None = None) -> Path:
    """Export the generator of ``source`` (run directory, checkpoint file or Translator) to ``out``;
    ``direction`` picks one of a two-way model's generators (CycleGAN; default AtoB).

    The graph is traced in eval mode in fp32 on the CPU: BatchNorm uses its running statistics (baked
    into the graph) and dropout is off, whatever the Translator's ``paper_test_mode``.
    """
    translator = source
    if not isinstance(translator, Translator):
        if is_class_conditional(translator):
            return export_sampler_onnx(translator, out, opset)
        translator = Translator.from_pretrained(translator, device="cpu", direction=direction)
    if isinstance(translator.generator, OnnxGenerator):
        raise OnnxModelError(f"{translator.generator.path}: already an ONNX model; export its checkpoint")
    out = Path(out)
    # A copy, so the caller's model keeps its device, dtype, memory format and mode.
    generator = bake_parametrizations(copy.deepcopy(translator.generator).eval())
    generator.to("cpu", torch.float32, memory_format=torch.contiguous_format)
    multiple = size_multiple(generator)
    side = native_size(translator.config, multiple)
    example = torch.zeros(1, translator.input_nc, side, side)
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript;
        # both give the same graph here (max abs diff ~1e-6), so its deprecation notices are noise.
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning,
                                module=r"torch\.onnx")
        # Reflection padding reverses its pad list with a step -1 Slice that the folder skips: harmless.
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1 can be constant folded",
                                UserWarning)
        # Instance norm (pix2pixHD, SPADE's D) has no running statistics: it always normalises by the input,
        # which is what the exporter's "train=True" notice says; its size checks trace as constants.
        warnings.filterwarnings("ignore", "ONNX export mode is set to TrainingMode.EVAL, but operator "
                                "'instance_norm'", UserWarning)
        warnings.filterwarnings("ignore", "Converting a tensor to a Python boolean", torch.jit.TracerWarning,
                                module=r"torch\.nn\.(modules\.instancenorm|functional)")
        torch.onnx.export(generator, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: axes, OUTPUT: axes}, do_constant_folding=True)
    doc = (f"pixforge generator {translator.config.model.generator}: input (batch, {translator.input_nc}, height, "
           f"width) in [-1, 1], height and width multiples of {multiple}")
    return _write_export(buffer.getvalue(), out, translator.config, multiple, translator.model_hash,
                         translator.component, translator.direction, doc)


def _write_export(graph: bytes, out: Path, config: Config, multiple: int, model_hash: str, component: str,
                  direction: str | None, doc: str) -> Path:
    """The traced graph with pixforge's metadata (what makes the file self-describing), checked, written."""
    onnx = optional_import("onnx")
    model = onnx.load_from_string(graph)
    meta = {"format": FORMAT, "version": VERSION, "pixforge_version": __version__,
            "config": json.dumps(config.to_dict()), "size_multiple": str(multiple), "generator_sha256": model_hash,
            "component": component, "direction": direction or ""}
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = doc
    onnx.checker.check_model(model)
    write_bytes(out, model.SerializeToString())
    return out


def export_sampler_onnx(source: str | Path, out: str | Path, opset: int = 17) -> Path:
    """A class-conditional generator as ONNX: inputs ``label`` (int64, batch) and ``z`` (float, batch × z_dim),
    output ``image`` (batch × C × H × W in [-1, 1]); the same metadata as a translator's export."""
    loaded = load_generator(source)
    generator = bake_parametrizations(copy.deepcopy(loaded.generator).eval()).to("cpu", torch.float32)
    example = (torch.zeros(2, dtype=torch.long), torch.zeros(2, loaded.config.model.z_dim))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(generator, example, buffer, dynamo=False, opset_version=opset,
                          input_names=[LABEL, NOISE], output_names=[OUTPUT],
                          dynamic_axes={LABEL: {0: "batch"}, NOISE: {0: "batch"}, OUTPUT: {0: "batch"}},
                          do_constant_folding=True)
    data = loaded.config.data
    doc = (f"pixforge class-conditional generator: label (batch,) int64 of {len(data.class_names or ())} classes, "
           f"z (batch, {loaded.config.model.z_dim}) standard normal -> image (batch, {data.output_nc}, H, W) "
           f"in [-1, 1]")
    return _write_export(buffer.getvalue(), Path(out), loaded.config, 1, loaded.weights_hash, loaded.name, None, doc)


def sampler_max_abs_difference(source: str | Path, onnx_path: str | Path, seed: int = 0) -> float:
    """Largest |ONNX Runtime − PyTorch| over one sample of every class (PyTorch in fp32)."""
    from pixforge.infer.sampler import Sampler

    torch_sampler = Sampler.from_pretrained(source, device="cpu", precision="fp32")
    onnx_sampler = Sampler.from_onnx(onnx_path)
    labels = list(range(len(torch_sampler.class_names)))
    return float((torch_sampler.sample(labels, seed) - onnx_sampler.sample(labels, seed)).abs().max())


def is_class_conditional(source: str | Path) -> bool:
    """Whether a run directory or checkpoint holds a class-conditional model (``pixforge sample``'s kind)."""
    return read_checkpoint_config(find_checkpoint(source)).get("model", {}).get("kind") == "cgan"


def max_abs_difference(translator: Translator, onnx_path: str | Path, batch: int = 1, seed: int = 0) -> float:
    """Largest |ONNX Runtime - PyTorch| on random input of the model's native size (PyTorch in fp32)."""
    onnx_generator = OnnxGenerator(onnx_path)
    side = native_size(translator.config, onnx_generator.size_multiple)
    rng = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, translator.input_nc, side, side, generator=rng) * 2 - 1
    generator = translator.generator  # in eval mode outside Translator.forward
    with torch.inference_mode():
        expected = generator(x.to(translator.device, memory_format=translator.memory_format)).float().cpu()
        actual = onnx_generator(x)
    return float((expected - actual).abs().max())


def check_export_target(out: str | Path, source: str | Path, overwrite: bool, suffix: str) -> None:
    """Refuse an export target that is the model itself (or inside its run), or that exists without
    ``overwrite``: an export never destroys what it reads or what the user did not ask to replace."""
    out, source = Path(out), Path(source)
    if out.suffix.lower() != suffix:
        raise ValueError(f"--out {out}: expected a {suffix} file name")
    if out.is_dir():
        raise ValueError(f"--out {out}: is a folder; give a {suffix} file name")
    target = out.resolve()
    protected = [source.resolve()]
    if source.is_dir():
        protected.append((source / "checkpoints").resolve())
    with contextlib.suppress(CheckpointError):
        protected.append(find_checkpoint(source).resolve())
    if any(target == p or p in target.parents for p in protected):
        raise ValueError(f"--out {out}: is the model being exported (or inside its run); choose another file")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise FileExistsError(f"{out}: already exists; pass --overwrite to replace it")


def export_weights(source: str | Path, out: str | Path, dtype: str = "fp32", direction: str | None = None) -> Path:
    """The generators' weights and config alone (no discriminator, optimiser or RNG state), as a checkpoint
    ``Translator.from_pretrained`` loads and ``--resume`` refuses: every generator of the model, or with
    ``direction`` only that one. An ngf-64 unet_256 training checkpoint is ~650 MB; its generator alone
    ~200 MB in fp32, ~100 MB in bf16. A SPADE run's style encoder comes along (in fp32: it is small), so
    the export still takes style images."""
    first = load_generator(source, direction=direction)
    names = [first.name] if direction is not None else list(generators(first.components))
    parts: dict[str, Any] = {}
    for name in names:
        loaded = first if name == first.name else load_generator(source, name=name)
        parts[name] = {k: v.to(WEIGHT_DTYPES[dtype]) if v.is_floating_point() else v
                       for k, v in loaded.generator.state_dict().items()}
    config = read_checkpoint_config(first.file)
    encoder = load_style_encoder(first.file, first.config)
    if encoder is not None:
        parts["E"] = encoder.state_dict()
    components = {name: first.components[name] for name in parts}
    return save_checkpoint(out, config, parts, extra={"kind": "weights", "weights_dtype": dtype},
                           components=components)
