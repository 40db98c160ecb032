"""Nimbus worker shim for Python handlers.

Run as `python -I -S -B bootstrap.py` with fd 3 = request pipe (read) and
fd 4 = response pipe (write). Frames are a 4-byte big-endian length followed
by that much JSON. See internal/runtime/protocol.go for the protocol.

-S keeps the interpreter's own site-packages (the host's, under the sandbox
and plain drivers) off sys.path and runs none of their .pth files, in the
sandbox driver's zygote too, whose imports every worker it forks inherits:
a function sees the standard library, its task directory and its layers.

Only what the warm path needs is imported here, before the task directory
goes on sys.path (so a user's json.py cannot shadow ours); asyncio is
imported on the first coroutine handler.
"""

import _thread
import importlib
import io
import json
import os
import resource
import site
import sys
import time
import traceback

if sys.flags.no_site:
    # What site gives every interpreter's builtins, without its sys.path.
    site.setquit()
    site.setcopyright()
    site.sethelper()

REQ_FD = 3
RESP_FD = 4

DEFAULT_LOG_LIMIT = 64 << 10
DEFAULT_RESULT_LIMIT = 6 << 20


async def _probe():
    pass


_c = _probe()
_CoroutineType = type(_c)
_c.close()
del _c, _probe

# Encoders and a decoder, built once. The C encoder is called directly: it
# is what json.dumps ends up in, without building it anew on every call.
def _unserializable(o):
    t = type(o)
    if t.__name__ == "Decimal" and t.__module__ == "decimal":
        return float(o)  # as Lambda's Python runtime does (DynamoDB numbers)
    raise TypeError("Object of type %s is not JSON serializable" % t.__name__)


_markers = {}  # the C encoder's circular-reference check; empty between calls
try:
    _c_encoder = json.encoder.c_make_encoder(
        _markers, _unserializable, json.encoder.encode_basestring,
        None, ":", ",", False, False, False,
    )
except Exception:  # no C accelerator, or another signature
    _c_encoder = None
_result_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_unserializable
)
_ascii_encoder = json.JSONEncoder(
    allow_nan=False, separators=(",", ":"), default=_unserializable
)
_scan = json.decoder.JSONDecoder().scan_once
_encode_ascii = json.encoder.encode_basestring_ascii
_encode_utf8 = json.encoder.encode_basestring
_here = __file__


# ---------------------------------------------------------------------------
# Frames


class _Reader:
    """Reads frames from the request pipe."""

    def __init__(self, fd):
        self._f = open(fd, "rb", buffering=1 << 16, closefd=False)

    def read(self):
        """Returns the next frame's bytes, or None at EOF."""
        hdr = self._f.read(4)
        if len(hdr) < 4:
            if hdr:
                raise EOFError("truncated frame header")
            return None
        n = int.from_bytes(hdr, "big")
        body = self._f.read(n)
        if len(body) < n:
            raise EOFError("truncated frame: %d of %d bytes" % (len(body), n))
        return body


def _send(parts):
    """Writes one frame made of the byte strings in parts."""
    total = 0
    for p in parts:
        total += len(p)
    parts.insert(0, total.to_bytes(4, "big"))
    total += 4
    try:
        n = os.writev(RESP_FD, parts)
    except BlockingIOError:
        n = 0
    if n == total:
        return
    rest = memoryview(b"".join(parts))[n:]
    while rest:
        try:
            n = os.write(RESP_FD, rest)
        except BlockingIOError:
            _wait_writable()
            continue
        rest = rest[n:]


def _wait_writable():
    import select  # only if the pipe was handed to us non-blocking

    select.select([], [RESP_FD], [])


# ---------------------------------------------------------------------------
# Log capture


# A call's logs carry when each of their first MAX_LOG_TIMES lines began:
# milliseconds since the call began, in "logTimes".
MAX_LOG_TIMES = 2000


