#!/usr/bin/env python3
"""Runs the command blocks of a Markdown document, so the docs cannot drift.

usage: run_doc_commands.py [--prefix ROOT] BUILD_DIR DOC.md [DOC.md ...]

With --prefix, vgpud, vgpuctl and the hook come from an installed tree
(ROOT/usr/bin, ROOT/usr/lib/vgpu: the .deb packages unpacked, as
tests/packaging/check_packages.sh does), so the document is followed with
what the packages install; simgpu and vgpu-workload still come from BUILD_DIR.

Every ```sh block of a document is run, in order, in one bash session per
document (`set -euo pipefail`; a background `vgpud ... &` stays up for the
blocks after it), on a private simulated node (simgpu) with private paths:

  /etc/vgpu, /run/vgpu, /var/lib/vgpu  ->  a temporary root
  /usr/lib/vgpu/                       ->  BUILD_DIR/lib/
  config/vgpud.example.yaml            ->  a copy with the paths above mapped
  SIMGPU_STATE=NAME                    ->  this run's private simulated node
  127.0.0.1:9400                       ->  a free loopback port
  vgpu-admin (admin_group)             ->  this user's group

Directives, in an HTML comment on the line(s) just before a block:
  <!-- docs-test: file PATH -->   the block (any language) is written to PATH
  <!-- docs-test: skip REASON -->  the block is not run; REASON is printed

The session's PATH starts with a directory holding vgpud, vgpuctl and
vgpu-workload from BUILD_DIR, and two stand-ins for what this machine lacks
(no systemd as PID 1): `systemctl start|stop|restart vgpud` runs or ends
BUILD_DIR/bin/vgpud --config /etc/vgpu/vgpud.yaml (mapped) and, like a
Type=notify unit, returns once vgpud answers `vgpuctl status`;
`journalctl -u vgpud` prints its log. `vgpuctl top` runs for 2 s.
Exit status 0 when every block succeeded; otherwise the failing block, its
line and the session's output are printed and the status is 1.
"""
import grp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(file|skip)\s+(.*?)\s*-->")


def blocks(path):
    """(line, lang, text, directive) for each fenced block of the document."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        directive = None
        for back in range(max(0, start - 3), start):
            d = DIRECTIVE.search(lines[back])
            if d:
                directive = (d.group(1), d.group(2))
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        out.append((start + 1, lang, "\n".join(lines[i + 1:j]) + "\n", directive))
        i = j + 1
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    args = sys.argv[1:]
    prefix = None
    if args[:1] == ["--prefix"] and len(args) >= 2:
        prefix = os.path.abspath(args[1])
        args = args[2:]
    if len(args) < 2:
        print(__doc__.strip().split("\n")[2], file=sys.stderr)
        return 2
    build = os.path.abspath(args[0])
    tree = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    failures = 0
    for doc in args[1:]:
        failures += run_document(build, tree, os.path.abspath(doc), prefix)
    return 1 if failures else 0


def run_document(build, tree, doc, prefix=None):
    bin_of = {t: os.path.join(build, "bin", t) for t in ("vgpud", "vgpuctl", "vgpu-workload")}
    libdir = build + "/lib/"
    if prefix:
        bin_of["vgpud"] = os.path.join(prefix, "usr/bin/vgpud")
        bin_of["vgpuctl"] = os.path.join(prefix, "usr/bin/vgpuctl")
        libdir = os.path.join(prefix, "usr/lib/vgpu") + "/"
    root = tempfile.mkdtemp(prefix="vgpu-docs-")
    port = free_port()
    group = grp.getgrgid(os.getgid()).gr_name
    mapping = [
        ("/etc/vgpu", root + "/etc/vgpu"),
        ("/run/vgpu", root + "/run/vgpu"),
        ("/var/lib/vgpu", root + "/var/lib/vgpu"),
        ("/usr/lib/vgpu/", libdir),
        ("127.0.0.1:9400", "127.0.0.1:%d" % port),
        ("admin_group: vgpu-admin", "admin_group: " + group),
        ("config/vgpud.example.yaml", root + "/config/vgpud.example.yaml"),
    ]
    sim_state = "docs-%d-%s" % (os.getpid(), os.path.basename(doc).replace(".", "-"))

    def mapped(text):
        for a, b in mapping:
            text = text.replace(a, b)
        # A simulated node named in a command is this run's private one.
        return re.sub(r"SIMGPU_STATE=[A-Za-z0-9_.-]+", "SIMGPU_STATE=" + sim_state, text)

    for d in ("etc/vgpu", "run/vgpu", "var/lib/vgpu", "bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    # The example configuration, as the docs refer to it, with private paths.
    with open(os.path.join(tree, "config/vgpud.example.yaml")) as f:
        example = f.read()
        for a, b in mapping[:-1]:
            example = example.replace(a, b)
    os.makedirs(os.path.join(root, "config"), exist_ok=True)
    with open(os.path.join(root, "config/vgpud.example.yaml"), "w") as f:
        f.write(example)
    bindir = os.path.join(root, "bin")
    for tool, path in bin_of.items():
        os.symlink(path, os.path.join(bindir, tool))
    log = os.path.join(root, "vgpud.log")
    pidfile = os.path.join(root, "vgpud.pid")
    with open(os.path.join(bindir, "systemctl"), "w") as f:
        f.write(f"""#!/bin/bash
