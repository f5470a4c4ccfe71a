# The judge's in-guest harness for functional, HumanEval and MBPP tests (stdio tests need none:
# each is a fresh execution whose stdout the host captures). Defined in the runtime's snapshot as
# the module `_judge` (a runtime without it gets it defined by the host's first call); each test
# is one call that prints one JSON line saying what happened. Its frames are `<start>` so
# tracebacks begin at the program.
#
# The namespaces follow each benchmark's harness: HumanEval and MBPP execute the program and its
# tests as one program in one fresh dict (so a check sees the prompt's helpers and globals, and
# `__name__` is not '__main__'); LeetCode-style calls load the program as a module after
# LiveCodeBench's imports.
import sys, io, json, traceback, ast
import json.encoder as _json_encoder

# The program under test runs in this interpreter and may rebind anything it can name (`json.dumps`,
# `builtins.print`, `sys.stdout`, this module's globals) to forge a passing report. So the report
# is written only with what `_go` binds to its own locals before the program runs: this encoder
# (C code whose settings cannot be changed from Python; `json.dumps(res, default=repr)`'s output)
# and the write method of the interpreter's real stdout.
_ENCODE = _json_encoder.c_make_encoder(
    {}, repr, _json_encoder.c_encode_basestring_ascii, None, ': ', ', ', False, False, True)


class _Capped(io.TextIOBase):
    def __init__(self, cap):
        self.parts, self.size, self.cap, self.truncated = [], 0, cap, False

    def writable(self):
        return True

    def write(self, s):
        room = self.cap - self.size
        if len(s) > room:
            self.truncated = True
            s = s[: max(room, 0)]
        if s:
            self.parts.append(s)
            self.size += len(s)
        return len(s)


class _ProgramSyntax(Exception):
    """The program itself does not compile (not its tests, not a later eval)."""

    def __init__(self, text):
        self.text = text


def _frames(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _err(e, limit):
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == '<start>':
        tb = tb.tb_next
    return ''.join(traceback.format_exception(type(e), e, tb))[-limit:]


def _program(src, limit):
    try:
        return compile(src, '<program>', 'exec')
    except (SyntaxError, ValueError) as e:
        raise _ProgramSyntax(''.join(traceback.format_exception_only(type(e), e))[-limit:])


def _clip(text, n):
    return text if len(text) <= n else text[:n] + '\u2026'


def _repr(value, n):
    try:
        return _clip(repr(value), n)
    except Exception:
        return '<unprintable>'


def _names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _assert_details(tb, test_src, n):
    """The failed assert's text and, for `a == b`, both sides evaluated again in its frame."""
    try:
        tree = ast.parse(test_src)
    except SyntaxError:
        return {}
    line, best = tb.tb_lineno, None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if best is None or node.lineno >= best.lineno:
                best = node
    if best is None:
        return {}
    out = {'input': _clip(ast.get_source_segment(test_src, best) or '', n)}
    t = best.test
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
        got, expected = t.left, t.comparators[0]
        # `assert expected == candidate(x)` is written too: the side that calls is the answer.
        if 'candidate' in _names(expected) and 'candidate' not in _names(got):
            got, expected = expected, got
        frame = tb.tb_frame
        try:
            values = [
                eval(compile(ast.Expression(side), '<tests>', 'eval'), frame.f_globals, frame.f_locals)
                for side in (got, expected)
            ]
            out['got'], out['expected'] = _repr(values[0], n), _repr(values[1], n)
        except Exception:
            pass
    return out


def _go(body, cap, shown, errs, test_src=None):
    encode, write, join = _ENCODE, sys.stdout.write, ''.join
    out = _Capped(cap)
    old = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = io.StringIO(''), out
    res = {'kind': 'ok'}
    try:
        res.update(body())
    except _ProgramSyntax as e:
        res.update(kind='syntax', err=e.text)
    except MemoryError:
        res.update(kind='memory', err='MemoryError')
    except SystemExit as e:
        # Every harness counts an exit as a failure: a program that exits before its checks
        # run must not pass them.
        res.update(kind='error', err='SystemExit: %r (the program exited before its tests finished)' % (e.code,))
    except BaseException as e:
        res['err'] = _err(e, errs)
        tbs = list(_frames(e.__traceback__))
        innermost = tbs[-1].tb_frame.f_code.co_filename if tbs else ''
        if isinstance(e, AssertionError) and innermost == '<tests>':
            res['kind'] = 'wrong'
            if test_src is not None:
                try:
                    res.update(_assert_details(tbs[-1], test_src, shown))
                except Exception:
                    pass
        else:
            res['kind'] = 'error'
    finally:
        sys.stdin, sys.stdout = old
    res['trunc'] = out.truncated
    write('\n' + join(encode(res, 0)) + '\n')


def call(src, header, fn_name, args_json, cap, shown, errs):
    def body():
        ns = {'__name__': 'solution'}
        exec(compile(header, '<imports>', 'exec'), ns)
        exec(_program(src, errs), ns)
        args = json.loads(args_json)
        if 'Solution' in ns and hasattr(ns['Solution'], fn_name):
            fn = getattr(ns['Solution'](), fn_name)
        elif fn_name in ns:
            fn = ns[fn_name]
        else:
            raise NameError('the program defines no function or Solution method %r' % fn_name)
        value = fn(*args)
        if isinstance(value, tuple):
            value = list(value)
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            value = repr(value)
            text = json.dumps(value)
        if len(text) > cap:
            return {'kind': 'output', 'err': 'the returned value is %d bytes as JSON' % len(text)}
        return {'value': value}

    _go(body, cap, shown, errs)


def check(src, prompt, test_src, entry_point, cap, shown, errs):
    def body():
        ns = {}
        sep = '\n' if prompt and not prompt.endswith('\n') else ''
        exec(_program(prompt + sep + src, errs), ns)
        exec(compile(test_src, '<tests>', 'exec'), ns)
        if 'check' not in ns:
            raise NameError('the tests define no check(candidate)')
        if entry_point not in ns:
            raise NameError('name %r is not defined' % entry_point)
        ns['check'](ns[entry_point])
        return {}

    _go(body, cap, shown, errs, test_src)


_suite = {}


def asserts(src, imports, setup, test_src, first, cap, shown, errs):
    def body():
        if first or 'ns' not in _suite:
            _suite.clear()
            ns = {}
            exec(compile(imports, '<imports>', 'exec'), ns)
            exec(_program(src, errs), ns)
            exec(compile(setup, '<setup>', 'exec'), ns)
            _suite['ns'] = ns
        exec(compile(test_src, '<tests>', 'exec'), _suite['ns'])
        return {}

    _go(body, cap, shown, errs, test_src)
