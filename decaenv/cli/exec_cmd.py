"""`decaenv exec -- COMMAND [ARGS]...`: run your own program with decaenv's compatibility shims active."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from decaenv.cli._state import state_of

#: Passed to `app.command("exec", ...)`: everything after the command name belongs to the command.
CONTEXT_SETTINGS = {"allow_interspersed_args": False, "ignore_unknown_options": True}


def exec_command(
    ctx: typer.Context,
    command: Optional[List[str]] = typer.Argument(
        None,
        metavar="COMMAND",
        help="The program and its arguments, after `--`: e.g. -- python demos/demo_reconstruct.py -i IMG",
    ),
    only: Optional[List[str]] = typer.Option(
        None, "--only", metavar="ID", help="Use only these shims (repeat). Default: every shim the child needs."
    ),
    skip: Optional[List[str]] = typer.Option(None, "--skip", metavar="ID", help="Leave this shim out (repeat)."),
    trust_checkpoint: Optional[List[Path]] = typer.Option(
        None,
        "--trust-checkpoint",
        metavar="FILE",
        help="Let torch.load read this file (e.g. data/deca_model.tar) with weights_only=False: its sha256 is "
        "taken now and only a file with exactly that content is trusted (repeat).",
    ),
    trust_sha256: Optional[List[str]] = typer.Option(
        None, "--trust-sha256", metavar="HEX", help="Trust a checkpoint by its sha256 digest (repeat)."
    ),
    print_env: bool = typer.Option(
        False,
        "--print-env",
        help="Print the environment variables as shell exports instead of running "
        '(for IDEs, notebooks, `eval "$(decaenv exec --print-env)"`).',
    ),
) -> None:
    """Run COMMAND with the compatibility shims active in its Python processes, files untouched.

    The exit status is COMMAND's. Use -v to see which shims each Python process applies.
    """
    import shlex

    from decaenv.patches import launcher

    state = state_of(ctx)
    config = launcher.trust_config(trust_checkpoint or (), trust_sha256 or ())
    if print_env:
        env = launcher.child_env(
            launcher.site_dir(), only=only or (), skip=skip or (), config=config, verbose=state.verbose
        )
        for name, value in launcher.exported_variables(env).items():
            typer.echo(f"export {name}={shlex.quote(value)}")
        return
    plan = launcher.prepare(command or [], only=only or (), skip=skip or (), config=config, verbose=state.verbose)
    raise typer.Exit(launcher.run(plan))
