"""The built wheel works on its own: templates, symbol table and console script come with it.

The wheel is built from a copy of the checkout and installed into a fresh venv outside it; the
dependencies come from the running interpreter's directories, the checkout's ``digest`` does not.
No network: the build uses the setuptools installed here, pip looks at no index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: What the build reads. It writes build/ and *.egg-info beside them, so it runs on a copy.
BUILD_INPUTS = ("pyproject.toml", "README.md", "digest", "templates")

#: Just this project, from local files.
OFFLINE = ("--quiet", "--no-deps", "--no-index")

TITLE = "Nvidia shares jump after record data-centre sales"

SCRIPT = f"""
import datetime as dt
import json

import digest
from digest.message import make_email, make_publisher
from digest.models import Item, Method, Section, Subscriber
from digest.rank import build_digest
from digest.site import Site
from digest.store import Store
from digest.tickers import find_tickers

now = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
items = [
    Item(
        feed_url=f"https://{{source}}.example.com/rss",
        source_name=source,
        section=Section.STOCKS,
        weight=1.0,
        key=f"https://{{source}}.example.com/nvidia",
        title={TITLE!r},
        link=f"https://{{source}}.example.com/nvidia",
        summary_text="Revenue beat estimates.",
        summary_html="<p>Revenue beat estimates.</p>",
        published=now - dt.timedelta(hours=hours),
    )
    for source, hours in (("wire", 1), ("street", 2))
]
edition = build_digest(
    items,
    date=now.date(),
    title="Market Digest",
    tagline="Daily stocks & crypto headlines",
    window=(now - dt.timedelta(hours=24), now + dt.timedelta(hours=1)),
    max_stories=10,
    # The wheel alone, without the optional model package: the light method.
    clustering=Method.LIGHT,
)
store = Store("sqlite://")
store.save_edition(edition, now)
publisher = make_publisher(
    Site("https://digest.example.com", ("a signing key",)),
    "Market Digest <digest@example.com>",
    "Market Digest",
    "1 Example Street, Springfield",
)
reader = Subscriber("ann@example.com", "Ann", watchlist=("NVDA",), public_id="ab" * 16)
email = make_email(store.load_edition(now.date()), publisher, reader)
print(json.dumps({{
    "digest": digest.__file__,
    "html": email.html,
    "text": email.text,
    "tickers": find_tickers("Nvidia shares jump"),
}}))
"""


@dataclass(frozen=True)
class Installed:
    venv: Path
    python: Path
    #: Where the fresh venv's python runs, outside the checkout.
    workdir: Path
    env: dict[str, str]


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _dependency_dirs() -> list[str]:
    """The running interpreter's import path less every directory with a ``digest`` in it
    (the checkout). A .pth of plain directories does not run the .pth files inside them, so the
    editable install's finder stays out too."""
    found: list[str] = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.is_dir() and not (path / "digest").exists() and str(path) not in found:
            found.append(str(path))
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    setuptools = metadata.version("setuptools")
    assert int(setuptools.split(".")[0]) >= 77, (
        f"setuptools {setuptools} cannot read pyproject.toml: reinstall the dev extra"
    )
    root = tmp_path_factory.mktemp("wheel")
    # No PYTHONPATH: it would put a checkout ahead of the installed package.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--disable-pip-version-check"]

    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    wheels = root / "wheels"
    _run([*pip, "wheel", *OFFLINE, "--no-build-isolation", "-w", wheels, "."], source, env)
    (wheel,) = wheels.glob("market_digest-*.whl")

    home = root / "venv"
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    # The running pip installs into the fresh venv, which needs no pip of its own.
    _run([*pip, "--python", python, "install", *OFFLINE, "--no-compile", wheel], root, env)
    site_packages = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root, env
    ).strip()
    Path(site_packages, "dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")

    workdir = root / "work"
    workdir.mkdir()
    return Installed(home, python, workdir, env)


def test_installed_wheel_renders_an_edition_and_finds_tickers(installed: Installed) -> None:
    out = json.loads(_run([installed.python, "-c", SCRIPT], installed.workdir, installed.env))
    assert Path(out["digest"]).resolve().is_relative_to(installed.venv.resolve())
    assert TITLE in out["html"]
    assert TITLE in out["text"]
    assert "Revenue beat estimates." in out["text"]
    assert "YOUR WATCHLIST" in out["text"]  # the subscriber's own edition, NVDA first
    assert "NVDA" in out["tickers"]


def test_installed_console_script_runs(installed: Installed) -> None:
    out = _run([installed.venv / "bin" / "digest", "--help"], installed.workdir, installed.env)
    assert "Daily stocks & crypto headlines" in out


def test_installed_wheel_creates_a_database_from_its_schema_file(installed: Installed) -> None:
    # digest/data/sqlite-schema.sql comes with the wheel: `digest fetch` makes a new SQLite
    # file from it, without SQLAlchemy.
    code = (
        "import sys\n"
        "from digest.store.light import LightFeedStore\n"
        "store = LightFeedStore.open('sqlite:///fresh.db')\n"
        "print(store is not None, 'sqlalchemy' in sys.modules)\n"
    )
    out = _run([installed.python, "-c", code], installed.workdir, installed.env)
    assert out.split() == ["True", "False"]
    assert (installed.workdir / "fresh.db").stat().st_size > 0
