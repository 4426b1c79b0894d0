"""Set up a bare machine, then run the server or the tests.

    python3 -m callcenter.bootstrap serve [--config DIR]   # install what is missing, run the demo server
    python3 -m callcenter.bootstrap test [pytest args]     # install what is missing, run the test suite

Only the standard library is used here: this module runs before anything is
installed. It installs Debian packages with apt-get (as root, or through sudo)
and the Python distribution with pip (editable, so the repository's config/
and ivr_flows/ stay where they are). For ``test`` it also starts PostgreSQL
and Redis when they are not listening, and exits non-zero loudly on any failure.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# command → Debian package providing it
RUNTIME_DEBS = {"espeak-ng": "espeak-ng", "sox": "sox", "npm": "npm",  # npm: the pages' chart library
                "opusenc": "opus-tools",  # call recordings: WAV -> Ogg Opus (docs/recording.md)
                "pdftoppm": "poppler-utils"}  # fax: a PDF to send, rendered into pages (docs/fax.md)
# shared library (ctypes.util.find_library name) → Debian package providing it
RUNTIME_LIBS = {"spandsp": "libspandsp2"}  # fax: T.30/T.38 engine, used through ctypes (docs/fax.md)
TEST_DEBS = {
    "sipp": "sip-tester",
    "baresip": "baresip",
    "redis-server": "redis-server",
    "chromium": "chromium",  # the web page tests drive it through Playwright
    # the SIP edge of the multi-node tests (deploy/kamailio/); dispatcher, path, tm, rr, sl,
    # maxfwd, textops, siputils, pv, xlog, sanity, ctl, jsonrpcs are all in this package
    "kamailio": "kamailio",
}


def say(msg: str) -> None:
    print(f"[bootstrap] {msg}", flush=True)


#: how long apt-get waits for another apt/dpkg (unattended-upgrades, a second shell) to let go
APT_LOCK_WAIT_S = 120


def run(cmd: list[str], **kw: object) -> None:
    """Run a step; a failure ends the bootstrap with one line naming the command."""
    say("$ " + " ".join(cmd))
    try:
        subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
    except subprocess.CalledProcessError as exc:
        sys.exit(f"[bootstrap] failed (exit {exc.returncode}): {' '.join(cmd)}")
    except FileNotFoundError:
        sys.exit(f"[bootstrap] not found: {cmd[0]}")


def apt_install(packages: list[str]) -> None:
    if not packages:
        return
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            sys.exit(f"[bootstrap] need root or sudo to install: {' '.join(packages)}")
        prefix = ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = [*prefix, "apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_S}"]
    run([*apt, "update", "-qq"], env=env)
    run([*apt, "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)


def missing_debs(commands: dict[str, str], libraries: dict[str, str] | None = None) -> list[str]:
    missing = {pkg for cmd, pkg in commands.items() if shutil.which(cmd) is None}
    missing |= {pkg for lib, pkg in (libraries or {}).items() if ctypes.util.find_library(lib) is None}
    return sorted(missing)


def pip_install(extra: str) -> None:
    spec = f"{ROOT}[{extra}]" if extra else str(ROOT)
    run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", spec])


def npm_install() -> None:
    """The web pages' browser libraries (package.json, pinned by package-lock.json) into
    node_modules, which the app serves under /vendor/: installed, never committed."""
    wanted = json.loads((ROOT / "package.json").read_text())["dependencies"]
    if any(not (ROOT / "node_modules" / name).is_dir() for name in wanted):
        # --ignore-scripts: the libraries are plain files; no install hook (e.g. swagger-ui-dist's
        # usage-analytics dependency) gets to run or phone home.
        run(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=ROOT)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def ensure_services() -> None:
    """Start PostgreSQL and Redis if they are installed but not running."""
    if not listening(5432):
        versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
        if not versions:
            sys.exit("[bootstrap] PostgreSQL is not installed and not listening on 127.0.0.1:5432")
        run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"])
    if not listening(6379):
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
             "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
             "--logfile", "/var/log/redis/ci.log"])
    for port, name in ((5432, "PostgreSQL"), (6379, "Redis")):
        if not listening(port):
            sys.exit(f"[bootstrap] {name} is still not listening on 127.0.0.1:{port}")


def serve(args: list[str]) -> int:
    apt_install(missing_debs(RUNTIME_DEBS, RUNTIME_LIBS))
    pip_install("")
    npm_install()
    os.chdir(ROOT)
    cli = shutil.which("callcenter") or "callcenter"
    os.execv(cli, [cli, "serve", *args])
    return 0  # not reached


def test(args: list[str]) -> int:
    apt_install(missing_debs({**RUNTIME_DEBS, **TEST_DEBS}, RUNTIME_LIBS))
    pip_install("test")
    npm_install()
    ensure_services()
    os.chdir(ROOT)
    run([sys.executable, "-m", "ruff", "check", "."])
    return subprocess.call([sys.executable, "-m", "pytest", *args])


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        print(__doc__)
        return 2
    action, rest = sys.argv[1], sys.argv[2:]
    return serve(rest) if action == "serve" else test(rest)


if __name__ == "__main__":
    sys.exit(main())
