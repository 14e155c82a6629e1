"""tta_sr/utils/progress.py: the bar follows the iterations, shows the loss and an ETA, and closes at the end."""
import io
import logging

from tta_sr.utils.progress import attach, quiet_console


class FakeModel:
    """What the bar uses of a BasicSR model: opt, optimize_parameters, get_current_log, save."""

    def __init__(self, total_iter, rank=0):
        self.opt = {'rank': rank, 'train': {'total_iter': total_iter}}
        self.saved, self.log = [], {}

    def optimize_parameters(self, current_iter):
        self.log = {'l_rec': 0.5 / current_iter, 'l_far': 0.25, 'lr': 1e-3}

    def get_current_log(self):
        return self.log

    def save(self, epoch, current_iter):
        self.saved.append(current_iter)


def test_bar_counts_iterations_with_loss_and_eta():
    stream = io.StringIO()
    model = attach(FakeModel(4), stream=stream)
    for it in range(1, 5):
        model.optimize_parameters(it)
    model.save(0, -1)
    text = stream.getvalue()
    assert '4/4' in text and 'loss=0.375' in text  # l_rec + l_far of the last iteration; 'lr' is not a loss
    assert '<' in text  # tqdm's "elapsed<remaining"
    assert 'writing the outputs' in text and model.saved == [-1]


def test_bar_starts_at_the_resumed_iteration_and_only_on_rank_0():
    stream = io.StringIO()
    model = attach(FakeModel(10), stream=stream)
    model.optimize_parameters(7)
    model.save(0, -1)
    assert '7/10' in stream.getvalue() and '0/10' not in stream.getvalue()
    other = FakeModel(10, rank=1)
    assert attach(other, stream=stream).optimize_parameters.__func__ is FakeModel.optimize_parameters


def test_quiet_console_keeps_the_file_handler(tmp_path):
    logger = logging.getLogger('tta_sr_test_quiet')
    console, log_file = logging.StreamHandler(), logging.FileHandler(tmp_path / 'x.log')
    logger.addHandler(console)
    logger.addHandler(log_file)
    try:
        quiet_console(logger)
        assert console.level == logging.WARNING and log_file.level == logging.NOTSET
    finally:
        logger.removeHandler(console)
        logger.removeHandler(log_file)
        log_file.close()
