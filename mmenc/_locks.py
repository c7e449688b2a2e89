"""One lock per shared object, for models that serve many threads (a web service)."""

from __future__ import annotations

import threading


def lock_of(owner: object) -> threading.Lock:
    """The lock of ``owner``, made on first use (``dict.setdefault`` is atomic, so two threads
    cannot make two). Fast tokenizers keep their padding and truncation settings as state,
    and two threads tokenizing with one at once get each other's batches ("Already borrowed",
    or unpadded rows): calls that tokenize hold this lock."""
    lock: threading.Lock = vars(owner).setdefault("_mmenc_lock", threading.Lock())
    return lock
