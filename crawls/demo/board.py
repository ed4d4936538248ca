"""The demo board: a deterministic local website of bid notices for the crawler, its tests and
its benchmark. The public interface lives here; crawls.demo.data builds the notices and pages,
crawls.demo.app serves them (aiohttp) or exports them as static files.
"""

from crawls.demo.app import BOARD, Board, export_static, gzip_bomb, make_app, start_board
from crawls.demo.data import (
    DEMO_RULES,
    MAX_EPOCH,
    NEW_PER_EPOCH,
    PRIVATE_PATH,
    BoardConfig,
    Entry,
    Notice,
    Page,
    changed_between,
    epoch_time,
    expected_bids,
    listing,
    notices,
    render_site,
)

__all__ = [
    "BOARD",
    "DEMO_RULES",
    "MAX_EPOCH",
    "NEW_PER_EPOCH",
    "PRIVATE_PATH",
    "Board",
    "BoardConfig",
    "Entry",
    "Notice",
    "Page",
    "changed_between",
    "epoch_time",
    "expected_bids",
    "export_static",
    "gzip_bomb",
    "listing",
    "make_app",
    "notices",
    "render_site",
    "start_board",
]
