"""Run every benchmark and print figures beside a baseline measured in the same run."""

from __future__ import annotations

from . import clusters, fetch, hostile, pipeline, tickers, web, wire, workers

pipeline.main()
hostile.main()
clusters.main()
tickers.main()
fetch.main()
wire.main([])
web.main([])
workers.main([])
