"""Make basicsr 1.4.2 and realesrgan 0.3.0 importable on current torchvision.

Both import ``torchvision.transforms.functional_tensor``, which torchvision removed. The only
name they use from it is ``rgb_to_grayscale``; we register an alias module that provides it from
``torchvision.transforms.functional``. Must run before the first ``import basicsr``.
"""
import sys
import types


def install_functional_tensor_alias():
    """Register ``torchvision.transforms.functional_tensor`` in ``sys.modules`` if it is missing."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return sys.modules[name]
    try:
        import torchvision.transforms.functional_tensor as module  # noqa: F401  (old torchvision)
        return module
    except ImportError:
        pass
    from torchvision.transforms import functional

    module = types.ModuleType(name)
    module.rgb_to_grayscale = functional.rgb_to_grayscale
    module.__doc__ = 'Alias installed by tta_sr.compat: rgb_to_grayscale from torchvision.transforms.functional.'
    sys.modules[name] = module
    return module


install_functional_tensor_alias()
