"""LPIPS distance for the reconstruction loss L_rec = L1 + LPIPS and for HQI = 1 - LPIPS.

Two backends, one interface (``build_lpips``):

* ``'lpips'``: the reference ``lpips`` package (Zhang et al. 2018). Its linear heads ship with
  the package, but its AlexNet / VGG16 backbone comes from torchvision's ImageNet checkpoint,
  which must already be in the torch hub cache (``<torch.hub.get_dir()>/checkpoints/``:
  ``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``). Nothing is ever downloaded.
* ``'stlpips'``: shift-tolerant LPIPS (Ghildyal & Liu 2022) whose *complete* weights (backbone
  and heads) ship inside the ``stlpips-pytorch`` wheel (``weights/vST0.0/<net>_shift_tolerant.pth``).
  That package imports ``torchsummary`` and ``IPython`` at import time, so the network is
  rebuilt here (``ShiftTolerantBackbone``) and only its weight file is read.
* ``'auto'``: ``'lpips'`` when its backbone checkpoint is cached, else ``'stlpips'`` with a
  warning in BasicSR's root logger (once per process); the instance then has ``is_fallback=True``.

Every metric maps ``(a, b)``, both ``(B, 3, H, W)`` in [0, 1], to a distance ``(B,)`` (0 for
identical images, roughly within [0, 1]), is frozen with ``tta_sr.utils.freeze.freeze`` (gradients
still flow to the inputs, so it serves as a loss) and states which weights it uses in ``name``.

Minimum input size: if ``min(H, W) < LPIPS_MIN_SIDE`` (64), both images are upsampled
bilinearly (``align_corners=False``, aspect ratio kept) so that their shorter side is 64 before
the network sees them. Both backbones would technically run on 32 x 32, but their deepest layers
shrink to 1 x 1 there; 64 keeps every layer at least 2 x 2. LR crops of 32 x 32 therefore work.
"""
import math
import threading
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from tta_sr.utils.freeze import freeze

LPIPS_MIN_SIDE = 64

