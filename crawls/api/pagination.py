from rest_framework.pagination import CursorPagination


class NewestFirstCursorPagination(CursorPagination):
    """The default for every list: opaque cursors over the newest rows first, bounded pages."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200
