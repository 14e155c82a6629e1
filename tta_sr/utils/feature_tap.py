"""Read the features of an arbitrary SR network: the input of one of its modules, captured by a hook.

SRTTA reconstructs features, not images: the official EDSR code uses the output of EDSR's upsampler,
which is the input of its last convolution. For any registered arch the default layer is likewise the
last ``nn.Conv2d`` in module order (RRDBNet's ``conv_last``: HR features; SRVGGNetCompact's last body
conv: LR features before the pixel shuffle); ``layer`` names another module (a key of ``named_modules``).
"""
from torch import nn


def last_conv_name(net):
    """Name of the last ``nn.Conv2d`` of ``net`` in module order."""
    names = [name for name, module in net.named_modules() if isinstance(module, nn.Conv2d)]
    if not names:
        raise ValueError(f'{type(net).__name__} has no nn.Conv2d; set train.feature_layer to a module name')
    return names[-1]


class FeatureTap:
    """``tap(x)`` runs ``net(x)`` and returns the input of the module ``layer`` (default: the last Conv2d)."""

    def __init__(self, net, layer=None):
        modules = dict(net.named_modules())
        self.name = layer or last_conv_name(net)
        if self.name not in modules:
            raise ValueError(f'train.feature_layer {self.name!r} is not a module of {type(net).__name__}; '
                             f'modules: {", ".join(n for n in list(modules)[1:20])}...')
        self.net = net
        self._value = None
        modules[self.name].register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self._value = args[0]

    def __call__(self, x):
        self._value = None
        self.net(x)
        if self._value is None:
            raise RuntimeError(f'the forward pass of {type(self.net).__name__} did not run {self.name!r}')
        value, self._value = self._value, None
        return value
