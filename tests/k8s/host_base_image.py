#!/usr/bin/env python3
"""A stand-in for debian:bookworm-slim, assembled offline from this Debian 12
machine's own installed packages, as a tar for `podman import`.

  usage: host_base_image.py OUT.tar [DEB...]

The image holds what the real bookworm-slim holds -- the packages of Priority
"required" plus apt -- and, so that `apt-get install ./*.deb` in the
Dockerfile needs no download, every installed package the given .debs depend
on (Depends/Pre-Depends, closed over the host's dpkg database). Each package's
files come from its dpkg file list (/var/lib/dpkg/info/<pkg>.list) with the
merged-/usr aliases (/bin, /lib, ...) folded into /usr like on the host; the
image's dpkg status lists exactly those packages, so dpkg and apt see a
consistent system. It has no apt sources: `apt-get update` succeeds with
nothing to fetch, which is what lets the project's Dockerfile run unchanged
with no network.

Exit 0: written; 1: an error (printed), e.g. a dependency not installed here.
"""
import io
import os
import re
import subprocess
import sys
import tarfile

STATUS = "/var/lib/dpkg/status"
INFO = "/var/lib/dpkg/info"
ALIASES = {"/bin": "/usr/bin", "/sbin": "/usr/sbin", "/lib": "/usr/lib", "/lib64": "/usr/lib64",
           "/lib32": "/usr/lib32", "/libx32": "/usr/libx32"}


