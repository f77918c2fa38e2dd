def test_boot_and_hello(node, sh):
    assert sh.prompt == "node01 $ "
    assert sh.cmd("hello").startswith("hello:node01:")
