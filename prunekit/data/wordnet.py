"""WordNet 3.0 noun glosses (lemma, definition, examples) from the ``data.noun`` file.

Used as short natural text for transformer calibration. Debian ships the database in
``wordnet-base`` (``/usr/share/wordnet``). A ``data.noun`` line reads::

    offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] p_cnt [ptrs] | gloss

and the gloss is ``definition; "example"; "example"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
ENV_VAR = "PRUNEKIT_WORDNET"
_FALLBACK_DIRS = (Path("/usr/local/share/wordnet"), Path("/usr/share/wordnet/dict"),
                  Path.home() / "nltk_data" / "corpora" / "wordnet")


@dataclass(frozen=True)
class Gloss:
    """One noun synset: its first lemma (underscores as spaces), definition and examples."""

    offset: int
    lemma: str
    definition: str
    examples: tuple[str, ...]


def wordnet_dir(root: str | os.PathLike | None = None) -> Path:
    """The WordNet 3.0 database directory (holding ``data.noun``, ``data.verb``, ...):
    ``root`` if given, else ``$PRUNEKIT_WORDNET``, the Debian path, the usual fallbacks.

    Raises FileNotFoundError naming every place searched and how to install it.
    """
    return _find_data_noun(root).parent


def _find_data_noun(root: str | os.PathLike | None) -> Path:
    dirs = [Path(root)] if root is not None else []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    dirs += [DEBIAN_WORDNET_DIR, *_FALLBACK_DIRS]
    for d in dirs:
        if (d / "data.noun").is_file():
            return d / "data.noun"
    raise FileNotFoundError(
        "WordNet data.noun not found. Install it with `sudo apt-get install wordnet-base` "
        f"(to {DEBIAN_WORDNET_DIR}), pass root=<dir with data.noun> or set {ENV_VAR}. "
        f"Searched: {', '.join(map(str, dirs))}"
    )


def parse_gloss_line(line: str) -> Gloss | None:
    """Parse one ``data.noun`` line; None for license/header lines (they start with spaces)."""
    if not line or line[0] == " " or "|" not in line:
        return None
    head, gloss = line.split("|", 1)
    fields = head.split()
    if len(fields) < 6:
        raise ValueError(f"malformed WordNet line: {line[:80]!r}")
    lemma = fields[4].replace("_", " ")
    parts = [p.strip() for p in gloss.strip().split(";")]
    definition = parts[0]
    examples = tuple(p.strip('"') for p in parts[1:] if p.startswith('"'))
    return Gloss(int(fields[0]), lemma, definition, examples)


def load_wordnet_glosses(
    root: str | os.PathLike | None = None, limit: int | None = None
) -> list[Gloss]:
    """Read WordNet 3.0 noun glosses (82,115 synsets in the full file), in file order.

    Parameters
    ----------
    root : path, optional
        Directory holding ``data.noun``; defaults to the Debian location.
    limit : int, optional
        Stop after this many glosses.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    out: list[Gloss] = []
    with open(_find_data_noun(root), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if limit is not None and len(out) >= limit:
                break
            g = parse_gloss_line(line.rstrip("\n"))
            if g is not None:
                out.append(g)
    return out
