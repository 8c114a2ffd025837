"""What the commands that write a document share: to a file (``-o``) or to standard output."""

from pathlib import Path

from django.core.management.base import CommandError


def write_document(command, text: str, output: str | None, done: str) -> None:
    """Write ``text`` to the file ``output`` and say ``done``, or with no file to standard output."""
    if not output:
        command.stdout.write(text, ending="")
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc.strerror}") from None
    command.stdout.write(command.style.SUCCESS(done))
