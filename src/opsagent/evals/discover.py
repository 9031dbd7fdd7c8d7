"""Which recorded-incident layout a path holds, the cases in it, and loading them.

``detect_format`` recognises the native format and the public datasets' own layouts (PetShop,
Sock Shop of RCD, Nezha) from the files present; ``--format`` overrides it. A path may be a
dataset root, any folder inside one that still holds whole cases, or a single case.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from pathlib import Path

from opsagent.domain import RecordedIncident
from opsagent.errors import IncidentFormatError
from opsagent.evals import nezha, petshop, sockshop
from opsagent.evals.cases import FORMATS, CaseRef
from opsagent.evals.native import load_native

__all__ = ["FORMATS", "CaseRef", "detect_format", "discover", "load_case", "load_cases"]


def _native_detect(path: Path) -> bool:
    if (path / "incident.yaml").is_file():
        return True
    return path.is_dir() and any((child / "incident.yaml").is_file() for child in path.iterdir())


def _native_discover(path: Path) -> list[CaseRef]:
    folders = (
        [path]
        if (path / "incident.yaml").is_file()
        else sorted(p for p in path.iterdir() if (p / "incident.yaml").is_file())
    )
    return [CaseRef("native", "native", folder.name, str(folder)) for folder in folders]


def _native_load(ref: CaseRef) -> RecordedIncident:
    recording = load_native(Path(ref.path))
    return recording.model_copy(update={"case_id": ref.case_id})


_DETECT: dict[str, Callable[[Path], bool]] = {
    "native": _native_detect,
    "petshop": petshop.detect,
    "sockshop-rcd": sockshop.detect,
    "nezha": nezha.detect,
}
_DISCOVER: dict[str, Callable[[Path], list[CaseRef]]] = {
    "native": _native_discover,
    "petshop": petshop.discover,
    "sockshop-rcd": sockshop.discover,
    "nezha": nezha.discover,
}
_LOAD: dict[str, Callable[[CaseRef], RecordedIncident]] = {
    "native": _native_load,
    "petshop": petshop.load,
    "sockshop-rcd": sockshop.load,
    "nezha": nezha.load,
}


def _check_path(path: Path) -> None:
    if not path.exists():
        raise IncidentFormatError(path, "no such file or folder")
    if not path.is_dir():
        raise IncidentFormatError(path, "not a folder (give a dataset folder or a recorded-incident folder)")


def detect_format(path: Path) -> str:
    """The layout of ``path``; IncidentFormatError when it is none we know."""
    _check_path(path)
    for fmt in FORMATS:
        try:
            if _DETECT[fmt](path):
                return fmt
        except OSError:
            continue
    raise IncidentFormatError(
        path,
        "not a recognised recorded-incident layout (expected one of: "
        + ", ".join(FORMATS)
        + "); pass --format to force one",
    )


def discover(path: Path, fmt: str | None = None, case_glob: str | None = None) -> list[CaseRef]:
    """The cases under ``path`` in a stable order, optionally only those matching ``case_glob``.

    The glob is matched against the case id and against ``dataset/case id``.
    """
    path = Path(path)
    if fmt is None:
        fmt = detect_format(path)
    elif fmt not in FORMATS:
        raise IncidentFormatError(path, f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    else:
        _check_path(path)
    try:
        refs = _DISCOVER[fmt](path)
    except OSError as exc:
        raise IncidentFormatError(path, f"cannot read: {exc.strerror or exc}") from None
    if not refs:
        raise IncidentFormatError(path, f"no {fmt} cases found")
    if case_glob:
        refs = [
            r
            for r in refs
            if fnmatch.fnmatchcase(r.case_id, case_glob)
            or fnmatch.fnmatchcase(f"{r.dataset}/{r.case_id}", case_glob)
        ]
    return refs


def load_case(ref: CaseRef) -> RecordedIncident:
    """Read one case's evidence; IncidentFormatError (naming the file) when it is unusable."""
    try:
        return _LOAD[ref.format](ref)
    except OSError as exc:
        raise IncidentFormatError(ref.path, f"cannot read: {exc.strerror or exc}") from None


def load_cases(path: Path, fmt: str | None = None) -> Iterator[RecordedIncident]:
    """Every case under ``path`` (layout detected unless ``fmt`` is given), loaded one at a time."""
    for ref in discover(path, fmt):
        yield load_case(ref)
