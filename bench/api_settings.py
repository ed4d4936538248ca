"""Forest's settings, plus the peer's URLs (bench/api_peer.py) for bench/api.py."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_peer"