class _Logs:
    """What one invocation (or the import) printed, capped at limit bytes,
    with when each line began."""

    __slots__ = ("parts", "left", "truncated", "times", "t0", "bol")

    def __init__(self, limit):
        self.parts = []
        self.left = limit
        self.truncated = False
        self.times = []
        self.t0 = time.monotonic()
        self.bol = True  # the next character kept begins a line

    def add(self, s):
        n = len(self.parts)
        self._add(s)
        if len(self.parts) > n:
            self._time(self.parts[-1])

    def _time(self, kept):
        times = self.times
        if not kept or len(times) >= MAX_LOG_TIMES:
            return
        ms = int((time.monotonic() - self.t0) * 1000)
        if self.bol:
            times.append(ms)
        starts = kept.count("\n", 0, len(kept) - 1)
        if starts:
            times.extend([ms] * min(starts, MAX_LOG_TIMES - len(times)))
        self.bol = kept[-1] == "\n"

    def _add(self, s):
        left = self.left
        if left <= 0:
            if s:
                self.truncated = True
            return
        if s.isascii():
            n = len(s)
        else:
            try:
                b = s.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates
                s = s.encode("utf-8", "replace").decode("utf-8")
                b = s.encode("utf-8")
            n = len(b)
            if n > left:
                self.parts.append(b[:left].decode("utf-8", "ignore"))
                self.left = 0
                self.truncated = True
                return
        if n > left:
            s = s[:left]
            n = left
            self.truncated = True
        self.parts.append(s)
        self.left = left - n

    def text(self):
        return "".join(self.parts)


# A streamed call's output goes out in log frames at each newline, or once
# this many characters of a line are waiting.
STREAM_CHUNK = 4096
_stream_lock = _thread.allocate_lock()  # orders log frames and the result


class _StreamedLogs(_Logs):
    """The logs of a call whose request asked for them as they come
    ("streamLogs"): what is kept is also sent in log frames, by whichever
    thread printed it, until close() sends what is left, before the result."""

    __slots__ = ("head", "pending", "waiting", "closed")

    def __init__(self, limit, rid):
        _Logs.__init__(self, limit)
        self.head = b'{"type":"log","id":' + _encode_ascii(rid).encode("ascii") + b',"data":'
        self.pending = []
        self.waiting = 0
        self.closed = False

    def add(self, s):
        n = len(self.parts)
        _Logs.add(self, s)
        if len(self.parts) == n:
            return
        kept = self.parts[-1]
        self.pending.append(kept)
        self.waiting += len(kept)
        if self.waiting >= STREAM_CHUNK or "\n" in kept:
            self._flush(False)

    def _flush(self, final):
        with _stream_lock:
            if self.closed:
                return
            text = "".join(self.pending)
            if not final and len(text) < STREAM_CHUNK:
                i = text.rfind("\n") + 1
                text, rest = text[:i], text[i:]
            else:
                rest = ""
            self.pending = [rest] if rest else []
            self.waiting = len(rest)
            if final:
                self.closed = True
            if text:
                _send([self.head, _encode_utf8(text).encode("utf-8"), b"}"])

    def close(self):
        """Sends what is still waiting; nothing is sent after."""
        self._flush(True)


_capture = None  # the _Logs being filled, or None to pass output through
# With several invocations at once (init "concurrency" > 1) each runs on a
# thread of its own and _local.logs is its _Logs; _capture is then unused.
_local = None


def _current():
    if _local is None:
        return _capture
    return getattr(_local, "logs", None)


def _set_current(logs):
    global _capture
    if _local is None:
        _capture = logs
    else:
        _local.logs = logs


class _BinaryStream(io.RawIOBase):
    """sys.stdout.buffer / sys.stderr.buffer."""

    def __init__(self, text):
        self._text = text

    def writable(self):
        return True

    def write(self, b):
        b = bytes(b)
        cap = _current()
        if cap is None:
            real = self._text._real
            real.flush()
            return real.buffer.write(b)
        cap.add(b.decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        if _current() is None:
            self._text._real.buffer.flush()

    def fileno(self):
        return self._text.fileno()

    def close(self):
        pass


class _LogStream(io.TextIOBase):
    """Replaces sys.stdout and sys.stderr: captured during an invocation or
    the import, passed through to the real stream otherwise."""

    def __init__(self, real, name):
        self._real = real
        self._name = name
        self._buffer = _BinaryStream(self)

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    @property
    def buffer(self):
        return self._buffer

    @property
    def line_buffering(self):
        return True

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, s):
        cap = _current()
        if cap is None:
            n = self._real.write(s)
            self._real.flush()
            return n
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        cap.add(s)
        return len(s)

    def flush(self):
        if _current() is None:
            self._real.flush()

    def fileno(self):
        return self._real.fileno()

    def reconfigure(self, **kwargs):
        pass

    def close(self):
        pass


