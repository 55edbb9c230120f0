"""Strata's Python runtime bootstrap (standard library only).

The runner starts this file as the first process of a new set of namespaces (`unshare --mount --pid
--net --ipc --uts --fork`, plus `--user` when the runner is not root) and talks to it over fd 3, a
Unix socket, in frames: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

  bootstrap -> runner   {"type": "hello", "hostPid": n}          before anything else
  runner -> bootstrap   {"op": "setup", ...}                      at once
  runner -> bootstrap   {"op": "attached"}                        once hostPid is in the container's cgroups
  bootstrap -> runner   {"type": "ready", ...} | {"type": "setupFailed", "message": s}
  runner -> bootstrap   {"op": "load", "handler": "handler.process_image", "environment": {...}, ...}
  bootstrap -> runner   {"type": "loaded", "logs": [...]} | {"type": "loadFailed", "error": {...}, "logs": [...]}
  runner -> bootstrap   {"op": "invoke", "requestId": s, "payload": json-text, "deadline": epoch-ms}
  bootstrap -> runner   {"type": "logs", ...}* then {"type": "done", "result": json-text, ...}
                        or {"type": "failed", "error": {...}, ...}

Setup builds the container's file system (pivot_root into a tmpfs holding read-only binds of the
interpreter and system libraries, the code at /var/task, a private size-capped /tmp), brings up
loopback, drops every privilege and forks: this process stays PID 1 (it reaps orphans, and takes the
whole container down when the runner goes away), its child serves the runner. No function code runs
before setup has finished.
"""

# Only what is loaded anyway or cheap: a container started on demand pays for every import here before it
# can take code. json, logging and traceback come later (see Codec, the logging hook, PRELOAD).
import _json
import _thread
import io
import os
import select
import sys
import time

CHANNEL_FD = 3
TASK_ROOT = "/var/task"
# Frames from the runner carry at most an event (6 MB) and an environment: anything far larger is an attack.
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_RESULT_CHARS = 6 * 1024 * 1024
LOG_FLUSH_SECONDS = 0.1
PRELOAD = ("json", "logging", "traceback", "threading")
LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "ERROR"}


# ---- JSON, through the C accelerators the json package itself uses (importing it costs re and enum) --------


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name):
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scan = _json.make_scanner(_ScanContext())


def json_loads(text):
    text = text.strip(" \t\n\r")
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("Expecting value: line 1 column 1 (char 0)") from None
    if end != len(text):
        raise ValueError(f"Extra data: char {end}")
    return value


def _not_serialisable(value):
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def json_dumps(value, allow_nan=True):
    # A new encoder each time: one that raised keeps the markers of the containers it was inside.
    encode = _json.make_encoder({}, _not_serialisable, _json.encode_basestring, None, ":", ",", False, False, allow_nan)
    return "".join(encode(value, 0))


# ---- the channel ------------------------------------------------------------------------------------------


class Channel:
    def __init__(self, fd):
        self.fd = fd
        self.buffer = bytearray()
        self.lock = _thread.allocate_lock()

    def pending(self):
        """Whether a frame (or part of one) is waiting to be read."""
        if self.buffer:
            return True
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))

    def send(self, message):
        data = json_dumps(message).encode("utf-8", "surrogatepass")
        frame = len(data).to_bytes(4, "big") + data
        with self.lock:
            view = memoryview(frame)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]

    def receive(self):
        """The next message, or None when the runner has gone."""
        while True:
            if len(self.buffer) >= 4:
                size = int.from_bytes(self.buffer[:4], "big")
                if size > MAX_FRAME_BYTES:
                    raise ValueError("oversized frame from the runner")
                if len(self.buffer) >= 4 + size:
                    data = bytes(self.buffer[4 : 4 + size])
                    del self.buffer[: 4 + size]
                    return json_loads(data.decode("utf-8", "surrogatepass"))
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk


