"""Traffic replay (`manage.py replay`, docs/replay.md): Forest's own JSON access log, sent again
over HTTP to a loopback or allowlisted Forest, with latency percentiles per route."""
