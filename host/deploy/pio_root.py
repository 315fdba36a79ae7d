"""The repository's PlatformIO project: the committed root ``platformio.ini`` and which build it builds.

The root ``platformio.ini`` is committed and never written. It holds one placeholder environment,
``no_build`` (dev-platform ``platformio/platform-resilinet-guard``: ``pio run`` stops with one line saying
to run ``python -m host.build`` first), and reads the environments of the latest build through::

    [platformio]
    extra_configs = build/current/platformio.ini

``build/current`` is a symbolic link to a build directory inside the repository, replaced (atomically)
by :func:`point_current` when ``python -m host.build`` completes a build with PlatformIO environments; that
build's ``platformio.ini`` sets ``default_envs`` to its nodes, so ``pio run`` builds them and skips the
placeholder. Builds outside the repository are built where they are: ``pio run -d BUILD_DIR``.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from host.deploy.pio_ini import INI_NAME
from host.paths import REPO_ROOT

ROOT_INI = REPO_ROOT / INI_NAME
#: The link the committed root platformio.ini reads the latest build through.
CURRENT_LINK = REPO_ROOT / "build" / "current"
#: The placeholder environment of the root platformio.ini.
NO_BUILD_ENV = "no_build"


def inside_repository(build_dir: str | Path) -> bool:
    return Path(build_dir).resolve().is_relative_to(REPO_ROOT.resolve())


def point_current(build_dir: str | Path, link: Path | None = None) -> Path | None:
    """Make ``build/current`` name ``build_dir`` (when it is inside the repository and has a platformio.ini);
    returns the link, or None when the build is not one the root project can build."""
    build_dir = Path(build_dir).resolve()
    link = Path(link) if link is not None else CURRENT_LINK
    if not inside_repository(build_dir) or not (build_dir / INI_NAME).is_file():
        return None
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.parent / f".{link.name}.{os.getpid()}-{secrets.token_hex(3)}"
    tmp.symlink_to(os.path.relpath(build_dir, link.parent.resolve()))
    os.replace(tmp, link)  # a new name for the link in one step: pio run never sees none
    return link


def current_build(link: Path | None = None) -> Path | None:
    """The build ``pio run`` in the repository builds (None before any, or when it was removed)."""
    link = Path(link) if link is not None else CURRENT_LINK
    target = link.resolve() if link.is_symlink() else None
    return target if target is not None and (target / INI_NAME).is_file() else None
