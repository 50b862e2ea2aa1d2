"""Account credentials for login-form downloads (FLAME), handled so they never leak.

Username: `--username`, else the realm's username variable (`DECAENV_FLAME_USERNAME`), else `~/.netrc`.
Password: the realm's password variable (`DECAENV_FLAME_PASSWORD`), else `~/.netrc` (`$NETRC`), else a
hidden prompt on the terminal. The password is wrapped in `Secret`, whose repr/str never show it; it
only ever goes into the body of an HTTPS POST (never argv, URLs, logs or files).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

from decaenv.fetch.errors import fetch_error
from decaenv.fetch.manifest import CredentialRealm


class Secret:
    """A string that does not show itself: `repr`/`str`/format give '***'."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Credentials:
    """A username and its password, and where each came from ("flag", "env", "netrc", "prompt")."""

    username: str
    password: Secret
    origin: str
    password_from: str = ""  # where the password came from, for messages ("$DECAENV_FLAME_PASSWORD", "~/.netrc")

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, origin={self.origin!r})"


def _netrc(host: str):
    """(login, password) for `host` from ~/.netrc / $NETRC, or (None, None)."""
    import netrc

    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    if not os.path.isfile(path):
        return None, None
    try:
        auth = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise fetch_error("credentials-missing", f"cannot read {path}: {getattr(exc, 'msg', exc)}",
                   hint="fix the file (it must be readable by you only: chmod 600)") from None
    if not auth:
        return None, None
    login, _account, password = auth
    if password and os.name == "posix" and os.stat(path).st_mode & 0o077:
        raise fetch_error("credentials-missing", f"{path} holds a password but other users can read it",
                   hint=f"chmod 600 {path}")
    return login or None, password or None


def get_credentials(realm: CredentialRealm, url: str, *, username: Optional[str] = None,
                    interactive: Optional[bool] = None,
                    prompt: Optional[Callable[[str], str]] = None,
                    ask_username: Optional[Callable[[str], str]] = None) -> Credentials:
    """Collect the credentials of `realm` for a download from `url` (see the module docstring).

    Args:
        realm: the manifest's credential realm (names the environment variables).
        url: the download URL; its host is the ~/.netrc machine name.
        username: `--username`, if given.
        interactive: may we prompt? Default: stdin and stderr are terminals.
        prompt: hidden-input function (default `getpass.getpass`); ask_username: visible input for the user name.

    Raises:
        FetchError (code "credentials-missing"): nothing found and no terminal to ask on.
    """
    host = urlsplit(url).hostname or ""
    origin = "flag" if username else "env"
    user = username or os.environ.get(realm.username_env) or None
    secret = os.environ.get(realm.password_env) or None
    password_from = f"${realm.password_env}" if secret else ""
    if user is None or secret is None:
        net_user, net_password = _netrc(host)
        if user is None and net_user:
            user, origin = net_user, "netrc"
        if secret is None and net_password and (net_user is None or net_user == user):
            secret, password_from = net_password, os.environ.get("NETRC") or "~/.netrc"
            origin = "netrc" if origin != "flag" else origin
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
    where = (f"--username or ${realm.username_env}, and ${realm.password_env} or a 'machine {host}' line in ~/.netrc")
    if user is None:
        if not interactive:
            raise fetch_error("credentials-missing", f"{realm.name}: no username given",
                       hint=f"pass {where}" + (f"; register at {realm.register}" if realm.register else ""))
        user = (ask_username or input)(f"{realm.name} username: ").strip()
        origin = "prompt"
    if secret is None:
        if not interactive:
            raise fetch_error("credentials-missing", f"{realm.name}: no password for {user!r}",
                       hint=f"set ${realm.password_env} or add 'machine {host} login {user} password …' "
                            "to ~/.netrc (chmod 600); decaenv never takes passwords on the command line")
        import getpass

        secret = (prompt or getpass.getpass)(f"{realm.name} password for {user} (hidden): ")
        origin, password_from = "prompt", "the prompt"
    if not user or not secret:
        raise fetch_error("credentials-missing", f"{realm.name}: empty username or password",
                   hint=f"pass {where}")
    return Credentials(username=user, password=Secret(secret), origin=origin, password_from=password_from)