# ---------------------------------------------------------------------------
# Context


class _Client:
    """The client part of a client context, as awslambdaric's."""

    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, c):
        self.installation_id = c.get("installation_id")
        self.app_title = c.get("app_title")
        self.app_version_name = c.get("app_version_name")
        self.app_version_code = c.get("app_version_code")
        self.app_package_name = c.get("app_package_name")


class ClientContext:
    """What the caller of Lambda's Invoke said of itself
    (X-Amz-Client-Context): context.client_context, as awslambdaric's."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, cc):
        client = cc.get("client")
        self.client = _Client(client) if isinstance(client, dict) else None
        self.custom = cc.get("custom")
        self.env = cc.get("env")


class LambdaContext:
    """The context object handed to the handler, as AWS Lambda's."""

    __slots__ = (
        "function_name",
        "function_version",
        "memory_limit_in_mb",
        "aws_request_id",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "identity",
        "client_context",
        "_deadline_ms",
    )

    def __init__(self, fn, version, memory, arn, request_id, deadline_ms):
        self.function_name = fn
        self.function_version = version
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = arn
        self.aws_request_id = request_id
        self.log_group_name = ""
        self.log_stream_name = ""
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def getRemainingTimeInMillis(self):
        return self.get_remaining_time_in_millis()

    @property
    def functionName(self):
        return self.function_name

    @property
    def functionVersion(self):
        return self.function_version

    @property
    def memoryLimitInMB(self):
        return self.memory_limit_in_mb

    @property
    def awsRequestId(self):
        return self.aws_request_id

    @property
    def requestId(self):
        return self.aws_request_id

    @property
    def invokedFunctionArn(self):
        return self.invoked_function_arn

    def __repr__(self):
        return "LambdaContext(function_name=%r, aws_request_id=%r)" % (
            self.function_name,
            self.aws_request_id,
        )


# ---------------------------------------------------------------------------
# Errors


def _format_stack(e):
    """Formats e's traceback from the first frame of user code: the leading
    frames of this shim, of importlib and of asyncio's event loop go."""
    tb = e.__traceback__
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if f != _here and "importlib" not in f and "asyncio" not in f:
            break
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(e), e, tb))
    except Exception:
        return ""


def _error(etype, message, stack=""):
    d = {"type": etype, "message": message}
    if stack:
        d["stack"] = stack
    return d


def _exception_error(e):
    if isinstance(e, SystemExit):
        return _error(
            "Runtime.ExitError",
            "handler called sys.exit(%r)" % (e.code,),
            _format_stack(e),
        )
    return _error(type(e).__name__, _safe_str(e), _format_stack(e))


def _safe_str(e):
    try:
        return str(e)
    except Exception:
        return "<unprintable %s>" % type(e).__name__


# ---------------------------------------------------------------------------
# Loading


class _LoadError(Exception):
    def __init__(self, err):
        Exception.__init__(self, err["message"])
        self.err = err


def _add_layers(layers, task_dir):
    """Puts each layer's Python directories on sys.path, in order, right
    after the task directory: <l>/python, then the running version's
    <l>/python/lib/python3.X/site-packages and any other python3.*
    version's. They go through site.addsitedir, so their .pth files work."""
    known = set(sys.path)
    ours = "python%d.%d" % sys.version_info[:2]
    for layer in layers:
        base = os.path.join(layer, "python")
        lib = os.path.join(base, "lib")
        try:
            versions = sorted(n for n in os.listdir(lib) if n.startswith("python3"))
        except OSError:
            versions = []
        if ours in versions:
            versions.remove(ours)
            versions.insert(0, ours)
        for d in [base] + [os.path.join(lib, v, "site-packages") for v in versions]:
            if os.path.isdir(d):
                site.addsitedir(d)
    added = [p for p in sys.path if p not in known]
    if not added:
        return
    rest = [p for p in sys.path if p in known]
    i = rest.index(task_dir) + 1 if task_dir in rest else 0
    sys.path[:] = rest[:i] + added + rest[i:]


