"""The pocketsphinx en-us model, prepared for telephone audio in a local cache dir.

The wheel ships the 16 kHz en-us model (nothing is downloaded). Its ``feat.params``
overrides Decoder keyword arguments, so settings that live there (``-remove_noise``)
can only be changed by editing a copy of the model directory: we copy it once into
the cache dir at start-up, edit the copy, and rename it into place atomically so
two processes starting together never see half a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from pocketsphinx import get_model_path

#: feat.params overrides. remove_noise: the spectral-subtraction noise removal eats
#: the weak fricative energy a G.711 channel leaves (measured here: docs/speech.md).
FEAT_OVERRIDES: dict[str, str] = {"remove_noise": "no"}

#: extra pronunciations, added to cmudict's, for words whose identity lives in the
#: fricatives that a 300-3400 Hz channel takes away from a 16 kHz model: the initial /s/
#: of "six", "seven" and "sales" is gone and the /f/ of "five" survives as a burst.
#: Batch decoding of the bench set, framed as the recogniser frames it (0.3 s before the
#: words, 0.35 s after; the bench's own batch rows frame differently): digit grammar
#: 100 → 123/162 (five 1 → 12/18, seven 0 → 13, six 0 → 3; nine 10 → 8, eight 17 → 15);
#: main menu 132 → 137/144 (sales 7 → 14/18, billing 18 → 16). On six voices not in that
#: set: digits 73 → 84/108, main menu 91 → 95/96. One variant per word on purpose: adding
#: them to every word (docs/speech.md) broke more than it fixed.
PHONE_BAND_PRONUNCIATIONS: dict[str, tuple[str, ...]] = {
    "five": ("P AY V",),
    "six": ("IH K",),
    "seven": ("EH V AH N",),
    "sales": ("EY L Z",),
}


def _edit_feat_params(text: str, overrides: dict[str, str]) -> str:
    lines, seen = [], set()
    for line in text.splitlines():
        parts = line.split()
        key = parts[0].lstrip("-") if parts else ""
        if key in overrides:
            lines.append(f"-{key} {overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"-{k} {v}" for k, v in overrides.items() if k not in seen]
    return "\n".join(lines) + "\n"


def prepared_model(cache_dir: Path, overrides: dict[str, str] | None = None) -> tuple[Path, Path]:
    """(acoustic model dir, pronunciation dictionary) ready for a Decoder."""
    overrides = FEAT_OVERRIDES if overrides is None else overrides
    src_root = Path(get_model_path())
    src = src_root / "en-us" / "en-us"
    dictionary = src_root / "en-us" / "cmudict-en-us.dict"
    tag = hashlib.sha256(
        repr((str(src), sorted(overrides.items()), (src / "feat.params").read_bytes())).encode()
    ).hexdigest()[:12]
    dest = cache_dir / f"en-us-{tag}"
    if (dest / "feat.params").is_file():
        return dest, dictionary
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=cache_dir))
    try:
        work = tmp / "m"
        shutil.copytree(src, work)
        params = work / "feat.params"
        params.write_text(_edit_feat_params(params.read_text(), overrides))
        try:
            os.rename(work, dest)
        except OSError:
            if not (dest / "feat.params").is_file():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest, dictionary