# torchvision ImageNet checkpoints the ``lpips`` package builds its backbone from.
TORCHVISION_BACKBONES = {
    'alex': ('alexnet-owt-7be5be79.pth', 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'),
    'vgg': ('vgg16-397923af.pth', 'https://download.pytorch.org/models/vgg16-397923af.pth'),
}
_NET_ALIASES = {'alex': 'alex', 'alexnet': 'alex', 'vgg': 'vgg', 'vgg16': 'vgg'}

_CACHE = {}
_CACHE_LOCK = threading.Lock()
_FALLBACK_WARNED = False


def _canonical_net(net):
    try:
        return _NET_ALIASES[net.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"LPIPS net must be one of 'alex' or 'vgg', got {net!r}.") from None


def torchvision_backbone_path(net='alex'):
    """Path where the torch hub cache would hold the ImageNet backbone the ``lpips`` package needs."""
    filename, _ = TORCHVISION_BACKBONES[_canonical_net(net)]
    return Path(torch.hub.get_dir()) / 'checkpoints' / filename


def stlpips_weights_path(net='alex'):
    """Path of the complete shift-tolerant LPIPS weights shipped in the ``stlpips-pytorch`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec('stlpips_pytorch')  # locate without importing (its imports are heavy)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('stlpips-pytorch is not installed; `pip install stlpips-pytorch` '
                          "or use build_lpips(kind='lpips') with a cached torchvision backbone.")
    root = Path(list(spec.submodule_search_locations)[0])
    return root / 'weights' / 'vST0.0' / f'{_canonical_net(net)}_shift_tolerant.pth'


def _resize_to_min_side(a, b, min_side):
    h, w = a.shape[-2:]
    if min(h, w) >= min_side:
        return a, b
    factor = min_side / min(h, w)
    size = (max(min_side, math.ceil(h * factor)), max(min_side, math.ceil(w * factor)))
    a = F.interpolate(a, size=size, mode='bilinear', align_corners=False)
    b = F.interpolate(b, size=size, mode='bilinear', align_corners=False)
    return a, b


class _LPIPSBase(nn.Module):
    """Shared interface: ``forward(a, b)`` with ``(B, 3, H, W)`` in [0, 1] -> ``(B,)`` distance."""

    name = 'LPIPS'
    is_fallback = False
    lower_is_better = True

    def __init__(self, min_side=LPIPS_MIN_SIDE):
        super().__init__()
        self.min_side = int(min_side)

    def _distance(self, a, b):
        raise NotImplementedError

    def forward(self, a, b):
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(f'LPIPS expects two (B, 3, H, W) tensors of equal shape, got '
                             f'{tuple(a.shape)} and {tuple(b.shape)}.')
        a, b = _resize_to_min_side(a, b, self.min_side)
        return self._distance(a, b).reshape(a.shape[0])

    def extra_repr(self):
        return f'name={self.name!r}, is_fallback={self.is_fallback}, min_side={self.min_side}'


# ---------------------------------------------------------------------------------------------
# 'lpips' backend: the reference package, backbone loaded from the torch hub cache only.
# ---------------------------------------------------------------------------------------------
class PackageLPIPS(_LPIPSBase):
    """The ``lpips`` package's LPIPS v0.1 with its torchvision backbone read from the hub cache."""

    def __init__(self, net='alex', backbone_path=None, min_side=LPIPS_MIN_SIDE):
        super().__init__(min_side)
        net = _canonical_net(net)
        path = Path(backbone_path) if backbone_path else torchvision_backbone_path(net)
        if not path.is_file():
            filename, url = TORCHVISION_BACKBONES[net]
            raise FileNotFoundError(
                f"LPIPS ('lpips' package, net={net!r}) needs the torchvision ImageNet backbone "
                f'{filename}, expected at {path}, which does not exist. Nothing is downloaded at run '
                f'time: fetch {url} into {path.parent} on a machine with internet, or use '
                f"build_lpips(kind='stlpips') / kind='auto' (weights ship with stlpips-pytorch).")
        import lpips
        import warnings

        with warnings.catch_warnings():  # lpips passes the deprecated `pretrained=` to torchvision
            warnings.simplefilter('ignore')
            # pnet_rand=True: build the backbone without weights (no download); heads ship with lpips.
            self.model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
        state = torch.load(str(path), map_location='cpu', weights_only=True)
        self._load_backbone(state, path)
        self.name = f'LPIPS-{net} (lpips)'
        freeze(self)

    def _load_backbone(self, state, path):
        # lpips keeps torchvision's `features` indices inside its slices: net.sliceK.<i>.<param>
        index_to_slice = {}
        for slice_name, child in self.model.net.named_children():
            for idx, _ in child.named_children():
                index_to_slice[idx] = slice_name
        target = self.model.net.state_dict()
        mapped = {}
        for key, value in state.items():
            parts = key.split('.')
            if len(parts) == 3 and parts[0] == 'features' and parts[1] in index_to_slice:
                mapped[f'{index_to_slice[parts[1]]}.{parts[1]}.{parts[2]}'] = value
        missing = sorted(set(target) - set(mapped))
        if missing:
            raise RuntimeError(f'{path} is not a torchvision backbone checkpoint for LPIPS: '
                               f'missing {missing[:4]}...')
        self.model.net.load_state_dict(mapped, strict=True)

    def _distance(self, a, b):
        return self.model(a, b, normalize=True)


# ---------------------------------------------------------------------------------------------
# 'stlpips' backend: shift-tolerant LPIPS rebuilt here, weights from the stlpips-pytorch wheel.
# ---------------------------------------------------------------------------------------------
class BlurPool2d(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect pad by ``filt_size - 1``, depthwise binomial blur."""

    def __init__(self, channels, filt_size=3, stride=2):
        super().__init__()
        row = torch.tensor([math.comb(filt_size - 1, k) for k in range(filt_size)], dtype=torch.float32)
        kernel = row[:, None] * row[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer('filt', kernel[None, None].repeat(channels, 1, 1, 1))
        self.pad = filt_size - 1
        self.stride = stride

    def forward(self, x):
        x = F.pad(x, (self.pad, self.pad, self.pad, self.pad), mode='reflect')
        return F.conv2d(x, self.filt, stride=self.stride, groups=x.shape[1])


def _st_alex_layers():
    # conv1 keeps stride 1 and the strides move into blur-pools (shift-tolerant variant).
    layers = [nn.Conv2d(3, 64, 11, stride=1, padding=2), BlurPool2d(64), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, stride=1), BlurPool2d(64), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, stride=1), BlurPool2d(192), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
              nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
              nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True)]
    return layers, (3, 7, 11, 13, 15), (64, 192, 384, 256, 256)


def _st_vgg_layers():
    layers, in_ch = [], 3
    for v in (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512):
        if v == 'M':
            layers += [nn.MaxPool2d(2, stride=1), BlurPool2d(in_ch)]
        else:
            layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return layers, (4, 10, 18, 26, 34), (64, 128, 256, 512, 512)


class ShiftTolerantBackbone(nn.Module):
    """Shift-tolerant AlexNet / VGG16 trunk of ST-LPIPS; ``forward`` returns the 5 ReLU stages.

    Input: ``(B, 3, H, W)`` already scaled as LPIPS expects (``[-1, 1]`` then ``(x - shift) / scale``).
    """

    def __init__(self, net='alex'):
        super().__init__()
        net = _canonical_net(net)
        layers, ends, channels = _st_alex_layers() if net == 'alex' else _st_vgg_layers()
        self.features = nn.Sequential(*layers)
        self.stage_ends = ends
        self.channels = channels
        self.net_name = net

    def forward(self, x, num_stages=5):
        outs, start = [], 0
        for end in self.stage_ends[:num_stages]:
            for idx in range(start, end):
                x = self.features[idx](x)
            outs.append(x)
            start = end
        return outs


def load_stlpips_state(net='alex', path=None):
    """Read the ST-LPIPS weight file; returns ``(shift, scale, backbone_state, head_weights)``."""
    path = Path(path) if path else stlpips_weights_path(net)
    if not path.is_file():
        raise FileNotFoundError(f'shift-tolerant LPIPS weights {path.name} not found at {path}; '
                                f'reinstall stlpips-pytorch (`pip install --force-reinstall stlpips-pytorch`).')
    state = torch.load(str(path), map_location='cpu', weights_only=True)
    backbone = {}
    heads = {}
    for key, value in state.items():
        parts = key.split('.')
        if parts[0] == 'net':  # net.slice<k>.<global index>.<param>
            backbone[f'features.{parts[2]}.{parts[3]}'] = value
        elif parts[0].startswith('lin'):  # lin<k>.model.1.weight
            heads[int(parts[0][3:])] = value
    return state['scaling_layer.shift'], state['scaling_layer.scale'], backbone, heads


class LPIPSInputScaling(nn.Module):
    """[0, 1] image -> LPIPS input: ``(2 x - 1 - shift) / scale`` (LPIPS v0.1 ScalingLayer)."""

    def __init__(self, shift=None, scale=None):
        super().__init__()
        shift = shift if shift is not None else torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
        scale = scale if scale is not None else torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
        self.register_buffer('shift', shift.clone().float().view(1, 3, 1, 1))
        self.register_buffer('scale', scale.clone().float().view(1, 3, 1, 1))

    def forward(self, x):
        return (2 * x - 1 - self.shift) / self.scale


class ShiftTolerantLPIPS(_LPIPSBase):
    """ST-LPIPS: sum over 5 stages of spatial mean of ``w_l . (phi_l(a)/|phi_l(a)| - phi_l(b)/|phi_l(b)|)^2``."""

    def __init__(self, net='alex', weights_path=None, min_side=LPIPS_MIN_SIDE):
        super().__init__(min_side)
        net = _canonical_net(net)
        shift, scale, backbone, heads = load_stlpips_state(net, weights_path)
        self.scaling = LPIPSInputScaling(shift, scale)
        self.backbone = ShiftTolerantBackbone(net)
        self.backbone.load_state_dict(backbone, strict=True)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.backbone.channels)
        if sorted(heads) != list(range(len(self.heads))):
            raise RuntimeError(f'unexpected ST-LPIPS head keys {sorted(heads)} in {weights_path or net}')
        for k, head in enumerate(self.heads):
            head.weight.data.copy_(heads[k])
        self.name = f'ST-LPIPS-{net} (stlpips-pytorch)'
        freeze(self)

    @staticmethod
    def _unit(feat, eps=1e-10):
        return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)

    def _distance(self, a, b):
        n = a.shape[0]
        feats = self.backbone(self.scaling(torch.cat([a, b], dim=0)))
        total = 0
        for head, feat in zip(self.heads, feats):
            fa, fb = self._unit(feat[:n]), self._unit(feat[n:])
            total = total + head((fa - fb) ** 2).mean(dim=(2, 3))
        return total


# ---------------------------------------------------------------------------------------------
def resolve_lpips_kind(kind='auto', net='alex'):
    """Return ``(kind, is_fallback)`` with ``'auto'`` resolved to ``'lpips'`` or ``'stlpips'``."""
    if kind not in ('auto', 'lpips', 'stlpips'):
        raise ValueError(f"lpips kind must be 'auto', 'lpips' or 'stlpips', got {kind!r}.")
    if kind != 'auto':
        return kind, False
    if torchvision_backbone_path(net).is_file():
        return 'lpips', False
    return 'stlpips', True


def build_lpips(kind='auto', net='alex', device='cpu'):
    """Frozen LPIPS metric, built once per process for each ``(kind, net, device)``.

    Args:
        kind: ``'lpips'`` (reference package, backbone from the torch hub cache), ``'stlpips'``
            (shift-tolerant LPIPS, weights shipped in stlpips-pytorch) or ``'auto'`` (the first if
            its backbone is cached, else the second, with a warning).
        net: ``'alex'`` or ``'vgg'``.
        device: where the instance lives.

    Returns:
        nn.Module whose ``forward(a, b)`` maps two ``(B, 3, H, W)`` images in [0, 1] to ``(B,)``;
        attributes ``name``, ``is_fallback``, ``min_side`` (inputs with a shorter side are upsampled).
    """
    global _FALLBACK_WARNED
    net = _canonical_net(net)
    device = torch.device(device)
    resolved, is_fallback = resolve_lpips_kind(kind, net)
    key = (resolved, net, str(device), is_fallback)
    with _CACHE_LOCK:
        metric = _CACHE.get(key)
        if metric is None:
            if resolved == 'lpips':
                metric = PackageLPIPS(net)
            else:
                metric = ShiftTolerantLPIPS(net)
            metric.is_fallback = is_fallback
            metric = metric.to(device)
            _CACHE[key] = metric
    if is_fallback and not _FALLBACK_WARNED:
        _FALLBACK_WARNED = True
        from basicsr.utils import get_root_logger

        get_root_logger().warning(
            f'LPIPS: torchvision backbone {torchvision_backbone_path(net)} is not cached, so the '
            f"'lpips' package cannot be used offline; falling back to {metric.name}. Numbers are "
            f"not comparable with the reference LPIPS. Put {TORCHVISION_BACKBONES[net][0]} in "
            f"{torchvision_backbone_path(net).parent} to use it.")
    return metric


def clear_lpips_cache():
    """Forget built instances (tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()


__all__ = ['build_lpips', 'resolve_lpips_kind', 'clear_lpips_cache', 'PackageLPIPS', 'ShiftTolerantLPIPS',
           'ShiftTolerantBackbone', 'LPIPSInputScaling', 'load_stlpips_state', 'torchvision_backbone_path',
           'stlpips_weights_path', 'LPIPS_MIN_SIDE', 'TORCHVISION_BACKBONES']
