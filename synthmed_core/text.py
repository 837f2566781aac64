"""Text from elsewhere shown as text: a bundle's names, notes and device names reach captions,
errors and the terminal, and must never become markdown (bold, links, images a browser
fetches) or terminal control sequences.

- ``plain``: one line for a terminal; control characters (escape sequences, NUL) and the
  invisible bidirectional controls (a right-to-left override reorders what a reader sees) are
  shown as ``\\uXXXX``, newlines and tabs become spaces.
- ``md_literal``: ``plain``, then every ASCII punctuation character backslash-escaped, which
  CommonMark renders as itself: no emphasis, link, image, HTML, code span, ``$`` maths,
  ``:color[...]`` directive or autolink (``https\\://`` is no longer one) survives.
"""
from __future__ import annotations

import re
import string

# C0/C1 controls, DEL, and the bidirectional marks, embeddings, overrides and isolates.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                     "\u2066-\u2069]")
_SPACE = re.compile(r"[\t\n\r]+")
_PUNCT = re.compile("([" + re.escape(string.punctuation) + "])")


def plain(text: object) -> str:
    """``text`` as one line with no control or bidirectional characters (see the module)."""
    s = _SPACE.sub(" ", str(text))
    return _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def md_literal(text: object) -> str:
    """``text`` for Streamlit markdown (st.caption, st.markdown, st.info ...), shown literally."""
    return _PUNCT.sub(r"\\\1", plain(text))