# Stand-in for systemd's systemctl in the docs test (run_doc_commands.py).
start() {{
  {bin_of["vgpud"]} --config {root}/etc/vgpu/vgpud.yaml >>{log} 2>&1 &
  echo $! >{pidfile}
  for _ in $(seq 200); do
    vgpuctl status >/dev/null 2>&1 && return 0
    kill -0 $(cat {pidfile}) 2>/dev/null || {{ echo "vgpud failed to start:" >&2; cat {log} >&2; return 1; }}
    sleep 0.05
  done
  echo "vgpud did not answer within 10 s" >&2; return 1
}}
stop() {{
  [ -f {pidfile} ] || return 0
  pid=$(cat {pidfile}); kill -TERM $pid 2>/dev/null
  for _ in $(seq 100); do kill -0 $pid 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL $pid 2>/dev/null; return 0
}}
[ "${{2:-}}" = vgpud ] || [ "${{2:-}}" = vgpud.service ] || {{ echo "systemctl stand-in: only vgpud" >&2; exit 1; }}
case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "systemctl stand-in: $1 not supported" >&2; exit 1 ;;
esac
""")
    with open(os.path.join(bindir, "journalctl"), "w") as f:
        f.write(f"#!/bin/bash\n# Stand-in for journalctl -u vgpud in the docs test.\ncat {log}\n")
    os.chmod(os.path.join(bindir, "systemctl"), 0o755)
    os.chmod(os.path.join(bindir, "journalctl"), 0o755)

    script = ["set -euo pipefail", "cd " + tree]
    ran = 0
    for line, lang, text, directive in blocks(doc):
        if directive and directive[0] == "skip":
            print("skip %s:%d: %s" % (os.path.basename(doc), line, directive[1]))
            continue
        if directive and directive[0] == "file":
            target = mapped(directive[1])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write(mapped(text))
            continue
        if lang != "sh":
            continue
        body = mapped(text)
        body = re.sub(r"(?m)^(\s*)vgpuctl top\b([^#\n]*)(#.*)?$", r"\1{ timeout 2 vgpuctl top\2 || [ $? -eq 124 ]; }", body)
        script.append("echo '== %s:%d' >&2" % (os.path.basename(doc), line))
        script.append("DOCS_BLOCK=%d" % line)
        script.append(body)
        ran += 1
    env = dict(os.environ)
    env.update({
        "PATH": bindir + ":" + env.get("PATH", "/usr/bin:/bin"),
        "LD_LIBRARY_PATH": build + "/simgpu",
        "SIMGPU_STATE": sim_state,
        "SIMGPU_MEMORY": "80Gi",
        "VGPU_ADMIN_SOCKET": root + "/run/vgpu/vgpud-admin.sock",
        "DEMO_SKIP_BUILD": "1",
        "DEMO_SECONDS": "3",
    })
    script.append("trap - ERR")
    full = "\n".join(script) + "\n"
    with open(os.path.join(root, "session.sh"), "w") as f:
        f.write("trap 'echo \"FAILED at %s:$DOCS_BLOCK\" >&2' ERR\n" % os.path.basename(doc) + full)
    # Output goes to a file, not a pipe: a background vgpud started by a block
    # keeps its stdout open after the session ends.
    out_path = os.path.join(root, "session.out")
    with open(out_path, "w") as out_file:
        proc = subprocess.Popen(["bash", os.path.join(root, "session.sh")], env=env, stdout=out_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = open(out_path, errors="replace").read()
    # Whatever the blocks left running (vgpud &) ends with the session.
    subprocess.run(["bash", os.path.join(bindir, "systemctl"), "stop", "vgpud"], env=env, check=False)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    shm = "/dev/shm/simgpu-" + env["SIMGPU_STATE"]
    if os.path.exists(shm):
        os.unlink(shm)
    if proc.returncode != 0:
        print("FAIL %s (exit %d):\n%s" % (doc, proc.returncode, out))
        if os.path.exists(log):
            print("--- vgpud log ---\n" + open(log).read())
        shutil.rmtree(root, ignore_errors=True)
        return 1
    print("ok %s: %d command blocks" % (os.path.basename(doc), ran))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
