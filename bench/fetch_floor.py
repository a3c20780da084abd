"""The floor of the fetch benchmark: one aiohttp session without limits, fastfeedparser on
each body, nothing stored; conditional GET with the ETags of the previous pass.

Usage: fetch_floor.py URLS_FILE ETAG_FILE. Prints one JSON line: entries parsed, failures.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import aiohttp
import fastfeedparser


async def one(session: aiohttp.ClientSession, url: str, etags: dict[str, str], out: Any) -> None:
    headers = {"If-None-Match": etags[url]} if url in etags else {}
    try:
        async with session.get(url, headers=headers) as response:
            body = await response.read()
            if response.status == 304:
                return
            if "ETag" in response.headers:
                out["etags"][url] = response.headers["ETag"]
        out["entries"] += len(fastfeedparser.parse(body).entries)
    except Exception as exc:  # a failure is a finding, not a crash
        out["failed"].append(f"{url}: {type(exc).__name__}")


async def main(urls: list[str], etags: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"entries": 0, "failed": [], "etags": dict(etags)}
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, url, etags, out) for url in urls))
    return out


if __name__ == "__main__":
    urls_file, etag_file = sys.argv[1:3]
    with open(urls_file) as lines:
        urls = [line.strip() for line in lines if line.strip()]
    known = {}
    if os.path.exists(etag_file):
        with open(etag_file) as file:
            known = json.load(file)
    result = asyncio.run(main(urls, known))
    with open(etag_file, "w") as file:
        json.dump(result.pop("etags"), file)
    print(json.dumps({"entries": result["entries"], "failed_count": len(result["failed"])}))
