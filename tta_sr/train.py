"""Train with BasicSR's pipeline: ``python tta_sr/train.py -opt options/....yml [--auto_resume]``."""
import os
import sys

import tta_sr  # noqa: F401  (registers tta_sr's archs, datasets, losses and models)
from tta_sr.utils.launch import prepare_basicsr


def main():
    prepare_basicsr(sys.argv)
    from basicsr.train import train_pipeline
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
