"""The source model's weights, kept beside an adaptation run: what the gate falls back to and the anchors compare to.

A fresh run copies M's weights (as loaded, before any step) into ``models/net_g_source.pth`` (``params``,
written atomically); a resumed run reads them back from there, since BasicSR points
``path.pretrain_network_g`` at the run's own latest checkpoint on resume.
"""
import copy
import os

from tta_sr.utils.atomic import atomic_torch_save
from tta_sr.utils.freeze import freeze
from tta_sr.weights.resolver import load_state_dict

FILENAME = 'net_g_source.pth'


class SourceWeights:
    """``state`` (CPU tensors) of the source model of the run in ``models_dir``; see the module docstring."""

    def __init__(self, net, models_dir, resumed):
        self.path = os.path.join(models_dir, FILENAME)
        if resumed:
            if not os.path.isfile(self.path):
                raise FileNotFoundError(f'{self.path} is missing: a resumed adaptation run needs the source weights '
                                        'its first start saved there; start the run afresh')
            self.state = load_state_dict(self.path, param_key='params')
        else:
            self.state = {k: v.detach().to('cpu', copy=True) for k, v in net.state_dict().items()}
            os.makedirs(models_dir, exist_ok=True)
            atomic_torch_save({'params': self.state}, self.path)

    def load_into(self, net):
        """Put the source weights back into ``net`` (a bare network of the same arch)."""
        net.load_state_dict(self.state)

    def frozen_copy(self, net, device):
        """A frozen network with ``net``'s arch and the source weights, on ``device`` (M_src for the anchor)."""
        source = copy.deepcopy(net).to(device)
        source.load_state_dict(self.state)
        return freeze(source)


__all__ = ['SourceWeights', 'FILENAME']
