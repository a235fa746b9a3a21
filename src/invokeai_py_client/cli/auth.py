"""``ivk login`` / ``ivk logout``: a multi-user InvokeAI server's token, saved per server.

``ivk login`` saves the token in the token store (``invokeai_py_client._tokens``), where every
later ``ivk`` command finds it for that server; ``--print-token`` prints it instead::

    export INVOKEAI_API_KEY=$(ivk login --print-token --server http://gpu-box:9090 --email E)
"""

from __future__ import annotations

import os
import sys

import typer

from .. import _tokens
from ._common import CliError, connected, server_urls, stderr

#: Where ``ivk login`` reads the password from (else it asks for it, without echo).
PASSWORD_ENV = "INVOKEAI_PASSWORD"


def _password() -> str:
    """``INVOKEAI_PASSWORD``, else a prompt on the terminal (stdin) that does not echo."""
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():  # nobody to ask (getpass would echo, or read a pipe)
            raise CliError(f"no password: set {PASSWORD_ENV} or run ivk login in a terminal")
        try:
            password = str(typer.prompt("Password", hide_input=True, err=True))
        except (typer.Abort, EOFError):
            raise CliError(
                f"no password: set {PASSWORD_ENV} or run ivk login in a terminal"
            ) from None
    if not password:
        raise CliError(f"empty password (from {PASSWORD_ENV} or the prompt)")
    return password


def _server(server: str | None) -> str:
    return server_urls([server] if server else None)[0]


def login(
    email: str = typer.Option(..., "--email", help="The user's email address."),
    server: str | None = typer.Option(
        None, "--server", help="InvokeAI server URL (default: INVOKEAI_URL, then 127.0.0.1:9090)."
    ),
    remember_me: bool = typer.Option(
        False, "--remember-me", help="Ask for a token that lasts 7 days instead of 1."
    ),
    print_token: bool = typer.Option(
        False,
        "--print-token",
        help="Print the token (only it) on stdout instead of saving it.",
    ),
) -> None:
    """Log in to a multi-user server and save the token for the other ivk commands.

    The password comes from INVOKEAI_PASSWORD, else a prompt that does not echo. The token is
    saved for this server only (see docs/cli.md); --print-token prints it instead:
    export INVOKEAI_API_KEY=$(ivk login --print-token --email E)
    """
    password = _password()
    url = _server(server)
    with connected(url, token=False) as client:
        client.login(email, password, remember_me=remember_me)
        token = client.api_key
        root = client.server_url
    if not token:  # login() either sets one or raises
        raise CliError("the server answered the login without a token", exit_code=1)
    if print_token:
        sys.stdout.write(token + "\n")
        sys.stdout.flush()
        return
    try:
        path = _tokens.put(root, token)
    except OSError as exc:
        raise CliError(
            f"logged in to {root} as {email}, but cannot save the token in "
            f"{_tokens.store_path()}: {exc.strerror or exc} (set IVK_CONFIG_DIR, or use "
            "--print-token)",
            exit_code=1,
            code="permission_denied",
        ) from None
    stderr.print(f"logged in to {root} as {email}; token saved in {path}", markup=False)


def logout(
    server: str | None = typer.Option(
        None, "--server", help="InvokeAI server URL (default: INVOKEAI_URL, then 127.0.0.1:9090)."
    ),
) -> None:
    """Forget the token ivk login saved for a server (and tell the server)."""
    url = _server(server)
    try:
        root = _tokens.server_key(url)
    except ValueError as exc:
        raise CliError(f"bad server URL: {exc}", code="bad_url") from None
    token = _tokens.get(root)
    if token is None:
        stderr.print(f"not logged in to {root} (no saved token)", markup=False)
        return
    told = ""
    from ..client import InvokeAIClient

    try:
        with InvokeAIClient.from_url(root, api_key=token) as client:
            client.logout()  # ends the server's media cookie; the token is forgotten anyway
    except Exception as exc:  # the saved token goes whatever the server says
        told = f" (the server was not told: {str(exc).splitlines()[0] if str(exc) else exc})"
    _tokens.remove(root)
    stderr.print(
        f"logged out of {root}; token removed from {_tokens.store_path()}{told}", markup=False
    )


def register(app: typer.Typer) -> None:
    """Add ``login`` and ``logout`` to the app."""
    app.command("login")(login)
    app.command("logout")(logout)
