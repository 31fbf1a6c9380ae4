"""Typed configuration: one YAML file drives the CLI, the Python API and the tests.

Defaults are the pix2pix paper's (Isola et al., CVPR 2017) as the reference implementation
(pytorch-CycleGAN-and-pix2pix, ``options/*.py``) sets them; each field says where it comes from.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Direction = Literal["AtoB", "BtoA"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class ConfigError(ValueError):
    """A config file or field is wrong; the message names it."""


class _Section(BaseModel):
    # inf/nan are refused in every field: `--set train.lr=.inf` would otherwise train straight to NaN.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    root: Path | None = None
    """Dataset folder holding ``train/`` and ``val/`` (aligned A|B files or ``A/`` + ``B/`` folders)."""
    layout: Literal["aligned", "folders", "pix2pixhd", "unaligned", "classes"] = "aligned"
    """``aligned``: one file holds A|B side by side (reference ``--dataset_mode aligned``); ``folders``: ``A/`` and
    ``B/``; ``pix2pixhd``: pix2pixHD's ``<split>_label/``, ``<split>_img/`` (+ ``<split>_inst/``), paired in
    sorted order as the reference pairs them; ``unaligned``: two unpaired domains ``<split>A/`` and ``<split>B/``
    (``trainA/``, ``trainB/``, ``testA/``...) of any sizes, as the reference's ``--dataset_mode unaligned``;
    ``classes``: labelled images for class-conditional generation, one folder per class (``<class>/*.png``) or
    MNIST's IDX files (``data/classes.py``)."""
    serial_batches: bool = False
    """``unaligned``: pair A's i-th image with B's (i mod |B|)-th instead of a random B (reference
    ``--serial_batches``)."""
    train_split: str = "train"
    val_split: str | None = "val"
    direction: Direction = "AtoB"
    preprocess: Preprocess = "resize_and_crop"
    load_size: int = Field(286, gt=0)
    """Reference ``--load_size 286``: resize before the random 256 crop (paper's jitter)."""
    crop_size: int = Field(256, gt=0)
    flip: bool = True
    """Random horizontal flip while training (reference default; never at inference)."""
    input_nc: Literal[1, 3] = 3
    """Channels of the input images: 1 (grey) or 3 (RGB)."""
    output_nc: Literal[1, 3] = 3
    input_palette: str | None = None
    """The input is a colour label map drawn with this registered palette (``data.palette``), e.g. facades
    labels -> photo. The drawing page draws with it; label-map generators snap it to class indices."""
    output_palette: str | None = None
    """The output is a colour label map in this palette (e.g. photo -> labels); pipelines snap to it."""
    label_nc: int = Field(0, ge=0)
    """Classes of a label-map input, one-hot encoded into ``label_nc`` channels (pix2pixHD ``--label_nc``; 35 for
    Cityscapes, 12 for the facades palette). 0: the input is an image. Label maps are always resized with
    nearest neighbour; class-index files (8/16-bit PNG) are read as stored, colour maps need ``input_palette``."""
    ignore_label: int | None = Field(None, ge=0)
    """Label values >= ``label_nc`` become this class instead of being refused (e.g. 255 "void" -> 0).
    ``None``: such a value stops with an error naming the file, the value and its pixel count."""
    instance_maps: bool = False
    """Read instance-id maps (``<split>_inst/``, layout ``pix2pixhd``) and feed their boundaries to the networks as
    one more input channel (pix2pixHD's default where instance maps exist)."""
    skip_bad: bool = False
    """Skip (and count) files that cannot be decoded instead of stopping with an error."""
    max_pixels: int = Field(89_478_485, gt=0)
    """Refuse larger images (decompression bombs); Pillow's own default limit."""
    max_items: int | None = Field(None, gt=0)
    decay_jitter: bool = True
    """Resize jitter (``load_size`` then a random crop) also during the learning-rate decay epochs; ``false``
    resizes straight to ``crop_size`` from epoch ``train.n_epochs`` on, as the CUT authors do."""
    cache: bool = True
    """Keep decoded, resized images in memory instead of decoding JPEGs every step."""
    num_workers: int | None = Field(None, ge=0)
    """Data-loader processes; ``None`` sizes them to the cores (0 on a 2-core machine)."""
    class_names: tuple[str, ...] | None = None
    """Recorded by the trainer for layout ``classes``, not set by hand: the class of each label index."""
    source_size: tuple[int, int] | None = None
    """Recorded by the trainer, not set by hand: the median (height, width) of the training inputs before
    preprocessing. With ``preprocess``/``load_size`` it tells inference the scale the model learned at."""

    @model_validator(mode="after")
    def _crop_fits_the_resize(self) -> DataConfig:
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.load_size < self.crop_size:
            raise ValueError(f"load_size {self.load_size} is smaller than crop_size {self.crop_size}; "
                             f"'{self.preprocess}' resizes to load_size and then crops crop_size from it")
        return self

    @model_validator(mode="after")
    def _label_options_fit(self) -> DataConfig:
        if self.ignore_label is not None and not self.ignore_label < max(self.label_nc, 1):
            raise ValueError(f"ignore_label {self.ignore_label} must be a class of 0..{self.label_nc - 1} (label_nc)")
        if self.instance_maps and (self.label_nc == 0 or self.layout != "pix2pixhd"):
            raise ValueError("instance_maps needs label maps (label_nc > 0) in layout 'pix2pixhd' (<split>_inst/)")
        if self.layout == "pix2pixhd" and self.label_nc == 0:
            raise ValueError("layout 'pix2pixhd' reads class-index label maps: set label_nc to their class count")
        if self.layout == "pix2pixhd" and self.direction != "AtoB":
            raise ValueError("layout 'pix2pixhd' translates <split>_label/ into <split>_img/: direction must be AtoB")
        return self

    @model_validator(mode="after")
    def _decay_jitter_needs_unaligned(self) -> DataConfig:
        if not self.decay_jitter and self.layout != "unaligned":
            raise ValueError(f"decay_jitter false: only layout 'unaligned' can stop the resize jitter (this is "
                             f"'{self.layout}'); set data.decay_jitter true")
        return self

    @property
    def input_channels(self) -> int:
        """Channels the networks see on the input side: one-hot classes (+1 instance boundary map) for label
        maps, else the image's ``input_nc``."""
        return self.label_nc + int(self.instance_maps) if self.label_nc else self.input_nc


class ModelConfig(_Section):
    kind: str = "pix2pix"
    """The training recipe (a registered name): ``pix2pix``, ``pix2pixhd``, ``spade``, ``cyclegan``, ``cut``,
    ``cgan``. A kind's
    own defaults (``KIND_DEFAULTS``) apply to every field a config leaves out."""
    generator: str = "unet_256"
    """A registered generator name: ``unet_<size>``, ``resnet_6blocks``, ``resnet_9blocks``."""
    discriminator: str = "patchgan"
    """``patchgan`` (70x70 with ``n_layers_d=3``) or ``pixel``."""
    ngf: int = Field(64, gt=0)
    ndf: int = Field(64, gt=0)
    n_layers_d: int = Field(3, ge=1)
    norm: Literal["batch", "instance", "none"] = "batch"
    dropout: bool = True
    """Dropout 0.5 in the U-Net decoder / ResNet blocks (paper's noise source)."""
    upsample: Literal["transposed", "resize_conv", "antialias"] = "transposed"
    """U-Net/ResNet decoders: ``transposed`` convolutions (the paper, the reference, its checkpoints),
    ``resize_conv`` (nearest-neighbour doubling + 3x3 convolution: no checkerboard pattern by construction;
    opt-in, measured in BENCHMARKS.md) or ``antialias`` (zero insertion, a fixed blur, a 3x3 convolution: CUT's)."""
    downsample: Literal["strided", "antialias"] = "strided"
    """ResNet G and PatchGAN D: ``strided`` convolutions (pix2pix, CycleGAN) or ``antialias`` (a stride-1
    convolution, then a fixed blur and subsampling: CUT's, after Zhang 2019)."""
    init_type: Literal["normal", "xavier"] = "normal"
    """Weight initialisation: ``normal`` (mean 0, std ``init_gain``: pix2pix, CycleGAN) or ``xavier`` (Glorot
    normal with gain ``init_gain``: CUT)."""
    init_gain: float = Field(0.02, gt=0)
    n_downsample_global: int = Field(4, ge=1)
    """pix2pixHD ``global``/``local``: stride-2 convolutions of the global generator (reference default 4)."""
    n_blocks_global: int = Field(9, ge=0)
    """pix2pixHD: residual blocks at the global generator's bottleneck (paper: 9)."""
    n_local_enhancers: int = Field(1, ge=1)
    """pix2pixHD ``local``: enhancer branches, each doubling the resolution (paper: 1 for 2048x1024)."""
    n_blocks_local: int = Field(3, ge=0)
    """pix2pixHD ``local``: residual blocks per enhancer (paper: 3)."""
    num_d: int = Field(2, ge=1)
    """``multiscale`` D: PatchGANs on an average-pooled pyramid (pix2pixHD ``--num_D`` 2; 3 for its 1024p stage)."""
    spectral_norm: bool = False
    """Spectral normalisation on the ``multiscale`` D's convolutions (SPADE's D; Miyato et al. 2018)."""
    features: bool = False
    """pix2pixHD feature encoder (``--instance_feat``): per-instance features of the real image as ``feat_num``
    extra G input channels, for multimodal results; inference picks k-means cluster centres or edited values."""
    feat_num: int = Field(3, ge=1)
    """pix2pixHD: channels of the encoded instance features (paper: 3)."""
    nef: int = Field(16, gt=0)
    """pix2pixHD: width of the feature encoder's first convolution (reference ``--nef`` 16)."""
    n_downsample_e: int = Field(4, ge=1)
    """pix2pixHD: stride-2 convolutions of the feature encoder (reference ``--n_downsample_E`` 4)."""
    spade_norm: Literal["batch", "instance"] = "batch"
    """SPADE: the parameter-free normalisation inside each SPADE layer (paper: synchronised batch norm)."""
    spade_hidden: int = Field(128, gt=0)
    """SPADE: channels of the shared convolution that maps the label map to gamma and beta (paper: 128)."""
    use_vae: bool = False
    """SPADE: train a style encoder (VAE) so a style image or a random z picks the look (paper's multimodal mode)."""
    z_dim: int = Field(256, gt=0)
    """SPADE with ``use_vae``: length of the style code z (paper: 256)."""
    minibatch_std: bool = False
    """``projection`` D: one more feature channel, the batch's standard deviation (Karras et al. 2018), so D sees
    when a batch varies less than real data does (a generator that ignores its noise)."""
    cut_mode: Literal["cut", "fastcut"] = "cut"
    """``kind: cut``: ``cut`` (λ_NCE 1 with the identity NCE term, 200 + 200 epochs) or ``fastcut`` (λ_NCE 10,
    no identity term, flip equivariance, 150 + 50 epochs): the authors' two presets of the same model."""
    nce_layers: tuple[int, ...] = (0, 4, 8, 12, 16)
    """CUT: indices of G's layers (its flat ``model`` Sequential) whose outputs PatchNCE compares; 0 is the
    padded input, 16 the fifth residual block of the anti-aliased ``resnet_9blocks``."""
    num_patches: int = Field(256, gt=0)
    """CUT: locations sampled per NCE layer and image (the same ones in the input and the output)."""
    nce_head_nc: int = Field(256, gt=0)
    """CUT: width of each layer's projection head (two linear layers, then L2 normalisation)."""


class LossConfig(_Section):
    gan_mode: Literal["vanilla", "lsgan", "hinge", "wgangp"] = "vanilla"
    """``wgangp`` adds the gradient penalty (``lambda_gp``) that the reference defines but never calls."""
    lambda_l1: float = Field(100.0, ge=0)
    lambda_gp: float = Field(10.0, ge=0)
    """WGAN-GP gradient-penalty weight (Gulrajani et al. 2017)."""
    lambda_feat: float = Field(10.0, ge=0)
    """pix2pixHD/SPADE: weight of the discriminator feature-matching loss (pix2pixHD ``--lambda_feat`` 10)."""
    vgg_loss: bool = True
    """pix2pixHD/SPADE: VGG19 perceptual loss (relu1_1..relu5_1, weights 1/32..1). Needs torchvision's VGG19 file."""
    lambda_vgg: float = Field(10.0, ge=0)
    """Weight of the VGG loss (pix2pixHD scales it by ``lambda_feat`` 10; SPADE's ``--lambda_vgg`` 10)."""
    vgg_weights: Path | None = None
    """torchvision's ``vgg19-dcbb9e9d.pth``. ``None``: the torch hub cache (``$TORCH_HOME/hub/checkpoints/``)."""
    lambda_kld: float = Field(0.05, ge=0)
    """SPADE with ``use_vae``: weight of the KL divergence of the style code (paper: 0.05)."""
    lambda_a: float = Field(10.0, ge=0)
    """CycleGAN: weight of the cycle loss A -> B -> A (reference ``--lambda_A`` 10)."""
    lambda_b: float = Field(10.0, ge=0)
    """CycleGAN: weight of the cycle loss B -> A -> B (reference ``--lambda_B`` 10)."""
    lambda_gan: float = Field(1.0, ge=0)
    """CUT: weight of G's adversarial loss (authors' ``--lambda_GAN`` 1)."""
    lambda_nce: float = Field(1.0, ge=0)
    """CUT: weight of the PatchNCE loss (1 for CUT, 10 for FastCUT)."""
    nce_idt: bool = False
    """CUT: also PatchNCE between B and G(B), the two NCE terms averaged (on in CUT, off in FastCUT)."""
    nce_t: float = Field(0.07, gt=0)
    """CUT: temperature of the PatchNCE softmax."""
    flip_equivariance: bool = False
    """CUT: flip G's input at random and its features back before PatchNCE (FastCUT's regulariser)."""
    lambda_identity: float = Field(0.5, ge=0)
    """CycleGAN: identity loss ``|G_A(B) - B|``, weighted ``lambda_identity * lambda_b`` (and likewise for A);
    reference ``--lambda_identity`` 0.5. Needs ``input_nc == output_nc``; 0 turns it off."""


class TrainConfig(_Section):
    batch_size: int = Field(1, gt=0)
    """Per process. The paper uses 1; for batch B scale lr by B**0.5 as a starting point."""
    lr: float = Field(2e-4, gt=0)
    lr_d: float | None = Field(None, gt=0)
    """The discriminator's learning rate; ``None``: ``lr``. SPADE's two time-scale rule: G 1e-4, D 4e-4."""
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    n_epochs: int = Field(100, ge=0)
    """Epochs at the initial learning rate (reference ``--n_epochs``)."""
    n_epochs_decay: int = Field(100, ge=0)
    """Epochs of linear decay to zero afterwards (reference ``--n_epochs_decay``)."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many optimiser steps (overrides the epoch count)."""
    niter_fix_global: int = Field(0, ge=0)
    """pix2pixHD ``local``: epochs that train only the outermost enhancer, the global part frozen, before both
    train jointly (reference ``--niter_fix_global``; 10 in its 1024p script)."""
    init_from: Path | None = None
    """Start a new run from another run's weights (G, D, encoders; not its optimiser or step): pix2pixHD's
    ``--load_pretrain``. A ``global`` run's G fills a ``local`` G's global part (its ngf must be twice the
    local's). Ignored when resuming."""
    max_seconds: float | None = Field(None, gt=0)
    """Stop at the first logged step after this much wall-clock time (counted from the start of training, data
    loading included) and save a checkpoint there: for comparisons at equal training time."""
    pool_size: int = Field(0, ge=0)
    """Image pool of past fakes for D (reference uses 0 for pix2pix)."""
    seed: int = 0
    device: str = "auto"
    """``auto`` picks cuda, then mps, then cpu."""
    precision: Precision = "auto"
    """``auto``: bf16 autocast where the device computes bf16 natively (CUDA with bf16, CPUs with AVX512-BF16
    or AMX), fp32 elsewhere. ``fp32`` with ``channels_last: false`` reproduces the reference bit for bit. The
    run's config.yaml records what ``auto`` resolved to."""
    channels_last: bool | None = None
    """NHWC memory layout; ``None`` (auto): on with bf16/fp16 and on the CPU, where the fast kernels want it
    (``false`` with ``precision: fp32`` reproduces the reference bit for bit)."""
    deterministic: bool = False
    """Deterministic algorithms: bit-exact resume on CPU at some cost in speed."""
    compile: bool | None = None
    """``torch.compile`` G and D. ``None``: on for CUDA, off elsewhere (no gain on CPU, +30 s first step)."""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    """``reduce-overhead`` adds CUDA graphs: worth it for small models where launches dominate."""
    gradient_checkpointing: bool = False
    """Recompute generator activations in backward instead of storing them: less memory, ~30% more compute.
    With BatchNorm the running statistics see each batch twice (recompute); instance norm is unaffected."""
    fused_adam: bool = True
    """One fused Adam kernel over all parameters; False is the reference's per-parameter loop."""
    step_in_backward: bool = True
    """pix2pixHD and SPADE: update each generator parameter as soon as backward has its gradient, then free
    it, so the gradients of a 182 M-parameter G (0.73 GB) never exist at once. Same numbers as stepping after
    backward; off under DDP and fp16 loss scaling, which need every gradient first."""
    keep_freed_memory: bool = True
    """Keep freed activation memory in the heap instead of returning it to the OS each step (Linux/glibc;
    ~25% faster CPU steps, see ``train/speed.py``)."""
    sync_batchnorm: bool = False
    """Under DDP, convert BatchNorm to SyncBatchNorm (GPU only)."""
    log_every: int = Field(10, gt=0)
    tensorboard: bool = False
    """Also log the losses and the sample grids for TensorBoard, in ``<run>/tensorboard/`` (needs the
    ``tensorboardX`` package: ``pip install 'pixforge[tensorboard]'``)."""
    sample_every: int = Field(500, gt=0)
    checkpoint_every: int = Field(1000, gt=0)
    val_every: int | None = Field(None, gt=0)
    keep_checkpoints: int = Field(2, ge=1)
    """How many step checkpoints to keep on disk (the newest)."""


KIND_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    # pytorch-CycleGAN-and-pix2pix with --model cycle_gan: its options/ and cycle_gan_model.py's
    # modify_commandline_options (resnet_9blocks, instance norm, no dropout, lsgan, pool 50).
    "cyclegan": {
        "model": {"generator": "resnet_9blocks", "norm": "instance", "dropout": False},
        "data": {"layout": "unaligned", "val_split": None},
        "loss": {"gan_mode": "lsgan"},
        "train": {"pool_size": 50},
    },
    # contrastive-unpaired-translation (taesungp, b3ac297): cut_model.py and its options; no image pool.
    "cut": {
        "model": {"generator": "resnet_9blocks", "norm": "instance", "dropout": False, "upsample": "antialias",
                  "downsample": "antialias", "init_type": "xavier"},
        "data": {"layout": "unaligned", "val_split": None, "decay_jitter": False},
        "loss": {"gan_mode": "lsgan", "lambda_nce": 1.0, "nce_idt": True},
        "train": {"pool_size": 0, "n_epochs": 200, "n_epochs_decay": 200},
    },
    # Class-conditional GAN: DCGAN's G (Radford et al. 2016) with a label embedding, a projection D with
    # spectral norm and the hinge loss (Miyato & Koyama 2018); SAGAN's two time-scale Adam, one D step per G step.
    "cgan": {
        "model": {"generator": "dcgan", "discriminator": "projection", "ngf": 64, "ndf": 64, "z_dim": 64,
                  "spectral_norm": True, "minibatch_std": True, "dropout": False},
        "data": {"layout": "classes", "val_split": None, "crop_size": 28, "load_size": 28, "input_nc": 1,
                 "output_nc": 1, "flip": False},
        "loss": {"gan_mode": "hinge"},
        "train": {"batch_size": 64, "lr": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "pool_size": 0},
    },
    "cut.fastcut": {
        "loss": {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True},
        "train": {"n_epochs": 150, "n_epochs_decay": 50},
    },
}
"""Per ``model.kind``, the defaults that differ from pix2pix's: a config that leaves a field out gets its kind's
value, so a hand-written ``kind: cyclegan`` config trains what the reference's CycleGAN trains. A key
``kind.mode`` adds the defaults of one ``model.<kind>_mode`` on top (``cut.fastcut``)."""


class Config(_Section):
    name: str = "pix2pix"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        model = data.get("model")
        kind = model.get("kind") if isinstance(model, dict) else getattr(model, "kind", None)
        mode = model.get(f"{kind}_mode") if isinstance(model, dict) else getattr(model, f"{kind}_mode", None)
        defaults: dict[str, dict[str, Any]] = {}
        for layer in (KIND_DEFAULTS.get(kind or ""), KIND_DEFAULTS.get(f"{kind}.{mode}")):
            for section, values in (layer or {}).items():
                defaults[section] = {**defaults.get(section, {}), **values}
        if not defaults:
            return data
        filled = dict(data)
        for section, values in defaults.items():
            given = filled.get(section)
            if given is None:
                filled[section] = dict(values)
            elif isinstance(given, dict):
                filled[section] = {**values, **given}
        return filled

    @model_validator(mode="after")
    def _classes_go_with_cgan(self) -> Config:
        if (self.model.kind == "cgan") != (self.data.layout == "classes"):
            raise ValueError(f"model.kind {self.model.kind} with data.layout {self.data.layout}: class-conditional "
                             "generation (kind cgan) reads layout 'classes', and only it does")
        return self

    @model_validator(mode="after")
    def _nce_identity_needs_equal_channels(self) -> Config:
        if self.model.kind == "cut" and self.loss.nce_idt and self.data.input_nc != self.data.output_nc:
            raise ValueError(f"loss.nce_idt: the identity NCE term feeds B to G, which needs data.input_nc == "
                             f"data.output_nc (they are {self.data.input_nc} and {self.data.output_nc}); set "
                             "loss.nce_idt false")
        return self

    @model_validator(mode="after")
    def _identity_needs_equal_channels(self) -> Config:
        if self.model.kind == "cyclegan" and self.loss.lambda_identity > 0 \
                and self.data.input_nc != self.data.output_nc:
            raise ValueError(f"loss.lambda_identity {self.loss.lambda_identity}: the identity loss feeds B to G_A, "
                             f"which needs data.input_nc == data.output_nc (they are {self.data.input_nc} and "
                             f"{self.data.output_nc}); set loss.lambda_identity 0")
        return self

    @field_validator("name")
    @classmethod
    def _name_is_a_plain_word(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError("must be a plain name (no '/' and not starting with '.')")
        return v

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "<root>"
    return f"{source}: field '{field}': {first['msg']}"


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML config; ``preset:NAME`` or a bare preset name loads a shipped preset."""
    text, source = _read_config_text(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML ({err.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (model, data, loss, train)")
    return config_from_dict(deep_merge(data, overrides or {}), source)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set`` pairs -> overrides: ``train.max_steps=200`` -> {"train": {"max_steps": 200}} (values parsed as
    YAML scalars); a malformed pair is a ``ConfigError`` naming it."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        parts = key.split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set '{pair}': expected SECTION.FIELD=VALUE with a section of model, data, loss "
                             f"or train, e.g. train.max_steps=200")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or err.__class__.__name__
            raise ConfigError(f"--set '{pair}': the value is not valid YAML ({problem})") from None
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set '{pair}': conflicts with an earlier --set of "
                                 f"'{'.'.join(parts[:i + 1])}' to a value")
        if isinstance(node.get(parts[-1]), dict):
            raise ConfigError(f"--set '{pair}': conflicts with earlier --set options inside '{key}'")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def list_presets() -> list[str]:
    folder = resources.files("pixforge") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_config_text(path: str | Path) -> tuple[str, str]:
    name = str(path)
    preset = name.removeprefix("preset:")
    if name.startswith("preset:") or (not Path(name).exists() and preset in list_presets()):
        if preset not in list_presets():
            raise ConfigError(f"preset '{preset}': unknown; available: {', '.join(list_presets())}")
        return (resources.files("pixforge") / "presets" / f"{preset}.yaml").read_text(), f"preset:{preset}"
    p = Path(name)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder; expected a YAML config file (a run's config.yaml, or a preset)")
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found (or give a preset: {', '.join(list_presets())})")
    return read_text_file(p, "a YAML config"), str(p)


def read_text_file(path: Path, what: str) -> str:
    """UTF-8 text, or a one-line error naming the file (binary garbage is not a codec traceback)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (expected {what}, UTF-8)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err.__class__.__name__})") from None
