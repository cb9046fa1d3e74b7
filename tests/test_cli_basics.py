from conftest import run_cli


def test_unknown_command_is_one_line_exit_2():
    rc, out, err = run_cli("no-such-command")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
