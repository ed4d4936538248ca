"""The peer of bench/api.py: what a DRF user writes in an afternoon over the same bids table.

A stock ModelViewSet with a ModelSerializer, stock CursorPagination and stock
PageNumberPagination; no authentication, throttling or workspace scoping (Forest does all
three, and must still be no slower). Served by the same daphne, beside Forest's own URLs.
"""

from django.urls import include, path
from rest_framework import pagination, permissions, routers, serializers, viewsets

from crawls.models import Bid
from project.urls import urlpatterns as forest_urlpatterns

FIELDS = [  # the model fields Forest's list shows (Forest adds the source's name)
    "id", "workspace", "source", "url", "title", "department", "views", "post_date", "amount",
    "deadline", "reference", "extra", "first_seen_at", "last_seen_at", "changed_at",
    "first_crawl", "last_crawl",
]  # fmt: skip


class StockBidSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bid
        fields = FIELDS


class StockCursor(pagination.CursorPagination):
    ordering = ("-post_date", "-id")
    page_size = 50
    page_size_query_param = "page_size"


class StockPages(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"


class _Stock(viewsets.ReadOnlyModelViewSet):
    queryset = Bid.objects.all()
    serializer_class = StockBidSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = []
    filter_backends = []


class StockCursorViewSet(_Stock):
    pagination_class = StockCursor


class StockPageViewSet(_Stock):
    pagination_class = StockPages


router = routers.SimpleRouter()
router.register("cursor", StockCursorViewSet, basename="stock-cursor")
router.register("pages", StockPageViewSet, basename="stock-pages")

urlpatterns = [*forest_urlpatterns, path("peer/", include(router.urls))]
