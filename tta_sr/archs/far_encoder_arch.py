"""E_clip: frozen established encoders whose feature statistics FAR aligns E_img with.

Each encoder maps ``y (B, 3, H, W) in [0, 1]`` to one internal feature map ``(B, C_c, H_c, W_c)``,
normalises its input itself, exposes ``out_channels`` (= C_c, the ``target_channels`` of
``FARLoss``) and is frozen in ``__init__`` with ``tta_sr.utils.freeze.freeze`` (gradients still
reach the input, as stage 2 needs). No encoder downloads anything: weights come from an explicit
file or an existing local cache, otherwise a ``FileNotFoundError`` says which file and how to get it.

| class | paper | weights | C_c (default stage) | H_c |
| --- | --- | --- | --- | --- |
| CLIPEncoder | E_clip, CLIP "RN50" image tower | open_clip / HF cache or weights_path | 1024 (layer3) | H/16 |
| VGGFeatureEncoder | Table 3 alternative | torchvision vgg19-dcbb9e9d.pth | 256 (relu3_4) | H/4 |
| SRTrunkEncoder | Table 3 alternative (SR features) | tta_sr.weights (RealESRGAN_x4plus) | 64 | H/downscale |
| LPIPSBackboneEncoder | offline default | ships in stlpips-pytorch | 192 (alex stage 2) | H/4 |
"""
import glob
import os

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from tta_sr.utils.freeze import freeze

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _FrozenEncoder(nn.Module):
    """Common part: mean/std normalisation buffers; subclasses set ``out_channels``."""

    out_channels = None

    def _set_normalization(self, mean, std):
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def normalize(self, y):
        return (y - self.mean) / self.std

    def train(self, mode=True):
        # stays in eval mode whatever the enclosing model does (BatchNorm statistics are frozen too)
        return super().train(False)


# ---------------------------------------------------------------------------------------------
# CLIP RN50 image tower (open_clip)
# ---------------------------------------------------------------------------------------------
def _hf_hub_cache_dir():
    if os.environ.get('HF_HUB_CACHE'):
        return os.environ['HF_HUB_CACHE']
    hf_home = os.environ.get('HF_HOME') or os.path.join(os.path.expanduser('~'), '.cache', 'huggingface')
    return os.path.join(hf_home, 'hub')


def clip_weight_candidates(model_name='RN50', pretrained='openai'):
    """Local files open_clip would load for ``(model_name, pretrained)``, and a download hint.

    Returns ``(existing_paths, expected_paths, source)``; nothing is downloaded.
    """
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    if not cfg:
        raise ValueError(f'open_clip has no pretrained tag {pretrained!r} for {model_name!r}; '
                         f'known: {open_clip.list_pretrained_tags_by_model(model_name)}')
    expected, sources = [], []
    if cfg.get('hf_hub'):
        hub = cfg['hf_hub']  # 'org/model/' (default file names) or 'org/model/file'
        repo_id, filename = (hub.rstrip('/'), '') if hub.endswith('/') else os.path.split(hub)
        names = [filename] if filename else ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin']
        repo_dir = os.path.join(_hf_hub_cache_dir(), 'models--' + repo_id.replace('/', '--'))
        expected += [os.path.join(repo_dir, 'snapshots', '<revision>', n) for n in names]
        sources.append(f'https://huggingface.co/{repo_id}')
        existing = [p for n in names for p in sorted(glob.glob(os.path.join(repo_dir, 'snapshots', '*', n)))]
    else:
        existing = []
    if cfg.get('url'):
        path = os.path.join(os.path.expanduser('~'), '.cache', 'clip', os.path.basename(cfg['url']))
        expected.append(path)
        sources.append(cfg['url'])
        if os.path.isfile(path):
            existing.append(path)
    return existing, expected, ' or '.join(sources)


