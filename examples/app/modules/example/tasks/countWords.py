#!/usr/bin/env python3
"""countWords: a command task (docs/tasks.md) in Python.

The job's params arrive on standard input as one JSON object. What the
command prints goes to `stellar run`'s log; exit status 0 is success, and
any other fails the job with the last line written to standard error.

    stellar enqueue countWords '{"text":"to be or not to be"}'
"""
import json
import sys

params = json.load(sys.stdin)
text = params.get("text")
if not isinstance(text, str):
    sys.exit("countWords needs params.text, a string")
print(f"{len(text.split())} words in {len(text)} characters")
