"""micrOS tasks: `invoke --list` shows them, `invoke <task> --help` explains one."""
from microsctl.cli import ns  # noqa: F401
