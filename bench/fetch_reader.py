"""lemon24/reader on the fetch benchmark's workload, run in its own virtualenv: make_reader on
a SQLite file, (add the feeds,) update_feeds with 500 threads.

Usage: fetch_reader.py DB_FILE URLS_FILE [--add]. Prints one JSON line: entries stored and
feeds whose last update failed.
"""

import json
import sys

from reader import make_reader

if __name__ == "__main__":
    db_file, urls_file = sys.argv[1], sys.argv[2]
    with open(urls_file) as lines:
        urls = [line.strip() for line in lines if line.strip()]
    reader = make_reader(db_file)
    if "--add" in sys.argv[3:]:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    reader.update_feeds(workers=500, scheduled=False)
    broken = sum(1 for _ in reader.get_feeds(broken=True))
    print(json.dumps({"entries": reader.get_entry_counts().total, "failed_count": broken}))
    reader.close()
