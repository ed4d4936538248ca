"""The demo board's JSON API, XML service, OCDS feed and eGov board over HTTP (aiohttp handlers).

Bodies come from crawls.demo.feeds and crawls.demo.egov. Hostile as the HTML board is, by the
same config knobs: a page that shows a flaky notice answers 500 to its first request on a server,
one that shows a slow notice waits slow_seconds; GET answers carry an ETag and Last-Modified and
honour conditional GET. BoardConfig.bench() has neither flaky nor slow notices.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import UTC
from email.utils import format_datetime

from aiohttp import web

from crawls.demo import egov, feeds, tenders
from crawls.demo.data import FLAKY, epoch_time
from crawls.demo.page import HTML
from crawls.demo.serving import BOARD, Board, not_modified, origin

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml;charset=UTF-8"


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number between {low} and {high}")
    return int(text)


async def _state(request: web.Request) -> tuple[Board, int]:
    """The board and its current epoch, with that epoch's tenders computed (off the loop)."""
    board = request.app[BOARD]
    epoch = board.epoch
    await asyncio.to_thread(tenders.tenders, board.config, epoch)
    return board, epoch


async def _respond(
    request: web.Request,
    board: Board,
    epoch: int,
    body: bytes,
    content_type: str,
    part: feeds.Slice,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Answer with `body`: slow or flaky as its notices are; conditional on a GET."""
    if part.slow:
        await asyncio.sleep(board.config.slow_seconds)
    if part.flaky and board.fail_once(f"{request.method} {request.path_qs}"):
        return web.Response(status=500, text="Temporary failure, try again\n")
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if request.method in ("GET", "HEAD"):
        etag = '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"'
        modified = epoch_time(epoch)
        all_headers["ETag"] = etag
        all_headers["Last-Modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
        if not_modified(request, etag, modified):
            del all_headers["Content-Type"]
            return web.Response(status=304, headers=all_headers)
    return web.Response(body=body, headers=all_headers)


def _json(status: int, value: object, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=feeds.dumps(value),
        headers={"Content-Type": JSON_TYPE, **(headers or {})},
    )


# --- JSON API -------------------------------------------------------------------------------------


def _api_params(query: Mapping[str, str]) -> tuple[str, int, int]:
    """(style, offset, limit) of a request: cursor+limit, offset+limit or page+per_page."""
    most = feeds.API_MAX_LIMIT
    if "cursor" in query:
        offset = feeds.cursor_decode(query["cursor"])
        return "cursor", offset, _int(query, "limit", feeds.API_DEFAULT_LIMIT, 1, most)
    if "offset" in query:
        offset = _int(query, "offset", 0, 0, 10**9)
        return "offset", offset, _int(query, "limit", feeds.API_DEFAULT_LIMIT, 1, most)
    page = _int(query, "page", 1, 1, 10**7)
    size_name = "per_page" if "per_page" in query else "limit"
    size = _int(query, size_name, feeds.API_DEFAULT_LIMIT, 1, most)
    return "page", (page - 1) * size, size


async def _api_notices(request: web.Request) -> web.Response:
    key = request.headers.get("X-Api-Key") or request.query.get("api_key")
    if key != feeds.DEMO_API_KEY:
        message = "A valid API key is required (X-Api-Key header or api_key parameter)."
        return _json(
            401,
            feeds.api_error("INVALID_KEY", message),
            {"WWW-Authenticate": 'ApiKey realm="demo"'},
        )
    try:
        style, offset, limit = _api_params(request.query)
    except ValueError as exc:
        return _json(400, feeds.api_error("INVALID_PARAMETER", str(exc)))
    board, epoch = await _state(request)
    body, part, next_url = feeds.api_page(
        board.config, epoch, style=style, offset=offset, limit=limit, origin=origin(request)
    )
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return await _respond(request, board, epoch, feeds.dumps(body), JSON_TYPE, part, headers)


# --- XML service ----------------------------------------------------------------------------------


async def _xml_bids(request: web.Request) -> web.Response:
    query = request.query
    # The service answers every error with HTTP 200 and its own envelope.
    if query.get("serviceKey") != feeds.DEMO_SERVICE_KEY:
        error = feeds.xml_error("SERVICE_KEY_IS_NOT_REGISTERED_ERROR", "30")
        return web.Response(body=error, headers={"Content-Type": XML_TYPE})
    try:
        page = _int(query, "pageNo", 1, 1, 10**7)
        rows = _int(query, "numOfRows", feeds.XML_DEFAULT_ROWS, 1, feeds.XML_MAX_ROWS)
    except ValueError:
        error = feeds.xml_error("INVALID_REQUEST_PARAMETER_ERROR", "10")
        return web.Response(body=error, headers={"Content-Type": XML_TYPE})
    board, epoch = await _state(request)
    body, part = feeds.xml_page(board.config, epoch, page=page, rows=rows, origin=origin(request))
    return await _respond(request, board, epoch, body, XML_TYPE, part)


# --- OCDS -----------------------------------------------------------------------------------------


async def _ocds(request: web.Request) -> web.Response:
    try:
        page = _int(request.query, "page", 1, 1, 10**7)
    except ValueError as exc:
        return _json(400, feeds.api_error("INVALID_PARAMETER", str(exc)))
    board, epoch = await _state(request)
    build = (
        feeds.release_package if request.path == feeds.OCDS_RELEASES_PATH else feeds.record_package
    )
    package = await asyncio.to_thread(build, board.config, epoch, page=page, origin=origin(request))
    if page > 1 and not (package.get("releases") or package.get("records")):
        return _json(404, feeds.api_error("NOT_FOUND", f"there is no page {page}"))
    part = feeds.package_slice(board.config, epoch, package)
    return await _respond(request, board, epoch, feeds.dumps(package), JSON_TYPE, part)


# --- eGov board -----------------------------------------------------------------------------------


def _html(status: int, text: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=text.encode(), headers={"Content-Type": HTML, **(headers or {})}
    )


async def _egov_list(request: web.Request) -> web.Response:
    page = 1
    if request.method == "POST":
        form = await request.post()
        value = form.get("pageIndex")
        # eGovFrame falls back to the first page on a bad pageIndex.
        if isinstance(value, str) and value.isdigit() and 1 <= int(value) <= 10**7:
            page = int(value)
    board, epoch = await _state(request)
    body = egov.list_html(board.config, epoch, page).encode()
    shown = egov.page_tenders(board.config, epoch, page)
    part = feeds.Slice(shown, len(shown), flaky=False, slow=False)
    return await _respond(request, board, epoch, body, HTML, part)


async def _egov_view(request: web.Request) -> web.Response:
    if request.method != "POST":
        return _html(405, egov.error_html("잘못된 접근입니다. (POST only)"), {"Allow": "POST"})
    form = await request.post()
    ntt_id, bbs_id = form.get("nttId"), form.get("bbsId", egov.BBS_ID)
    board, epoch = await _state(request)
    tender = None
    if isinstance(ntt_id, str) and ntt_id.isdigit() and bbs_id == egov.BBS_ID:
        tender = tenders.tender_by_id(board.config, epoch, int(ntt_id))
    if tender is None:
        return _html(404, egov.error_html("해당 게시물을 찾을 수 없습니다."))
    notice = tender.notice
    # POST answers are not conditional; flakiness is per notice.
    if notice.slow:
        await asyncio.sleep(board.config.slow_seconds)
    if notice.status == FLAKY and board.fail_once(f"POST {egov.VIEW_PATH} {notice.id}"):
        return web.Response(status=500, text="Temporary failure, try again\n")
    return _html(200, egov.view_html(tender))


def add_routes(router: web.UrlDispatcher) -> None:
    """The routes of every machine-readable and POST-form shape of the board."""
    router.add_get(feeds.API_PATH, _api_notices)
    router.add_get(feeds.XML_PATH, _xml_bids)
    router.add_get(feeds.OCDS_RELEASES_PATH, _ocds)
    router.add_get(feeds.OCDS_RECORDS_PATH, _ocds)
    router.add_get(egov.LIST_PATH, _egov_list)
    router.add_post(egov.LIST_PATH, _egov_list)
    router.add_get(egov.VIEW_PATH, _egov_view)
    router.add_post(egov.VIEW_PATH, _egov_view)
