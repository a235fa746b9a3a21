"""``ivk login``: log in to a multi-user InvokeAI server and print the token.

The token is the only thing written to stdout, so a shell can keep it::

    export INVOKEAI_API_KEY=$(ivk login --server http://gpu-box:9090 --email alice@example.com)
"""

from __future__ import annotations

import os
import sys

import typer

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


def login(
    email: str = typer.Option(..., "--email", help="The user's email address."),
    server: str | None = typer.Option(
        None, "--server", help="InvokeAI server URL (default: INVOKEAI_URL, then 127.0.0.1:9090)."
    ),
    remember_me: bool = typer.Option(
        False, "--remember-me", help="Ask for a token that lasts 7 days instead of 1."
    ),
) -> None:
    """Log in to a multi-user server and print the token (only it) on stdout.

    The password comes from INVOKEAI_PASSWORD, else a prompt that does not echo.

    Keep the token for the other commands: export INVOKEAI_API_KEY=$(ivk login --email E)
    """
    password = _password()
    url = server_urls([server] if server else None)[0]
    with connected(url) as client:
        client.login(email, password, remember_me=remember_me)
        token = client.api_key
    if not token:  # login() either sets one or raises
        raise CliError("the server answered the login without a token", exit_code=1)
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    if sys.stdout.isatty():
        stderr.print(
            f"logged in to {url} as {email}; keep the token for ivk: "
            "export INVOKEAI_API_KEY=$(ivk login ...)",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``login`` to the app."""
    app.command("login")(login)