def _load_handler(init):
    handler = init.get("handler") or ""
    task_dir = init.get("taskDir") or os.getcwd()
    spec = handler.replace("/", ".")
    mod_name, _, fn_name = spec.rpartition(".")
    if not mod_name or not fn_name:
        raise _LoadError(
            _error(
                "Runtime.MalformedHandlerName",
                "bad handler %r: want module.function, e.g. main.handler" % handler,
            )
        )
    try:
        # A worker started before it knew its function may have its code
        # mounted over the directory it started in.
        os.chdir(task_dir)
    except OSError:
        pass
    if task_dir not in sys.path:
        sys.path.insert(0, task_dir)
    _add_layers(init.get("layers") or (), task_dir)
    try:
        mod = importlib.import_module(mod_name)
    except SyntaxError as e:
        raise _LoadError(
            _error(
                "Runtime.UserCodeSyntaxError",
                "Syntax error in module '%s': %s" % (mod_name, _safe_str(e)),
                _format_stack(e),
            )
        )
    except ImportError as e:
        raise _LoadError(
            _error(
                "Runtime.ImportModuleError",
                "Unable to import module '%s': %s" % (mod_name, _safe_str(e)),
                _format_stack(e),
            )
        )
    except SystemExit as e:
        raise _LoadError(
            _error(
                "Runtime.ExitError",
                "module '%s' called sys.exit(%r) at import" % (mod_name, e.code),
                _format_stack(e),
            )
        )
    except BaseException as e:
        raise _LoadError(
            _error(type(e).__name__, _safe_str(e), _format_stack(e))
        )
    fn = getattr(mod, fn_name, None)
    if fn is None:
        raise _LoadError(
            _error(
                "Runtime.HandlerNotFound",
                "Handler '%s' missing on module '%s' (handler %r)"
                % (fn_name, mod_name, handler),
            )
        )
    if not callable(fn):
        raise _LoadError(
            _error(
                "Runtime.HandlerNotFound",
                "Handler '%s' on module '%s' is not callable: it is a %s"
                % (fn_name, mod_name, type(fn).__name__),
            )
        )
    return fn


# ---------------------------------------------------------------------------
# Invoking


_loop = None


def _run_awaitable(aw):
    global _loop
    import asyncio

    loop = _loop if _local is None else getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        if _local is None:
            _loop = loop
        else:
            _local.loop = loop  # an event loop per thread
    asyncio.set_event_loop(loop)
    if type(aw) is not _CoroutineType:

        async def wrap(x):
            return await x

        aw = wrap(aw)
    return loop.run_until_complete(aw)


def _encode_result(result):
    """Returns the result's JSON as bytes, or raises ValueError/TypeError."""
    if result is None:
        return b"null"
    if _c_encoder is not None:
        try:
            s = "".join(_c_encoder(result, 0))
        except BaseException:
            _markers.clear()
            raise
    else:
        s = _result_encoder.encode(result)
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them instead
        return _ascii_encoder.encode(result).encode("ascii")


# ru_maxrss outlives execve: Linux carries the peak of the image it replaced
# into it, and a worker forked by a Go server (clone with CLONE_VM) starts
# with the server's own peak. _inherited_rss is that value when it is above
# the worker's own peak at start; below it, ru_maxrss says nothing about the
# worker and VmHWM is read instead (some µs, so only then).
_inherited_rss = 0
_status_fd = -1


def _vm_hwm_kib():
    """VmHWM of /proc/self/status, KiB, or 0."""
    global _status_fd
    try:
        if _status_fd < 0:
            _status_fd = os.open("/proc/self/status", os.O_RDONLY)  # not inheritable
        b = os.pread(_status_fd, 4096, 0)
        i = b.find(b"VmHWM:")
        return int(b[i + 6 : b.index(b"kB", i)]) if i >= 0 else 0
    except (OSError, ValueError):
        return 0


