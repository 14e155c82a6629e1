"""A tqdm progress bar over BasicSR's training loop, switched on by ``logger.progress_bar: true``.

``tta-sr adapt`` writes that option into the file it runs; ``python tta_sr/train.py -opt FILE`` honours it
the same way. The bar shows ``iteration/total``, the current loss (the sum of the model's ``l_*`` log
entries, i.e. what ``optimize_parameters`` just minimised) and tqdm's elapsed time and ETA. BasicSR's own
lines still go to the run's log file; on the console only its warnings and errors remain, so that they do
not break the bar.

Mechanism (one): :func:`install` wraps two names that ``basicsr.train.train_pipeline`` looks up when it
runs: ``get_root_logger`` (to quieten the console handler once the log file is attached) and
``build_model`` (to :func:`attach` the bar to the model, which BasicSR calls once per iteration through
``optimize_parameters`` and once at the end through ``save(-1, -1)``). Only rank 0 shows a bar.
"""
import logging
import sys


def quiet_console(logger, level=logging.WARNING):
    """Raise the level of ``logger``'s console handlers (not its file handlers) to ``level``; returns it."""
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)
    return logger


def attach(model, stream=None, desc='adapt'):
    """Wrap ``model.optimize_parameters`` and ``model.save`` so that every iteration advances a tqdm bar.

    Args:
        model: a BasicSR model; ``model.opt['train']['total_iter']`` is the bar's total, and the first
            iteration it sees (``resume_iter + 1`` on resume) sets where the bar starts.
        stream: where the bar is drawn (default ``sys.stderr``).

    Returns:
        ``model`` (changed in place).
    """
    if model.opt.get('rank', 0) != 0:
        return model
    from tqdm import tqdm
    total = int(model.opt['train']['total_iter'])
    optimize, save, bars = model.optimize_parameters, model.save, []

    def optimize_parameters(current_iter):
        optimize(current_iter)
        if not bars:
            bars.append(tqdm(total=total, initial=current_iter - 1, desc=desc, unit='it', file=stream or sys.stderr,
                             dynamic_ncols=True))
        losses = [v for k, v in model.get_current_log().items() if k.startswith('l_')]
        if losses:
            bars[0].set_postfix(loss=f'{sum(losses):.4g}', refresh=False)
        bars[0].update(current_iter - bars[0].n)

    def save_and_close(epoch, current_iter):
        if current_iter == -1 and bars:
            bars.pop().close()
            print('training done; writing the outputs and the report', file=stream or sys.stderr, flush=True)
        save(epoch, current_iter)

    model.optimize_parameters = optimize_parameters
    model.save = save_and_close
    return model


def install():
    """Make ``basicsr.train.train_pipeline`` draw the bar (idempotent)."""
    import basicsr.train as pipeline
    if getattr(pipeline.build_model, 'tta_sr_progress', False):
        return
    get_root_logger, build_model = pipeline.get_root_logger, pipeline.build_model

    def get_quiet_root_logger(*args, **kwargs):
        return quiet_console(get_root_logger(*args, **kwargs))

    def build_model_with_bar(opt):
        return attach(build_model(opt))

    build_model_with_bar.tta_sr_progress = True
    pipeline.get_root_logger, pipeline.build_model = get_quiet_root_logger, build_model_with_bar