# ---- the sandbox (runs as root of the new namespaces, before any function code) ------------------------------


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91, "ppc64le": 184, "s390x": 185}
DEVICES = ("null", "zero", "full", "random", "urandom")
PROC_MASKED = ("asound", "acpi", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug", "scsi")
PROC_READ_ONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")


def sandbox(setup):
    import ctypes
    import fcntl
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    machine = os.uname().machine

    def check(result, what):
        if result != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"{what}: {os.strerror(error)}")

    def mount(source, target, fstype, flags, data=None):
        encode = lambda value: None if value is None else value.encode()  # noqa: E731
        check(libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)), f"mount {target}")

    def locked_flags(path):
        # A mount made in a user namespace keeps the flags of the one it copies, or remounting it fails.
        flags = os.statvfs(path).f_flag
        result = 0
        for statvfs_flag, mount_flag in ((2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, MS_NOATIME), (2048, MS_NODIRATIME), (4096, MS_RELATIME)):
            if flags & statvfs_flag:
                result |= mount_flag
        return result

    def bind(source, target, extra=0):
        mount(source, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | extra | locked_flags(source))

    root = setup["rootDir"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")

    def inside(path):
        return os.path.join(root, path.lstrip("/"))

    def mkdirs(path):
        os.makedirs(inside(path), mode=0o755, exist_ok=True)

    # The system's programs and libraries and the interpreter's prefix, read-only; symlinks such as a
    # merged /usr's /lib -> usr/lib are copied as links.
    for path in setup["readOnly"]:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            os.symlink(os.readlink(path), inside(path))
        elif os.path.isdir(path):
            mkdirs(path)
            bind(path, inside(path), MS_NODEV)
    if os.path.isfile("/etc/ld.so.cache"):
        mkdirs("/etc")
        open(inside("/etc/ld.so.cache"), "w").close()
        bind("/etc/ld.so.cache", inside("/etc/ld.so.cache"), MS_NODEV)

    mkdirs(TASK_ROOT)
    bind(setup["taskDir"], inside(TASK_ROOT), MS_NODEV)

    uid, gid = setup.get("uid"), setup.get("gid")
    owner = "" if uid is None else f",uid={uid},gid={gid}"
    for path in ("/tmp", "/dev/shm"):
        mkdirs(path)
        mount("tmpfs", inside(path), "tmpfs", MS_NOSUID | MS_NODEV, f"size={setup['tmpBytes']},mode=1777{owner}")

    for name in DEVICES:
        open(inside(f"/dev/{name}"), "w").close()
        mount(f"/dev/{name}", inside(f"/dev/{name}"), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, inside(f"/dev/{name}"))
    mkdirs("/proc")
    mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # As Docker does: the host-wide files a fresh /proc still shows are masked, its tunables read-only.
    for name in PROC_MASKED:
        path = inside(f"/proc/{name}")
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
        elif os.path.exists(path):
            mount(inside("/dev/null"), path, None, MS_BIND)
    for name in PROC_READ_ONLY:
        path = inside(f"/proc/{name}")
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

    user = "sandbox" if uid is not None else "root"
    files = {
        "/etc/passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n{user}:x:{uid if uid is not None else 0}:{gid if gid is not None else 0}::/tmp:/usr/sbin/nologin\n",
        "/etc/group": f"root:x:0:\n{user}:x:{gid if gid is not None else 0}:\n",
        "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "/etc/hostname": "strata\n",
    }
    mkdirs("/etc")
    mkdirs("/var")
    for path, text in files.items():
        with open(inside(path), "w") as handle:
            handle.write(text)

    # pivot_root(".", ".") stacks the old root under the new one, so it can be detached at once.
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(machine)
    if number is not None:
        check(libc.syscall(number, b".", b"."), "pivot_root")
        check(libc.umount2(b".", MNT_DETACH), "detaching the old root")
    else:
        mount(root, "/", None, 8192)  # MS_MOVE
        os.chroot(".")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)

    # Through libc rather than the socket module, whose import alone costs a few ms of every start.
    check(libc.sethostname(b"strata", 6), "setting the hostname")
    # Loopback only: the network namespace has no other interface, so nothing outside is reachable.
    probe = libc.socket(2, 2 | 0o2000000, 0)  # AF_INET, SOCK_DGRAM | SOCK_CLOEXEC
    if probe < 0:
        check(-1, "opening a socket")
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(probe, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1 | 0x40))  # SIOCSIFFLAGS: UP, RUNNING
    finally:
        os.close(probe)

    # Privileges: the bounding set first (it needs CAP_SETPCAP), then the user or the capability sets.
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # fails only on kernels without ambient sets
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    if uid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    else:
        # Root of a user namespace the runner's own user maps to: keep the uid, drop the capabilities.
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()
        capset = SYS_CAPSET.get(machine)
        if capset is None:
            raise OSError(f"cannot drop capabilities on {machine}")
        check(libc.syscall(capset, header, data), "dropping capabilities")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no_new_privs")
    if setup.get("nice"):
        # No CPU cgroup: at least the runner (and the rest of the host) wins when a function spins.
        os.nice(setup["nice"])
    # Changing credentials clears these two; the function may read its own /proc entries, and PID 1 dies with unshare.
    check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "setting dumpable")
    check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "setting the parent-death signal")  # SIGKILL


def exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def reap(main_pid, channel_fd):
    """PID 1 of the container: reaps orphans, follows the serving process, and leaves when the runner does."""
    import signal

    for fd in (0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    poller = select.poll()
    poller.register(wake_read, select.POLLIN)
    # Only hang-up: the data on the channel is the serving process's to read.
    poller.register(channel_fd, select.POLLRDHUP)
    while True:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if pid == 0:
                break
            if pid == main_pid:
                os._exit(exit_code(status))
        for fd, events in poller.poll():
            if fd == channel_fd and events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                os._exit(137)
            if fd == wake_read:
                try:
                    while os.read(wake_read, 4096):
                        pass
                except BlockingIOError:
                    pass


# ---- logs -------------------------------------------------------------------------------------------------


def timestamp(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % int(seconds % 1 * 1000)


class Logs:
    """One invocation's log lines, capped at `limit` bytes of messages; the runner caps them again.

    Besides sys.stdout/sys.stderr and logging, it takes what anything writes to fd 1 and 2 (C code,
    subprocesses, forked children): those point at pipes a thread of this process reads, and the pipes are
    drained before each result, so the handler's own output is never late for its invocation.
    """

    def __init__(self, channel, limit):
        self.channel = channel
        self.limit = limit
        self.lock = _thread.RLock()
        self.lines = []
        self.bytes = 0
        self.truncated = False
        self.active = False
        self.pending_since = 0.0
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.raw = {}
        self.raw_lock = _thread.allocate_lock()

    def add(self, level, message, created=None):
        if self.truncated:
            return
        with self.lock:
            if self.truncated:
                return
            budget = self.limit - self.bytes
            cut = len(message) > budget
            if cut:
                message = message[:budget]
            encoded = message.encode("utf-8", "replace")
            if len(encoded) > budget:
                cut = True
                message = encoded[:budget].decode("utf-8", "ignore")
                encoded = message.encode("utf-8")
            self.bytes += len(encoded)
            self.truncated = cut
            if message or not cut:
                if not self.lines:
                    self.pending_since = time.monotonic()
                    if self.active:
                        self.notify()
                self.lines.append([timestamp(time.time() if created is None else created), level, message])

    def notify(self):
        try:
            os.write(self.wake_write, b"!")
        except BlockingIOError:
            pass

    def begin(self):
        """Starts an invocation: lines logged since the last one (at load, or by stray threads) carry over."""
        with self.lock:
            self.active = True
            if self.lines:
                self.pending_since = time.monotonic()
                self.notify()

    def take(self):
        with self.lock:
            lines, truncated = self.lines, self.truncated
            self.lines = []
            return lines, truncated

    def finish(self, message):
        """Sends the invocation's last frame with the lines not yet sent, and resets the cap."""
        self.drain(final=True)
        with self.lock:
            lines, truncated = self.take()
            message["logs"] = lines
            message["logsTruncated"] = truncated
            self.active = False
            self.bytes = 0
            self.truncated = False
            self.channel.send(message)

    def capture_output(self):
        import codecs
        import fcntl

        for fd, level in ((1, "INFO"), (2, "ERROR")):
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            try:
                fcntl.fcntl(read_end, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer wake-ups for a chatty writer
            except OSError:
                pass
            os.dup2(write_end, fd)
            os.close(write_end)
            self.raw[read_end] = (Capture(self, level, fd), codecs.getincrementaldecoder("utf-8")("replace"))

    def drain(self, final=False):
        with self.raw_lock:
            for fd, (capture, decoder) in self.raw.items():
                while True:
                    try:
                        data = os.read(fd, 1 << 20)
                    except BlockingIOError:
                        break
                    if not data:
                        break
                    if not self.truncated:
                        capture.write(decoder.decode(data))
                if final:
                    capture.end_line()

    def pump(self):
        # Lines reach the runner while the handler runs (at most LOG_FLUSH_SECONDS after they were logged),
        # so a timeout or a crash loses at most the last ones; a quick invocation sends them with its result.
        poller = select.poll()
        poller.register(self.wake_read, select.POLLIN)
        for fd in self.raw:
            poller.register(fd, select.POLLIN)
        while True:
            with self.lock:
                due = self.pending_since + LOG_FLUSH_SECONDS if self.active and self.lines else None
            timeout = None if due is None else max(0, (due - time.monotonic()) * 1000)
            events = poller.poll(timeout)
            if any(fd == self.wake_read for fd, _ in events):
                try:
                    os.read(self.wake_read, 4096)
                except BlockingIOError:
                    pass
            if any(fd != self.wake_read for fd, _ in events):
                self.drain()
            with self.lock:
                if self.active and self.lines and time.monotonic() >= self.pending_since + LOG_FLUSH_SECONDS:
                    lines, truncated = self.take()
                    self.channel.send({"type": "logs", "logs": lines, "logsTruncated": truncated})


class Capture(io.TextIOBase):
    """sys.stdout / sys.stderr: each complete line becomes a log line."""

    def __init__(self, logs, level, fd):
        self.logs = logs
        self.level = level
        self.fd = fd
        # The unfinished line, in parts: appending to one string would copy it on every write.
        self.parts = []
        self.pending = 0

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    @property
    def buffer(self):
        return _BinaryCapture(self)

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("the function's output is captured, not a file")

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.logs.truncated:
            return len(text)
        if "\n" not in text:
            self.parts.append(text)
            self.pending += len(text)
            if self.pending > self.logs.limit:
                self.end_line()
            return len(text)
        self.parts.append(text)
        *complete, rest = "".join(self.parts).split("\n")
        self.parts = [rest] if rest else []
        self.pending = len(rest)
        for line in complete:
            self.logs.add(self.level, line)
            if self.logs.truncated:
                break
        return len(text)

    def flush(self):
        # A line ends at its newline, not when the function flushes (print(..., end="", flush=True)).
        pass

    def end_line(self):
        """Makes the unfinished line a log line: at the end of an invocation, or when it outgrows the cap."""
        if self.parts:
            line = "".join(self.parts)
            self.parts = []
            self.pending = 0
            self.logs.add(self.level, line)


class _BinaryCapture:
    def __init__(self, text):
        self.text = text

    def write(self, data):
        self.text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self):
        self.text.flush()


def capture_logging(logging, logs):
    """Sends the root logger's records to the invocation's logs (at INFO and above, unless changed)."""

    class LogHandler(logging.Handler):
        def emit(self, record):
            try:
                message = self.format(record)
                if os.getpid() != MAIN_PID:
                    os.write(2, (message + "\n").encode("utf-8", "replace"))
                    return
                logs.add(LEVELS.get(record.levelname, "INFO"), message, record.created)
            except Exception:  # noqa: BLE001 - logging must never raise into the function
                self.handleError(record)

    root = logging.getLogger()
    root.handlers = [LogHandler()]
    root.setLevel(logging.INFO)


class CapturingLoader:
    def __init__(self, loader, logs):
        self.loader = loader
        self.logs = logs

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        capture_logging(module, self.logs)

    def __getattr__(self, name):
        # get_source and the rest, for tracebacks through logging's own frames
        return getattr(self.loader, name)


class LoggingHook:
    """Sets up capture_logging when something first imports logging, so a function that never logs never pays for it."""

    def __init__(self, logs):
        self.logs = logs

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        spec.loader = CapturingLoader(spec.loader, self.logs)
        return spec


# ---- the function -----------------------------------------------------------------------------------------


class Context:
    """What the handler gets as its second argument, with the fields AWS Lambda's context has."""

    def __init__(self, request_id, deadline_ms, config):
        self.aws_request_id = request_id
        self.request_id = request_id
        self.function_name = config["functionName"]
        self.function_version = config["functionVersion"]
        self.memory_limit_in_mb = config["memoryLimitInMB"]
        self.invoked_function_arn = f"strata:function:{config['functionName']}:{config['functionVersion']}"
        self.log_group_name = f"/strata/functions/{config['functionName']}"
        self.log_stream_name = config.get("containerId", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self):
        return f"<Context request_id={self.request_id!r} function_name={self.function_name!r}>"


def user_frames(error):
    """The traceback from the function's first frame on: the bootstrap's own frames say nothing to its author."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def describe(error, type_name=None, message=None):
    import traceback

    tb = user_frames(error)
    stack = "".join(traceback.format_exception(type(error), error, tb))
    return {
        "type": type_name or type(error).__name__,
        "message": str(error) if message is None else message,
        "stack": stack.rstrip("\n"),
    }


def exit_message(error):
    return f"the function called sys.exit({error.code!r})" if error.code is not None else "the function called sys.exit()"


def load(message, logs):
    handler_name = message["handler"]
    module_name, _, function_name = handler_name.rpartition(".")
    os.environ.clear()
    os.environ.update(message["environment"])
    address_space = message.get("addressSpaceBytes")
    if address_space:
        import resource

        with open("/proc/self/statm") as statm:
            baseline = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (baseline + address_space, baseline + address_space))
    max_processes = message.get("maxProcesses")
    if max_processes:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    sys.path.insert(0, TASK_ROOT)
    os.chdir(TASK_ROOT)
    try:
        # The import statement's machinery (not importlib's Python) leaves its own frames out of tracebacks.
        __import__(module_name)
        module = sys.modules[module_name]
    except SyntaxError as error:
        where = f" ({os.path.relpath(error.filename, TASK_ROOT) if error.filename else '?'}, line {error.lineno})"
        return describe(error, "SyntaxError", f"Syntax error in module '{module_name}': {error.msg}{where}")
    except ImportError as error:
        return describe(error, "ImportModuleError", f"Unable to import module '{module_name}': {error}")
    except MemoryError as error:
        return describe(error, "MemoryError", "the module ran out of memory while loading")
    except SystemExit as error:
        return describe(error, "SystemExit", f"{exit_message(error)} while its module was loading")
    except BaseException as error:  # noqa: BLE001 - whatever the module raised is the function's error
        return describe(error)
    handler = getattr(module, function_name, None)
    if handler is None:
        return {"type": "HandlerNotFound", "message": f"Handler '{function_name}' missing on module '{module_name}'"}
    if not callable(handler):
        return {"type": "HandlerNotFound", "message": f"Handler '{handler_name}' is not a function"}
    return handler


def invoke(handler, message, config, logs):
    """The `done` or `failed` frame of one invocation (without its logs)."""
    try:
        event = json_loads(message["payload"])
    except ValueError as error:
        return {"type": "failed", "fault": "caller", "error": {"type": "InvalidEvent", "message": f"the event is not JSON: {error}"}}
    context = Context(message["requestId"], message["deadline"], config)
    try:
        value = handler(event, context)
        if hasattr(value, "__await__") and hasattr(value, "send"):
            import asyncio

            value = asyncio.run(value)
    except MemoryError as error:
        return {"type": "failed", "outOfMemory": True, "error": describe(error)}
    except SystemExit as error:
        return {"type": "failed", "error": describe(error, "SystemExit", exit_message(error))}
    except BaseException as error:  # noqa: BLE001 - what the handler raised is the function's error
        return {"type": "failed", "error": describe(error)}
    finally:
        for capture in CAPTURES:
            capture.end_line()
    try:
        text = json_dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        return {
            "type": "failed",
            "error": {"type": "InvalidResult", "message": f"The handler's return value is not JSON-serialisable: {error}"},
        }
    if len(text) > MAX_RESULT_CHARS:
        return {
            "type": "failed",
            "error": {"type": "ResultTooLarge", "message": f"The handler returned more than {MAX_RESULT_CHARS // 1024 // 1024} MB of JSON"},
        }
    return {"type": "done", "result": text}


def max_rss_kb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def serve(channel, setup):
    logs = Logs(channel, setup["logBytesPerInvocation"])
    logs.capture_output()
    # Kept apart from sys.stdout/sys.stderr, which the function may replace.
    CAPTURES[:] = [Capture(logs, "INFO", 1), Capture(logs, "ERROR", 2)]
    sys.stdout, sys.stderr = CAPTURES
    sys.meta_path.insert(0, LoggingHook(logs))
    _thread.stack_size(256 * 1024)
    _thread.start_new_thread(logs.pump, ())
    _thread.stack_size(0)

    def forked():
        # A child of the function's own fork(): it must never speak on the channel, and its output goes to
        # fd 1 and 2 (read by the parent's log thread) rather than a buffer nobody sends.
        try:
            os.close(CHANNEL_FD)
        except OSError:
            pass
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)

    os.register_at_fork(after_in_child=forked)
    channel.send({"type": "ready", "pid": os.getpid(), "uid": os.getuid()})
    if setup.get("preload"):
        # A pooled container has time to spare: the modules most functions import are ready before they do. It
        # stops as soon as the runner has work for it.
        for name in PRELOAD:
            if channel.pending():
                break
            __import__(name)

    handler = None
    config = None
    while True:
        message = channel.receive()
        if message is None:
            os._exit(0)
        op = message.get("op")
        if op == "load" and handler is None:
            config = message
            loaded = load(message, logs)
            if isinstance(loaded, dict):
                logs.begin()
                logs.finish({"type": "loadFailed", "error": loaded})
            else:
                handler = loaded
                lines, truncated = logs.take()
                channel.send({"type": "loaded", "logs": lines, "logsTruncated": truncated})
        elif op == "invoke" and handler is not None:
            logs.begin()
            reply = invoke(handler, message, config, logs)
            reply["maxRssKb"] = max_rss_kb()
            logs.finish(reply)
        else:
            channel.send({"type": "protocolError", "message": f"unexpected {op!r}"})


MAIN_PID = os.getpid()
CAPTURES = []


def main():
    global MAIN_PID
    os.set_inheritable(CHANNEL_FD, False)
    channel = Channel(CHANNEL_FD)
    # Until /proc is mounted again, /proc/self names this process in the runner's PID namespace.
    channel.send({"type": "hello", "hostPid": int(os.readlink("/proc/self"))})
    setup = channel.receive()
    if setup is None:
        os._exit(0)
    try:
        sandbox(setup)
    except Exception as error:  # noqa: BLE001 - reported to the runner, which refuses the container
        channel.send({"type": "setupFailed", "message": str(error)})
        os._exit(70)
    # The runner moves this process into the container's cgroups while the sandbox is built (moving a
    # process takes it milliseconds); what is forked from here on, the function included, starts inside.
    if setup.get("awaitCgroups"):
        attached = channel.receive()
        if attached is None or attached.get("op") != "attached":
            os._exit(0)
    child = os.fork()
    if child != 0:
        reap(child, CHANNEL_FD)
    MAIN_PID = os.getpid()
    serve(channel, setup)


if __name__ == "__main__":
    main()