@ARCH_REGISTRY.register()
class CLIPEncoder(_FrozenEncoder):
    """Internal stage of open_clip's CLIP ResNet image tower (paper: "RN50"), frozen.

    Args:
        model_name: open_clip model with a ModifiedResNet tower (RN50, RN101, RN50x4, ...).
        stage: 'stem' (64 ch, H/4), 'layer1' (256, H/4), 'layer2' (512, H/8), 'layer3' (1024, H/16)
            or 'layer4' (2048, H/32) for RN50. The papers leave it open; default 'layer3'.
        weights_path: explicit open_clip checkpoint; otherwise the open_clip / HF cache is searched
            for the ``pretrained`` tag.
        pretrained: open_clip pretrained tag ('openai'); ``None`` = random init (tests only).

    forward(y (B, 3, H, W) in [0, 1]) -> (B, out_channels, H_c, W_c); inputs are normalised
    with CLIP's mean/std (no resizing: any size divisible enough for the stage works).
    """

    STAGES = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')

    def __init__(self, model_name='RN50', stage='layer3', weights_path=None, pretrained='openai'):
        super().__init__()
        if stage not in self.STAGES:
            raise ValueError(f'CLIPEncoder stage must be one of {self.STAGES}, got {stage!r}')
        import open_clip

        if weights_path is not None:
            if not os.path.isfile(weights_path):
                raise FileNotFoundError(f'CLIPEncoder: weights_path {weights_path} does not exist; give an open_clip '
                                        f'checkpoint of {model_name!r} (e.g. RN50.pt from open_clip\'s openai tag).')
            source = weights_path
        elif pretrained is None:
            source = None
        else:
            existing, expected, url = clip_weight_candidates(model_name, pretrained)
            if not existing:
                raise FileNotFoundError(
                    f'CLIPEncoder: weights of open_clip {model_name!r} (pretrained={pretrained!r}) are not cached; '
                    f'looked for {", ".join(expected)}. Nothing is downloaded at run time: on a machine with '
                    f'internet run `python -c "import open_clip; open_clip.create_model(\'{model_name}\', '
                    f'pretrained=\'{pretrained}\')"` (downloads from {url}) and copy the cache, or set the '
                    f'option weights_path to the checkpoint file (e.g. RN50.pt).')
            source = existing[0]
        try:
            model = open_clip.create_model(model_name, pretrained=source)
        except Exception as err:  # noqa: BLE001 - re-raised with context
            raise RuntimeError(f'CLIPEncoder: open_clip could not build {model_name!r} from {source}: {err}') from err
        visual = model.visual
        if not all(hasattr(visual, n) for n in ('conv1', 'layer1', 'layer4')):
            raise ValueError(f'CLIPEncoder needs a ResNet image tower (RN50 family); {model_name!r} has '
                             f'{type(visual).__name__}.')
        del model
        cut = self.STAGES.index(stage)
        self.stem_layers = nn.ModuleList([visual.conv1, visual.bn1, visual.act1, visual.conv2, visual.bn2,
                                          visual.act2, visual.conv3, visual.bn3, visual.act3, visual.avgpool])
        self.layers = nn.ModuleList([getattr(visual, f'layer{k}') for k in range(1, cut + 1)])
        self.out_channels = (self.layers[-1][-1].bn3.num_features if self.layers else visual.bn3.num_features)
        self.model_name, self.stage, self.weights = model_name, stage, source
        mean = getattr(open_clip, 'OPENAI_DATASET_MEAN', (0.48145466, 0.4578275, 0.40821073))
        std = getattr(open_clip, 'OPENAI_DATASET_STD', (0.26862954, 0.26130258, 0.27577711))
        self._set_normalization(mean, std)
        freeze(self)

    def forward(self, y):
        x = self.normalize(y).to(self.stem_layers[0].weight.dtype)
        for layer in self.stem_layers:
            x = layer(x)
        for layer in self.layers:
            x = layer(x)
        return x


# ---------------------------------------------------------------------------------------------
# VGG19 features (torchvision)
# ---------------------------------------------------------------------------------------------
VGG19_FILENAME = 'vgg19-dcbb9e9d.pth'
VGG19_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'


def vgg19_layer_names():
    """Names of torchvision vgg19().features[i]: conv1_1, relu1_1, ..., pool5."""
    names = []
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1):
        for k in range(1, convs + 1):
            names += [f'conv{block}_{k}', f'relu{block}_{k}']
        names.append(f'pool{block}')
    return names


@ARCH_REGISTRY.register()
class VGGFeatureEncoder(_FrozenEncoder):
    """torchvision VGG19 ``features`` up to and including ``layer``, frozen (Table 3 alternative).

    Args:
        layer: a name from ``vgg19_layer_names()`` (default 'relu3_4': 256 ch at H/4).
        weights_path: torchvision vgg19 checkpoint; default ``<torch.hub.get_dir()>/checkpoints/
            vgg19-dcbb9e9d.pth``. Only the ``features.*`` entries up to ``layer`` are needed.

    forward(y (B, 3, H, W) in [0, 1]) -> (B, out_channels, H_c, W_c), ImageNet mean/std inside.
    """

    def __init__(self, layer='relu3_4', weights_path=None):
        super().__init__()
        import torchvision

        names = vgg19_layer_names()
        if layer not in names:
            raise ValueError(f'VGGFeatureEncoder layer must be one of {names}, got {layer!r}')
        path = weights_path or os.path.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILENAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'VGGFeatureEncoder: VGG19 weights {VGG19_FILENAME} not found at {path}. Nothing is downloaded at '
                f'run time: fetch {VGG19_URL} into {os.path.dirname(path)} or set the option weights_path.')
        cut = names.index(layer) + 1
        try:  # features only: skips initialising the 120M-parameter classifier
            from torchvision.models.vgg import cfgs, make_layers
            features = make_layers(cfgs['E'])[:cut]
        except ImportError:
            features = torchvision.models.vgg19(weights=None).features[:cut]
        state = torch.load(path, map_location='cpu', weights_only=True)
        wanted = {k[len('features.'):]: v for k, v in state.items()
                  if k.startswith('features.') and int(k.split('.')[1]) < cut}
        missing = sorted(set(features.state_dict()) - set(wanted))
        if missing:
            raise RuntimeError(f'VGGFeatureEncoder: {path} is not a torchvision vgg19 checkpoint '
                               f'(missing features.{missing[0]} ...).')
        features.load_state_dict(wanted, strict=True)
        for module in features:
            if isinstance(module, nn.ReLU):
                module.inplace = False
        self.features = features
        self.layer = layer
        self.out_channels = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
        self._set_normalization(IMAGENET_MEAN, IMAGENET_STD)
        freeze(self)

    def forward(self, y):
        return self.features(self.normalize(y))


