from conftest import run_cli


def test_unknown_command_is_one_line_exit_2():
    rc, out, err = run_cli("no-such-command")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_version_prints_the_package_version():
    import collapse

    rc, out, err = run_cli("--version")
    assert rc == 0, err
    assert out.strip() == f"collapse {collapse.__version__}"
