"""Test with BasicSR's pipeline: ``python tta_sr/test.py -opt options/test/....yml``.

tta_sr's registries (archs, datasets, losses, models) and metrics (``calculate_lpips``,
``calculate_nrqm``: ``tta_sr/metrics/basicsr_metrics.py``) are registered first, then the option
file's ``import_modules`` are imported, then ``basicsr.test.test_pipeline`` takes over.
"""
import os
import sys

import tta_sr  # noqa: F401  (compat alias before basicsr; registers tta_sr's classes)
import tta_sr.metrics.basicsr_metrics  # noqa: F401,E402  (calculate_lpips / calculate_nrqm in METRIC_REGISTRY)
from tta_sr.utils.launch import prepare_basicsr  # noqa: E402


def main():
    prepare_basicsr(sys.argv)
    from basicsr.test import test_pipeline
    test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
