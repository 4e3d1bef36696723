#!/usr/bin/env python3
"""image_context.py - the files `docker build .` sends, per .dockerignore.

Usage:
  scripts/image_context.py list          print the context's files
  scripts/image_context.py sync <dir>    make <dir> hold exactly those files
                                         (copies keep their mtimes, so
                                         cargo rebuilds only what changed)
  scripts/image_context.py digest        print a SHA-256 of their paths and
                                         contents

.dockerignore rules are Docker's: paths relative to the context root,
`*` and `?` within one path segment, `**` across segments, `!` re-includes,
the last matching rule wins, and a rule matching a directory matches
everything under it. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def rules(root: pathlib.Path) -> list[tuple[bool, re.Pattern[str], str]]:
    """(excludes, regex, pattern) per .dockerignore line, in order."""
    parsed = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex += "(?:.*/)?"
                index += 3
            elif pattern.startswith("**", index):
                regex += ".*"
                index += 2
            elif pattern[index] == "*":
                regex += "[^/]*"
                index += 1
            elif pattern[index] == "?":
                regex += "[^/]"
                index += 1
            else:
                regex += re.escape(pattern[index])
                index += 1
        parsed.append((not include, re.compile(regex + r"\Z"), pattern))
    return parsed


def excluded(path: str, parsed: list[tuple[bool, re.Pattern[str], str]]) -> bool:
    """Whether the last rule matching `path` (or a directory above it) excludes it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: count + 1]) for count in range(len(parts))]
    verdict = False
    for excludes, regex, _ in parsed:
        if any(regex.match(prefix) for prefix in prefixes):
            verdict = excludes
    return verdict


def context_files(root: pathlib.Path = ROOT) -> list[str]:
    """The context's files, relative to `root`, sorted."""
    parsed = rules(root)
    reincluded = [pattern for excludes, _, pattern in parsed if not excludes]
    files = []
    for directory, subdirectories, names in os.walk(root):
        relative = pathlib.Path(directory).relative_to(root).as_posix()
        relative = "" if relative == "." else relative + "/"
        # Skip excluded directories nothing below is re-included from.
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not excluded(relative + name, parsed)
            or any(pattern.startswith(relative + name + "/") for pattern in reincluded)
        )
        files.extend(relative + name for name in names if not excluded(relative + name, parsed))
    return sorted(files)


def sync(destination: pathlib.Path, root: pathlib.Path = ROOT) -> None:
    """Makes `destination` hold exactly the context's files."""
    wanted = set(context_files(root))
    destination.mkdir(parents=True, exist_ok=True)
    for directory, _, names in os.walk(destination, topdown=False):
        for name in names:
            path = pathlib.Path(directory, name)
            if path.relative_to(destination).as_posix() not in wanted:
                path.unlink()
        if directory != str(destination) and not os.listdir(directory):
            os.rmdir(directory)
    for relative in sorted(wanted):
        source, target = root / relative, destination / relative
        stat = source.stat()
        if target.exists() and target.stat().st_size == stat.st_size and target.stat().st_mtime == stat.st_mtime:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def digest(root: pathlib.Path = ROOT) -> str:
    """A SHA-256 over the context's paths and contents."""
    hasher = hashlib.sha256()
    for relative in context_files(root):
        hasher.update(relative.encode() + b"\0")
        hasher.update(hashlib.sha256((root / relative).read_bytes()).digest())
    return hasher.hexdigest()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["list"]:
            print("\n".join(context_files()))
        case ["sync", destination]:
            sync(pathlib.Path(destination))
        case ["digest"]:
            print(digest())
        case _:
            sys.exit(__doc__)
