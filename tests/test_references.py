"""The README's test command gets its independent reference (lmplz) on a fresh machine:
tools/build_lmplz.sh installs Debian's Boost where it may (decided here against fake
dpkg-query / apt-get / id / sudo / cmake on PATH, nothing installed or built for real),
and a session that cannot get lmplz ends with one line instead of skipping."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "build_lmplz.sh"
BOOST = ["libboost-program-options-dev", "libboost-system-dev", "libboost-thread-dev", "libboost-test-dev",
         "zlib1g-dev", "libbz2-dev", "liblzma-dev"]

# Each fake logs its call to $FAKE_LOG; installed packages are files in $FAKE_STATE.
FAKES = {
    "dpkg-query": '[ -e "$FAKE_STATE/${@: -1}" ] && printf "install ok installed"\n[ -e "$FAKE_STATE/${@: -1}" ]',
    "apt-get": 'echo "apt-get $*" >> "$FAKE_LOG"\n'
               'if [ "$1" = install ]; then for p in "$@"; do case "$p" in -*|install) ;; *) touch "$FAKE_STATE/$p";; '
               'esac; done; fi',
    "id": 'echo "${FAKE_UID:-0}"',
    "sudo": 'echo "sudo $*" >> "$FAKE_LOG"\n[ -n "$FAKE_SUDO" ] || exit 1\n[ "$1" = -n ] && shift\n"$@"',
    "cmake": 'echo "cmake $*" >> "$FAKE_LOG"\n'
             'if [ "$1" = --build ]; then mkdir -p "$2/bin"; for t in lmplz query build_binary; do '
             'printf "#!/bin/sh\\n" > "$2/bin/$t"; chmod +x "$2/bin/$t"; done; fi',
    "g++": "exit 0",
}


@pytest.fixture
def fake_debian(tmp_path):
    """A PATH of fakes (before /usr/bin:/bin), an unpacked 'sdist' so nothing is
    downloaded, and the environment to run the script in."""
    bin_dir, state, prefix = tmp_path / "bin", tmp_path / "state", tmp_path / "lmplz"
    for d in (bin_dir, state, prefix / "src"):
        d.mkdir(parents=True)
    (prefix / "src" / "CMakeLists.txt").write_text("")
    for name, body in FAKES.items():
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_STATE": str(state), "FAKE_LOG": str(tmp_path / "log"),
           "HOME": str(tmp_path)}
    return env, prefix, state


def run_script(env, prefix, **extra):
    return subprocess.run(["bash", str(SCRIPT), str(prefix)], capture_output=True, text=True, env={**env, **extra})


def calls(env):
    log = pathlib.Path(env["FAKE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_root_without_boost_installs_debian_packages_then_builds(fake_debian):
    env, prefix, state = fake_debian
    proc = run_script(env, prefix)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(prefix / "bin" / "lmplz")
    install = [c for c in calls(env) if c.startswith("apt-get install")]
    assert len(install) == 1 and install[0].split()[-len(BOOST):] == BOOST
    assert sorted(p.name for p in state.iterdir()) == sorted(BOOST)
    assert any(c.startswith("cmake --build") for c in calls(env))


def test_boost_present_installs_nothing(fake_debian):
    env, prefix, state = fake_debian
    for p in BOOST:
        (state / p).touch()
    proc = run_script(env, prefix)
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls(env) if "apt-get" in c]
    assert (prefix / "bin" / "lmplz").exists()


def test_passwordless_sudo_installs_only_what_is_missing(fake_debian):
    env, prefix, state = fake_debian
    for p in BOOST[:4]:
        (state / p).touch()
    proc = run_script(env, prefix, FAKE_UID="1000", FAKE_SUDO="1")
    assert proc.returncode == 0, proc.stderr
    assert f"sudo -n apt-get install -y -qq {' '.join(BOOST[4:])}" in calls(env)


def test_no_root_no_sudo_stops_with_the_command_to_run(fake_debian):
    env, prefix, _ = fake_debian
    proc = run_script(env, prefix, FAKE_UID="1000")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "build_lmplz: missing Debian packages and no root or passwordless sudo: run sudo apt-get install -y "
        + " ".join(BOOST)]
    assert not [c for c in calls(env) if c.startswith(("apt-get", "cmake"))]


def test_not_debian_tries_the_build_as_is(fake_debian):
    env, prefix, _ = fake_debian
    pathlib.Path(env["PATH"].split(":")[0], "apt-get").unlink()
    proc = run_script(env, prefix)
    assert proc.returncode == 0, proc.stderr
    assert any(c.startswith("cmake --build") for c in calls(env))


def session_env(tmp_path, **extra):
    """The environment of a test session in which lmplz is nowhere: not in $LMPLZ, not on
    PATH, and its build prefix cannot be created (so the build fails at once)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LMPLZ", "COLLAPSE_SKIP_REFERENCES")}
    path_dirs = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(d for d in path_dirs if not shutil.which("lmplz", path=d))
    env["COLLAPSE_LMPLZ_PREFIX"] = str(tmp_path / "not-a-dir" / "lmplz")
    (tmp_path / "not-a-dir").write_text("")
    return {**env, **extra}


NEEDS_LMPLZ = "tests/test_pruned_models.py::test_lmplz_prune_and_hand_pruned_score_as_kenlm"


def run_session(env):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NEEDS_LMPLZ],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_session_without_the_reference_fails_with_one_line(tmp_path):
    proc = run_session(session_env(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "lmplz (the tests' reference)" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "tools/build_lmplz.sh failed" in lines[0]
    assert "LMPLZ=/path/to/lmplz" in lines[0] and "COLLAPSE_SKIP_REFERENCES=1" in lines[0]
    assert " passed" not in proc.stdout and " skipped" not in proc.stdout


def test_explicit_opt_out_skips_the_reference_tests(tmp_path):
    proc = run_session(session_env(tmp_path, COLLAPSE_SKIP_REFERENCES="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout and "COLLAPSE_SKIP_REFERENCES is set" in proc.stdout
