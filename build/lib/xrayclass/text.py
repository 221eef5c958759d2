"""Small helpers that word the messages and summaries of every layer."""

__all__ = ["one_line", "plural"]


def one_line(text: object, limit: int = 300) -> str:
    """``text`` (e.g. an exception) on one line, shortened to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plural(n: int, word: str) -> str:
    """``"1 detection"``, ``"2 detections"``, ``"12,345 detections"``."""
    return f"{n} {word}" if n == 1 else f"{n:,} {word}s"
