"""The source model M_0 of an adaptation run: the selector's first candidate, what the anchors and SRTTA's teacher
compare to.

A fresh run takes M's weights as loaded, before any step. A resumed run reloads them from what the run
started from, ``path.source_network_g`` (a manifest name or a file, with ``source_param_key_g``), which the
launcher records before BasicSR points ``path.pretrain_network_g`` at the run's own checkpoint
(``tta_sr.utils.launch``).
"""
import copy

from tta_sr.models.model_base import load_weights_into
from tta_sr.utils.freeze import freeze
from tta_sr.weights.resolver import load_manifest


class SourceWeights:
    """``state`` (CPU tensors) of M_0 for the bare network ``net`` of a run with options ``path_opt``."""

    def __init__(self, net, path_opt):
        if not path_opt.get('resume_state'):
            self.state = {k: v.detach().to('cpu', copy=True) for k, v in net.state_dict().items()}
            return
        source = path_opt.get('source_network_g')
        if source is None:
            raise ValueError('a resumed adaptation run needs path.source_network_g, the weights it started from '
                             '(tta_sr/train.py records it on --auto_resume); set it to the original '
                             'path.pretrain_network_g')
        manifest = load_manifest()
        key = path_opt.get('source_param_key_g') or (manifest[source].get('param_key') if source in manifest
                                                     else 'params')
        copy_of_net = copy.deepcopy(net).cpu()
        load_weights_into(copy_of_net, source, param_key=key)
        self.state = copy_of_net.state_dict()

    def load_into(self, net):
        """Put the source weights into ``net`` (a bare network of the same arch)."""
        net.load_state_dict(self.state)

    def copy(self, net, device, frozen=True):
        """A network with ``net``'s arch and the source weights on ``device``, frozen unless ``frozen`` is False."""
        source = copy.deepcopy(net).to(device)
        source.load_state_dict(self.state)
        return freeze(source) if frozen else source


__all__ = ['SourceWeights']
