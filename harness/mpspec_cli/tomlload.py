"""Reading TOML with the standard library's `tomllib` (Python 3.11+).

Errors come out as `TomlError` naming the file, so the CLI can print one clear line.
"""

import tomllib


class TomlError(ValueError):
    pass


def loads(text):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TomlError(str(e)) from None


def load_file(path):
    """Parses the file at `path`; OSError and TomlError carry the path."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TomlError("%s: not UTF-8 (%s)" % (path, e)) from None
    try:
        return loads(text)
    except TomlError as e:
        raise TomlError("%s: %s" % (path, e)) from None
