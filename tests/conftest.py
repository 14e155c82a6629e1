"""Fixtures shared by the tests."""
import logging

import pytest


@pytest.fixture
def warnings_log():
    """Messages of WARNING and above logged on BasicSR's root logger during the test."""
    import tta_sr  # noqa: F401  (before basicsr)
    from basicsr.utils import get_root_logger
    logger = get_root_logger()
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
