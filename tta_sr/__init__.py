"""tta_sr: test-time adaptation of real-world super-resolution models, as a BasicSR plugin.

Importing the package installs the torchvision compatibility alias (before basicsr is imported)
and registers tta_sr's archs, datasets, losses and models into BasicSR's registries.
"""
from tta_sr import compat  # noqa: F401  (must come before any basicsr import)
from tta_sr import archs, data, losses, models  # noqa: F401,E402
import model_zoo_adapters  # noqa: F401,E402  (zoo families by name)

__version__ = '0.1.0'