# ---------------------------------------------------------------------------------------------
# SR-network trunk (RRDBNet of Real-ESRGAN)
# ---------------------------------------------------------------------------------------------
@ARCH_REGISTRY.register()
class SRTrunkEncoder(_FrozenEncoder):
    """First ``num_block`` RRDB blocks of a pretrained RRDBNet (conv_first + body[:num_block]), frozen.

    The image is first area-downsampled by ``downscale`` to bound the CPU cost (RRDB blocks are
    expensive at HR size).

    Args:
        weights: name for ``tta_sr.weights.resolver.build_pretrained`` ('RealESRGAN_x4plus'), or
            ``None`` = random init of an RRDBNet(num_feat=64, num_grow_ch=32) (tests only).
        num_block: RRDB blocks kept.
        downscale: integer area-downsampling factor applied to the input (1 = none).
        weights_path: explicit weights file passed on to ``build_pretrained``.

    forward(y (B, 3, H, W) in [0, 1]) -> (B, 64, H // downscale, W // downscale) (x4 models;
    RRDBNet x2 / x1 models pixel-unshuffle their input first, which divides the size by 2 / 4 more).
    """

    def __init__(self, weights='RealESRGAN_x4plus', num_block=2, downscale=2, weights_path=None):
        super().__init__()
        if weights is None:
            from basicsr.archs.rrdbnet_arch import RRDBNet

            net = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=num_block, num_grow_ch=32, scale=4)
        else:
            from tta_sr.weights.resolver import build_pretrained

            net = build_pretrained(weights, explicit_path=weights_path)
            net = getattr(net, 'net', net)  # PostResize wrapper
        if not (hasattr(net, 'conv_first') and hasattr(net, 'body')):
            raise ValueError(f'SRTrunkEncoder needs an RRDBNet-like net (conv_first, body); {weights!r} '
                             f'gives {type(net).__name__}.')
        if num_block > len(net.body):
            raise ValueError(f'SRTrunkEncoder num_block={num_block} > {len(net.body)} blocks of {weights!r}')
        self.unshuffle = {1: 4, 2: 2}.get(getattr(net, 'scale', 4), 1)
        self.conv_first = net.conv_first
        self.body = nn.Sequential(*list(net.body)[:num_block])
        del net
        self.downscale = int(downscale)
        self.weights = weights
        self.out_channels = self.conv_first.out_channels
        freeze(self)

    def forward(self, y):
        x = y
        if self.downscale > 1:
            x = F.interpolate(x, size=(x.shape[-2] // self.downscale, x.shape[-1] // self.downscale), mode='area')
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        return self.body(self.conv_first(x))


# ---------------------------------------------------------------------------------------------
# LPIPS backbone shipped with stlpips-pytorch (offline default)
# ---------------------------------------------------------------------------------------------
@ARCH_REGISTRY.register()
class LPIPSBackboneEncoder(_FrozenEncoder):
    """Stage ``stage`` (1..5) of the shift-tolerant LPIPS AlexNet / VGG16 trunk, frozen.

    Weights ship in the stlpips-pytorch wheel (``weights/vST0.0/<net>_shift_tolerant.pth``), so
    this works offline. Input scaling is LPIPS's: ``(2 y - 1 - shift) / scale``.
    Channels / resolution: alex (64, H/2), (192, H/4), (384, H/8), (256, H/8), (256, H/8);
    vgg (64, H), (128, H/2), (256, H/4), (512, H/8), (512, H/16) (all roughly; borders trimmed).

    Args:
        net: 'alex' or 'vgg'.
        stage: 1..5 (default 2).
        weights_path: explicit ST-LPIPS weight file (default: the one in the wheel).
    """

    def __init__(self, net='alex', stage=2, weights_path=None):
        super().__init__()
        from tta_sr.archs.lpips_arch import LPIPSInputScaling, ShiftTolerantBackbone, load_stlpips_state

        if stage not in (1, 2, 3, 4, 5):
            raise ValueError(f'LPIPSBackboneEncoder stage must be 1..5, got {stage!r}')
        shift, scale, backbone_state, _ = load_stlpips_state(net, weights_path)
        backbone = ShiftTolerantBackbone(net)
        backbone.load_state_dict(backbone_state, strict=True)
        end = backbone.stage_ends[stage - 1]
        self.features = nn.Sequential(*list(backbone.features)[:end])
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False
        self.scaling = LPIPSInputScaling(shift, scale)
        self.out_channels = backbone.channels[stage - 1]
        self.net_name, self.stage = backbone.net_name, stage
        freeze(self)

    def forward(self, y):
        return self.features(self.scaling(y))


__all__ = ['CLIPEncoder', 'VGGFeatureEncoder', 'SRTrunkEncoder', 'LPIPSBackboneEncoder', 'clip_weight_candidates',
           'vgg19_layer_names']
