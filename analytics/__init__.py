"""Analytics: read-only aggregates over crawled items. Imports crawls, never the reverse."""
