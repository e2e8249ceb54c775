"""Hostile or mistaken config input: a bounded YAML reader (size, alias expansion, nesting) and
files that are not UTF-8 text. Each is exit 2 with a located message, at once."""

from __future__ import annotations

import time

import pytest

from ci_migrate.config import CONFIG_FILENAME, ConfigError, load
from ci_migrate.config_yaml import MAX_BYTES

BILLION_LAUGHS = '''\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
'''
EXPANDS = ("refused: this value expands to more than 100,000 values through aliases (*name repeats what &name "
           "holds); a config needs far fewer")


def load_error(tmp_path, data: bytes | str, env: dict[str, str] | None = None) -> str:
    path = tmp_path / CONFIG_FILENAME
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load(env=env or {}, cwd=tmp_path)
    assert time.perf_counter() - started < 1.0, "a config error must come at once"
    return str(err.value)


def test_billion_laughs_is_refused_at_once(tmp_path, cli):
    assert load_error(tmp_path, BILLION_LAUGHS) == f".ci-migrate.yml:6:4: {EXPANDS}"
    result = cli("check", cwd=tmp_path, timeout=20)
    assert (result.code, result.err) == (2, f"error: .ci-migrate.yml:6:4: {EXPANDS}\n")


def test_merge_key_bomb_and_env_values_are_bounded(tmp_path):
    levels = ["l0: &l0 {a: 1, b: 2, c: 3, d: 4}"]
    levels += [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}], k{i}: 1}}" for i in range(1, 12)]
    assert "refused: this value expands to more than 100,000 values" in load_error(tmp_path, "\n".join(levels) + "\n")
    bomb = "{" + ", ".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 8)) + "}"
    bomb = "{x0: &x0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], " + bomb[1:]
    message = load_error(tmp_path, "", env={"CI_MIGRATE_IGNORE": bomb})
    assert message == f"CI_MIGRATE_IGNORE: {EXPANDS}"


def test_an_alias_inside_itself_and_deep_nesting(tmp_path):
    assert load_error(tmp_path, "rules: &r [*r]\n") == (
        ".ci-migrate.yml:1:8: refused: an alias refers to the list or mapping it is in")
    assert load_error(tmp_path, "ignore: " + "[" * 80 + "]" * 80 + "\n").endswith(
        "refused: lists and mappings nested more than 64 levels deep")
    assert load_error(tmp_path, "ignore: " + "[" * 5000 + "]" * 5000 + "\n") == (
        ".ci-migrate.yml:1:72: refused: lists and mappings nested more than 64 levels deep")
    indented = "".join(" " * i + f"k{i}:\n" for i in range(300))
    assert load_error(tmp_path, indented).startswith(".ci-migrate.yml:65:65: refused: lists and mappings nested")


def test_a_50_mb_config_is_refused_without_reading_it(tmp_path, cli):
    path = tmp_path / CONFIG_FILENAME
    with path.open("w", encoding="utf-8") as fh:
        fh.write("app: app.py\n")
        fh.write(("# " + "x" * 98 + "\n") * 500_000)
    message = ".ci-migrate.yml: the file is 48.2 MiB; a config file is read only up to 1 MiB — is this the right file?"
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load(env={}, cwd=tmp_path)
    assert time.perf_counter() - started < 1.0
    assert str(err.value) == message
    result = cli("check", cwd=tmp_path, timeout=20)
    assert (result.code, result.err) == (2, f"error: {message}\n")
    path.write_text("app: app.py\n" + "#" * (MAX_BYTES - 20) + "\n")
    assert load(env={}, cwd=tmp_path).app == "app.py"  # just under the limit is fine


@pytest.mark.parametrize("data, message", [
    (b"app: app.py\nmigrations: caf\xe9\n",
     ".ci-migrate.yml:2:16: not UTF-8 text: byte 0xe9 cannot be decoded; save the file as UTF-8"),
    ("app: app.py\n".encode("utf-16"),
     ".ci-migrate.yml:1:1: not UTF-8 text: byte 0xff cannot be decoded (it is UTF-16); save the file as UTF-8"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\xc3\x28",
     ".ci-migrate.yml:1:11: not UTF-8 text: byte 0xc3 cannot be decoded (this looks like a binary file, not a "
     "config file); save the file as UTF-8"),
    (b"app: app.py\nbase: ma\x00in\n",
     ".ci-migrate.yml:2:9: character U+0000 is not allowed in YAML (this looks like a binary file, not a config file)"),
    ("app: \"blog:create_app('é')\"\nfail-on: warnin\x1b\n".encode("utf-8"),
     ".ci-migrate.yml:2:16: character U+001B is not allowed in YAML"),
])
def test_not_utf8_text_names_the_byte_and_line(tmp_path, data, message):
    assert load_error(tmp_path, data) == message


def test_a_utf8_bom_is_fine(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_bytes(b"\xef\xbb\xbffail-on: warning\n")
    assert load(env={}, cwd=tmp_path).fail_on == "warning"
