"""One reply framing (microsctl/node/framing.py) under both shell clients: the blocking
Shell (microsctl/node/client.py) and the asyncio AsyncShell (microsctl/fleet/aclient.py)."""
import asyncio
import socket
import threading

from hypothesis import given, strategies as st

from microsctl.fleet.aclient import AsyncShell
from microsctl.node.client import Shell
from microsctl.node.framing import Replies, is_error

# reply bodies as the node sends them: lines ending in "\n", any text but no prompt-like line end
body = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r$"),
                        max_size=20), max_size=4).map(lambda ls: "".join(line + "\n" for line in ls))
prompts = st.sampled_from(["node01 $ ", "[configure] node01 $ ", "[password] lamp-ü $ "])


@given(st.lists(st.tuples(body, prompts), min_size=1, max_size=5), st.data())
def test_replies_come_out_whole_however_the_bytes_are_cut(replies, data):
    rx = Replies()
    for text, prompt in replies:  # one command, one reply: the next is asked for after it
        raw = (text + prompt).encode()
        cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=6)))
        chunks = [raw[a:b] for a, b in zip([0] + cuts, cuts + [len(raw)])]  # UTF-8 characters split too
        for c in chunks[:-1]:
            rx.feed(c)
            assert rx.reply() is None
        rx.feed(chunks[-1])
        assert (rx.reply(), rx.prompt) == (text, prompt)
        assert rx.buf == b"" and rx.reply() is None


def test_no_prompt_yet_is_no_reply_and_a_close_gives_the_rest():
    rx = Replies()
    rx.feed(b"system info\nvers")
    assert rx.reply() is None and rx.prompt == ""
    assert rx.rest() == "system info\nvers" and rx.buf == b""
    assert is_error("ok\nError: no such module") and not is_error("no Error: here")


SCRIPT = [b"Auth", b"? no\nnode01 $ ", b"line one\nli", "ne twö\n".encode()[:-2], "ne twö\n".encode()[-2:],
          b"node01 $", b" ", b"Error: bad\n[configure] node01 $ "]


def serve():
    """A node double that answers each line with the next scripted bytes, cut into odd chunks."""
    srv = socket.create_server(("127.0.0.1", 0))

    def run():
        for _ in range(2):
            c, _ = srv.accept()
            with c:
                c.sendall(SCRIPT[0])
                c.sendall(SCRIPT[1])
                f = c.makefile("rb")
                f.readline()
                for part in SCRIPT[2:6]:
                    c.sendall(part)
                c.sendall(SCRIPT[6])
                f.readline()
                c.sendall(SCRIPT[7])
                f.readline()
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


def test_both_clients_frame_the_same_stream_alike():
    port = serve()
    with Shell(port) as sh:
        assert (sh.banner, sh.prompt) == ("Auth? no\n", "node01 $ ")
        sync = [(sh.cmd(x), sh.prompt) for x in ("a", "b")]

    async def talk():
        sh = await AsyncShell.connect("127.0.0.1", port)
        async with sh:
            assert sh.prompt == "node01 $ "
            return [(await sh.cmd(x), sh.prompt) for x in ("a", "b")]

    assert sync == asyncio.run(talk()) == [("line one\nline twö", "node01 $ "), ("Error: bad", "[configure] node01 $ ")]
