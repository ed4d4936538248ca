"""Crawls: workspaces (tenancy), sources, crawls, the frontier, bids and the crawl event log.

The root app: notifications and analytics import it, never the reverse.
"""
