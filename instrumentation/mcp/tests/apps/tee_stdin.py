"""``python tee_stdin.py LOG COMMAND...``: runs COMMAND with this process's stdin passed on to it
and copied to LOG, so that a test can scan the bytes an MCP client really sent to its server.

COMMAND's stdout and stderr are this process's own. When the client closes the pipe, COMMAND's
stdin is closed too and its exit status is returned; the client's stdio transport signals the
whole process group if that takes too long, as it would the server alone.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys


def main() -> int:
    log_path, *command = sys.argv[1:]
    child = subprocess.Popen(command, stdin=subprocess.PIPE)  # noqa: S603 - the test server
    assert child.stdin is not None
    with open(log_path, "ab") as log:
        while chunk := sys.stdin.buffer.read1(65536):
            log.write(chunk)
            log.flush()
            try:
                child.stdin.write(chunk)
                child.stdin.flush()
            except BrokenPipeError:
                break  # the server is gone; the client sees its pipe close
    with contextlib.suppress(BrokenPipeError):
        child.stdin.close()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
