"""A NaN loss in a real stage-2 run (``train.debug_inject_nan_iter``): the run finishes, ``LossHealthGuard``
says so in the log, and the adapted weights are finite."""
import torch

from reliability_helpers import (checkpoint, make_branch_checkpoint, run_log, train, tta_options, write_images,
                                 write_yaml)


def test_stage2_run_survives_an_injected_nan(tmp_path):
    write_images(tmp_path / 'lr', 3, 24)
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    opt = tta_options('nan', tmp_path / 'lr', branch, total_iter=4, checkpoint_freq=4, val=False,
                      debug_inject_nan_iter=2)
    train(write_yaml(tmp_path / 'nan.yml', opt), tmp_path)
    log = run_log(tmp_path, 'nan')
    assert 'debug_inject_nan_iter: injecting NaN into the loss at iter 2' in log
    assert 'LossHealthGuard: loss is NaN/inf at iter 2; skipped the step' in log
    assert 'End of training' in log
    weights = checkpoint(tmp_path, 'nan')
    for key, state in weights.items():
        for name, tensor in state.items():
            assert torch.isfinite(tensor).all(), f'{key}.{name} is not finite'
    assert (tmp_path / 'experiments' / 'nan' / 'results' / 'adapted').is_dir()
