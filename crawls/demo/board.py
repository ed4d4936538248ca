"""The demo board: a deterministic local website of bid notices for the crawler, its tests and
its benchmark. The public interface lives here; crawls.demo.data builds the notices and
crawls.demo.site their pages; crawls.demo.tenders, feeds and egov the same notices as a JSON API,
an XML service, an OCDS feed and a POST-form board; crawls.demo.app serves them (aiohttp) or
exports the pages as static files.
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
    changed_between,
    epoch_time,
    expected_bids,
    listing,
    notices,
)
from crawls.demo.egov import BBS_ID, DEMO_EGOV_RULES
from crawls.demo.egov import LIST_PATH as EGOV_LIST_PATH
from crawls.demo.egov import VIEW_PATH as EGOV_VIEW_PATH
from crawls.demo.feeds import (
    API_PATH,
    DEMO_API_KEY,
    DEMO_JSON_RULES,
    DEMO_OCDS_RULES,
    DEMO_SERVICE_KEY,
    DEMO_XML_RULES,
    OCDS_RECORDS_PATH,
    OCDS_RELEASES_PATH,
    XML_PATH,
)
from crawls.demo.page import Page
from crawls.demo.site import render_site
from crawls.demo.tenders import Tender, expected_feed_bids, expected_ocds_bids, tenders

__all__ = [
    "API_PATH",
    "BBS_ID",
    "BOARD",
    "DEMO_API_KEY",
    "DEMO_EGOV_RULES",
    "DEMO_JSON_RULES",
    "DEMO_OCDS_RULES",
    "DEMO_RULES",
    "DEMO_SERVICE_KEY",
    "DEMO_XML_RULES",
    "EGOV_LIST_PATH",
    "EGOV_VIEW_PATH",
    "MAX_EPOCH",
    "NEW_PER_EPOCH",
    "OCDS_RECORDS_PATH",
    "OCDS_RELEASES_PATH",
    "PRIVATE_PATH",
    "XML_PATH",
    "Board",
    "BoardConfig",
    "Entry",
    "Notice",
    "Page",
    "Tender",
    "changed_between",
    "epoch_time",
    "expected_bids",
    "expected_feed_bids",
    "expected_ocds_bids",
    "export_static",
    "gzip_bomb",
    "listing",
    "make_app",
    "notices",
    "render_site",
    "start_board",
    "tenders",
]
