"""Reports a person can read: ``write_report(run_dir, images, metrics, curves, scale)`` writes
``metrics.json``, ``metrics.csv`` and an offline ``report.html`` with the metric table (before vs
after adaptation), crops where the outputs differ most and loss / metric curves.
"""
from tta_sr.report.crops import pick_crop_box
from tta_sr.report.scores import build_metrics, format_table, mean_scores, write_metrics_files
from tta_sr.report.writer import score_image, write_report

__all__ = ['write_report', 'pick_crop_box', 'score_image', 'build_metrics', 'write_metrics_files', 'format_table',
           'mean_scores']
