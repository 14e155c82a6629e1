"""Tests for tta_sr/compat.py: basicsr and realesrgan import on a torchvision without functional_tensor."""
import os
import subprocess
import sys

import tta_sr  # noqa: F401  (installs the alias before basicsr)


def test_basicsr_and_realesrgan_import_after_tta_sr():
    import basicsr.data.degradations  # noqa: F401
    import realesrgan  # noqa: F401
    from torchvision.transforms import functional

    alias = sys.modules['torchvision.transforms.functional_tensor']
    assert alias.rgb_to_grayscale is functional.rgb_to_grayscale
    # the name basicsr's degradations use is that very function
    assert basicsr.data.degradations.rgb_to_grayscale is functional.rgb_to_grayscale


def test_install_is_idempotent():
    from tta_sr.compat import install_functional_tensor_alias
    first = sys.modules['torchvision.transforms.functional_tensor']
    assert install_functional_tensor_alias() is first


def test_fresh_interpreter_imports_in_order():
    """`import tta_sr` first is all a user needs; without it basicsr would fail on current torchvision."""
    code = ('import tta_sr, basicsr.data.degradations, realesrgan, sys; '
            'from torchvision.transforms import functional as F; '
            "assert sys.modules['torchvision.transforms.functional_tensor'].rgb_to_grayscale is F.rgb_to_grayscale; "
            "print('ok')")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('ok')
