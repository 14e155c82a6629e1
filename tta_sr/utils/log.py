"""BasicSR's root logger for tta_sr's warnings, fetched without initialising it."""
import logging


def basicsr_logger():
    """BasicSR's root logger, without initialising it: BasicSR's first ``get_root_logger`` call is the one
    that attaches the log file, so calling it early from here would leave the run without a log file."""
    from basicsr.utils.logger import initialized_logger
    if 'basicsr' in initialized_logger:
        from basicsr.utils import get_root_logger
        return get_root_logger()
    return logging.getLogger('basicsr')
