"""Train SRTTA's degradation classifier on HR photos degraded on the fly (multi-label, sigmoid).

Batch: HR crops Y with the types to apply, their labels t in {0, 1}^3 and blur kernels k
(``DegradationTypeDataset``: a blur too narrow to show is applied but labelled absent); X = D(Y) with the x``scale`` downscale (``tta_sr.data.degradation_types.apply_types``), so the classifier
sees LR images as an SR model receives them.
Loss: binary cross-entropy on the logits, L = -mean_{b, j} [t_bj log sigmoid(z_bj) + (1 - t_bj) log(1 - sigmoid(z_bj))].
Validation: per-type accuracy (``acc_blur``, ``acc_noise``, ``acc_jpeg``: p > 0.5 against the label) and
``acc_all`` (all three right), on whole held-out images (batch 1, pooled over the image).
"""
from collections import OrderedDict

import torch
from torch.nn import functional as F

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.data.degradation_types import TYPES, apply_types, degradation_settings
from tta_sr.data.second_order_degradation import make_jpeger
from tta_sr.models.model_base import TTASRModelMixin


def type_accuracy(logits, labels):
    """{'acc_<type>': fraction right per type, 'acc_all': all three right} for (N, 3) logits and labels."""
    right = (logits > 0) == labels.bool()
    scores = {f'acc_{t}': right[:, j].float().mean().item() for j, t in enumerate(TYPES)}
    scores['acc_all'] = right.all(1).float().mean().item()
    return scores


@torch.no_grad()
def held_out_accuracy(net, folders, seed, draws_per_image=1, max_size=0, scale=4, device='cpu', **labels):
    """:func:`type_accuracy` of ``net`` (eval mode) on whole images of ``folders``, each degraded
    ``draws_per_image`` times (``DegradationTypeDataset`` validation items, seeds ``seed + i``; ``labels``:
    its ``type_prob``, ``blur_min_width``, ``blur_max_noise``); adds ``count``."""
    from tta_sr.data.degradation_type_dataset import DegradationTypeDataset
    dataset = DegradationTypeDataset({'dataroot_gt': str(folders[0]), 'extra_dataroots_gt': [str(f) for f in folders[1:]],
                                      'scale': scale, 'fixed_seed': seed, 'draws_per_image': draws_per_image,
                                      'max_size': max_size, **labels})
    was_training = net.training
    net.eval()
    items = [dataset[i] for i in range(len(dataset))]
    logits = torch.cat([net(item['lq'][None].to(device)) for item in items])
    net.train(was_training)
    scores = type_accuracy(logits, torch.stack([item['label'] for item in items]).to(device))
    scores['count'] = len(items)
    return scores


@MODEL_REGISTRY.register()
class DegradationClassifierModel(TTASRModelMixin, SRModel):
    """``network_g``: ``DegradationClassifier``; ``train.degradation``: overrides of SRTTA's ranges."""

    def init_training_settings(self):
        self.net_g.train()
        self.ema_decay = 0
        self.jpeger = make_jpeger(self.device)
        self.degradation = degradation_settings(self.opt['train'].get('degradation'))
        self.setup_optimizers()
        self.setup_schedulers()

    @torch.no_grad()
    def feed_data(self, data):
        """Train: degrade ``gt`` into ``lq`` (types from ``label``). Val: take ``lq``."""
        self.label = data['label'].to(self.device)
        if 'lq' in data:
            self.lq = data['lq'].to(self.device)
            return
        gt, kernel = data['gt'].to(self.device), data['kernel'].to(self.device)
        self.lq = apply_types(gt, data['applied'], kernel, self.degradation, self.jpeger, self.opt['scale'],
                              data['noise_sigma'])

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        loss = F.binary_cross_entropy_with_logits(self.output, self.label)
        self.log_dict = self.reduce_loss_dict(OrderedDict(l_bce=loss))
        self.guarded_step(loss, current_iter)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Per-type and exact-match accuracy on the validation items (each a whole image)."""
        self.net_g.eval()
        logits, labels = [], []
        with torch.no_grad():
            for data in dataloader:
                self.feed_data(data)
                logits.append(self.net_g(self.lq))
                labels.append(self.label)
        self.net_g.train()
        self.metric_results = type_accuracy(torch.cat(logits), torch.cat(labels))
        name = dataloader.dataset.opt['name']
        get_root_logger().info(f'Validation {name} @ iter {current_iter}: ' +
                               ', '.join(f'{k} {v:.4f}' for k, v in self.metric_results.items()))
        if tb_logger:
            for key, value in self.metric_results.items():
                tb_logger.add_scalar(f'metrics/{name}/{key}', value, current_iter)
