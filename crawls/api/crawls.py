"""Sources and crawls. Being written (issue 4)."""

from rest_framework import viewsets


class SourceViewSet(viewsets.GenericViewSet):
    pass


class CrawlViewSet(viewsets.GenericViewSet):
    pass
