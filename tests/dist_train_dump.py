"""Test driver: BasicSR's train_pipeline exactly as ``tta_sr/train.py`` runs it, then each rank dumps the
weights it holds in memory to ``$TTA_RANK_DUMP_DIR/rank{RANK}.pth`` ({param_key: state_dict}, as a checkpoint).

Run under ``python -m torch.distributed.run --nproc_per_node 2 tests/dist_train_dump.py -opt X.yml
--launcher pytorch``. Only the test observes the ranks; nothing in the product code knows about it.
"""
import os
import sys

import torch

import tta_sr  # noqa: F401  (registers tta_sr; before basicsr)
from tta_sr.utils.launch import prepare_basicsr


def main():
    import basicsr.train
    built = []
    build_model = basicsr.train.build_model

    def build_and_keep(opt):
        model = build_model(opt)
        built.append(model)
        return model

    basicsr.train.build_model = build_and_keep
    prepare_basicsr(sys.argv)
    basicsr.train.train_pipeline(os.getcwd())
    model = built[0]
    state = {'params': model.get_bare_model(model.net_g).state_dict()}
    if hasattr(model, 'net_g_ema'):
        state['params_ema'] = model.net_g_ema.state_dict()
    if getattr(model, 'cri_far', None) is not None and model.__class__.__name__ == 'LRReconPretrainModel':
        state['params_far'] = model.get_bare_model(model.cri_far).state_dict()
    folder = os.environ['TTA_RANK_DUMP_DIR']
    os.makedirs(folder, exist_ok=True)
    torch.save({k: {n: t.detach().cpu() for n, t in v.items()} for k, v in state.items()},
               os.path.join(folder, f'rank{os.environ.get("RANK", "0")}.pth'))


if __name__ == '__main__':
    main()
