"""Regenerate alice.jsonl from alice.txt (python make_labelled.py).

Alice's Adventures in Wonderland (Lewis Carroll, 1865) is in the public
domain. Each line becomes one JSON object with simple derived labels, so the
labelled tasks have real text to read:

- label:  1 when the line holds speech (a double quote), else 0
- score:  number of words / 20 (a real value, for regression)
- target: the line in lower case without punctuation (a toy seq2seq task)
- tokens, tags: its words, tagged 1 when capitalised, 2 when they carry
  punctuation, else 0 (token classification)
"""

import json
import string
from pathlib import Path

here = Path(__file__).parent
with (here / "alice.jsonl").open("w", encoding="utf-8") as out:
    for line in (here / "alice.txt").read_text(encoding="utf-8").splitlines():
        words = line.split()
        tags = [
            2 if any(c in string.punctuation for c in w) else int(w[0].isupper()) for w in words
        ]
        row = {
            "text": line,
            "label": int('"' in line),
            "score": round(len(words) / 20, 3),
            "target": "".join(c for c in line.lower() if c not in string.punctuation),
            "tokens": words,
            "tags": tags,
        }
        out.write(json.dumps(row) + "\n")