def parse_status():
    """Installed packages: name -> (stanza text, fields)."""
    pkgs = {}
    with open(STATUS, encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            if not stanza.strip():
                continue
            fields, key = {}, None
            for line in stanza.splitlines():
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "install ok installed" in fields.get("Status", ""):
                pkgs[fields["Package"]] = (stanza.strip("\n"), fields)
    return pkgs


def alternatives(depends):
    """'a (>= 1) | b, c' -> [['a', 'b'], ['c']] (names only, arch qualifiers dropped)."""
    out = []
    for clause in filter(None, (c.strip() for c in depends.split(","))):
        out.append([re.split(r"[\s(:]", alt.strip(), maxsplit=1)[0] for alt in clause.split("|")])
    return out


def closure(pkgs, roots):
    providers = {}
    for name, (_, fields) in pkgs.items():
        for prov in alternatives(fields.get("Provides", "")):
            providers.setdefault(prov[0], []).append(name)
    chosen, todo = set(), list(roots)
    while todo:
        clause = todo.pop()
        pick = next((a for a in clause if a in pkgs), None)
        if pick is None:
            pick = next((p for a in clause for p in providers.get(a, [])), None)
        if pick is None:
            raise SystemExit(f"host_base_image: no installed package satisfies '{' | '.join(clause)}'")
        if pick in chosen:
            continue
        chosen.add(pick)
        fields = pkgs[pick][1]
        todo += alternatives(fields.get("Pre-Depends", "")) + alternatives(fields.get("Depends", ""))
    return chosen


def canonical(path):
    for alias, real in ALIASES.items():
        if path == alias or path.startswith(alias + "/"):
            if os.path.islink(alias):
                return real + path[len(alias):]
    return path


class Once:
    """A tar writer that keeps the first entry of each path (podman refuses duplicates)."""

    def __init__(self, tar):
        self.tar, self.seen = tar, set()

    def add(self, path, arcname, recursive):
        if arcname not in self.seen:
            self.seen.add(arcname)
            self.tar.add(path, arcname=arcname, recursive=recursive)

    def addfile(self, ti, data=None):
        if ti.name not in self.seen:
            self.seen.add(ti.name)
            self.tar.addfile(ti, data)


def main():
    if len(sys.argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 1
    out, debs = sys.argv[1], sys.argv[2:]
    pkgs = parse_status()
    roots = [[n] for n, (_, f) in pkgs.items() if f.get("Priority") == "required"] + [["apt"]]
    for deb in debs:
        for field in ("Pre-Depends", "Depends"):
            value = subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True, check=True).stdout
            # The project's own packages depend on each other; they are installed from the .debs.
            roots += [c for c in alternatives(value) if not set(c) & {"vgpu", "vgpud", "vgpuctl"}]
    chosen = closure(pkgs, roots)

    paths, info_files = set(), []
    for name in sorted(chosen):
        arch = pkgs[name][1].get("Architecture", "all")
        for base in (f"{name}:{arch}", name):
            if os.path.exists(f"{INFO}/{base}.list"):
                break
        with open(f"{INFO}/{base}.list", encoding="utf-8") as f:
            paths.update(canonical(p) for p in f.read().splitlines() if p and p != "/.")
        info_files += [f"{INFO}/{n}" for n in os.listdir(INFO) if n.startswith(base + ".")]

    with tarfile.open(out, "w") as archive:
        tar = Once(archive)

        def add_dir(path, mode=0o755):
            ti = tarfile.TarInfo(path.lstrip("/"))
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            tar.addfile(ti)

        for d in ["/usr", "/etc", "/var", "/var/lib", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/dpkg/updates",
                  "/var/lib/dpkg/triggers", "/var/lib/dpkg/alternatives", "/var/lib/apt/lists/partial",
                  "/var/cache/apt/archives/partial", "/var/log", "/run", "/proc", "/sys", "/dev", "/root", "/home",
                  "/etc/apt/sources.list.d"]:
            add_dir(d)
        add_dir("/tmp", 0o1777)
        add_dir("/var/tmp", 0o1777)
        for alias, real in ALIASES.items():
            if os.path.islink(alias):
                ti = tarfile.TarInfo(alias.lstrip("/"))
                ti.type, ti.linkname = tarfile.SYMTYPE, real.lstrip("/")
                tar.addfile(ti)
        # Generated files win over any of the same path below.
        def add_text(path, text, mode=0o644):
            data = text.encode()
            ti = tarfile.TarInfo(path.lstrip("/"))
            ti.size, ti.mode = len(data), mode
            tar.addfile(ti, io.BytesIO(data))

        status = "\n\n".join(pkgs[n][0] for n in sorted(chosen)) + "\n"
        add_text("/var/lib/dpkg/status", status)
        add_text("/var/lib/dpkg/available", "")
        # Accounts as base-passwd creates them, not this machine's.
        for f in ("passwd", "group"):
            with open(f"/usr/share/base-passwd/{f}.master", encoding="utf-8") as src:
                add_text(f"/etc/{f}", src.read())
        add_text("/etc/shadow", "".join(l.split(":")[0] + ":*:19000:0:99999:7:::\n"
                                        for l in open("/usr/share/base-passwd/passwd.master")), 0o640)
        add_text("/etc/gshadow", "".join(l.split(":")[0] + ":*::\n"
                                         for l in open("/usr/share/base-passwd/group.master")), 0o640)
        add_text("/etc/hostname", "localhost\n")
        # No sources: `apt-get update` has nothing to fetch (the point of this image).
        add_text("/etc/apt/sources.list", "")
        # Parents first: a sorted list has every directory before what it holds.
        for p in sorted(paths):
            if os.path.lexists(p) and not (os.path.isdir(p) and os.path.islink(p) and p in ALIASES):
                tar.add(p, arcname=p.lstrip("/"), recursive=False)
        for p in sorted(info_files):
            tar.add(p, arcname=p.lstrip("/"), recursive=False)
        for p in sorted(os.listdir("/etc/alternatives")) if os.path.isdir("/etc/alternatives") else []:
            tar.add(f"/etc/alternatives/{p}", arcname=f"etc/alternatives/{p}", recursive=False)
        for p in sorted(os.listdir("/var/lib/dpkg/alternatives")):
            tar.add(f"/var/lib/dpkg/alternatives/{p}", arcname=f"var/lib/dpkg/alternatives/{p}", recursive=False)

    print(f"host_base_image: {len(chosen)} packages, {len(paths)} paths -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
