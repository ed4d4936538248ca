"""The demo board of bid notices that Forest's crawler, tests and benchmark crawl.

See crawls.demo.board for the interface; `manage.py demo_board` serves or exports it.
"""
