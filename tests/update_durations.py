"""Write tests/durations.json (seconds per test file) from the output of a ``pytest --durations=0`` run.

    PYTEST_ADDOPTS=--durations=0 make test 2>&1 | tee /tmp/test.log
    python tests/update_durations.py /tmp/test.log

conftest.py orders the test files by it, longest first, so that the workers finish together."""
import collections
import json
import os
import re
import sys

LINE = re.compile(r"\s*([\d.]+)s (?:call|setup|teardown)\s+(\S+?)::")


def file_seconds(lines):
    totals = collections.Counter()
    for line in lines:
        match = LINE.match(line)
        if match:
            totals[match.group(2)] += float(match.group(1))
    return totals


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        totals = file_seconds(f)
    if not totals:
        sys.exit(f"{sys.argv[1]}: no duration lines (run pytest with --durations=0)")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "durations.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({name: round(seconds, 1) for name, seconds in totals.most_common()}, f, indent=0)
        f.write("\n")
    print(f"{path}: {len(totals)} files, {sum(totals.values()):.0f} s")
