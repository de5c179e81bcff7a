"""For authors of checkers: ``python -m d2lmini.exercises digest 03.2 42`` prints the salted hash that a
checker compares with (so the answer itself never appears in the package); ``list 03`` lists a chapter's
exercise ids."""

from __future__ import annotations

import ast
import sys

from . import digest, exercises_of


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "digest":
        try:
            value = ast.literal_eval(argv[2])
        except (ValueError, SyntaxError):
            value = argv[2]  # a plain word
        print(digest(argv[1], value))
        return 0
    if len(argv) == 2 and argv[0] == "list":
        print("\n".join(exercises_of(argv[1])))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