def _init_rss():
    global _inherited_rss
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    own = _vm_hwm_kib()
    if own and r > own:
        _inherited_rss = r


def _max_rss_kib():
    """The worker's peak resident set size so far, KiB."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if r > _inherited_rss:
        return r
    return _vm_hwm_kib() or r


def _respond_error(rid, err, logs):
    """Sends a ready (rid None) or result frame carrying err."""
    if rid is None:
        env = {"type": "ready"}
    else:
        env = {"type": "result", "id": rid}
    env["error"] = err
    env["maxRssKiB"] = _max_rss_kib()
    if logs is not None:
        text = logs.text()
        if text:
            env["logs"] = text
            env["logTimes"] = logs.times
        if logs.truncated:
            env["logsTruncated"] = True
    _send([json.dumps(env).encode("utf-8")])


def _logs_tail(logs):
    tail = []
    text = logs.text()
    if text:
        tail.append(b',"logs":')
        tail.append(_encode_utf8(text).encode("utf-8"))
        tail.append(b',"logTimes":[%s]' % ",".join(map(str, logs.times)).encode("ascii"))
    if logs.truncated:
        tail.append(b',"logsTruncated":true')
    tail.append(b',"maxRssKiB":%d}' % _max_rss_kib())
    return tail


def _stop_capture(logs):
    """Ends the capture of a call's output; a streamed call's last log
    frame goes out now, before its result."""
    _set_current(None)
    if logs.__class__ is _StreamedLogs:
        logs.close()


def _invoke(fn, init_info, req, log_limit, result_limit):
    rid = req.get("id") or ""
    name, version, memory, arn = init_info
    ctx = LambdaContext(name, version, memory, arn, rid, req.get("deadlineMs") or 0)
    cc = req.get("clientContext")
    if isinstance(cc, dict):
        ctx.client_context = ClientContext(cc)
    if req.get("streamLogs"):
        logs = _StreamedLogs(log_limit, rid)
    else:
        logs = _Logs(log_limit)
    _set_current(logs)
    try:
        try:
            result = fn(req.get("event"), ctx)
            if result is not None and (
                type(result) is _CoroutineType or hasattr(type(result), "__await__")
            ):
                result = _run_awaitable(result)
        except BaseException as e:
            err = _exception_error(e)
            _stop_capture(logs)
            _respond_error(rid, err, logs)
            return
        try:
            body = _encode_result(result)
        except (TypeError, ValueError, OverflowError, RecursionError) as e:
            err = _error(
                "Runtime.MarshalError",
                "Unable to marshal response: the result is not JSON serializable: %s"
                % _safe_str(e),
            )
            _stop_capture(logs)
            _respond_error(rid, err, logs)
            return
        if len(body) > result_limit:
            err = _error(
                "Runtime.ResultTooLarge",
                "result is %d bytes of JSON, over the limit of %d bytes"
                % (len(body), result_limit),
            )
            _stop_capture(logs)
            _respond_error(rid, err, logs)
            return
    finally:
        _stop_capture(logs)
    head = b'{"type":"result","id":' + _encode_ascii(rid).encode("ascii") + b',"result":'
    _send([head, body] + _logs_tail(logs))


def _devnull():
    return open(os.devnull, "w")


def _decode(frame):
    """Decodes a request frame: the scanner alone when the frame is one
    JSON value, as the server writes them."""
    s = frame.decode("utf-8")
    try:
        obj, end = _scan(s, 0)
    except Exception:
        end = -1
    if end == len(s):
        return obj
    return json.loads(s)


def _decode_request(frame):
    """Decodes a request frame. One that cannot be decoded (an event nested
    deeper than the decoder's recursion limit, not JSON) is answered as its
    call's error, and None returned: it fails that call, not the worker and
    every call sharing it."""
    try:
        return _decode(frame)
    except Exception as e:  # RecursionError, ValueError, MemoryError
        err = _error("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % _safe_str(e))
    # The server writes the id before the event: {"type":"invoke","id":"…",
    i = frame.find(b'"id":"', 0, 1024)
    j = frame.find(b'"', i + 6, i + 1030) if i >= 0 else -1
    try:
        rid = json.loads(frame[i + 5 : j + 1]) if j >= 0 else None
    except ValueError:
        rid = None
    if not isinstance(rid, str):
        sys.__stderr__.write("nimbus bootstrap: undecodable request without an id: %s\n" % err["message"])
        return None
    _respond_error(rid, err, None)
    return None


def main():
    global _capture
    try:
        for fd in (REQ_FD, RESP_FD):
            os.set_inheritable(fd, False)  # FD_CLOEXEC: children never see them
            os.set_blocking(fd, True)
    except OSError as e:
        sys.stderr.write(
            "nimbus bootstrap: fds 3 and 4 must be the protocol pipes: %s\n" % e
        )
        return 2

    _init_rss()
    reader = _Reader(REQ_FD)
    frame = reader.read()
    if frame is None:
        return 0
    init = json.loads(frame)
    log_limit = init.get("logLimit") or DEFAULT_LOG_LIMIT
    result_limit = init.get("resultLimit") or DEFAULT_RESULT_LIMIT
    name = init.get("functionName") or ""
    info = (
        name,
        init.get("functionVersion") or "",
        int(init.get("memoryLimitInMB") or 0),
        "arn:nimbus:function:" + name,
    )

    sys.stdout = _LogStream(sys.__stdout__ or _devnull(), "<stdout>")
    sys.stderr = _LogStream(sys.__stderr__ or _devnull(), "<stderr>")

    env = init.get("env")
    if env:
        os.environ.update({str(k): str(v) for k, v in env.items()})
        if "TZ" in env:
            time.tzset()

    logs = _Logs(log_limit)
    _capture = logs
    try:
        fn = _load_handler(init)
    except _LoadError as e:
        _capture = None
        _respond_error(None, e.err, logs)
        return 1
    _capture = None
    _send([b'{"type":"ready"'] + _logs_tail(logs))
    init_concurrency = init.get("concurrency")
    del logs, frame, init

    concurrency = int(init_concurrency or 1)
    if concurrency > 1:
        return _serve_threads(reader, concurrency, fn, info, log_limit, result_limit)
    while True:
        frame = reader.read()
        if frame is None:
            return 0
        req = _decode_request(frame)
        if req is not None:
            _invoke(fn, info, req, log_limit, result_limit)


def _serve_threads(reader, n, fn, info, log_limit, result_limit):
    """Runs up to n invocations at once, each on a thread of its own; the
    requests over that wait in order of arrival."""
    global _local, _send
    import queue
    import threading

    _local = threading.local()
    send, lock = _send, threading.Lock()

    def locked_send(parts):
        with lock:  # a frame may be larger than the pipe writes atomically
            send(parts)

    _send = locked_send
    requests = queue.SimpleQueue()
    # Each request claims a thread that finished its call, or starts one
    # while fewer than n run; over that it waits in the queue.
    idle, threads, counting = 0, 0, threading.Lock()

    def serve():
        nonlocal idle
        while True:
            _invoke(fn, info, requests.get(), log_limit, result_limit)
            with counting:
                idle += 1

    while True:
        frame = reader.read()
        if frame is None:
            return 0
        req = _decode_request(frame)
        if req is None:
            continue
        requests.put(req)
        with counting:
            if idle > 0:
                idle -= 1
                continue
        if threads < n:
            # A thread that cannot start (the sandbox's pids limit) leaves
            # the calls queued for those that run.
            try:
                threading.Thread(target=serve, name="nimbus-invoke-%d" % threads, daemon=True).start()
                threads += 1
                continue
            except RuntimeError:
                n = threads
        if threads == 0:  # not even one thread: serve here, one at a time
            _invoke(fn, info, requests.get(), log_limit, result_limit)


def run():
    """Serves until the server goes away, then exits the process."""
    try:
        code = main()
    except BrokenPipeError:
        code = 1  # the server went away
    except BaseException:  # a bad frame, or a bug here
        try:
            traceback.print_exc(file=sys.__stderr__)
        except Exception:
            pass
        code = 1
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    # Exit now: threads the handler left running must not keep the worker.
    os._exit(code)


if __name__ == "__main__":
    run()
