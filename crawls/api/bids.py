"""Bids: list (filters, search, ordering), retrieve, export. Being written (issue 4)."""

from rest_framework import viewsets


class BidViewSet(viewsets.GenericViewSet):
    pass
