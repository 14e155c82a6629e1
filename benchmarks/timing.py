"""Time and memory of a benchmark's training: the training loop with per-iteration seconds and losses, peak
memory over a block, and the seconds-per-iteration summary."""
import statistics
import threading
import time

import numpy as np
import torch


class PeakMemory:
    """Peak memory over a ``with`` block: process RSS sampled every ``interval`` s on CPU (psutil), or
    ``torch.cuda.max_memory_allocated`` on GPU. ``peak_mb`` (absolute) and ``delta_mb`` (above the start)."""

    def __init__(self, device='cpu', interval=0.01):
        self.device, self.interval = str(device), interval
        self.peak_mb = self.start_mb = self.delta_mb = None

    def __enter__(self):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2 ** 20
            return self
        import psutil
        self._proc = psutil.Process()
        self.start_mb = self._peak = self._proc.memory_info().rss / 2 ** 20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss / 2 ** 20)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, self._proc.memory_info().rss / 2 ** 20)
        self.delta_mb = self.peak_mb - self.start_mb
        return False


def sync(device):
    """Wait for the GPU's queued work (a no-op on CPU), so that a clock read after it counts that work."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def train_steps(model, sampler, start, stop, device, times, losses):
    """Iterations ``start+1 .. stop`` of ``model`` on the sampler's batches; appends seconds and losses."""
    for it in range(start + 1, stop + 1):
        batch = sampler()
        sync(device)
        t0 = time.perf_counter()
        model.update_learning_rate(it, warmup_iter=-1)
        model.feed_data(batch)
        model.optimize_parameters(it)
        sync(device)
        times.append(time.perf_counter() - t0)
        losses.append({k: float(v) for k, v in model.log_dict.items()})


def summary(times):
    """Seconds per iteration: mean and median over the iterations after the first (warm-up)."""
    steady = times[1:] or times
    return {'mean': float(np.mean(steady)), 'median': float(statistics.median(steady)), 'first': float(times[0]),
            'n': len(times)}
