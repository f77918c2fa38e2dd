# Load Module calls: "<module> <function> [args]" or "<module> <function>(<args>)".
# Arguments are literals parsed here; nothing of the line is ever exec'd or eval'd.
# Nothing of the line is interned either: an interned name (a qstr) stays in RAM
# until a reboot, so module, function and keyword names are compared with what
# exists before the one step that would intern them (import, getattr, a call).
import os
import sys


class CallError(ValueError):
    pass


def _ident(name, what):
    if not name or not (name[0].isalpha() or name[0] == "_"):
        raise CallError("%s %r is not a name" % (what, name))
    for ch in name:
        if not (ch.isalpha() or ch.isdigit() or ch == "_"):
            raise CallError("%s %r is not a name" % (what, name))
    return name


def _tokens(text, sep):
    # Split on sep (" " or ","), keeping quoted strings whole.
    if "'" not in text and '"' not in text:  # the common case, at C speed
        if sep == " ":
            return text.split()
        out = [t.strip() for t in text.split(",")]
        if out == [""]:
            return []
        if "" in out:
            raise CallError("empty argument in %r" % text)
        return out
    out = []
    cur = ""
    quote = ""
    had = False
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur += ch
            had = True
        elif ch == sep or (sep == " " and ch == "\t"):
            if cur.strip() or had:
                out.append(cur.strip())
            elif sep == ",":
                raise CallError("empty argument in %r" % text)
            cur = ""
            had = False
        else:
            cur += ch
    if quote:
        raise CallError("unclosed quote in %r" % text)
    if cur.strip() or had:
        out.append(cur.strip())
    elif sep == "," and out:
        raise CallError("empty argument in %r" % text)
    return out


def literal(tok):
    """One argument: number, quoted string, True/False/None, or a bare word."""
    if len(tok) > 1 and tok[0] in "'\"":
        if tok[-1] != tok[0]:
            raise CallError("bad string %s" % tok)
        return tok[1:-1]
    if tok == "True":
        return True
    if tok == "False":
        return False
    if tok == "None":
        return None
    c = tok[0]
    if c.isdigit() or (c in "+-." and len(tok) > 1):
        try:
            return int(tok, 0)
        except ValueError:
            pass
        try:
            return float(tok)
        except ValueError:
            raise CallError("bad number %s" % tok)
    for ch in "()[]{}'\"":
        if ch in tok:
            raise CallError("bad argument %s" % tok)
    return tok


def parse(line):
    """line -> (module, function, args, kwargs)."""
    line = line.strip()
    sp = line.find(" ")
    if sp < 0:
        raise CallError("%r: give a module and a function, e.g. system memfree" % line)
    mod = line[:sp]
    if not mod.isalpha():  # the common case needs no check by character
        _ident(mod, "module")
    rest = line[sp + 1 :].strip()
    par = rest.find("(")
    if par >= 0:
        if rest[-1] != ")":
            raise CallError("missing ) in %r" % rest)
        func = rest[:par].strip()
        if len(func.split()) != 1:
            raise CallError("%r: one function name before (" % rest)
        toks = _tokens(rest[par + 1 : -1], ",")
    else:
        toks = _tokens(rest, " ")
        func = toks.pop(0) if toks else ""
    if not func or func[0] == "_":
        raise CallError("%r: name a public function after the module" % line)
    args = []
    kw = {}
    for tok in toks:
        eq = tok.find("=")
        if eq > 0 and tok[0] not in "'\"":
            val = tok[eq + 1 :].strip()
            if not val:
                raise CallError("bad argument %s" % tok)
            kw[tok[:eq].strip()] = literal(val)
        elif kw:
            raise CallError("positional argument after keyword: %s" % tok)
        else:
            args.append(literal(tok))
    return mod, func, args, kw


_mods = {}  # name -> module, so a call looks its module up once
USER = True  # False in safe mode: only the frozen Load Modules load


def module(name):
    """Import LM_<name>: the frozen core's first, then the node's filesystem."""
    m = _mods.get(name)
    if m and sys.modules.get(m.__name__) is m:
        return m
    _ident(name, "module")
    # only a module that exists is imported: __import__ interns the name it is given
    # (py/builtinimport.c), found or not. The frozen core's (a word of micros.LMS),
    # else a file on sys.path.
    from micros import LMS

    if (" %s " % name) in (" %s " % LMS):
        full = "micros.LM_" + name
        try:
            __import__(full)
            m = _mods[name] = sys.modules[full]
            return m
        except ImportError as e:  # listed, not frozen on this board: a file, as the others
            if full not in str(e):
                raise
    full = "LM_" + name
    found = USER and full in sys.modules
    for d in sys.path if USER else ():
        for ext in (".mpy", ".py"):
            if not found:
                try:
                    os.stat((d + "/" if d else "") + full + ext)
                    found = True
                except OSError:
                    pass
    if not found:
        raise CallError("unknown module %s (help lists them)%s" % (name, "" if USER else "; safe mode: frozen modules only"))
    __import__(full)
    m = _mods[name] = sys.modules[full]
    return m


def function(mod, func):
    m = module(mod)
    # the module's dict, not getattr(): getattr interns func (py/modbuiltins.c),
    # a dict lookup compares a str that is not interned by its text (py/map.c)
    d = m.__dict__
    f = d.get(func)
    if f is None and "__getattr__" in d:  # a module that lends functions (LM_system: micros.sysmore);
        try:  # its __getattr__ compares the name with its list before any getattr
            f = d["__getattr__"](func)
        except AttributeError:
            pass
    if func[0] == "_" or not callable(f) or isinstance(f, type):
        raise CallError("%s has no function %s (help lists them)" % (mod, func))
    return f


def run(line):
    """Parse and call one LM line; returns what the function returned."""
    mod, func, args, kw = parse(line)
    f = function(mod, func)
    for k in kw:
        # every parameter name of loaded code is interned: a keyword that is not
        # names no parameter, and the call would intern it (py/runtime.c). Slicing
        # gives the interned str itself when the text is interned, a new str when not
        # (py/objstr.c mp_obj_new_str looks the text up, never adds it).
        q = k[:]
        if q[:] is not q:
            raise CallError("%s %s: unexpected keyword argument '%s'" % (mod, func, k))
    try:
        return f(*args, **kw) if args or kw else f()
    except TypeError as e:
        # most often a wrong number of arguments: name the call
        raise CallError("%s %s: %s" % (mod, func, e))


def run_all(text, where):
    """Run ';'-separated LM calls; a failure is printed as "<where>: <call>: <error>",
    never raised. True when every call succeeded."""
    ok = True
    for line in text.split(";"):
        line = line.strip()
        if line and line != "n/a":
            try:
                run(line)
            except Exception as e:
                ok = False
                print("%s: %s: %s" % (where, line, e))
    return ok


def unload(full):
    """Forget module `full` (sys.modules, its package's attribute, the call cache),
    so the RAM of a one-time import can be collected."""
    sys.modules.pop(full, None)
    pkg, _, name = full.rpartition(".")
    if pkg in sys.modules:
        try:
            delattr(sys.modules[pkg], name)
        except AttributeError:
            pass
    for k in [k for k, m in _mods.items() if m.__name__ == full]:
        del _mods[k]


def forget(before):
    """unload() every module imported since the sys.modules snapshot `before`."""
    for full in set(sys.modules) - before:
        unload(full)


def check(line):
    """Parse a line and resolve its function without calling it."""
    mod, func, _, _ = parse(line)
    function(mod, func)
