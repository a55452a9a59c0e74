"""Building the kamusm-helper wheel that the portal serves at /helper/ (``make helper-dist``).

The wheel holds the local card helper and only what it imports: kamusm/__init__.py (a docstring),
kamusm.keys, kamusm.sealing, kamusm.card (less the vpcd test card) and kamusm.helper (less this
build folder). Those files and pyproject.toml, its version taken from HELPER_VERSION, are copied
into a staging folder and built there by flit_core through ``pip wheel --no-deps
--no-build-isolation --no-index``: no network, and nothing of the portal can slip in.

Reproducible: zip timestamps come from SOURCE_DATE_EPOCH (a fixed value unless the environment sets
one) and file modes are normalised, so the same files give the same bytes and the same SHA-256,
whatever the commit or the checkout time. The wheel is moved into place whole, so the portal never
serves (or hashes) a half-written file.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kamusm.helper.service import HELPER_VERSION

REPO_ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = Path(__file__).with_name("pyproject.toml")
VERSION_MARKER = '"@HELPER_VERSION@"'
SHIPPED_MODULES = ("kamusm/__init__.py", "kamusm/keys.py", "kamusm/sealing.py")
SHIPPED_PACKAGES = ("kamusm/card", "kamusm/helper")
# The vpcd virtual card is a test tool of the portal's developers; a holder has a real card.
NOT_SHIPPED = frozenset({"kamusm/card/virtual.py"})
# 2024-01-01 00:00:00 UTC. Fixed rather than the last commit's time, so a commit that changes none
# of the shipped files leaves the wheel, and the SHA-256 shown on /unlock, as they were.
DEFAULT_SOURCE_DATE_EPOCH = 1_704_067_200
SHIPPED_FILE_MODE = 0o644


def wheel_filename(version: str = HELPER_VERSION) -> str:
    """The wheel's file name, the one name GET /helper/<name> serves."""
    return f"kamusm_helper-{version}-py3-none-any.whl"


def shipped_files(root: Path = REPO_ROOT) -> list[str]:
    """The repository paths the wheel ships, sorted."""
    files = set(SHIPPED_MODULES)
    for package in SHIPPED_PACKAGES:
        files.update(path.relative_to(root).as_posix() for path in (root / package).glob("*.py"))
    return sorted(files - NOT_SHIPPED)


def stage(staging: Path, root: Path = REPO_ROOT) -> None:
    """Fill ``staging`` with pyproject.toml and exactly the shipped files."""
    pyproject = PYPROJECT.read_text(encoding="utf-8")
    if pyproject.count(VERSION_MARKER) != 1:
        raise RuntimeError(f"{PYPROJECT} must name the version as {VERSION_MARKER} once")
    (staging / "pyproject.toml").write_text(pyproject.replace(VERSION_MARKER, f'"{HELPER_VERSION}"'),
                                            encoding="utf-8")
    for name in shipped_files(root):
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, target)
        target.chmod(SHIPPED_FILE_MODE)


def build_wheel(out_dir: Path, root: Path = REPO_ROOT) -> Path:
    """Build the wheel into ``out_dir`` (created if missing) and return its path.

    Raises subprocess.CalledProcessError when pip or flit_core fails (flit_core must be installed).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", str(DEFAULT_SOURCE_DATE_EPOCH))
    with tempfile.TemporaryDirectory(prefix="kamusm-helper-dist-") as work:
        staging, built = Path(work) / "src", Path(work) / "wheel"
        staging.mkdir()
        stage(staging, root)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--no-build-isolation", "--no-index", "--wheel-dir", str(built), str(staging)],
                       check=True, env=env, cwd=work)
        wheel = built / wheel_filename()
        # Within out_dir first, so the final replace is a rename on one file system.
        partial = out_dir / f".{wheel.name}.partial"
        shutil.copyfile(wheel, partial)
        os.replace(partial, out_dir / wheel.name)
    return out_dir / wheel.name


def main(argv: list[str] | None = None) -> None:
    """``python -m kamusm.helper.dist [--out DIR]``: build the wheel; print its path and SHA-256.

    Without --out the wheel goes where the portal serves it from: KAMUSM_HELPER_DIST_DIR, whose
    default is the instance folder's helper/.
    """
    parser = argparse.ArgumentParser(prog="python -m kamusm.helper.dist", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="Folder for the wheel (default: the portal's KAMUSM_HELPER_DIST_DIR).")
    options = parser.parse_args(argv)
    if options.out is None:
        from kamusm.helper_dist import configured_dist_dir

        options.out = configured_dist_dir()
    wheel = build_wheel(options.out)
    print(f"{wheel}  sha256 {hashlib.sha256(wheel.read_bytes()).hexdigest()}")
