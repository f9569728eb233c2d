"""A process that answers turns in a loop, for the SIGKILL test: prints "done N" after each.

Run as ``python history_writer.py START ANSWER_BYTES``; the history file comes from the
usual config (XDG_DATA_HOME or LABEEB_HISTORY__PATH).
"""

from __future__ import annotations

import sys

from labeeb.messages import Command
from labeeb.testing import FakeVision, make_assistant


def main() -> None:
    start, size = int(sys.argv[1]), int(sys.argv[2])
    # A long answer makes each write take a while, so the kill often lands inside one.
    fake = FakeVision(" ".join(["word"] * (size // 5)))
    assistant = make_assistant(vision=fake)
    assistant.start()
    turn = start
    while True:
        assistant.handle(Command(text=f"turn {turn}", source="chat"))
        print(f"done {turn}", flush=True)
        turn += 1


if __name__ == "__main__":
    main()
