"""The shell's reply framing, one implementation for the blocking client
(microsctl.node.client.Shell) and the asyncio one (microsctl.fleet.aclient.AsyncShell).

Bytes go in as they arrive; a reply comes out when the text ends with the node's prompt,
which closes every reply: "<devfid> $ ", "[configure] <devfid> $ ", or the original
micrOS's password prompt "[password] <devfid> $ ". The prompt itself is kept apart."""
import re

PROMPT = re.compile(r"(?:\A|\n)((?:\[(?:configure|password)\] )?[^\n]* \$ )\Z")
ERROR = "Error: "


class Replies:
    """Received bytes cut into replies; `prompt` is the last prompt seen."""

    def __init__(self):
        self.buf = b""  # received, not yet closed by a prompt
        self.prompt = ""

    def feed(self, data):
        self.buf += data

    def reply(self):
        """The next reply without its prompt, or None until the prompt has come."""
        text = self.buf.decode(errors="replace")
        m = PROMPT.search(text)
        if not m:
            return None
        self.buf = b""
        self.prompt = m.group(1)
        return text[: m.start(1)]

    def rest(self):
        """The connection closed: what came after the last prompt, as text."""
        text, self.buf = self.buf.decode(errors="replace"), b""
        return text


def is_error(reply):
    """True if a line of the reply is an error (the shell starts those with 'Error: ')."""
    return any(line.startswith(ERROR) for line in reply.splitlines())
