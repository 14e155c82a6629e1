"""The one place where networks are frozen."""
from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode and stop gradients to its parameters; returns it.

    Gradients can still flow *through* a frozen module to its input (stage 2 needs that);
    callers that need no input gradient wrap the call in ``torch.no_grad()``.
    """
    module.eval()
    module.requires_grad_(False)
    return module
