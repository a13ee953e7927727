"""Reading `api.credentials` (issue 15 review point 5a): the control API reads its key through the
same reference reader as Kafka's `esm.secrets` (esm.config.references), with a credential's rules: the
file's surrounding whitespace dropped, an empty variable or file taken for a missing one, and
every failure a CredentialsUnavailable naming the field and what is missing, never the value."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from esm.api.server import CredentialsUnavailable, read_credentials
from esm.config.settings import ApiCredentials


def credentials(secret: dict[str, str]) -> ApiCredentials:
    return ApiCredentials(MappingProxyType({"value": "AKIAESMTEST"}), MappingProxyType(secret))


def test_a_secret_file_is_read_without_its_newline(tmp_path: Path):
    """Review 5a: the key id inline, the secret from a file, trailing newline dropped."""
    (tmp_path / "secret").write_text("s3cret\n")
    assert read_credentials(credentials({"file": str(tmp_path / "secret")})) == ("AKIAESMTEST", "s3cret")


@pytest.mark.parametrize("content, problem", [(b"\n", "is empty"), (b"\xff\xfe", "is not UTF-8 text")])
def test_an_unusable_secret_file_is_named(tmp_path: Path, content: bytes, problem: str):
    """Review 5a: an empty or non-UTF-8 file is CredentialsUnavailable naming the field and the
    file (a non-UTF-8 one was an unhandled UnicodeDecodeError before the shared reader)."""
    path = tmp_path / "secret"
    path.write_bytes(content)
    with pytest.raises(CredentialsUnavailable) as caught:
        read_credentials(credentials({"file": str(path)}))
    assert str(caught.value) == f"api.credentials.secret_access_key: {path} {problem}"


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_or_empty_variable_is_not_set(monkeypatch: pytest.MonkeyPatch, value: str | None):
    """Review 5a: an unset or empty variable is 'not set', naming the variable, not a value."""
    if value is None:
        monkeypatch.delenv("ESM_TEST_API_SECRET", raising=False)
    else:
        monkeypatch.setenv("ESM_TEST_API_SECRET", value)
    with pytest.raises(CredentialsUnavailable) as caught:
        read_credentials(credentials({"env": "ESM_TEST_API_SECRET"}))
    assert str(caught.value) == "api.credentials.secret_access_key: environment variable ESM_TEST_API_SECRET is not set"


def test_an_unreadable_file_says_why(tmp_path: Path):
    """Review 5a: a missing file names the file and the OS's reason."""
    with pytest.raises(CredentialsUnavailable) as caught:
        read_credentials(credentials({"file": str(tmp_path / "nowhere")}))
    assert str(caught.value) == (f"api.credentials.secret_access_key: cannot read {tmp_path / 'nowhere'}: "
                                 "No such file or directory")
