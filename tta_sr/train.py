"""Train with BasicSR's pipeline: ``python tta_sr/train.py -opt options/....yml [--auto_resume]``.

A missing or imageless folder, an unreadable weights file or an output folder that cannot be written ends
the run with a one-line error and exit status 1 (``tta_sr.utils.errors``).
"""
import os
import sys

import tta_sr  # noqa: F401  (registers tta_sr's archs, datasets, losses and models)
from tta_sr.utils.errors import user_errors
from tta_sr.utils.launch import option_file_from_argv, prepare_basicsr
from tta_sr.utils.per_image import per_image_runs, run_per_image


def main():
    with user_errors('tta_sr/train.py'):
        runs = per_image_runs(sys.argv, option_file_from_argv(sys.argv))
        if runs is not None:
            run_per_image(runs)
            return
        prepare_basicsr(sys.argv)
        from basicsr.train import train_pipeline
        train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
