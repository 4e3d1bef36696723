"""A real SMTP server on loopback (aiosmtpd) for the Support tests.

Usage: sink.py DIR. Saves every message it accepts as DIR/NNNNN.eml (written
whole, then renamed), prints "listening PORT" once it accepts connections,
and stops when its standard input closes.
"""

import os
import socket
import sys

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, f"{self.count:05d}.eml")
        with open(path + ".part", "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Save(directory), hostname="127.0.0.1", port=free_port())
    controller.start()  # returns once the server answers
    print(f"listening {controller.port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
